import math

import pytest

from models.gate import Figures, gate_decision, promote, render_figures
from repradar.errors import UserError
from repradar.settings import Settings


def F(auc, brier, v="2"):
    return Figures(v, auc, brier, 1000, 300)


def test_first_model_always_passes():
    ok, reasons = gate_decision(F(0.6, 0.3), None, 0.01, 0.005)
    assert ok and "first" in reasons[0]


@pytest.mark.parametrize(
    "challenger,champion,ok",
    [
        (F(0.80, 0.150), F(0.80, 0.150, "1"), True),  # equal
        (F(0.791, 0.154), F(0.80, 0.150, "1"), True),  # within both tolerances
        (F(0.789, 0.150), F(0.80, 0.150, "1"), False),  # AUC too low
        (F(0.85, 0.156), F(0.80, 0.150, "1"), False),  # Brier too high
        (F(math.nan, 0.1), F(0.80, 0.150, "1"), False),  # undefined AUC never passes
    ],
)
def test_tolerances(challenger, champion, ok):
    assert gate_decision(challenger, champion, 0.01, 0.005)[0] is ok


def test_figures_side_by_side():
    text = render_figures(F(0.81, 0.14), F(0.83, 0.13, "1"))
    assert "challenger v2" in text and "champion v1" in text
    assert "0.8100" in text and "0.8300" in text and "0.1300" in text


def test_force_needs_a_reason(tmp_path):
    with pytest.raises(UserError, match="--reason"):
        promote(Settings(home=tmp_path), force=True, reason="  ")


def test_nothing_trained_yet_says_what_to_do(tmp_path):
    with pytest.raises(UserError, match="repradar train"):
        promote(Settings(home=tmp_path))
