"""The service image (Dockerfile), read as text: it cannot be built in the test environment (no Docker engine),
so what an operator relies on is checked here: locked dependencies, the run-time Debian packages, a non-root
user, `repradar` on PATH for `docker exec`, the documented start command and health probe."""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
# packages.apt's run-time packages (the rest are for the tests: PostgreSQL, poppler, Java for Spark)
RUNTIME_APT = {"chromium", "fonts-dejavu-core", "fonts-wqy-microhei"}


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE)  # join continued lines
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_the_image_installs_the_locked_dependencies_and_the_run_time_debian_packages():
    runs = " ".join(rest for word, rest in _instructions() if word == "RUN")
    syncs = re.findall(r"uv sync [^&]*", runs)
    assert syncs and all("--locked" in s and "--no-dev" in s for s in syncs), syncs
    assert re.search(r"pip install [^&]*\buv==\d", runs), (
        "uv is pinned: the same tool reads uv.lock every build"
    )
    apt = re.search(r"apt-get install ([^&]*)", runs).group(1).split()
    listed = {
        p.strip() for p in (ROOT / "packages.apt").read_text().splitlines() if p and not p.startswith("#")
    }
    assert RUNTIME_APT <= listed and RUNTIME_APT <= set(apt), apt
    assert "libgomp1" in apt  # LightGBM's OpenMP runtime


def test_the_service_runs_unprivileged_with_the_documented_command_and_probe():
    steps = _instructions()
    users = [rest for word, rest in steps if word == "USER"]
    assert users and users[-1] not in ("root", "0")
    cmd = json.loads(next(rest for word, rest in steps if word == "CMD"))
    assert cmd[:2] == ["repradar", "serve"] and cmd[cmd.index("--port") + 1] == "8000"
    # `docker exec <container> repradar users add ...` (docs/service.md) needs the venv on PATH
    env = " ".join(rest for word, rest in steps if word == "ENV")
    assert re.search(r"PATH=/app/\.venv/bin:\$PATH", env), env
    health = next(rest for word, rest in steps if word == "HEALTHCHECK")
    assert "http://127.0.0.1:8000/health/live" in health


def test_the_build_context_keeps_what_the_package_needs():
    """.dockerignore leaves out tests, docs and data, never a file of a package the wheel holds."""
    patterns = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines() if p.strip()]
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    packages = ("repradar/", "features/", "training/", "models/", "serving/", "simulator/", "importer/")
    needed = [f for f in files.split() if f.startswith(packages + ("reporting/",))]
    needed += ["pyproject.toml", "uv.lock", "README.md"]
    assert len(needed) > 50

    def ignored(path: str) -> bool:
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        for pat in patterns:
            if pat.startswith("**/"):
                if any(fnmatch.fnmatch(part, pat[3:]) for part in parts):
                    return True
            elif any(fnmatch.fnmatch(p, pat) and p.count("/") == pat.count("/") for p in prefixes):
                return True
        return False

    assert [f for f in needed if ignored(f)] == []
    assert ignored("tests/conftest.py") and ignored("serving/__pycache__/app.cpython-311.pyc")
