"""Charts as inline SVG, drawn on the server: no JavaScript library, nothing loaded from elsewhere.

Every label is escaped here; the templates insert the returned markup as it is. Each chart is an image
with a title; its numbers are also given as a table (`data_table`), the text alternative a screen reader
or a keyboard user reads. A chart is never drawn below 85% of its size (`min-width`): its text stays
at least 10 px on a phone, and the chart scrolls inside its box instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from markupsafe import Markup

BAND_COLOURS = {"high": "#c0392b", "medium": "#a85300", "low": "#1e7b45"}  # as the CSS badges


MIN_SCALE = 0.85  # the smallest a chart is drawn: 12 px axis text stays above 10 px


def _svg(width: int, height: int, body: list[str], title: str) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" style="min-width:{int(width * MIN_SCALE)}px" '
        f'role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )


def data_table(summary: str, caption: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> Markup:
    """A chart's numbers as a table behind a disclosure: the chart's text alternative. The first column
    heads its row; every cell is escaped."""
    head = "".join(f'<th scope="col">{escape(str(h))}</th>' for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<th scope="row">{escape(str(c))}</th>' if i == 0 else f"<td>{escape(str(c))}</td>"
            for i, c in enumerate(r)
        )
        + "</tr>"
        for r in rows
    )
    return Markup(
        f'<details class="chart-data"><summary>{escape(summary)}</summary>'
        f'<div class="scroll" role="region" tabindex="0" aria-label="{escape(caption)}">'
        f'<table class="list"><caption>{escape(caption)}</caption><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div></details>"
    )


def _luminance(rgb: tuple[int, int, int]) -> float:
    def lin(c: int) -> float:
        v = c / 255
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = (lin(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    """WCAG 2.1 contrast ratio of two sRGB colours (1 to 21)."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def heat_fill(mean: float) -> tuple[int, int, int]:
    g = int(255 * (1 - max(0.0, min(1.0, mean))))
    return (255, g, g)


def heat_ink(mean: float) -> str:
    """Black or white text, whichever contrasts more with the cell (at least 4.5:1 on every cell)."""
    fill = heat_fill(mean)
    return "#000" if contrast(fill, (0, 0, 0)) >= contrast(fill, (255, 255, 255)) else "#fff"


def risk_bar(risk: float, band: str, width: int = 120, height: int = 12) -> Markup:
    """A small horizontal bar for a list row."""
    w = max(0.0, min(1.0, risk)) * width
    colour = BAND_COLOURS.get(band, "#888")
    return Markup(
        f'<svg class="bar" viewBox="0 0 {width} {height}" width="{width}" height="{height}" aria-hidden="true">'
        f'<rect width="{width}" height="{height}" fill="#eee"/>'
        f'<rect width="{w:.1f}" height="{height}" fill="{colour}"/></svg>'
    )


def trend(
    points: Sequence[tuple[str, float, str]],
    title: str,
    width: int = 380,
    height: int = 200,
    colon: str = ": ",
) -> Markup:
    """Risk (0..1) through the period: one point per as-of day, coloured by band. 380 wide: whole, scale
    and newest point, on a phone of 375 px (never drawn below 85%: 323 px). `colon` separates a point's
    day from its risk in its tooltip, in the page's language ("：" in Chinese)."""
    left, right, top, bottom = 40, 12, 10, 30
    pw, ph = width - left - right, height - top - bottom
    body = []
    for v in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = top + ph * (1 - v)
        body.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#ddd"/>')
        body.append(
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" class="axis">{v * 100:.0f}%</text>'
        )
    n = len(points)
    if n:
        xs = [left + (pw * i / (n - 1) if n > 1 else pw / 2) for i in range(n)]
        ys = [top + ph * (1 - max(0.0, min(1.0, p[1]))) for p in points]
        if n > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
            body.append(f'<polyline points="{path}" fill="none" stroke="#34495e" stroke-width="2"/>')
        step = max(1, n // 6)
        for i, ((day, risk, band), x, y) in enumerate(zip(points, xs, ys, strict=True)):
            colour = BAND_COLOURS.get(band, "#888")
            body.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}">'
                f"<title>{escape(str(day))}{escape(colon)}{risk * 100:.0f}%</title></circle>"
            )
            if i % step == 0 or i == n - 1:
                # the first and last labels are anchored inside the chart so they are never clipped
                anchor = "end" if i == n - 1 and n > 1 else "start" if i == 0 and n > 1 else "middle"
                body.append(
                    f'<text x="{x:.1f}" y="{height - 10}" text-anchor="{anchor}" class="axis">'
                    f"{escape(str(day)[5:])}</text>"
                )
    return _svg(width, height, body, title)


def _fit(label: str, px: float) -> str:
    """`label` cut at a word (with an ellipsis) to about `px` pixels of 13px text: wide (CJK) characters
    count double; the full label stays in the element's tooltip and in the chart's data table."""

    def width(text: str) -> float:
        return sum(13.0 if ord(ch) > 0x2E80 else 7.0 for ch in text)

    if width(label) <= px:
        return label
    out = ""
    for ch in label:
        if width(out + ch + "…") > px:
            break
        out += ch
    cut = out.rstrip()
    if " " in cut and not any(ord(ch) > 0x2E80 for ch in cut):
        cut = cut[: cut.rfind(" ")].rstrip(" ,;(")
    return cut + "…"


