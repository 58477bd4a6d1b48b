"""Charts of the report as self-contained SVG data URIs (matplotlib, Agg backend, text as paths)."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib import font_manager  # noqa: E402

from models.i18n import DEFAULT_LANGUAGE, text  # noqa: E402
from reporting import labels  # noqa: E402

BAND_COLOURS = {"high": "#c0392b", "medium": "#e6a23c", "low": "#5b8c5a"}
INK = "#333333"

# Team, region, manager and attribute names come from the data, and a Chinese organisation's are Chinese:
# DejaVu Sans has no CJK glyph and drew them as empty boxes. Matplotlib falls back, glyph by glyph, to the
# next family listed; only installed ones are listed (a missing family is a warning at every chart).
CJK_FONTS = ("WenQuanYi Micro Hei", "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC")
FONTS = ["DejaVu Sans"] + [f for f in CJK_FONTS if f in {e.name for e in font_manager.fontManager.ttflist}]

plt.rcParams.update(
    {
        "font.family": FONTS,
        "svg.fonttype": "path",  # glyphs as paths: no font is loaded by the reader
        "svg.hashsalt": "repradar",  # stable ids, so the same report gives the same file
        "font.size": 9,
        "axes.edgecolor": "#999999",
        "axes.labelcolor": INK,
        "xtick.color": INK,
        "ytick.color": INK,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
)


def to_data_uri(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def risk_histogram(risk, band_high: float, band_medium: float, lang: str = DEFAULT_LANGUAGE) -> str:
    r = np.asarray(risk, dtype=float)
    fig, ax = plt.subplots(figsize=(7.0, 2.6))
    edges = np.linspace(0, 1, 41)
    counts, _ = np.histogram(r, bins=edges)
    mids = (edges[:-1] + edges[1:]) / 2
    colours = [
        BAND_COLOURS["high"]
        if m >= band_high
        else BAND_COLOURS["medium"]
        if m >= band_medium
        else BAND_COLOURS["low"]
        for m in mids
    ]
    ax.bar(mids, counts, width=edges[1] - edges[0], color=colours, edgecolor="white", linewidth=0.4)
    for cut in (band_medium, band_high):
        ax.axvline(cut, color=INK, linestyle="--", linewidth=0.8)
    ax.set_xlim(0, 1)
    ax.set_xlabel(text(lang, "report.chart.risk_axis"))
    ax.set_ylabel(text(lang, "report.chart.reps"))
    return to_data_uri(fig)


def band_bars(table: pd.DataFrame, by: str, max_rows: int = 20, lang: str = DEFAULT_LANGUAGE) -> str:
    t = table.head(max_rows).iloc[::-1]
    fig, ax = plt.subplots(figsize=(7.0, 0.28 * len(t) + 0.9))
    left = np.zeros(len(t))
    labels = t[by].astype(str).tolist()
    for band in ("high", "medium", "low"):
        v = t[band].to_numpy(dtype=float)
        name = text(lang, f"report.col.{band}")
        ax.barh(labels, v, left=left, color=BAND_COLOURS[band], label=name, height=0.7)
        left += v
    ax.set_xlabel(text(lang, "report.chart.reps"))
    ax.legend(loc="lower right", frameon=False, fontsize=8)
    return to_data_uri(fig)


def fairness_bars(selection: pd.DataFrame, low: float, lang: str = DEFAULT_LANGUAGE) -> str:
    t = selection.sort_values("group")
    fig, ax = plt.subplots(figsize=(5.2, 0.32 * len(t) + 0.9))
    labels = [_group(g, lang) for g in t["group"]]
    colours = [
        "#c0392b" if o else ("#7f8c8d" if not j else "#2c6e9b")
        for o, j in zip(t["out_of_bounds"], t["judged"], strict=True)
    ]
    ax.barh(labels, t["rate"].to_numpy(dtype=float), color=colours, height=0.6)
    ref = t[t["reference"]]
    if len(ref):
        rate = float(ref["rate"].iloc[0])
        ax.axvline(rate, color=INK, linewidth=0.8)
        ax.axvline(rate * low, color=INK, linestyle="--", linewidth=0.8)
    ax.set_xlabel(text(lang, "report.chart.share_axis"))
    ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    return to_data_uri(fig)


def calibration_dots(cal: pd.DataFrame, lang: str = DEFAULT_LANGUAGE) -> str:
    t = cal.sort_values("group")
    fig, ax = plt.subplots(figsize=(5.2, 0.32 * len(t) + 0.9))
    y = np.arange(len(t))
    mean, miss = text(lang, "report.chart.mean_predicted"), text(lang, "report.chart.miss_rate")
    ax.scatter(t["mean_risk"], y, marker="o", color="#2c6e9b", label=mean, zorder=3)
    ax.scatter(t["miss_rate"], y, marker="x", color="#c0392b", label=miss, zorder=3)
    for i, (a, b) in enumerate(zip(t["mean_risk"], t["miss_rate"], strict=True)):
        ax.plot([a, b], [i, i], color="#bbbbbb", linewidth=1, zorder=1)
    ax.set_yticks(y, [_group(g, lang) for g in t["group"]])
    ax.set_xlim(0, 1)
    ax.legend(loc="lower right", frameon=False, fontsize=8)
    ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    return to_data_uri(fig)


def psi_bars(
    table: pd.DataFrame, threshold: float, watch: float, n: int = 15, lang: str = DEFAULT_LANGUAGE
) -> str:
    t = table.dropna(subset=["psi"]).head(n).iloc[::-1]
    fig, ax = plt.subplots(figsize=(7.0, 0.26 * len(t) + 0.9))
    colours = ["#c0392b" if s == "drifted" else "#e6a23c" if s == "watch" else "#5b8c5a" for s in t["status"]]
    names = [labels.feature_label(f, lang) for f in t["feature"].astype(str)]
    ax.barh(names, t["psi"].to_numpy(dtype=float), color=colours, height=0.7)
    ax.axvline(threshold, color=INK, linestyle="--", linewidth=0.8)
    ax.axvline(watch, color="#999999", linestyle=":", linewidth=0.8)
    ax.set_xlabel(text(lang, "report.chart.psi_axis", threshold=f"{threshold:g}"))
    return to_data_uri(fig)


def effect_forest(table: pd.DataFrame, outcome: str = "attainment", lang: str = DEFAULT_LANGUAGE) -> str:
    t = table[table["enough"]].iloc[::-1] if len(table) else table
    fig, ax = plt.subplots(figsize=(6.0, 0.32 * max(len(t), 1) + 1.0))
    if len(t):
        y = np.arange(len(t))
        eff = t[f"{outcome}_effect"].to_numpy(dtype=float)
        lo = t[f"{outcome}_low"].to_numpy(dtype=float)
        hi = t[f"{outcome}_high"].to_numpy(dtype=float)
        ax.errorbar(eff, y, xerr=[eff - lo, hi - eff], fmt="o", color="#2c6e9b", ecolor="#7f8c8d", capsize=3)
        ticks = [
            text(lang, "report.chart.effect_tick", title=labels.intervention_title(a, lang), n=n)
            for a, n in zip(t["intervention"], t["n_treated"], strict=True)
        ]
        ax.set_yticks(y, ticks)
    ax.axvline(0, color=INK, linewidth=0.8)
    what = text(lang, f"report.chart.outcome.{outcome}")
    ax.set_xlabel(text(lang, "report.chart.effect_axis", outcome=what))
    return to_data_uri(fig)


def _group(group, lang: str) -> str:
    """A fairness group's name on a chart: the audit's own groups in `lang`, the data's as they are."""
    from models.i18n import localise
    from reporting.fairness import group_name

    return str(localise(group_name(group), lang))
