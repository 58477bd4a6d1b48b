"""Cause match: the playbook's top-two interventions against the simulator's hidden causes."""

from math import comb

import numpy as np
import pandas as pd
import pytest

from training.cause_match import match_rows, metrics, random_pair_share, summarise, table


def test_random_baseline_is_the_exact_chance_of_two_distinct_ids():
    assert random_pair_share(1, 16) == pytest.approx(2 / 16)
    assert random_pair_share(2, 16) == pytest.approx(1 - comb(14, 2) / comb(16, 2))
    assert random_pair_share(0, 16) == 0.0


def _tiny():
    ps = pd.Timestamp("2024-01-01")
    frame = pd.DataFrame(
        {
            "rep_id": ["a", "b", "c", "d", "a", "b"],
            "period_start": [ps] * 6,
            "week_of_period": [3, 3, 3, 3, 6, 6],
        }
    )
    tops = [
        ["skills_training", "mentoring"],  # a: skill -> hit
        ["incentives", "smart_goals"],  # b: quota -> hit
        ["pipeline_generation", "incentives"],  # c: customer -> miss
        ["smart_goals", "incentives"],  # d: met target -> not counted
        ["incentives", "recognition"],  # a week 6: skill -> miss
        ["smart_goals", "incentives"],  # b week 6: hit
    ]
    truth = pd.DataFrame(
        {
            "rep_id": ["a", "b", "c", "d"],
            "period_start": [ps] * 4,
            "missed": [True, True, True, False],
            "dominant_cause": ["skill", "quota", "customer", "effort"],
        }
    )
    return frame, tops, truth


def test_match_rows_and_summary_on_a_tiny_frame():
    frame, tops, truth = _tiny()
    rows = match_rows(frame, tops, truth)
    assert len(rows) == 5 and rows["hit"].tolist() == [True, True, False, False, True]
    all_tops = pd.DataFrame({"week": frame["week_of_period"], "top": tops})
    from features.contract import INTERVENTION_IDS

    s = summarise(rows, all_tops, tuple(INTERVENTION_IDS))
    w3 = s[(s["week"] == 3) & (s["cause"] == "all")].iloc[0]
    assert w3["n"] == 3 and w3["playbook"] == pytest.approx(2 / 3)
    assert w3["frequent_ids"] == "incentives,smart_goals"  # the two ids most often in a top two
    assert w3["frequent"] == pytest.approx(1 / 3)  # answers only the quota rep
    m = metrics(s)
    assert m["cause_match_week3"] == pytest.approx(2 / 3) and "cause_match_week6_skill" in m
    # 2 of 3 reps: the Wilson interval says how little three reps show
    assert (w3["playbook_low"], w3["playbook_high"]) == pytest.approx((0.2077, 0.9385), abs=1e-4)
    assert m["cause_match_week3_low"] == w3["playbook_low"] and "cause_match_week3_skill_low" not in m
    assert "| 3 | all | 3 | 0.67 [0.21, 0.94] |" in table(s)


def test_misses_split_into_clear_and_mixed_causes_by_how_far_the_cause_leads(tmp_path):
    frame, tops, truth = _tiny()
    # a: skill 0.4 against 0.1 (clear); b: quota 0.3 against 0.2 (mixed); c: customer alone (clear)
    truth["contrib_skill"] = [0.4, 0.0, 0.0, 0.0]
    truth["contrib_quota"] = [0.1, 0.3, 0.0, 0.0]
    truth["contrib_customer"] = [0.0, 0.2, 0.25, 0.0]
    (tmp_path / "truth").mkdir()
    truth.to_parquet(tmp_path / "truth" / "rep_periods.parquet")
    from features.contract import INTERVENTION_IDS
    from training.cause_match import load_truth

    loaded = load_truth(tmp_path)
    assert not any(c.startswith("contrib_") for c in loaded.columns)
    rows = match_rows(frame, tops, loaded)
    assert rows["cause_lead"].tolist()[:3] == pytest.approx([4.0, 1.5, np.inf])
    s = summarise(rows, pd.DataFrame({"week": frame["week_of_period"], "top": tops}), tuple(INTERVENTION_IDS))
    w3 = s[s["week"] == 3].set_index("cause")
    assert w3.loc["clear", "n"] == 2 and w3.loc["clear", "playbook"] == pytest.approx(
        1 / 2
    )  # a hit, c missed
    assert w3.loc["mixed", "n"] == 1 and w3.loc["mixed", "playbook"] == pytest.approx(1.0)  # b hit
    w6 = s[s["week"] == 6].set_index("cause")
    assert w6.loc["clear", "n"] == 1 and w6.loc["clear", "playbook"] == pytest.approx(0.0)
    m = metrics(s)
    assert m["cause_match_week3_clear"] == pytest.approx(0.5) and m["cause_match_week3_mixed_n"] == 1
    # without contributions in the truth (a company's own recorded reasons) there is no split
    assert "clear" not in set(
        summarise(
            match_rows(frame, tops, truth.drop(columns=[c for c in truth if c.startswith("contrib_")])),
            pd.DataFrame({"week": frame["week_of_period"], "top": tops}),
            tuple(INTERVENTION_IDS),
        )["cause"]
    )


def test_training_logs_cause_match_to_mlflow(settings, trained):
    from mlflow.tracking import MlflowClient

    from models import registry

    client: MlflowClient = registry.configure(settings)
    mv = client.get_model_version(settings.model_name, "1")
    run = client.get_run(mv.run_id)
    for w in (3, 6, 9):
        assert f"cause_match_week{w}" in run.data.metrics
        assert f"cause_match_week{w}_random" in run.data.metrics
        assert f"cause_match_week{w}_frequent" in run.data.metrics
        assert f"cause_match_week{w}_clear_n" in run.data.metrics  # the simulator's truth has contributions
        low, high = (
            run.data.metrics[f"cause_match_week{w}_low"],
            run.data.metrics[f"cause_match_week{w}_high"],
        )
        assert low <= run.data.metrics[f"cause_match_week{w}"] <= high
    arts = {a.path for a in client.list_artifacts(mv.run_id, "evaluation")}
    assert "evaluation/cause_match.csv" in arts


def test_playbook_beats_both_baselines_on_a_small_simulated_org(sim_org, model_v1, heldout, settings):
    from training.cause_match import cause_match, load_truth

    truth = load_truth(sim_org)
    s = cause_match(heldout, model_v1.pyfunc, truth, settings=settings)
    overall = s[s["cause"] == "all"]
    assert set(overall["week"]) == {3, 6, 9}
    n = overall["n"].to_numpy()
    assert n.sum() >= 20, "too few missed reps with a cause to say anything"
    pooled = {k: float(np.average(overall[k], weights=n)) for k in ("playbook", "random", "frequent")}
    assert pooled["playbook"] > pooled["random"] + 0.1, pooled
    assert pooled["playbook"] > pooled["frequent"], pooled
