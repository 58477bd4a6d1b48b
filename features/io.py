"""Reading a contract folder (CSV or Parquet per table) into typed pandas frames.

Typed means: strings as pandas strings, dates as `datetime64` at midnight, timestamps as UTC
`datetime64`, numbers as float64, booleans as bool (see `features.validation.coerce_table`).
Parsing problems are not handled here: `features.validation.validate_folder` reports them;
`load_folder` runs it first.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import functools
import hashlib
import re
import warnings
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

from features.contract import TABLES
from repradar.errors import UserError
from repradar.files import replacing

# Resolution of every date and timestamp column (pandas 3 parses strings to microseconds; this
# also keeps far-future sentinels such as 9999-12-31 representable).
DATETIME_UNIT = "us"
TABLE_SUFFIXES = (".parquet", ".csv")  # preference order when a table has both files
FIRST_RECORD_ROW = 2  # the header is row 1, so a table's first record is row 2
PROVENANCE_FILE = "_import.json"  # written by `repradar import` beside the tables; not a table


@dataclass
class Tables:
    """One organisation's data in the contract; optional tables are None when absent."""

    reps: pd.DataFrame
    quotas: pd.DataFrame
    opportunities: pd.DataFrame
    opportunity_history: pd.DataFrame | None = None
    activities: pd.DataFrame | None = None
    engagement: pd.DataFrame | None = None
    interventions: pd.DataFrame | None = None

    def items(self):
        for f in fields(self):
            yield f.name, getattr(self, f.name)

    def replace(self, **frames) -> Tables:
        data = dict(self.items())
        data.update(frames)
        return Tables(**data)


CATALOG_PREFIX = "catalog:"


def is_uri(source) -> bool:
    """True for a source only Spark reads: a URI with a scheme (s3a://, hdfs://, file://, dbfs:/)
    or `catalog:<database>` (features.spark_io)."""
    s = str(source)
    return s.startswith(CATALOG_PREFIX) or "://" in s or s.startswith("dbfs:")


def table_path(folder: Path, name: str) -> Path | None:
    """The file holding table `name` in `folder` (Parquet preferred over CSV), or None.

    An optional table's blank file counts as absent: that is what an export of "nothing" writes."""
    for suffix in TABLE_SUFFIXES:
        p = Path(folder) / f"{name}{suffix}"
        if p.exists():
            if empty_optional(name, p):
                continue
            return p
    return None


def blank_file(path: Path) -> bool:
    """A file with nothing in it: 0 bytes, or only a byte-order mark and white space (never Parquet)."""
    path = Path(path)
    try:
        if path.suffix == ".parquet" or path.stat().st_size > 4096:
            return False
        return not path.read_bytes().removeprefix(UTF8_BOM).strip()
    except OSError:
        return False


def folder_digest(folder: Path) -> str | None:
    """SHA-256 over a folder's table files (.csv, .parquet: names and bytes), so "same data" means the
    same bytes (batch jobs' `data_digest`, training runs' `data_sha256`); None when it holds none."""
    files = sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix in TABLE_SUFFIXES)
    if not files:
        return None
    h = hashlib.sha256()
    for p in files:
        h.update(p.name.encode() + b"\0")
        with p.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        h.update(b"\0")
    return h.hexdigest()


def empty_optional(name: str, path: Path) -> bool:
    """Whether `path` is a blank file (`blank_file`) of an optional table: read as absent, with a warning."""
    spec = TABLES.get(name)
    return spec is not None and not spec.required and blank_file(path)


