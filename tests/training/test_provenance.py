"""What a run records about its data and code: enough to tell two trainings apart."""

from __future__ import annotations

import subprocess

import numpy as np
import pandas as pd

from training.pipeline import data_fingerprint, git_commit, git_dirty


def _frame(n: int) -> pd.DataFrame:
    return pd.DataFrame({"rep_id": [f"r{i}" for i in range(n)], "amount": np.arange(n, dtype=float)})


def test_fingerprint_sees_a_change_that_mlflows_dataset_digest_misses(tmp_path):
    from mlflow.data.digest_utils import compute_pandas_digest

    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    df = _frame(20_000)
    changed = df.copy()
    changed.loc[15_000, "amount"] = -1.0  # beyond the 10,000 rows MLflow's digest looks at
    df.to_parquet(a / "opportunities.parquet", index=False)
    changed.to_parquet(b / "opportunities.parquet", index=False)
    assert compute_pandas_digest(df) == compute_pandas_digest(changed)
    assert data_fingerprint(a) != data_fingerprint(b)
    assert data_fingerprint(a) == data_fingerprint(a)  # the same bytes, the same fingerprint


def test_fingerprint_reads_only_the_tables_and_is_none_for_a_uri(tmp_path):
    _frame(3).to_csv(tmp_path / "reps.csv", index=False)
    before = data_fingerprint(tmp_path)
    (tmp_path / "truth").mkdir()
    (tmp_path / "notes.txt").write_text("not a table")
    assert data_fingerprint(tmp_path) == before
    assert data_fingerprint("s3a://bucket/org") is None
    from serving.jobs import data_digest

    assert data_digest(tmp_path) == before  # a batch job on this folder names the same data


def test_git_dirty_says_when_the_commit_is_not_the_code(tmp_path):
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "booster.py").write_text("x = 1\n")
    git("add", "booster.py")
    git("-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "one")
    assert git_commit(tmp_path) and git_dirty(tmp_path) is False
    (tmp_path / "scratch.txt").write_text("untracked files do not count")
    assert git_dirty(tmp_path) is False
    (tmp_path / "booster.py").write_text("x = 2\n")
    assert git_dirty(tmp_path) is True
    assert git_dirty(tmp_path / "nowhere") is None
