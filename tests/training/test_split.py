import pandas as pd
import pytest

from repradar.errors import UserError
from tests.training.synthetic import synthetic_feature_set
from training.split import check_outcomes, time_split


@pytest.fixture(scope="module")
def frame():
    return synthetic_feature_set(n_reps=30, n_periods=5, weeks=4).frame


def test_held_out_period_never_reaches_training_or_validation(frame):
    s = time_split(frame)
    test, valid, train = frame[s.test], frame[s.valid], frame[s.train]
    assert not (s.test & s.valid).any() and not (s.test & s.train).any() and not (s.valid & s.train).any()
    assert test["period_end"].nunique() == 1 and test["period_end"].iloc[0] == frame["period_end"].max()
    # every training/validation outcome was known before the held-out period began
    assert train["period_end"].max() < valid["period_start"].min()
    assert valid["period_end"].max() < test["period_start"].min()
    assert train["as_of"].max() < test["period_start"].min()
    assert s.dropped == 0


def test_periods_straddling_a_cut_are_dropped_not_leaked(frame):
    f = frame.copy()
    # one rep whose periods run 45 days behind everyone else's: they straddle the cut dates
    odd = f["rep_id"] == "r000"
    f.loc[odd, ["period_start", "period_end", "as_of"]] += pd.Timedelta(days=45)
    s = time_split(f)
    assert (f.loc[s.train, "period_end"] < s.valid_start).all()
    assert (f.loc[s.valid, "period_end"] < s.test_start).all()
    assert (f.loc[s.test, "period_start"] >= s.test_start).all()
    assert s.test_start == frame["period_start"].max()
    assert s.dropped > 0 and s.dropped < odd.sum()


def test_too_few_periods_says_what_to_do(frame):
    two = frame[frame["period_start"] >= sorted(frame["period_start"].unique())[-2]]
    with pytest.raises(UserError, match="at least 3 finished quota periods"):
        time_split(two)


def test_too_few_misses_says_what_to_do(frame):
    f = frame.copy()
    f["missed"] = False
    s = time_split(f)
    with pytest.raises(UserError, match="REPRADAR_MIN_MISSES"):
        check_outcomes(f, s, min_misses=5)
