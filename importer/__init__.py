"""Importing real CRM exports: a YAML mapping turns a folder of source files into a contract folder.

`importer.mapping` reads and checks mapping files, `importer.transforms` holds the pure cell
transforms, `importer.quotas` derives quotas for exports without them, and `importer.run` ties
them together and writes the contract folder atomically (see docs/import.md).
"""

from __future__ import annotations

from pathlib import Path

MAPPINGS_DIR = Path(__file__).parent / "mappings"


def shipped_mappings() -> dict[str, Path]:
    """Mappings shipped with the product, by name (`salesforce`, `maven_crm`)."""
    return {p.stem: p for p in sorted(MAPPINGS_DIR.glob("*.yaml"))}
