"""Contract validation: every rule of shared/spec/data-contract.md, one broken fixture folder each.

Each case copies the small valid folder (tests/fixtures/contract/valid), breaks one thing, and
checks that exactly that rule is reported with its table, column, rule name, row count and
first rows, and that validation left every file in the folder untouched.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.contract import TABLES
from features.validation import (
    MAX_EXAMPLES,
    Failure,
    ValidationReport,
    coerce_table,
    validate_folder,
)
from repradar.errors import ContractError

VALID = Path(__file__).resolve().parents[1] / "fixtures" / "contract" / "valid"


# --------------------------------------------------------------------------------------------
# helpers


def copy_valid(tmp_path: Path) -> Path:
    dst = tmp_path / "org"
    shutil.copytree(VALID, dst)
    return dst


def read_csv(folder: Path, table: str) -> pd.DataFrame:
    return pd.read_csv(folder / f"{table}.csv", dtype=str, keep_default_na=False)


def write_csv(folder: Path, table: str, df: pd.DataFrame) -> None:
    df.to_csv(folder / f"{table}.csv", index=False)


def set_cell(folder: Path, table: str, line: int, column: str, value: str) -> None:
    """Set one cell; `line` is its line in the file (the header is line 1), as validation reports it."""
    df = read_csv(folder, table)
    df.loc[line - 2, column] = value
    write_csv(folder, table, df)


def append_copy(folder: Path, table: str, line: int, **changes: str) -> None:
    """Append a copy of the row on `line` (the header is line 1), with `changes`."""
    df = read_csv(folder, table)
    new = df.iloc[[line - 2]].copy()
    for k, v in changes.items():
        new[k] = v
    write_csv(folder, table, pd.concat([df, new], ignore_index=True))


def snapshot(folder: Path) -> dict:
    if not folder.exists():
        return {}
    return {
        p.relative_to(folder): (p.read_bytes() if p.is_file() else None, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
    }


def check(folder: Path) -> ValidationReport:
    """validate_folder, asserting it changed nothing in the folder."""
    before = snapshot(folder)
    report = validate_folder(folder)
    assert snapshot(folder) == before, "validation modified the folder"
    return report


def the_failure(report: ValidationReport, rule: str) -> Failure:
    """The single failure of the report, which must be about `rule`."""
    assert [f.rule for f in report.failures] == [rule], report.render()
    return report.failures[0]


def to_parquet(src: Path, dst: Path) -> Path:
    """The folder's tables as properly typed Parquet: date32 dates, UTC timestamps, bool booleans."""
    from features.io import load_folder

    dst.mkdir(parents=True, exist_ok=True)
    for name, df in load_folder(src).items():
        if df is None:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pyarrow's pandas bridge warns about tz-aware .values
            t = pa.Table.from_pandas(df, preserve_index=False)
        for col in TABLES[name].columns:
            if col.kind == "date":
                t = t.set_column(
                    t.schema.get_field_index(col.name), col.name, pc.cast(t[col.name], pa.date32())
                )
        pq.write_table(t, dst / f"{name}.parquet")
    return dst


# --------------------------------------------------------------------------------------------
# the valid folder


def test_valid_csv_folder_passes():
    report = check(VALID)
    assert report.ok, report.render()
    assert report.failures == []
    assert report.tables == {
        "reps": 5,
        "quotas": 10,
        "opportunities": 8,
        "opportunity_history": 7,
        "activities": 6,
        "engagement": 9,
        "interventions": 3,
    }
    assert "OK" in report.render()
    report.raise_if_failed()  # does not raise


def test_valid_parquet_folder_passes(tmp_path):
    folder = to_parquet(VALID, tmp_path / "pq")
    schema = pq.read_schema(folder / "opportunities.parquet")
    assert schema.field("close_date").type == pa.date32() and schema.field("is_won").type == pa.bool_()
    report = check(folder)
    assert report.ok, report.render()
    assert report.tables["opportunities"] == 8
    assert report.files["reps"].name == "reps.parquet"


def test_parquet_written_by_other_tools_passes(tmp_path):
    """No pandas metadata, integer ids, timestamps in another zone, dates as timestamps."""
    folder = tmp_path / "org"
    folder.mkdir()
    day = pa.array(pd.to_datetime(["2024-01-01", "2024-04-01"]).to_numpy(), pa.timestamp("ms"))
    pq.write_table(
        pa.table(
            {
                "rep_id": pa.array([1, 2], pa.int64()),
                "manager_id": ["m1", "m1"],
                "hire_date": pa.array([pd.Timestamp("2020-01-01").date()] * 2, pa.date32()),
            }
        ),
        folder / "reps.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "rep_id": pa.array(["1", "2"]),
                "period_start": day,
                "period_end": pa.array(
                    pd.to_datetime(["2024-03-31", "2024-06-30"]).to_numpy(), pa.timestamp("ms")
                ),
                "quota_amount": pa.array([100, 200], pa.int32()),
            }
        ),
        folder / "quotas.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "opportunity_id": ["o1", "o2"],
                "rep_id": pa.array([1, 2], pa.int32()),
                "created_date": pa.array([pd.Timestamp("2024-01-05").date()] * 2, pa.date32()),
                "close_date": pa.array([pd.Timestamp("2024-02-05").date()] * 2, pa.date32()),
                "stage": ["Closed Won", "Prospecting"],
                "amount": [10.0, 20.0],
                "is_closed": [True, False],
                "is_won": [True, False],
            }
        ),
        folder / "opportunities.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "activity_id": ["a1"],
                "rep_id": ["1"],
                "occurred_at": pa.array([1_700_000_000_000], pa.timestamp("ms", tz="Europe/Berlin")),
                "type": ["call"],
            }
        ),
        folder / "activities.parquet",
    )
    report = check(folder)
    assert report.ok, report.render()


