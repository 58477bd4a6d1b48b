"""What `repradar train` prints at the end (TrainResult.summary_lines)."""

import pandas as pd

from training.evaluate import METRICS
from training.pipeline import TrainResult


def _result(model_auc: float, model_brier: float) -> TrainResult:
    rows = []
    for model, auc, brier in (
        ("model", model_auc, model_brier),
        ("pacing", 0.909, 0.116),
        ("logistic", 0.87, 0.25),
    ):
        rows.append(
            {"rows": "heldout", "scope": "overall", "group": "all", "model": model, "n": 400, "n_missed": 150}
            | dict.fromkeys(METRICS, 0.5)
            | {"auc": auc, "brier": brier}
        )
    return TrainResult(
        run_id="r1",
        version="1",
        model_name="repradar-risk",
        metrics=pd.DataFrame(rows),
        split={
            "train_window": "2017-04-01..2017-06-30",
            "valid_window": "2017-07-01..2017-09-30",
            "test_window": "2017-10-01..2017-12-31",
        },
        calibration={"chosen": "platt"},
        best_iteration=137,
        history_fallback=True,
        card="",
        has_oracle=False,
    )


def test_train_warns_when_the_model_did_worse_than_the_pacing_rule():
    """Maven: held-out AUC 0.857 against 0.909 for the pace, Brier 0.178 against 0.116, and `train` said
    nothing (the report did): the summary now has a warning line; `promote`'s gate is unchanged."""
    lines = _result(0.857, 0.178).summary_lines()
    warnings = [ln for ln in lines if ln.startswith("warning: ")]
    assert len(warnings) == 1, lines
    w = warnings[0]
    assert "(2017-10-01..2017-12-31) the model did worse than the pacing rule" in w
    assert "ROC-AUC 0.857 against 0.909, Brier 0.178 against 0.116" in w
    assert "compares it with the champion, not with the pace" in w
    assert lines.index(w) < lines.index(next(ln for ln in lines if ln.startswith("next: ")))
    # better on either measure: no warning (the report's rule, reporting.modelinfo.pacing_comparison)
    for auc, brier in ((0.93, 0.178), (0.857, 0.10)):
        assert not any(ln.startswith("warning: ") for ln in _result(auc, brier).summary_lines())


def test_train_and_build_training_set_count_the_same_inputs_and_say_what_they_count():
    """`build-training-set` said 'features: 67' and `train` '96 features' for the same Maven data: train
    counted each feature's peer median too. Both now give both counts."""
    from features.build import FeatureSet
    from training.pipeline import inputs_summary, model_features

    frame = pd.DataFrame(
        columns=["rep_id", "period_start", "period_end", "as_of", "missed"]
        + ["win_rate_180d", "tenure_days", "peer__win_rate_180d"]
    )
    fs = FeatureSet(frame=frame, feature_names=["win_rate_180d", "tenure_days"], history_fallback=False)
    assert "features: 2 (plus 1 peer median: 3 model inputs)" in fs.summary_lines()
    assert inputs_summary(model_features(fs)) == "3 model inputs: 2 features and 1 peer median"


def test_train_says_when_a_newer_version_kept_the_challenger_alias():
    """Two trainings at once: the one whose version is older does not take the alias, and its summary
    says which version holds it and how to promote its own."""
    r = _result(0.9, 0.1)
    r.newer_challenger = "3"
    lines = r.summary_lines()
    assert lines[0].startswith(
        "registered repradar-risk version 1 (not challenger: version 3, registered after it by a training "
    ), lines[0]
    assert "(alias challenger)" not in lines[0]
    assert lines[-1].startswith("next: `repradar promote --version 1` runs the gate for this version"), lines[
        -1
    ]
    assert "(alias challenger)" in _result(0.9, 0.1).summary_lines()[0]
    r = _result(0.9, 0.1)
    r.newer_challenger, r.newer_alias = "3", "champion"
    lines = r.summary_lines()
    assert (
        "version 1 (not challenger: version 3, registered after it by a training that ran at the same "
        in (lines[0])
    )
    assert lines[0].count("is already champion") == 1, lines[0]
    assert lines[-1].endswith("(version 3 is champion: this version would replace a newer one)"), lines[-1]
    r = _result(0.9, 0.1)
    r.newer_training = "version 3"
    lines = r.summary_lines()
    assert (
        "version 1 (alias challenger for now: another training, still running (version 3), takes the alias"
        in (lines[0])
    )
    assert lines[-1].endswith("takes the challenger, the other training's version if it finishes)"), lines[-1]
