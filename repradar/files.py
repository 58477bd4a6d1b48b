"""Writing a file whole or not at all."""

from __future__ import annotations

import contextlib
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
