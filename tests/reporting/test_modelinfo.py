"""What the report says about the model from its run's held-out metrics."""

from __future__ import annotations

import pandas as pd

from reporting.modelinfo import ModelInfo


def _metrics(model_auc: float, model_brier: float) -> pd.DataFrame:
    """evaluation/metrics.csv as training logs it: held-out and other rows, overall and per week."""
    rows = []
    for name, auc, brier in (
        ("model", model_auc, model_brier),
        ("pacing", 0.909, 0.116),
        ("logistic", 0.87, 0.25),
    ):
        rows.append(
            dict(rows="heldout", scope="overall", model=name, n=490, n_missed=336, auc=auc, brier=brier)
        )
        rows.append(dict(rows="heldout", scope="week3", model=name, n=35, n_missed=24, auc=0.5, brier=0.3))
    return pd.DataFrame(rows)


def test_a_model_worse_than_the_pacing_rule_on_its_held_out_period_is_said_so():
    # the Maven export's first model: AUC 0.857 and Brier 0.178 against the pace's 0.909 and 0.116
    info = ModelInfo(
        "m", "1", None, None, tags={"test_window": "2017-10-01..2017-12-31"}, metrics=_metrics(0.857, 0.178)
    )
    text = info.worse_than_pacing()
    assert text is not None
    assert "(2017-10-01..2017-12-31)" in text and "pacing rule" in text
    assert "ROC-AUC 0.857 against 0.909" in text and "Brier 0.178 against 0.116" in text
    # better on either measure, or no metrics or baseline at all: nothing to say
    assert ModelInfo("m", "1", None, None, metrics=_metrics(0.93, 0.178)).worse_than_pacing() is None
    assert ModelInfo("m", "1", None, None, metrics=_metrics(0.857, 0.10)).worse_than_pacing() is None
    assert ModelInfo("m", "1", None, None).worse_than_pacing() is None
    no_pace = _metrics(0.857, 0.178).query("model != 'pacing'")
    assert ModelInfo("m", "1", None, None, metrics=no_pace).worse_than_pacing() is None


def test_the_call_out_says_when_the_model_still_ranked_better_than_the_pace_early_in_the_period():
    """The Maven export's first model: worse than the pace over the whole held-out quarter, better at
    week 3 (ROC-AUC 0.860 against 0.760), where the risks matter most: the call-out says both."""
    overall = _metrics(0.857, 0.178).assign(group="all")
    week = [
        dict(rows="heldout", scope="week", group=g, model=name, n=35, n_missed=24, auc=auc, brier=0.2)
        for g, aucs in (("3", (0.860, 0.760)), ("9", (0.80, 0.95)))
        for name, auc in zip(("model", "pacing"), aucs, strict=True)
    ]
    info = ModelInfo("m", "1", None, None, metrics=pd.concat([overall, pd.DataFrame(week)]))
    text = info.worse_than_pacing()
    assert "though at week 3 it ranked better (ROC-AUC 0.860 against 0.760)" in text
    assert text.endswith("retrain once more finished periods are in the data")
    # the pace ahead at week 3 as well: nothing softens the call-out
    worse = [dict(r, auc=0.70) if r["group"] == "3" and r["model"] == "model" else r for r in week]
    info = ModelInfo("m", "1", None, None, metrics=pd.concat([overall, pd.DataFrame(worse)]))
    assert "though" not in info.worse_than_pacing()
