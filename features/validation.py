"""Check a folder of exports against every rule of the data contract, and type its tables.

The per-table column rules run as a pandera schema built from the specs in `features.contract`;
rules across rows or tables (references, overlapping periods) are vectorised pandas. Every
problem becomes a `Failure` naming table, column, rule, row count and the first rows; nothing
here writes to the folder, and bad input never escapes as an exception.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow
import pyarrow.compute as pc
from pandas.api import types as ptypes

from features.contract import (
    KNOWN_METRICS,
    TABLES,
    Column,
    Implies,
    NoOverlap,
    NotBefore,
    RangeBy,
    Table,
)
from features.io import (
    DATETIME_UNIT,
    DELIMITER_NAMES,
    PROVENANCE_FILE,
    TABLE_SUFFIXES,
    csv_record_lines,
    empty_optional,
    excel_sep_line,
    header_delimiter,
    read_raw,
    spreadsheet_row,
)
from features.pandera_pandas import SchemaError, SchemaErrors, pa  # pandera without PySpark
from features.stages import unrecognised_stages, unrecognised_stages_warning
from repradar.errors import ContractError, UserError

MAX_EXAMPLES = 5
ROWS_NOTE = (
    "Row numbers are as in the file: in a CSV file the line number (the header is line 1, the first "
    "data row line 2); in a Parquet file the record's position + 1 (the first record is row 2, as "
    "in a spreadsheet with the column names in row 1)."
)

# Rule names shared by every table (column and table rules are named from the contract specs).
RULE_FOLDER = "folder exists"
RULE_TABLE = "required table present"
RULE_READABLE = "file readable"
RULE_HEADER = "column names unique"
RULE_COLUMN = "required column present"
RULE_NOT_NULL = "not null"
RULE_NON_EMPTY = "non-empty"
RULE_UNIQUE = "unique"
RULE_CATALOG = "is a catalog id"
RULE_CHECKED = "checks ran"
RULE_TYPE = {
    "string": "parses as text",
    "date": "parses as date (YYYY-MM-DD)",
    "timestamp": "parses as timestamp (ISO 8601)",
    "number": "parses as number",
    "boolean": "parses as boolean (true/false, 1/0, yes/no)",
}


# What an absent optional table costs, when it is not "the features it feeds".
ABSENT_EFFECT = {
    "interventions": (
        "no feature is built from it; only the intervention effects of `repradar report` use it "
        "(or a log given with `report --interventions FILE`)"
    ),
}


def rule_references(table: str, column: str) -> str:
    return f"exists in {table}.{column}"


def rule_range(metric: str, lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f"{metric} value in [{lo:g}, {hi:g}]"
    if lo is not None:
        return f"{metric} value >= {lo:g}"
    return f"{metric} value <= {hi:g}"


# --------------------------------------------------------------------------------------------
# Report


@dataclass(frozen=True)
class Failure:
    """One broken rule: where, which rule, how many rows, and the first few of them.

    `examples` are dicts {"row": n, column: value as written in the file, ...}; `row` is the row
    as a person finds it (`ROWS_NOTE`, `CheckedTable.rows`): in a CSV file its line number
    (the header is line 1), in Parquet the record's position + 1. `records` holds the examples'
    0-based record positions, `overlap_records` those of the rows named under "overlaps" (for
    callers that map rows back to another file, e.g. the importer). Structural
    failures (a missing file or column) have n_rows == 0 and say what is wrong in `detail`.
    """

    table: str
    column: str | None
    rule: str
    n_rows: int
    examples: list = field(default_factory=list)
    detail: str = ""
    records: tuple = field(default=(), compare=False, repr=False)
    overlap_records: tuple = field(default=(), compare=False, repr=False)  # each example's "overlaps" row

    def __str__(self) -> str:
        where = self.table if self.column is None else f"{self.table}.{self.column}"
        text = f"{where}: rule '{self.rule}'" if where else f"rule '{self.rule}'"
        if self.n_rows:
            text += f" broken by {self.n_rows} row{'' if self.n_rows == 1 else 's'}"
            if self.examples:
                text += ", first: " + ", ".join(_format_example(e) for e in self.examples)
            if self.detail:
                text += f"; {self.detail}"
        else:
            text += f" broken: {self.detail}" if self.detail else " broken"
        return text


@dataclass
class ValidationReport:
    """Everything found in one folder: failures block loading, warnings do not."""

    folder: Path
    failures: list[Failure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    tables: dict[str, int] = field(default_factory=dict)  # rows read per table
    files: dict[str, Path] = field(default_factory=dict)  # the file each table was read from

    @property
    def ok(self) -> bool:
        return not self.failures

    def render(self) -> str:
        lines = [f"Data contract check of {self.folder}"]
        for name in TABLES:
            if name in self.tables:
                n = self.tables[name]
                lines.append(f"  {name:<20} {n:>10,} row{'' if n == 1 else 's'}  ({self.files[name].name})")
            elif name in self.files:
                lines.append(f"  {name:<20} {'unreadable':>10}  ({self.files[name].name})")
        if self.warnings:
            lines.append(f"{len(self.warnings)} warning(s):")
            lines += [f"  - {w}" for w in self.warnings]
        if self.ok:
            lines.append("OK: every rule of the data contract holds.")
        else:
            lines.append(f"FAILED: {len(self.failures)} contract violation(s):")
            lines += [f"  - {f}" for f in self.failures]
            lines.append(ROWS_NOTE)
        return "\n".join(lines)

    def raise_if_failed(self) -> None:
        if self.failures:
            lines = [f"{self.folder} breaks the data contract: {len(self.failures)} violation(s):"]
            lines += [f"  - {f}" for f in self.failures]
            lines.append(f"Fix the files, then check again with `repradar validate --data {self.folder}`.")
            raise ContractError(self.failures, message="\n".join(lines))


# --------------------------------------------------------------------------------------------
# Public entry points


def validate_folder(folder: Path) -> ValidationReport:
    """Check `folder` against every rule of the contract; never raises on bad input."""
    return _run(Path(folder), want_frames=False)[0]


def validate_and_load(folder: Path) -> tuple[ValidationReport, dict[str, pd.DataFrame | None]]:
    """The report and the typed tables (None when absent or unreadable), reading each file once.

    The frames are only trustworthy when `report.ok`.
    """
    return _run(Path(folder), want_frames=True)


def _run(folder: Path, want_frames: bool) -> tuple[ValidationReport, dict[str, pd.DataFrame | None]]:
    report = ValidationReport(folder=folder)
    frames: dict[str, pd.DataFrame | None] = dict.fromkeys(TABLES)
    try:
        checked = _check_folder(folder, report)
        if want_frames and report.ok:
            for name, c in checked.items():
                frames[name] = _finish(TABLES[name], c.typed, c.raw)
    except Exception as exc:  # a bug must not reach the user as a traceback about their files
        report.failures.append(Failure("", None, RULE_CHECKED, 0, [], f"the checks could not run: {exc!r}"))
    return report, frames


def _check_folder(folder: Path, report: ValidationReport) -> dict[str, CheckedTable]:
    try:
        entries = _list_folder(folder)
    except OSError as exc:
        report.failures.append(Failure("", None, RULE_FOLDER, 0, [], _folder_problem(folder, exc)))
        return {}

    per_table: dict[str, list[Failure]] = {name: [] for name in TABLES}
    checked: dict[str, CheckedTable] = {}
    for name, spec in TABLES.items():
        path = _locate(spec, folder, entries, report, per_table[name])
        if path is None:
            continue
        report.files[name] = path
        try:
            result = check_table(spec, path, report, per_table[name])
        except Exception as exc:  # one table's surprise must not hide the other tables' results
            per_table[name].append(
                Failure(name, None, RULE_CHECKED, 0, [], f"the checks could not run on {path.name}: {exc!r}")
            )
            continue
        if result is not None:
            checked[name] = result
            report.tables[name] = len(result.raw)

    for name, spec in TABLES.items():
        if name in checked:
            per_table[name] += cross_table_failures(spec, checked)
    _warn_unknown_files(entries, report)
    _warn_unrecognised_stages(checked, report)
    report.warnings += deal_owner_warnings(checked)
    for name in TABLES:
        report.failures += per_table[name]
    return checked


def coerce_table(spec: Table, raw: pd.DataFrame) -> pd.DataFrame:
    """The raw table typed per the contract, with a fresh 0..n-1 index.

    Strings: pandas `str`; dates: naive `datetime64[us]` at midnight; timestamps:
    `datetime64[us, UTC]` (no offset means UTC); numbers: float64; booleans: bool (pandas
    `boolean` if a cell is missing). Cells that do not parse become missing (validation reports
    them). Absent optional columns are added, all missing, so every contract column exists.
    Extra columns are dropped, except in `reps` where they are attributes and kept as read.
    """
    typed, _ = _coerce(spec, raw)
    return _finish(spec, typed, raw)


# --------------------------------------------------------------------------------------------
# Files


def _list_folder(folder: Path) -> dict[str, Path]:
    if not folder.exists():
        raise FileNotFoundError(str(folder))
    if not folder.is_dir():
        raise NotADirectoryError(str(folder))
    return {p.name: p for p in folder.iterdir() if not p.name.startswith(".") and p.is_file()}


def _folder_problem(folder: Path, exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return f"{folder} does not exist; pass the folder that holds reps.csv, quotas.csv, ..."
    if isinstance(exc, NotADirectoryError):
        return f"{folder} is a file, not a folder; pass the folder that holds reps.csv, quotas.csv, ..."
    return f"cannot list {folder} ({exc})"


def _locate(
    spec: Table, folder: Path, entries: dict[str, Path], report: ValidationReport, failures: list[Failure]
) -> Path | None:
    present = [entries[f"{spec.name}{s}"] for s in TABLE_SUFFIXES if f"{spec.name}{s}" in entries]
    found = [p for p in present if not _empty_optional_noted(spec, p, report)]
    if len(found) > 1:
        report.warnings.append(
            f"{spec.name}: both {' and '.join(p.name for p in found)} found; using {found[0].name} "
            "(remove the other to silence this)"
        )
    if found:
        return found[0]
    if present:
        return None  # only 0-byte files of an optional table, already noted as absent
    near = [n for n in entries if n.split(".")[0].strip().lower() == spec.name]
    hint = ""
    if near:
        hint = f"; found {', '.join(sorted(near))}: names are exact and lower-case, and only .csv or .parquet is read"
    if spec.required:
        failures.append(
            Failure(
                spec.name,
                None,
                RULE_TABLE,
                0,
                [],
                f"no {spec.name}.csv or {spec.name}.parquet in {folder}{hint}",
            )
        )
    else:
        report.warnings.append(
            f"{spec.name}: optional table absent (no {spec.name}.csv or {spec.name}.parquet){hint}; "
            f"{ABSENT_EFFECT.get(spec.name, 'the features it feeds will be missing')}"
        )
    return None


def empty_optional_warning(spec: Table, file: str) -> str:
    """The warning for an optional table whose file is blank (no header, no rows): it is read as absent."""
    effect = ABSENT_EFFECT.get(spec.name, "the features it feeds will be missing")
    return f"{spec.name}: {file} is empty (no header, no rows), read as absent; {effect}"


def _empty_optional_noted(spec: Table, path: Path, report: ValidationReport) -> bool:
    if not empty_optional(spec.name, path):
        return False
    report.warnings.append(empty_optional_warning(spec, path.name))
    return True


def _warn_unknown_files(entries: dict[str, Path], report: ValidationReport) -> None:
    known = {f"{t}{s}" for t in TABLES for s in TABLE_SUFFIXES} | {PROVENANCE_FILE}  # the importer's record
    data_like = (".csv", ".parquet", ".pq", ".tsv", ".xlsx", ".xls", ".json")
    ignored = sorted(n for n in entries if n not in known and n.lower().endswith(data_like))
    if ignored:
        report.warnings.append(
            f"ignored file(s) that are not contract tables: {', '.join(ignored)} "
            f"(tables are {', '.join(TABLES)} as .csv or .parquet)"
        )


def _warn_unrecognised_stages(checked: dict[str, CheckedTable], report: ValidationReport) -> None:
    """Stage names the late-stage features cannot read; only with opportunity_history, without
    which those features are unknown (NaN) whatever the names."""
    if "opportunities" not in checked or "opportunity_history" not in checked:
        return
    found, any_late = unrecognised_stages(
        checked["opportunities"].typed, checked["opportunity_history"].typed
    )
    warning = unrecognised_stages_warning(found, any_late)
    if warning:
        report.warnings.append(warning)


# Deals whose owner was not employed when they were created or won: CRMs move a leaver's deals to a
# successor and keep only the current owner, so the export rewrites who owned a deal before.
RULE_CREATED_AFTER_HIRE = "created on or after the owner's hire_date (reps.hire_date)"
RULE_WON_BEFORE_END = "won on or before the owner's end_date (reps.end_date)"
CREATED_BEFORE_HIRE_DETAIL = (
    "a CRM that hands a leaver's deals to a successor names the successor as owner from the start: "
    "these deals count as the owner's pipeline, wins and losses (labels included), not as deals they "
    "created, and the features of whoever had them before never saw them. Valid data, nothing "
    "changed; if a deal was someone else's, give it to them in opportunities.rep_id (a re-hired rep's "
    "hire_date is their latest hire, so their earlier deals are named here too)"
)
WON_AFTER_END_DETAIL = (
    "the owner had left when these deals were won: a won deal counts toward the owner's quota period "
    "holding its close_date (a label of their last period counts it; after that period, nobody's), and no "
    "feature of a rep still employed sees it. Valid data, nothing changed; if a colleague closed it, "
    "give it to them in opportunities.rep_id"
)


# The deal-owner checks, each (opportunities column, reps column, rule, detail, only deals where this
# boolean column is true): a deal's column before the owner's hire_date, or after their end_date.
DEAL_OWNER_CHECKS = (
    ("created_date", "hire_date", RULE_CREATED_AFTER_HIRE, CREATED_BEFORE_HIRE_DETAIL, None),
    ("close_date", "end_date", RULE_WON_BEFORE_END, WON_AFTER_END_DETAIL, "is_won"),
)


def deal_owner_shown(column: str) -> list[str]:
    """The opportunities columns a deal-owner warning shows of each row (then the owner's date)."""
    return ["opportunity_id", "rep_id", column]


def deal_owner_warning(column: str, rule: str, detail: str, n_rows: int, examples: list[dict]) -> str:
    """One deal-owner warning's text, shared by the pandas and Spark validators so they cannot drift."""
    return f"{Failure('opportunities', column, rule, n_rows, examples)}; {detail}"


def deal_owner_warnings(checked: dict[str, CheckedTable]) -> list[str]:
    """Warnings for deals created before their owner's hire_date or won after their end_date, each with
    its rule, count and first rows: reassigned deals the features credit to their current owner."""
    if "opportunities" not in checked or "reps" not in checked:
        return []
    opps, reps = checked["opportunities"], checked["reps"].typed
    if not {"rep_id", "hire_date"} <= set(reps.columns) or "rep_id" not in opps.typed.columns:
        return []
    reps = reps.dropna(subset=["rep_id"]).drop_duplicates("rep_id").set_index("rep_id")
    o = opps.typed
    owner = o["rep_id"]
    out = []
    for column, rep_column, rule, detail, only in DEAL_OWNER_CHECKS:
        if column not in o.columns or rep_column not in reps.columns or (only and only not in o.columns):
            continue
        theirs = owner.map(reps[rep_column])
        broken = (o[column] < theirs) if rep_column == "hire_date" else (o[column] > theirs)
        broken = broken.fillna(False).astype(bool)
        if only:
            broken &= o[only].fillna(False).astype(bool)
        if not broken.any():
            continue
        f = _row_failure("opportunities", column, rule, broken, opps, deal_owner_shown(column))
        for ex, label in zip(f.examples, f.records, strict=True):
            ex[rep_column] = _py(theirs.loc[label])
        out.append(deal_owner_warning(column, rule, detail, f.n_rows, f.examples))
    return out


def _csv_header(path: Path) -> list[str]:
    sep = excel_sep_line(path)
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as fh:
        if sep:
            fh.readline()
        return next(csv.reader(fh, delimiter=sep or ","), [])


# --------------------------------------------------------------------------------------------
# One table


@dataclass
class CheckedTable:
    """One table as read and checked from its file (what `cross_table_failures` compares)."""

    raw: pd.DataFrame  # as read; index label i is the file's record i (0-based)
    typed: pd.DataFrame  # contract columns present in the file, same index; bad cells missing
    unparsed: dict[str, pd.Series]  # column -> mask of cells that are present but do not parse
    path: Path | None = None  # the file read: rows are numbered as in it
    _lines: np.ndarray | None = None  # CSV: the line each record starts on, read when first needed

    def rows(self, labels: list[int]) -> list[int]:
        """The reported row numbers of the records at `labels`: CSV lines, else `spreadsheet_row`."""
        if self.path is None or self.path.suffix != ".csv" or not labels:
            return [spreadsheet_row(i) for i in labels]
        need = max(labels) + 1
        if self._lines is None or len(self._lines) < need:  # once per file: every record's line
            n = max(need, int(self.raw.index.max()) + 1 if len(self.raw) else 0)
            self._lines = csv_record_lines(self.path, n)
        return [int(self._lines[i]) for i in labels]


def check_table(
    spec: Table, path: Path, report: ValidationReport, failures: list[Failure]
) -> CheckedTable | None:
    """Read one table's file and check its own rules: failures appended to `failures`, warnings to
    `report`; None when it cannot be read. `repradar validate` runs it per table; `report --interventions`
    on one file."""
    name = spec.name
    try:
        raw = read_raw(path)
    except UserError as exc:
        failures.append(Failure(name, None, RULE_READABLE, 0, [], str(exc)))
        return None
    except Exception as exc:  # anything the readers throw on a strange file
        failures.append(Failure(name, None, RULE_READABLE, 0, [], f"cannot read {path.name} ({exc!r})"))
        return None

    header = _csv_header(path) if path.suffix == ".csv" else [str(c) for c in raw.columns]
    dups = sorted({c for c in header if header.count(c) > 1}) if len(header) != len(set(header)) else []
    if dups:
        for c in dups:
            failures.append(
                Failure(
                    name,
                    c,
                    RULE_HEADER,
                    0,
                    [],
                    f"column {c!r} appears {header.count(c)} times in {path.name}'s header; keep one",
                )
            )
        return None
    raw.columns = [str(c) for c in raw.columns]
    sep = excel_sep_line(path) if path.suffix == ".csv" else None
    if sep:
        report.warnings.append(
            f"{name}: line 1 of {path.name} is Excel's `sep={sep}` line; skipped, the header is line 2 "
            "(rows are numbered as in the file)"
        )
    if len(raw) == 0:
        report.warnings.append(f"{name}: {path.name} has no data rows")

    extras = [c for c in raw.columns if c not in spec.column_names]
    if (
        extras and header_delimiter(raw.columns) is None
    ):  # a header split on another character: one failure says it
        report.warnings.append(extra_columns_warning(spec, extras))

    typed, unparsed = _coerce(spec, raw)
    checked = CheckedTable(raw, typed, unparsed, path)

    # Types: a present cell that does not parse.
    for col in spec.columns:
        if col.name in unparsed:
            failures.append(
                _row_failure(name, col.name, RULE_TYPE[col.kind], unparsed[col.name], checked, [col.name])
            )

    # Column rules (presence, nulls, blanks, ranges, uniqueness, catalogs) through pandera.
    fc = _run_schema(_column_schema(spec), typed)
    if fc is not None:
        failures += _column_failures(spec, fc, checked)

    # Multi-column rules through pandera, each on just its columns.
    for rule in spec.rules:
        if not all(c in typed.columns for c in rule.columns):
            continue
        if isinstance(rule, NoOverlap):
            f = _overlap_failure(spec, rule, checked)
            if f is not None:
                failures.append(f)
            continue
        for rule_name, schema in _rule_schemas(rule):
            fc = _run_schema(schema, typed[list(rule.columns)])
            if fc is not None:
                failures.append(
                    _failure_from_cases(name, rule.column, rule_name, fc, checked, list(rule.columns))
                )

    if name == "engagement" and "metric" in typed.columns:
        _warn_unknown_metrics(typed["metric"], report)
    return checked


def extra_columns_warning(spec: Table, extras: list[str]) -> str:
    """The warning for columns outside the contract: attributes in `reps`, ignored elsewhere."""
    listed = ", ".join(extras)
    if spec.open_columns:
        return (
            f"{spec.name}: extra column(s) {listed} kept as attributes: never features, "
            "may be named in the fairness audit"
        )
    return f"{spec.name}: ignored extra column(s) {listed} (not in the contract)"


def _warn_unknown_metrics(metric: pd.Series, report: ValidationReport) -> None:
    text = unknown_metrics_warning(metric.dropna().unique())
    if text:
        report.warnings.append(text)


def unknown_metrics_warning(seen: Iterable) -> str | None:
    """The warning for engagement metrics outside the known list (None when all are known)."""
    unknown = sorted(str(m) for m in seen if m not in KNOWN_METRICS)
    if not unknown:
        return None
    shown = ", ".join(unknown[:10]) + (f" (+{len(unknown) - 10} more)" if len(unknown) > 10 else "")
    text = f"engagement: metric(s) outside the known list, used as features as they are: {shown}"
    lookalikes = [
        f"{m!r} looks like {m.strip().lower()!r}" for m in unknown if m.strip().lower() in KNOWN_METRICS
    ]
    if lookalikes:
        text += f" ({'; '.join(lookalikes[:5])}: metric names are exact)"
    return text


# --------------------------------------------------------------------------------------------
# Typing


def _coerce(spec: Table, raw: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, pd.Series]]:
    """Contract columns present in `raw`, typed; and per column the cells that failed to parse."""
    cols: dict[str, pd.Series] = {}
    unparsed: dict[str, pd.Series] = {}
    for col in spec.columns:
        if col.name not in raw.columns:
            continue
        s = raw[col.name]
        typed, bad = _PARSERS[col.kind](s)
        cols[col.name] = typed
        if bad is not None and bool(bad.any()):
            unparsed[col.name] = bad
    return pd.DataFrame(cols, index=raw.index), unparsed


