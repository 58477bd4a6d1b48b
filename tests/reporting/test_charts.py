"""The report's charts: names from the data are drawn whatever their script."""

from __future__ import annotations

import os
import warnings

import pandas as pd
import pytest

from reporting import charts


def test_chinese_names_from_the_data_are_drawn_not_as_empty_boxes():
    """A Chinese organisation's team names ("华东一组") came out of matplotlib's DejaVu Sans as empty boxes
    in the report's charts ("Glyph ... missing from font(s) DejaVu Sans"): the charts fall back to an
    installed CJK font (packages.apt: fonts-wqy-microhei)."""
    from matplotlib import font_manager

    if "WenQuanYi Micro Hei" not in {e.name for e in font_manager.fontManager.ttflist}:
        if os.environ.get("CI"):
            pytest.fail("no CJK font: install the Debian package fonts-wqy-microhei (packages.apt)")
        pytest.skip("no CJK font installed here")
    teams = pd.DataFrame({"team": ["华东一组", "North 2"], "high": [1, 2], "medium": [2, 1], "low": [3, 3]})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        uri = charts.band_bars(teams, "team")
    assert uri.startswith("data:image/svg+xml")
    assert [str(w.message) for w in caught if "missing from font" in str(w.message)] == []
