"""Organisation summary of a scores file: counts, bands per manager / team / region / segment,
and manager-level suggestions (from `models.team` when it exists, else a simple rule)."""

from __future__ import annotations

import importlib
import importlib.util

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
        "median_attainment": float(pd.to_numeric(scores["attainment_to_date"], errors="coerce").median()) if n else float("nan"),
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


def rule_suggestions(scores: pd.DataFrame, *, ratio: float = 2.0, min_reps: int = 4) -> pd.DataFrame:
    """manager_coaching where a manager's team is in the high band far above the organisation's rate."""
    org_rate = float((scores["risk_band"] == "high").mean()) if len(scores) else 0.0
    rows = []
    for mgr, g in scores.groupby(scores["manager_id"].astype(str), sort=True):
        n = len(g)
        high = int((g["risk_band"] == "high").sum())
        rate = high / n if n else 0.0
        if n >= min_reps and high >= 2 and rate >= ratio * max(org_rate, 1e-9):
            rows.append(
                {
                    "manager_id": mgr,
                    "intervention": "manager_coaching",
                    "reps": n,
                    "high": high,
                    "reason": (
                        f"{high} of {n} reps in the high band ({rate:.0%}), "
                        f"{rate / org_rate if org_rate else float('inf'):.1f}x the organisation's {org_rate:.0%}"
                    ),
                }
            )
    return pd.DataFrame(rows, columns=["manager_id", "intervention", "reps", "high", "reason"])


def _from_team_module(scores: pd.DataFrame, settings) -> pd.DataFrame | None:
    """Manager-level suggestions from `models.team` when that module exists (None otherwise)."""
    if importlib.util.find_spec("models.team") is None:
        return None
    team = importlib.import_module("models.team")
    for name in ("manager_suggestions", "team_suggestions", "suggest"):
        fn = getattr(team, name, None)
        if callable(fn):
            break
    else:
        return None
    try:
        out = fn(scores, settings)
    except TypeError:
        out = fn(scores)
    df = pd.DataFrame(out)
    if "intervention" not in df.columns and "suggestion" in df.columns:
        df = df.rename(columns={"suggestion": "intervention"})
    if "manager_id" not in df.columns or "intervention" not in df.columns:
        return None
    if "reason" not in df.columns:
        text = [c for c in ("reasons", "why", "explanation") if c in df.columns]
        df["reason"] = df[text[0]].astype(str) if text else ""
    return df


def manager_suggestions(scores: pd.DataFrame, settings=None, *, ratio: float = 2.0, min_reps: int = 4) -> tuple[pd.DataFrame, str]:
    """(suggestions, source): models.team's when available, else the coaching rule."""
    try:
        df = _from_team_module(scores, settings)
    except Exception as exc:  # a bug there must not stop HR's report; say so instead
        df = None
        source = f"rule (models.team failed: {type(exc).__name__}: {exc})"
    else:
        source = "models.team" if df is not None else "rule"
    if df is None:
        df = rule_suggestions(scores, ratio=ratio, min_reps=min_reps)
    return df.reset_index(drop=True), source


def risk_histogram_counts(risk, bins: int = 20) -> tuple[np.ndarray, np.ndarray]:
    return np.histogram(np.asarray(risk, dtype=float), bins=bins, range=(0.0, 1.0))
