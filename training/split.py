"""Out-of-time split: train on the past, tune and calibrate on the next period, test on the newest.

The cut dates are the starts of the organisation's main quota periods (the period starts most
reps share). Held out: periods starting on or after the test cut. Validation: periods starting on
or after the validation cut that ended before the test cut. Training: periods that ended before
the validation cut. So every outcome used to train was known before validation began, every
outcome used to calibrate was known before the held-out period began, and a period straddling a
cut (non-aligned periods) is dropped and counted, never leaked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from repradar.errors import UserError


@dataclass
class TimeSplit:
    train: np.ndarray  # boolean masks over the frame's rows
    valid: np.ndarray
    test: np.ndarray
    train_ends: list[pd.Timestamp]
    valid_ends: list[pd.Timestamp]
    test_ends: list[pd.Timestamp]
    valid_start: pd.Timestamp
    test_start: pd.Timestamp
    dropped: int

    def window(self, mask: np.ndarray, frame: pd.DataFrame) -> str:
        """'YYYY-MM-DD..YYYY-MM-DD': first period start to last period end of the masked rows."""
        if not mask.any():
            return "-"
        start = pd.to_datetime(frame.loc[mask, "period_start"]).min().date()
        end = pd.to_datetime(frame.loc[mask, "period_end"]).max().date()
        return f"{start}..{end}"

    def describe(self, frame: pd.DataFrame) -> dict:
        return {
            "train_window": self.window(self.train, frame),
            "valid_window": self.window(self.valid, frame),
            "test_window": self.window(self.test, frame),
            "train_rows": int(self.train.sum()),
            "valid_rows": int(self.valid.sum()),
            "test_rows": int(self.test.sum()),
            "train_periods": len(self.train_ends),
            "dropped_overlap_rows": int(self.dropped),
        }


def main_period_starts(frame: pd.DataFrame, min_share: float = 0.1) -> list[pd.Timestamp]:
    """Period starts shared by at least `min_share` of the most common start's rows, ascending."""
    counts = pd.to_datetime(frame["period_start"]).value_counts()
    keep = counts[counts >= min_share * counts.max()]
    return sorted(pd.Timestamp(t) for t in keep.index)


def time_split(frame: pd.DataFrame, n_test: int = 1, n_valid: int = 1) -> TimeSplit:
    """Split snapshot rows by quota period at the main period starts (see module docstring)."""
    ends = pd.to_datetime(frame["period_end"])
    starts = pd.to_datetime(frame["period_start"])
    cuts = main_period_starts(frame)
    need = n_test + n_valid + 1
    if len(cuts) < need:
        raise UserError(
            f"training needs at least {need} finished quota periods ({n_test} to test on, {n_valid} to tune and "
            f"calibrate on, at least 1 to train on); the data has {len(cuts)}. Export more history "
            "(older quotas and their deals), or wait for more periods to finish"
        )
    test_start = cuts[-n_test]
    valid_start = cuts[-(n_test + n_valid)]
    test = (starts >= test_start).to_numpy()
    valid = ((starts >= valid_start) & (ends < test_start)).to_numpy()
    train = (ends < valid_start).to_numpy()
    if not valid.any() or not train.any():
        raise UserError(
            "quota periods overlap the split dates so much that no period fits before them: check the "
            "quotas table (a rep's periods must not overlap), or export more history"
        )
    dropped = int(len(frame) - train.sum() - valid.sum() - test.sum())

    def distinct(mask):
        return [pd.Timestamp(e) for e in sorted(ends[mask].unique())]

    return TimeSplit(
        train,
        valid,
        test,
        distinct(train),
        distinct(valid),
        distinct(test),
        pd.Timestamp(valid_start),
        pd.Timestamp(test_start),
        dropped,
    )


def check_outcomes(frame: pd.DataFrame, split: TimeSplit, min_misses: int, label: str = "missed") -> None:
    """Each split needs at least `min_misses` missed and as many met rep-periods."""
    for name, mask in (("training", split.train), ("validation", split.valid), ("held-out", split.test)):
        periods = frame.loc[mask, ["rep_id", "period_start", label]].drop_duplicates(
            ["rep_id", "period_start"]
        )
        missed = int(periods[label].astype(bool).sum())
        met = int(len(periods) - missed)
        if missed < min_misses or met < min_misses:
            window = split.window(mask, frame)
            raise UserError(
                f"the {name} periods ({window}) have {missed} missed and {met} met rep-periods; training needs "
                f"at least {min_misses} of each to learn and measure anything. Export more reps or more "
                "history, check the quotas and the miss threshold (REPRADAR_MISS_THRESHOLD), or lower "
                "REPRADAR_MIN_MISSES"
            )