# --------------------------------------------------------------------------------------------
# row-level rules: (break the valid folder) -> one failure naming table, column, rule, rows


def _dup_rep(f):
    append_copy(f, "reps", 2, name="Another Ada")  # line 7 repeats r1


def _dup_opportunity(f):
    append_copy(f, "opportunities", 2)  # line 10 repeats o1


# fmt: off
ROW_RULES = [
    # id, break, table, column, rule, n_rows, first example
    ("reps-hire-date-null", lambda f: set_cell(f, "reps", 3, "hire_date", ""),
     "reps", "hire_date", "not null", 1, {"row": 3, "hire_date": None}),
    ("reps-manager-blank", lambda f: set_cell(f, "reps", 4, "manager_id", "   "),
     "reps", "manager_id", "non-empty", 1, {"row": 4, "manager_id": "   "}),
    ("reps-rep-id-unique", _dup_rep,
     "reps", "rep_id", "unique", 2, {"row": 2, "rep_id": "r1"}),
    ("reps-end-before-hire", lambda f: set_cell(f, "reps", 6, "end_date", "2019-01-31"),
     "reps", "end_date", "end_date >= hire_date", 1, {"row": 6, "hire_date": "2019-09-30", "end_date": "2019-01-31"}),
    ("reps-end-date-type", lambda f: set_cell(f, "reps", 6, "end_date", "soon"),
     "reps", "end_date", "parses as date (YYYY-MM-DD)", 1, {"row": 6, "end_date": "soon"}),
    ("quotas-dangling-rep", lambda f: set_cell(f, "quotas", 4, "rep_id", "r99"),
     "quotas", "rep_id", "exists in reps.rep_id", 1, {"row": 4, "rep_id": "r99"}),
    ("quotas-end-before-start", lambda f: set_cell(f, "quotas", 2, "period_end", "2023-12-31"),
     "quotas", "period_end", "period_end >= period_start", 1,
     {"row": 2, "period_start": "2024-01-01", "period_end": "2023-12-31"}),
    ("quotas-amount-zero", lambda f: set_cell(f, "quotas", 5, "quota_amount", "0"),
     "quotas", "quota_amount", "quota_amount > 0", 1, {"row": 5, "quota_amount": "0"}),
    ("quotas-amount-negative", lambda f: set_cell(f, "quotas", 5, "quota_amount", "-10"),
     "quotas", "quota_amount", "quota_amount > 0", 1, {"row": 5, "quota_amount": "-10"}),
    ("quotas-amount-type", lambda f: set_cell(f, "quotas", 3, "quota_amount", "lots"),
     "quotas", "quota_amount", "parses as number", 1, {"row": 3, "quota_amount": "lots"}),
    ("opps-id-unique", _dup_opportunity,
     "opportunities", "opportunity_id", "unique", 2, {"row": 2, "opportunity_id": "o1"}),
    ("opps-dangling-rep", lambda f: set_cell(f, "opportunities", 3, "rep_id", "nobody"),
     "opportunities", "rep_id", "exists in reps.rep_id", 1, {"row": 3, "rep_id": "nobody"}),
    ("opps-amount-negative", lambda f: set_cell(f, "opportunities", 7, "amount", "-5.0"),
     "opportunities", "amount", "amount >= 0", 1, {"row": 7, "amount": "-5.0"}),
    ("opps-amount-thousands", lambda f: set_cell(f, "opportunities", 2, "amount", "60,000"),
     "opportunities", "amount", "parses as number", 1, {"row": 2, "amount": "60,000"}),
    ("opps-won-not-closed", lambda f: set_cell(f, "opportunities", 3, "is_won", "true"),
     "opportunities", "is_won", "is_won implies is_closed", 1, {"row": 3, "is_won": "true", "is_closed": "false"}),
    ("opps-boolean-type", lambda f: set_cell(f, "opportunities", 4, "is_closed", "maybe"),
     "opportunities", "is_closed", "parses as boolean (true/false, 1/0, yes/no)", 1, {"row": 4, "is_closed": "maybe"}),
    ("opps-close-date-month-13", lambda f: set_cell(f, "opportunities", 5, "close_date", "2024-13-01"),
     "opportunities", "close_date", "parses as date (YYYY-MM-DD)", 1, {"row": 5, "close_date": "2024-13-01"}),
    ("opps-close-date-us-format", lambda f: set_cell(f, "opportunities", 5, "close_date", "06/10/2024"),
     "opportunities", "close_date", "parses as date (YYYY-MM-DD)", 1, {"row": 5, "close_date": "06/10/2024"}),
    ("opps-stage-null", lambda f: set_cell(f, "opportunities", 9, "stage", ""),
     "opportunities", "stage", "not null", 1, {"row": 9, "stage": None}),
    ("history-dangling-opp", lambda f: set_cell(f, "opportunity_history", 7, "opportunity_id", "o404"),
     "opportunity_history", "opportunity_id", "exists in opportunities.opportunity_id", 1,
     {"row": 7, "opportunity_id": "o404"}),
    ("history-amount-negative", lambda f: set_cell(f, "opportunity_history", 3, "amount", "-1"),
     "opportunity_history", "amount", "amount >= 0", 1, {"row": 3, "amount": "-1"}),
    ("history-timestamp-type", lambda f: set_cell(f, "opportunity_history", 4, "changed_at", "yesterday"),
     "opportunity_history", "changed_at", "parses as timestamp (ISO 8601)", 1, {"row": 4, "changed_at": "yesterday"}),
    ("activities-id-unique", lambda f: set_cell(f, "activities", 5, "activity_id", "a2"),
     "activities", "activity_id", "unique", 2, {"row": 3, "activity_id": "a2"}),
    ("activities-dangling-rep", lambda f: set_cell(f, "activities", 2, "rep_id", "r6"),
     "activities", "rep_id", "exists in reps.rep_id", 1, {"row": 2, "rep_id": "r6"}),
    ("activities-duration-negative", lambda f: set_cell(f, "activities", 6, "duration_minutes", "-3"),
     "activities", "duration_minutes", "duration_minutes >= 0", 1, {"row": 6, "duration_minutes": "-3"}),
    ("activities-hour-25", lambda f: set_cell(f, "activities", 6, "occurred_at", "2024-02-02T25:00:00Z"),
     "activities", "occurred_at", "parses as timestamp (ISO 8601)", 1, {"row": 6, "occurred_at": "2024-02-02T25:00:00Z"}),
    ("engagement-dangling-rep", lambda f: set_cell(f, "engagement", 10, "rep_id", "R5"),
     "engagement", "rep_id", "exists in reps.rep_id", 1, {"row": 10, "rep_id": "R5"}),
    ("engagement-pulse-range", lambda f: set_cell(f, "engagement", 2, "value", "11"),
     "engagement", "value", "pulse_score value in [0, 10]", 1, {"row": 2, "metric": "pulse_score", "value": "11"}),
    ("engagement-csat-range", lambda f: set_cell(f, "engagement", 5, "value", "0"),
     "engagement", "value", "csat value in [1, 5]", 1, {"row": 5, "metric": "csat", "value": "0"}),
    ("engagement-pto-negative", lambda f: set_cell(f, "engagement", 7, "value", "-1"),
     "engagement", "value", "pto_days value >= 0", 1, {"row": 7, "metric": "pto_days", "value": "-1"}),
    ("engagement-metric-blank", lambda f: set_cell(f, "engagement", 3, "metric", " "),
     "engagement", "metric", "non-empty", 1, {"row": 3, "metric": " "}),
    ("interventions-dangling-rep", lambda f: set_cell(f, "interventions", 3, "rep_id", "r404"),
     "interventions", "rep_id", "exists in reps.rep_id", 1, {"row": 3, "rep_id": "r404"}),
    ("interventions-catalog", lambda f: set_cell(f, "interventions", 3, "intervention", "yoga"),
     "interventions", "intervention", "is a catalog id", 1, {"row": 3, "intervention": "yoga"}),
    ("interventions-ended-before-start", lambda f: set_cell(f, "interventions", 2, "ended_on", "2024-01-31"),
     "interventions", "ended_on", "ended_on >= started_on", 1,
     {"row": 2, "started_on": "2024-02-01", "ended_on": "2024-01-31"}),
]
# fmt: on


