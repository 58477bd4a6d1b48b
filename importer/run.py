"""Run a mapping over a folder of exports: build the contract tables, write them atomically, validate.

Nothing is written unless every table maps cleanly and the result passes contract validation:
the tables go to a temporary folder beside `--out`, which is renamed into place at the end.
Every problem is reported in the source's terms (file, column, spreadsheet row).
"""

from __future__ import annotations

import codecs
import dataclasses
import datetime as dt
import difflib
import hashlib
import json
import os
import re
import shutil
import tempfile
import unicodedata
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from features.contract import TABLES
from features.io import (
    DELIMITER_NAMES,
    PROVENANCE_FILE,
    UTF8_BOM,
    blank_file,
    csv_record_lines,
    decategorize,
    decode_problem,
    excel_sep_line,
    header_delimiter,
    spreadsheet_row,
)
from importer.mapping import (
    ColumnSpec,
    Loc,
    Lookup,
    Mapping,
    QuotaPolicy,
    SourceMap,
    TableMap,
    Where,
    load_mapping,
)
from importer.quotas import derive_quotas
from importer.transforms import (
    CellErrors,
    derive_ids,
    end_of_period,
    fill_empty,
    is_empty,
    lookup,
    lookup_rows_used,
    map_values,
    other_convention,
    parse_kind,
    split_used,
    where_mask,
)
from repradar.errors import UserError

MAX_ROWS_SHOWN = 5


# ---------------------------------------------------------------- problems in the source's terms


@dataclass
class SourceProblem:
    """One problem, said in the source's terms: which file, column and rows, and what to do.

    `purpose` says which contract column needed the cell (e.g. "for is_closed"); one bad cell
    used by several contract columns is one problem listing them all (`merge_problems`).
    """

    message: str
    file: str | None = None
    column: str | None = None
    rows: list[int] = field(default_factory=list)
    values: list = field(default_factory=list)
    mapping: Loc | None = None
    purpose: str = ""
    merged: list[tuple[str, Loc | None]] = field(default_factory=list)

    def key(self) -> tuple:
        return (self.file, self.column, tuple(self.rows), tuple(_show(v) for v in self.values), self.message)

    def __str__(self) -> str:
        head = []
        if self.file:
            head.append(self.file)
        if self.column:
            head.append(f"column {self.column}")
        if self.rows:
            shown = ", ".join(str(r) for r in self.rows[:MAX_ROWS_SHOWN])
            more = f" and {len(self.rows) - MAX_ROWS_SHOWN} more" if len(self.rows) > MAX_ROWS_SHOWN else ""
            head.append(f"row{'s' if len(self.rows) > 1 else ''} {shown}{more}")
        text = ", ".join(head)
        if self.values:
            counts = Counter(_show(v) for v in self.values)
            parts = [f"{v} ({n} rows)" if n > 1 else v for v, n in list(counts.items())[:MAX_ROWS_SHOWN]]
            if len(counts) > MAX_ROWS_SHOWN:
                parts.append(f"{len(counts) - MAX_ROWS_SHOWN} more values")
            text += (": " if text else "") + "value " + ", ".join(parts) + " " + self.message
        else:
            text += (": " if text else "") + self.message
        uses = [(self.purpose, self.mapping), *self.merged]
        purposes = list(dict.fromkeys(p for p, _ in uses if p))
        if purposes:
            text += f" ({'; '.join(purposes)})"
        locs = list(dict.fromkeys(str(loc) for _, loc in uses if loc is not None))
        if locs:
            text += f" [mapping: {'; '.join(locs)}]"
        return text


def merge_problems(problems: list[SourceProblem]) -> list[SourceProblem]:
    """One problem per bad cell set: a date read for two contract columns is reported once."""
    out: dict[tuple, SourceProblem] = {}
    for p in problems:
        first = out.setdefault(p.key(), p)
        if first is not p:
            first.merged.append((p.purpose, p.mapping))
    return list(out.values())


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _show(v) -> str:
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    return repr(v if not isinstance(v, float) or not v.is_integer() else int(v))


class ImportFailed(UserError):
    """The export could not be imported; nothing was written. Lists every problem found."""

    def __init__(self, problems: list, headline: str, footer: str = ""):
        self.problems = list(problems)
        lines = [f"{headline} ({len(self.problems)} problem(s)); nothing was written:"]
        lines += [f"  - {p}" for p in self.problems]
        if footer:
            lines.append(footer)
        super().__init__("\n".join(lines))


# ---------------------------------------------------------------- reading sources


