"""Thin-data caveats: the training report says when figures rest on too little data."""

from training.card import THIN_REPS, THIN_TEST_MISSES, data_caveats


def test_enough_data_has_no_caveat():
    assert data_caveats({"reps": 500, "train_periods": 8, "test_missed_rep_periods": 120}) == []


def test_each_thin_dimension_is_named():
    few_reps = data_caveats({"reps": THIN_REPS - 1, "train_periods": 8, "test_missed_rep_periods": 120})
    assert any(f"only {THIN_REPS - 1} reps" in c for c in few_reps)
    few_periods = data_caveats({"reps": 500, "train_periods": 1, "test_missed_rep_periods": 120})
    assert any("training period" in c for c in few_periods)
    few_misses = data_caveats(
        {"reps": 500, "train_periods": 8, "test_missed_rep_periods": THIN_TEST_MISSES - 1}
    )
    assert any("held-out metrics are uncertain" in c for c in few_misses)
    assert "starting point" in few_misses[-1]
