"""Writing a file whole or not at all."""

from __future__ import annotations

import contextlib
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary path beside `path`, this writer's alone, that replaces `path` when the block ends and is
    removed if it fails: readers never see a half-written file, a failed write (a full disk) leaves `path`
    as it was, and two writers of one path at once each write a whole file (the last to finish wins)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        yield tmp
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


NOT_A_FOLDER = "a file, not a folder"


def unwritable(path: Path) -> tuple[Path, str] | None:
    """Why no file could be written at `path`, as (the nearest folder that exists, the reason), or None when
    one can: checked before long work (a scoring, a report), which would otherwise fail only at its end."""
    folder = Path(path).absolute().parent
    while not folder.exists() and folder != folder.parent:  # the nearest folder that is there makes the rest
        folder = folder.parent
    if not folder.is_dir():
        return folder, NOT_A_FOLDER
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".repradar-probe-"):
            pass
    except OSError as exc:
        return folder, exc.strerror or str(exc)
    return None
