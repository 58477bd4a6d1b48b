"""Quota versus rep: how much of a row's risk comes from the target rather than the rep's behaviour.

The risk-raising (positive) group contributions are split into the quota side (the `quota` group:
quota size against the rep's history and the segment; more groups can be named in the playbook's
`quota_groups`) and the rep side (every other actionable group: pipeline, conversion, activity ...).
Context groups (attainment so far, tenure, calendar, unknown metrics) count on neither side: they
are the result or circumstances, not a cause. `quota_share` = quota side / (quota side + rep side);
0 when nothing raises the risk. A high share means "review the target (`smart_goals`) before
judging the rep".

When the quota side cannot vary (`quota_varies`: the model has no quota-group feature, or never
splits on one because the training data gave every rep the same quota policy), there is no split
to report: "0% from the quota, 100% from the rep" would read as a verdict on the rep.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _sides(group_contrib: pd.DataFrame, quota_groups, actionable) -> tuple[np.ndarray, np.ndarray]:
    """(quota side, rep side): sums of the positive contributions of each side's groups."""
    from models.drivers import group_actionable

    quota_groups = set(quota_groups)
    cols = list(group_contrib.columns)
    act = {g: (actionable or {}).get(g, group_actionable(g)) for g in cols}
    q_cols = [g for g in cols if g in quota_groups]
    r_cols = [g for g in cols if g not in quota_groups and act[g]]
    pos = group_contrib.clip(lower=0.0).fillna(0.0)
    q = pos[q_cols].sum(axis=1).to_numpy(dtype=float) if q_cols else np.zeros(len(pos))
    r = pos[r_cols].sum(axis=1).to_numpy(dtype=float) if r_cols else np.zeros(len(pos))
    return q, r


def quota_shares(
    group_contrib: pd.DataFrame,
    *,
    quota_groups=("quota",),
    actionable: dict[str, bool] | None = None,
) -> np.ndarray:
    """Per row, the quota side's share of the positive contributions of quota + rep-side groups (0..1)."""
    q, r = _sides(group_contrib, quota_groups, actionable)
    tot = q + r
    return np.where(tot > 0, q / np.where(tot > 0, tot, 1.0), 0.0)


def split_frame(group_contrib: pd.DataFrame, *, quota_groups=("quota",)) -> pd.DataFrame:
    """`quota_share` and `rep_share` per row (both 0 when neither side raises the risk)."""
    q, r = _sides(group_contrib, quota_groups, None)
    tot = np.where(q + r > 0, q + r, 1.0)
    return pd.DataFrame({"quota_share": q / tot, "rep_share": r / tot}, index=group_contrib.index)


def quota_varies(group_contrib: pd.DataFrame, *, quota_groups=("quota",)) -> bool:
    """Whether the model weighs the quota side at all: some quota-group contribution in the batch is not
    zero. TreeSHAP gives exactly 0 to a feature no tree splits on (constant in training, or absent)."""
    cols = [g for g in group_contrib.columns if g in set(quota_groups)]
    if not cols:
        return False
    return bool((group_contrib[cols].fillna(0.0).to_numpy() != 0.0).any())
