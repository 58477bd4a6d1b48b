"""Drivers: per-feature contributions (log-odds) from LightGBM's own TreeSHAP.

`booster.predict(X, pred_contrib=True)` is exact TreeSHAP (the same numbers `shap.TreeExplainer`
gives, without importing shap). The last column is the base value; base + contributions = raw score.
"""

from __future__ import annotations

import math

import numpy as np


def tree_contributions(booster, X: np.ndarray, num_threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(contributions n x k, base value n) for the rows of X."""
    out = booster.predict(X, pred_contrib=True, num_threads=num_threads)
    out = np.asarray(out, dtype=float)
    return out[:, :-1], out[:, -1]


def _clean(v) -> float | None:
    v = float(v)
    return None if math.isnan(v) else v


def top_drivers(
    contributions: np.ndarray,
    values: np.ndarray,
    names: list[str],
    groups: list[str],
    k: int,
) -> list[dict]:
    """The up-to-k features pushing this row's risk up the most, largest contribution first.

    Only positive contributions are reasons *for* the risk; ties break on feature order so the
    result is deterministic.
    """
    order = sorted(range(len(names)), key=lambda j: (-contributions[j], j))
    drivers = []
    for j in order[:k]:
        c = float(contributions[j])
        if c <= 0:
            break
        drivers.append(
            {"feature": names[j], "group": groups[j], "value": _clean(values[j]), "contribution": c}
        )
    return drivers
