import math

import pytest

from models.bands import risk_band


@pytest.mark.parametrize(
    "risk,band",
    [(0.0, "low"), (0.299, "low"), (0.3, "medium"), (0.599, "medium"), (0.6, "high"), (1.0, "high")],
)
def test_cut_points_are_inclusive_from_below(risk, band):
    assert risk_band(risk, high=0.6, medium=0.3) == band


def test_bad_cut_points_and_missing_risk_are_refused():
    with pytest.raises(ValueError):
        risk_band(0.5, high=0.3, medium=0.6)
    with pytest.raises(ValueError):
        risk_band(math.nan, high=0.6, medium=0.3)
