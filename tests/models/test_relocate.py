"""`repradar relocate-home`: a copied or moved REPRADAR_HOME made to use its own model files (the embedded
MLflow store records absolute paths under the home it was made in)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import run_cli


def _naming(store: Path, text: str) -> list[str]:
    """Every table.column of the sqlite store with a value that contains `text`."""
    found = []
    with contextlib.closing(sqlite3.connect(store)) as db:
        for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            for column in [r[1] for r in db.execute(f"PRAGMA table_info('{table}')")]:
                query = f"SELECT count(*) FROM '{table}' WHERE CAST(\"{column}\" AS TEXT) LIKE ?"
                if db.execute(query, (f"%{text}%",)).fetchone()[0]:
                    found.append(f"{table}.{column}")
    return found


_COUNTED = (("runs", "artifact_uri"), ("model_versions", "storage_location"))


def _rows(store: Path, table: str, column: str, text: str) -> int:
    with contextlib.closing(sqlite3.connect(store)) as db:
        return db.execute(f"SELECT count(*) FROM {table} WHERE {column} LIKE ?", (f"%{text}/%",)).fetchone()[
            0
        ]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_copied_home_whose_original_is_gone_loads_scores_and_trains_from_itself(trained, tmp_path):
    """A home copied to another path (a release tried on a copy, a backup restored to another disk) kept
    reading its models from the old path, and once that was gone nothing loaded; `train` refused it and
    nothing could fix it. Here: the fixture's home copied to A, A relocated, A copied to B, A deleted."""
    from models import registry
    from models.scoring import score_folder
    from repradar.settings import Settings
    from training.pipeline import preflight

    data, home, as_of = trained
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(home, a)
    # other tests of the session add runs and versions to the shared store: count what it holds now
    runs, versions = (_rows(a / "mlflow.db", t, c, str(home)) for t, c in _COUNTED)
    r = run_cli(a, "relocate-home")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    assert f"rewrote {home / 'mlartifacts'} to {a / 'mlartifacts'} in 1 experiment, {runs} run" in r.stdout
    assert f"{versions} model version" in r.stdout and f"{home} is no longer read" in r.stdout
    shutil.copytree(a, b)
    shutil.rmtree(a)

    before, copied = _digest(b / "mlflow.db"), set(b.glob("mlflow.db.*"))  # A's backup came along
    r = run_cli(b, "relocate-home", "--dry-run")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    assert f"would rewrite {a / 'mlartifacts'} to {b / 'mlartifacts'} in 1 experiment" in r.stdout
    assert _digest(b / "mlflow.db") == before and set(b.glob("mlflow.db.*")) == copied

    r = run_cli(b, "relocate-home")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    (backup,) = set(b.glob("mlflow.db.*")) - copied
    assert f"backed up the MLflow store to {backup}" in r.stdout
    assert "experiments.artifact_location" in _naming(backup, str(a / "mlartifacts"))  # the store as it was
    assert _naming(b / "mlflow.db", str(a)) == [] and _naming(b / "mlflow.db", str(home)) == []
    assert run_cli(b, "relocate-home").stdout.startswith(f"REPRADAR_HOME {b} was not moved")

    settings = Settings(home=b)
    client = registry.configure(settings)
    assert registry.moved_from(settings, client) is None
    preflight(settings)  # `train` refused this home
    for v in registry.list_versions(client, settings.model_name):
        path = Path(client.get_model_version_download_uri(v.name, v.version).removeprefix("file://"))
        assert path.is_relative_to(b / "mlartifacts") and path.is_dir(), v
    listed = [json.loads(run_cli(h, "models", "--json").stdout) for h in (home, b)]
    assert [(v["version"], v["aliases"]) for v in listed[1]] == [
        (v["version"], v["aliases"]) for v in listed[0]
    ]
    ours = score_folder(data, as_of, settings)
    assert ours["risk"].tolist() == score_folder(data, as_of, Settings(home=home))["risk"].tolist()


def test_relocation_is_refused_without_a_change_when_files_are_missing_or_a_run_trains(tmp_path):
    """A home copied in part (mlartifacts left out), or one a live training process may write to, is
    refused naming what is missing or running, and the store is left as it was; so are a store that is
    not the embedded one and a chosen artifact location. A run that ended before logging any file has
    no folder anywhere (MLflow makes it with the first file), and does not stop the relocation; nor does one
    that finished without a file (it stopped every relocation of the shared test store)."""
    from models import registry
    from repradar.errors import UserError
    from repradar.settings import Settings
    from training.pipeline import preflight

    old_home, new_home = tmp_path / "old", tmp_path / "new"
    old = Settings(home=old_home)
    client = registry.configure(old)
    exp = registry.ensure_experiment(client, old)
    done = client.create_run(exp).info.run_id
    client.log_text(done, "card", "model_card.md")
    client.set_terminated(done, "FINISHED")
    client.set_terminated(client.create_run(exp).info.run_id, "FAILED")  # killed before any file
    client.set_terminated(client.create_run(exp).info.run_id, "FINISHED")  # finished without one
    training = client.create_run(exp, tags=registry.run_owner_tags()).info.run_id  # this process: alive
    model = old_home / "mlartifacts" / "models" / "m-1" / "artifacts"
    model.mkdir(parents=True)
    client.create_registered_model(old.model_name)
    client.create_model_version(old.model_name, source=model.as_uri())

    shutil.copytree(old_home, new_home)
    new = Settings(home=new_home)
    with pytest.raises(UserError, match=r"copied or moved from .*Run `repradar relocate-home` with this"):
        preflight(new)  # what `train` says in a copied home
    before = _digest(new_home / "mlflow.db")
    r = run_cli(new_home, "relocate-home")
    assert r.exit_code == 2 and f"the MLflow run {training} is training now" in r.stderr, (r.stdout, r.stderr)
    assert _digest(new_home / "mlflow.db") == before and not list(new_home.glob("mlflow.db.*"))
    registry.configure(new).set_terminated(training, "FAILED")

    shutil.rmtree(new_home / "mlartifacts" / done)
    before = _digest(new_home / "mlflow.db")
    with pytest.raises(
        UserError, match=rf"lacks folders .*{done}/artifacts \(1 in all\).*nothing was changed"
    ):
        registry.relocate_home(new)
    assert _digest(new_home / "mlflow.db") == before and not list(new_home.glob("mlflow.db.*"))
    for other in (
        {"mlflow_tracking_uri": f"sqlite:///{new_home / 'mlflow.db'}"},
        {"mlflow_artifact_location": str(new_home / "mlartifacts")},
    ):
        with pytest.raises(UserError, match="relocate"):
            registry.relocate_home(Settings(home=new_home, **other))
    assert run_cli(tmp_path / "nothing", "relocate-home").exit_code == 2

    shutil.copytree(old_home / "mlartifacts" / done, new_home / "mlartifacts" / done)
    moved = registry.relocate_home(new)
    assert (moved.old, moved.changed) == (old_home, {"experiment": 1, "run": 4, "model version": 1})
    version = registry.get_version(registry.configure(new), new.model_name, "1")
    assert version.source == (new_home / "mlartifacts" / "models" / "m-1" / "artifacts").as_uri()
