"""The feature SQL is one text for two engines: it must parse as DuckDB and as Spark SQL."""

from __future__ import annotations

import re

import pytest
import sqlglot
from sqlglot import exp

from features.contract import KNOWN_METRICS
from features.engine import PIPELINE, SQL_DIR, sql_files, sql_text

FILES = sql_files()


def test_every_pipeline_step_has_a_file_and_every_file_is_a_step():
    assert sorted(p.stem for p in FILES) == sorted(PIPELINE)


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
@pytest.mark.parametrize("dialect", ["duckdb", "spark"])
def test_sql_parses(path, dialect):
    statements = sqlglot.parse(path.read_text(), read=dialect)
    statements = [s for s in statements if s is not None]
    assert len(statements) == 1, "one SELECT per file"
    assert isinstance(statements[0], exp.Query)


# Constructs that parse in both dialects but behave differently, or exist in only one.
FORBIDDEN = {
    r"::": "PostgreSQL-style cast",
    r"\bQUALIFY\b": "QUALIFY",
    r"\b(date_diff|datediff|date_add|date_sub|date_trunc|strftime|strptime|epoch)\s*\(": "date function",
    r"\b(list|struct|array|map|unnest|range|generate_series)\w*\s*\(": "list/struct/table function",
    r"\bILIKE\b": "ILIKE",
    r"\bMEDIAN\s*\(": "MEDIAN (use PERCENTILE_CONT ... WITHIN GROUP)",
    r"//": "integer division operator",
    r"\bDATE\b|\bTIMESTAMP\b|\bINTERVAL\b": "date or timestamp types (staging converts to day numbers)",
}


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_sql_uses_only_the_shared_dialect(path):
    code = "\n".join(line.split("--")[0] for line in path.read_text().splitlines())
    for pattern, what in FORBIDDEN.items():
        assert not re.search(pattern, code, flags=re.IGNORECASE), f"{path.name}: {what}"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_sql_reads_only_staged_tables_and_earlier_steps(path):
    tree = sqlglot.parse_one(path.read_text(), read="duckdb")
    ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
    earlier = set(PIPELINE[: PIPELINE.index(path.stem)])
    for table in tree.find_all(exp.Table):
        name = table.name
        assert name in ctes or name in earlier or name.startswith("stg_"), f"{path.stem} reads {name}"


def test_known_metrics_in_sql_match_the_contract():
    listed = set(re.findall(r"'(\w+)'", sql_text("engagement_unknown")))
    assert listed == set(KNOWN_METRICS)
    used = set(re.findall(r"metric_name = '(\w+)'", sql_text("engagement_known")))
    assert used == set(KNOWN_METRICS)


def test_sql_dir_is_the_package_folder():
    assert SQL_DIR.name == "sql" and SQL_DIR.parent.name == "features"