@pytest.mark.parametrize(
    "breaker, table, column, rule, n_rows, first", [c[1:] for c in ROW_RULES], ids=[c[0] for c in ROW_RULES]
)
def test_each_row_rule_is_reported_with_table_column_rule_and_rows(
    tmp_path, breaker, table, column, rule, n_rows, first
):
    folder = copy_valid(tmp_path)
    breaker(folder)
    report = check(folder)
    assert not report.ok
    f = the_failure(report, rule)
    assert (f.table, f.column, f.rule, f.n_rows) == (table, column, rule, n_rows)
    assert f.examples[0] == first
    message = str(f)
    assert message.startswith(f"{table}.{column}: rule '{rule}' broken by {n_rows} row")
    assert f"row {first['row']}" in message
    assert str(f) in report.render()


def test_overlapping_quota_periods_name_both_rows(tmp_path):
    folder = copy_valid(tmp_path)
    set_cell(folder, "quotas", 3, "period_start", "2024-03-15")  # r1: Jan-Mar, then Mar 15-Jun
    f = the_failure(check(folder), "periods of one rep_id do not overlap")
    assert (f.table, f.n_rows) == ("quotas", 1)
    assert f.examples == [
        {
            "row": 3,
            "rep_id": "r1",
            "period_start": "2024-03-15",
            "period_end": "2024-06-30",
            "overlaps": {"row": 2, "period_start": "2024-01-01", "period_end": "2024-03-31"},
        }
    ]
    assert "row 3 (rep_id=r1, period_start=2024-03-15, period_end=2024-06-30) overlaps row 2" in str(f)


def test_periods_meeting_on_one_day_overlap_and_a_long_period_is_named(tmp_path):
    """Periods are inclusive; a later row is compared with the longest earlier one, not just its neighbour."""
    folder = copy_valid(tmp_path)
    q = read_csv(folder, "quotas")
    q.loc[0, "period_end"] = "2024-12-31"  # r1 on line 2 now covers the year, so line 3 overlaps it
    q.loc[4, "period_end"] = "2024-04-01"  # r3 on line 6 ends on the day line 7 starts
    write_csv(folder, "quotas", q)
    f = the_failure(check(folder), "periods of one rep_id do not overlap")
    assert f.n_rows == 2
    assert [(e["row"], e["overlaps"]["row"]) for e in f.examples] == [(3, 2), (7, 6)]


