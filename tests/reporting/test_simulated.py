"""The audit, drift and intervention estimates on simulated organisations with a known truth."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.reporting.conftest import AS_OF, TRAIN_AS_OF

pytestmark = pytest.mark.slow


def _miss_prob_by_gender(org) -> pd.Series:
    rp = pd.read_parquet(org / "truth" / "rep_periods.parquet")
    reps = pd.read_parquet(org / "reps.parquet")[["rep_id", "gender"]]
    rp = rp[rp["period_start"] == pd.Timestamp("2023-10-01")].merge(reps, on="rep_id")
    return rp.groupby("gender")["miss_prob"].mean()


def test_no_attribute_effect_keeps_gender_within_the_bounds(fair_org, fair_scores, fair_tables):
    from reporting.fairness import OTHER, fairness_audit

    truth = _miss_prob_by_gender(fair_org)
    assert abs(truth["F"] - truth["M"]) < 0.04  # premise: gender carries no real effect here
    audit = fairness_audit(fair_scores, fair_tables.reps)
    g = audit.get("gender")
    sel = g.selection.set_index("group")
    assert sel.loc[["F", "M"], "judged"].all()
    assert sel.loc[["F", "M"], "ratio"].between(0.8, 1.25).all(), sel
    assert audit.flagged("gender") == []
    assert "X" in g.merged and not sel.loc[OTHER, "judged"]  # 2% of reps: merged, too small to judge


def test_quotas_biased_against_a_group_get_it_flagged(biased_org, model, settings):
    from features.io import load_folder
    from models.scoring import score_tables
    from reporting.fairness import fairness_audit

    truth = _miss_prob_by_gender(biased_org)
    assert truth["F"] - truth["M"] > 0.05  # premise: harder quotas make F reps miss more
    tables = load_folder(biased_org, validate=False)
    audit = fairness_audit(score_tables(tables, AS_OF, model, settings), tables.reps)
    assert audit.flagged("gender") == ["F"]
    c = [c for c in audit.callouts if c.column == "gender"][0]
    assert (c.over, c.under) == ("F", "M") and c.ratio < 0.8 and c.significant


def _shifted(tables):
    """Deals 2.5 times larger and two in three activities gone: a different world."""
    return tables.replace(
        opportunities=tables.opportunities.assign(amount=tables.opportunities["amount"] * 2.5),
        opportunity_history=tables.opportunity_history.assign(
            amount=tables.opportunity_history["amount"] * 2.5
        ),
        activities=tables.activities.iloc[::3].reset_index(drop=True),
    )


@pytest.mark.parametrize("shift", [False, True], ids=["unshifted", "shifted"])
def test_drift_warns_on_a_shifted_copy_only(shift, train_tables, model, settings, model_info):
    from features.build import build_scoring_set
    from models.scoring import scores_from_features
    from reporting.drift import drift_report

    assert model_info.reference is not None  # the training run logged it
    tables = _shifted(train_tables) if shift else train_tables
    frame = build_scoring_set(tables, TRAIN_AS_OF).frame
    scores = scores_from_features(frame, model, settings)
    r = drift_report(model_info.reference, frame, drivers=scores["drivers"])
    if shift:
        assert r.retrain_advised
        assert {"avg_won_deal_size_180d", "activities_per_week_28d"} <= set(r.drifted)
        assert r.share_on_drifted > 0.3
    else:
        assert not r.retrain_advised, r.table.head()
        assert r.table["psi"].max() < 0.1


def _pairs_with_truth(effects, org) -> pd.DataFrame:
    """The report's matched pairs with the simulator's true effect of each intervention."""
    truth = pd.read_parquet(org / "truth" / "interventions_applied.parquet")
    truth["rep_id"] = truth["rep_id"].astype(str)
    return effects.pairs.merge(
        truth[["rep_id", "intervention", "started_on", "delta_expected_attainment"]],
        on=["rep_id", "intervention", "started_on"],
        how="left",
    )


def _types_missing_the_truth(effects, org) -> tuple[list[str], int]:
    """Types with enough reps whose interval misses the simulator's true effect on the treated, and
    how many types had enough reps."""
    pairs = _pairs_with_truth(effects, org)
    assert pairs["delta_expected_attainment"].notna().all()
    true_att = pairs.groupby("intervention")["delta_expected_attainment"].mean()
    t = effects.table[effects.table["enough"]].set_index("intervention")
    missed = [iv for iv, r in t.iterrows() if not r["attainment_low"] <= true_att[iv] <= r["attainment_high"]]
    return missed, len(t)


def test_estimates_cover_the_true_effect_when_managers_decide_on_the_data(observed_report, observed_org):
    # manager_view="observed": whom to help follows what the CRM shows, the estimate's assumption;
    # measured at seeds 42 / 7 / 11: 0 of 3, 0 of 3 and 0 of 2 types missed (matching alone: 0, 0, 1)
    e = observed_report.effects
    missed, n_types = _types_missing_the_truth(e, observed_org)
    assert n_types >= 2
    assert missed == []
    # and not by being vague: widths were 0.29 to 1.30 attainment at seeds 42 / 7 / 11
    t = e.table[e.table["enough"]]
    assert (t["attainment_high"] - t["attainment_low"] < 1.5).all(), t


@pytest.mark.xfail(
    strict=True,
    reason=(
        "selection on what no table shows: the simulator's managers (manager_view='informed', the "
        "default) judge risk from the true latent state, which the snapshot's data only partly show, so the "
        "comparison stays healthier than the treated's counterfactual. The bias-corrected matched estimate (docs/report.md) still runs "
        "below the truth: pooled -0.07/-0.05/-0.05 attainment at seeds 42/7/11 (matching on risk alone: "
        "-0.16/-0.11/-0.14), and its interval misses the truth for 1 of 8, 1 of 8 and 1 of 9 types (alone: "
        "3, 2, 3); here (seed 42) smart_goals, -0.23 against +0.04"
    ),
)
def test_estimates_cover_the_true_effect_when_managers_know_more_than_the_data(fair_report, fair_org):
    missed, n_types = _types_missing_the_truth(fair_report.data.effects, fair_org)
    assert n_types >= 3
    assert missed == []


def test_intervention_estimates_are_reported_with_n_and_intervals(fair_report, fair_org):
    e = fair_report.data.effects
    applied = pd.read_parquet(fair_org / "truth" / "interventions_applied.parquet")
    assert e is not None and e.table["n_treated"].sum() > 0.8 * len(applied)
    t = e.table[e.table["enough"]]
    assert len(t) >= 3 and (t["n_treated"] >= e.min_reps).all()
    assert (t["attainment_low"] < t["attainment_effect"]).all() and (
        t["attainment_effect"] < t["attainment_high"]
    ).all()
    assert ((t["risk_treated"] - t["risk_matched"]).abs() < 0.02).all()  # matched on risk


def test_the_bias_correction_brings_the_estimate_closer_to_the_truth(fair_report, fair_org):
    # pooled over all matched interventions: matching on risk alone runs ~0.16 low here, corrected ~0.07
    e = fair_report.data.effects
    pairs = _pairs_with_truth(e, fair_org)
    assert len(e.adjusted_for) > 50 and {"attainment_to_date", "pipeline_per_quota", "risk"} <= set(
        e.adjusted_for
    )
    alone = pairs["attainment"] - pairs["control_attainment"] - pairs["delta_expected_attainment"]
    corrected = alone - pairs["attainment_adjustment"]
    assert abs(corrected.mean()) < 0.6 * abs(alone.mean())
