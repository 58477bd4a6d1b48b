"""What interventions achieved: reps who received one against comparable reps who did not.

Observational, not an experiment: managers chose whom to help. Each treated rep is compared with
reps of the same segment, in the same period, on the same weekly snapshot day (the last one on or
before the intervention started), whose model risk that day was closest (the `k` nearest within
a caliper), and who had received no intervention that period by that day (risk-set matching: a
rep helped later in the period was still a comparable rep then; excluding them would compare the
treated with reps known, in hindsight, to have stayed fine), other than the treated rep itself. Outcomes: the period's attainment, whether
the rep missed, and the change in model risk over the next `horizon_days`.

Matching on risk alone leaves the treated and their matches apart on what the snapshot shows
(managers do not pick reps by the model's risk: the treated have less open pipeline and a better
last period than their matches, for example). So each matched difference is **bias-corrected**
(Abadie & Imbens 2011, "Bias-corrected matching estimators for average treatment effects"):
minus beta . (x_treated - mean x_matches), where x are the snapshot's covariates (the registry's
model features, open pipeline in the period per quota and the risk: all known on the snapshot
day) and beta is the slope of the outcome on them among the untreated, fitted by least squares
within (period, snapshot day, segment) cells (the differences are always within one cell). The
estimate per intervention type is the mean of the corrected differences over treated reps: the
effect on those who received it, if what the snapshot shows captures why they were chosen. The
interval is the normal approximation, mean +- z * se with se^2 = var(d) / n + dbar' V dbar: the
spread of the corrected differences plus the uncertainty of beta (V: its covariance, clustered by
rep; dbar: the type's mean covariate gap). Without covariates (or too few untreated snapshots to
fit them) it is the plain matched mean difference.

`match_effects` is pure (frames in, frames out); `snapshot_risks` builds its input from the
contract tables and a loaded model.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np
import pandas as pd

from models.i18n import Message

OUTCOMES = ("attainment", "missed", "risk_change")
OBSERVATIONAL_NOTE = Message("report.note.observational")
# Derived covariate (snapshot_risks adds it): open pipeline in the period per quota. `pipeline_coverage`
# is relative to the quota still to win and missing once it is met.
PIPELINE_PER_QUOTA = "pipeline_per_quota"
CLIP_QUANTILE = 0.01  # covariates are clipped to their [1%, 99%] range among the untreated (long tails)
ROWS_PER_COVARIATE = 10  # fewer untreated snapshots than this per covariate: no adjustment


@dataclass
class EffectsResult:
    table: pd.DataFrame  # per intervention: estimates, intervals, N
    pairs: pd.DataFrame  # per treated rep: its outcome, its matches' mean, the difference
    confidence: float
    min_reps: int
    notes: list[str] = field(default_factory=list)
    adjusted_for: list[str] = field(default_factory=list)  # covariates of the bias correction

    def to_dict(self) -> dict:
        """The JSON's figures. A type with fewer than `min_reps` matched reps keeps its N and the risk at
        start (as the HTML lists it) but no outcomes: not an estimate, and for a handful of reps the
        attainment and miss rate of people whom whoever knows who got the intervention can name."""
        t = self.table.astype(object).where(self.table.notna(), None)
        if len(t):
            hidden = [c for c in t.columns if c.startswith(OUTCOMES) and not c.endswith("_n")]
            t.loc[~self.table["enough"].astype(bool), hidden] = None
        return {
            "confidence": self.confidence,
            "min_reps": self.min_reps,
            "notes": self.notes,
            "adjusted_for": self.adjusted_for,
            "observational": OBSERVATIONAL_NOTE,
            "table": t.to_dict("records"),
        }


def normalise_interventions(log: pd.DataFrame) -> pd.DataFrame:
    """rep_id, intervention, started_on, ended_on (dates at midnight) from a contract table or the service's log."""
    df = log.copy()
    if "started_on" not in df.columns:
        for alt in ("start_date", "started_at", "date"):
            if alt in df.columns:
                df = df.rename(columns={alt: "started_on"})
                break
    missing = [c for c in ("rep_id", "intervention", "started_on") if c not in df.columns]
    if missing:
        raise ValueError(f"the intervention log lacks columns {missing}")
    out = pd.DataFrame(
        {
            "rep_id": df["rep_id"].astype(str).to_numpy(),
            "intervention": df["intervention"].astype(str).to_numpy(),
            "started_on": _day(df["started_on"]),
            "ended_on": _day(df["ended_on"]) if "ended_on" in df.columns else pd.NaT,
        }
    )
    return out.dropna(subset=["started_on"]).reset_index(drop=True)


