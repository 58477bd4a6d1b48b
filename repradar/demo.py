"""`repradar demo`: simulate an organisation, train, promote, score a few weeks as batch jobs, and serve the
dashboard.

Everything lives under REPRADAR_HOME (demo data in `demo/`), so the demo never touches real state
elsewhere and a second run reuses what the first one made.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from repradar.errors import UserError
from repradar.settings import Settings


@dataclass
class DemoResult:
    data_dir: Path
    scores_path: Path
    model_version: str
    as_of_days: list[dt.date]
    signins: list[tuple[str, str, str]] = field(default_factory=list)  # (role, user, token)


def demo_as_of_days(quotas: pd.DataFrame, weeks: int = 4) -> list[dt.date]:
    """Weekly as-of days from the start of the latest quota period: the early weeks a manager cares about."""
    start = pd.to_datetime(quotas["period_start"]).max().date()
    return [start + dt.timedelta(days=7 * k + 1) for k in range(weeks)]


def demo_earlier_days(quotas: pd.DataFrame, weeks: tuple[int, ...] = (3, 7)) -> list[dt.date]:
    """As-of days in weeks `weeks` of the period before the latest: lists whose outcomes the demo's later
    batches judge, so the models page shows how lists turn out. The simulated export ends with the
    latest period, the model's held-out one, so this is its validation period: marked "in sample"."""
    starts = sorted(pd.to_datetime(quotas["period_start"]).dt.date.unique())
    if len(starts) < 2:
        return []
    return [starts[-2] + dt.timedelta(days=7 * (w - 1) + 1) for w in weeks]


def pick_demo_manager(reps: pd.DataFrame) -> str:
    """The manager with the most direct reps: a realistic team for the manager sign-in."""
    active = reps[reps["end_date"].isna()] if "end_date" in reps else reps
    return str(active["manager_id"].value_counts().sort_index().idxmax())


def demo_training_lines(lines: list[str]) -> list[str]:
    """`train`'s summary without its advice to run `repradar promote`: the demo promotes next itself, and
    a user who ran it afterwards was told there is no challenger."""
    return [line for line in lines if not line.startswith("next:")]


def demo_gate_line(message: str) -> str:
    """The gate's verdict in one line (its figures table, which the colon announces, is left out)."""
    return message.splitlines()[0].rstrip(":") if message else "promoted"


def run_demo(
    settings: Settings,
    *,
    reps: int = 500,
    periods: int = 8,
    seed: int = 7,
    echo: Callable[[str], None] = print,
) -> DemoResult:
    """Make the demo installation (idempotent) and return where things are; does not start the server."""
    from features.io import load_folder
    from models.gate import promote
    from models.loading import load_model
    from simulator.simulate import SimConfig, simulate
    from training.pipeline import train

    home = settings.resolved_home
    data_dir = home / "demo" / "data"
    if not (data_dir / "reps.parquet").exists():
        echo(f"[1/5] simulating {reps} reps over {periods} quarters into {data_dir}")
        simulate(SimConfig(n_reps=reps, n_periods=periods, seed=seed, oracle_sims=0), data_dir)
    else:
        echo(f"[1/5] reusing the simulated organisation in {data_dir}")
    echo("[2/5] validating against the data contract")
    tables = load_folder(data_dir)
    try:
        model = load_model(settings)
        echo(f"[3/5] champion {settings.model_name} v{model.version} already registered; skipping training")
    except Exception:
        echo("[3/5] training (features, LightGBM, calibration, baselines, MLflow)")
        result = train(data_dir, settings)
        for line in demo_training_lines(result.summary_lines()):
            echo("      " + line)
        echo("[4/5] promoting through the gate")
        gate = promote(settings, actor="demo")
        echo("      " + demo_gate_line(gate.message))
        model = load_model(settings)
    days = demo_as_of_days(tables.quotas)
    earlier = demo_earlier_days(tables.quotas)
    echo(
        f"[5/5] scoring as batch jobs: {', '.join(d.isoformat() for d in earlier)} (last quarter: lists "
        f"for the track record), then {len(days)} weekly as-of days: {', '.join(d.isoformat() for d in days)}"
    )
    outputs = _score_in_jobs(settings, data_dir, [*earlier, *days], model, echo)
    scores_path = home / "demo" / f"scores-{days[-1].isoformat()}.parquet"
    shutil.copyfile(outputs[-1], scores_path)
    return DemoResult(data_dir, scores_path, str(model.version), days)


def _score_in_jobs(
    settings: Settings, data_dir: Path, days: list[dt.date], model, echo: Callable[[str], None]
) -> list[Path]:
    """Score each day as the service's batch jobs do (stored scores, earlier lists judged, audit trail),
    oldest first, one at a time; a second demo run finds the same jobs done. Returns their scores files."""
    from serving.admin import _actor, _sessions
    from serving.db.schema import Job
    from serving.jobs import JobRunner

    engine, sessions = _sessions(settings)
    runner = JobRunner(settings.model_copy(update={"data_dir": data_dir}), sessions)
    said = _SayOnce(echo)  # each job logs the same scoring notes: say each once, not once a job
    jobs_log = logging.getLogger("repradar.serving.jobs")
    jobs_log.addHandler(said)
    runner.start()
    try:
        outputs = []
        for day in days:
            with sessions() as s:
                job, created = runner.submit(s, _actor(), day, model, request_id=None)
                job_id = job.id
            while True:
                with sessions() as s:
                    job = s.get(Job, job_id)
                    if job.status not in ("queued", "running"):
                        break
                time.sleep(0.2)
            if job.status != "succeeded":
                failed = UserError if job.error_code == "data" else RuntimeError
                raise failed(f"the batch job as of {day} failed: {job.error}")
            if not created:
                echo(f"      {day}: reusing batch job {job_id}")
            outputs.append(runner.output_path(job_id))
        return outputs
    finally:
        runner.stop()
        engine.dispose()
        jobs_log.removeHandler(said)


class _SayOnce(logging.Handler):
    """Echo each distinct warning of the batch jobs once (without it, Python's last-resort handler
    printed every job's copy of the same notes)."""

    def __init__(self, echo: Callable[[str], None]):
        super().__init__(logging.WARNING)
        self.echo, self.seen = echo, set()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage().removeprefix("batch scoring: ")
        if message not in self.seen:
            self.seen.add(message)
            self.echo("      note: " + message)


def demo_signins(settings: Settings, reps: pd.DataFrame) -> list[tuple[str, str, str]]:
    """Ready-made users for the demo: a manager, HR and a data scientist, each with a fresh token."""
    from serving.admin import users_add, users_list, users_token

    manager_id = pick_demo_manager(reps)
    wanted = [
        ("manager", f"demo-manager-{manager_id.lower()}", ["manager"], manager_id),
        ("hr", "demo-hr", ["hr"], None),
        ("data_scientist", "demo-ds", ["data_scientist"], None),
    ]
    existing = {u.name for u in users_list(settings)}
    out = []
    for role, name, roles, mid in wanted:
        if name in existing:
            token = users_token(settings, name)
        else:
            _, token = users_add(settings, name, roles, mid)
        out.append((role, name, token))
    return out