class Sources:
    """The export folder: reads each source file once, as text cells, and digests it for provenance."""

    def __init__(self, folder: Path, mapping: Mapping):
        self.folder = Path(folder)
        self.mapping = mapping
        self._frames: dict[str, pd.DataFrame] = {}
        self._lines: dict[str, list[int]] = {}  # per file, the row number of each frame row
        self._aliases: dict[str, dict[str, str]] = {}  # per file: mapped column -> the file's column
        self.used: list[str] = []
        self.notes: list[str] = []  # how files were read (byte-order mark, `sep=` line)

    def path(self, name: str) -> Path:
        return self.folder / name

    def exists(self, name: str) -> bool:
        return self.path(name).is_file()

    def missing_problem(self, name: str, loc: Loc, what: str) -> SourceProblem:
        present = sorted(p.name for p in self.folder.iterdir() if p.is_file())
        hint = difflib.get_close_matches(name, present, n=1)
        tip = f"; did you mean {hint[0]}?" if hint else f"; files there: {', '.join(present) or 'none'}"
        return SourceProblem(f"{what} {name} is not in {self.folder}{tip}", mapping=loc)

    def is_empty(self, name: str) -> bool:
        """A file with nothing in it (0 bytes, or only a byte-order mark and white space)."""
        return blank_file(self.path(name))

    def alias(self, name: str, column: str, actual: str) -> None:
        """Read `column` from the file's `actual` column (same name but for case), noted once per file."""
        frame = self._frames[name]
        if column not in frame.columns:
            frame[column] = frame[actual]
            self._aliases.setdefault(name, {})[column] = actual

    def alias_notes(self) -> list[str]:
        return [
            f"{name}: column names matched ignoring case: "
            + ", ".join(f"{want} <- {have}" for want, have in pairs.items())
            for name, pairs in self._aliases.items()
        ]

    def _fail(self, name: str, message: str) -> ImportFailed:
        return ImportFailed([SourceProblem(message, file=name)], "the export could not be read")

    def _read_csv(self, name: str) -> tuple[pd.DataFrame, list[int]]:
        p = self.path(name)
        delimiter, encoding = self.mapping.csv.delimiter, self.mapping.csv.encoding
        with open(p, "rb") as fh:
            head = fh.read(64 * 1024)
        if not head.removeprefix(UTF8_BOM).strip():
            raise self._fail(name, "the file is empty; it needs at least a header line with the column names")
        offset = 0
        if head.startswith(UTF8_BOM) and codecs.lookup(encoding).name not in ("utf-8", "utf-8-sig"):
            # A UTF-8 byte-order mark: the file is UTF-8 whatever csv.encoding says, if it decodes so.
            try:
                codecs.getincrementaldecoder("utf-8")().decode(head[3:], final=False)
                self.notes.append(
                    f"{name} starts with a UTF-8 byte-order mark: read as UTF-8, not {encoding}"
                )
                encoding = "utf-8-sig"
            except UnicodeDecodeError:
                offset = len(UTF8_BOM)  # not UTF-8 after all: drop the mark, keep the encoding
        sep = excel_sep_line(p)
        if sep is not None:
            honoured = "" if sep == delimiter else f"; its cells are split on {sep!r}, as that line says"
            self.notes.append(f"{name}: line 1 is Excel's `sep={sep}` line; skipped{honoured}")
            delimiter = sep
        try:
            with open(p, "rb") as fh:
                fh.seek(offset)
                df = pd.read_csv(
                    fh,
                    dtype=str,
                    keep_default_na=False,
                    na_values=[""],
                    sep=delimiter,
                    encoding=encoding,
                    skip_blank_lines=False,  # blank lines count, so rows keep the file's numbering
                    skiprows=1 if sep is not None else None,
                )
        except UnicodeDecodeError:
            where = decode_problem(p, encoding, delimiter) or "a byte"
            utf8 = codecs.lookup(encoding).name in ("utf-8", "utf-8-sig")
            shown, other = ("UTF-8", "cp1252") if utf8 else (encoding, "utf-8")
            raise self._fail(
                name,
                f"is not {shown} text ({where}); set `csv: {{encoding: {other}}}` in the mapping "
                "(or the file's real encoding), or save the file as UTF-8",
            ) from None
        except pd.errors.EmptyDataError:
            raise self._fail(
                name, "the file is empty; it needs at least a header line with the column names"
            ) from None
        except (pd.errors.ParserError, ValueError, OSError) as exc:
            raise self._fail(
                name, f"cannot be read: {_short(exc)}; check csv.delimiter / csv.encoding"
            ) from None
        lines = csv_record_lines(p, len(df), delimiter=delimiter, encoding=encoding).tolist()
        blank = df.isna().all(axis=1).to_numpy()
        if blank.any():
            lines = [n for n, b in zip(lines, blank, strict=True) if not b]
            df = df[~blank]
        return df, lines

    def read(self, name: str) -> pd.DataFrame:
        if name not in self._frames:
            p = self.path(name)
            if p.suffix == ".parquet":
                try:
                    df = decategorize(pd.read_parquet(p)).astype(object)
                except (ValueError, OSError) as exc:
                    raise self._fail(name, f"is not a readable Parquet file ({_short(exc)})") from None
                lines = [spreadsheet_row(i) for i in range(len(df))]
            else:
                df, lines = self._read_csv(name)
            df = df.reset_index(drop=True)
            self._frames[name] = df
            self._lines[name] = lines
            if name not in self.used:
                self.used.append(name)
        return self._frames[name]

    def rows(self, name: str, labels) -> list[int]:
        """The row numbers of `read(name)`'s rows at index `labels`, as a person finds them in the file:
        for CSV the line number (header = line 1; a record spanning lines by its first line), for
        Parquet the record's position + 1 (the first record is row 2, as in a spreadsheet)."""
        lines = self._lines[name]
        return [int(lines[int(i)]) for i in labels]

    def digests(self) -> dict[str, dict]:
        out = {}
        for name in self.used:
            p = self.path(name)
            h = hashlib.sha256()
            with open(p, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            out[name] = {"sha256": h.hexdigest(), "bytes": p.stat().st_size, "rows": len(self._frames[name])}
        return out


# ---------------------------------------------------------------- building one table


CURRENCY_COLUMNS = {"currency", "currencyisocode", "currencycode", "dealcurrencycode", "amountcurrency"}


def _currency_notes(file: str, frame: pd.DataFrame, table: str) -> list[str]:
    """A note for each currency column of the file holding more than one currency: amounts are
    imported as they are, so deals (or quotas) in different currencies are added up as one."""
    notes = []
    for col in frame.columns:
        if _word(str(col)) not in CURRENCY_COLUMNS:
            continue
        codes = frame[col][~is_empty(frame[col])].map(lambda v: str(v).strip().upper())
        counts = codes.value_counts().sort_index()
        if len(counts) > 1:
            each = ", ".join(f"{c}: {n} row{'s' if n != 1 else ''}" for c, n in counts.items())
            notes.append(
                f"{table}: {file} column {col} holds {len(counts)} currencies ({each}); amounts are "
                "imported as they are, not converted, so they are added up as if in one currency: "
                "convert them in the export, or keep one currency with `where`"
            )
    return notes


def _currency_sign_notes(file: str, cells: pd.Series, table: str, target: str) -> list[str]:
    """A note when `currency: strip` removed more than one currency (sign or code) from a column."""
    marks = cells[~is_empty(cells)].map(lambda v: _currency_mark(str(v)))
    counts = marks[marks.notna()].value_counts().sort_index()
    if len(counts) < 2:
        return []
    each = ", ".join(f"{c}: {n} row{'s' if n != 1 else ''}" for c, n in counts.items())
    return [
        f"{table}.{target}: {file} column {cells.name} is written in {len(counts)} currencies ({each}); "
        "`currency: strip` drops the signs and does not convert, so they are added up as if in one currency"
    ]


def _currency_mark(text: str) -> str | None:
    """The currency sign or three-letter code of a formatted amount (`$`, `EUR`), if any."""
    signs = "".join(ch for ch in text if unicodedata.category(ch) == "Sc")
    if signs:
        return signs
    code = re.search(r"(?:^|[\s\d])([A-Z]{3})(?:$|[\s\d])", text.strip())
    return code.group(1) if code else None


def _word(name: str) -> str:
    """A column name without case, spaces or punctuation: `Close Value` and `close_value` agree."""
    return re.sub(r"[\W_]+", "", name).casefold()


def _loose(name: str) -> str:
    """A column name compared loosely: case and outer spaces ignored."""
    return name.strip().casefold()


def delimiter_problem(file: str, sep: str, delimiter: str) -> SourceProblem:
    yaml_sep = "\\t" if sep == "\t" else sep  # as written inside YAML double quotes
    return SourceProblem(
        f"the header is one column separated by {DELIMITER_NAMES[sep]}, but the mapping reads CSV files "
        f"split on {DELIMITER_NAMES.get(delimiter, repr(delimiter))}: set the delimiter in the mapping with "
        f'`csv: {{delimiter: "{yaml_sep}"}}` (in a copy of a shipped mapping; it applies to every CSV '
        f"file of the export), or save {file} with {DELIMITER_NAMES.get(delimiter, repr(delimiter))}",
        file=file,
    )


@dataclass
class Built:
    """One contract table, typed, with the source row behind each of its rows."""

    frame: pd.DataFrame
    origin: pd.DataFrame  # columns: file, row (as numbered in that file: `Sources.rows`), aligned with frame
    columns_from: dict[str, dict[str, str]]  # source file -> contract column -> source column
    fills: list[str] = field(default_factory=list)


class _Builder:
    def __init__(self, mapping: Mapping, sources: Sources):
        self.mapping = mapping
        self.sources = sources
        self.problems: list[SourceProblem] = []
        self.table = ""
        self.delimiter_flagged: set[str] = set()
        self.skipped: list[str] = []  # optional source files present but empty
        self.warnings: list[str] = []  # printed and kept in _import.json; the import goes on

    # -- structure checks: files and columns exist before any cell is read

    def check_source(self, smap: SourceMap) -> bool:
        ok = True
        frame = self.sources.read(smap.file)

        def need(file: str, frame: pd.DataFrame, column: str, loc: Loc, what: str):
            nonlocal ok
            if column not in frame.columns:
                alike = [str(c) for c in frame.columns if _loose(str(c)) == _loose(column)]
                if len(alike) == 1:  # `ID` for `Id`: take it, and say so in the notes
                    self.sources.alias(file, column, alike[0])
                    return
                ok = False
                if alike:
                    shown = ", ".join(repr(c) for c in alike)
                    self.problems.append(
                        SourceProblem(
                            f"does not exist; the file has {shown}, which differ from it only in case: "
                            "name one of them exactly in the mapping",
                            file=file,
                            column=column,
                            mapping=loc,
                            purpose=what,
                        )
                    )
                    return
                sep = header_delimiter(frame.columns, self.mapping.csv.delimiter)
                if sep is not None:  # one problem per file, not one per column the mapping reads from it
                    if file not in self.delimiter_flagged:
                        self.delimiter_flagged.add(file)
                        self.problems.append(delimiter_problem(file, sep, self.mapping.csv.delimiter))
                    return
                cols = [str(c) for c in frame.columns]
                # A report's label for the API name (`Close Value` for `close_value`) first.
                word = _word(column)
                hint = [c for c in cols if _word(c) == word][:1] or difflib.get_close_matches(
                    column, cols, n=1
                )
                tip = f"did you mean '{hint[0]}'? " if hint else ""
                self.problems.append(
                    SourceProblem(
                        f"does not exist; {tip}the file's columns are: {', '.join(cols)}",
                        file=file,
                        column=column,
                        mapping=loc,
                        purpose=what,
                    )
                )

        def need_file(file: str, loc: Loc, what: str) -> pd.DataFrame | None:
            nonlocal ok
            if not self.sources.exists(file):
                ok = False
                self.problems.append(self.sources.missing_problem(file, loc, what))
                return None
            return self.sources.read(file)

        def spec_checks(spec: ColumnSpec | None):
            if spec is None:
                return
            if spec.source is not None:
                need(smap.file, frame, spec.source, spec.loc, f"mapped to {spec.target}")
            if spec.lookup is not None:
                lk = spec.lookup
                if lk.match is not None:
                    need(smap.file, frame, lk.match, lk.loc, f"look-up key for {spec.target}")
                lframe = need_file(lk.file, lk.loc, "look-up file")
                if lframe is not None:
                    need(lk.file, lframe, lk.column, lk.loc, f"looked up for {spec.target}")
                    if lk.key is not None:
                        need(lk.file, lframe, lk.key, lk.loc, f"look-up key for {spec.target}")
            for w in spec.missing_when:
                condition_checks(w, "missing_when", f" of {spec.target}")
            spec_checks(spec.default)

        def condition_checks(w: Where, key: str, of: str = ""):
            need(smap.file, frame, w.column, w.loc, f"used in `{key}`{of}")
            if w.in_file:
                wframe = need_file(w.in_file[0], w.loc, f"`{key}` file{of}")
                if wframe is not None:
                    need(w.in_file[0], wframe, w.in_file[1], w.loc, f"used in `{key}.in_file`{of}")

        for spec in (*smap.columns.values(), *smap.attributes.values()):
            spec_checks(spec)
        for w in smap.where:
            condition_checks(w, "where")
        return ok

    # -- evaluation

    def cell_problems(
        self, errs: list[CellErrors], file: str, column: str | None, spec: ColumnSpec, what: str
    ):
        for e in errs:
            f, c = file, column
            if e.in_lookup and spec.lookup is not None:
                f, c = spec.lookup.file, spec.lookup.key
            self.problems.append(
                SourceProblem(
                    e.message,
                    file=f,
                    column=c,
                    rows=self.sources.rows(f, e.index),
                    values=list(e.values),
                    mapping=spec.loc,
                    purpose=what,
                )
            )

    def lookup_problems(self, errs: list[CellErrors], lk: Lookup, purpose: str) -> None:
        """Cells of a look-up file's column, reported with that file's column and rows."""
        for e in errs:
            self.problems.append(
                SourceProblem(
                    e.message,
                    file=lk.file,
                    column=lk.column,
                    rows=self.sources.rows(lk.file, e.index),
                    values=list(e.values),
                    mapping=lk.loc,
                    purpose=purpose,
                )
            )

    def lookup_warning(
        self, e: CellErrors, lk: Lookup, file: str, purpose: str, column: str | None = None
    ) -> None:
        """Cells of a look-up file that break a rule but that no row of `file` looks up: said, not refused.

        `column` names the look-up file's column the cells are in (default: the one taken).
        """
        cells = SourceProblem(
            e.message,
            file=lk.file,
            column=column or lk.column,
            rows=self.sources.rows(lk.file, e.index),
            values=list(e.values),
            mapping=lk.loc,
            purpose=f"{purpose}; no row of {file} matches these rows' {lk.key}, so they were not "
            "imported, and the import went on",
        )
        text = f"{len(e.index)} unused row(s) of a look-up file: {cells}"
        if text not in self.warnings:  # one look-up can serve several columns and sources
            self.warnings.append(text)

    def conditions_mask(self, conditions: tuple[Where, ...], frame: pd.DataFrame) -> pd.Series:
        """Rows of `frame` that meet every condition (of a `where` or a `missing_when`)."""
        mask = pd.Series(True, index=frame.index)
        for w in conditions:
            in_values = None
            if w.in_file:
                in_values = list(self.sources.read(w.in_file[0])[w.in_file[1]])
            mask &= where_mask(frame, w.column, isin=w.isin, not_in=w.not_in, in_values=in_values)
        return mask

    def evaluate(self, spec: ColumnSpec, frame: pd.DataFrame, file: str, fills: list[str]) -> pd.Series:
        """The typed values of one contract column for the rows of `frame` (index kept)."""
        if spec.missing_when:
            # Rows counted as missing are not read at all: what the export writes there (a lost
            # deal's 0, a placeholder) is no value, so it can neither refuse the import nor count.
            gone = self.conditions_mask(spec.missing_when, frame)
            typed = self.take(spec, frame[~gone], file).reindex(frame.index)
            if typed.dtype == object:
                typed = typed.where(typed.notna(), None)
            if gone.any():
                met = " and ".join(w.describe() for w in spec.missing_when)
                fills.append(
                    f"{self.table}.{spec.target}: {int(gone.sum())} of {len(frame)} rows of {file} have "
                    f"{met}, so their {spec.describe()} counts as no value (missing_when)"
                )
        else:
            typed = self.take(spec, frame, file)
        if spec.default is not None:
            empty = typed.isna()
            if empty.any():
                fallback = self.evaluate(spec.default, frame[empty], file, fills)
                typed, n = fill_empty(typed, fallback)
                if n:
                    fills.append(
                        f"{self.table}.{spec.target}: {n} of {len(frame)} rows of {file} had no value from "
                        f"{spec.describe()} and took the default: {spec.default.describe()}"
                    )
        return typed

    def take(self, spec: ColumnSpec, frame: pd.DataFrame, file: str) -> pd.Series:
        """One spec's own typed values for the rows of `frame`, before `missing_when` and `default`."""
        what = f"for {spec.target}"
        column = spec.source
        checked = False  # the thousands-separator check already ran on a look-up column
        if spec.source is not None:
            raw = frame[spec.source]
        elif spec.has_value:
            raw = pd.Series([spec.value] * len(frame), index=frame.index, dtype=object)
        else:
            lk = spec.lookup
            assert lk is not None
            table = self.sources.read(lk.file)
            # the look-up file's messages name the contract table too: the file alone does not say it
            looked_for = f"for {self.table}.{spec.target}"
            typed_take = None
            # Only the look-up rows a key matched are imported, so only they can refuse the import;
            # a product no deal has must not stop it, and its bad cells are a warning.
            used = lookup_rows_used(
                frame[lk.match] if lk.match is not None else None, table, lk.key, normalize=lk.normalize
            )
            if lk.agg in ("min", "max", "sum", "mean"):
                # Aggregate typed values (dates by date, not by text) in the look-up file's own terms.
                typed_take, errs = parse_kind(
                    table[lk.column], spec.kind, lk.format or spec.format, spec.number
                )
                refused, unused = split_used(errs, used)
                self.lookup_problems(refused, lk, f"looked up {looked_for}")
                for e in unused:
                    self.lookup_warning(e, lk, file, f"looked up {looked_for}")
            if spec.kind == "number" and lk.agg != "count" and spec.values is None and spec.id is None:
                # `100.000` in the look-up file is as suspect as in the source, and once aggregated its
                # text is gone: the look-up column as a whole shows how it is written, said in its own
                # file's terms, and judged on the rows used as above.
                if typed_take is None:
                    typed_take = parse_kind(table[lk.column], "number", None, spec.number)[0]
                purpose = f"looked up {looked_for}"
                suspect = other_convention(table[lk.column], typed_take, spec.number, among=used)
                self.lookup_problems([suspect] if suspect else [], lk, purpose)
                unused = other_convention(table[lk.column], typed_take, spec.number, among=~used)
                if unused:
                    self.lookup_warning(unused, lk, file, purpose)
                checked = True
            if lk.agg in ("min", "max", "sum", "mean"):
                table = table.assign(**{lk.column: typed_take})
            keys = frame[lk.match] if lk.match is not None else None
            raw, errs = lookup(
                keys,
                table,
                lk.key,
                lk.column,
                normalize=lk.normalize,
                agg=lk.agg,
                missing=lk.missing,
                index=frame.index,
            )
            column = lk.match
            # A key with two values (no `agg`) names rows of the look-up file: judged on the rows used.
            refused, unused = split_used([e for e in errs if e.in_lookup], used)
            errs = refused + [e for e in errs if not e.in_lookup]
            self.cell_problems(errs, file, column, spec, f"look-up in {lk.file} {looked_for}")
            for e in unused:
                self.lookup_warning(e, lk, file, f"look-up in {lk.file} {looked_for}", column=lk.key)
        if spec.values is not None:
            raw, errs = map_values(raw, spec.values, spec.unmapped, spec.normalize)
            self.cell_problems(errs, file, column, spec, what)
        if spec.id is not None:
            raw, errs = derive_ids(raw, spec.id)
            self.cell_problems(errs, file, column, spec, f"making ids {what}")
        typed, errs = parse_kind(raw, spec.kind, spec.format, spec.number)
        self.cell_problems(errs, file, column, spec, what)
        if spec.kind == "number" and not spec.has_value and not checked:  # a constant is the author's own
            # `100.000` parses as 100.0 without complaint; a European export means 100000.
            suspect = other_convention(raw, typed, spec.number)
            if suspect is not None:
                self.cell_problems([suspect], file, column, spec, f"for {self.table}.{spec.target}")
        if spec.end_of_period is not None:
            typed = end_of_period(typed, spec.end_of_period)
        return typed

    def build_source(self, tmap: TableMap, smap: SourceMap) -> Built | None:
        self.table = tmap.name
        if not self.sources.exists(smap.file):
            if not smap.optional:
                self.problems.append(
                    self.sources.missing_problem(smap.file, smap.loc, f"source file of {tmap.name}")
                )
            return None
        if self.sources.is_empty(smap.file):
            if smap.optional:
                self.skipped.append(f"{smap.file} is empty (no header, no rows), read as absent")
            else:
                self.problems.append(
                    SourceProblem(
                        f"the file is empty; it needs at least a header line with the column names "
                        f"(source file of {tmap.name})",
                        file=smap.file,
                        mapping=smap.loc,
                    )
                )
            return None
        if not self.check_source(smap):
            return None
        frame = self.sources.read(smap.file)
        mask = self.conditions_mask(smap.where, frame)
        sub = frame[mask]
        fills: list[str] = []
        data = {}
        spec_table = TABLES[tmap.name]
        for cname in spec_table.column_names:
            if cname in smap.columns:
                data[cname] = self.evaluate(smap.columns[cname], sub, smap.file, fills)
        for aname, aspec in smap.attributes.items():
            data[aname] = self.evaluate(aspec, sub, smap.file, fills)
        out = pd.DataFrame(data, index=sub.index)
        origin = pd.DataFrame({"file": smap.file, "row": self.sources.rows(smap.file, sub.index)})
        columns_from = {
            smap.file: {
                c: (s.source or (s.lookup.match if s.lookup else None) or "")
                for c, s in {**smap.columns, **smap.attributes}.items()
            }
        }
        if int((~mask).sum()):
            fills.append(f"{smap.file}: {int((~mask).sum())} of {len(frame)} rows left out by `where`")
        if tmap.name in ("opportunities", "quotas", "opportunity_history"):
            fills += _currency_notes(smap.file, sub, tmap.name)
            for spec in smap.columns.values():
                if spec.number is not None and spec.number.currency == "strip" and spec.source in sub:
                    fills += _currency_sign_notes(smap.file, sub[spec.source], tmap.name, spec.target)
        return Built(out.reset_index(drop=True), origin, columns_from, fills)

    def build_table(self, tmap: TableMap) -> Built | None:
        parts = [b for s in tmap.sources if (b := self.build_source(tmap, s)) is not None]
        if not parts:
            return None
        frame = pd.concat([p.frame for p in parts], ignore_index=True)
        origin = pd.concat([p.origin for p in parts], ignore_index=True)
        cols: dict[str, dict[str, str]] = {}
        fills: list[str] = []
        for p in parts:
            cols.update(p.columns_from)
            fills += p.fills
        return Built(frame, origin, cols, fills)


# ---------------------------------------------------------------- the import


@dataclass
class ImportResult:
    """What an import wrote and why: the contract folder, its provenance and the validation report."""

    out: Path
    provenance: dict
    report: object | None

    def summary_lines(self) -> list[str]:
        lines = [f"{name}: {info['rows']} rows" for name, info in self.provenance["tables"].items()]
        lines += [f"note: {n}" for n in self.provenance["notes"]]
        return lines


def _empty_required(frames: dict[str, pd.DataFrame], mapping: Mapping) -> dict[str, str]:
    """Required tables that mapped to no rows, each with the message naming its files."""
    return {
        n: f"{n}: no rows to import from {', '.join(sorted({src.file for src in mapping.tables[n].sources}))} "
        "(the file has only a header, or its `where` keeps none)"
        for n, f in frames.items()
        if len(f) == 0 and not mapping.tables[n].optional
    }


def _leave_out_unknown_reps(
    frames: dict[str, pd.DataFrame], origins: dict[str, pd.DataFrame], mapping: Mapping, info: dict
) -> None:
    """Drop the rows of people who are not reps (managers, admins) where the mapping asks to
    (`only_known_reps`), noting whose and where in the source."""
    if "reps" not in frames:
        return
    known = set(frames["reps"]["rep_id"].dropna())
    for name, tmap in mapping.tables.items():
        if tmap.only_known_reps and name in frames:
            keep = frames[name]["rep_id"].isin(known)
            if (~keep).any():
                dropped = frames[name].loc[~keep, "rep_id"]
                counts = dropped.value_counts()
                who = ", ".join(
                    f"{o} ({n} row{'s' if n != 1 else ''})" for o, n in counts.head(MAX_ROWS_SHOWN).items()
                )
                more = f" and {len(counts) - MAX_ROWS_SHOWN} more" if len(counts) > MAX_ROWS_SHOWN else ""
                src = origins[name][(~keep).values].dropna()
                where = "; ".join(
                    f"{f} row{'s' if len(r) > 1 else ''} "
                    + ", ".join(str(int(x)) for x in r["row"].head(MAX_ROWS_SHOWN))
                    + (f" and {len(r) - MAX_ROWS_SHOWN} more" if len(r) > MAX_ROWS_SHOWN else "")
                    for f, r in src.groupby("file", sort=False)
                )
                info["notes"].append(
                    f"{name}: {int((~keep).sum())} row(s) of {dropped.nunique()} owner(s) who are not reps "
                    f"were left out (only_known_reps): {who}{more}"
                    + (f"; in the source: {where}" if where else "")
                )
                frames[name] = frames[name][keep].reset_index(drop=True)
                origins[name] = origins[name][keep.values].reset_index(drop=True)
                info["tables"][name]["rows"] = len(frames[name])


def _mapping_failed(
    source: Path,
    mapping: Mapping,
    problems: list[SourceProblem],
    frames: dict[str, pd.DataFrame],
    origins: dict[str, pd.DataFrame],
    clean: list[str],
    troubled: list[str],
) -> ImportFailed:
    """The mapping problems, plus the contract rules broken by the tables that did map, so one run
    shows both rather than the second kind only once the first is fixed.

    Only tables without any mapping problem are checked (a cell that did not map would be
    reported again as an empty one), and references only between such tables.
    """
    empty = _empty_required({n: frames[n] for n in clean}, mapping)
    checked = [n for n in clean if n not in empty]
    found: list = list(empty.values())
    if checked:
        mapped = {n: frames[n] for n in checked}
        kept = {n: origins[n] for n in checked}
        _leave_out_unknown_reps(mapped, kept, mapping, {"notes": [], "tables": {n: {} for n in checked}})
        found += _contract_problems(mapped, kept, mapping)
    footer = ""
    if checked:
        later = troubled + ([] if "quotas" in clean or "quotas" in troubled else ["the derived quotas"])
        footer = (
            f"The tables that mapped ({_and(checked)}) were checked against the contract too; "
            f"{_and(later)} will be once the problems above are fixed."
        )
    return ImportFailed(
        merge_problems(problems) + found, f"the export in {source} does not map onto the contract", footer
    )


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _contract_problems(
    frames: dict[str, pd.DataFrame], origins: dict[str, pd.DataFrame], mapping: Mapping
) -> list[str]:
    """The contract rules the given tables break, alone and in their references to one another,
    said in the source's terms; written to a scratch folder outside --out, which is removed."""
    from features.validation import ValidationReport, check_table, cross_table_failures

    with tempfile.TemporaryDirectory(prefix="repradar-import-check-") as scratch:
        folder = Path(scratch)
        write_folder(frames, folder, "csv")
        report = ValidationReport(folder=folder)
        failures: list = []
        checked = {}
        try:
            for name in TABLES:
                if name in frames:
                    result = check_table(TABLES[name], folder / f"{name}.csv", report, failures)
                    if result is not None:
                        checked[name] = result
            for name in checked:
                failures += cross_table_failures(TABLES[name], checked)
        except Exception as exc:  # the mapping problems must still reach the user, not a traceback
            return [f"the tables that mapped could not be checked against the contract ({_short(exc)})"]
    return [translate_failure(f, origins, mapping) for f in failures]


def build_tables(
    mapping: Mapping, source: Path, quota_policy: QuotaPolicy | None = None
) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame], dict, Sources]:
    """The contract tables an export maps to, typed, with each row's source row and the import notes.

    Raises ImportFailed with every problem, in the source's terms, when any cell does not map.
    """
    source = Path(source)
    if not source.is_dir():
        raise UserError(f"source folder {source} does not exist; give the folder holding the export files")
    sources = Sources(source, mapping)
    builder = _Builder(mapping, sources)
    frames: dict[str, pd.DataFrame] = {}
    origins: dict[str, pd.DataFrame] = {}
    info: dict = {"tables": {}, "notes": []}
    clean: list[str] = []  # tables that mapped without a problem
    troubled: list[str] = []
    for name, tmap in mapping.tables.items():
        if name == "quotas" and quota_policy is not None:
            info["notes"].append("the quota policy given on the command line replaces the mapped quotas")
            continue
        builder.skipped = []
        before = len(builder.problems)
        built = builder.build_table(tmap)
        if len(builder.problems) > before:
            troubled.append(name)
        elif built is not None:
            clean.append(name)
        if built is None:
            if tmap.optional and not builder.problems:
                why = "; ".join(builder.skipped) or (
                    f"no source file present ({', '.join(s.file for s in tmap.sources)})"
                )
                info["notes"].append(f"{name}: {why}; skipped")
            continue
        info["notes"] += [f"{name}: {n}" for n in builder.skipped]
        frames[name], origins[name] = built.frame, built.origin
        info["tables"][name] = {"rows": len(built.frame), "from": built.columns_from}
        info["notes"] += built.fills
    info["notes"] = sources.notes + sources.alias_notes() + info["notes"]
    info["warnings"] = builder.warnings
    if builder.problems:
        raise _mapping_failed(source, mapping, builder.problems, frames, origins, clean, troubled)
    # A required table left empty (a header-only file) would otherwise surface as another table's
    # broken references ("opportunities.rep_id: 8800 rows not in reps"), far from its cause.
    empty = _empty_required(frames, mapping)
    if empty:
        raise UserError(
            "; ".join(empty.values()) + "; the contract needs at least one row in each of these tables"
        )
    _leave_out_unknown_reps(frames, origins, mapping, info)

    policy = (
        quota_policy if quota_policy is not None else (None if "quotas" in frames else mapping.quota_policy)
    )
    if "quotas" not in frames:
        if policy is None:
            raise UserError(
                "the export has no quotas (no quotas table in the mapping, or its file is absent): choose a "
                "quota policy with --quota-policy (e.g. fixed,amount=100000,period=quarter) or "
                "`quota_policy:` in the mapping; see docs/import.md"
            )
        result = derive_quotas(frames["reps"], frames["opportunities"], policy)
        frames["quotas"] = result.quotas
        origins["quotas"] = pd.DataFrame(
            {"file": [None] * len(result.quotas), "row": [None] * len(result.quotas)}
        )
        info["tables"]["quotas"] = {"rows": len(result.quotas), "from": "derived by the quota policy"}
        info["notes"] += result.notes
        info["quota_policy"] = policy.to_dict()
        info["quotas"] = "derived"
    else:
        info["quota_policy"] = None
        info["quotas"] = "mapped"
    info["tables"] = {k: info["tables"][k] for k in TABLES if k in info["tables"]}
    return frames, origins, info, sources


