"""Held-out evaluation: the same figures for the model, the baselines and (with truth/) the oracle.

Figures: ROC-AUC, PR-AUC (average precision), Brier, expected calibration error (10 equal-width
bins) and precision in the top 10% by risk; overall, per week of the period (the lead-time
curve) and per segment. Undefined figures (one class only) are NaN.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from models.metrics import ece, risk_bins

METRICS = ["auc", "pr_auc", "brier", "ece", "top10_precision"]


def precision_at_top(y, p, frac: float = 0.1) -> float:
    """Share of misses among the top `frac` of rows by risk. Rows tied with the k-th risk share the
    places left at the cut (expected precision over random tie-breaking): the row order must not
    decide, e.g. the pacing rule gives every rep with nothing won yet the same risk."""
    y = np.asarray(y, float)
    p = np.asarray(p, float)
    if len(y) == 0:
        return float("nan")
    k = max(1, int(math.ceil(frac * len(y))))
    cut = np.sort(p)[::-1][k - 1]
    above, tied = p > cut, p == cut
    places = k - int(above.sum())
    return float((y[above].sum() + places * y[tied].mean()) / k)


def metric_row(y, p) -> dict:
    from sklearn.metrics import average_precision_score, roc_auc_score

    y = np.asarray(y, int)
    p = np.asarray(p, float)
    both = len(y) > 0 and y.min() != y.max()
    return {
        "n": int(len(y)),
        "n_missed": int(y.sum()),
        "miss_rate": float(y.mean()) if len(y) else float("nan"),
        "auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "pr_auc": float(average_precision_score(y, p)) if both else float("nan"),
        "brier": float(np.mean((p - y) ** 2)) if len(y) else float("nan"),
        "ece": ece(y, p),
        "top10_precision": precision_at_top(y, p),
    }


def evaluate(
    frame: pd.DataFrame, preds: dict[str, np.ndarray], label: str = "missed", rows: str = "heldout"
) -> pd.DataFrame:
    """Tidy metrics: one line per (rows, scope, group, model)."""
    y = frame[label].astype(int).to_numpy()
    scopes: list[tuple[str, str, np.ndarray]] = [("overall", "all", np.ones(len(frame), bool))]
    if "week_of_period" in frame:
        weeks = frame["week_of_period"].to_numpy()
        for w in sorted(pd.unique(weeks)):
            scopes.append(("week", str(int(w)), weeks == w))
    if "segment" in frame:
        seg = frame["segment"].astype("string").fillna("(none)").to_numpy()
        for s in sorted(pd.unique(seg)):
            scopes.append(("segment", str(s), seg == s))
    lines = []
    for scope, group, m in scopes:
        for name, p in preds.items():
            p = np.asarray(p, float)
            lines.append(
                {"rows": rows, "scope": scope, "group": group, "model": name, **metric_row(y[m], p[m])}
            )
    return pd.DataFrame(lines)


def headline(
    metrics: pd.DataFrame, model: str = "model", rows: str = "heldout", week: int | None = None
) -> dict:
    """One model's figures overall (or at one week)."""
    m = metrics[(metrics["rows"] == rows) & (metrics["model"] == model)]
    if week is None:
        m = m[m["scope"] == "overall"]
    else:
        m = m[(m["scope"] == "week") & (m["group"] == str(week))]
    if m.empty:
        return {}
    return {k: float(m.iloc[0][k]) for k in METRICS + ["n", "n_missed"]}


def load_oracle(data_dir) -> pd.DataFrame | None:
    """The simulator's oracle risk (truth/oracle.parquet), if the folder has one; never a training input."""
    p = Path(data_dir) / "truth" / "oracle.parquet"
    if not p.exists():
        return None
    o = pd.read_parquet(p)
    need = {"rep_id", "period_start", "as_of", "oracle_risk"}
    if not need <= set(o.columns):
        return None
    o = o[list(need)].copy()
    o["rep_id"] = o["rep_id"].astype("string")
    for c in ("period_start", "as_of"):
        o[c] = pd.to_datetime(o[c]).astype("datetime64[ns]")
    return o.drop_duplicates(["rep_id", "period_start", "as_of"])


def attach_oracle(frame: pd.DataFrame, oracle: pd.DataFrame) -> np.ndarray:
    """The oracle risk for each row of `frame` (NaN where the simulator gave none)."""
    keys = pd.DataFrame(
        {
            "rep_id": frame["rep_id"].astype("string").to_numpy(),
            "period_start": pd.to_datetime(frame["period_start"]).astype("datetime64[ns]").to_numpy(),
            "as_of": pd.to_datetime(frame["as_of"]).astype("datetime64[ns]").to_numpy(),
        }
    )
    keys["rep_id"] = keys["rep_id"].astype("string")
    merged = keys.merge(oracle, on=["rep_id", "period_start", "as_of"], how="left")
    return merged["oracle_risk"].to_numpy(dtype=float)


def comparison_table(
    metrics: pd.DataFrame, rows: str = "heldout", scope: str = "overall", group: str = "all"
) -> pd.DataFrame:
    """Models as rows, metrics as columns, for one slice."""
    m = metrics[(metrics["rows"] == rows) & (metrics["scope"] == scope) & (metrics["group"] == group)]
    return m.set_index("model")[["n", "n_missed"] + METRICS]


def to_markdown(table: pd.DataFrame, digits: int = 3) -> str:
    cols = list(table.columns)
    out = ["| model | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for name, r in table.iterrows():
        cells = []
        for c in cols:
            v = r[c]
            if c in ("n", "n_missed"):
                cells.append(str(int(v)))
            else:
                cells.append("-" if pd.isna(v) else f"{v:.{digits}f}")
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def calibration_bins(y, preds: dict[str, np.ndarray], n_bins: int = 10) -> dict:
    """The calibration plot as data (the same equal-width risk bins): per model, each non-empty bin's
    mean predicted risk, observed miss rate and rows. Logged as JSON so the dashboard can draw it."""
    out = {name: risk_bins(y, p, n_bins) for name, p in preds.items()}
    return {"n_bins": n_bins, "rows": int(len(y)), "models": out}
