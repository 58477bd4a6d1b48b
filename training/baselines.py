"""Two baselines trained on the same split as the model, so its figures mean something.

- Pacing rule: what a manager does by eye, risk from attainment-to-date against the share of the
  period elapsed (a one-input logistic on the pace gap).
- Logistic regression on the model's own features (median imputation with missing indicators,
  standardisation, clipping of extreme values).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.pace import elapsed_share, pace_gap  # noqa: F401  (the pace's one definition)


class PacingBaseline:
    """P(miss) = sigmoid(a * pace_gap + b)."""

    def __init__(self, C: float = 1e4):
        self.C = C

    def fit(self, frame: pd.DataFrame, y) -> PacingBaseline:
        from sklearn.linear_model import LogisticRegression

        x = pace_gap(frame).reshape(-1, 1)
        self.model_ = LogisticRegression(C=self.C, max_iter=1000).fit(x, np.asarray(y, dtype=int))
        self.coef_ = float(self.model_.coef_[0, 0])
        self.intercept_ = float(self.model_.intercept_[0])
        return self

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self.model_.predict_proba(pace_gap(frame).reshape(-1, 1))[:, 1]


def _clip5(x):
    return np.clip(x, -5.0, 5.0)


class LogisticBaseline:
    """L2 logistic regression on the given feature columns.

    With a validation fold, the penalty C is chosen from `Cs` by validation log-loss (the booster
    gets early stopping on the same fold, so the baseline gets the same chance to be tuned).
    """

    def __init__(
        self,
        feature_names: list[str],
        Cs: tuple[float, ...] = (0.003, 0.03, 0.3, 3.0),
        max_iter: int = 2000,
        seed: int = 0,
    ):
        self.feature_names = feature_names
        self.Cs = Cs
        self.max_iter = max_iter
        self.seed = seed

    def _X(self, frame: pd.DataFrame) -> np.ndarray:
        return (
            frame[self.feature_names]
            .apply(pd.to_numeric, errors="coerce")
            .to_numpy(dtype=float, na_value=np.nan)
        )

    def _pipeline(self, C: float):
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import FunctionTransformer, StandardScaler

        return make_pipeline(
            SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
            StandardScaler(),
            FunctionTransformer(_clip5),
            LogisticRegression(C=C, max_iter=self.max_iter, random_state=self.seed),
        )

    def fit(
        self, frame: pd.DataFrame, y, valid: pd.DataFrame | None = None, y_valid=None
    ) -> LogisticBaseline:
        from sklearn.metrics import log_loss

        X, y = self._X(frame), np.asarray(y, dtype=int)
        if valid is None or len(self.Cs) == 1:
            self.C_ = float(self.Cs[-1] if valid is None else self.Cs[0])
            self.pipeline_ = self._pipeline(self.C_).fit(X, y)
            return self
        Xv, yv = self._X(valid), np.asarray(y_valid, dtype=int)
        best = None
        for C in self.Cs:
            pipe = self._pipeline(C).fit(X, y)
            loss = log_loss(yv, pipe.predict_proba(Xv)[:, 1], labels=[0, 1])
            if best is None or loss < best[0]:
                best = (loss, C, pipe)
        _, self.C_, self.pipeline_ = best
        return self

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self.pipeline_.predict_proba(self._X(frame))[:, 1]
