"""Writing a file whole or not at all."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

# A writer's temporary file older than this is one whose writer was killed (SIGKILL, out of memory, the
# machine lost): a live writer keeps its file's time fresh, and none of ours writes one file for a day.
STALE_TMP_AFTER_S = 24 * 3600


def remove_stale_temporaries(path: Path, older_than_s: float = STALE_TMP_AFTER_S) -> list[Path]:
    """Delete the temporary files `replacing` left beside `path` (its own name pattern, this target only)
    untouched for `older_than_s`: a killed writer cannot remove its own, and they piled up. By age, not by
    the writer's pid, which says nothing across hosts or containers sharing the folder. Returns them."""
    path = Path(path)
    pattern = re.compile(re.escape(f".{path.name}.") + r"[0-9a-f]{12}\.tmp")
    limit = time.time() - older_than_s
    removed = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    for entry in entries:
        if not pattern.fullmatch(entry.name):
            continue
        try:  # another writer may be removing it too
            if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < limit:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary path beside `path`, this writer's alone, that replaces `path` when the block ends and is
    removed if it fails: readers never see a half-written file, a failed write (a full disk) leaves `path`
    as it was, and two writers of one path at once each write a whole file (the last to finish wins). A killed
    writer's temporary file is removed by the next write of `path` once it is a day old."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
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