def _text(s: pd.Series) -> pd.Series:
    """Cells as stripped text; blank cells missing."""
    if s.dtype != "str":
        s = s.astype("str")
    t = s.str.strip()
    return t.where(t != "")


def _strict_cast(t: pd.Series, to) -> pd.Series | None:
    """pyarrow's strict parse of the whole (stripped) column, or None when any cell fails.

    Several times faster than pandas' per-cell parsers and stricter than them, so it is only a
    shortcut: when it refuses, the pandas path below finds exactly which cells are bad.
    """
    try:
        arr = pyarrow.array(t.array)
        out = pc.cast(arr, to)
        if pyarrow.types.is_date32(to):
            out = pc.cast(out, pyarrow.timestamp(DATETIME_UNIT))
        return out.to_pandas().set_axis(t.index)
    except (pyarrow.ArrowException, TypeError, ValueError):
        return None


def _is_texty(s: pd.Series) -> bool:
    if s.dtype == "str" or ptypes.is_string_dtype(s.dtype) and s.dtype != object:
        return True
    return s.dtype == object and pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty")


def _as_string(s: pd.Series) -> tuple[pd.Series, pd.Series | None]:
    bad = None
    if _is_texty(s):
        out = s if s.dtype == "str" else s.astype("str")
    elif ptypes.is_integer_dtype(s.dtype) and not ptypes.is_bool_dtype(s.dtype):
        out = s.astype("str")  # numeric ids in Parquet: 17 -> "17"
    elif ptypes.is_float_dtype(s.dtype):
        integral = s.isna() | (s == np.floor(s))
        bad = ~integral
        out = s.where(integral).astype("Int64").astype("str")
    elif s.dtype == object:
        out = s.astype("str")
    else:  # booleans, datetimes ... stored where text is expected
        bad = s.notna()
        out = pd.Series(np.nan, index=s.index, dtype="str")
    if bool((out == "").any()):
        out = out.where(out != "")  # an empty string is a missing cell, as in CSV
    return out, bad