def waterfall(items: Sequence[tuple[str, float]], title: str, width: int = 560) -> Markup:
    """SHAP waterfall of the drivers: each bar starts where the previous one ended (log-odds)."""
    row, left, right, top = 26, 270, 60, 8
    height = top * 2 + row * max(1, len(items)) + 20
    total_pos = sum(max(0.0, c) for _, c in items)
    total_neg = sum(min(0.0, c) for _, c in items)
    lo, hi = min(0.0, total_neg), max(0.0, total_pos, 1e-9)
    pw = width - left - right
    scale = pw / (hi - lo) if hi > lo else 1.0

    def x(v: float) -> float:
        return left + (v - lo) * scale

    body = [f'<line x1="{x(0):.1f}" y1="{top}" x2="{x(0):.1f}" y2="{height - 20}" stroke="#999"/>']
    acc = 0.0
    for i, (label, c) in enumerate(items):
        y = top + i * row
        a, b = sorted((acc, acc + c))
        colour = "#c0392b" if c > 0 else "#2980b9"
        body.append(
            f'<text x="{left - 6}" y="{y + 17}" text-anchor="end" class="label">'
            f"<title>{escape(label)}</title>{escape(_fit(label, left - 10))}</text>"
            f'<rect x="{x(a):.1f}" y="{y + 4}" width="{max(1.0, (b - a) * scale):.1f}" height="{row - 8}" '
            f'fill="{colour}"/>'
            f'<text x="{x(b) + 4:.1f}" y="{y + 17}" class="axis">{c:+.2f}</text>'
        )
        acc += c
    return _svg(width, height, body, title)


def heatmap(
    rows: Sequence[str],
    cols: Sequence[str],
    values: dict[tuple[str, str], tuple[float, int]],
    title: str,
    cell_title: str = "{row} / {col}: {mean} · {n}",
    cell_title_one: str | None = None,
) -> Markup:
    """Mean risk per (row, column) cell, white (0) to red (1), with the number of reps in the cell; each
    cell's tooltip is `cell_title` (the page's language) filled with row, col, mean (28%) and n
    (`cell_title_one` for a cell of one rep, when given)."""
    cw, ch, left, top = 110, 36, 120, 30
    width, height = left + cw * max(1, len(cols)) + 10, top + ch * max(1, len(rows)) + 10
    body = []
    # names from the data, cut to their room by width (a Chinese character is twice a Latin one: 16 of them
    # ran over the next columns, 18 off the chart's left edge); the full name is the label's tooltip
    for j, c in enumerate(cols):
        body.append(
            f'<text x="{left + j * cw + cw / 2:.1f}" y="{top - 10}" text-anchor="middle" class="label">'
            f"<title>{escape(c)}</title>{escape(_fit(c, cw - 6))}</text>"
        )
    for i, r in enumerate(rows):
        y = top + i * ch
        body.append(
            f'<text x="{left - 6}" y="{y + ch / 2 + 4:.1f}" text-anchor="end" class="label">'
            f"<title>{escape(r)}</title>{escape(_fit(r, left - 10))}</text>"
        )
        for j, c in enumerate(cols):
            cell = values.get((r, c))
            xx = left + j * cw
            if cell is None:
                body.append(f'<rect x="{xx}" y="{y}" width="{cw - 2}" height="{ch - 2}" fill="#f4f4f4"/>')
                continue
            mean, n = cell
            tip = cell_title_one if n == 1 and cell_title_one else cell_title
            fill = "rgb({},{},{})".format(*heat_fill(mean))
            ink = heat_ink(mean)
            body.append(
                f'<rect x="{xx}" y="{y}" width="{cw - 2}" height="{ch - 2}" fill="{fill}">'
                f"<title>{escape(tip.format(row=r, col=c, mean=f'{mean * 100:.0f}%', n=n))}</title></rect>"
                f'<text x="{xx + cw / 2:.1f}" y="{y + ch / 2 + 4:.1f}" text-anchor="middle" fill="{ink}" '
                f'class="label">{mean * 100:.0f}% · {n}</text>'
            )
    return _svg(width, height, body, title)


def bars(items: Sequence[tuple[str, float]], title: str, width: int = 420, lo: float = 0.5) -> Markup:
    """Vertical bars (e.g. held-out AUC per version), from `lo` to 1."""
    left, bottom, top = 36, 24, 10
    height = 180
    ph = height - top - bottom
    bw = (width - left - 10) / max(1, len(items))
    body = [f'<line x1="{left}" y1="{top + ph}" x2="{width - 10}" y2="{top + ph}" stroke="#999"/>']
    for v in (lo, (lo + 1) / 2, 1.0):
        y = top + ph * (1 - (v - lo) / (1 - lo))
        body.append(
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" class="axis">{v * 100:.0f}%</text>'
        )
    for i, (label, v) in enumerate(items):
        h = ph * max(0.0, min(1.0, (v - lo) / (1 - lo)))
        xx = left + i * bw + 4
        body.append(
            f'<rect x="{xx:.1f}" y="{top + ph - h:.1f}" width="{bw - 8:.1f}" height="{h:.1f}" fill="#34495e"/>'
            f'<text x="{xx + (bw - 8) / 2:.1f}" y="{top + ph - h - 3:.1f}" text-anchor="middle" class="axis">{v:.3f}</text>'
            f'<text x="{xx + (bw - 8) / 2:.1f}" y="{height - 8}" text-anchor="middle" class="label">{escape(label)}</text>'
        )
    return _svg(width, height, body, title)


