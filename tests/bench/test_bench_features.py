"""The benchmarks' simulated organisation (bench/bench_features.py `ensure_data`)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from simulator.simulate import SimConfig, simulate

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bench(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("bench_features", ROOT / "bench" / "bench_features.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_features", module)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "DATA", tmp_path / "data")
    return module


def test_a_folder_repradar_simulate_wrote_for_the_same_organisation_is_reused_not_simulated_again(bench):
    """docs/playbook.md has `repradar simulate --out bench/data/sim-1500x13-s0 ...` write the folder the
    benchmarks use; the first benchmark then simulated it again over it (its oracle rows lost)."""
    folder = bench.DATA / "sim-30x2-s3"
    simulate(SimConfig(n_reps=30, n_periods=2, seed=3, oracle_sims=2, fmt="parquet"), folder)
    before = {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}
    assert bench.ensure_data(30, 2, 3) == folder
    assert {
        p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file() and p.name != ".complete"
    } == before
    assert (folder / ".complete").is_file()
    assert (folder / "truth" / "oracle.parquet").stat().st_size > 0  # kept


def test_a_folder_of_another_organisation_is_simulated_again(bench):
    folder = bench.DATA / "sim-30x2-s3"
    simulate(SimConfig(n_reps=30, n_periods=2, seed=4, oracle_sims=0, fmt="parquet"), folder)  # another seed
    assert bench.ensure_data(30, 2, 3) == folder
    assert '"seed": 3' in (folder / "truth" / "summary.json").read_text()
    assert (folder / ".complete").is_file()