def _as_number(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    if ptypes.is_bool_dtype(s.dtype) or ptypes.is_datetime64_any_dtype(s.dtype):
        return pd.Series(np.nan, index=s.index, dtype="float64"), s.notna()
    if ptypes.is_numeric_dtype(s.dtype):
        present = s.notna()
        out = pd.Series(s.to_numpy(dtype="float64", na_value=np.nan), index=s.index)
    else:
        t = _text(s)
        present = t.notna()
        out = _strict_cast(t, pyarrow.float64())
        if out is None:
            out = pd.to_numeric(t, errors="coerce")
        out = out.astype("float64")
    finite = np.isfinite(out.to_numpy())
    bad = present & ~finite
    return out.where(finite), bad


_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")


def _as_boolean(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    if ptypes.is_bool_dtype(s.dtype):
        return s.astype("boolean"), pd.Series(False, index=s.index)
    if ptypes.is_numeric_dtype(s.dtype):
        present = s.notna()
        is_true, is_false = (s == 1).fillna(False), (s == 0).fillna(False)
    else:
        t = _text(s)
        present = t.notna()
        low = t.str.lower()
        is_true, is_false = low.isin(_TRUE), low.isin(_FALSE)
    is_true = is_true.to_numpy(dtype=bool)
    known = is_true | is_false.to_numpy(dtype=bool)
    out = pd.Series(pd.arrays.BooleanArray(is_true, ~known), index=s.index)
    return out, present & ~known


_DATE_RE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
# [0-9] and " ", not \d and \s: pandas then runs the match in pyarrow (RE2) rather than row by row.
_TIMESTAMP_RE = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?:[T ][0-9]{2}(?::[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]+)?)?)?)? ?(?:[Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)?"
)


