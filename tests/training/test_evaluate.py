import numpy as np
import pandas as pd

from training.evaluate import ece, evaluate, headline, precision_at_top


def test_ece_zero_when_calibrated_per_bin_and_positive_otherwise():
    y = np.array([0] * 8 + [1] * 2 + [1] * 9 + [0] * 1)
    p = np.array([0.2] * 10 + [0.9] * 10)
    assert ece(y, p) < 1e-12
    assert abs(ece(y, np.full(20, 0.5)) - 0.05) < 1e-12  # rate 0.55 vs 0.5


def test_precision_at_top_counts_misses_among_the_riskiest_tenth():
    y = np.array([1, 0, 0, 0, 0, 0, 0, 0, 0, 0] * 2)
    p = np.linspace(1, 0, 20)
    assert precision_at_top(y, p, 0.1) == 0.5  # top 2 rows: y = 1, 0


def test_precision_at_top_does_not_depend_on_the_order_of_tied_rows():
    # every row tied (the pacing rule before anything is won): the expected precision is the miss rate
    y = np.array([1] * 5 + [0] * 15)
    p = np.full(20, 0.3)
    assert precision_at_top(y, p, 0.1) == 0.25
    assert precision_at_top(y[::-1], p, 0.1) == 0.25
    # one clear top row, then ties for the second place: half a miss on average
    y2 = np.array([1, 1, 0, 0, 1, 0, 0, 0, 0, 0] * 2)
    p2 = np.array([0.9] + [0.5] * 4 + [0.1] * 15)
    assert abs(precision_at_top(y2, p2, 0.1) - (1 + 2 / 4) / 2) < 1e-12


def test_evaluate_has_overall_week_and_segment_slices_for_each_model():
    rng = np.random.default_rng(0)
    n = 400
    f = pd.DataFrame(
        {
            "missed": rng.random(n) < 0.4,
            "week_of_period": np.tile([1, 2, 3, 4], n // 4),
            "segment": np.repeat(["smb", "ent"], n // 2),
        }
    )
    preds = {"model": rng.random(n), "pacing": rng.random(n)}
    m = evaluate(f, preds)
    assert set(m["scope"]) == {"overall", "week", "segment"}
    assert len(m) == 2 * (1 + 4 + 2)
    h = headline(m, "model", week=3)
    assert h["n"] == 100 and 0 <= h["auc"] <= 1
