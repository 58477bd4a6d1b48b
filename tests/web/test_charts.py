"""The models page's line charts and how it reads the curves of a run, without MLflow."""

from __future__ import annotations

import re

from serving import runs
from serving.web import charts
from serving.web.pages import calibration_chart, lead_chart


def test_lines_draws_each_series_with_its_points_and_escapes_labels():
    svg = str(
        charts.lines(
            [
                ("model", "<model>", [(1, 0.6, "w1"), (2, 0.8, "w2")]),
                ("pacing", "pace", [(1, 0.5, "a"), (2, 0.55, "b")]),
            ],
            "AUC & weeks",
            x_label="week",
            y_label="AUC",
            x_range=(1, 2),
            y_range=(0.4, 1.0),
            diagonal="perfect",
        )
    )
    assert (
        svg.startswith("<svg")
        and "<model>" not in svg
        and "&lt;model&gt;" in svg
        and "AUC &amp; weeks" in svg
    )
    assert len(re.findall(r'<circle [^>]*data-series="model"', svg)) == 2
    assert len(re.findall(r'<polyline [^>]*data-series="pacing"', svg)) == 1
    assert 'data-series="perfect"' in svg and "http" not in svg.replace("http://www.w3.org", "")
    # a higher value is drawn higher up (smaller y)
    ys = [float(y) for y in re.findall(r'<circle cx="[^"]+" cy="([^"]+)"[^>]*data-series="model"', svg)]
    assert ys[1] < ys[0]


def test_lead_and_calibration_charts_put_the_model_first_and_are_absent_without_data():
    lead = {
        "auc": {"pacing": [(1, 0.55), (2, 0.6)], "model": [(1, 0.7), (2, 0.8)]},
        "brier": {"model": [(1, 0.2)]},
    }
    svg = str(lead_chart(lead, "auc", "en"))
    assert svg.index('data-series="model"') < svg.index('data-series="pacing"')
    assert "pacing baseline" in svg and "AUC by week of the period" in svg
    assert "按考核期内周次的 Brier" in str(lead_chart(lead, "brier", "zh-CN"))
    assert lead_chart(None, "auc", "en") is None and lead_chart({"auc": {}}, "brier", "en") is None
    cal = str(calibration_chart({"model": [(0.1, 0.05, 40), (0.7, 0.8, 12)]}, "en"))
    assert "predicted 0.70, observed 0.80 (12 rows)" in cal and "perfect calibration" in cal
    assert calibration_chart(None, "en") is None and calibration_chart({}, "en") is None


def test_a_points_tooltip_takes_the_pages_colon():
    """A Chinese page's chart tooltips read "模型: 第 2 周：0.800" and "2024-02-05: 40%": an English colon
    among Chinese ones. The charts take the page's separator (punct.colon)."""
    lead = {"auc": {"model": [(1, 0.7), (2, 0.8)]}}
    zh = [
        str(lead_chart(lead, "auc", "zh-CN")),
        str(calibration_chart({"model": [(0.1, 0.05, 40)]}, "zh-CN")),
    ]
    titles = [t for svg in zh for t in re.findall(r"<circle [^>]*><title>([^<]*)</title>", svg)]
    assert titles and [t for t in titles if ": " in t] == []
    assert "模型：第 2 周：0.800" in titles
    assert "<title>2024-02-05：40%</title>" in str(
        charts.trend([("2024-02-05", 0.4, "low")], "t", colon="：")
    )
    en = str(lead_chart(lead, "auc", "en"))
    assert re.search(r"<title>model: [^<]*0\.800</title>", en), en


def test_only_lead_time_metrics_are_read_as_the_curve():
    assert runs.lead_key("lead_model_auc") == ("model", "auc")
    assert runs.lead_key("lead_some_baseline_brier") == ("some_baseline", "brier")
    assert runs.lead_key("test_auc") is None and runs.lead_key("lead_model_ece") is None
    assert runs.lead_key("lead_auc") is None


def test_a_version_without_a_run_has_nothing_recorded(tmp_path):
    from repradar.settings import Settings

    assert runs.curves(Settings(home=tmp_path), None) == runs.EMPTY


def test_the_heat_maps_names_fit_their_room_in_any_script():
    """The organisation page's heat map cut region and segment names at 18 and 16 characters, whatever
    their width: Chinese names (twice as wide) ran off the chart's left edge and over the next column.
    They are cut to their room, with an ellipsis, and the full name is the label's tooltip."""
    rows, cols = ["华东区域（上海、江苏、浙江）", "North America"], ["大型企业客户部", "SMB"]
    svg = str(charts.heatmap(rows, cols, {(rows[0], cols[0]): (0.4, 7)}, "t"))

    def width(text: str) -> float:  # 13 px text, as the stylesheet's .label: a CJK character about 13 px
        return sum(13.0 if ord(ch) > 0x2E80 else 7.0 for ch in text)

    labels = re.findall(r'class="label"><title>([^<]*)</title>([^<]*)</text>', svg)
    assert sorted(full for full, _ in labels) == sorted(rows + cols)
    shown = dict(labels)
    assert shown["North America"] == "North America" and shown["SMB"] == "SMB"
    assert shown[rows[0]].endswith("…") and width(shown[rows[0]]) <= 120 - 10  # left margin of the rows
    assert width(shown[cols[0]]) <= 110 - 6  # a column's width


def test_a_heatmap_cell_of_one_rep_says_rep():
    """The org page's cell tooltips said "1 reps"; the page passes the singular form for a cell of one."""
    from serving import i18n

    tip = dict(
        cell_title=i18n.t("en", "org.heatmap_cell"), cell_title_one=i18n.t("en", "org.heatmap_cell_one")
    )
    svg = str(
        charts.heatmap(
            ["North"], ["SMB", "Ent"], {("North", "SMB"): (0.7, 1), ("North", "Ent"): (0.2, 4)}, "t", **tip
        )
    )
    assert "North / SMB: mean risk 70%, 1 rep<" in svg and "North / Ent: mean risk 20%, 4 reps<" in svg
    # without a singular form, every cell uses the one title given
    svg = str(charts.heatmap(["North"], ["SMB"], {("North", "SMB"): (0.7, 1)}, "t", cell_title="{n} x"))
    assert "<title>1 x</title>" in svg
