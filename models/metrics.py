"""Calibration figures with one definition for training's held-out evaluation (training/evaluate.py) and
the track record of the lists given out (reporting/track_record.py, which the service runs too)."""

from __future__ import annotations

import numpy as np


def risk_bins(y, p, n_bins: int = 10) -> list[dict]:
    """Each non-empty equal-width risk bin: its mean predicted risk, observed miss rate and rows (rows
    with no risk left out)."""
    y = np.asarray(y, float)
    p = np.asarray(p, float)
    ok = ~np.isnan(p)
    bins = np.minimum((p[ok] * n_bins).astype(int), n_bins - 1)
    rows = []
    for b in np.unique(bins):
        m = bins == b
        rows.append(
            {
                "bin": int(b),
                "mean_risk": float(p[ok][m].mean()),
                "observed": float(y[ok][m].mean()),
                "n": int(m.sum()),
            }
        )
    return rows


def ece(y, p, n_bins: int = 10) -> float:
    """Expected calibration error: row-weighted mean |observed rate - mean risk| over risk bins."""
    rows = risk_bins(y, p, n_bins)
    n = sum(r["n"] for r in rows)
    if n == 0:
        return float("nan")
    return float(sum(r["n"] * abs(r["observed"] - r["mean_risk"]) for r in rows) / n)
