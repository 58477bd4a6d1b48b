"""The hidden truth: labels agree with the data, causes are well formed, the oracle and interventions behave."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features import contract
from simulator import params as P
from simulator.truth import CAUSE_TO_INTERVENTIONS, CAUSES


def truth(folder, name):
    return pd.read_parquet(folder / "truth" / f"{name}.parquet")


def auc(score: np.ndarray, label: np.ndarray) -> float:
    pos, neg = score[label], score[~label]
    greater = (pos[:, None] > neg[None, :]).mean()
    ties = (pos[:, None] == neg[None, :]).mean()
    return float(greater + ties / 2)


def test_cause_map_covers_every_cause_with_catalog_ids():
    assert tuple(CAUSE_TO_INTERVENTIONS) == CAUSES
    for ids in CAUSE_TO_INTERVENTIONS.values():
        assert ids and set(ids) <= set(contract.INTERVENTION_IDS)
    assert set(P.INTERVENTION_EFFECTS) == set(contract.INTERVENTION_IDS)


def test_rep_periods_match_quotas_and_won_deals(small_org):
    folder, summary = small_org
    rp = truth(folder, "rep_periods")
    quotas = pd.read_parquet(folder / "quotas.parquet")
    keys = ["rep_id", "period_start"]
    assert rp[keys].equals(quotas[keys])
    assert np.allclose(rp["quota_amount"], quotas["quota_amount"])
    opps = pd.read_parquet(folder / "opportunities.parquet")
    won = opps[opps["is_won"]].merge(quotas, on="rep_id")
    won = won[(won["close_date"] >= won["period_start"]) & (won["close_date"] <= won["period_end"])]
    by_period = won.groupby(keys)["amount"].sum()
    recomputed = rp.set_index(keys)["won_amount"]
    assert np.allclose(by_period.reindex(recomputed.index, fill_value=0.0), recomputed)
    assert np.allclose(rp["attainment"], rp["won_amount"] / rp["quota_amount"])
    assert (rp["missed"] == (rp["attainment"] < 1.0)).all()
    assert summary["rep_periods"] == len(rp)


def test_dominant_cause_only_for_missed_at_risk_rep_periods(medium_org):
    rp = truth(medium_org[0], "rep_periods")
    named = rp["dominant_cause"].notna()
    assert named.any()
    assert rp.loc[named, "dominant_cause"].isin(CAUSES).all()
    assert (rp.loc[named, "missed"] & rp.loc[named, "at_risk"]).all()
    assert rp.loc[~rp["missed"], "dominant_cause"].isna().all()
    contrib = rp[[f"contrib_{c}" for c in CAUSES]].to_numpy()
    top = np.asarray(CAUSES)[contrib.argmax(axis=1)]
    assert (top[named] == rp.loc[named, "dominant_cause"]).all(), (
        "the dominant cause is the largest contribution"
    )
    assert rp.loc[named, "dominant_cause"].nunique() == len(CAUSES), "every cause occurs"
    # most misses have a cause; being at risk predicts missing
    assert named.sum() / rp["missed"].sum() > 0.5
    assert rp.loc[rp["at_risk"], "missed"].mean() > 0.6
    assert rp.loc[~rp["at_risk"], "missed"].mean() < 0.2
    for col in (
        "trait_skill",
        "trait_burnout",
        "trait_ramp",
        "trait_quota_difficulty",
        "trait_manager_quality",
    ):
        assert rp[col].notna().all()


def test_trait_columns_are_the_periods_first_week(medium_org):
    # the first week that starts in the period: the week holding a period's first day may start in the
    # previous one, before January's territory redraw, which would show the old territory
    rp = truth(medium_org[0], "rep_periods")
    weekly = truth(medium_org[0], "weekly_traits")
    first = weekly.merge(rp[["rep_id", "period_start"]], on="rep_id")
    first = first[first["week_start"] >= first["period_start"]]
    first = first.sort_values("week_start").groupby(["rep_id", "period_start"], as_index=False).first()
    both = rp.merge(first, on=["rep_id", "period_start"], suffixes=("", "_weekly"))
    both = both[(both["week_start"] - both["period_start"]).dt.days <= 6]  # hired later: no such week
    assert len(both) > 0.9 * len(rp)
    for col in ("trait_territory", "trait_skill", "trait_manager_quality"):
        assert np.allclose(both[col], both[f"{col}_weekly"]), col
    # and January's redraw shows in the first quarter's territory
    jan = both[both["period_start"].dt.month == 1]
    assert len(jan) and (jan["trait_territory"] != jan["trait_territory_weekly"]).sum() == 0


def test_miss_rate_is_realistic(medium_org):
    rp = truth(medium_org[0], "rep_periods")
    assert len(rp) > 500
    assert 0.25 <= rp["missed"].mean() <= 0.35


def test_oracle_covers_the_last_two_periods_weekly_and_predicts(small_org):
    folder, _ = small_org
    o = truth(folder, "oracle")
    rp = truth(folder, "rep_periods")
    last_two = sorted(rp["period_start"].unique())[-2:]
    assert set(o["period_start"]) == set(last_two)
    assert ((o["as_of"] - o["period_start"]).dt.days % 7 == 0).all()
    assert o["oracle_risk"].between(0, 1).all()
    assert not o.duplicated(["rep_id", "period_start", "as_of"]).any()
    m = o.merge(rp[["rep_id", "period_start", "missed"]], on=["rep_id", "period_start"])
    assert len(m) == len(o)
    first = m[m["as_of"] == m["period_start"]]
    last = m[m["as_of"] == m.groupby("period_start")["as_of"].transform("max")]
    a_first = auc(first["oracle_risk"].to_numpy(), first["missed"].to_numpy())
    a_last = auc(last["oracle_risk"].to_numpy(), last["missed"].to_numpy())
    assert a_first > 0.7 and a_last > 0.9 and a_last >= a_first


def test_interventions_mostly_fit_the_cause_and_help(medium_org):
    folder, _ = medium_org
    rp = truth(folder, "rep_periods")
    applied = truth(folder, "interventions_applied")
    effects = truth(folder, "intervention_effects")
    log = pd.read_parquet(folder / "interventions.parquet")
    assert len(log) >= len(applied) > 0
    share = rp.loc[rp["at_risk"], "intervened"].mean()
    assert 0.07 <= share <= 0.3, share
    chosen = applied[applied["perceived_cause"].notna()]
    right = [
        iv in CAUSE_TO_INTERVENTIONS[c]
        for iv, c in zip(chosen["intervention"], chosen["perceived_cause"], strict=True)
    ]
    assert np.mean(right) > 0.6
    assert applied.loc[applied["recommended"], "delta_expected_attainment"].mean() > 0.02
    # in the designed experiment, the interventions that answer a cause beat the others
    for cause, g in effects.groupby("cause"):
        rec = g.loc[g["recommended"], "expected_delta_attainment"].mean()
        other = g.loc[~g["recommended"], "expected_delta_attainment"].mean()
        if cause == "quota":
            rec = g.loc[g["recommended"], "expected_delta_attainment_next_period"].mean()
        assert rec > other, cause
        assert (g["expected_delta_miss_prob"] <= 1e-9).all(), "no intervention raises risk"
    assert set(effects["intervention"]) == set(contract.INTERVENTION_IDS)


def test_truth_side_files(small_org):
    folder, _ = small_org
    t = folder / "truth"
    assert "dominant_cause" in (t / "causes.md").read_text()
    managers = truth(folder, "managers")
    assert (managers["level"] == 2).any()
    parents = managers.loc[managers["level"] == 1, "parent_id"]
    assert parents.isin(managers.loc[managers["level"] == 2, "manager_id"]).all()
    weekly = truth(folder, "weekly_traits")
    assert weekly["rep_id"].nunique() == pd.read_parquet(folder / "reps.parquet")["rep_id"].nunique()


def test_managers_judge_risk_from_what_their_view_shows():
    """Managers "informed" project a rep's period from the true traits; "observed" ones only from the
    CRM (won, open deals, an average rep's new business at the rep's ramp): other traits change nothing."""
    from simulator.engine import Engine
    from simulator.org import build_org
    from simulator.simulate import STREAMS, SimConfig, standard_quotas
    from simulator.timeline import build_calendar

    def projections(view, shift):
        cfg = SimConfig(n_reps=24, n_periods=1, seed=3, oracle_sims=0, manager_view=view)
        seeds = np.random.SeedSequence(cfg.seed).spawn(len(STREAMS))
        rng = {k: np.random.Generator(np.random.PCG64(s)) for k, s in zip(STREAMS, seeds, strict=True)}
        cal = build_calendar(cfg.start, cfg.n_periods)
        eng = Engine(cfg, cal, build_org(cfg.n_reps, cal, rng["org"]), rng, standard_quotas(cal))
        eng.run()
        reps = np.flatnonzero(eng.quota[:, 0] > 0)
        eng.x[:, [P.SKILL, P.TERRITORY, P.BURNOUT]] += shift  # hidden state only
        d = int(cal.period_end_day[0]) - 30
        return eng._expected_final(reps, d, 0, eng._judged_traits(reps))

    assert np.allclose(projections("observed", 0.0), projections("observed", -0.8))
    assert (projections("informed", -0.8) < projections("informed", 0.0)).all()
