"""Training-report plots (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def calibration_plot(y: np.ndarray, preds: dict[str, np.ndarray], path: Path, n_bins: int = 10) -> Path:
    """Observed miss rate against mean predicted risk per risk decile bin, one line per model."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="perfect")
    y = np.asarray(y, float)
    for name, p in preds.items():
        p = np.asarray(p, float)
        ok = ~np.isnan(p)
        bins = np.minimum((p[ok] * n_bins).astype(int), n_bins - 1)
        xs, ys = [], []
        for b in np.unique(bins):
            m = bins == b
            xs.append(p[ok][m].mean())
            ys.append(y[ok][m].mean())
        ax.plot(xs, ys, marker="o", label=name)
    ax.set_xlabel("predicted risk of missing target")
    ax.set_ylabel("observed miss rate")
    ax.set_title("Calibration on the held-out period")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def lead_time_plot(metrics: pd.DataFrame, path: Path, rows: str = "heldout") -> Path:
    """ROC-AUC and Brier by week of the period: how early each model is useful."""
    plt = _plt()
    m = metrics[(metrics["rows"] == rows) & (metrics["scope"] == "week")].copy()
    m["week"] = m["group"].astype(int)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for name, g in m.groupby("model", sort=False):
        g = g.sort_values("week")
        axes[0].plot(g["week"], g["auc"], marker="o", label=name)
        axes[1].plot(g["week"], g["brier"], marker="o", label=name)
    axes[0].set_title("ROC-AUC by week of period")
    axes[1].set_title("Brier score by week of period (lower is better)")
    for ax in axes:
        ax.set_xlabel("week of the quota period (as-of)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def shap_summary_plot(
    contributions: np.ndarray, X: np.ndarray, feature_names: list[str], path: Path, max_display: int = 20
) -> Path:
    """SHAP beeswarm of the booster's TreeSHAP values on a sample of held-out rows."""
    plt = _plt()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # shap's colour maps use deprecated matplotlib calls
        import shap

    shap.summary_plot(contributions, X, feature_names=feature_names, show=False, max_display=max_display)
    fig = plt.gcf()
    fig.set_size_inches(8, 0.35 * min(max_display, len(feature_names)) + 1.5)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
