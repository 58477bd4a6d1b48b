"""Calibrating on out-of-time scores of several periods, and choosing the calibrator honestly.

`calibration_rows` gathers the raw scores to calibrate on: the validation period scored by the
shipped booster, and the periods before it, each scored by a booster of the same settings and tree
count fitted only on the periods that ended before it began. One period's miss rate and
week-by-week pattern then weigh less on the calibrator (docs/model.md "Calibration").

`choose_calibrator` splits those rows into groups by rep; each candidate is fitted on the other
groups and scored on the held-out group, so the choice is made on predictions neither candidate
saw. The winner (lower Brier; log-loss breaks ties) is then refitted on all the rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

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


@dataclass
class CalibrationRows:
    """Out-of-time raw scores with their labels and reps, and the periods they come from (oldest first)."""

    raw: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    periods: list[str]
    rows: list[int]


def calibration_rows(
    starts: pd.Series,
    ends: pd.Series,
    train: np.ndarray,
    valid: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    valid_raw: np.ndarray,
    period_starts: list[pd.Timestamp],
    n_periods: int,
    fit_and_score: Callable[[np.ndarray, np.ndarray], np.ndarray],
    min_each: int = 1,
) -> CalibrationRows:
    """The validation rows (`valid_raw`, the shipped booster's) and up to `n_periods - 1` training
    periods before them, newest first, each scored by `fit_and_score(fit_mask, score_mask)` on the
    rows whose period ended before it began. A period stops the walk back when its fitting rows
    hold fewer than `min_each` misses or met rows (too little to fit a booster on)."""
    y = np.asarray(y, int)
    starts, ends = pd.to_datetime(starts), pd.to_datetime(ends)
    valid_start = starts[valid].min()
    earlier = sorted((p for p in period_starts if p < valid_start), reverse=True)
    parts = [(valid_start, valid, np.asarray(valid_raw, float))]
    bounds = [valid_start, *earlier]
    for p, nxt in zip(earlier, bounds, strict=False):
        if len(parts) >= n_periods:
            break
        score = train & (starts >= p).to_numpy() & (ends < nxt).to_numpy()
        fit = train & (ends < p).to_numpy()
        n_miss = int(y[fit].sum())
        if not score.any() or min(n_miss, int(fit.sum()) - n_miss) < min_each:
            break
        parts.append((p, score, np.asarray(fit_and_score(fit, score), float)))
    parts.reverse()

    def window(mask) -> str:
        return f"{starts[mask].min().date()}..{ends[mask].max().date()}"

    return CalibrationRows(
        raw=np.concatenate([r for _, _, r in parts]),
        y=np.concatenate([y[m] for _, m, _ in parts]),
        groups=np.concatenate([np.asarray(groups)[m] for _, m, _ in parts]),
        periods=[window(m) for _, m, _ in parts],
        rows=[int(m.sum()) for _, m, _ in parts],
    )