def _for_csv(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """Text cells as the contract writes them: ISO dates and timestamps, true/false."""
    spec = TABLES[name]
    out = frame.copy()
    for col in out.columns:
        kind = spec.column(col).kind if col in spec.column_names else "string"
        s = out[col]
        if kind == "date":
            out[col] = s.dt.strftime("%Y-%m-%d")
        elif kind == "timestamp":
            out[col] = s.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        elif kind == "boolean":
            out[col] = s.map(lambda v: None if v is None or pd.isna(v) else ("true" if v else "false"))
    return out


def _for_parquet(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    spec = TABLES[name]
    out = frame.copy()
    for col in out.columns:
        kind = spec.column(col).kind if col in spec.column_names else "string"
        if kind == "boolean":
            out[col] = out[col].astype("boolean")
        elif kind == "string":
            out[col] = out[col].astype("string")
    return out


def write_folder(frames: dict[str, pd.DataFrame], folder: Path, fmt: str) -> None:
    """Write each table as `<table>.<fmt>` in the contract's text conventions."""
    from features.io import write_table

    folder.mkdir(parents=True, exist_ok=True)
    for name in TABLES:
        if name in frames:
            frame = _for_csv(frames[name], name) if fmt == "csv" else _for_parquet(frames[name], name)
            write_table(frame, folder / f"{name}.{fmt}")


def run_import(
    mapping: str | Path | Mapping,
    source: str | Path,
    out: str | Path,
    *,
    quota_policy: QuotaPolicy | None = None,
    fmt: str = "csv",
    force: bool = False,
) -> ImportResult:
    """Import the export in `source` with `mapping` into the contract folder `out`, validated.

    Writes to a temporary folder beside `out` and renames it into place only when every table
    mapped and validation passed; on any error nothing is written and `out` is left as it was.
    """
    if fmt not in ("csv", "parquet"):
        raise UserError(f"--format must be csv or parquet, not {fmt!r}")
    out = Path(out)
    if out.exists() and not out.is_dir() and not force:  # --out names a folder: an empty file is still a file
        raise UserError(f"{out} is a file, not a folder; choose another --out or pass --force to replace it")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UserError(
            f"{out} already exists and is not empty; choose another --out or pass --force to replace it"
        )
    m = mapping if isinstance(mapping, Mapping) else load_mapping(mapping)
    frames, origins, info, sources = build_tables(m, Path(source), quota_policy)

    provenance = {
        "format": "repradar-import/1",
        "imported_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "mapping": {
            "name": m.name,
            "path": str(m.path),
            "sha256": hashlib.sha256(Path(m.path).read_bytes()).hexdigest(),
        },
        "source": {"folder": str(Path(source).resolve()), "files": sources.digests()},
        "quotas": info["quotas"],
        "quota_policy": info["quota_policy"],
        "tables": info["tables"],
        "assumptions": list(m.notes),
        "notes": info["notes"],
    }

    created = [p for p in (out.parent, *out.parent.parents) if not p.exists()]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.importing-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    done = False
    try:
        write_folder(frames, tmp, fmt)
        report = _validate(tmp, origins, m)
        stages = _stage_warning_in_source_terms(report, frames, m)
        report.warnings += info["warnings"]  # the import's own, after the contract check's
        provenance["validation"] = "passed"
        # What the import printed as warnings, kept with the data: the stage names structured too.
        provenance["warnings"] = [
            {"message": w, **(stages[1] if stages and i == stages[0] else {})}
            for i, w in enumerate(report.warnings)
        ]
        (tmp / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2, default=str) + "\n")
        _swap_into_place(tmp, out)
        report.folder = out  # the report names the folder the user asked for, not the temporary one
        done = True
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if not done:  # parent folders made for --out go too: nothing written on error
            for p in created:
                try:
                    p.rmdir()
                except OSError:
                    pass
    return ImportResult(out, provenance, report)