def test_count_is_exact_and_examples_are_the_first_few(tmp_path):
    folder = copy_valid(tmp_path)
    q = read_csv(folder, "quotas")
    q["quota_amount"] = "-1"
    write_csv(folder, "quotas", q)
    f = the_failure(check(folder), "quota_amount > 0")
    assert f.n_rows == 10
    assert [e["row"] for e in f.examples] == list(
        range(2, MAX_EXAMPLES + 2)
    )  # lines 2.. (line 1 is the header)
    assert "broken by 10 rows" in str(f)


def test_all_failures_are_reported_at_once(tmp_path):
    folder = copy_valid(tmp_path)
    set_cell(folder, "opportunities", 2, "amount", "-5")
    set_cell(folder, "opportunities", 3, "rep_id", "ghost")
    set_cell(folder, "activities", 4, "duration_minutes", "-1")
    set_cell(folder, "reps", 2, "hire_date", "2021-02-30")
    report = check(folder)
    assert sorted(f.rule for f in report.failures) == [
        "amount >= 0",
        "duration_minutes >= 0",
        "exists in reps.rep_id",
        "parses as date (YYYY-MM-DD)",
    ]
    # ordered by table as the contract lists them
    assert [f.table for f in report.failures] == ["reps", "opportunities", "opportunities", "activities"]


def test_a_cell_that_does_not_parse_is_not_also_reported_as_null(tmp_path):
    folder = copy_valid(tmp_path)
    set_cell(folder, "reps", 2, "hire_date", "2021/03/01")
    set_cell(folder, "reps", 3, "hire_date", "")
    report = check(folder)
    assert sorted((f.rule, f.examples[0]["row"]) for f in report.failures) == [
        ("not null", 3),
        ("parses as date (YYYY-MM-DD)", 2),
    ]


def test_unknown_engagement_metrics_are_allowed_and_reported_once(tmp_path):
    folder = copy_valid(tmp_path)
    append_copy(folder, "engagement", 10, metric="team_nps", value="1000")
    append_copy(folder, "engagement", 2, metric="Pulse_Score", value="50")
    report = check(folder)
    assert report.ok, report.render()
    [w] = [w for w in report.warnings if "metric" in w]
    assert "team_nps" in w and "'Pulse_Score' looks like 'pulse_score'" in w


def test_accepted_spellings_parse(tmp_path):
    """Booleans true/false/1/0/yes/no in any case, timestamps with or without offset, padded cells."""
    folder = copy_valid(tmp_path)
    o = read_csv(folder, "opportunities")
    o["is_closed"] = ["TRUE", "no", "Yes", "0", " 1 ", "false", "True", "YES"]
    o["is_won"] = ["true", "NO", "False", "0", "1", "0", "yes", "no"]
    o["amount"] = [" 60000 ", "4.5e4", "30000", "52000.75", "180000", "0", "210000", "-0"]
    write_csv(folder, "opportunities", o)
    a = read_csv(folder, "activities")
    a["occurred_at"] = [
        "2024-01-05T10:00:00Z",
        "2024-01-06T11:30:00+0200",
        "2024-01-07 09:00",
        "2024-02-01T14:00:00.123456-07:00",
        "2024-02-02",
        "2024-02-03T16:00:00+05",
    ]
    write_csv(folder, "activities", a)
    report = check(folder)
    assert report.ok, report.render()


# --------------------------------------------------------------------------------------------
# structural rules: folder, files, columns


def test_missing_folder(tmp_path):
    report = check(tmp_path / "nowhere")
    f = the_failure(report, "folder exists")
    assert "does not exist" in str(f) and "nowhere" in str(f)
    with pytest.raises(ContractError) as exc:
        report.raise_if_failed()
    assert exc.value.failures == [f]


def test_a_file_is_not_a_folder(tmp_path):
    path = tmp_path / "reps.csv"
    path.write_text("rep_id\n")
    f = the_failure(check(path), "folder exists")
    assert "is a file, not a folder" in str(f)


@pytest.mark.parametrize("table", ["reps", "quotas", "opportunities"])
def test_missing_required_table(tmp_path, table):
    folder = copy_valid(tmp_path)
    (folder / f"{table}.csv").unlink()
    f = the_failure(check(folder), "required table present")
    assert (f.table, f.column, f.n_rows) == (table, None, 0)
    assert str(f).startswith(
        f"{table}: rule 'required table present' broken: no {table}.csv or {table}.parquet"
    )


def test_missing_table_names_a_near_miss_file(tmp_path):
    folder = copy_valid(tmp_path)
    (folder / "reps.csv").rename(folder / "Reps.CSV")
    f = the_failure(check(folder), "required table present")
    assert "found Reps.CSV" in str(f) and "lower-case" in str(f)


@pytest.mark.parametrize("table", ["opportunity_history", "activities", "engagement", "interventions"])
def test_optional_table_may_be_absent(tmp_path, table):
    folder = copy_valid(tmp_path)
    (folder / f"{table}.csv").unlink()
    report = check(folder)
    assert report.ok, report.render()
    assert table not in report.tables
    assert any(w.startswith(f"{table}: optional table absent") for w in report.warnings)


