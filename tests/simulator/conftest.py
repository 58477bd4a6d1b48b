"""Simulated organisations shared by the simulator tests (small, seeded, built once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.simulate import SimConfig, simulate


def run(tmp_path_factory, name: str, **kw) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp(name)
    return out, simulate(SimConfig(**kw), out)


@pytest.fixture(scope="session")
def small_org(tmp_path_factory):
    """60 reps, 4 quarters, with the oracle."""
    return run(tmp_path_factory, "small", n_reps=60, n_periods=4, seed=7, oracle_sims=16)


@pytest.fixture(scope="session")
def csv_org(tmp_path_factory):
    return run(tmp_path_factory, "csv", n_reps=40, n_periods=3, seed=3, fmt="csv", oracle_sims=8)


@pytest.fixture(scope="session")
def medium_org(tmp_path_factory):
    """A few hundred reps: enough rep-periods for rates and per-cause comparisons."""
    return run(tmp_path_factory, "medium", n_reps=240, n_periods=4, seed=7, oracle_sims=0)


@pytest.fixture(scope="session")
def biased_org(tmp_path_factory):
    """The medium organisation, with harder quotas for one gender."""
    return run(
        tmp_path_factory, "biased", n_reps=240, n_periods=4, seed=7, oracle_sims=0, bias_quota_against="F"
    )