def read_raw(path: Path) -> pd.DataFrame:
    """The file as stored: CSV cells as strings (so validation sees what the user wrote).

    Only empty CSV cells are missing ("NA" or "null" stay text). Blank rows are dropped but the
    index keeps the file's record numbering: label i is the i-th record after the header, counting
    from 0 and counting blank lines (`csv_record_lines` and `spreadsheet_row` turn labels into the numbers reported to users).
    Raises `UserError` saying what is wrong when the file cannot be read as a table.
    """
    path = Path(path)
    if path.suffix == ".parquet":
        try:
            df = pd.read_parquet(path)
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise UserError(f"{path.name} is not a readable Parquet file ({_short(exc)})") from exc
        if not df.index.equals(pd.RangeIndex(len(df))):
            # pandas restores an index it wrote; rows are numbered by position, a named index is data
            df = df.reset_index(drop=all(n is None for n in df.index.names))
        return decategorize(df)
    try:
        with open(path, "rb") as fh:
            head = fh.read(64 * 1024)
    except OSError as exc:
        raise UserError(f"cannot open {path.name} ({_short(exc)})") from exc
    if b"\x00" in head:
        raise UserError(
            f"{path.name} is a binary file, not CSV text; export the table as UTF-8 CSV or Parquet"
        )
    if not head.removeprefix(UTF8_BOM).strip():
        raise UserError(f"{path.name} is empty; it needs at least a header line with the column names")
    sep = excel_sep_line(path)
    try:
        # pyarrow's reader is several times faster; the C reader decides when it refuses a file.
        raw = pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            engine="pyarrow",
            skip_blank_lines=False,
            sep=sep or ",",
            skiprows=1 if sep else None,
        )
    except Exception:
        raw = _read_csv_c(path, sep)
    blank = raw.isna().all(axis=1)
    return raw[~blank] if blank.any() else raw


DELIMITER_NAMES = {";": "semicolons", "\t": "tabs", "|": "pipes", ",": "commas"}
UTF8_BOM = codecs.BOM_UTF8
_SEP_LINE = re.compile(rb"^sep=(.)[ \t]*\r?\n")


def decategorize(df: pd.DataFrame) -> pd.DataFrame:
    """Parquet dictionary ("category") columns as plain columns of their values (text stays text),
    so a column is judged by what it holds, not by how it was stored."""
    for c in df.columns:
        s = df[c]
        if isinstance(s.dtype, pd.CategoricalDtype):
            try:
                df[c] = s.astype(s.cat.categories.dtype)
            except (TypeError, ValueError):  # e.g. integer categories with missing cells
                df[c] = s.astype(object).where(s.notna(), None)
    return df


