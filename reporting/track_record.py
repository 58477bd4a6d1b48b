"""Track record: how the scores given out earlier turned out, once their periods finished.

`repradar report --earlier FILE` (repeatable) takes scores files written earlier by `repradar score`
(last quarter's week-3 list, say) and sets each rep's risk against what happened: whether the rep
missed the period's target (the training label, `reporting.fairness.finished_outcomes`: the periods
the data cover as known on the report's as-of day). Per earlier as-of day: how well the risks ranked
the reps who went on to miss (ROC-AUC, with a bootstrap interval over reps) next to the pacing rule
on the same rows (attainment to date against the share of the period elapsed: what a manager sees
by eye), the Brier score, the mean risk against the realised miss rate and the calibration error
(ECE, with the risk bins behind it: did 70% mean 70%?), and the high band's hits:
the share of it that missed (precision) and the share of the misses it held (recall), with Wilson
intervals. These are the figures a model card gives for a held-out period, here for the lists
managers actually received, so HR can check the system against what it said.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from models.i18n import Message

KEY = ["rep_id", "period_start", "period_end"]
REQUIRED = ["rep_id", "period_start", "period_end", "as_of", "risk", "risk_band", "attainment_to_date"]
MIN_REPS = 20  # fewer reps with an outcome: the row is shown, its AUC and intervals are not
MIN_EACH = 5  # fewest misses (and met targets) for an AUC


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC-AUC by ranks (ties shared), NaN without both outcomes (pure)."""
    y = np.asarray(y, dtype=bool)
    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0:
        return float("nan")
    ranks = pd.Series(np.asarray(score, dtype=float)).rank(method="average").to_numpy()
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * neg))


