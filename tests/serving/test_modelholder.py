"""The service's champion when the registry's alias goes away: keep serving, and say so."""

from __future__ import annotations

import asyncio

import pytest

from models import registry
from repradar.settings import Settings
from serving.modelholder import ModelHolder, RegistrySource

pytestmark = pytest.mark.slow


def test_removed_champion_alias_keeps_the_loaded_model_and_says_so(trained):
    _, home, _ = trained
    settings = Settings(home=home)
    client = registry.configure(settings)
    champion = registry.version_by_alias(client, settings.model_name, registry.CHAMPION).version
    holder = ModelHolder(RegistrySource(settings))
    assert asyncio.run(holder.refresh()) and holder.version == str(champion)
    client.delete_registered_model_alias(settings.model_name, registry.CHAMPION)
    try:
        assert asyncio.run(holder.refresh()) is False
        assert holder.version == str(champion)  # still answering with the model it had
        assert f"still serving version {champion}" in holder.last_error
        assert "yet" not in holder.last_error  # not "no champion yet": there was one
    finally:
        client.set_registered_model_alias(settings.model_name, registry.CHAMPION, champion)
    assert asyncio.run(holder.refresh()) is False and holder.last_error is None


def test_no_store_at_all_names_where_it_was_looked_for(tmp_path):
    """A REPRADAR_HOME without an MLflow store (mistyped, or a volume not mounted): /health/ready and
    /models/current said only 'no champion model in the registry yet', as for a registry with nothing
    promoted; they now name the store looked for and the setting to check."""
    settings = Settings(home=tmp_path / "not-the-home")
    holder = ModelHolder(RegistrySource(settings))
    assert asyncio.run(holder.refresh()) is False and holder.version is None
    store = tmp_path / "not-the-home" / "mlflow.db"
    assert (
        f"there is no MLflow store at {store}" in holder.last_error and "REPRADAR_HOME" in holder.last_error
    )
    assert not store.exists()  # the probe creates nothing
