"""The report's files on disk: written as one, or not at all, and an output that cannot be written is
refused before any work."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from reporting.report import write_files
from repradar.errors import UserError
from tests.reporting.conftest import run_cli


def test_a_full_disk_leaves_the_previous_report_whole_and_no_temporary_file(tmp_path, monkeypatch):
    """The disk fills while the figures' JSON is written, after the HTML: before, the new HTML replaced the
    old one beside the old JSON, a half-written temporary file stayed, and the command ended with an
    internal error."""
    html, figures = tmp_path / "r.html", tmp_path / "r.json"
    html.write_text("last quarter's report")
    figures.write_text("{}")
    real = Path.write_text

    def full_for_json(self, *args, **kwargs):
        if ".r.json." in self.name:
            real(self, "{", encoding="utf-8")  # a first block went out before the disk filled
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full_for_json)
    with pytest.raises(
        UserError, match="could not write .*r.json: No space left on device; the report's files"
    ):
        write_files({html: "<html>new</html>", figures: '{"new": true}'})
    assert html.read_text() == "last quarter's report" and figures.read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html", "r.json"]
    monkeypatch.undo()
    write_files({html: "<html>new</html>", figures: '{"new": true}'})
    assert html.read_text() == "<html>new</html>" and figures.read_text() == '{"new": true}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html", "r.json"]


def test_an_output_folder_that_cannot_be_written_is_refused_before_any_work(tmp_path):
    # a path through a file stands for any folder that cannot be written (read-only, no permission), which
    # root, running the tests, would still write in; the scores file is not even read
    (tmp_path / "afile").write_text("x")
    out = tmp_path / "afile" / "r.html"
    args = ["report", "--scores", str(tmp_path / "nope.parquet"), "--data", str(tmp_path), "--out", str(out)]
    r = run_cli(tmp_path / "home", *args)
    assert r.exit_code == 2 and f"--out {out}: {tmp_path / 'afile'} is a file, not a folder" in r.stderr, (
        r.stderr
    )
