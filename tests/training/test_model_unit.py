"""The model without MLflow: determinism, monotonicity, exact TreeSHAP, the pyfunc's own files."""

import json

import numpy as np
import pytest

from models.loading import LoadedModel
from models.pyfunc import RepRadarModel, write_artifacts
from models.scoring import scores_from_features
from repradar.settings import Settings
from tests.training.synthetic import synthetic_feature_set
from training.pipeline import build_spec, fit_all, model_features
from training.split import time_split

FAST = {"learning_rate": 0.1}


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    fs = synthetic_feature_set(n_reps=50, n_periods=5, weeks=6)
    settings = Settings(home=tmp_path_factory.mktemp("home"))
    split = time_split(fs.frame)
    names = model_features(fs)
    fit = fit_all(fs.frame, split, names, settings, params=FAST)
    paths = write_artifacts(tmp_path_factory.mktemp("model"), fit.spec, fit.booster.booster_, fit.calibrator)
    model = RepRadarModel.from_paths(paths)
    return fs, settings, split, names, fit, model


def test_same_seed_same_booster_text(fitted):
    fs, settings, split, names, fit, _ = fitted
    again = fit_all(fs.frame, split, names, settings, params=FAST)
    assert again.booster.booster_.model_to_string() == fit.booster.booster_.model_to_string()
    assert again.calibrator.to_dict() == fit.calibrator.to_dict()


def test_spec_falls_back_for_features_the_registry_does_not_know(fitted):
    names = fitted[3]
    spec = build_spec(names + ["some_new_metric"], fitted[1], meta={})
    assert spec.groups["some_new_metric"] in ("other",) or spec.groups["some_new_metric"]
    assert spec.monotone["some_new_metric"] == 0
    assert "some_new_metric" not in spec.better  # no good side known: its drivers read as before


def test_spec_carries_each_feature_s_good_side_and_old_specs_still_load(fitted):
    from models.spec import FeatureSpec

    spec = build_spec(
        ["win_rate_180d", "peer__win_rate_180d", "stage_days_91d", "tenure_days"], fitted[1], {}
    )
    assert spec.better == {
        "win_rate_180d": "higher",
        "peer__win_rate_180d": "higher",
        "stage_days_91d": "lower",
    }
    old = json.loads(spec.to_json())
    del old["better"]  # a model trained before the spec had it
    assert FeatureSpec.from_json(json.dumps(old)).better == {}


def test_spec_records_the_data_s_currency_and_an_old_spec_loads_as_usd(fitted, tmp_path):
    """`train` records REPRADAR_CURRENCY in the model; a model trained before it did keeps writing "$"."""
    from models.spec import FeatureSpec

    names = fitted[3]
    spec = build_spec(names, Settings(home=tmp_path, currency="EUR"), meta={})
    assert spec.currency == "EUR"
    assert FeatureSpec.from_json(spec.to_json()).currency == "EUR"
    assert build_spec(names, fitted[1], meta={}).currency == "USD"  # the setting's default
    old = json.loads(spec.to_json())
    del old["currency"]  # a model trained before the spec had it
    assert FeatureSpec.from_json(json.dumps(old)).currency == "USD"


def test_shipped_files_reproduce_the_fitted_model(fitted):
    fs, _, split, names, fit, model = fitted
    test = fs.frame[split.test]
    raw = fit.booster.booster_.predict(test[names].to_numpy(float), raw_score=True)
    out = model.predict_frame(test)
    np.testing.assert_allclose(out["raw_score"], raw, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out["risk"], fit.calibrator.predict(raw), rtol=0, atol=1e-12)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_lightgbm_treeshap_equals_shap_tree_explainer_and_sums_to_raw_score(fitted):
    shap = pytest.importorskip("shap")
    fs, _, split, names, _, model = fitted
    rows = fs.frame[split.test].head(200)
    contrib = model.contributions(rows)
    raw = model.predict_frame(rows)["raw_score"].to_numpy()
    np.testing.assert_allclose(contrib[names].sum(axis=1) + contrib["base_value"], raw, rtol=0, atol=1e-6)
    values = shap.TreeExplainer(model.booster_).shap_values(model.feature_matrix(rows))
    values = values[1] if isinstance(values, list) else values
    np.testing.assert_allclose(contrib[names].to_numpy(), values, rtol=0, atol=1e-9)


def test_drivers_are_the_positive_contributions_largest_first(fitted):
    fs, settings, split, names, _, model = fitted
    last = fs.frame[split.test]
    rows = last[last["as_of"] == last["as_of"].max()]
    scores = scores_from_features(rows, LoadedModel("m", "7", model), settings)
    assert scores["rank"].tolist() == list(range(1, len(rows) + 1))
    assert scores["risk"].is_monotonic_decreasing
    contrib = model.contributions(rows.set_index("rep_id"))
    for _, r in scores.iterrows():
        d = r["drivers"]
        assert len(d) <= settings.max_drivers
        cs = [x["contribution"] for x in d]
        assert cs == sorted(cs, reverse=True) and all(c > 0 for c in cs)
        for x in d:
            assert abs(contrib.loc[r["rep_id"], x["feature"]] - x["contribution"]) < 1e-12
        from features.contract import INTERVENTION_IDS

        assert set(r["interventions"]) <= set(INTERVENTION_IDS) and r["model_version"] == "7"


def test_missing_feature_column_is_a_clear_error(fitted):
    fs, settings, split, names, _, model = fitted
    rows = fs.frame[split.test].drop(columns=[names[0]]).head(3)
    from repradar.errors import UserError

    with pytest.raises(UserError, match="retrain"):
        scores_from_features(rows, LoadedModel("m", "1", model), settings)


def test_constrained_features_never_raise_risk(fitted):
    fs, _, split, names, fit, model = fitted
    rows = fs.frame[split.test].reset_index(drop=True)
    base = model.predict_frame(rows)["risk"].to_numpy()
    constrained = [n for n in names if fit.spec.monotone[n] == -1]
    if not constrained:
        pytest.skip("the registry marks no synthetic feature as monotone yet")
    for n in constrained:
        for bump in (0.01, 0.5, 5.0):
            more = rows.copy()
            more[n] = more[n] + bump * (more[n].abs().mean() + 1.0)
            assert np.all(model.predict_frame(more)["risk"].to_numpy() <= base + 1e-12), n
