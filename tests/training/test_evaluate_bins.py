"""`calibration_bins`: the calibration plot as data, on a tiny array worked out by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest

from training.evaluate import calibration_bins

Y = [0, 1, 0, 1, 1, 0, 1, 0]
# 10 bins of width 0.1: rows 0-1 in bin 0, rows 2-4 in bin 3, row 5 in bin 7, rows 6-7 in bin 9
# (a risk of exactly 1.0 belongs to the top bin); bins 1, 2, 4, 5, 6 and 8 are empty.
MODEL = [0.05, 0.08, 0.31, 0.35, 0.39, 0.72, 0.95, 1.0]
# Rows 0, 3 and 7 unscored (NaN): the rest fall in bin 2 (rows 1, 2) and bin 6 (rows 4, 5, 6).
BASELINE = [np.nan, 0.2, 0.2, np.nan, 0.6, 0.6, 0.6, np.nan]


def _table(out, name):
    return [(b["bin"], b["mean_risk"], b["observed"], b["n"]) for b in out["models"][name]]


def test_bins_means_and_counts():
    out = calibration_bins(np.array(Y), {"model": np.array(MODEL)})
    assert out["n_bins"] == 10 and out["rows"] == 8
    assert _table(out, "model") == [
        (0, pytest.approx(0.065), 0.5, 2),
        (3, pytest.approx(0.35), pytest.approx(2 / 3), 3),
        (7, pytest.approx(0.72), 0.0, 1),
        (9, pytest.approx(0.975), 0.5, 2),
    ]


def test_nan_predictions_are_left_out_of_every_bin():
    out = calibration_bins(Y, {"model": MODEL, "pacing": BASELINE, "none": [np.nan] * 8})
    assert out["rows"] == 8  # the rows of the held-out set, whatever each model scored
    assert _table(out, "pacing") == [
        (2, pytest.approx(0.2), 0.5, 2),
        (6, pytest.approx(0.6), pytest.approx(2 / 3), 3),
    ]
    assert sum(b["n"] for b in out["models"]["pacing"]) == 5
    assert out["models"]["none"] == []
    assert len(out["models"]["model"]) == 4  # one model's gaps do not touch another's bins


def test_bin_count_and_plain_json():
    out = calibration_bins(Y, {"model": MODEL}, n_bins=2)
    assert out["n_bins"] == 2
    assert _table(out, "model") == [
        (0, pytest.approx(0.236), pytest.approx(3 / 5), 5),
        (1, pytest.approx((0.72 + 0.95 + 1.0) / 3), pytest.approx(1 / 3), 3),
    ]
    assert json.loads(json.dumps(out)) == out  # plain numbers: logged as a JSON artifact as it is
