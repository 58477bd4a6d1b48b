"""Drift: population stability index (PSI) per feature, training set vs the scored snapshot.

The training run logs a binned summary of its training feature frame (`reference_summary`,
artifact `drift/reference.json`): per feature, quantile edges of the training values and, per
(period, week of period), the counts in each bin, the missing count and the sum. Scoring happens
on one day of a period, so the scored rows are compared with training rows from the same week of
the period (`week_window` 0, the default; more widens it to neighbouring weeks): risk features
such as attainment to date move through every period, and pooling weeks compares a week-4
snapshot with a mixture of weeks 3 to 5 (in week 1 every rep has won nothing yet, in week 2 many
have), which looks drifted though nothing changed. And from the same season when training holds it
(`same_season`: periods that start within a week of the same day of the year, last years' first
quarters for this year's): a holiday dip every January is not drift for a model trained on earlier Januaries.

Not compared, by design: calendar features (the scored day is one point of one quarter), features
that are a compared feature minus a calendar one (`CALENDAR_DERIVED`: `pace_gap` is
`attainment_to_date - elapsed_share`; the reps with nothing won sit on one value, minus the share
of the period elapsed, which differs by day and by the quarter's length, -21/90, -21/91, -21/92,
so a quantile edge between those values puts a whole week's mass in a bin the scored day can never
reach; the non-calendar part, attainment to date, is compared), peer columns (segment medians: one
value per segment and day), and features listed in the settings (`history_days` grows with the
span of the export). The earliest training period is left out of
the reference when training had more than one: features that look back over the rep's history
(quota vs own history, days since leave) are cut short there by the start of the export, not by
the world.

PSI = sum over bins (a - e) * ln(a / e), with a, e the scored and training shares of the
non-missing values (each bin count + 0.5, so empty bins stay finite). A feature whose values are
missing more often than in training by `missing_shift` or more is drifted too (a broken export).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from models.i18n import Items, Message

PEER_PREFIX = "peer__"
CALENDAR_FEATURES = ("elapsed_share", "quarter_of_year")
# feature -> the compared feature it is, net of the calendar (see the module's docstring)
CALENDAR_DERIVED = {"pace_gap": "attainment_to_date"}
SUMMARY_VERSION = 1


def _values(s: pd.Series) -> np.ndarray:
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def quantile_edges(values: np.ndarray, bins: int) -> np.ndarray:
    """Interior cut points at the training quantiles (duplicates removed, so ties share a bin)."""
    v = values[np.isfinite(values)]
    if len(v) == 0:
        return np.array([], dtype=float)
    qs = np.quantile(v, np.linspace(0, 1, bins + 1)[1:-1])
    return np.unique(qs)


def bin_counts(values: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, int]:
    """(counts per bin, missing count); bins are (-inf, e1], (e1, e2], ..., (ek, inf)."""
    values = np.asarray(values, dtype=float)
    miss = ~np.isfinite(values)
    idx = np.searchsorted(edges, values[~miss], side="left")
    return np.bincount(idx, minlength=len(edges) + 1).astype(np.int64), int(miss.sum())


def psi(expected: np.ndarray, actual: np.ndarray, smoothing: float = 0.5) -> float:
    """Population stability index of `actual` counts against `expected` counts (same bins)."""
    e = np.asarray(expected, dtype=float) + smoothing
    a = np.asarray(actual, dtype=float) + smoothing
    if e.sum() <= smoothing * len(e) or a.sum() <= smoothing * len(a):
        return float("nan")  # one side has no values at all
    e, a = e / e.sum(), a / a.sum()
    return float(np.sum((a - e) * np.log(a / e)))


def drift_candidates(names) -> list[str]:
    """Features the summary keeps: no peer columns, no calendar features or features derived from them."""
    return [
        n
        for n in names
        if not n.startswith(PEER_PREFIX) and n not in CALENDAR_FEATURES and n not in CALENDAR_DERIVED
    ]


def reference_summary(frame: pd.DataFrame, names, *, bins: int = 10) -> dict:
    """Binned summary of a training feature frame (KEY + week_of_period + features), JSON-ready."""
    keep = [n for n in drift_candidates(names) if n in frame.columns]
    ps = pd.to_datetime(frame["period_start"]).dt.strftime("%Y-%m-%d").to_numpy()
    week = frame["week_of_period"].to_numpy(dtype=int)
    cells = sorted(set(zip(ps.tolist(), week.tolist(), strict=True)))
    cell_index = {c: i for i, c in enumerate(cells)}
    row_cell = np.array(
        [cell_index[(p, w)] for p, w in zip(ps.tolist(), week.tolist(), strict=True)], dtype=int
    )
    n_cells = len(cells)
    feats = {}
    for name in keep:
        v = _values(frame[name])
        edges = quantile_edges(v, bins)
        fin = np.isfinite(v)
        idx = np.searchsorted(edges, v[fin], side="left")
        counts = np.zeros((n_cells, len(edges) + 1), dtype=np.int64)
        np.add.at(counts, (row_cell[fin], idx), 1)
        missing = np.bincount(row_cell[~fin], minlength=n_cells)
        sums = np.bincount(row_cell[fin], weights=v[fin], minlength=n_cells)
        feats[name] = {
            "edges": [float(x) for x in edges],
            "counts": counts.tolist(),
            "missing": missing.astype(int).tolist(),
            "sums": [float(x) for x in sums],
        }
    return {
        "version": SUMMARY_VERSION,
        "bins": bins,
        "n_rows": int(len(frame)),
        "cells": [[p, int(w)] for p, w in cells],
        "features": feats,
    }


@dataclass
class DriftResult:
    table: (
        pd.DataFrame
    )  # feature, psi, missing_train, missing_scored, mean_train, mean_scored, n_train, n_scored, status
    threshold: float
    watch: float
    drifted: list[str]
    retrain_advised: bool
    share_on_drifted: float | None  # share of scores whose first drivers include a drifted feature
    reference_periods: list[str] = field(default_factory=list)
    reference_weeks: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def top(self, n: int = 10) -> pd.DataFrame:
        return self.table.head(n)

    def summary_line(self, n: int = 5) -> str:
        """One line for the command line: the advice, and the drifted features by label with their PSI."""
        from reporting.labels import feature_label

        if not self.retrain_advised:
            return f"no feature beyond PSI {self.threshold:g}"
        t = self.table.set_index("feature")
        shown = []
        for f in self.drifted[:n]:
            v = t.at[f, "psi"]
            why = f"PSI {v:.2f}" if v > self.threshold else "more often missing than in training"
            shown.append(f"{feature_label(f)} ({f}, {why})")
        more = len(self.drifted) - len(shown)
        return "retrain advised; " + "; ".join(shown) + (f"; {more} more in the report" if more else "")

    def to_dict(self) -> dict:
        t = self.table.replace({np.nan: None})
        return {
            "threshold": self.threshold,
            "retrain_advised": self.retrain_advised,
            "drifted": self.drifted,
            "share_on_drifted": self.share_on_drifted,
            "reference_periods": self.reference_periods,
            "reference_weeks": self.reference_weeks,
            "notes": self.notes,
            "table": t.to_dict("records"),
        }


SEASON_DAYS = 7  # periods starting this close to the same day of the year are the same season


def _day_of_year(period_start) -> int:
    """A period's start as a day of a 365-day year (29 February as the 28th): leap years shift nothing."""
    t = pd.Timestamp(period_start)
    return pd.Timestamp(2001, t.month, min(t.day, 28) if t.month == 2 else t.day).day_of_year