def _swap_into_place(tmp: Path, out: Path) -> None:
    """Rename the finished folder into place; an existing `out` is replaced only after that succeeds."""
    if out.exists():
        old = out.parent / f".{out.name}.replaced-{uuid.uuid4().hex[:8]}"
        out.rename(old)
        try:
            tmp.rename(out)
        except OSError:
            old.rename(out)
            raise
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:  # --force over a file
            old.unlink(missing_ok=True)
    else:
        tmp.rename(out)


def _validate(folder: Path, origins: dict, mapping: Mapping):
    """Run contract validation on the written folder; failures come back in the source's terms."""
    from features.validation import validate_folder

    report = validate_folder(folder)
    if not report.ok:
        problems = [translate_failure(f, origins, mapping) for f in report.failures]
        raise ImportFailed(problems, "the imported tables break the data contract")
    return report


def _stage_warning_in_source_terms(
    report, frames: dict[str, pd.DataFrame], mapping: Mapping
) -> tuple[int, dict] | None:
    """Say validation's warning about unreadable stage names with the export file and column each
    table's stage came from, so the value map it suggests reads the right column.

    Returns the warning's place in `report.warnings` and its names as data (`_import.json`), or None.
    """
    from features.stages import (
        UNRECOGNISED_STAGES,
        unrecognised_stages,
        unrecognised_stages_record,
        unrecognised_stages_warning,
    )

    at = [i for i, w in enumerate(report.warnings) if w.startswith(UNRECOGNISED_STAGES)]
    if not at:
        return None
    sources = {}
    for table in ("opportunities", "opportunity_history"):
        tmap = mapping.tables.get(table)
        specs = [(s.file, s.columns["stage"]) for s in (tmap.sources if tmap else ()) if "stage" in s.columns]
        if specs and specs[0][1].source is not None:
            sources[table] = (" / ".join(f for f, _ in specs), specs[0][1].source)
    found, any_late = unrecognised_stages(frames["opportunities"], frames.get("opportunity_history"))
    warning = unrecognised_stages_warning(found, any_late, sources)
    if not warning:
        return None
    report.warnings[at[0]] = warning
    return at[0], unrecognised_stages_record(found, any_late, sources)


