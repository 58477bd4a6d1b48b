"""repradar.files: whole-or-nothing writes, and the temporary files killed writers leave behind."""

from __future__ import annotations

import os
import time

from repradar.files import replacing


def _aged(path, hours: float):
    path.write_text("half")
    then = time.time() - hours * 3600
    os.utime(path, (then, then))
    return path


def test_a_write_removes_the_temporaries_killed_writers_of_its_target_left_a_day_ago(tmp_path):
    """A `repradar score` killed with SIGKILL leaves `.<name>.<12 hex>.tmp` beside --out, and they piled up:
    the next write of that target removes those untouched for a day, and nothing else."""
    out = tmp_path / "scores.csv"
    stale = _aged(tmp_path / ".scores.csv.0123456789ab.tmp", hours=25)
    recent = _aged(tmp_path / ".scores.csv.ba9876543210.tmp", hours=2)  # a writer may still be at it
    other_target = _aged(tmp_path / ".scores.parquet.0123456789ab.tmp", hours=72)
    not_ours = _aged(tmp_path / ".scores.csv.notes.tmp", hours=72)
    folder = tmp_path / ".scores.csv.aaaaaaaaaaaa.tmp"  # a folder of that name is not a writer's file
    folder.mkdir()
    with replacing(out) as tmp:
        tmp.write_text("rep_id\nR1\n")
    assert out.read_text() == "rep_id\nR1\n"
    assert not stale.exists()
    assert recent.exists() and other_target.exists() and not_ours.exists() and folder.is_dir()
    # nothing of the write itself is left beside it
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {out.name, recent.name, other_target.name, not_ours.name, folder.name}
