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


# -- calibrating on several periods ------------------------------------------------------------


def _split_frame(n_periods=6):
    from tests.training.synthetic import synthetic_feature_set
    from training.split import time_split

    fs = synthetic_feature_set(n_reps=40, n_periods=n_periods, weeks=4, seed=3)
    return fs, time_split(fs.frame)


def _rows(frame, split, n_periods, fit_and_score, min_each=1):
    from training.calibrate import calibration_rows
    from training.split import main_period_starts

    y = frame["missed"].astype(int).to_numpy()
    valid_raw = np.linspace(-1, 1, int(split.valid.sum()))
    return calibration_rows(
        frame["period_start"],
        frame["period_end"],
        split.train,
        split.valid,
        y,
        frame["rep_id"].astype(str).to_numpy(),
        valid_raw,
        main_period_starts(frame),
        n_periods,
        fit_and_score,
        min_each=min_each,
    ), valid_raw


def test_calibration_rows_walk_back_out_of_time_oldest_first():
    import pandas as pd

    fs, split = _split_frame()
    frame = fs.frame
    starts, ends = pd.to_datetime(frame["period_start"]), pd.to_datetime(frame["period_end"])
    calls = []

    def fit_and_score(fit, score):
        calls.append((fit, score))
        return np.full(int(score.sum()), float(len(calls)))

    rows, valid_raw = _rows(frame, split, 3, fit_and_score)
    assert len(calls) == 2 and len(rows.periods) == 3
    for fit, score in calls:
        # each earlier period is scored by a booster fitted only on periods that ended before it began
        assert ends[fit].max() < starts[score].min()
        assert not (fit & score).any() and not (score & (split.valid | split.test)).any()
    assert rows.periods == sorted(rows.periods) and rows.periods[-1].startswith("2024-01-01")
    assert rows.rows == [int(calls[1][1].sum()), int(calls[0][1].sum()), int(split.valid.sum())]
    # the validation period keeps the shipped booster's own scores, last
    np.testing.assert_array_equal(rows.raw[-len(valid_raw) :], valid_raw)
    assert len(rows.raw) == len(rows.y) == len(rows.groups) == sum(rows.rows)


def test_one_calibration_period_is_the_validation_fold_alone():
    fs, split = _split_frame()

    def never(fit, score):
        raise AssertionError("no earlier period should be scored")

    rows, valid_raw = _rows(fs.frame, split, 1, never)
    np.testing.assert_array_equal(rows.raw, valid_raw)
    assert rows.periods == ["2024-01-01..2024-03-31"]


def test_walk_back_stops_where_too_few_misses_are_left_to_fit_on():
    fs, split = _split_frame()
    y = fs.frame["missed"].astype(int).to_numpy()
    calls = []

    def fit_and_score(fit, score):
        calls.append(fit)
        return np.zeros(int(score.sum()))

    # every earlier period's fitting rows hold fewer misses than this, so only validation is left
    rows, _ = _rows(fs.frame, split, 6, fit_and_score, min_each=int(y[split.train].sum()) + 1)
    assert calls == [] and len(rows.periods) == 1
    # the oldest period has nothing before it to fit on: the walk ends there without calling back
    rows, _ = _rows(fs.frame, split, 99, fit_and_score)
    assert len(rows.periods) == len(calls) + 1 < 99


def test_a_period_s_own_labels_never_reach_its_calibration_scores():
    from repradar.settings import Settings
    from training.pipeline import calibration_rows_for, fit_all, model_features

    fs, split = _split_frame()
    frame, names = fs.frame, model_features(fs)
    settings = Settings(home="/nonexistent", calibration_periods=3)
    fit = fit_all(frame, split, names, settings, params={"learning_rate": 0.1})
    assert fit.calibration["periods"][-1] == "2024-01-01..2024-03-31" and len(fit.calibration["periods"]) == 3
    raw_va = fit.booster.booster_.predict(frame[split.valid][names].to_numpy(float), raw_score=True)
    before = calibration_rows_for(
        frame, split, names, fit.booster, raw_va, settings, params={"learning_rate": 0.1}
    )
    # flip the labels of the newest period scored out of time (no other scored period is fitted
    # on it): no score changes, only the labels
    flipped = frame.copy()
    newest = (flipped["period_start"] == pd_ts(before.periods[-2])).to_numpy()
    flipped.loc[newest, "missed"] = ~flipped.loc[newest, "missed"].astype(bool)
    after = calibration_rows_for(
        flipped, split, names, fit.booster, raw_va, settings, params={"learning_rate": 0.1}
    )
    np.testing.assert_array_equal(before.raw, after.raw)
    n_old, n_new = before.rows[0], before.rows[1]
    np.testing.assert_array_equal(before.y[n_old : n_old + n_new], 1 - after.y[n_old : n_old + n_new])
    # and the earlier periods' scores do come from a fitted booster, not the validation scores
    assert np.unique(before.raw[: before.rows[0]]).size > 10


def pd_ts(window: str):
    import pandas as pd

    return pd.Timestamp(window.split("..")[0])


def test_fit_all_with_one_calibration_period_is_the_validation_calibrator():
    from repradar.settings import Settings
    from training.pipeline import fit_all, model_features

    fs, split = _split_frame()
    names = model_features(fs)
    fit = fit_all(
        fs.frame,
        split,
        names,
        Settings(home="/nonexistent", calibration_periods=1),
        params={"learning_rate": 0.1},
    )
    va = fs.frame[split.valid]
    raw_va = fit.booster.booster_.predict(va[names].to_numpy(float), raw_score=True)
    cal, report = choose_calibrator(
        raw_va, va["missed"].astype(int).to_numpy(), va["rep_id"].astype(str).to_numpy()
    )
    assert report["chosen"] == fit.calibration["chosen"] and fit.calibration["rows"] == [len(va)]
    np.testing.assert_allclose(cal.predict(raw_va), fit.calibrator.predict(raw_va))
