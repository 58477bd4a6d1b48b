"""What interventions achieved: reps who received one against comparable reps who did not.

Observational, not an experiment: managers chose whom to help. Each treated rep is compared with
reps of the same segment, in the same period, on the same weekly snapshot day (the last one on or
before the intervention started), whose model risk that day was closest (the `k` nearest within
a caliper), and who had received no intervention that period by that day (risk-set matching: a
rep helped later in the period was still a comparable rep then; excluding them would compare the
treated with reps known, in hindsight, to have stayed fine), other than the treated rep itself. Outcomes: the period's attainment, whether
the rep missed, and the change in model risk over the next `horizon_days`. The estimate per
intervention type is the mean of (treated outcome - mean of its matches) over treated reps: the
effect on those who received it, if risk and segment capture why they were chosen. The interval
is the normal approximation (mean +- z * sd / sqrt(n)).

`match_effects` is pure (frames in, frames out); `snapshot_risks` builds its input from the
contract tables and a loaded model.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np
import pandas as pd

OUTCOMES = ("attainment", "missed", "risk_change")
OBSERVATIONAL_NOTE = (
    "These are observational comparisons, not experiments: managers chose whom to help and when. "
    "Reps who received an intervention are compared with reps of the same segment who had a similar "
    "model risk on the same day and had received none that period by then. If managers acted on something the "
    "risk score does not see, the difference reflects that too. Read them as indications, with their "
    "intervals, not as proof."
)


@dataclass
class EffectsResult:
    table: pd.DataFrame  # per intervention: estimates, intervals, N
    pairs: pd.DataFrame  # per treated rep: its outcome, its matches' mean, the difference
    confidence: float
    min_reps: int
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        t = self.table.astype(object).where(self.table.notna(), None)
        return {
            "confidence": self.confidence,
            "min_reps": self.min_reps,
            "notes": self.notes,
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
    inside = (m["period_start"] <= m["started_on"]) & (m["started_on"] <= m["period_end"]) & (m["as_of"] <= m["started_on"])
    m = m[inside]
    m = m.sort_values(["rep_id", "intervention", "started_on", "as_of"], kind="stable")
    m = m.groupby(["rep_id", "intervention", "started_on"], sort=False).tail(1)
    n_log = int(log.drop_duplicates(["rep_id", "intervention", "started_on"]).shape[0])
    n_mapped = int(len(m))
    m = m.groupby(["rep_id", "intervention", "period_start"], sort=False).head(1)
    left_out = {
        "no snapshot of a finished period on or before its start": n_log - n_mapped,
        "a repeat of the same intervention in the same period (counted once)": n_mapped - int(len(m)),
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
) -> EffectsResult:
    """Matched estimates per intervention type (see the module docstring).

    `snaps`: weekly snapshots with rep_id, period_start, period_end, as_of, segment, risk,
    attainment, missed (attainment NaN for unfinished periods). `log`: normalise_interventions().
    """
    notes: list[str] = []
    s = snaps.copy()
    s["rep_id"] = s["rep_id"].astype(str)
    s["segment"] = s["segment"].astype("string").fillna("(none)").astype(str)
    s["missed"] = pd.to_numeric(s["missed"].astype("Float64"), errors="coerce").astype(float)
    s = s.reset_index(drop=True)
    # risk `horizon_days` later in the same rep-period, for the risk-change outcome
    later = s[["rep_id", "period_start", "as_of", "risk"]].copy()
    later["as_of"] = later["as_of"] - pd.Timedelta(days=horizon_days)
    s = s.merge(later.rename(columns={"risk": "risk_later"}), on=["rep_id", "period_start", "as_of"], how="left")
    s["risk_change"] = s["risk_later"] - s["risk"]

    treated, left_out = treated_snapshots(s, log)
    treated = treated.merge(
        s[["rep_id", "period_start", "as_of", "segment", "risk", "attainment", "missed", "risk_change"]],
        on=["rep_id", "period_start", "as_of"],
        how="left",
    )
    unlabelled = treated["attainment"].isna()
    if unlabelled.any():
        left_out["period not finished (no outcome yet)"] = int(unlabelled.sum())
        treated = treated[~unlabelled]
    pool = s[~treated_by(log, s) & s["attainment"].notna()]
    cells = {key: g for key, g in pool.groupby(["period_start", "as_of", "segment"], sort=False)}

    rows = []
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
        left_out[f"no comparable rep within risk {caliper:g} in the same segment and week"] = unmatched
    pairs = pd.DataFrame(rows)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    table = summarise(pairs, z=z, min_reps=min_reps)
    for reason, n in left_out.items():
        if n:
            notes.append(f"{n} intervention(s) left out: {reason}")
    return EffectsResult(table=table, pairs=pairs, confidence=confidence, min_reps=min_reps, notes=notes)


def mean_interval(d: np.ndarray, z: float) -> tuple[float, float, float, float]:
    """(mean, standard error, low, high) of the differences `d` (normal approximation)."""
    d = np.asarray(d, dtype=float)
    d = d[np.isfinite(d)]
    n = len(d)
    if n == 0:
        return (math.nan,) * 4
    m = float(d.mean())
    se = float(d.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return m, se, m - z * se, m + z * se


def summarise(pairs: pd.DataFrame, *, z: float, min_reps: int) -> pd.DataFrame:
    """Per intervention type: N, mean outcomes of treated and matches, the difference and its interval."""
    cols = ["intervention", "n_treated", "n_reps", "enough", "risk_treated", "risk_matched"]
    for o in OUTCOMES:
        cols += [f"{o}_treated", f"{o}_matched", f"{o}_effect", f"{o}_se", f"{o}_low", f"{o}_high", f"{o}_n"]
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
            d = (g[o].astype(float) - g[f"control_{o}"].astype(float)).to_numpy()
            m, se, lo, hi = mean_interval(d, z)
            ok = np.isfinite(d)
            row.update(
                {
                    f"{o}_treated": float(g.loc[ok, o].astype(float).mean()) if ok.any() else math.nan,
                    f"{o}_matched": float(g.loc[ok, f"control_{o}"].astype(float).mean()) if ok.any() else math.nan,
                    f"{o}_effect": m,
                    f"{o}_se": se,
                    f"{o}_low": lo,
                    f"{o}_high": hi,
                    f"{o}_n": int(ok.sum()),
                }
            )
        out.append(row)
    t = pd.DataFrame(out, columns=cols)
    return t.sort_values(["enough", "n_treated", "intervention"], ascending=[False, False, True]).reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
def needed_snapshots(tables, log: pd.DataFrame, *, every_days: int = 7, horizon_days: int = 28, reference_day=None):
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
    keep = np.array([(p, a) in days for p, a in zip(snaps["period_start"], snaps["as_of"], strict=True)], dtype=bool)
    return snaps[keep].reset_index(drop=True)


def snapshot_risks(tables, model, log: pd.DataFrame, *, settings, horizon_days: int = 28) -> pd.DataFrame:
    """The matching's input: risk (from `model`), segment and outcomes of the needed snapshots."""
    from features.build import compute_features

    snaps = needed_snapshots(
        tables, log, every_days=settings.snapshot_every_days, horizon_days=horizon_days
    )
    cols = ["rep_id", "period_start", "period_end", "as_of", "segment", "risk", "attainment", "missed"]
    if snaps.empty:
        return pd.DataFrame(columns=cols)
    fs = compute_features(tables, snaps, miss_threshold=settings.miss_threshold)
    f = fs.frame
    pred = model.pyfunc.predict_frame(f)
    out = f[["rep_id", "period_start", "period_end", "as_of", "segment", "attainment", "missed"]].copy()
    out["risk"] = pred["risk"].to_numpy()
    return out[cols]


def as_date(value) -> dt.date:
    return pd.Timestamp(value).date()
