"""Each latent cause leaves its recognisable trace in the observable data."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.simulator.signals import rep_period_signals

# cause -> (signal, direction against healthy rep-periods: -1 lower, +1 higher)
SIGNATURES = {
    "effort": [("act_per_day", -1), ("created_rel", -1)],
    "customer": [("csat", -1), ("win_rate", -1)],
    "burnout": [("after_hours_minutes", +1), ("pto_days", -1), ("pulse_score", -1), ("act_per_day", -1)],
    "process": [("crm_logins", -1), ("cycle_days", +1)],
    "manager": [("one_on_one", -1)],
    "territory": [("created_rel", -1)],
    "skill": [("win_rate", -1)],
    "ramp": [("tenure_days", -1)],
    "quota": [("quota_rel", +1)],
}


@pytest.fixture(scope="module")
def signals(medium_org) -> pd.DataFrame:
    return rep_period_signals(medium_org[0])


@pytest.mark.parametrize("cause", list(SIGNATURES))
def test_cause_shows_in_its_signals(signals, cause):
    healthy = signals[signals["dominant_cause"].isna() & ~signals["missed"]]
    group = signals[signals["dominant_cause"] == cause]
    assert len(group) >= 5, f"too few rep-periods with cause {cause}"
    for col, direction in SIGNATURES[cause]:
        g, h = group[col].median(), healthy[col].median()
        assert (g - h) * direction > 0, f"{cause}: median {col} {g:.3g} vs healthy {h:.3g}"


def test_burnout_and_effort_cut_activity_most(signals):
    med = signals.groupby(signals["dominant_cause"].fillna("none"))["act_per_day"].median()
    assert med["effort"] < 0.85 * med["none"]
    assert med["burnout"] < 0.85 * med["none"]
    assert 2.0 <= signals.loc[signals["dominant_cause"].isna(), "act_per_day"].median() <= 6.0


def test_a_poor_manager_drags_the_whole_team(medium_org):
    rp = pd.read_parquet(medium_org[0] / "truth" / "rep_periods.parquet")
    by_mgr = rp.groupby("manager_id").agg(quality=("trait_manager_quality", "mean"), miss=("missed", "mean"))
    poor = by_mgr["quality"] < -0.5
    assert poor.any() and (~poor).any()
    assert by_mgr.loc[poor, "miss"].mean() > by_mgr.loc[~poor, "miss"].mean() + 0.1
