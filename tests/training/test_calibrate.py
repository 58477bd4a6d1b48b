import numpy as np

from models.calibration import sigmoid
from training.calibrate import choose_calibrator


def test_choice_is_cross_fitted_and_refit_on_the_whole_fold():
    rng = np.random.default_rng(1)
    n = 3000
    raw = rng.normal(0, 2, n)
    y = (rng.random(n) < sigmoid(1.3 * raw + 0.5)).astype(int)
    groups = np.repeat(np.arange(n // 10), 10)
    cal, report = choose_calibrator(raw, y, groups)
    assert report["chosen"] in ("platt", "isotonic")
    assert set(report) == {"platt", "isotonic", "chosen"}
    # the data are exactly Platt-shaped: Platt must not lose by much, and the refit is on all rows
    assert report["platt"]["brier"] <= report["isotonic"]["brier"] + 1e-3
    assert cal.kind == report["chosen"]


def test_isotonic_wins_on_a_non_logistic_shape():
    rng = np.random.default_rng(2)
    n = 4000
    raw = rng.uniform(-3, 3, n)
    p = np.where(raw < 0, 0.05, 0.95)  # a step: no sigmoid fits it well
    y = (rng.random(n) < p).astype(int)
    cal, report = choose_calibrator(raw, y, np.arange(n) % 200)
    assert report["chosen"] == "isotonic"
