"""The LightGBM risk booster: deterministic, monotone where the direction is not in doubt, early-stopped
on the out-of-time validation fold."""

from __future__ import annotations

import contextlib
import os
import sys

import numpy as np

# Chosen on a separate tuning organisation (simulated, seed 1, 1,000 reps) by held-out Brier and
# week-3 AUC, then reported on another (seed 0): small, heavily regularised trees. Differences
# between reasonable settings were within 0.003 AUC; small trees also keep TreeSHAP cheap.
DEFAULT_PARAMS: dict = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 5,
    "max_depth": -1,
    "min_data_in_leaf": "auto",  # 0.4% of the training rows, within 20..500
    "feature_fraction": 0.3,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 20.0,
    "max_bin": 255,
    # "basic": the strict method. "intermediate"/"advanced" score better but can break monotonicity
    # (LightGBM issues #5358, #6155; seen here too), and monotonicity is a product promise.
    "monotone_constraints_method": "basic",
    "metric": ["binary_logloss", "auc"],
}
NUM_BOOST_ROUND = 2000
EARLY_STOPPING_ROUNDS = 100


# What `--param` may not change: the model is a binary classifier whose raw score is log-odds (the
# calibrator, SHAP drivers and the playbook read it so), constrained as the feature registry says.
# The rest are set by RepRadar after the overrides, so a --param for them would be silently ignored.
FIXED_PARAMS = {
    "objective": "fixed: the raw score must be binary log-odds",
    "monotone_constraints": "fixed: the feature registry's monotone directions",
    "seed": "use --seed",
    "num_threads": "set REPRADAR_TRAIN_NUM_THREADS",
    "deterministic": "fixed: same data and seed give the same model",
    "force_col_wise": "fixed",
    "verbosity": "fixed",
    "first_metric_only": "fixed: early stopping on the first metric",
    # Early stopping is on the validation fold's log-loss, the first metric (docs/model.md): another
    # metric would change what the booster is cut at (an unknown one fails only after the build).
    "metric": "fixed: early stopping on the validation fold's log-loss",
    "early_stopping_round": f"fixed: early stopping after {EARLY_STOPPING_ROUNDS} rounds without a better log-loss",
}
# Boosting types LightGBM cannot early-stop: all NUM_BOOST_ROUND rounds would be kept, unvalidated.
NO_EARLY_STOPPING = {
    "dart": f"LightGBM cannot early-stop DART boosting: all {NUM_BOOST_ROUND} rounds would be kept"
}


