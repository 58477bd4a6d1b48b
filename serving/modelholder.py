"""The champion model held by the service, swapped atomically when the registry's alias moves.

A request takes `holder.current` once, at its start, and keeps that object to its end: swapping
rebinds one attribute, so requests in flight finish on the old model and new ones see the new.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from repradar.settings import Settings

log = logging.getLogger("repradar.serving.model")


class ModelSource(Protocol):
    """Where models come from: the MLflow registry in production, a stub in some tests."""

    def current_version(self) -> str | None: ...

    def load(self) -> Any: ...  # an object with .name and .version (models.loading.LoadedModel)


NO_CHAMPION = "no champion model in the registry yet"


class RegistrySource:
    """The champion alias of the MLflow registry, through `models.loading` (imported lazily: it is heavy)."""

    def __init__(self, settings: Settings, alias: str = "champion"):
        self.settings = settings
        self.alias = alias

    def current_version(self) -> str | None:
        from models.loading import current_version

        return current_version(self.settings, alias=self.alias)

    def load(self) -> Any:
        from models.loading import load_model

        return load_model(self.settings, alias=self.alias)

    def no_champion(self) -> str:
        """Why there is no champion, naming the embedded store when there is none: a mistyped
        REPRADAR_HOME looks like a registry with nothing promoted yet."""
        from models import registry

        if not registry.store_exists(self.settings):
            store = self.settings.resolved_home / "mlflow.db"
            return (
                f"no champion model in the registry yet: there is no MLflow store at {store} (train and "
                "promote a model there, or set REPRADAR_HOME to the folder they used)"
            )
        return NO_CHAMPION


@dataclass
class ModelHolder:
    source: ModelSource
    current: Any = None
    loaded_at: dt.datetime | None = None
    last_error: str | None = None
    swaps: int = 0
    _lock: asyncio.Lock | None = field(default=None, repr=False)

    @property
    def version(self) -> str | None:
        m = self.current
        return None if m is None else str(m.version)

    async def refresh(self) -> bool:
        """Load the champion if it moved; True when a new model was swapped in. Never raises."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # one load at a time; the old model serves meanwhile
            try:
                wanted = await asyncio.to_thread(self.source.current_version)
                if wanted is None and self.current is not None:
                    # The alias was removed (or its version deleted): keep answering with what we have.
                    self.last_error = (
                        f"the registry has no champion now (alias removed or its version deleted); "
                        f"still serving version {self.version}"
                    )
                    return False
                if wanted is None or wanted == self.version:
                    why = getattr(self.source, "no_champion", lambda: NO_CHAMPION)
                    self.last_error = None if wanted else await asyncio.to_thread(why)
                    return False
                model = await asyncio.to_thread(self.source.load)
            except Exception as exc:  # the registry may be briefly unreachable: keep serving the old model
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("model refresh failed: %s", self.last_error)
                return False
            old = self.version
            self.current = model  # the atomic swap
            self.loaded_at = dt.datetime.now(dt.UTC)
            self.swaps += 1
            self.last_error = None
            log.info("champion model %s loaded (was %s)", model.version, old)
            return True

    async def watch(self, interval_s: float) -> None:
        """Poll the alias forever (cancelled at shutdown)."""
        while True:
            await asyncio.sleep(interval_s)
            await self.refresh()
