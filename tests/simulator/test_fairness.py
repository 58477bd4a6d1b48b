"""Gender carries no signal unless asked for; `bias_quota_against` makes that group's quotas harder."""

from __future__ import annotations

import pandas as pd


def rep_periods(folder) -> pd.DataFrame:
    rp = pd.read_parquet(folder / "truth" / "rep_periods.parquet")
    reps = pd.read_parquet(folder / "reps.parquet")[["rep_id", "gender", "age_band"]]
    return rp.merge(reps, on="rep_id")


def test_gender_has_no_effect_when_unbiased(medium_org):
    rp = rep_periods(medium_org[0])
    by = rp[rp["gender"].isin(["F", "M"])].groupby("gender")
    miss = by["missed"].mean()
    assert abs(miss["F"] - miss["M"]) < 0.1  # reps cluster in teams: a few hundred reps leave this much noise
    diff = by["trait_quota_difficulty"].mean()
    assert abs(diff["F"] / diff["M"] - 1) < 0.05
    assert (rp["quota_bias_factor"] == 1.0).all()
    for trait in ("trait_skill", "trait_effort", "trait_territory"):
        means = by[trait].mean()
        assert abs(means["F"] - means["M"]) < 0.1, trait
    assert rp["age_band"].nunique() >= 4


def test_bias_makes_that_groups_quotas_harder(medium_org, biased_org):
    fair, biased = rep_periods(medium_org[0]), rep_periods(biased_org[0])
    d = biased.groupby("gender")["trait_quota_difficulty"].mean()
    assert 1.15 < d["F"] / d["M"] < 1.35
    assert (biased.loc[biased["gender"] == "F", "quota_bias_factor"] == 1.25).all()
    # same seed and people, but the runs drift apart once quotas differ (other interventions and
    # leavers shift every later random draw): compare expected outcomes, which carry far less noise
    risk_f = fair.groupby("gender")["miss_prob"].mean()
    risk_b = biased.groupby("gender")["miss_prob"].mean()
    assert risk_b["F"] - risk_f["F"] > 0.05
    assert abs(risk_b["M"] - risk_f["M"]) < 0.03
    miss_f, miss_b = fair.groupby("gender")["missed"].mean(), biased.groupby("gender")["missed"].mean()
    assert miss_b["F"] - miss_b["M"] > miss_f["F"] - miss_f["M"]
    att_f = fair.groupby("gender")["expected_attainment"].median()
    att_b = biased.groupby("gender")["expected_attainment"].median()
    assert att_b["F"] / att_f["F"] < 0.9
    assert abs(att_b["M"] / att_f["M"] - 1) < 0.08
    reps_f = pd.read_parquet(medium_org[0] / "reps.parquet")
    reps_b = pd.read_parquet(biased_org[0] / "reps.parquet")
    cols = ["rep_id", "manager_id", "hire_date", "team", "region", "segment", "name", "gender", "age_band"]
    assert reps_f[cols].equals(reps_b[cols])