def check_params(params: dict | None) -> None:
    """UserError, before any work, for a parameter LightGBM does not know (a typo would be silently
    ignored), one the product fixes, or a value LightGBM refuses (tried on a tiny data set)."""
    if not params:
        return
    import difflib

    import lightgbm as lgb
    from lightgbm.basic import _ConfigAliases

    from repradar.errors import UserError

    aliases = _ConfigAliases._get_all_param_aliases()
    canonical = {a: name for name, names in aliases.items() for a in (name, *names)}
    canonical.update({"n_estimators": "num_iterations"})
    for key in params:
        if key not in canonical:
            near = difflib.get_close_matches(key, list(canonical), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise UserError(
                f"--param {key}: LightGBM has no parameter {key!r}{hint}; see "
                "https://lightgbm.readthedocs.io/en/stable/Parameters.html"
            )
        twin = next((k for k in params if k != key and canonical.get(k) == canonical[key]), None)
        if twin is not None:  # one of them would be silently ignored
            raise UserError(
                f"--param {key} and --param {twin}: the same LightGBM parameter ({canonical[key]}) twice; "
                "keep the one you mean"
            )
        if canonical[key] in FIXED_PARAMS:
            raise UserError(f"--param {key}: not a training override ({FIXED_PARAMS[canonical[key]]})")
        if canonical[key] == "boosting" and str(params[key]).lower() in NO_EARLY_STOPPING:
            raise UserError(f"--param {key}={params[key]}: {NO_EARLY_STOPPING[str(params[key]).lower()]}")
    trial = {k: v for k, v in params.items() if v != "auto"}
    trial.update({"objective": "binary", "verbosity": -1, "num_threads": 1})
    rng = np.random.default_rng(0)
    try:
        with _native_stderr_silenced():
            data = lgb.Dataset(rng.random((40, 2)), label=np.arange(40) % 2, params={"verbosity": -1})
            lgb.train(trial, data, num_boost_round=1)
    except (lgb.basic.LightGBMError, ValueError, TypeError) as exc:
        msg = str(exc).split(" at /")[0].strip()
        raise UserError(f"--param: LightGBM refuses {params}: {msg}") from None


def canonical_params(params: dict | None) -> dict:
    """The overrides under LightGBM's own names (`min_child_samples` -> `min_data_in_leaf`, `eta` ->
    `learning_rate`, `n_estimators` -> `num_iterations`): merged under an alias, an override would sit
    beside the default's own name, which LightGBM prefers, and be silently ignored."""
    from lightgbm.basic import _ConfigAliases

    aliases = _ConfigAliases._get_all_param_aliases()
    canonical = {a: name for name, names in aliases.items() for a in (name, *names)}
    canonical["n_estimators"] = "num_iterations"
    return {canonical.get(k, k): v for k, v in (params or {}).items()}


@contextlib.contextmanager
def _native_stderr_silenced():
    """LightGBM's C++ side writes "[LightGBM] [Fatal] ..." straight to file descriptor 2 before it
    raises; the exception carries the same text, which the UserError says in words."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # stderr replaced (pytest capture, notebooks)
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


def auto_min_data_in_leaf(n_rows: int) -> int:
    """0.4% of the training rows, at least 20 and at most 500."""
    return int(np.clip(round(0.004 * n_rows), 20, 500))


class RiskBooster:
    """Fits a LightGBM binary booster; `booster_` holds the result, cut at the best iteration."""

    def __init__(
        self,
        params: dict | None = None,
        num_boost_round: int = NUM_BOOST_ROUND,
        early_stopping_rounds: int = EARLY_STOPPING_ROUNDS,
        seed: int = 42,
        num_threads: int = 1,
    ):
        self.params = params
        self.num_boost_round = num_boost_round
        self.early_stopping_rounds = early_stopping_rounds
        self.seed = seed
        self.num_threads = num_threads

    def full_params(self, monotone: list[int]) -> dict:
        p = dict(DEFAULT_PARAMS)
        p.update(canonical_params(self.params))
        p.update(
            {
                "seed": self.seed,
                "deterministic": True,
                "force_col_wise": True,
                "num_threads": self.num_threads,
                "verbosity": -1,
                "monotone_constraints": list(monotone),
                "first_metric_only": True,
            }
        )
        return p

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        X_valid: np.ndarray,
        y_valid: np.ndarray,
        feature_names: list[str],
        monotone: list[int],
    ) -> RiskBooster:
        import lightgbm as lgb

        params = self.full_params(monotone)
        if params.get("min_data_in_leaf") == "auto":
            params["min_data_in_leaf"] = auto_min_data_in_leaf(len(y))
        num_round = int(params.pop("num_iterations", self.num_boost_round))
        dtrain = lgb.Dataset(X, label=y, feature_name=feature_names, free_raw_data=True)
        dvalid = lgb.Dataset(X_valid, label=y_valid, reference=dtrain, free_raw_data=True)
        evals: dict = {}
        callbacks = [lgb.record_evaluation(evals)]
        if self.early_stopping_rounds:
            callbacks.append(
                lgb.early_stopping(self.early_stopping_rounds, first_metric_only=True, verbose=False)
            )
        booster = lgb.train(
            params,
            dtrain,
            num_boost_round=num_round,
            valid_sets=[dvalid],
            valid_names=["valid"],
            callbacks=callbacks,
        )
        best = booster.best_iteration or booster.current_iteration()
        # Keep only the trees up to the best iteration, so the text model *is* the model evaluated.
        self.booster_ = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
        self.best_iteration_ = int(best)
        self.params_ = params
        self.evals_result_ = evals
        return self
