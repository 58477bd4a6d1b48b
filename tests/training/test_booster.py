"""The LightGBM booster: `--param` overrides take effect whatever name LightGBM knows them by."""

from __future__ import annotations

import numpy as np
import pytest

from training.booster import RiskBooster


def _fit(params):
    rng = np.random.default_rng(0)
    X = rng.random((1200, 3))
    y = (X[:, 0] + rng.random(1200) * 0.5 > 0.8).astype(int)
    return RiskBooster(params=params, early_stopping_rounds=20).fit(
        X[:900], y[:900], X[900:], y[900:], ["a", "b", "c"], [0, 0, 0]
    )


@pytest.mark.parametrize(
    ("alias", "name", "value"),
    [
        # scikit-learn API names a data scientist types: merged as given, they sat beside the default's
        # own name, which LightGBM prefers, and the model was the default one (lgbm.<alias> logged)
        ("min_child_samples", "min_data_in_leaf", 300),
        ("max_leaves", "num_leaves", 3),
        ("reg_lambda", "lambda_l2", 0.0),
        ("n_estimators", "num_iterations", 7),
    ],
)
def test_an_override_by_an_alias_takes_effect_like_its_own_name(alias, name, value):
    by_alias, by_name = _fit({alias: value}), _fit({name: value})
    assert by_alias.booster_.model_to_string() == by_name.booster_.model_to_string()
    assert by_alias.booster_.model_to_string() != _fit({}).booster_.model_to_string()
    assert alias not in by_alias.params_ and (name == "num_iterations" or by_alias.params_[name] == value)
