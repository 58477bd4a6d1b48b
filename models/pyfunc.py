"""The served model: one MLflow pyfunc bundling feature spec, booster, calibrator and playbook.

Artifacts (plain files, no pickled estimators):
- `spec`: FeatureSpec JSON (feature names and order, groups, units, monotone, good sides, band cut points)
- `booster`: LightGBM text model (`booster.save_model`)
- `calibrator`: calibrator JSON (isotonic thresholds or Platt coefficients)
- `playbook`: the intervention playbook as JSON, and `playbook_yaml`: the same file as HR wrote it
  (models/playbook.py; a model without one uses the playbook shipped with the package)

Serving loads it with `models.loading.load_model` and never imports `training/`.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd

from models.calibration import load_calibrator
from models.explain import top_drivers, tree_contributions
from models.spec import FeatureSpec, base_feature

ARTIFACT_FILES = {
    "spec": "feature_spec.json",
    "booster": "booster.txt",
    "calibrator": "calibrator.json",
    "playbook": "playbook.json",
    "playbook_yaml": "playbook.yaml",
}

PLACEHOLDER_PLAYBOOK = {
    "version": 0,
    "rules": [],
    "note": "placeholder: the intervention playbook issue fills this; until then no interventions are suggested",
}

# Above this many rows, contributions use more threads; a few rows are fastest on one.
_SMALL_BATCH = 256


class MissingFeaturesError(ValueError):
    """The frame lacks columns the model was trained on."""


class RepRadarModel(mlflow.pyfunc.PythonModel):
    """Calibrated miss-risk with TreeSHAP drivers. `predict` is the MLflow entry point."""

    # Input validation comes from the signature logged with the model, not from type hints on
    # `predict` (without this MLflow wraps `predict` and warns about the missing hints).
    _skip_type_hint_validation = True

    def __init__(self, num_threads: int = 1):
        self.num_threads = num_threads
        self.spec_: FeatureSpec | None = None
        self.booster_ = None
        self.calibrator_ = None
        self.playbook_: dict | None = None
        self.playbook_obj_ = None  # models.playbook.Playbook, parsed at load

    # -- loading -------------------------------------------------------------------------------
    def load_context(self, context) -> None:
        self._load(context.artifacts)

    @classmethod
    def from_paths(cls, paths: dict[str, str | Path], num_threads: int = 1) -> RepRadarModel:
        """Load from artifact files directly (training and tests, without MLflow)."""
        obj = cls(num_threads=num_threads)
        obj._load(paths)
        return obj

    def _load(self, paths) -> None:
        import lightgbm as lgb

        self.spec_ = FeatureSpec.load(paths["spec"])
        self.booster_ = lgb.Booster(model_file=str(paths["booster"]))
        self.calibrator_ = load_calibrator(paths["calibrator"])
        playbook = paths.get("playbook") if hasattr(paths, "get") else None
        self.playbook_ = json.loads(Path(playbook).read_text()) if playbook else dict(PLACEHOLDER_PLAYBOOK)
        self.playbook_obj_ = _bundled_playbook(paths, self.playbook_)
        booster_names = self.booster_.feature_name()
        if list(booster_names) != list(self.spec_.feature_names):
            raise ValueError("feature spec and booster disagree on the feature list")

    # -- inference -----------------------------------------------------------------------------
    @property
    def feature_names(self) -> list[str]:
        return list(self.spec_.feature_names)

    def feature_matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """The model's columns of `frame`, in training order, as float64 (NaN = missing)."""
        missing = [c for c in self.spec_.feature_names if c not in frame.columns]
        if missing:
            raise MissingFeaturesError(
                f"the model needs {len(missing)} feature(s) the data does not have: {missing[:8]}"
            )
        cols = frame[self.spec_.feature_names]
        return cols.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float, na_value=np.nan)

    def _threads(self, n: int) -> int:
        return 1 if n <= _SMALL_BATCH else self.num_threads

    def raw_score(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(
            self.booster_.predict(X, raw_score=True, num_threads=self._threads(len(X))), dtype=float
        )

    def risk_from_raw(self, raw: np.ndarray) -> np.ndarray:
        return self.calibrator_.predict(raw)

    def contributions(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Per-feature TreeSHAP contributions (log-odds) plus a `base_value` column; rows as `frame`."""
        X = self.feature_matrix(frame)
        contrib, base = tree_contributions(self.booster_, X, num_threads=self._threads(len(X)))
        out = pd.DataFrame(contrib, columns=self.spec_.feature_names, index=frame.index)
        out["base_value"] = base
        return out

    def predict_frame(
        self,
        frame: pd.DataFrame,
        *,
        explain: bool = False,
        max_drivers: int | None = None,
        actions: bool = False,
        playbook=None,
        band_high: float | None = None,
        min_history_days: int | None = None,
        recourse: bool = True,
    ) -> pd.DataFrame:
        """`risk` and `raw_score` for each row of `frame` (same index).

        With explain=True, also `base_value` and `drivers`: the features raising the risk most,
        each `{feature, group, value, contribution}`, largest first.
        With actions=True (implies explain), also the playbook's columns (models.playbook.recommend_frame):
        `interventions`, `intervention_reasons`, `driver_groups`, `quota_share`, `insufficient_data`,
        `peer_scope`, `notes`, `recourse`; `drivers` gain `peer_value`, `text_en`, `text_zh`.
        `playbook` overrides the bundled one; `band_high` the spec's cut point.
        """
        explain = explain or actions
        X = self.feature_matrix(frame)
        raw = self.raw_score(X)
        out = pd.DataFrame({"risk": self.risk_from_raw(raw), "raw_score": raw}, index=frame.index)
        if explain:
            k = self.spec_.max_drivers if max_drivers is None else max_drivers
            contrib, base = tree_contributions(self.booster_, X, num_threads=self._threads(len(X)))
            names = self.spec_.feature_names
            groups = [
                self.spec_.groups.get(n, self.spec_.groups.get(base_feature(n), "other")) for n in names
            ]
            out["base_value"] = base
            out["drivers"] = [top_drivers(contrib[i], X[i], names, groups, k) for i in range(len(X))]
            if actions:
                from models.playbook import recommend_frame

                acts = recommend_frame(
                    frame,
                    out["risk"].to_numpy(),
                    pd.DataFrame(contrib, columns=names, index=frame.index),
                    spec=self.spec_,
                    playbook=playbook or self.playbook_obj_,
                    band_high=self.spec_.band_high if band_high is None else band_high,
                    min_history_days=min_history_days,
                    drivers=list(out["drivers"]),
                    k=k,
                    model=self,
                    recourse=recourse,
                )
                for c in acts.columns:
                    out[c] = acts[c]
        return out

    def predict(self, context, model_input, params=None):
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        return self.predict_frame(frame)[["risk", "raw_score"]].reset_index(drop=True)


def write_artifacts(
    folder: Path, spec: FeatureSpec, booster, calibrator, playbook: dict | None = None
) -> dict[str, str]:
    """Write the model's artifact files into `folder`; returns {key: path} for `log_model(artifacts=...)`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {k: str(folder / f) for k, f in ARTIFACT_FILES.items()}
    spec.save(paths["spec"])
    booster.save_model(paths["booster"])
    Path(paths["calibrator"]).write_text(json.dumps(calibrator.to_dict(), indent=1))
    from models.playbook import Playbook

    if isinstance(playbook, Playbook):
        # the JSON form for machines, the YAML text (with HR's comments) to edit and to load
        Path(paths["playbook"]).write_text(json.dumps(playbook.to_dict(), indent=1, ensure_ascii=False))
        Path(paths["playbook_yaml"]).write_text(playbook.text, encoding="utf-8")
    else:
        Path(paths["playbook"]).write_text(json.dumps(playbook or PLACEHOLDER_PLAYBOOK, indent=1))
        del paths["playbook_yaml"]
    return paths


def _bundled_playbook(paths, as_json: dict):
    """The model's playbook: its YAML file, else its JSON form, else (placeholder) the package default."""
    from models.playbook import default_playbook, parse_playbook

    yaml_path = paths.get("playbook_yaml") if hasattr(paths, "get") else None
    if yaml_path and Path(yaml_path).is_file():
        return parse_playbook(Path(yaml_path).read_text(encoding="utf-8"), source="playbook.yaml (bundled)")
    if as_json.get("rules"):
        return parse_playbook(json.dumps(as_json), source="playbook.json (bundled)")
    return default_playbook()