def same_season(periods: list[str], scored_starts, days: int = SEASON_DAYS) -> list[str]:
    """The reference periods that start within `days` of the same day of the year as a scored period
    (last year's first quarter for this year's; a 4-4-5 fiscal quarter that starts on a Monday a few
    days apart from year to year), or [] when none does (pure)."""
    scored = [_day_of_year(p) for p in scored_starts if not pd.isna(p)]

    def near(p) -> bool:
        d = _day_of_year(p)
        return any(min(abs(d - x), 365 - abs(d - x)) <= days for x in scored)

    return [p for p in periods if near(p)]


def _reference_cells(
    summary: dict,
    scored_weeks: dict[int, float],
    week_window: int,
    drop_first_period: bool,
    scored_starts=None,
):
    """The reference cells compared with each scored week, the periods they come from, and whether
    those are the scored periods' season (None: not asked or no scored period known)."""
    cells = [(str(p), int(w)) for p, w in summary["cells"]]
    periods = sorted({p for p, _ in cells})
    if drop_first_period and len(periods) > 1:
        periods = periods[1:]
    seasonal = None
    if scored_starts is not None and len(scored_starts):
        season = same_season(periods, scored_starts)
        seasonal = bool(season)
        periods = season or periods
    chosen = {}
    for w, share in scored_weeks.items():
        idx = [i for i, (p, cw) in enumerate(cells) if p in periods and abs(cw - w) <= week_window]
        if not idx:  # a week training never saw (a longer period): use the nearest weeks
            dist = [abs(cw - w) for p, cw in cells if p in periods]
            if not dist:
                continue
            near = min(dist)
            idx = [i for i, (p, cw) in enumerate(cells) if p in periods and abs(cw - w) == near]
        chosen[w] = (idx, share)
    return chosen, periods, seasonal


