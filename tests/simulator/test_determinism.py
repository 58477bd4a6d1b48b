"""Same seed, same bytes; another seed, other data."""

from __future__ import annotations

from pathlib import Path

import pytest

from repradar.errors import UserError
from simulator.simulate import SimConfig, simulate


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_same_seed_gives_byte_identical_files(tmp_path, fmt):
    cfg = dict(n_reps=30, n_periods=3, seed=5, fmt=fmt, oracle_sims=8)
    a, b = tmp_path / "a", tmp_path / "b"
    sa = simulate(SimConfig(**cfg), a)
    sb = simulate(SimConfig(**cfg), b)
    fa, fb = files(a), files(b)
    assert sa == sb
    assert fa.keys() == fb.keys()
    assert "truth/rep_periods.parquet" in fa and f"activities.{fmt}" in fa
    for name in fa:
        assert fa[name] == fb[name], name


def test_another_seed_gives_other_data(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    simulate(SimConfig(n_reps=30, n_periods=3, seed=1, oracle_sims=0), a)
    simulate(SimConfig(n_reps=30, n_periods=3, seed=2, oracle_sims=0), b)
    fa, fb = files(a), files(b)
    for name in (
        "reps.parquet",
        "quotas.parquet",
        "opportunities.parquet",
        "activities.parquet",
        "truth/rep_periods.parquet",
    ):
        assert fa[name] != fb[name], name


def test_without_history_and_oracle(tmp_path):
    s = simulate(SimConfig(n_reps=12, n_periods=2, seed=0, with_history=False, oracle_sims=0), tmp_path)
    assert not (tmp_path / "opportunity_history.parquet").exists()
    assert s["oracle_rows"] == 0 and s["opportunity_history"] == 0
    assert (tmp_path / "truth" / "oracle.parquet").exists()


@pytest.mark.parametrize(
    "kw",
    [
        dict(fmt="xlsx"),
        dict(n_reps=2),
        dict(n_periods=0),
        dict(oracle_sims=-1),
        dict(bias_quota_against="Q"),
        dict(manager_view="omniscient"),
    ],
)
def test_bad_configs_are_user_errors(tmp_path, kw):
    with pytest.raises(UserError):
        simulate(SimConfig(**kw), tmp_path)
