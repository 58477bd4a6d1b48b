"""The pace: attainment to date against the share of the period elapsed, what a manager sees by eye.

One definition for the pacing baseline every training run fits (training/baselines.py) and for the
report's track record of earlier lists (reporting/track_record.py), from the columns a features frame
and a scores file both have (period_start, period_end, as_of, attainment_to_date).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def elapsed_share(frame: pd.DataFrame) -> np.ndarray:
    """Share of the period elapsed before the as-of day: days before as_of / days in the period."""
    start = pd.to_datetime(frame["period_start"])
    end = pd.to_datetime(frame["period_end"])
    as_of = pd.to_datetime(frame["as_of"])
    days = (end - start).dt.days.to_numpy() + 1
    done = (as_of - start).dt.days.to_numpy()
    return np.clip(done / days, 0.0, 1.0)


def pace_gap(frame: pd.DataFrame) -> np.ndarray:
    """attainment_to_date minus elapsed share: below 0 means behind a straight-line pace."""
    att = pd.to_numeric(frame["attainment_to_date"], errors="coerce").fillna(0.0).to_numpy(dtype=float)
    return att - elapsed_share(frame)
