"""Choosing the calibrator honestly: both candidates are cross-fitted on the out-of-time fold.

The fold is split into groups by rep; each candidate is fitted on the other groups and scored on
the held-out group, so the choice is made on predictions neither candidate saw. The winner
(lower Brier; log-loss breaks ties) is then refitted on the whole fold.
"""

from __future__ import annotations

import numpy as np

from models.calibration import IsotonicCalibrator, PlattCalibrator


def brier(y, p) -> float:
    return float(np.mean((np.asarray(p, float) - np.asarray(y, float)) ** 2))


def log_loss(y, p, eps: float = 1e-6) -> float:
    p = np.clip(np.asarray(p, float), eps, 1 - eps)
    y = np.asarray(y, float)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


CANDIDATES = {"platt": PlattCalibrator, "isotonic": IsotonicCalibrator}


def choose_calibrator(raw: np.ndarray, y: np.ndarray, groups: np.ndarray, n_splits: int = 5):
    """(fitted calibrator, report) where report has each candidate's cross-fitted Brier and log-loss."""
    from sklearn.model_selection import GroupKFold

    raw = np.asarray(raw, float)
    y = np.asarray(y, int)
    groups = np.asarray(groups)
    n_splits = max(2, min(n_splits, len(np.unique(groups))))
    oof = {k: np.full(len(y), np.nan) for k in CANDIDATES}
    for fit_idx, eval_idx in GroupKFold(n_splits=n_splits).split(raw, y, groups):
        if y[fit_idx].min() == y[fit_idx].max():
            for k in CANDIDATES:
                oof[k][eval_idx] = y[fit_idx].mean()
            continue
        for k, cls in CANDIDATES.items():
            oof[k][eval_idx] = cls().fit(raw[fit_idx], y[fit_idx]).predict(raw[eval_idx])
    report = {k: {"brier": brier(y, p), "log_loss": log_loss(y, p)} for k, p in oof.items()}
    chosen = min(report, key=lambda k: (round(report[k]["brier"], 6), report[k]["log_loss"], k))
    report["chosen"] = chosen
    return CANDIDATES[chosen]().fit(raw, y), report