def _day(s) -> pd.Series:
    s = pd.to_datetime(pd.Series(s), errors="coerce")
    if getattr(s.dt, "tz", None) is not None:
        s = s.dt.tz_convert("UTC").dt.tz_localize(None)
    return s.dt.normalize().astype("datetime64[ns]").reset_index(drop=True)


def treated_snapshots(snaps: pd.DataFrame, log: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Each intervention joined to its rep's last snapshot on or before the start, in the period holding it.

    Returns (treated rows, counts of interventions left out by reason). One row per rep, period
    and intervention type (a repeat within the period is the same treatment).
    """
    s = snaps[["rep_id", "period_start", "period_end", "as_of"]].copy()
    s["rep_id"] = s["rep_id"].astype(str)
    m = log.merge(s, on="rep_id", how="inner")
    inside = (
        (m["period_start"] <= m["started_on"])
        & (m["started_on"] <= m["period_end"])
        & (m["as_of"] <= m["started_on"])
    )
    m = m[inside]
    m = m.sort_values(["rep_id", "intervention", "started_on", "as_of"], kind="stable")
    m = m.groupby(["rep_id", "intervention", "started_on"], sort=False).tail(1)
    n_log = int(log.drop_duplicates(["rep_id", "intervention", "started_on"]).shape[0])
    n_mapped = int(len(m))
    m = m.groupby(["rep_id", "intervention", "period_start"], sort=False).head(1)
    left_out = {
        Message("report.note.effects_no_snapshot"): n_log - n_mapped,
        Message("report.note.effects_repeat"): n_mapped - int(len(m)),
    }
    return m.reset_index(drop=True), left_out


def treated_by(log: pd.DataFrame, snaps: pd.DataFrame) -> np.ndarray:
    """For each snapshot row: True when the rep already had an intervention that period by its as-of
    day, or one in force that day. Those rows cannot be controls; a rep helped only later in the
    period still can (risk-set matching: who was comparable *then*, not who stayed untreated)."""
    s = snaps[["rep_id", "period_start", "as_of"]].reset_index(drop=True).copy()
    s["rep_id"] = s["rep_id"].astype(str)
    s["row"] = np.arange(len(s))
    m = s.merge(log[["rep_id", "started_on", "ended_on"]], on="rep_id", how="inner")
    end = m["ended_on"].fillna(pd.Timestamp.max.normalize())
    in_force = (m["started_on"] <= m["as_of"]) & (end >= m["as_of"])
    earlier = (m["started_on"] >= m["period_start"]) & (m["started_on"] <= m["as_of"])
    out = np.zeros(len(s), dtype=bool)
    out[m.loc[in_force | earlier, "row"].to_numpy()] = True
    return out


def match_effects(
    snaps: pd.DataFrame,
    log: pd.DataFrame,
    *,
    k: int = 5,
    caliper: float = 0.1,
    horizon_days: int = 28,
    min_reps: int = 20,
    confidence: float = 0.95,
    adjust: Sequence[str] | None = None,
) -> EffectsResult:
    """Matched, bias-corrected estimates per intervention type (see the module docstring).

    `snaps`: weekly snapshots with rep_id, period_start, period_end, as_of, segment, risk,
    attainment, missed (attainment NaN for unfinished periods), and any snapshot covariates.
    `log`: normalise_interventions(). `adjust`: the covariates of the bias correction; None: those
    of `adjustment_columns` present in `snaps`, and the risk; empty: none (plain matching). The
    pairs hold each outcome's correction as `<outcome>_adjustment` (subtracted from the difference).
    """
    notes: list[str] = []
    covariates = adjustment_columns(snaps.columns) + ["risk"] if adjust is None else list(adjust)
    s = snaps.copy()
    s["rep_id"] = s["rep_id"].astype(str)
    s["segment"] = s["segment"].astype("string").fillna("(none)").astype(str)
    s["missed"] = pd.to_numeric(s["missed"].astype("Float64"), errors="coerce").astype(float)
    s = s.reset_index(drop=True)
    s["snap_row"] = np.arange(len(s))
    # risk `horizon_days` later in the same rep-period, for the risk-change outcome
    later = s[["rep_id", "period_start", "as_of", "risk"]].copy()
    later["as_of"] = later["as_of"] - pd.Timedelta(days=horizon_days)
    s = s.merge(
        later.rename(columns={"risk": "risk_later"}), on=["rep_id", "period_start", "as_of"], how="left"
    )
    s["risk_change"] = s["risk_later"] - s["risk"]
    s = s.sort_values("snap_row").reset_index(drop=True)  # row i is snapshot i (the merge kept all rows)

    treated, left_out = treated_snapshots(s, log)
    treated = treated.merge(
        s[
            [
                "rep_id",
                "period_start",
                "as_of",
                "segment",
                "risk",
                "attainment",
                "missed",
                "risk_change",
                "snap_row",
            ]
        ],
        on=["rep_id", "period_start", "as_of"],
        how="left",
    )
    unlabelled = treated["attainment"].isna()
    if unlabelled.any():
        left_out[Message("report.note.effects_unfinished")] = int(unlabelled.sum())
        treated = treated[~unlabelled]
    pool = s[~treated_by(log, s) & s["attainment"].notna()]
    cells = {key: g for key, g in pool.groupby(["period_start", "as_of", "segment"], sort=False)}

    rows, members = [], []
    unmatched = 0
    for t in treated.itertuples(index=False):
        g = cells.get((t.period_start, t.as_of, t.segment))
        if g is None or g.empty:
            unmatched += 1
            continue
        dist = np.abs(g["risk"].to_numpy() - t.risk)
        # the treated rep's own snapshot precedes its start, so it is in the pool: never its own match
        ok = np.flatnonzero((dist <= caliper) & (g["rep_id"].to_numpy() != t.rep_id))
        if len(ok) == 0:
            unmatched += 1
            continue
        pick = ok[np.argsort(dist[ok], kind="stable")[:k]]
        c = g.iloc[pick]
        members.append((int(t.snap_row), c["snap_row"].to_numpy()))
        rc = c["risk_change"].dropna()
        rows.append(
            {
                "rep_id": t.rep_id,
                "intervention": t.intervention,
                "period_start": t.period_start,
                "as_of": t.as_of,
                "started_on": t.started_on,
                "segment": t.segment,
                "risk": t.risk,
                "control_risk": float(c["risk"].mean()),
                "n_controls": int(len(c)),
                "attainment": t.attainment,
                "control_attainment": float(c["attainment"].mean()),
                "missed": t.missed,
                "control_missed": float(c["missed"].mean()),
                "risk_change": t.risk_change,
                "control_risk_change": float(rc.mean()) if len(rc) else float("nan"),
            }
        )
    if unmatched:
        left_out[Message("report.note.effects_unmatched", caliper=caliper)] = unmatched
    pairs = pd.DataFrame(rows)
    corrections: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    adjusted_for: list[str] = []
    if covariates and members:
        # the outcome model is fitted on the comparison pool less the treated reps' own snapshots (a
        # rep helped within the week is in the pool as a candidate for others, but its outcome holds the
        # effect: fitting on it would flatten the slopes by the very selection being corrected for)
        fit_rows = np.setdiff1d(pool.index.to_numpy(), treated["snap_row"].to_numpy())
        design = covariate_design(s, fit_rows, covariates)
        if design.shape[1] == 0:
            notes.append(Message("report.note.effects_not_adjusted"))
        else:
            cell = s.groupby(["period_start", "as_of", "segment"], sort=False).ngroup().to_numpy()
            x = design.to_numpy()
            for o in OUTCOMES:
                y = s[o].to_numpy(dtype=float)
                fit = bias_correction(x, y, fit_rows, cell, s["rep_id"].to_numpy())
                if fit is None:
                    continue
                beta, cov = fit
                # each pair's covariate gap: treated minus the mean of its matches with this outcome known
                gaps = np.full((len(members), x.shape[1]), np.nan)
                for i, (t_row, c_rows) in enumerate(members):
                    c_rows = c_rows[np.isfinite(y[c_rows])]
                    if len(c_rows):
                        gaps[i] = x[t_row] - x[c_rows].mean(axis=0)
                pairs[f"{o}_adjustment"] = gaps @ beta
                corrections[o] = (gaps, cov)
            if corrections:
                adjusted_for = list(design.columns)
            else:
                notes.append(Message("report.note.effects_too_few", n=design.shape[1]))
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    table = summarise(pairs, z=z, min_reps=min_reps, corrections=corrections)
    for reason, n in left_out.items():
        if n:
            notes.append(Message("report.note.effects_left_out", n=n, reason=reason))
    return EffectsResult(
        table=table,
        pairs=pairs,
        confidence=confidence,
        min_reps=min_reps,
        notes=notes,
        adjusted_for=adjusted_for,
    )


def adjustment_columns(columns) -> list[str]:
    """The snapshot covariates of the bias correction found in `columns`: the registry's model features
    (each computed from what was known before the snapshot day) and open pipeline in the period per quota."""
    from features.registry import FEATURES

    names = [f.name for f in FEATURES] + [PIPELINE_PER_QUOTA]
    present = set(columns)
    return [c for c in names if c in present]


def covariate_design(s: pd.DataFrame, fit_rows: np.ndarray, covariates: Sequence[str]) -> pd.DataFrame:
    """The covariates of every snapshot as the regression uses them, with bounds taken from the
    untreated `fit_rows`: clipped to their 1%-99% range, a missing value set to the median and
    flagged (`<name>__missing`, one flag per pattern), then standardised. Covariates constant within
    every cell (period, day, segment: calendar, a segment-wide quota) say nothing about a within-cell
    gap and are dropped."""
    cell = s.groupby(["period_start", "as_of", "segment"], sort=False).ngroup().to_numpy()
    cols: dict[str, np.ndarray] = {}
    flags: set[bytes] = set()
    for c in covariates:
        if c not in s.columns:
            continue
        x = pd.to_numeric(s[c], errors="coerce").astype(float).to_numpy()
        ref = x[fit_rows]
        ref = ref[np.isfinite(ref)]
        if len(ref) == 0:
            continue
        lo, hi = np.quantile(ref, [CLIP_QUANTILE, 1 - CLIP_QUANTILE])
        missing = ~np.isfinite(x)
        cols[c] = np.where(missing, float(np.median(ref)), np.clip(x, lo, hi))
        # one flag per pattern: the history features are all missing in a rep's first period
        if missing[fit_rows].any() and missing.tobytes() not in flags:
            flags.add(missing.tobytes())
            cols[f"{c}__missing"] = missing.astype(float)
    out = {}
    for c, x in cols.items():
        xf = x[fit_rows]
        within = xf - _cell_means(xf, cell[fit_rows])
        sd = float(within.std())
        if sd > 1e-9 * max(1.0, float(np.abs(xf).max())):
            out[c] = (x - xf.mean()) / sd
    return pd.DataFrame(out, index=s.index)


def _cell_means(x: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Each row's cell mean of `x` (a vector, or the columns of a matrix)."""
    return pd.DataFrame(x).groupby(cell, sort=False).transform("mean").to_numpy().reshape(x.shape)


def bias_correction(
    x: np.ndarray, y: np.ndarray, pool_rows: np.ndarray, cell: np.ndarray, rep: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """(beta, its covariance) of the outcome `y` on the covariates among the untreated `pool_rows`
    with a finite outcome, within cells (both sides minus their cell means: only within-cell gaps are
    ever corrected). The covariance is clustered by rep (a rep's snapshots share its outcome). None
    when there are fewer than ROWS_PER_COVARIATE rows per covariate."""
    rows = pool_rows[np.isfinite(y[pool_rows])]
    p = x.shape[1]
    if len(rows) < ROWS_PER_COVARIATE * max(p, 1) or len(np.unique(rep[rows])) < 2:
        return None
    X = x[rows]
    X = X - _cell_means(X, cell[rows])
    yy = y[rows] - _cell_means(y[rows], cell[rows])
    bread = np.linalg.pinv(X.T @ X, rcond=1e-10, hermitian=True)  # least squares; pinv: collinear columns
    beta = bread @ (X.T @ yy)
    resid = yy - X @ beta
    scores = pd.DataFrame(X * resid[:, None]).groupby(rep[rows], sort=False).sum().to_numpy()
    n_g = len(scores)
    cov = bread @ (scores.T @ scores) @ bread * n_g / (n_g - 1)
    return beta, cov


def mean_interval(d: np.ndarray, z: float, extra_var: float = 0.0) -> tuple[float, float, float, float]:
    """(mean, standard error, low, high) of the differences `d` (normal approximation); `extra_var` is
    added to the variance of the mean (the bias correction's own uncertainty)."""
    d = np.asarray(d, dtype=float)
    d = d[np.isfinite(d)]
    n = len(d)
    if n == 0:
        return (math.nan,) * 4
    m = float(d.mean())
    se = float(math.sqrt(d.var(ddof=1) / n + max(extra_var, 0.0))) if n > 1 else math.nan
    return m, se, m - z * se, m + z * se


def summarise(
    pairs: pd.DataFrame,
    *,
    z: float,
    min_reps: int,
    corrections: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> pd.DataFrame:
    """Per intervention type: N, mean outcomes of treated and matches, the (bias-corrected) difference
    and its interval, and the plain matched difference (`<outcome>_matched_only`).

    `corrections`: per outcome, (each pair's covariate gap, the covariance of beta); the pairs then
    hold `<outcome>_adjustment` (gap . beta), subtracted from each difference, and the interval adds
    the uncertainty of beta, dbar' V dbar, to the variance of the mean."""
    corrections = corrections or {}
    cols = ["intervention", "n_treated", "n_reps", "enough", "risk_treated", "risk_matched"]
    for o in OUTCOMES:
        cols += [f"{o}_treated", f"{o}_matched", f"{o}_effect", f"{o}_se", f"{o}_low", f"{o}_high", f"{o}_n"]
        cols += [f"{o}_matched_only"]
    if pairs.empty:
        return pd.DataFrame(columns=cols)
    out = []
    for iv, g in pairs.groupby("intervention", sort=True):
        row = {
            "intervention": iv,
            "n_treated": int(len(g)),
            "n_reps": int(g["rep_id"].nunique()),
            "enough": bool(len(g) >= min_reps),
            "risk_treated": float(g["risk"].mean()),
            "risk_matched": float(g["control_risk"].mean()),
        }
        for o in OUTCOMES:
            raw = (g[o].astype(float) - g[f"control_{o}"].astype(float)).to_numpy()
            d = raw
            extra = 0.0
            if o in corrections and f"{o}_adjustment" in g.columns:
                d = raw - g[f"{o}_adjustment"].to_numpy(dtype=float)
                gaps, cov = corrections[o]
                ok = np.isfinite(d)
                if ok.any():
                    dbar = gaps[g.index.to_numpy()[ok]].mean(axis=0)
                    extra = float(dbar @ cov @ dbar)
            m, se, lo, hi = mean_interval(d, z, extra_var=extra)
            ok = np.isfinite(d)
            row.update(
                {
                    f"{o}_treated": float(g.loc[ok, o].astype(float).mean()) if ok.any() else math.nan,
                    f"{o}_matched": float(g.loc[ok, f"control_{o}"].astype(float).mean())
                    if ok.any()
                    else math.nan,
                    f"{o}_effect": m,
                    f"{o}_se": se,
                    f"{o}_low": lo,
                    f"{o}_high": hi,
                    f"{o}_n": int(ok.sum()),
                    f"{o}_matched_only": float(np.nanmean(raw)) if np.isfinite(raw).any() else math.nan,
                }
            )
        out.append(row)
    t = pd.DataFrame(out, columns=cols)
    return t.sort_values(["enough", "n_treated", "intervention"], ascending=[False, False, True]).reset_index(
        drop=True
    )


# ---------------------------------------------------------------------------------------------
def needed_snapshots(
    tables, log: pd.DataFrame, *, every_days: int = 7, horizon_days: int = 28, reference_day=None
):
    """Weekly snapshots of finished periods that hold an intervention start, on the days the matching
    reads (the snapshot day before each start, and `horizon_days` after it), for every employed rep."""
    from features.build import default_reference_day, snapshot_frame

    ref = reference_day or default_reference_day(tables)
    snaps = snapshot_frame(tables, every_days=every_days, finished_before=ref)
    if snaps.empty or log.empty:
        return snaps.iloc[0:0]
    treated, _ = treated_snapshots(snaps, log)
    if treated.empty:
        return snaps.iloc[0:0]
    days = set(zip(treated["period_start"], treated["as_of"], strict=True))
    days |= {(p, a + pd.Timedelta(days=horizon_days)) for p, a in days}
    keep = np.array(
        [(p, a) in days for p, a in zip(snaps["period_start"], snaps["as_of"], strict=True)], dtype=bool
    )
    return snaps[keep].reset_index(drop=True)


def snapshot_risks(
    tables, model, log: pd.DataFrame, *, settings, horizon_days: int = 28, reference_day=None
) -> pd.DataFrame:
    """The matching's input: risk (from `model`), segment and outcomes of the needed snapshots, and
    the covariates of the bias correction (`adjustment_columns`: the snapshot's features).
    `reference_day`: periods ending before it are finished (default: the day after the data's latest event)."""
    from features.build import compute_features

    snaps = needed_snapshots(
        tables,
        log,
        every_days=settings.snapshot_every_days,
        horizon_days=horizon_days,
        reference_day=reference_day,
    )
    cols = ["rep_id", "period_start", "period_end", "as_of", "segment", "risk", "attainment", "missed"]
    if snaps.empty:
        return pd.DataFrame(columns=cols)
    fs = compute_features(tables, snaps, reference_day=reference_day, miss_threshold=settings.miss_threshold)
    f = fs.frame
    pred = model.pyfunc.predict_frame(f)
    out = f[["rep_id", "period_start", "period_end", "as_of", "segment", "attainment", "missed"]].copy()
    out["risk"] = pred["risk"].to_numpy()
    quota = pd.to_numeric(f["quota_amount"], errors="coerce").astype(float).where(lambda q: q > 0)
    pipeline = pd.to_numeric(f["open_pipeline_in_period"], errors="coerce").astype(float)
    f = f.assign(**{PIPELINE_PER_QUOTA: pipeline / quota})
    extra = adjustment_columns(f.columns)
    return pd.concat([out[cols], f[extra]], axis=1)


def as_date(value) -> dt.date:
    return pd.Timestamp(value).date()