def test_csv_and_parquet_of_one_table_uses_parquet_and_warns(tmp_path):
    folder = copy_valid(tmp_path)
    reps = read_csv(folder, "reps").head(5)
    to_parquet(VALID, tmp_path / "pq")
    shutil.copy(tmp_path / "pq" / "reps.parquet", folder / "reps.parquet")
    write_csv(folder, "reps", reps.head(2))  # the CSV is stale: it would leave dangling rep ids
    report = check(folder)
    assert report.ok, report.render()
    assert report.files["reps"].name == "reps.parquet" and report.tables["reps"] == 5
    assert any("both reps.parquet and reps.csv" in w and "using reps.parquet" in w for w in report.warnings)


@pytest.mark.parametrize(
    "table, column",
    [
        ("reps", "hire_date"),
        ("quotas", "quota_amount"),
        ("opportunities", "is_won"),
        ("activities", "occurred_at"),
        ("engagement", "metric"),
        ("interventions", "started_on"),
        ("opportunity_history", "changed_at"),
    ],
)
def test_missing_required_column(tmp_path, table, column):
    folder = copy_valid(tmp_path)
    write_csv(folder, table, read_csv(folder, table).drop(columns=[column]))
    f = the_failure(check(folder), "required column present")
    assert (f.table, f.column, f.n_rows) == (table, column, 0)
    assert str(f).startswith(f"{table}.{column}: rule 'required column present' broken: column missing")


def test_missing_column_names_a_near_miss(tmp_path):
    folder = copy_valid(tmp_path)
    write_csv(folder, "quotas", read_csv(folder, "quotas").rename(columns={"quota_amount": "Quota Amount"}))
    report = check(folder)
    f = the_failure(report, "required column present")
    assert "found 'Quota Amount'" in str(f) and "exact and lower-case" in str(f)


def test_optional_columns_may_be_absent(tmp_path):
    folder = copy_valid(tmp_path)
    write_csv(folder, "reps", read_csv(folder, "reps")[["rep_id", "manager_id", "hire_date"]])
    write_csv(
        folder,
        "activities",
        read_csv(folder, "activities").drop(columns=["duration_minutes", "opportunity_id"]),
    )
    report = check(folder)
    assert report.ok, report.render()


def test_extra_columns_are_warned_once_per_table(tmp_path):
    folder = copy_valid(tmp_path)
    o = read_csv(folder, "opportunities")
    o["owner_email"] = "x@example.com"
    o["notes"] = "n"
    write_csv(folder, "opportunities", o)
    report = check(folder)
    assert report.ok
    ignored = [w for w in report.warnings if "ignored extra column" in w]
    assert ignored == ["opportunities: ignored extra column(s) owner_email, notes (not in the contract)"]
    attrs = [w for w in report.warnings if w.startswith("reps:")]
    assert attrs == [
        "reps: extra column(s) gender, age_band kept as attributes: never features, may be named in the fairness audit"
    ]


def test_duplicate_column_names(tmp_path):
    folder = copy_valid(tmp_path)
    path = folder / "quotas.csv"
    lines = path.read_text().splitlines()
    lines = [lines[0] + ",quota_amount"] + [line + ",1" for line in lines[1:]]
    path.write_text("\n".join(lines) + "\n")
    f = the_failure(check(folder), "column names unique")
    assert (f.table, f.column) == ("quotas", "quota_amount")
    assert "appears 2 times" in str(f)


@pytest.mark.parametrize(
    "content, says",
    [
        (b"", "is empty"),
        (b"\n\n", "is empty"),
        (b"PAR1\x00\x15\x04\x15\x10\x00\x00binary", "binary file"),
        ("rep_id,manager_id,hire_date\nr1,Jos\xe9,2021-01-01\n".encode("latin-1"), "not UTF-8"),
        (b"rep_id,manager_id,hire_date\nr1,m1,2021-01-01\nr2,m1,2021-01-01,extra\n", "not well-formed CSV"),
        (b'rep_id,manager_id,hire_date\nr1,"m1\nr2,m1,2021-01-01\n', "not well-formed CSV"),
    ],
    ids=["empty", "blank-lines", "binary", "latin-1", "ragged", "open-quote"],
)
def test_unreadable_file_is_a_failure_not_a_traceback(tmp_path, content, says):
    folder = copy_valid(tmp_path)
    (folder / "reps.csv").write_bytes(content)
    report = check(folder)
    f = the_failure(report, "file readable")
    assert f.table == "reps" and f.column is None
    assert says in str(f) and "reps.csv" in str(f)
    assert "unreadable" in report.render()


def test_corrupt_parquet_and_a_directory_named_like_a_table(tmp_path):
    folder = copy_valid(tmp_path)
    (folder / "quotas.csv").unlink()
    (folder / "quotas.parquet").write_bytes(b"PAR1 this is not parquet PAR1")
    (folder / "opportunities.csv").unlink()
    (folder / "opportunities.csv").mkdir()
    report = check(folder)
    rules = {(f.table, f.rule) for f in report.failures}
    assert ("quotas", "file readable") in rules
    assert ("opportunities", "required table present") in rules  # a directory is not a file
    assert "not a readable Parquet file" in report.render()


def test_header_only_table_passes_with_a_warning(tmp_path):
    folder = copy_valid(tmp_path)
    (folder / "interventions.csv").write_text("rep_id,intervention,started_on,ended_on\n")
    report = check(folder)
    assert report.ok and report.tables["interventions"] == 0
    assert "interventions: interventions.csv has no data rows" in report.warnings


