"""Quota versus rep: the quota group's share of the risk-raising contributions."""

import numpy as np
import pandas as pd
import pytest

from models.quota_split import quota_shares, split_frame


def test_quota_share_counts_positive_quota_against_rep_side_groups_only():
    g = pd.DataFrame(
        {
            "quota": [0.6, 0.2, -0.3, 0.0],
            "pipeline": [0.2, 0.6, 0.5, -0.1],
            "activity": [0.2, 0.2, 0.0, -0.2],
            "attainment": [2.0, 2.0, 2.0, 2.0],  # context: on neither side
            "tenure": [1.0, 0.0, 0.0, 0.0],
        }
    )
    q = quota_shares(g)
    assert q == pytest.approx([0.6, 0.2, 0.0, 0.0])
    s = split_frame(g)
    assert s["rep_share"].tolist() == pytest.approx([0.4, 0.8, 1.0, 0.0])  # nothing raises the risk: 0 and 0


def test_more_quota_groups_can_be_named():
    g = pd.DataFrame({"quota": [0.2], "pipeline": [0.2], "activity": [0.4]})
    assert quota_shares(g, quota_groups=("quota", "pipeline")) == pytest.approx([0.5])


def test_a_high_quota_share_puts_smart_goals_before_training():
    from models.playbook import choose, default_playbook

    pb = default_playbook()
    rule = next(r for r in pb.rules if "skills_training" in r.suggest)
    ranked = [("skills_training", 3.0, rule), ("development_plan", 1.0, rule)]
    reason = lambda rule, lang, note=None, iid=None: f"{note}"  # noqa: E731
    low, _ = choose(pb, ranked, quota_share=0.1, insufficient=False, reason_of=reason)
    high, reasons = choose(pb, ranked, quota_share=0.8, insufficient=False, reason_of=reason)
    assert low[0] == "skills_training"
    assert high[0] == "smart_goals" and reasons[0]["reason_en"] == "quota_first"


def test_quota_share_on_scored_rows_follows_the_quota_drivers():
    from tests.models.tiny_model import shared_tiny_model, tiny_frame

    model = shared_tiny_model()
    f = tiny_frame(200, seed=4)
    out = model.predict_frame(f, actions=True, recourse=False)
    assert out["quota_share"].between(0, 1).all()
    hard = f["quota_vs_segment"] > 1.5
    assert out.loc[hard, "quota_share"].mean() > out.loc[~hard, "quota_share"].mean()
    first = out["interventions"].str[0]
    quota_first = (out["quota_share"] >= 0.5) & ~out[
        "insufficient_data"
    ]  # onboarding comes first for new reps
    assert quota_first.any() and (first[quota_first] == "smart_goals").all()
    assert np.isfinite(out["quota_share"]).all()


def test_without_a_quota_signal_there_is_no_split_but_a_note():
    """Maven: one quota policy for everyone and no territory features, yet the rep page said '0% of the risk
    from the quota and territory, 100% from the rep's own work', which reads as a verdict on the rep."""
    from models.quota_split import quota_varies
    from tests.models.tiny_model import shared_tiny_model, tiny_frame

    model = shared_tiny_model(fixed_quota=True)
    f = tiny_frame(60, seed=5)
    out = model.predict_frame(f, actions=True, recourse=False)
    assert out["quota_share"].isna().all()
    notes = out["notes"].map(lambda ns: {n["code"]: n for n in ns})
    assert notes.map(lambda ns: "no_quota_signal" in ns).all()
    note = notes.iat[0]["no_quota_signal"]
    assert "no quota or territory signal" in note["text_en"] and "指标或区域信号" in note["text_zh"]
    # a model that weighs the quota keeps its split and says nothing of the kind
    varied = shared_tiny_model().predict_frame(f, actions=True, recourse=False)
    assert varied["quota_share"].between(0, 1).all()
    assert not varied["notes"].map(lambda ns: any(n["code"] == "no_quota_signal" for n in ns)).any()
    assert not quota_varies(pd.DataFrame({"pipeline": [0.3]}))  # no quota group at all
    assert quota_varies(pd.DataFrame({"quota": [0.0, -0.1]}))
