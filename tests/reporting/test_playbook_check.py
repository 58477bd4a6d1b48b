"""The playbook check docs/playbook.md gives HR (`python -m models.playbook FILE`): the message alone,
no traceback, exit 2 for a broken file; "ok" and exit 0 for a good one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _check(path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "models.playbook", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_documented_check_prints_the_message_only(tmp_path):
    assert (
        ".venv/bin/python -m models.playbook my_playbook.yaml" in (ROOT / "docs" / "playbook.md").read_text()
    )
    text = (ROOT / "models" / "playbook.yaml").read_text()
    assert "suggest: [smart_goals]" in text
    bad = tmp_path / "pb.yaml"
    bad.write_text(text.replace("suggest: [smart_goals]", "suggest: [smart_goal]", 1))
    r = _check(bad)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""
    assert r.stderr.startswith(f"error: playbook {bad}, line ") and "did you mean 'smart_goals'" in r.stderr
    missing = _check(tmp_path / "nope.yaml")
    assert (
        missing.returncode == 2 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    )
    good = _check(ROOT / "models" / "playbook.yaml")
    assert good.returncode == 0 and "ok" in good.stdout and good.stderr == ""
