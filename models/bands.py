"""Risk bands: the cut points are settings, so the same risk can be read as a band everywhere."""

from __future__ import annotations

import math

BANDS = ("high", "medium", "low")


def risk_band(risk: float, high: float, medium: float) -> str:
    """`high` at or above `high`, `medium` at or above `medium`, else `low`."""
    if not 0.0 < medium <= high < 1.0:
        raise ValueError(
            f"band cut points must satisfy 0 < medium <= high < 1, got medium={medium}, high={high}"
        )
    if risk is None or math.isnan(risk):
        raise ValueError("risk is missing (NaN); a band needs a number")
    if risk >= high:
        return "high"
    if risk >= medium:
        return "medium"
    return "low"