@pytest.mark.parametrize("content", [b"", b"\xef\xbb\xbf\r\n  \n"], ids=["0-bytes", "bom-and-blanks"])
def test_a_blank_optional_file_is_read_as_absent_with_a_warning(tmp_path, content):
    """What an export of "nothing" writes is no data, not an unreadable table (as in `import`)."""
    from features.io import load_folder

    folder = copy_valid(tmp_path)
    (folder / "activities.csv").write_bytes(content)
    report = check(folder)
    assert report.ok, report.render()
    assert "activities" not in report.tables and "activities" not in report.files
    (warning,) = [w for w in report.warnings if w.startswith("activities:")]
    assert warning.startswith("activities: activities.csv is empty (no header, no rows), read as absent; ")
    assert load_folder(folder).activities is None
    assert load_folder(folder, validate=False).activities is None
    # a required table's blank file stays a failure
    (folder / "quotas.csv").write_bytes(content)
    assert "is empty" in str(the_failure(check(folder), "file readable"))


def test_a_value_planted_on_line_7_is_reported_as_row_7(tmp_path):
    """The README's example, as the acceptance tester did it: line 1 is the header."""
    folder = copy_valid(tmp_path)
    path = folder / "opportunities.csv"
    lines = path.read_text().splitlines()
    lines[6] = ",".join(
        "-5.0" if i == lines[0].split(",").index("amount") else v for i, v in enumerate(lines[6].split(","))
    )
    path.write_text("\n".join(lines) + "\n")
    report = check(folder)
    f = the_failure(report, "amount >= 0")
    assert str(f) == "opportunities.amount: rule 'amount >= 0' broken by 1 row, first: row 7 (amount=-5.0)"
    assert "in a CSV file the line number (the header is line 1" in report.render()


def test_row_numbers_are_line_numbers_when_the_file_has_blank_lines(tmp_path):
    folder = copy_valid(tmp_path)
    path = folder / "quotas.csv"
    lines = path.read_text().splitlines()
    lines.insert(3, "")  # a blank line 4
    assert lines[6].startswith("r3,2024-01-01")
    lines[6] = lines[6].replace("250000", "-250000")  # file line 7, as an editor shows it
    path.write_text("\n".join(lines) + "\n")
    f = the_failure(check(folder), "quota_amount > 0")
    assert f.examples[0]["row"] == 7


def test_row_numbers_are_line_numbers_after_a_cell_that_spans_lines(tmp_path):
    """A quoted cell with line breaks (a note, an address) shifts every later record's line."""
    folder = copy_valid(tmp_path)
    opp = read_csv(folder, "opportunities")
    opp["note"] = ""
    opp.loc[0, "note"] = "call back\nafter\nthe audit"  # record 1 spans lines 2-4
    opp.loc[3, "amount"] = "-5"  # record 4 starts on line 7
    write_csv(folder, "opportunities", opp)
    assert (folder / "opportunities.csv").read_text().splitlines()[6].split(",")[0] == opp.loc[
        3, "opportunity_id"
    ]
    report = check(folder)
    f = the_failure(report, "amount >= 0")
    assert f.examples[0]["row"] == 7 and f.records == (3,)


def test_parquet_date_with_a_time_of_day_is_a_type_failure(tmp_path):
    folder = to_parquet(VALID, tmp_path / "pq")
    t = pq.read_table(folder / "quotas.parquet")
    ts = pc.cast(t["period_end"], pa.timestamp("s"))
    values = ts.to_pylist()
    values[2] = values[2].replace(hour=13)
    t = t.set_column(
        t.schema.get_field_index("period_end"), "period_end", pa.array(values, pa.timestamp("s"))
    )
    pq.write_table(t, folder / "quotas.parquet")
    f = the_failure(check(folder), "parses as date (YYYY-MM-DD)")
    assert (f.table, f.column, f.n_rows, f.examples[0]["row"]) == ("quotas", "period_end", 1, 4)


def test_parquet_negative_amount_reports_the_typed_value(tmp_path):
    folder = to_parquet(VALID, tmp_path / "pq")
    t = pq.read_table(folder / "opportunities.parquet")
    amount = t["amount"].to_pylist()
    amount[6] = -5.0
    pq.write_table(
        t.set_column(t.schema.get_field_index("amount"), "amount", pa.array(amount)),
        folder / "opportunities.parquet",
    )
    f = the_failure(check(folder), "amount >= 0")
    # Parquet has no lines: the 7th record is row 8, as in a spreadsheet with the column names in row 1
    assert str(f) == "opportunities.amount: rule 'amount >= 0' broken by 1 row, first: row 8 (amount=-5.0)"


# --------------------------------------------------------------------------------------------
# report objects


def test_failure_text_and_contract_error(tmp_path):
    f = Failure(
        "opportunities",
        "amount",
        "amount >= 0",
        3,
        [{"row": 7, "amount": -5.0}, {"row": 12, "amount": "-1"}, {"row": 13, "amount": None}],
    )
    assert str(f) == (
        "opportunities.amount: rule 'amount >= 0' broken by 3 rows, first: "
        "row 7 (amount=-5.0), row 12 (amount=-1), row 13 (amount=<empty>)"
    )
    report = ValidationReport(folder=tmp_path, failures=[f])
    assert not report.ok
    with pytest.raises(ContractError) as exc:
        report.raise_if_failed()
    assert exc.value.failures == [f]
    assert str(f) in str(exc.value) and "repradar validate" in str(exc.value)
    assert "FAILED: 1 contract violation(s)" in report.render()


