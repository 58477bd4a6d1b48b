"""Entry point: simulate a sales organisation into a contract folder, with its hidden truth in truth/.

    simulate(SimConfig(n_reps=200, n_periods=8, seed=0), Path("out"))

Same config and seed give byte-identical files. Contract tables go to `out/<table>.<fmt>`;
`out/truth/` (always Parquet, plus causes.md and summary.json) must never be read by training or
scoring. `SimConfig.manager_view` sets what managers judge a rep's risk from at their check: the
true latent state ("informed", the default: hidden confounding for any observational estimate of
what interventions do) or the CRM data only ("observed").
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from repradar.errors import UserError
from simulator import output as O
from simulator import params as P
from simulator.channels import neutral_traits
from simulator.engine import Engine
from simulator.expect import forward
from simulator.org import build_org
from simulator.timeline import Calendar, build_calendar
from simulator.truth import CAUSES_MD, TRAIT_COLUMNS, attribute, intervention_truth

STREAMS = (
    "org",
    "traits",
    "quotas",
    "deals",
    "activities",
    "engagement",
    "interventions",
    "oracle",
    "output",
    "truth",
)


@dataclass
class SimConfig:
    n_reps: int = 200
    n_periods: int = 8
    seed: int = 0
    start: dt.date = dt.date(2023, 1, 1)
    fmt: str = "parquet"  # or "csv"
    bias_quota_against: str | None = None  # a gender value whose reps get ~25% harder quotas
    with_history: bool = True  # write opportunity_history
    oracle_sims: int = 64  # Monte-Carlo continuations for oracle risk (0 = skip)
    # what a manager's at-risk judgement at a check rests on (params.MANAGER_VIEWS): "informed" =
    # the rep's true latent traits, which no table shows (helped reps are worse off than their data
    # say: hidden confounding); "observed" = only what the CRM shows (won so far, open deals, and a
    # neutral rep's new business at the rep's ramp), so whom managers help depends on the data alone
    manager_view: str = "informed"

    def check(self) -> None:
        if self.fmt not in ("parquet", "csv"):
            raise UserError(f"unknown format {self.fmt!r}: use parquet or csv")
        if self.n_reps < 4:
            raise UserError(f"n_reps is {self.n_reps}: simulate at least 4 reps")
        if self.n_periods < 1:
            raise UserError(f"n_periods is {self.n_periods}: simulate at least 1 period")
        if self.manager_view not in P.MANAGER_VIEWS:
            raise UserError(
                f"manager_view={self.manager_view!r} is not known; use one of {', '.join(P.MANAGER_VIEWS)}"
            )
        if self.oracle_sims < 0:
            raise UserError("oracle_sims must be >= 0 (0 skips the oracle)")
        if self.bias_quota_against is not None and self.bias_quota_against not in P.GENDERS:
            raise UserError(
                f"bias_quota_against={self.bias_quota_against!r} is not a gender value; use one of {', '.join(P.GENDERS)}"
            )


def standard_quotas(cal: Calendar) -> np.ndarray:
    """(segment, period) quota of a ramped, average rep: expected won / target ratio."""
    s = len(P.SEGMENTS)
    x = neutral_traits(s)
    big = np.full(s, 10**9)
    won, _, _ = forward(
        cal, np.arange(s), lambda w: x, -big, big, 1.0 - P.EXPECTED_PTO_SHARE, 0, cal.n_days - 1
    )
    return won / P.TARGET_RATIO[:, None]


def _rep_periods(cal, org, res, bias_value) -> pd.DataFrame:
    rep, period = O.rep_period_index(cal, res)
    q = res.quota[rep, period]
    won = res.won[rep, period]
    return pd.DataFrame(
        {
            "rep": rep,
            "period": period,
            "quota_amount": q,
            "won_amount": won,
            "n_won_deals": res.n_won[rep, period],
            "attainment": won / q,
            "missed": won / q < 1.0,
            "bias_factor": np.where(org.gender[rep] == bias_value, P.QUOTA_BIAS_FACTOR, 1.0),
        }
    )


def simulate(cfg: SimConfig, out: Path) -> dict:
    """Write a synthetic organisation to `out`; return a small summary (counts, miss rate, ...)."""
    cfg.check()
    out = Path(out)
    seeds = np.random.SeedSequence(cfg.seed).spawn(len(STREAMS))
    rng = {name: np.random.Generator(np.random.PCG64(s)) for name, s in zip(STREAMS, seeds, strict=True)}
    cal = build_calendar(cfg.start, cfg.n_periods)
    org = build_org(cfg.n_reps, cal, rng["org"])
    res = Engine(cfg, cal, org, rng, standard_quotas(cal)).run()

    # contract tables
    out.mkdir(parents=True, exist_ok=True)
    reps = O.reps_frame(cal, org, res)
    quotas = O.quotas_frame(cal, org, res)
    opps, hist, opp_ids = O.opportunity_frames(cal, org, res, rng["output"])
    acts = O.activities_frame(cal, org, res, opp_ids)
    eng = O.engagement_frame(cal, org, res)
    ivs = O.interventions_frame(cal, org, res)
    tables = {
        "reps": reps,
        "quotas": quotas,
        "opportunities": opps,
        "activities": acts,
        "engagement": eng,
        "interventions": ivs,
    }
    if cfg.with_history:
        tables["opportunity_history"] = hist
    else:
        for suffix in ("parquet", "csv"):
            (out / f"opportunity_history.{suffix}").unlink(missing_ok=True)
    for name, df in tables.items():
        O.write(df, out, name, cfg.fmt)

    # hidden truth
    truth_dir = out / "truth"
    truth_dir.mkdir(parents=True, exist_ok=True)
    rp = _rep_periods(cal, org, res, cfg.bias_quota_against)
    truth, states = attribute(cal, org, res, rp)
    applied, effects = intervention_truth(cal, org, res, _with_traits(cal, res, truth), states, rng["truth"])
    rp_out = _truth_frame(cal, org, res, truth)
    O.write(rp_out, truth_dir, "rep_periods", "parquet")
    O.write(_oracle_frame(cal, org, res), truth_dir, "oracle", "parquet")
    O.write(_applied_frame(cal, org, applied), truth_dir, "interventions_applied", "parquet")
    O.write(effects, truth_dir, "intervention_effects", "parquet")
    O.write(_weekly_traits(cal, org, res), truth_dir, "weekly_traits", "parquet")
    O.write(_managers_frame(org), truth_dir, "managers", "parquet")
    (truth_dir / "causes.md").write_text(CAUSES_MD)

    summary = {
        "reps": int(org.n),
        "managers": int(len(org.managers)),
        "periods": int(cal.n_periods),
        "first_period_start": cfg.start.isoformat(),
        "last_period_end": str(cal.date_of(cal.period_end_day[-1])),
        "rep_periods": int(len(rp_out)),
        "miss_rate": round(float(rp_out["missed"].mean()), 4) if len(rp_out) else None,
        "dominant_causes": {
            k: int(v) for k, v in rp_out["dominant_cause"].value_counts().sort_index().items()
        },
        "opportunities": int(len(opps)),
        "opportunity_history": int(len(hist)) if cfg.with_history else 0,
        "activities": int(len(acts)),
        "engagement": int(len(eng)),
        "interventions": int(len(ivs)),
        "oracle_rows": int(len(res.oracle["rep"])),
        "format": cfg.fmt,
        "seed": cfg.seed,
    }
    cfg_dict = {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in asdict(cfg).items()}
    (truth_dir / "summary.json").write_text(json.dumps({"config": cfg_dict, **summary}, indent=2) + "\n")
    return summary


def _with_traits(cal, res, truth: pd.DataFrame) -> pd.DataFrame:
    t = truth.copy()
    t["trait_quota_difficulty"] = res.quota_difficulty[t["rep"], t["period"]]
    return t


def _truth_frame(cal, org, res, truth: pd.DataFrame) -> pd.DataFrame:
    r, p = truth["rep"].to_numpy(), truth["period"].to_numpy()
    # the period's first week is the first that starts in it (as for the managers' checks): the week
    # holding the period's first day may start in the previous period, before January's territory redraw
    week = np.minimum((cal.period_start_day[p] + 6) // 7, res.X.shape[0] - 1)
    X = res.X[week, r]
    df = pd.DataFrame(
        {
            "rep_id": pd.array(org.rep_ids[r], dtype="str"),
            "manager_id": pd.array(org.manager_ids[org.manager[r]], dtype="str"),
            "segment": pd.array(np.asarray(P.SEGMENTS, dtype=object)[org.seg[r]], dtype="str"),
            "period_start": O._dates(cal, cal.period_start_day[p]),
            "period_end": O._dates(cal, cal.period_end_day[p]),
        }
    )
    for c in (
        "quota_amount",
        "won_amount",
        "n_won_deals",
        "attainment",
        "missed",
        "expected_won",
        "expected_attainment",
        "miss_prob",
        "at_risk",
        "dominant_cause",
        "top_deficit",
    ):
        df[c] = truth[c].to_numpy()
    df["dominant_cause"] = pd.array(truth["dominant_cause"].to_numpy(), dtype="str")
    df["top_deficit"] = pd.array(truth["top_deficit"].to_numpy(), dtype="str")
    for c in [c for c in truth.columns if c.startswith("contrib_")]:
        df[c] = truth[c].to_numpy()
    for col, (k, sign) in TRAIT_COLUMNS.items():
        df[col] = sign * X[:, k].astype(float)
    df["trait_quota_difficulty"] = res.quota_difficulty[r, p]
    df["quota_bias_factor"] = truth["bias_factor"].to_numpy()
    df["intervened"] = _intervened(res, r, p)
    return df.sort_values(["rep_id", "period_start"], kind="stable").reset_index(drop=True)


def _intervened(res, r, p) -> np.ndarray:
    keys = {(iv.rep, iv.period) for iv in res.interventions}
    return np.array([(a, b) in keys for a, b in zip(r, p, strict=True)], dtype=bool)


def _oracle_frame(cal, org, res) -> pd.DataFrame:
    o = res.oracle
    rep = o["rep"].astype(np.int64)
    period = o["period"].astype(np.int64)
    keep = res.end_day[rep] >= cal.period_end_day[period] if len(rep) else np.zeros(0, bool)
    rep, period = rep[keep], period[keep]
    q = res.quota[rep, period]
    df = pd.DataFrame(
        {
            "rep_id": pd.array(org.rep_ids[rep], dtype="str"),
            "period_start": O._dates(cal, cal.period_start_day[period]),
            "as_of": O._dates(cal, o["day"][keep].astype(np.int64)),
            "oracle_risk": o["risk"][keep].astype(float),
            "won_to_date": o["won"][keep].astype(float),
            "expected_attainment": o["exp"][keep].astype(float) / q,
        }
    )
    return df.sort_values(["rep_id", "period_start", "as_of"], kind="stable").reset_index(drop=True)


def _applied_frame(cal, org, applied: pd.DataFrame) -> pd.DataFrame:
    if len(applied) == 0:
        return pd.DataFrame(columns=["rep_id", "intervention", "started_on", "period_start"])
    r, p = applied["rep"].to_numpy(), applied["period"].to_numpy()
    df = pd.DataFrame(
        {
            "rep_id": pd.array(org.rep_ids[r], dtype="str"),
            "intervention": pd.array(applied["intervention"].to_numpy(), dtype="str"),
            "started_on": O._dates(cal, applied["started"].to_numpy()),
            "period_start": O._dates(cal, cal.period_start_day[p]),
        }
    )
    for c in applied.columns:
        if c not in ("rep", "period", "intervention", "started", "ended"):
            df[c] = applied[c].to_numpy()
    return df.sort_values(["rep_id", "started_on", "intervention"], kind="stable").reset_index(drop=True)


def _weekly_traits(cal, org, res) -> pd.DataFrame:
    W, n, _ = res.X.shape
    w = np.repeat(np.arange(W), n)
    r = np.tile(np.arange(n), W)
    keep = (org.hire_day[r] <= 7 * w + 6) & (res.end_day[r] >= 7 * w) & (7 * w < cal.n_days)
    w, r = w[keep], r[keep]
    df = pd.DataFrame({"rep_id": O._strings(org.rep_ids, r), "week_start": O._dates(cal, 7 * w)})
    X = res.X[w, r]
    for col, (k, sign) in TRAIT_COLUMNS.items():
        df[col] = sign * X[:, k].astype(float)
    return df.sort_values(["rep_id", "week_start"], kind="stable").reset_index(drop=True)


def _managers_frame(org) -> pd.DataFrame:
    m = org.managers
    return pd.DataFrame(
        {
            "manager_id": pd.array(m["manager_id"].to_numpy(), dtype="str"),
            "name": pd.array(m["name"].to_numpy(), dtype="str"),
            "level": m["level"].astype(int),
            "parent_id": pd.array(m["parent_id"].to_numpy(), dtype="str"),
            "region": pd.array(m["region"].to_numpy(), dtype="str"),
            "quality": (m["quality_base"] - m["poor_severity"]).astype(float),
            "logs_one_on_ones": m["logs_one_on_ones"].astype(bool),
        }
    )