def excel_sep_line(path: Path) -> str | None:
    """The delimiter named by Excel's `sep=;` first line (after a byte-order mark), or None."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(64).removeprefix(UTF8_BOM)
    except OSError:
        return None
    m = _SEP_LINE.match(head)
    return m.group(1).decode("latin-1") if m else None


def decode_problem(path: Path, encoding: str = "utf-8", delimiter: str = ",") -> str | None:
    """Where a file stops being `encoding` text: "line 7, column amount (byte 0x96)", or None.

    Lines are counted as an editor shows them (the header is line 1); the column is the header's
    name of the field holding the bad byte (quotes are not followed across lines).
    """
    path = Path(path)
    header: list[str] | None = None
    try:
        with open(path, "rb") as fh:
            for number, line in enumerate(fh, start=1):
                if number == 1:
                    line = line.removeprefix(UTF8_BOM)
                try:
                    text = line.decode(encoding)
                except UnicodeDecodeError as exc:
                    prefix = line[: exc.start].decode(encoding, errors="replace")
                    field = len(next(csv.reader([prefix], delimiter=delimiter), [""])) - 1
                    where = f"line {number}"
                    if header is not None and number > 1 and 0 <= field < len(header):
                        where += f", column {header[field]}"
                    return f"{where} (byte 0x{line[exc.start]:02x})"
                except LookupError:
                    return None
                if header is None and not (number == 1 and _SEP_LINE.match(line)):
                    header = next(csv.reader([text.rstrip("\r\n")], delimiter=delimiter), [])
    except OSError:
        return None
    return None


def long_row_line(path: Path, delimiter: str = ",", encoding: str = "utf-8-sig") -> int | None:
    """The first line whose record has more fields than the header (header = line 1), or None."""
    skip = 1 if excel_sep_line(path) else 0
    try:
        with open(path, newline="", encoding=encoding, errors="replace") as fh:
            if skip:
                fh.readline()
            reader = csv.reader(fh, delimiter=delimiter)
            header = next(reader, None)
            if header is None:
                return None
            start = reader.line_num + 1
            for row in reader:
                if len(row) > len(header):
                    return start + skip
                start = reader.line_num + 1
    except (OSError, csv.Error):
        return None
    return None


def header_delimiter(columns, delimiter: str = ",") -> str | None:
    """The character a one-column header is really split on (`;`, tab, `|` or `,`, other than the
    `delimiter` it was read with), or None: the usual sign of a file saved with another separator."""
    columns = list(columns)
    if len(columns) != 1:
        return None
    return next((sep for sep in DELIMITER_NAMES if sep != delimiter and sep in str(columns[0])), None)


def spreadsheet_row(position: int) -> int:
    """A record's row by its 0-based position, as a spreadsheet shows it (the header is row 1): the
    number reported for Parquet, and for a CSV file with one line per record. One convention everywhere
    (validation, import, Spark): the row a person finds the record on; in a CSV file that is its line
    (`csv_record_lines`: blank lines count, a cell spanning lines numbers its record by the first)."""
    return int(position) + FIRST_RECORD_ROW


def _has_quote(path: Path, chunk: int = 1 << 20) -> bool:
    """Whether the file holds a double quote, read a megabyte at a time (exports run to gigabytes)."""
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            if b'"' in block:
                return True
    return False


def csv_record_lines(path: Path, n: int, *, delimiter: str = ",", encoding: str = "utf-8-sig") -> np.ndarray:
    """The line (header = line 1) on which each of the first `n` records of a CSV file starts.

    Records are counted as pandas reads them with `skip_blank_lines=False`: a blank line is a
    record. Without a quote character in the file every record is one line; otherwise the file is
    walked with the csv module (only as far as record `n`), since quoted cells may span lines.
    """
    path = Path(path)
    skip = 1 if excel_sep_line(path) else 0  # Excel's `sep=` line comes before the header
    if not _has_quote(path):
        return np.arange(n, dtype="int64") + FIRST_RECORD_ROW + skip
    lines = []
    try:
        with open(path, newline="", encoding=encoding, errors="replace") as fh:
            if skip:
                fh.readline()
            reader = csv.reader(fh, delimiter=delimiter)
            if next(reader, None) is not None:
                end = reader.line_num
                for _ in reader:
                    lines.append(end + 1 + skip)
                    end = reader.line_num
                    if len(lines) >= n:
                        break
    except csv.Error:  # a cell the csv module refuses (e.g. over its size limit): number the rest by line
        pass
    nxt = lines[-1] + 1 if lines else FIRST_RECORD_ROW + skip
    while len(lines) < n:  # the readers disagree on the record count: number the rest one per line
        lines.append(nxt)
        nxt += 1
    return np.asarray(lines, dtype="int64")


def _read_csv_c(path: Path, sep: str | None = None) -> pd.DataFrame:
    try:
        with warnings.catch_warnings():
            # pandas only warns when every row has more fields than the header, then drops some
            warnings.simplefilter("error", pd.errors.ParserWarning)
            return pd.read_csv(
                path,
                dtype=str,
                keep_default_na=False,
                na_values=[""],
                encoding="utf-8-sig",  # tolerate the byte-order mark Excel writes
                skip_blank_lines=False,  # keep row numbers equal to the file's data rows
                index_col=False,  # a row with an extra field is an error, not an index
                sep=sep or ",",
                skiprows=1 if sep else None,  # Excel's `sep=` line
            )
    except pd.errors.ParserWarning as exc:
        line = long_row_line(path, sep or ",")
        at = f"line {line} has" if line else "rows have"
        raise UserError(f"{path.name} is not well-formed CSV ({at} more fields than the header)") from exc
    except UnicodeDecodeError as exc:
        where = decode_problem(path, "utf-8", sep or ",") or f"byte {exc.start}"
        raise UserError(
            f"{path.name} is not UTF-8 text ({where}); save it as UTF-8 CSV (in Excel: CSV UTF-8)"
        ) from exc
    except pd.errors.EmptyDataError as exc:
        raise UserError(
            f"{path.name} is empty; it needs at least a header line with the column names"
        ) from exc
    except (pd.errors.ParserError, ValueError, OSError) as exc:
        raise UserError(f"{path.name} is not well-formed CSV ({_short(exc)})") from exc


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def write_table(df: pd.DataFrame, path: Path) -> None:
    """Write atomically: to a temporary file beside the target, then rename."""
    path = Path(path)
    with replacing(path) as tmp:
        if path.suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False)


def _read_columns(path: Path, cols: list[str]) -> pd.DataFrame:
    """Just `cols` of a table file (CSV as text), for the cheap checks made before the slow work."""
    if path.suffix == ".parquet":
        return pd.read_parquet(path, columns=cols)
    sep = excel_sep_line(path)
    return pd.read_csv(
        path, usecols=cols, dtype=str, encoding="utf-8-sig", sep=sep or ",", skiprows=1 if sep else None
    )


def quota_span(folder: str | Path) -> tuple[dt.date, dt.date] | None:
    """First `period_start` and last `period_end` of the folder's quotas, read cheaply.

    For checks made before the slow work (a batch job's as-of day); None when the quotas cannot
    be read or hold no valid period, in which case validation says why later.
    """
    path = table_path(Path(folder), "quotas")
    cols = ["period_start", "period_end"]
    try:
        if path is None:
            return None
        df = _read_columns(path, cols)
    except (OSError, ValueError, KeyError):
        return None
    start = pd.to_datetime(df["period_start"], errors="coerce", format="mixed").min()
    end = pd.to_datetime(df["period_end"], errors="coerce", format="mixed").max()
    if pd.isna(start) or pd.isna(end):
        return None
    return pd.Timestamp(start).date(), pd.Timestamp(end).date()


# The columns `features.staging.latest_data_day` reads, per table: the events of the data.
EVENT_COLUMNS = {
    "opportunities": ["created_date", "close_date", "is_closed"],
    "opportunity_history": ["changed_at"],
    "activities": ["occurred_at"],
    "engagement": ["date"],
    "interventions": ["started_on"],
}


def latest_event_day(folder: str | Path) -> dt.date | None:
    """The latest day any event of the folder's data happened, as the scoring's note computes it, read
    cheaply (those columns only; kept until a table's file changes): for the dashboard's as-of field, which
    would otherwise offer days the features see nothing of. None when the tables cannot be read."""
    signature = []
    for name in EVENT_COLUMNS:
        path = table_path(Path(folder), name)
        if path is not None:
            try:
                st = path.stat()
            except OSError:
                return None
            signature.append((name, str(path), st.st_size, st.st_mtime_ns))
    return _latest_event_day(tuple(signature))


@functools.lru_cache(maxsize=8)
def _latest_event_day(signature: tuple) -> dt.date | None:
    from types import SimpleNamespace

    from features.staging import latest_data_day

    frames: dict[str, pd.DataFrame | None] = dict.fromkeys(EVENT_COLUMNS)
    try:
        for name, path, _, _ in signature:
            path, cols = Path(path), EVENT_COLUMNS[name]
            frames[name] = _read_columns(path, cols)
        if frames["opportunities"] is None:
            return None
        latest = latest_data_day(SimpleNamespace(**frames))
    except (OSError, ValueError, KeyError, TypeError):  # validation says what is wrong when a job runs
        return None
    return None if latest is None else dt.date(1970, 1, 1) + dt.timedelta(days=latest)


def load_folder(folder: str | Path, *, validate: bool = True) -> Tables:
    """Validate `folder` against the contract and return its typed tables.

    Raises `repradar.errors.ContractError` listing every violation when validation fails.
    Each file is read once: validation hands over the frames it typed.
    """
    from features.validation import coerce_table, validate_and_load

    folder = Path(folder)
    if validate:
        report, typed = validate_and_load(folder)
        report.raise_if_failed()
        return Tables(**typed)
    frames = {}
    for name, spec in TABLES.items():
        p = table_path(folder, name)
        frames[name] = None if p is None else coerce_table(spec, read_raw(p))
    return Tables(**frames)
