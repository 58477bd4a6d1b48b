"""Loading a registered model version for scoring and serving (no training code imported)."""

from __future__ import annotations

from dataclasses import dataclass

from models import registry
from models.registry import CHAMPION
from repradar.errors import UserError


@dataclass(frozen=True)
class LoadedModel:
    """A registered model version ready to score: `pyfunc.predict_frame(feature_frame)`."""

    name: str
    version: str
    pyfunc: object  # models.pyfunc.RepRadarModel
    run_id: str | None = None  # the MLflow run that trained it: written with every score


def current_version(settings, alias: str = CHAMPION) -> str | None:
    """The version the alias points at now, or None; cheap enough to poll for hot swaps."""
    if not registry.store_exists(settings):
        return None
    client = registry.configure(settings)
    mv = registry.version_by_alias(client, settings.model_name, alias)
    return None if mv is None else str(mv.version)


def load_version(settings, version: str) -> LoadedModel:
    """Load one registered version (`models:/<name>/<version>`)."""
    import mlflow.pyfunc

    client = registry.configure(settings)
    if registry.get_version(client, settings.model_name, version) is None:
        raise UserError(
            f"model {settings.model_name!r} has no version {version}; `repradar models` lists the versions"
        )
    from mlflow.exceptions import MlflowException

    uri = f"models:/{settings.model_name}/{version}"
    try:
        pm = mlflow.pyfunc.load_model(uri)
    except (MlflowException, OSError) as exc:
        # The registry knows the version but its files are gone or unreadable (artifact store moved,
        # cleaned or not mounted here): say which version and what to do, not MLflow's bare message.
        if old := registry.moved_from(settings, client):
            raise UserError(
                f"version {version} of {settings.model_name!r} cannot be loaded: "
                + registry.moved_home_message(settings, old)
            ) from None
        raise UserError(
            f"version {version} of {settings.model_name!r} is registered but its model files cannot be "
            f"loaded ({type(exc).__name__}: {exc}); check that its artifact store is reachable from "
            "here, or promote another version (`repradar models` lists them) or retrain"
        ) from None
    return LoadedModel(
        name=settings.model_name,
        version=str(version),
        pyfunc=pm.unwrap_python_model(),
        run_id=getattr(pm.metadata, "run_id", None),
    )


def load_model(settings, alias: str = CHAMPION) -> LoadedModel:
    """Load the version behind `models:/<name>@<alias>`; UserError if there is none yet."""
    version = current_version(settings, alias)
    if version is None:
        if alias == CHAMPION:
            hint = "run `repradar train --data DIR` then `repradar promote` first"
        else:
            hint = "run `repradar train --data DIR` first"
        raise UserError(f"no model version has the alias {alias!r} for model {settings.model_name!r}: {hint}")
    # Resolve the alias once, then load that exact version, so a concurrent promotion cannot
    # give us one version's files under another version's number.
    return load_version(settings, version)