def drift_report(
    summary: dict,
    scored: pd.DataFrame,
    *,
    threshold: float = 0.2,
    watch: float = 0.1,
    missing_shift: float = 0.2,
    week_window: int = 0,
    exclude=("history_days",),
    drop_first_period: bool = True,
    drivers=None,
    driver_depth: int = 3,
    seasonal: bool = True,
) -> DriftResult:
    """PSI per feature of the `scored` snapshot frame against the training `summary`.

    `drivers`: the scores' driver lists (each a list of {"feature", ...}), to say how many scores
    rest on drifted features. `seasonal`: compare with the training periods of the scored period's
    season (a start within a week of the same day of the year) when training has one, else with every
    training period.
    """
    notes = []
    if "week_of_period" in scored.columns:
        weeks = scored["week_of_period"].astype(int).value_counts(normalize=True).to_dict()
    else:
        weeks = {}
        notes.append(Message("report.note.drift_no_week"))
    starts = None
    if seasonal and "period_start" in scored.columns:
        starts = pd.to_datetime(scored["period_start"]).dropna().unique()
    if weeks:
        chosen, periods, in_season = _reference_cells(summary, weeks, week_window, drop_first_period, starts)
        if in_season:
            notes.append(Message("report.note.drift_same_season", periods=Items(periods)))
        elif in_season is False:
            notes.append(Message("report.note.drift_other_seasons"))
    else:
        periods = sorted({str(p) for p, _ in summary["cells"]})
        chosen = {0: (list(range(len(summary["cells"]))), 1.0)}
    rows = []
    for name, f in summary["features"].items():  # CALENDAR_DERIVED: still in references logged before
        if name in exclude or name in CALENDAR_DERIVED or name not in scored.columns:
            continue
        edges = np.asarray(f["edges"], dtype=float)
        counts = np.asarray(f["counts"], dtype=float)
        missing = np.asarray(f["missing"], dtype=float)
        sums = np.asarray(f["sums"], dtype=float)
        # expected bin shares: the training weeks matching each scored week, weighted by its share
        exp = np.zeros(counts.shape[1])
        n_ref = n_values = miss_ref = sum_ref = 0.0
        for idx, share in chosen.values():
            c = counts[idx].sum(axis=0)
            tot = c.sum()
            if tot > 0:
                exp += share * c / tot
            n_values += tot
            n_ref += tot + missing[idx].sum()
            miss_ref += share * (missing[idx].sum() / max(tot + missing[idx].sum(), 1))
            sum_ref += share * (sums[idx].sum() / tot if tot > 0 else np.nan)
        v = _values(scored[name])
        act, miss_act = bin_counts(v, edges)
        n_sc = len(v)
        # expected counts: the matching training weeks' shares, at the reference's size
        value = psi(exp * n_values, act) if act.sum() and exp.sum() else float("nan")
        miss_sc = miss_act / n_sc if n_sc else float("nan")
        fin = v[np.isfinite(v)]
        rows.append(
            {
                "feature": name,
                "psi": value,
                "missing_train": float(miss_ref),
                "missing_scored": float(miss_sc),
                "mean_train": float(sum_ref),
                "mean_scored": float(fin.mean()) if len(fin) else float("nan"),
                "n_train": int(n_ref),
                "n_scored": int(n_sc),
            }
        )
    t = pd.DataFrame(
        rows,
        columns=[
            "feature",
            "psi",
            "missing_train",
            "missing_scored",
            "mean_train",
            "mean_scored",
            "n_train",
            "n_scored",
        ],
    )
    more_missing = (t["missing_scored"] - t["missing_train"]) >= missing_shift
    status = np.where(
        (t["psi"] > threshold) | more_missing, "drifted", np.where(t["psi"] > watch, "watch", "stable")
    )
    t["status"] = status
    t["more_missing"] = more_missing
    t = t.sort_values(["psi"], ascending=False, na_position="last", kind="stable").reset_index(drop=True)
    drifted = t.loc[t["status"] == "drifted", "feature"].tolist()
    share = None
    if drivers is not None:
        share = share_on_drifted(drivers, drifted, depth=driver_depth)
    if drop_first_period and len({str(p) for p, _ in summary["cells"]}) > 1:
        notes.append(Message("report.note.drift_first_period"))
    return DriftResult(
        table=t,
        threshold=threshold,
        watch=watch,
        drifted=drifted,
        retrain_advised=bool(drifted),
        share_on_drifted=share,
        reference_periods=list(periods),
        reference_weeks=sorted(int(w) for w in weeks) if weeks else [],
        notes=notes,
    )


def _base(name: str) -> str:
    return name[len(PEER_PREFIX) :] if name.startswith(PEER_PREFIX) else name


def share_on_drifted(drivers, drifted, depth: int = 3) -> float | None:
    """Share of scores whose first `depth` drivers include a drifted feature (or its peer column)."""
    drifted = set(drifted)
    n = hit = 0
    for lst in drivers:
        n += 1
        feats = [_base(str(d.get("feature"))) for d in list(lst or [])[:depth] if isinstance(d, dict)]
        if any(f in drifted for f in feats):
            hit += 1
    return None if n == 0 else hit / n


def psi_of_values(expected_values, actual_values, bins: int = 10) -> float:
    """PSI of two samples with quantile bins of the first (for tests and ad-hoc checks)."""
    e = np.asarray(expected_values, dtype=float)
    a = np.asarray(actual_values, dtype=float)
    edges = quantile_edges(e, bins)
    ce, _ = bin_counts(e, edges)
    ca, _ = bin_counts(a, edges)
    return psi(ce, ca)


def describe_threshold(threshold: float) -> str:
    return f"PSI > {threshold:g}: retrain advised" if math.isfinite(threshold) else "no threshold"
