"""The documentation: relative links lead to files of the repository, and the interface specs shipped
in docs/spec/ are the ones the team shares (when that shared copy is present); the command line
the docs show is the one `repradar` has."""

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


# A source file named in the text (`serving/runs.py`, `python bench/bench_api.py`), not only in a link.
SOURCE = re.compile(
    r"(?<![\w/.-])((?:bench|features|importer|models|reporting|repradar|serving|simulator|tests|training)"
    r"/[\w/.-]*\.(?:py|yaml|sql|css))\b"
)


@pytest.mark.parametrize("doc", _docs(), ids=lambda p: str(p.relative_to(REPO)))
def test_source_files_the_docs_name_exist(doc):
    missing = sorted({p for p in SOURCE.findall(doc.read_text()) if not (REPO / p).exists()})
    assert missing == [], f"{doc.name} names files the repository does not have: {missing}"


@pytest.mark.skipif(not SHARED_SPEC.is_dir(), reason="no shared spec folder beside the repository")
@pytest.mark.parametrize("name", ["data-contract.md", "outputs.md", "interventions.md"])
def test_the_shipped_specs_are_the_shared_ones(name):
    assert (REPO / "docs" / "spec" / name).read_bytes() == (SHARED_SPEC / name).read_bytes(), (
        f"docs/spec/{name} differs from {SHARED_SPEC / name}: copy the shared one over"
    )


def _commands() -> dict[str, object]:
    """Every leaf command of the console script by its full name ("score", "users add")."""
    import typer.main

    from repradar.cli import app

    found = {}

    def walk(cmd, path):
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                walk(sub, [*path, name])
        else:
            found[" ".join(path)] = cmd

    walk(typer.main.get_command(app), [])
    return found


def _options(cmd) -> set[str]:
    return {o for p in cmd.params for o in [*p.opts, *p.secondary_opts] if o.startswith("--")} - {"--help"}


# `repradar CMD [SUB] ...` up to the end of the code span, table cell or line.
COMMAND = re.compile(r"\brepradar((?: [a-z][a-z-]*)+)([^`|\n]*)")


def test_every_option_the_docs_give_a_command_is_one_it_has():
    commands = _commands()
    bad = []
    for doc in _docs():
        for n, line in enumerate(doc.read_text().splitlines(), 1):
            for words, rest in COMMAND.findall(line):
                words = words.split()
                name = next((" ".join(words[:k]) for k in (2, 1) if " ".join(words[:k]) in commands), None)
                if name is None:
                    continue
                for opt in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", rest):
                    if opt not in _options(commands[name]) | {"--help"}:
                        bad.append(f"{doc.relative_to(REPO)}:{n}: repradar {name} {opt}")
    assert bad == [], "options the docs give that the command does not have:\n" + "\n".join(bad)


def test_every_option_of_every_command_is_documented():
    text = "\n".join(doc.read_text() for doc in _docs())
    named = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text))
    missing = [
        f"repradar {name} {'/'.join(sorted(opts))}"
        for name, cmd in sorted(_commands().items())
        for p in cmd.params
        if (opts := {o for o in [*p.opts, *p.secondary_opts] if o.startswith("--")} - {"--help"})
        and not opts & named
    ]
    assert missing == [], "options that neither README.md nor docs/ name: " + ", ".join(missing)
