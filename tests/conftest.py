"""Shared fixtures: a tiny, seeded organisation in the contract's typed-frame form.

`make_tables` writes deals with a full opportunity_history (stage progressions, close-date slips,
amount changes, several changes on one day), activities, engagement (one rep never answers the
pulse survey; one unknown metric), interventions, a mid-period hire and a leaver. Small enough
that a whole feature build takes about a second.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.io import Tables

OPEN_STAGES = ["Prospecting", "Qualification", "Proposal", "Negotiation"]
ACTIVITY_TYPES = ["call", "email", "meeting", "demo", "linkedin"]


def _dates(values) -> pd.Series:
    return pd.Series(pd.to_datetime(list(values)), dtype="datetime64[ns]")


def _stamps(values) -> pd.Series:
    return pd.Series(pd.to_datetime(list(values), utc=True, format="ISO8601"), dtype="datetime64[ns, UTC]")


def make_tables(
    n_reps: int = 6,
    n_periods: int = 4,
    seed: int = 0,
    *,
    history: bool = True,
    start: dt.date = dt.date(2024, 1, 1),
    extra_days: int = 20,
) -> Tables:
    """A small organisation: `n_periods` finished quarters plus one running `extra_days` into it."""
    rng = np.random.default_rng(seed)
    starts = pd.date_range(pd.Timestamp(start), periods=n_periods + 2, freq="QS")
    periods = [
        (starts[i].date(), (starts[i + 1] - pd.Timedelta(days=1)).date()) for i in range(n_periods + 1)
    ]
    data_end = periods[-1][0] + dt.timedelta(days=extra_days - 1)  # last day with events
    data_begin = start - dt.timedelta(days=120)

    reps, quotas = [], []
    for i in range(n_reps):
        hire = start - dt.timedelta(days=400)
        end = None
        if i == 1:
            hire = start + dt.timedelta(days=40)  # hired mid-period
        if i == 2:
            end = start + dt.timedelta(days=150)  # leaves in the second period
        reps.append(
            dict(
                rep_id=f"r{i}",
                manager_id=f"m{i % 2}",
                hire_date=hire,
                end_date=end,
                team=f"t{i % 2}",
                region=["north", "south", "east"][i % 3],
                segment=["SMB", "Enterprise"][i % 2],
                name=f"Rep {i}",
                gender=["f", "m"][i % 2],
                age_band=["20-29", "30-39", "40-49"][i % 3],
            )
        )
        for ps, pe in periods:
            quotas.append(
                dict(
                    rep_id=f"r{i}",
                    period_start=ps,
                    period_end=pe,
                    quota_amount=float(rng.integers(120, 300) * 1000),
                )
            )

    opps, hist, acts, eng = [], [], [], []

    def stamp(day: dt.date) -> dt.datetime:
        return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC) + dt.timedelta(
            seconds=int(rng.integers(0, 86400))
        )

    n_opp = 0
    for r in reps:
        first = max(r["hire_date"], data_begin)
        last = min(r["end_date"] or data_end, data_end)
        day = first
        while day <= last:
            if rng.random() < 0.22:
                n_opp += 1
                oid = f"o{n_opp}"
                amount = float(round(rng.lognormal(9.8, 0.6), 2))
                close = day + dt.timedelta(days=int(rng.integers(15, 80)))
                rows = [(stamp(day), "Prospecting", amount, close)]
                t = day
                level = 0
                outcome = None
                while outcome is None:
                    t = t + dt.timedelta(days=int(rng.integers(0, 18)))
                    u = rng.random()
                    if u < 0.2:  # slip the expected close
                        close = max(close, t) + dt.timedelta(days=int(rng.integers(5, 30)))
                        rows.append((stamp(t), rows[-1][1], rows[-1][2], close))
                    elif u < 0.3:  # amount change
                        amount = float(round(amount * rng.uniform(0.7, 1.3), 2))
                        rows.append((stamp(t), rows[-1][1], amount, close))
                    elif u < 0.45 or level == 3:  # closes
                        won = rng.random() < (0.25 + 0.2 * level)
                        outcome = "Closed Won" if won else "Closed Lost"
                        rows.append((stamp(t), outcome, amount, t))
                    else:
                        level = min(level + 1, 3)
                        rows.append((stamp(t), OPEN_STAGES[level], amount, close))
                # changes of one day happen in the order generated; the export comes after data_end
                times = sorted(row[0] for row in rows)
                rows = [(ts, *row[1:]) for ts, row in zip(times, rows, strict=True) if ts.date() <= data_end]
                last_row = rows[-1]
                closed = last_row[1].startswith("Closed")
                opps.append(
                    dict(
                        opportunity_id=oid,
                        rep_id=r["rep_id"],
                        created_date=day,
                        close_date=last_row[3],
                        stage=last_row[1],
                        amount=last_row[2],
                        is_closed=closed,
                        is_won=last_row[1] == "Closed Won",
                        account_id=f"a{int(rng.integers(0, 30))}",
                        product="p1",
                    )
                )
                for ts, st, am, cd in rows:
                    hist.append(dict(opportunity_id=oid, changed_at=ts, stage=st, amount=am, close_date=cd))
            if day.weekday() < 5:
                n_act = int(rng.poisson(3))
                kinds = rng.choice(ACTIVITY_TYPES, size=n_act, p=[0.35, 0.35, 0.12, 0.08, 0.10])
                secs = rng.integers(0, 86400, size=n_act)
                base = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
                for kind, sec in zip(kinds.tolist(), secs.tolist(), strict=True):
                    acts.append(
                        dict(
                            rep_id=r["rep_id"],
                            occurred_at=base + dt.timedelta(seconds=sec),
                            type=str(kind),
                            duration_minutes=float(sec % 60),
                        )
                    )
                eng.append(
                    dict(rep_id=r["rep_id"], date=day, metric="crm_logins", value=float(rng.poisson(2)))
                )
            if day.weekday() == 0 and r["rep_id"] != "r3":
                eng.append(
                    dict(rep_id=r["rep_id"], date=day, metric="pulse_score", value=float(rng.integers(3, 11)))
                )
            if rng.random() < 0.3:
                eng.append(
                    dict(
                        rep_id=r["rep_id"],
                        date=day,
                        metric="after_hours_minutes",
                        value=float(rng.integers(0, 120)),
                    )
                )
            if rng.random() < 0.02:
                eng.append(
                    dict(rep_id=r["rep_id"], date=day, metric="pto_days", value=float(rng.integers(1, 4)))
                )
            if (day - first).days % 14 == 3:
                eng.append(dict(rep_id=r["rep_id"], date=day, metric="one_on_one", value=1.0))
            if rng.random() < 0.05:
                eng.append(dict(rep_id=r["rep_id"], date=day, metric="csat", value=float(rng.integers(1, 6))))
            if rng.random() < 0.03:
                eng.append(
                    dict(
                        rep_id=r["rep_id"], date=day, metric="training_hours", value=float(rng.integers(1, 4))
                    )
                )
            if rng.random() < 0.02:
                eng.append(dict(rep_id=r["rep_id"], date=day, metric="peer_sessions", value=1.0))
            if rng.random() < 0.1:
                eng.append(
                    dict(rep_id=r["rep_id"], date=day, metric="Focus Score", value=float(rng.normal()))
                )
            day += dt.timedelta(days=1)

    acts_df = pd.DataFrame(acts)
    acts_df.insert(0, "activity_id", [f"a{i}" for i in range(len(acts_df))])
    return typed(
        reps=pd.DataFrame(reps),
        quotas=pd.DataFrame(quotas),
        opportunities=pd.DataFrame(opps),
        opportunity_history=pd.DataFrame(hist) if history else None,
        activities=acts_df,
        engagement=pd.DataFrame(eng),
        interventions=pd.DataFrame(
            [dict(rep_id="r0", intervention="regular_checkins", started_on=start, ended_on=None)]
        ),
    )


DATE_COLUMNS = {
    "hire_date",
    "end_date",
    "period_start",
    "period_end",
    "created_date",
    "close_date",
    "date",
    "started_on",
    "ended_on",
}
STAMP_COLUMNS = {"changed_at", "occurred_at"}
BOOL_COLUMNS = {"is_closed", "is_won"}
NUMBER_COLUMNS = {"quota_amount", "amount", "value", "duration_minutes"}


def typed(**frames) -> Tables:
    """Frames with the io conventions: strings, naive midnight dates, UTC timestamps, floats, bools."""
    out = {}
    for name, df in frames.items():
        if df is None:
            out[name] = None
            continue
        df = df.copy()
        for c in df.columns:
            if c in DATE_COLUMNS:
                df[c] = _dates(df[c])
            elif c in STAMP_COLUMNS:
                df[c] = _stamps(df[c])
            elif c in BOOL_COLUMNS:
                df[c] = df[c].astype(bool)
            elif c in NUMBER_COLUMNS:
                df[c] = df[c].astype("float64")
            else:
                df[c] = df[c].astype("string")
        out[name] = df
    return Tables(**out)


@pytest.fixture(scope="session")
def tiny_tables() -> Tables:
    return make_tables()


@pytest.fixture(scope="session")
def tiny_tables_no_history() -> Tables:
    return make_tables(history=False)


# One small trained model shared by the service and dashboard tests (training is the slow part).
@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """A small simulated org, one trained model (version 1, champion) and version 2 registered from the
    same run (a second training would only cost time here: the test is about the swap, not the model)."""
    from models import registry
    from models.gate import promote
    from repradar.settings import Settings
    from simulator.simulate import SimConfig, simulate
    from training.pipeline import train

    root = tmp_path_factory.mktemp("trained")
    data = root / "data"
    simulate(SimConfig(n_reps=60, n_periods=5, seed=1, oracle_sims=0), data)
    home = root / "home"
    settings = Settings(home=home)
    train(data, settings, seed=1)
    assert promote(settings).promoted
    client = registry.configure(settings)
    v1 = client.get_model_version(settings.model_name, "1")
    client.create_model_version(settings.model_name, v1.source, run_id=v1.run_id)
    quotas = pd.read_parquet(data / "quotas.parquet")
    as_of = (quotas["period_start"].max() + pd.Timedelta(days=20)).date()
    return data, home, as_of


def run_cli(home: Path, *args: str, env: dict | None = None):
    """Invoke `repradar ARGS` with REPRADAR_HOME=home; returns click's Result (exit_code, stdout, stderr)."""
    from typer.testing import CliRunner

    from repradar.cli import app
    from repradar.settings import get_settings

    get_settings.cache_clear()
    try:
        return CliRunner().invoke(app, list(args), env={"REPRADAR_HOME": str(home), **(env or {})})
    finally:
        get_settings.cache_clear()


def killed_training_run(client, exp_id: str, **tags: str) -> tuple[str, int]:
    """A run started as `train` starts it (models.registry.run_owner_tags), by a real process that was
    SIGKILLed since, so it stays RUNNING: (run id, the dead pid). A process importing MLflow to start the
    run itself would cost seconds of CPU; the store cannot tell the difference."""
    import signal
    import subprocess

    from models import registry

    proc = subprocess.Popen(["sleep", "600"])
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    tags = {**registry.run_owner_tags(), registry.RUN_PID_TAG: str(proc.pid), **tags}
    return client.create_run(exp_id, tags=tags).info.run_id, proc.pid
