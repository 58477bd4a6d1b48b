"""Calibrators mapping the booster's raw score (log-odds) to a probability of missing target.

Both are monotone increasing in the raw score, so the booster's monotone constraints survive
calibration. They serialise to JSON (no pickles): the served model loads them with numpy only.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function."""
    z = np.asarray(z, dtype=float)
    return 0.5 * (1.0 + np.tanh(0.5 * z))


class PlattCalibrator:
    """p = sigmoid(a * raw + b), fitted by (almost) unpenalised logistic regression on one input."""

    kind = "platt"

    def __init__(self, C: float = 1e4):
        self.C = C

    def fit(self, raw: np.ndarray, y: np.ndarray) -> PlattCalibrator:
        from sklearn.linear_model import LogisticRegression

        raw = np.asarray(raw, dtype=float).reshape(-1, 1)
        lr = LogisticRegression(C=self.C, max_iter=1000).fit(raw, np.asarray(y, dtype=int))
        # A negative slope would invert the ranking; it only happens on useless scores.
        self.a_ = max(float(lr.coef_[0, 0]), 0.0)
        self.b_ = float(lr.intercept_[0]) if self.a_ > 0 else float(np.log(np.mean(y) / (1 - np.mean(y))))
        return self

    def predict(self, raw: np.ndarray) -> np.ndarray:
        return sigmoid(self.a_ * np.asarray(raw, dtype=float) + self.b_)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "C": self.C, "a": self.a_, "b": self.b_}

    @classmethod
    def from_dict(cls, d: dict) -> PlattCalibrator:
        obj = cls(C=d.get("C", 1e4))
        obj.a_, obj.b_ = float(d["a"]), float(d["b"])
        return obj


class IsotonicCalibrator:
    """Non-decreasing step-linear map fitted by isotonic regression; clipped to [clip, 1 - clip].

    Prediction is linear interpolation between the fitted thresholds (as scikit-learn does),
    flat beyond the ends.
    """

    kind = "isotonic"

    def __init__(self, clip: float = 1e-3):
        self.clip = clip

    def fit(self, raw: np.ndarray, y: np.ndarray) -> IsotonicCalibrator:
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(
            y_min=self.clip, y_max=1.0 - self.clip, increasing=True, out_of_bounds="clip"
        ).fit(np.asarray(raw, dtype=float), np.asarray(y, dtype=float))
        self.x_ = np.asarray(iso.X_thresholds_, dtype=float)
        self.y_ = np.asarray(iso.y_thresholds_, dtype=float)
        return self

    def predict(self, raw: np.ndarray) -> np.ndarray:
        return np.interp(np.asarray(raw, dtype=float), self.x_, self.y_)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "clip": self.clip, "x": self.x_.tolist(), "y": self.y_.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> IsotonicCalibrator:
        obj = cls(clip=d.get("clip", 1e-3))
        obj.x_ = np.asarray(d["x"], dtype=float)
        obj.y_ = np.asarray(d["y"], dtype=float)
        return obj


CALIBRATORS = {c.kind: c for c in (PlattCalibrator, IsotonicCalibrator)}


def calibrator_from_dict(d: dict):
    """Rebuild a fitted calibrator from `to_dict()` output."""
    try:
        cls = CALIBRATORS[d["kind"]]
    except KeyError as exc:
        raise ValueError(f"unknown calibrator kind {d.get('kind')!r}") from exc
    return cls.from_dict(d)


def save_calibrator(cal, path: str | Path) -> None:
    Path(path).write_text(json.dumps(cal.to_dict(), indent=1))


def load_calibrator(path: str | Path):
    return calibrator_from_dict(json.loads(Path(path).read_text()))