def _as_date(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    present = s.notna()
    if ptypes.is_datetime64_any_dtype(s.dtype):
        out = s.dt.tz_localize(None) if getattr(s.dt, "tz", None) is not None else s
        out = out.astype(f"datetime64[{DATETIME_UNIT}]")
        has_time = out.notna() & (out != out.dt.normalize())  # a date is a day, not an instant
        return out.where(~has_time), has_time
    if s.dtype == object and not _is_texty(s):
        kind = pd.api.types.infer_dtype(s, skipna=True)
        if kind in ("date", "datetime", "datetime64"):
            # Each stamp's own wall clock (its local calendar day), also when offsets differ by row.
            out = pd.to_datetime(s.map(_wall_clock), errors="coerce")
            out = out.astype(f"datetime64[{DATETIME_UNIT}]")
            has_time = out.notna() & (out != out.dt.normalize())
            out = out.where(~has_time)
            return out, present & out.isna()
    if ptypes.is_numeric_dtype(s.dtype) or ptypes.is_bool_dtype(s.dtype):
        return pd.Series(pd.NaT, index=s.index, dtype=f"datetime64[{DATETIME_UNIT}]"), present
    t = _text(s)
    fast = _strict_cast(t, pyarrow.date32())
    if fast is not None:
        return fast.astype(f"datetime64[{DATETIME_UNIT}]"), pd.Series(False, index=s.index)
    iso = t.str.fullmatch(_DATE_RE).fillna(False).astype(bool)
    out = pd.to_datetime(t.where(iso), format="%Y-%m-%d", errors="coerce").astype(
        f"datetime64[{DATETIME_UNIT}]"
    )
    return out, t.notna() & out.isna()


def _wall_clock(v):
    """A date/datetime cell as naive local time: the day and hour its own clock showed."""
    try:
        ts = pd.Timestamp(v)
    except (TypeError, ValueError):
        return pd.NaT
    return ts.tz_localize(None) if ts.tzinfo is not None else ts


def _as_timestamp(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    present = s.notna()
    unit = f"datetime64[{DATETIME_UNIT}, UTC]"
    if ptypes.is_datetime64_any_dtype(s.dtype):
        out = s.dt.tz_convert("UTC") if getattr(s.dt, "tz", None) is not None else s.dt.tz_localize("UTC")
        return out.astype(unit), pd.Series(False, index=s.index)
    if s.dtype == object and not _is_texty(s):
        kind = pd.api.types.infer_dtype(s, skipna=True)
        if kind in ("date", "datetime", "datetime64"):
            out = pd.to_datetime(s, errors="coerce", utc=True).astype(unit)
            return out, present & out.isna()
    if ptypes.is_numeric_dtype(s.dtype) or ptypes.is_bool_dtype(s.dtype):
        return pd.Series(pd.NaT, index=s.index, dtype=unit), present
    t = _text(s)
    fast = _strict_cast(t, pyarrow.timestamp(DATETIME_UNIT, tz="UTC"))  # all with an offset
    if fast is None:
        fast = _strict_cast(t, pyarrow.timestamp(DATETIME_UNIT))  # all without: UTC
        fast = None if fast is None else fast.dt.tz_localize("UTC")
    if fast is not None:
        return fast.astype(unit), pd.Series(False, index=s.index)
    iso = t.str.fullmatch(_TIMESTAMP_RE).fillna(False).astype(bool)
    out = pd.to_datetime(t.where(iso), format="ISO8601", utc=True, errors="coerce").astype(unit)
    return out, t.notna() & out.isna()


_PARSERS: dict[str, Callable[[pd.Series], tuple[pd.Series, pd.Series | None]]] = {
    "string": _as_string,
    "number": _as_number,
    "boolean": _as_boolean,
    "date": _as_date,
    "timestamp": _as_timestamp,
}

_EMPTY_DTYPES = {
    "string": "str",
    "number": "float64",
    "boolean": "boolean",
    "date": f"datetime64[{DATETIME_UNIT}]",
    "timestamp": f"datetime64[{DATETIME_UNIT}, UTC]",
}


def _finish(spec: Table, typed: pd.DataFrame, raw: pd.DataFrame) -> pd.DataFrame:
    """Every contract column in spec order (absent optional ones all missing), reps' attributes
    after them, booleans as bool when complete, index 0..n-1."""
    out = {}
    for col in spec.columns:
        if col.name in typed.columns:
            s = typed[col.name]
            if col.kind == "boolean" and not bool(s.isna().any()):
                s = s.astype(bool)
            out[col.name] = s
        else:
            out[col.name] = pd.Series(
                pd.NA if col.kind == "boolean" else np.nan, index=typed.index, dtype=_EMPTY_DTYPES[col.kind]
            )
    if spec.open_columns:
        for c in raw.columns:
            if c not in out:
                out[c] = raw[c]
    return pd.DataFrame(out, index=typed.index).reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# pandera schemas built from the contract


def _non_blank(s: pd.Series) -> pd.Series:
    try:  # two Arrow kernels that allocate no new strings, unlike strip()
        arr = pyarrow.array(s.array)
        blank = pc.or_(pc.utf8_is_space(arr), pc.equal(pc.utf8_length(arr), 0))
        return pd.Series(pc.invert(blank).fill_null(True).to_numpy(zero_copy_only=False), index=s.index)
    except (pyarrow.ArrowException, TypeError, ValueError):
        return s.str.strip().str.len() > 0


_DUCKDB_MIN_ROWS = 200_000  # below this, starting DuckDB costs more than it saves


def _all_distinct(s: pd.Series, *, use_duckdb: bool | None = None) -> pd.Series:
    """False on every row whose value occurs more than once (missing cells pass).

    On large tables DuckDB groups the ids on all cores, several times faster than pandas' hash
    table; only the (usually few) repeated values come back, then mark their rows.
    """
    if not (len(s) >= _DUCKDB_MIN_ROWS if use_duckdb is None else use_duckdb):
        return ~(s.duplicated(keep=False) & s.notna())

    import duckdb

    values = pyarrow.Table.from_pandas(pd.DataFrame({"v": s.array}), preserve_index=False)
    with duckdb.connect() as con:
        con.register("ids", values)
        repeated = con.execute("select v from ids where v is not null group by v having count(*) > 1").df()[
            "v"
        ]
    if repeated.empty:
        return pd.Series(True, index=s.index)
    return ~s.isin(repeated.astype(s.dtype))


def _column_checks(col: Column) -> list[pa.Check]:
    checks = []
    if col.non_empty:
        checks.append(pa.Check(_non_blank, name=RULE_NON_EMPTY))
    if col.unique:
        checks.append(pa.Check(_all_distinct, name=RULE_UNIQUE))
    if col.ge is not None:
        checks.append(pa.Check(lambda s, v=col.ge: s >= v, name=f"{col.name} >= {col.ge:g}"))
    if col.gt is not None:
        checks.append(pa.Check(lambda s, v=col.gt: s > v, name=f"{col.name} > {col.gt:g}"))
    if col.one_of is not None:
        checks.append(pa.Check(lambda s, v=col.one_of: s.isin(v), name=RULE_CATALOG))
    return checks


def _column_schema(spec: Table) -> pa.DataFrameSchema:
    """The table's column rules; dtypes are not checked here because `_coerce` produced them."""
    columns = {
        c.name: pa.Column(name=c.name, required=c.required, nullable=c.nullable, checks=_column_checks(c))
        for c in spec.columns
    }
    return pa.DataFrameSchema(columns, name=spec.name, strict=False, coerce=False)


def _rule_schemas(rule: NotBefore | Implies | RangeBy) -> Iterable[tuple[str, pa.DataFrameSchema]]:
    """One dataframe-level check per rule (per metric for ranges); missing cells never fail."""
    if isinstance(rule, NotBefore):

        def fn(df, a=rule.column, b=rule.other):
            return ~(df[a] < df[b])  # NaT compares False: missing dates pass

        yield rule.name, pa.DataFrameSchema(checks=[pa.Check(fn, name=rule.name, ignore_na=False)])
    elif isinstance(rule, Implies):

        def fn(df, a=rule.column, b=rule.then):
            return ~((df[a] == True) & (df[b] == False)).fillna(False)  # noqa: E712 - nullable booleans

        yield rule.name, pa.DataFrameSchema(checks=[pa.Check(fn, name=rule.name, ignore_na=False)])
    elif isinstance(rule, RangeBy):
        for key, (lo, hi) in rule.ranges.items():
            name = rule_range(key, lo, hi)

            def fn(df, by=rule.by, col=rule.column, key=key, lo=lo, hi=hi):
                v = df[col]
                out_of_range = (v < lo) if lo is not None else pd.Series(False, index=df.index)
                if hi is not None:
                    out_of_range = out_of_range | (v > hi)
                return ~((df[by] == key).fillna(False) & out_of_range)

            yield name, pa.DataFrameSchema(checks=[pa.Check(fn, name=name, ignore_na=False)])


def _run_schema(schema: pa.DataFrameSchema, frame: pd.DataFrame) -> pd.DataFrame | None:
    """pandera's failure cases (lazy: all of them), or None when the frame passes."""
    try:
        schema.validate(frame, lazy=True, inplace=True)
    except SchemaErrors as err:
        return err.failure_cases
    except SchemaError as err:  # pragma: no cover - lazy mode collects, but be safe
        return pd.DataFrame(
            {
                "column": [getattr(err, "column_name", None)],
                "check": [str(err.check)],
                "failure_case": [str(err)],
                "index": [None],
            }
        )
    return None


def _column_failures(spec: Table, fc: pd.DataFrame, checked: CheckedTable) -> list[Failure]:
    name = spec.name
    failures = []
    missing = fc[fc["check"] == "column_in_dataframe"]
    for col in spec.columns:
        if col.name in set(missing["failure_case"].astype(str)):
            failures.append(
                Failure(name, col.name, RULE_COLUMN, 0, [], _missing_column_detail(col.name, checked.raw))
            )
    rows = fc[fc["check"] != "column_in_dataframe"]
    order = {c.name: i for i, c in enumerate(spec.columns)}
    for (column, check), cases in sorted(
        rows.groupby(["column", "check"], sort=False), key=lambda kv: order.get(kv[0][0], 99)
    ):
        if check == "not_nullable":
            rule = RULE_NOT_NULL
            bad = checked.unparsed.get(column)
            if bad is not None:  # cells that did not parse are reported as type failures only
                idx = pd.Index(cases["index"].dropna().astype("int64"))
                keep = ~bad.reindex(idx, fill_value=False).to_numpy()
                cases = cases[cases["index"].isin(idx[keep])]
                if cases.empty:
                    continue
        else:
            rule = str(check)
        f = _failure_from_cases(name, column, rule, cases, checked, [column])
        if rule == RULE_CATALOG:
            allowed = spec.column(column).one_of or ()
            f = Failure(
                f.table,
                f.column,
                f.rule,
                f.n_rows,
                f.examples,
                f"allowed: {', '.join(allowed)} (see interventions.md)",
            )
        failures.append(f)
    return failures


def _missing_column_detail(column: str, raw: pd.DataFrame) -> str:
    near = [c for c in raw.columns if c.strip().lower().replace(" ", "_").replace("-", "_") == column]
    if near:
        return f"column missing; found {near[0]!r}: column names are exact and lower-case"
    sep = header_delimiter(raw.columns)
    if sep is not None:
        return f"column missing; the header is separated by {DELIMITER_NAMES[sep]}: save the file with commas"
    have = ", ".join(list(raw.columns)[:15]) or "none"
    return f"column missing (the file has: {have})"


def _failure_from_cases(
    table: str, column: str, rule: str, cases: pd.DataFrame, checked: CheckedTable, show: list[str]
) -> Failure:
    idx = cases["index"].dropna()
    if idx.empty:  # the check itself failed to run: pandera puts the error in failure_case
        detail = "; ".join(sorted({str(v) for v in cases["failure_case"]}))[:300]
        return Failure(table, column, RULE_CHECKED, 0, [], f"rule '{rule}' could not be checked: {detail}")
    labels = np.unique(idx.astype("int64").to_numpy())
    return _row_failure(table, column, rule, labels, checked, show)


def _row_failure(
    table: str,
    column: str | None,
    rule: str,
    rows: pd.Series | np.ndarray,
    checked: CheckedTable,
    show: list[str],
    detail: str = "",
) -> Failure:
    """A failure for the rows in `rows` (a boolean mask over raw's index, or index labels)."""
    if isinstance(rows, pd.Series):
        labels = rows.index[rows.to_numpy(dtype=bool)].to_numpy()
    else:
        labels = np.sort(np.asarray(rows))
    first = labels[:MAX_EXAMPLES]
    return Failure(
        table,
        column,
        rule,
        int(len(labels)),
        _examples(checked, first, show),
        detail,
        records=tuple(int(i) for i in first),
    )


def _examples(checked: CheckedTable, labels: Iterable, show: list[str]) -> list[dict]:
    raw = checked.raw
    labels = [int(i) for i in labels]
    cols = [c for c in show if c in raw.columns]
    out = []
    for label, number in zip(labels, checked.rows(labels), strict=True):
        row = {"row": number}
        for c in cols:
            row[c] = _py(raw.at[label, c])
        out.append(row)
    return out


# --------------------------------------------------------------------------------------------
# Rules across rows and tables


def cross_table_failures(spec: Table, checked: dict[str, CheckedTable]) -> list[Failure]:
    """The rules of `spec` that look at other tables (references such as `exists in reps.rep_id`)."""
    failures = []
    mine = checked[spec.name]
    for col in spec.columns:
        if col.references is None or col.name not in mine.typed.columns:
            continue
        target, target_col = col.references
        other = checked.get(target)
        if other is None or target_col not in other.typed.columns:
            continue  # the missing table or column is reported already
        values = mine.typed[col.name]
        known = other.typed[target_col].dropna().unique()
        dangling = values.notna() & ~values.isin(known)
        if bool(dangling.any()):
            unknown = values[dangling].unique()
            # as the examples are: quoted when they hold a line break or the like (the message reaches logs)
            shown = ", ".join(_format_value(v) for v in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
            failures.append(
                _row_failure(
                    spec.name,
                    col.name,
                    rule_references(target, target_col),
                    dangling,
                    mine,
                    [col.name],
                    f"{len(unknown)} unknown value(s): {shown}",
                )
            )
    return failures


def _overlap_failure(spec: Table, rule: NoOverlap, checked: CheckedTable) -> Failure | None:
    """Rows whose [start, end] meets an earlier-starting row of the same key (ends inclusive)."""
    d = checked.typed[[rule.key, rule.start, rule.end]]
    d = d[d.notna().all(axis=1) & (d[rule.end] >= d[rule.start])]
    if len(d) < 2:
        return None
    d = d.sort_values([rule.key, rule.start, rule.end], kind="stable")
    g = d.groupby(rule.key, sort=False)
    run_max = g[rule.end].cummax()
    # The row holding the running max end: the latest row that set it.
    holder = pd.Series(
        np.where(d[rule.end].to_numpy() == run_max.to_numpy(), d.index.to_numpy(), -1), index=d.index
    ).replace(-1, np.nan)
    holder = holder.groupby(d[rule.key], sort=False).ffill()
    prev_max = run_max.groupby(d[rule.key], sort=False).shift(1)
    prev_holder = holder.groupby(d[rule.key], sort=False).shift(1)
    hit = (d[rule.start] <= prev_max).fillna(False).to_numpy(dtype=bool)
    if not hit.any():
        return None
    rows = d.index.to_numpy()[hit]
    others = prev_holder.to_numpy()[hit]
    order = np.argsort(rows, kind="stable")
    rows, others = rows[order], others[order]
    first = [int(i) for i in rows[:MAX_EXAMPLES]]
    examples = _examples(checked, first, [rule.key, rule.start, rule.end])
    for ex, other in zip(examples, others[:MAX_EXAMPLES], strict=True):
        ex["overlaps"] = _examples(checked, [int(other)], [rule.start, rule.end])[0]
    return Failure(
        spec.name,
        rule.start,
        rule.name,
        int(len(rows)),
        examples,
        records=tuple(first),
        overlap_records=tuple(int(o) for o in others[:MAX_EXAMPLES]),
    )


# --------------------------------------------------------------------------------------------
# Formatting


def _py(v: Any) -> Any:
    """A cell as a plain Python value (None when missing)."""
    try:
        if v is None or (not isinstance(v, str | bytes) and bool(pd.isna(v))):
            return None
    except (TypeError, ValueError):
        pass
    if isinstance(v, np.generic):
        return v.item()
    return v


def _format_value(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "<empty>"
    if isinstance(v, pd.Timestamp):
        if v.tz is None and v == v.normalize():
            return v.date().isoformat()
        return v.isoformat()
    if isinstance(v, str):
        if len(v) > 40:
            v = v[:37] + "..."
        # quoted (escaped) when not plainly readable: a line break in a value must not forge a line of the
        # report or of the service's log, nor a bidirectional override reorder it
        if v == "" or v != v.strip() or any(ch in v for ch in " ,()=") or not v.isprintable():
            return repr(v)
        return v
    return str(v)


def _format_example(e: dict) -> str:
    values = ", ".join(f"{k}={_format_value(v)}" for k, v in e.items() if k not in ("row", "overlaps"))
    text = f"row {e['row']}" + (f" ({values})" if values else "")
    if "overlaps" in e:
        text += " overlaps " + _format_example(e["overlaps"])
    return text