# --------------------------------------------------------------------------------------------
# coerce_table


def test_coerce_table_types_and_extra_columns():
    reps_raw = pd.read_csv(VALID / "reps.csv", dtype=str, keep_default_na=False, na_values=[""])
    reps = coerce_table(TABLES["reps"], reps_raw)
    assert list(reps.columns) == TABLES["reps"].column_names + ["gender", "age_band"]  # attributes kept
    assert reps["hire_date"].dtype == "datetime64[us]" and reps["end_date"].isna().sum() == 4
    assert reps["rep_id"].dtype == "str"

    raw = pd.DataFrame(
        {
            "opportunity_id": ["o1", "o2"],
            "rep_id": ["r1", "r1"],
            "created_date": ["2024-01-01", "2024-01-02"],
            "close_date": ["2024-02-01", "bad"],
            "stage": ["Won", "Open"],
            "amount": ["1.5", "x"],
            "is_closed": ["yes", "0"],
            "is_won": ["1", "no"],
            "crm_flag": ["a", "b"],
        },
        index=[3, 7],
    )
    out = coerce_table(TABLES["opportunities"], raw)
    assert list(out.columns) == TABLES["opportunities"].column_names  # extra dropped, optional added
    assert list(out.index) == [0, 1]
    assert out["amount"].dtype == "float64" and out["amount"].isna().tolist() == [False, True]
    assert out["close_date"].isna().tolist() == [False, True]  # what does not parse is missing
    assert out["is_closed"].dtype == bool and out["is_closed"].tolist() == [True, False]
    assert out["account_id"].isna().all() and out["account_id"].dtype == "str"
    assert raw.loc[7, "amount"] == "x" and "crm_flag" in raw.columns  # the input is untouched


def test_coerce_table_keeps_missing_booleans_missing():
    raw = pd.DataFrame({"is_closed": ["true", None], "is_won": ["maybe", "false"]})
    out = coerce_table(TABLES["opportunities"], raw)
    assert str(out["is_closed"].dtype) == "boolean" and out["is_closed"].isna().tolist() == [False, True]
    assert out["is_won"].isna().tolist() == [True, False]


# --------------------------------------------------------------------------------------------
# robustness: garbage never escapes as an exception


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    table=st.sampled_from(list(TABLES)),
    content=st.one_of(
        st.binary(max_size=200),
        st.text(alphabet=st.sampled_from(list('ab,"\n\r \t1-:T.Zé')), max_size=200).map(str.encode),
        st.lists(st.text(alphabet="rom0123456789-,. ", max_size=12), max_size=12).map(
            lambda xs: "\n".join(xs).encode()
        ),
    ),
)
def test_garbage_in_any_table_is_reported_never_raised(tmp_path_factory, table, content):
    folder = tmp_path_factory.mktemp("garbage")
    for p in VALID.iterdir():
        shutil.copy(p, folder / p.name)
    header = ",".join(TABLES[table].column_names).encode() + b"\n"
    (folder / f"{table}.csv").write_bytes(content if content[:1] == b"\x00" else header + content)
    report = validate_folder(folder)
    assert isinstance(report.render(), str)
    assert all(isinstance(str(f), str) for f in report.failures)


def test_garbage_parquet_values_are_reported_never_raised(tmp_path):
    folder = copy_valid(tmp_path)
    (folder / "engagement.csv").unlink()
    pq.write_table(
        pa.table(
            {
                "rep_id": pa.array([1.5, np.nan, 3.0]),
                "date": pa.array([True, False, None]),
                "metric": pa.array([b"x", b"y", None], pa.binary()),
                "value": pa.array(["1", "two", None]),
            }
        ),
        folder / "engagement.parquet",
    )
    report = check(folder)
    rules = {(f.column, f.rule) for f in report.failures}
    assert ("rep_id", "parses as text") in rules
    assert ("date", "parses as date (YYYY-MM-DD)") in rules
    assert ("value", "parses as number") in rules


@pytest.mark.parametrize("use_duckdb", [False, True])
def test_uniqueness_marks_every_repeated_row_and_ignores_missing(use_duckdb):
    from features.validation import _all_distinct

    s = pd.Series(["a", "b", "a", None, None, "c", "b"], dtype="str", index=[0, 2, 3, 4, 5, 7, 9])
    assert _all_distinct(s, use_duckdb=use_duckdb).tolist() == [False, False, False, True, True, True, False]
    assert _all_distinct(s.iloc[[0, 1, 5]], use_duckdb=use_duckdb).all()


def test_files_that_are_not_tables_are_warned_about(tmp_path):
    folder = copy_valid(tmp_path)
    (folder / "notes.csv").write_text("a\n1\n")
    (folder / "reps_2023.xlsx").write_bytes(b"PK")
    (folder / "README.txt").write_text("hello")
    report = check(folder)
    assert report.ok
    [w] = [w for w in report.warnings if w.startswith("ignored file(s)")]
    assert "notes.csv, reps_2023.xlsx" in w and "README" not in w


