"""The snapshot datasets a training run logs: the same schema as MLflow infers, computed column-wise."""

import numpy as np
import pandas as pd


def _frame() -> pd.DataFrame:
    n = 50
    rng = np.random.default_rng(0)
    f = pd.DataFrame(
        {
            "rep_id": pd.Series([f"R{i % 7}" for i in range(n)], dtype=object),
            "segment": pd.Series(["SMB", None] * (n // 2), dtype="string"),
            "as_of": pd.Timestamp("2024-04-22"),
            "period_end": pd.Series([pd.Timestamp("2024-06-30"), pd.NaT] * (n // 2)),
            "win_rate_180d": rng.uniform(size=n),
            "calls_per_week_28d": rng.uniform(size=n),
            "deals": np.arange(n),
            "missed": rng.uniform(size=n) > 0.5,
        }
    )
    f.loc[::9, "calls_per_week_28d"] = np.nan
    return f


def test_the_schema_is_what_mlflow_infers_required_flags_included():
    from mlflow.types.utils import _infer_schema

    from training.pipeline import snapshot_schema

    f = _frame()
    assert snapshot_schema(f) == _infer_schema(f)
    required = {c.name: c.required for c in snapshot_schema(f).inputs}
    assert not required["calls_per_week_28d"] and not required["segment"] and not required["period_end"]
    assert required["win_rate_180d"] and required["rep_id"] and required["missed"]


def test_the_logged_dataset_says_what_mlflow_s_own_would():
    import mlflow.data

    from training.pipeline import logged_dataset

    f = _frame()
    ours = logged_dataset(f, "data/org", "snapshots-test", "missed")
    theirs = mlflow.data.from_pandas(f, source="data/org", name="snapshots-test", targets="missed")
    assert ours.to_dict() == theirs.to_dict()
