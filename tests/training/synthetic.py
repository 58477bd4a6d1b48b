"""A small synthetic feature set with the shape of features.build's FeatureSet, for unit tests.

Quarterly aligned periods, weekly snapshots; the miss label comes from a latent final attainment
driven by attainment so far, open pipeline and win rate, so a model has something to learn.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

FEATURES = [
    "attainment_to_date",
    "elapsed_share",
    "pipeline_coverage",
    "won_amount",
    "win_rate",
    "calls_per_week",
    "pulse_score",
]


@dataclass
class SyntheticFeatureSet:
    frame: pd.DataFrame
    feature_names: list[str]
    history_fallback: bool = False
    notes: list[str] = field(default_factory=list)

    def summary_lines(self):
        return [f"{len(self.frame)} snapshots (synthetic)"]


def synthetic_feature_set(
    n_reps: int = 80, n_periods: int = 6, seed: int = 0, weeks: int = 13
) -> SyntheticFeatureSet:
    rng = np.random.default_rng(seed)
    skill = rng.normal(0, 1, n_reps)
    rows = []
    start0 = pd.Timestamp("2023-01-01")
    for p in range(n_periods):
        ps = start0 + pd.DateOffset(months=3 * p)
        pe = ps + pd.DateOffset(months=3) - pd.Timedelta(days=1)
        days = (pe - ps).days + 1
        quota = 100.0
        for r in range(n_reps):
            form = skill[r] + rng.normal(0, 0.7)
            final = max(0.0, 1.0 + 0.25 * form + rng.normal(0, 0.2))
            pipe0 = max(0.1, 1.5 + 0.5 * form + rng.normal(0, 0.4))
            for w in range(weeks):
                as_of = ps + pd.Timedelta(days=7 * w)
                share = (as_of - ps).days / days
                att = max(0.0, final * share + rng.normal(0, 0.05) * share)
                rows.append(
                    {
                        "rep_id": f"r{r:03d}",
                        "period_start": ps,
                        "period_end": pe,
                        "as_of": as_of,
                        "manager_id": f"m{r % 8}",
                        "team": f"t{r % 8}",
                        "region": ["north", "south"][r % 2],
                        "segment": ["smb", "mid", "ent"][r % 3],
                        "day_of_period": (as_of - ps).days + 1,
                        "period_days": days,
                        "week_of_period": w + 1,
                        "attainment_to_date": att,
                        "elapsed_share": share,
                        "pipeline_coverage": max(0.0, pipe0 * (1 - share) + rng.normal(0, 0.2)),
                        "won_amount": att * quota,
                        "win_rate": float(np.clip(0.3 + 0.05 * form + rng.normal(0, 0.05), 0, 1)),
                        "calls_per_week": float(max(0, rng.normal(20 + 3 * form, 5)))
                        if rng.random() > 0.05
                        else np.nan,
                        "pulse_score": float(np.clip(rng.normal(6 + 0.3 * form, 1.5), 0, 10)),
                        "attainment": final,
                        "missed": final < 1.0,
                    }
                )
    frame = pd.DataFrame(rows)
    frame["rep_id"] = frame["rep_id"].astype("string")
    frame["manager_id"] = frame["manager_id"].astype("string")
    for c in ("team", "region", "segment"):
        frame[c] = frame[c].astype("string")
    # peer column: the rep's attainment relative to the team's median on the same day
    med = frame.groupby(["team", "as_of"])["attainment_to_date"].transform("median")
    frame["peer__attainment_to_date"] = frame["attainment_to_date"] - med
    return SyntheticFeatureSet(frame=frame, feature_names=list(FEATURES))