SERIES_COLOURS = ("#2c5d8f", "#e67e22", "#8e44ad", "#16a085", "#7f8c8d")


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    return [lo + (hi - lo) * i / (n - 1) for i in range(n)]


def lines(
    series: Sequence[tuple[str, str, Sequence[tuple[float, float, str]]]],
    title: str,
    *,
    x_label: str,
    y_label: str,
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    x_ticks: Sequence[float] | None = None,
    diagonal: str | None = None,
    width: int = 460,
    height: int = 280,
    colon: str = ": ",
) -> Markup:
    """Lines with points, one per series (key, legend label, [(x, y, tooltip)]), a legend below, axis
    labels, and optionally the y = x diagonal (a calibration plot's "perfect" line, legend `diagonal`).
    A point's tooltip is its series' label, `colon` (the page's language's) and its own tooltip.
    Each line carries `data-series` (its key) and each point `data-x`/`data-y`, for tests and readers."""
    left, right, top = 48, 12, 10
    per_row = max(1, min(3, (width - left - right) // 140))  # legend entries side by side
    legend_rows = -(-(len(series) + (1 if diagonal else 0)) // per_row)
    bottom = 42 + 18 * legend_rows
    pw, ph = width - left - right, height - top - bottom
    (x0, x1), (y0, y1) = x_range, y_range
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)

    def sx(v: float) -> float:
        return left + pw * (min(max(v, x0), x1) - x0) / (x1 - x0)

    def sy(v: float) -> float:
        return top + ph * (1 - (min(max(v, y0), y1) - y0) / (y1 - y0))

    body = [f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#ccc"/>']
    for v in _ticks(y0, y1):
        body.append(f'<line x1="{left}" y1="{sy(v):.1f}" x2="{left + pw}" y2="{sy(v):.1f}" stroke="#eee"/>')
        body.append(
            f'<text x="{left - 4}" y="{sy(v) + 4:.1f}" text-anchor="end" class="axis">{v * 100:.0f}%</text>'
        )
    for v in x_ticks if x_ticks is not None else _ticks(x0, x1):
        label = f"{v:g}" if float(v).is_integer() else f"{v:.2f}"
        body.append(
            f'<text x="{sx(v):.1f}" y="{top + ph + 14}" text-anchor="middle" class="axis">{label}</text>'
        )
    body.append(
        f'<text x="{left + pw / 2:.1f}" y="{top + ph + 30}" text-anchor="middle" class="label">{escape(x_label)}</text>'
        f'<text x="12" y="{top + ph / 2:.1f}" text-anchor="middle" class="label" '
        f'transform="rotate(-90 12 {top + ph / 2:.1f})">{escape(y_label)}</text>'
    )
    legend: list[tuple[str, str, str]] = []
    if diagonal:
        body.append(
            f'<line x1="{sx(max(x0, y0)):.1f}" y1="{sy(max(x0, y0)):.1f}" x2="{sx(min(x1, y1)):.1f}" '
            f'y2="{sy(min(x1, y1)):.1f}" stroke="#999" stroke-dasharray="4 3" data-series="perfect"/>'
        )
        legend.append(("#999", diagonal, "4 3"))
    for i, (key, label, points) in enumerate(series):
        colour = SERIES_COLOURS[i % len(SERIES_COLOURS)]
        legend.append((colour, label, ""))
        pts = [(sx(x), sy(y), x, y, tip) for x, y, tip in points]
        if len(pts) > 1:
            path = " ".join(f"{a:.1f},{b:.1f}" for a, b, *_ in pts)
            body.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2" '
                f'data-series="{escape(key)}"/>'
            )
        for a, b, x, y, tip in pts:
            body.append(
                f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3.5" fill="{colour}" data-series="{escape(key)}" '
                f'data-x="{x:.6g}" data-y="{y:.6g}"><title>{escape(label)}{escape(colon)}{escape(tip)}</title></circle>'
            )
    for i, (colour, label, dash) in enumerate(legend):
        lx = left + (i % per_row) * (pw / per_row)
        ly = top + ph + 46 + 18 * (i // per_row)
        body.append(
            f'<line x1="{lx:.1f}" y1="{ly - 4}" x2="{lx + 18:.1f}" y2="{ly - 4}" stroke="{colour}" stroke-width="3"'
            + (f' stroke-dasharray="{dash}"' if dash else "")
            + f'/><text x="{lx + 24:.1f}" y="{ly}" class="label">{escape(label[:28])}</text>'
        )
    return _svg(width, height, body, title)
