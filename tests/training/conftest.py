"""One small simulated organisation and one trained, promoted model for the whole session.

The model is trained through the real command line against a real sqlite MLflow store in a
temporary REPRADAR_HOME; every end-to-end test reuses it (training is the slow part).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from repradar.settings import Settings
from tests.conftest import run_cli  # noqa: F401  (the package's tests import it from here)

N_REPS, N_PERIODS, SEED = 80, 6, 3
# A day in the running (unfinished) sixth period: week 4 of 2024-Q2.
AS_OF = dt.date(2024, 4, 22)


def write_tables(tables, folder: Path) -> Path:
    """Write contract tables to a folder as Parquet (what an export would look like)."""
    from features.io import write_table

    folder.mkdir(parents=True, exist_ok=True)
    for name, df in tables.items():
        if df is not None:
            write_table(df, folder / f"{name}.parquet")
    return folder


def plant_stale_run(home: Path) -> str:
    """A run that a SIGKILLed `train` on this host left RUNNING (its process is gone): the next `train`
    ends it (models.registry.end_stale_runs). Its id; it carries the tag repradar.planted=stale."""
    from models import registry
    from tests.conftest import killed_training_run

    settings = Settings(home=home)
    client = registry.configure(settings)
    exp_id = registry.ensure_experiment(client, settings)
    return killed_training_run(client, exp_id, **{"repradar.planted": "stale"})[0]


@pytest.fixture(scope="session")
def sim_org(tmp_path_factory) -> Path:
    from simulator.simulate import SimConfig, simulate

    out = tmp_path_factory.mktemp("org") / "data"
    simulate(SimConfig(n_reps=N_REPS, n_periods=N_PERIODS, seed=SEED, oracle_sims=8), out)
    return out


@pytest.fixture(scope="session")
def sim_tables(sim_org):
    from features.io import load_folder

    return load_folder(sim_org)


@pytest.fixture(scope="session")
def trained(tmp_path_factory, sim_org):
    """REPRADAR_HOME with version 1 trained by `repradar train` and promoted to champion."""
    home = tmp_path_factory.mktemp("home")
    stale = plant_stale_run(home)
    result = run_cli(home, "train", "--data", str(sim_org))
    assert result.exit_code == 0, result.stdout + result.stderr
    assert f"the MLflow run {stale} (started " in result.stderr and "it is ended as FAILED" in result.stderr
    # `train` says each stage on stderr as it starts (repradar.progress), the simulator's truth included
    for stage in (
        "reading and validating",
        "building training snapshots",
        "fitting the model",
        "evaluating",
        "logging the run to MLflow",
        "explaining held-out rows",
        "known causes",
        "registering",
    ):
        assert stage in result.stderr, (stage, result.stderr)
    result = run_cli(home, "promote")
    assert result.exit_code == 0, result.stdout + result.stderr
    return home


@pytest.fixture(scope="session")
def settings(trained) -> Settings:
    return Settings(home=trained)


@pytest.fixture(scope="session")
def model_v1(settings):
    from models.loading import load_version

    return load_version(settings, "1")


@pytest.fixture(scope="session")
def heldout(settings):
    from models import registry
    from models.gate import heldout_frame

    client = registry.configure(settings)
    return heldout_frame(settings, client.get_model_version(settings.model_name, "1"))
