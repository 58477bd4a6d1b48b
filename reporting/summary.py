"""Organisation summary of a scores file: counts, bands per manager / team / region / segment,
and manager-level suggestions (from `models.team` when it exists, else a simple rule)."""

from __future__ import annotations

import numpy as np
import pandas as pd

BANDS = ("high", "medium", "low")
CONTEXT = ("team", "region", "segment")


def with_context(scores: pd.DataFrame, reps: pd.DataFrame | None) -> pd.DataFrame:
    """Scores with team, region, segment and name (from `reps` where the scores file lacks them)."""
    s = scores.copy()
    s["rep_id"] = s["rep_id"].astype(str)
    s["manager_id"] = s["manager_id"].astype(str)
    if reps is not None:
        r = reps.drop_duplicates("rep_id").copy()
        r["rep_id"] = r["rep_id"].astype(str)
        r = r.set_index("rep_id")
        for c in (*CONTEXT, "name"):
            if c in r.columns and (c not in s.columns or s[c].isna().all()):
                s[c] = s["rep_id"].map(r[c]).astype("string")
    for c in CONTEXT:
        if c not in s.columns:
            s[c] = pd.Series(pd.NA, index=s.index, dtype="string")
    return s


def org_summary(scores: pd.DataFrame) -> dict:
    """Headline figures of one scoring batch."""
    bands = scores["risk_band"].astype(str).value_counts()
    n = len(scores)
    as_of = pd.to_datetime(scores["as_of"])
    ps = pd.to_datetime(scores["period_start"])
    pe = pd.to_datetime(scores["period_end"])
    return {
        "reps": int(n),
        "managers": int(scores["manager_id"].nunique()),
        "high": int(bands.get("high", 0)),
        "medium": int(bands.get("medium", 0)),
        "low": int(bands.get("low", 0)),
        "high_share": float(bands.get("high", 0) / n) if n else float("nan"),
        "mean_risk": float(scores["risk"].mean()) if n else float("nan"),
        "median_attainment": float(pd.to_numeric(scores["attainment_to_date"], errors="coerce").median())
        if n
        else float("nan"),
        "as_of": sorted({d.date().isoformat() for d in as_of.dropna()}),
        "periods": sorted({f"{a.date()}..{b.date()}" for a, b in zip(ps, pe, strict=True)}),
        "model_versions": sorted({str(v) for v in scores["model_version"].dropna()}),
    }


def band_table(scores: pd.DataFrame, by: str) -> pd.DataFrame:
    """Reps per band for each value of `by`, with the high-band share and mean risk; riskiest first."""
    key = scores[by].astype("string").fillna("(none)")
    t = pd.crosstab(key, scores["risk_band"].astype(str))
    for b in BANDS:
        if b not in t.columns:
            t[b] = 0
    t = t[list(BANDS)]
    t["reps"] = t.sum(axis=1)
    t["high_share"] = t["high"] / t["reps"]
    t["mean_risk"] = scores.groupby(key)["risk"].mean()
    t.index.name = by
    t = t.reset_index().sort_values(["high_share", "mean_risk", by], ascending=[False, False, True])
    return t.reset_index(drop=True)


def manager_suggestions(scores: pd.DataFrame, *, ratio: float = 2.0, min_reps: int = 4) -> pd.DataFrame:
    """Manager-level suggestions for the report: `models.team`'s rules (the dashboard's too), with HR's
    coaching thresholds, in the report's columns."""
    from models.team import team_suggestions

    t = team_suggestions(scores, rate_ratio=ratio, min_team=min_reps)
    return pd.DataFrame(
        {
            "manager_id": t["manager_id"].astype(str),
            "intervention": t["suggestion"],
            "reps": t["team_size"],
            "n_reps": t["n_reps"],
            "reason": t["reason"],
            "reason_zh": t["reason_zh"],  # the report in Chinese; not in its JSON
        }
    )


def risk_histogram_counts(risk, bins: int = 20) -> tuple[np.ndarray, np.ndarray]:
    return np.histogram(np.asarray(risk, dtype=float), bins=bins, range=(0.0, 1.0))
