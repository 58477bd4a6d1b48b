"""The documentation: relative links lead to files of the repository, and the interface specs shipped
in docs/spec/ are the ones the team shares (when that shared copy is present)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_SPEC = REPO.parent / "shared" / "spec"
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _docs() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


@pytest.mark.parametrize("doc", _docs(), ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_stay_inside_the_repository_and_exist(doc):
    bad = []
    for target in LINK.findall(doc.read_text()):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path = (doc.parent / target).resolve()
        if not path.is_relative_to(REPO) or not path.exists():
            bad.append(target)
    assert bad == [], f"{doc.name}: links that leave the repository or lead nowhere: {bad}"


@pytest.mark.skipif(not SHARED_SPEC.is_dir(), reason="no shared spec folder beside the repository")
@pytest.mark.parametrize("name", ["data-contract.md", "outputs.md", "interventions.md"])
def test_the_shipped_specs_are_the_shared_ones(name):
    assert (REPO / "docs" / "spec" / name).read_bytes() == (SHARED_SPEC / name).read_bytes(), (
        f"docs/spec/{name} differs from {SHARED_SPEC / name}: copy the shared one over"
    )
