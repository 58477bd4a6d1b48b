import numpy as np

from tests.training.synthetic import synthetic_feature_set
from training.baselines import LogisticBaseline, PacingBaseline, elapsed_share, pace_gap


def test_elapsed_share_and_pace_gap():
    f = synthetic_feature_set(n_reps=4, n_periods=1, weeks=3).frame
    share = elapsed_share(f)
    np.testing.assert_allclose(share, f["elapsed_share"].to_numpy())
    np.testing.assert_allclose(pace_gap(f), f["attainment_to_date"].to_numpy() - share)


def test_pacing_risk_falls_as_attainment_rises_and_logistic_handles_missing_values():
    f = synthetic_feature_set(n_reps=40, n_periods=2, weeks=6).frame
    y = f["missed"].astype(int)
    pacing = PacingBaseline().fit(f, y)
    assert pacing.coef_ < 0
    more = f.copy()
    more["attainment_to_date"] += 0.2
    assert np.all(pacing.predict_proba(more) <= pacing.predict_proba(f))
    names = ["attainment_to_date", "pipeline_coverage", "calls_per_week"]
    assert f["calls_per_week"].isna().any()
    p = LogisticBaseline(names).fit(f, y).predict_proba(f)
    assert np.isfinite(p).all() and ((p > 0) & (p < 1)).all()
