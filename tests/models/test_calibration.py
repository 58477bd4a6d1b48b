import json

import numpy as np
from sklearn.isotonic import IsotonicRegression

from models.calibration import IsotonicCalibrator, PlattCalibrator, calibrator_from_dict, sigmoid


def _data(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    raw = rng.normal(0, 2, n)
    y = (rng.random(n) < sigmoid(0.7 * raw - 0.3)).astype(int)
    return raw, y


def test_platt_recovers_slope_and_roundtrips_through_json():
    raw, y = _data()
    cal = PlattCalibrator().fit(raw, y)
    assert abs(cal.a_ - 0.7) < 0.15 and abs(cal.b_ + 0.3) < 0.15
    back = calibrator_from_dict(json.loads(json.dumps(cal.to_dict())))
    np.testing.assert_array_equal(back.predict(raw), cal.predict(raw))


def test_isotonic_matches_scikit_learn_and_roundtrips():
    raw, y = _data()
    cal = IsotonicCalibrator(clip=1e-3).fit(raw, y)
    ref = IsotonicRegression(y_min=1e-3, y_max=1 - 1e-3, out_of_bounds="clip").fit(raw, y)
    grid = np.linspace(-10, 10, 501)
    np.testing.assert_allclose(cal.predict(grid), ref.predict(grid), atol=1e-12)
    back = calibrator_from_dict(json.loads(json.dumps(cal.to_dict())))
    np.testing.assert_array_equal(back.predict(grid), cal.predict(grid))


def test_both_calibrators_are_monotone_increasing():
    raw, y = _data(seed=3)
    grid = np.linspace(-12, 12, 1001)
    for cal in (PlattCalibrator().fit(raw, y), IsotonicCalibrator().fit(raw, y)):
        p = cal.predict(grid)
        assert np.all(np.diff(p) >= 0)
        assert p.min() > 0 and p.max() < 1