def translate_failure(failure, origins: dict[str, pd.DataFrame], mapping: Mapping) -> str:
    """A validation failure about a written table, said with the source file, column and rows behind it.

    `failure.records` (and `overlap_records`) are the 0-based positions of its example rows in the
    written table; `origins[table]` holds, for each written row, the source file and the row it came
    from, numbered as in that file (`Sources.rows`). The examples are shown with those source row
    numbers, so one message uses one numbering: the source file's (the written table is discarded).
    """
    table = getattr(failure, "table", None)
    column = getattr(failure, "column", None)
    if table not in origins:
        return f"contract rule broken: {failure}"
    origin = origins[table]

    def source_row(pos) -> tuple[str, int] | None:
        if not isinstance(pos, int) or not 0 <= pos < len(origin):
            return None
        f, src_row = origin.iloc[pos]["file"], origin.iloc[pos]["row"]
        return (f, int(src_row)) if isinstance(f, str) else None

    by_file: dict[str, list[int]] = {}
    examples = []
    records = list(getattr(failure, "records", None) or ())
    others = list(getattr(failure, "overlap_records", None) or ())
    for i, example in enumerate(getattr(failure, "examples", None) or []):
        example = dict(example) if isinstance(example, dict) else example
        src = source_row(records[i]) if i < len(records) else None
        if src is not None and isinstance(example, dict):
            by_file.setdefault(src[0], []).append(src[1])
            example["row"] = src[1]
            other = source_row(others[i]) if i < len(others) else None
            if other is not None and isinstance(example.get("overlaps"), dict):
                example["overlaps"] = {**example["overlaps"], "row": other[1]}
        examples.append(example)
    if not by_file:
        text = f"contract rule broken: {failure}"
        if len(origin) and origin["file"].isna().all():
            return f"{text} (these quotas were derived by the quota policy: change the policy)"
        return text
    shown = dataclasses.replace(failure, examples=examples) if dataclasses.is_dataclass(failure) else failure
    text = f"contract rule broken: {shown}"
    where = []
    tmap = mapping.tables.get(table)
    for f, rows in by_file.items():
        src_col = None
        if tmap is not None and column:
            for s in tmap.sources:
                spec = s.columns.get(column) if s.file == f else None
                if spec is not None:
                    src_col = spec.source or (spec.lookup.match if spec.lookup else None)
        col = f", column {src_col}" if src_col else ""
        where.append(f"{f}{col}, row{'s' if len(rows) > 1 else ''} {', '.join(map(str, rows))}")
    return f"{text}; in the source: {'; '.join(where)}"


def import_command(
    mapping: str,
    source: Path,
    out: Path,
    *,
    quota_policy: str | None = None,
    fmt: str = "csv",
    force: bool = False,
) -> list[str]:
    """`repradar import`: run the import and return the lines to print (raises UserError on any problem)."""
    from importer.mapping import parse_quota_policy

    policy = parse_quota_policy(quota_policy) if quota_policy else None
    result = run_import(mapping, source, out, quota_policy=policy, fmt=fmt, force=force)
    lines = [f"imported {source} with mapping {result.provenance['mapping']['name']}"]
    lines += [f"  {line}" for line in result.summary_lines()]
    if result.report is not None:
        lines.append(result.report.render())
    lines.append(f"wrote {out} (provenance in {out / PROVENANCE_FILE})")
    return lines