def auc_interval(
    y: np.ndarray, score: np.ndarray, *, alpha: float = 0.05, n_boot: int = 400, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the AUC, resampling reps (one row each here)."""
    y, score = np.asarray(y, dtype=bool), np.asarray(score, dtype=float)
    rng = np.random.default_rng(seed)
    n = len(y)
    draws = []
    for _ in range(n_boot):
        i = rng.integers(0, n, n)
        a = auc(y[i], score[i])
        if not np.isnan(a):
            draws.append(a)
    if len(draws) < n_boot // 2:
        return float("nan"), float("nan")
    lo, hi = np.quantile(draws, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


@dataclass
class TrackRecord:
    table: pd.DataFrame  # one row per earlier as-of day (and model version)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        t = self.table.replace({np.nan: None})
        for c in ("as_of", "period_start", "period_end"):
            if c in t:
                t[c] = t[c].astype(str)
        return {"table": t.to_dict("records"), "notes": self.notes}

    def summary_lines(self) -> list[str]:
        """One line per earlier as-of day for the command line."""
        out = []
        for r in self.table.to_dict("records"):
            head = f"as of {r['as_of']} (model version {r['model_version']}): {r['n_known']} reps with an outcome"
            if r["n_known"] == 0:
                out.append(head + ", none finished yet")
                continue
            parts = [head, f"{r['missed_share']:.0%} missed"]
            if not np.isnan(r["auc"]):
                parts.append(f"ROC-AUC {r['auc']:.2f} against {r['pacing_auc']:.2f} for the pace")
            parts.append(f"calibration error (ECE) {r['ece']:.3f}")
            if r["n_high"]:
                parts.append(
                    f"{r['precision']:.0%} of the {r['n_high']} in the high band missed; "
                    f"the high band held {r['recall']:.0%} of the {r['n_missed']} who missed"
                )
            out.append("; ".join(parts))
        return out


def check_earlier(frame: pd.DataFrame, name: str, as_of) -> None:
    """Refuse an earlier scores file that cannot be set against outcomes: columns missing, a risk that is
    no probability, a band or a day that is not one (naming the rows), or scored on or after the
    report's as-of day (its periods cannot have finished by then)."""
    from repradar.errors import UserError

    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise UserError(
            f"--earlier {name}: the scores file lacks column(s) {', '.join(missing)}: "
            "pass a file written by `repradar score`"
        )
    problems = []
    risk = pd.to_numeric(frame["risk"], errors="coerce")
    for column, bad, rule in (
        ("risk", ~risk.between(0, 1), "a probability between 0 and 1"),
        ("risk_band", ~frame["risk_band"].isin(["high", "medium", "low"]), "one of high, medium, low"),
        *(
            (c, pd.to_datetime(frame[c], errors="coerce").isna(), "a date")
            for c in ("period_start", "period_end", "as_of")
        ),
    ):
        if bad.any():
            rows = [int(i) + 2 for i in np.flatnonzero(bad.to_numpy())]  # as a spreadsheet numbers them
            reps = frame.loc[bad, "rep_id"].astype(str).tolist()
            more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
            problems.append(
                f"column {column} must be {rule}: row(s) {', '.join(map(str, rows[:5]))}{more} "
                f"(rep(s) {', '.join(reps[:5])})"
            )
    if problems:
        raise UserError(f"--earlier {name}: " + "; ".join(problems))
    days = pd.to_datetime(frame["as_of"]).dropna()
    late = days[days >= pd.Timestamp(as_of)]
    if len(late):
        raise UserError(
            f"--earlier {name}: scored as of {late.max().date()}, not before the report's as-of day "
            f"{pd.Timestamp(as_of).date()}: an earlier list is one given out before it (the report's own "
            "scores are --scores)"
        )


def _joined(earlier: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    """The earlier scores with their period's outcome (`missed`, NaN while unknown) and the pace."""
    from models.pace import pace_gap

    e = earlier.copy()
    for c in ("period_start", "period_end", "as_of"):
        e[c] = pd.to_datetime(e[c]).dt.normalize()
    e["rep_id"] = e["rep_id"].astype(str)
    o = outcomes[KEY + ["missed"]].copy()
    o["rep_id"] = o["rep_id"].astype(str)
    for c in ("period_start", "period_end"):
        o[c] = pd.to_datetime(o[c]).dt.normalize()
    m = e.merge(o.drop_duplicates(KEY), on=KEY, how="left")
    m["pace"] = -pace_gap(m)  # behind the pace: higher risk
    return m


def given_rows(earlier: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    """The rows of the earlier lists whose outcome is known (rep_id, risk, high: the band as given,
    missed): what the fairness audit sets per group against what happened (reporting.fairness)."""
    m = _joined(earlier, outcomes)
    m = m[m["missed"].notna()]
    return pd.DataFrame(
        {
            "rep_id": m["rep_id"].to_numpy(),
            "risk": m["risk"].to_numpy(dtype=float),
            "high": (m["risk_band"].astype(str) == "high").to_numpy(),
            "missed": m["missed"].astype(bool).to_numpy(),
        }
    )


def track_record(
    earlier: pd.DataFrame,
    outcomes: pd.DataFrame,
    *,
    alpha: float = 0.05,
    n_boot: int = 400,
    seed: int = 0,
) -> TrackRecord:
    """Per earlier as-of day (and model version): the scores set against the finished periods'
    outcomes (`finished_outcomes`'s frame: rep_id, period_start, period_end, missed). A score whose
    period has no outcome (not finished, or not covered by the data, on the report's as-of day) is
    counted in `n_pending` and not judged. The high band is the one each score was given
    (`risk_band`), as the manager saw it. Pure."""
    from models.metrics import ece, risk_bins
    from reporting.fairness import wilson_interval

    notes: list[str] = []
    m = _joined(earlier, outcomes)
    if "model_version" not in m:
        m["model_version"] = None
    rows = []
    for (as_of, version), g in m.groupby(["as_of", m["model_version"].astype(str)], sort=True):
        known = g[g["missed"].notna()]
        y = known["missed"].astype(bool).to_numpy()
        risk = known["risk"].to_numpy(dtype=float)
        n, n_missed = len(known), int(y.sum())
        high = (known["risk_band"].astype(str) == "high").to_numpy()
        n_high, hits = int(high.sum()), int((high & y).sum())
        enough = n >= MIN_REPS and n_missed >= MIN_EACH and (n - n_missed) >= MIN_EACH
        a = auc(y, risk) if enough else float("nan")
        lo, hi = auc_interval(y, risk, alpha=alpha, n_boot=n_boot, seed=seed) if enough else (np.nan,) * 2
        p_lo, p_hi = wilson_interval(hits, n_high, alpha) if n_high else (np.nan, np.nan)
        r_lo, r_hi = wilson_interval(hits, n_missed, alpha) if n_missed else (np.nan, np.nan)
        periods = g[["period_start", "period_end"]].drop_duplicates()
        rows.append(
            {
                "as_of": as_of.date(),
                "model_version": version,
                "period_start": periods["period_start"].min().date(),
                "period_end": periods["period_end"].max().date(),
                "n_scored": len(g),
                "n_known": n,
                "n_pending": len(g) - n,
                "n_missed": n_missed,
                "missed_share": n_missed / n if n else np.nan,
                "mean_risk": float(risk.mean()) if n else np.nan,
                "brier": float(np.mean((risk - y) ** 2)) if n else np.nan,
                # calibration on the list as given: the training run's ECE (10 equal-width risk bins)
                "ece": ece(y, risk) if n else np.nan,
                "bins": risk_bins(y, risk) if n else [],
                "auc": a,
                "auc_low": lo,
                "auc_high": hi,
                "pacing_auc": auc(y, known["pace"].to_numpy(dtype=float)) if enough else float("nan"),
                "n_high": n_high,
                "high_missed": hits,
                "precision": hits / n_high if n_high else np.nan,
                "precision_low": p_lo,
                "precision_high": p_hi,
                "recall": hits / n_missed if n_missed else np.nan,
                "recall_low": r_lo,
                "recall_high": r_hi,
                "enough": enough,
            }
        )
        if len(g) > n:
            notes.append(
                Message(
                    "report.track.pending",
                    as_of=str(as_of.date()),
                    n=len(g) - n,
                    total=len(g),
                )
            )
        if n and not enough:
            notes.append(
                Message("report.track.too_few", as_of=str(as_of.date()), min=MIN_REPS, each=MIN_EACH)
            )
    return TrackRecord(pd.DataFrame(rows), notes)


def listed_outcomes(outcomes: pd.DataFrame, lists) -> pd.DataFrame:
    """The outcomes (rep_id, period_start, period_end, attainment, missed) of the rep-periods the scores
    frames `lists` hold, those with a label only: how each listed rep's period ended, and nobody else's."""
    cols = ["rep_id", "period_start", "period_end", "attainment", "missed"]
    keys = ["rep_id", "period_start"]
    listed = pd.concat([pd.DataFrame(f)[keys] for f in lists] or [pd.DataFrame(columns=keys)])
    listed = listed.astype({"rep_id": "string"}).assign(period_start=pd.to_datetime(listed["period_start"]))
    known = outcomes.astype({"rep_id": "string"}).assign(
        period_start=pd.to_datetime(outcomes["period_start"])
    )
    known = known[known["missed"].notna()]  # no label (no quota to miss): nothing to say
    return known.merge(listed.drop_duplicates(), on=keys)[cols].reset_index(drop=True)


def outcomes_known_on(tables, as_of, *, since, miss_threshold: float = 1.0, notes: list | None = None):
    """The outcomes of the periods that ended between `since` and `as_of` and that the data cover, as an
    export taken on `as_of` holds them (`features.pit.truncate_at` when the folder runs past it; the
    report's own rule): what a batch job as of `as_of` may judge earlier lists by."""
    from features.build import default_reference_day
    from features.pit import truncate_at
    from features.staging import day_number, latest_data_day
    from reporting.fairness import finished_outcomes

    day = pd.Timestamp(as_of).date()
    first = pd.Timestamp(since).date()
    covered = default_reference_day(tables)  # from every table: what the export covers
    # the outcome reads deals, their history, quotas and reps only (features.build.period_outcomes);
    # cutting activities and engagement at the day cost seconds on a large export for nothing
    lean = tables.replace(activities=None, engagement=None, interventions=None)
    latest = latest_data_day(lean)
    known = truncate_at(lean, day) if latest is not None and latest >= day_number(day) else lean
    return finished_outcomes(
        known,
        day,
        miss_threshold=miss_threshold,
        lookback_days=max((day - first).days + 1, 1),
        notes=notes,
        covered_before=covered,  # what the folder covers, before the cut (as the report reads it)
    )
