"""A tiny trained RepRadarModel on registry feature names, for fast unit tests of the action layer.

Synthetic snapshots of reps in two segments: the miss label depends on pipeline coverage, meetings,
win rate and CRM logins, so recourse has levers that really move the risk. Trains in well under a second.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

FEATURES = [
    "attainment_to_date",
    "quota_amount",
    "open_pipeline_in_period",
    "open_deals_in_period",
    "pipeline_coverage",
    "new_pipeline_amount_28d",
    "new_deals_28d",
    "win_rate_180d",
    "activities_per_week_28d",
    "meetings_per_week_28d",
    "meeting_demo_share_28d",
    "crm_logins_per_week_28d",
    "one_on_ones_91d",
    "csat_mean_91d",
    "quota_vs_segment",
    "tenure_days",
    "history_days",
]


def tiny_frame(n: int = 400, seed: int = 0, as_of: str = "2024-04-22") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    seg = np.where(rng.random(n) < 0.5, "SMB", "Mid-Market")
    quota = np.where(seg == "SMB", 100_000.0, 250_000.0) * rng.uniform(0.8, 1.3, n)
    att = rng.uniform(0, 0.4, n)
    new_pipe = quota * rng.uniform(0.05, 0.6, n)
    open_pipe = new_pipe * rng.uniform(1.0, 2.5, n)
    deals = np.maximum(1, np.round(open_pipe / 20_000))
    meetings = rng.uniform(0.5, 6, n)
    calls_emails = rng.uniform(5, 20, n)
    act = meetings + calls_emails
    f = pd.DataFrame(
        {
            "rep_id": pd.array([f"r{i:03d}" for i in range(n)], dtype="string"),
            "manager_id": pd.array([f"m{i % 10}" for i in range(n)], dtype="string"),
            "period_start": pd.Timestamp("2024-04-01"),
            "period_end": pd.Timestamp("2024-06-30"),
            "as_of": pd.Timestamp(as_of),
            "team": pd.array([f"t{i % 10}" for i in range(n)], dtype="string"),
            "region": pd.array(["north"] * n, dtype="string"),
            "segment": pd.array(seg, dtype="string"),
            "week_of_period": 4,
            "attainment_to_date": att,
            "quota_amount": quota,
            "open_pipeline_in_period": open_pipe,
            "open_deals_in_period": deals,
            "pipeline_coverage": open_pipe / (quota * (1 - att)),
            "new_pipeline_amount_28d": new_pipe,
            "new_deals_28d": np.maximum(1, np.round(new_pipe / 20_000)),
            "win_rate_180d": rng.uniform(0.1, 0.5, n),
            "activities_per_week_28d": act,
            "meetings_per_week_28d": meetings,
            "meeting_demo_share_28d": meetings / act,
            "crm_logins_per_week_28d": rng.uniform(2, 15, n),
            "one_on_ones_91d": rng.integers(0, 8, n).astype(float),
            "csat_mean_91d": rng.uniform(3, 5, n),
            "quota_vs_segment": rng.uniform(0.8, 1.6, n),
            "tenure_days": rng.uniform(30, 2000, n),
            "history_days": rng.uniform(30, 700, n),
        }
    )
    f["history_days"] = np.minimum(f["history_days"], f["tenure_days"])
    z = (
        -2.2 * np.log(f["pipeline_coverage"].clip(0.05))
        - 0.5 * f["meetings_per_week_28d"]
        - 6 * f["win_rate_180d"]
        - 0.1 * f["crm_logins_per_week_28d"]
        + 2 * (f["quota_vs_segment"] - 1)
        + 3.5
    )
    f["missed"] = rng.random(n) < 1 / (1 + np.exp(-z))
    return f


@lru_cache
def shared_tiny_model(seed: int = 0, currency: str = "USD", fixed_quota: bool = False):
    """One tiny model per test session and currency (its files live in a temporary folder, removed at exit)."""
    import atexit
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="repradar-tiny-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return tiny_model(folder, seed, currency, fixed_quota)


def tiny_model(folder: Path, seed: int = 0, currency: str = "USD", fixed_quota: bool = False):
    """Train a small booster + Platt calibrator on tiny_frame and load it as the served pyfunc; its
    amounts are in `currency` (what `repradar train` records from REPRADAR_CURRENCY). `fixed_quota`:
    every rep has the same quota (as in the Maven export), so the model cannot learn from it."""
    import lightgbm as lgb

    from models.calibration import PlattCalibrator
    from models.pyfunc import RepRadarModel, write_artifacts
    from models.spec import FeatureSpec
    from training.pipeline import feature_monotone

    f = tiny_frame(2000, seed)
    if fixed_quota:
        f = f.assign(quota_amount=150_000.0, quota_vs_segment=1.0)
    X = f[FEATURES].to_numpy(float)
    y = f["missed"].to_numpy(int)
    mono = [feature_monotone(n) for n in FEATURES]
    params = dict(
        objective="binary",
        learning_rate=0.1,
        num_leaves=7,
        min_data_in_leaf=20,
        verbose=-1,
        seed=seed,
        deterministic=True,
        num_threads=1,
        monotone_constraints=mono,
    )
    booster = lgb.train(params, lgb.Dataset(X, y, feature_name=FEATURES), num_boost_round=60)
    cal = PlattCalibrator().fit(booster.predict(X, raw_score=True), y)
    from features.registry import get

    spec = FeatureSpec(
        feature_names=FEATURES,
        groups={n: get(n).group for n in FEATURES},
        units={n: get(n).unit for n in FEATURES},
        monotone=dict(zip(FEATURES, mono, strict=True)),
        band_high=0.6,
        band_medium=0.3,
        currency=currency,
    )
    paths = write_artifacts(folder, spec, booster, cal)
    return RepRadarModel.from_paths(paths)
