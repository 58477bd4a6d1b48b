"""One lock per REPRADAR_HOME for moving the registry's aliases, so that overlapping commands take turns.

`promote` reads the champion, gates against it and moves it; `train` moves the challenger; each is a
read-then-write on the registry, which MLflow does not make atomic. Two at once lost an update (a promotion
gated against a champion replaced meanwhile). The lock is a file under the home (`tmp/aliases.lock`): it
covers every process and thread of this host that uses the home, whatever the tracking store.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from repradar.progress import step

LOCK_NAME = "aliases.lock"


@contextlib.contextmanager
def alias_lock(settings, what: str) -> Iterator[None]:
    """Hold the home's alias lock within the block, saying on the progress line when `what` has to wait."""
    from models import registry

    path = Path(registry.scratch_dir(settings)) / LOCK_NAME
    with file_lock(
        path, f"waiting for another promotion or training on {settings.resolved_home} to finish {what}"
    ):
        yield


@contextlib.contextmanager
def file_lock(path: Path, waiting: str) -> Iterator[None]:
    """An exclusive lock on the file `path` within the block; `waiting` goes to the progress line when taken."""
    # A descriptor of its own on every entry: flock excludes separate open()s even within one process.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            step(waiting)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