# fmt: off
EDGE_VALUES = {
    "number": ["1", "1.5", "-0", "+5", "1e3", ".5", "5.", " 7 ", "inf", "nan", "Infinity", "1e400",
               "0x10", "1_000", "1,000", "1.5.2", "e5"],
    "date": ["2024-01-01", "2024-02-29", " 2024-03-01 ", "9999-12-31", "0001-01-01", "2024-1-1",
             "2024-02-30", "20240101", "2024-01-01T00:00", "01/02/2024"],
    "timestamp": ["2024-01-01T10:00:00Z", "2024-01-01T10:00:00", "2024-01-01 10:00:00", "2024-01-01",
                  "2024-01-01T10:00", "2024-01-01T10", "2024-01-01T10:00:00+02:00", "2024-01-01T10:00:00+0200",
                  "2024-01-01T10:00:00+02", "2024-01-01T10:00:00.5Z", "2024-01-01T10:00:00.123456789Z",
                  "2024-1-1", "20240101", "2024", "2024-01", "2024-01-01T25:00:00Z", "2024-02-30T00:00:00Z"],
    "boolean": ["true", "FALSE", " yes ", "No", "1", "0", "t", "maybe", "1.0"],
}
# fmt: on


@pytest.mark.parametrize("kind", list(EDGE_VALUES))
def test_fast_and_exact_parsers_agree_on_every_value(kind):
    """A column parses in one strict pass when every cell is clean, else cell by cell: same answers."""
    from features.validation import _PARSERS

    values = EDGE_VALUES[kind]
    parse = _PARSERS[kind]
    mixed, mixed_bad = parse(pd.Series(values + ["garbage!"], dtype="str"))  # forces the exact path
    assert bool(mixed_bad.iloc[-1])
    for i, v in enumerate(values):
        alone, alone_bad = parse(pd.Series([v], dtype="str"))  # the strict pass when it accepts
        assert bool(alone_bad.iloc[0]) == bool(mixed_bad.iloc[i]), v
        a, m = alone.iloc[0], mixed.iloc[i]
        assert (pd.isna(a) and pd.isna(m)) or a == m, (v, a, m)


def test_semicolon_separated_file_says_so(tmp_path):
    folder = copy_valid(tmp_path)
    read_csv(folder, "quotas").to_csv(folder / "quotas.csv", index=False, sep=";")
    report = check(folder)
    assert {f.rule for f in report.failures} == {"required column present"}
    assert all("separated by semicolons" in f.detail for f in report.failures)
    assert [f.column for f in report.failures] == TABLES["quotas"].column_names


def test_semicolon_separated_reps_is_one_message_not_also_an_attribute_column(tmp_path):
    folder = copy_valid(tmp_path)
    read_csv(folder, "reps").to_csv(folder / "reps.csv", index=False, sep=";")
    report = validate_folder(folder)
    assert any("separated by semicolons" in f.detail for f in report.failures)
    assert not [w for w in report.warnings if "rep_id;manager_id" in w], report.warnings


def test_the_importers_provenance_file_is_not_warned_about(tmp_path):
    folder = copy_valid(tmp_path)
    (folder / "_import.json").write_text("{}\n")
    (folder / "notes.json").write_text("{}\n")
    report = check(folder)
    [w] = [w for w in report.warnings if w.startswith("ignored file(s)")]
    assert "notes.json" in w and "_import.json" not in w


def test_unknown_values_with_a_line_break_are_quoted_not_printed_raw(tmp_path):
    """A dangling reference's value is shown as the examples are: a line break in it (data from outside)
    must not start a line of its own in the report, nor in the service's log, where a job's reason goes."""
    folder = copy_valid(tmp_path)
    forged = "X\n2026-01-01T00:00:00+0000 CRITICAL forged"
    set_cell(folder, "opportunity_history", 2, "opportunity_id", forged)
    f = the_failure(check(folder), "exists in opportunities.opportunity_id")
    text = str(f)
    assert "\n" not in text and "unknown value(s): 'X\\n2026" in text


def test_deals_created_before_their_owners_hire_or_won_after_they_left_are_warned_about(tmp_path):
    # A CRM hands a leaver's open deals to a successor: r2 (hired 2024-01-01 here) now owns o3, created
    # on 2023-12-01, and r5 (left on 2024-03-01) still owns o7, won on 2024-03-29 (o8, lost after it, is
    # not a win). Valid data: each is one warning naming table, column, rule, count and first rows.
    folder = copy_valid(tmp_path)
    set_cell(folder, "reps", 3, "hire_date", "2024-01-01")
    set_cell(folder, "reps", 6, "end_date", "2024-03-01")
    report = check(folder)
    assert report.ok, report.render()
    [hired] = [w for w in report.warnings if w.startswith("opportunities.created_date:")]
    assert hired.startswith(
        "opportunities.created_date: rule 'created on or after the owner's hire_date (reps.hire_date)' "
        "broken by 1 row, first: row 4 (opportunity_id=o3, rep_id=r2, created_date=2023-12-01, "
        "hire_date=2024-01-01); a CRM that hands a leaver's deals to a successor"
    )
    assert "give it to them in opportunities.rep_id" in hired
    [left] = [w for w in report.warnings if w.startswith("opportunities.close_date:")]
    assert left.startswith(
        "opportunities.close_date: rule 'won on or before the owner's end_date (reps.end_date)' broken by "
        "1 row, first: row 8 (opportunity_id=o7, rep_id=r5, close_date=2024-03-29, end_date=2024-03-01); "
        "the owner had left"
    )
    assert not [w for w in check(copy_valid(tmp_path / "again")).warnings if w.startswith("opportunities.")]
