"""The contract's tables read, checked and typed on Spark, where the data lives.

A *source* names where the tables are:
- a folder path or URI Spark can read (`/data/crm`, `file:///data/crm`, `s3a://bucket/crm`,
  `hdfs://...`, `abfss://...`, `dbfs:/...`), holding each table as `<table>.parquet` (a file or a
  Parquet dataset folder) or `<table>.csv`, exactly as the contract's folder;
- `catalog:<database>`: each table is the catalog table `<database>.<table>` (Hive metastore,
  Unity Catalog, Delta ...), e.g. `catalog:crm` reads `crm.reps`, `crm.quotas`, ...

`validate_source` checks every rule of `features.contract` with Spark jobs generated from its
declarative specs (the same `Column` and rule objects the pandas validator reads) and reports
`features.validation.Failure`s with the same table, column, rule, row count and first rows, so a
broken export reads the same on both engines. `load_spark_tables` returns `SparkTables`: the
small tables (reps, quotas, interventions) collected as the pandas frames `features.io.load_folder`
returns, the large ones (opportunities, history, activities, engagement) as typed Spark DataFrames
that `features.spark_staging` stages without leaving the cluster.

Rows are numbered as Spark reads them (partition by partition, in file order within a file), as a
spreadsheet shows them: the header is row 1, so a file's first record is row 2 (`ROW_OFFSET`). For one
Parquet file, or a CSV file without blank lines or cells spanning lines, that is the pandas validator's
number (its CSV numbers are line numbers: Spark skips blank lines and cannot count them).
"""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass, field, fields
from pathlib import Path, PurePosixPath

import pandas as pd

from features.contract import TABLES, Column, Implies, NoOverlap, NotBefore, RangeBy, Table
from features.io import CATALOG_PREFIX, DATETIME_UNIT, FIRST_RECORD_ROW, TABLE_SUFFIXES, header_delimiter
from features.stages import read_unrecognised_stages, stage_key, unrecognised_stages_warning
from features.validation import (
    ABSENT_EFFECT,
    DEAL_OWNER_CHECKS,
    MAX_EXAMPLES,
    RULE_CATALOG,
    RULE_CHECKED,
    RULE_COLUMN,
    RULE_FOLDER,
    RULE_HEADER,
    RULE_NON_EMPTY,
    RULE_NOT_NULL,
    RULE_READABLE,
    RULE_TABLE,
    RULE_TYPE,
    RULE_UNIQUE,
    Failure,
    ValidationReport,
    _format_value,
    _missing_column_detail,
    deal_owner_shown,
    deal_owner_warning,
    empty_optional_warning,
    extra_columns_warning,
    rule_range,
    rule_references,
    unknown_metrics_warning,
)
from repradar.errors import UserError

POS = "_pos"  # 0-based position of a row as read; row numbers in messages are POS + ROW_OFFSET
ROW_OFFSET = FIRST_RECORD_ROW  # the header is row 1: the first record is row 2, as features.io counts
_TYPED = "__t_"  # typed copy of a contract column, beside the raw one
_BAD = "__bad_"  # the cell is present but does not parse as its contract type

_NUMBER_RE = r"^[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][+-]?[0-9]+)?$"
_DATE_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
# What pandas' ISO 8601 parser reads (features.validation), in groups: date, hour, minute, second,
# fraction, offset. An offset needs a time; ',' fractions and a lower-case 'z' are refused, as there.
_TIMESTAMP_RE = (
    r"^([0-9]{4}-[0-9]{2}-[0-9]{2})"
    r"(?:[T ]([0-9]{2})(?::([0-9]{2})(?::([0-9]{2})(?:[.]([0-9]+))?)?)?(?: ?(Z|[+-][0-9]{2}(?::?[0-9]{2})?))?)?$"
)
_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")

SMALL_TABLES = ("reps", "quotas", "interventions")  # collected to the driver: one row per rep or period


# --------------------------------------------------------------------------------------------
# Tables


@dataclass
class SparkTables:
    """One organisation's data read on Spark: small tables as pandas, large ones as Spark DataFrames.

    Field names follow `features.io.Tables`, so `features.build` reads `reps` and `quotas` the
    same way; `features.spark_staging` stages the Spark ones. Every Spark frame has the contract's
    columns typed (string, date, timestamp in UTC, double, boolean) plus `_pos`, its read order.
    """

    reps: pd.DataFrame
    quotas: pd.DataFrame
    opportunities: object  # pyspark.sql.DataFrame
    opportunity_history: object | None = None
    activities: object | None = None
    engagement: object | None = None
    interventions: pd.DataFrame | None = None
    spark: object = field(default=None, repr=False)
    source: str = ""

    def items(self):
        for f in fields(self):
            if f.name not in ("spark", "source"):
                yield f.name, getattr(self, f.name)

    def latest_data_day(self) -> int | None:
        """The latest day (days since 1970-01-01) any event happened, as `staging.latest_data_day`.

        Scans every large table, so it is computed once: the tables do not change once read."""
        return self._latest_data_day

    @functools.cached_property
    def _latest_data_day(self) -> int | None:
        from pyspark.sql import functions as F

        days: list[int] = []
        o = self.opportunities
        row = o.agg(
            F.max(F.unix_date("created_date")).alias("a"),
            F.max(F.when(F.col("is_closed"), F.unix_date("close_date"))).alias("b"),
        ).first()
        days += [v for v in row if v is not None]
        for frame, column in (
            (self.opportunity_history, "changed_at"),
            (self.activities, "occurred_at"),
            (self.engagement, "date"),
        ):
            if frame is not None:
                v = frame.agg(F.max(F.unix_date(F.to_date(column))).alias("d")).first()["d"]
                if v is not None:
                    days.append(int(v))
        if self.interventions is not None:
            from features.staging import to_days

            d = to_days(self.interventions["started_on"]).dropna()
            if len(d):
                days.append(int(d.max()))
        return max(days) if days else None


def load_spark_tables(spark, source: str | Path, *, validate: bool = True) -> SparkTables:
    """Read `source` on Spark, check it against the contract and return its typed tables.

    Raises `repradar.errors.ContractError` listing every violation (as `load_folder` does), or
    `UserError` when the source cannot be read at all.
    """
    report, typed = validate_and_load_spark(spark, source, want_frames=True, check=validate)
    report.raise_if_failed()
    small = {name: _to_pandas(TABLES[name], typed[name]) for name in SMALL_TABLES}
    return SparkTables(
        reps=small["reps"],
        quotas=small["quotas"],
        opportunities=typed["opportunities"],
        opportunity_history=typed["opportunity_history"],
        activities=typed["activities"],
        engagement=typed["engagement"],
        interventions=small["interventions"],
        spark=spark,
        source=str(source),
    )


def validate_source(spark, source: str | Path) -> ValidationReport:
    """Check every table of `source` against the contract on Spark; never raises on bad input."""
    return validate_and_load_spark(spark, source, want_frames=False)[0]


def validate_and_load_spark(spark, source, *, want_frames: bool, check: bool = True):
    """(report, {table: typed Spark DataFrame or None}); frames only when asked and the report is ok."""
    source = str(source)
    report = ValidationReport(folder=PurePosixPath(source))
    frames: dict = dict.fromkeys(TABLES)
    try:
        checked = _check_source(spark, source, report, check)
        if want_frames and report.ok:
            for name, c in checked.items():
                frames[name] = _finish(TABLES[name], c)
    except Exception as exc:  # a bug must not reach the user as a traceback about their data
        report.failures.append(Failure("", None, RULE_CHECKED, 0, [], f"the checks could not run: {exc!r}"))
    return report, frames


# --------------------------------------------------------------------------------------------
# Locating and reading


class _Locator:
    """Where each table of a source is, and how to read it."""

    def __init__(self, spark, source: str):
        self.spark = spark
        self.source = source
        self.catalog = source[len(CATALOG_PREFIX) :] if source.startswith(CATALOG_PREFIX) else None
        self._entries: dict[str, str] | None = None
        self._empty: set[str] = set()  # names of 0-byte files (known only with file system access)

    def check(self) -> str | None:
        """A problem with the source itself (missing folder or database), or None."""
        if self.catalog is not None:
            global_temp = self.spark.conf.get("spark.sql.globalTempDatabase", "global_temp")
            if self.catalog != global_temp and not self.spark.catalog.databaseExists(self.catalog):
                return f"database {self.catalog!r} does not exist in the Spark catalog"
            return None
        fs, path = self._hadoop()
        if fs is None:
            return None  # Spark Connect: no file system access; tables are probed by reading
        if not fs.exists(path):
            return f"{self.source} does not exist; pass the folder that holds reps.csv, quotas.csv, ..."
        if not fs.getFileStatus(path).isDirectory():
            return (
                f"{self.source} is a file, not a folder; pass the folder that holds reps.csv, quotas.csv, ..."
            )
        return None

    def _hadoop(self):
        try:
            jvm = self.spark._jvm
            conf = self.spark._jsc.hadoopConfiguration()
        except Exception:  # Spark Connect has no JVM on this side
            return None, None
        path = jvm.org.apache.hadoop.fs.Path(self.source)
        return path.getFileSystem(conf), path

    def entries(self) -> dict[str, str]:
        """Names in the folder (or tables in the database) -> their full path (or table name)."""
        if self._entries is not None:
            return self._entries
        out: dict[str, str] = {}
        if self.catalog is not None:
            for t in self.spark.catalog.listTables(self.catalog):
                out[t.name] = f"{self.catalog}.{t.name}"
        else:
            fs, path = self._hadoop()
            if fs is not None:
                for st in fs.listStatus(path):
                    name = st.getPath().getName()
                    if not name.startswith((".", "_")):
                        out[name] = st.getPath().toString()
                        if st.isFile() and self._blank(st.getPath().toString(), name, st.getLen()):
                            self._empty.add(name)
            else:
                for name in TABLES:
                    for suffix in TABLE_SUFFIXES:
                        p = f"{self.source.rstrip('/')}/{name}{suffix}"
                        if _readable(self.spark, p, suffix):
                            out[f"{name}{suffix}"] = p
        self._entries = out
        return out

    def _blank(self, where: str, name: str, size: int) -> bool:
        """`features.io.blank_file` on Spark: 0 bytes, or a small CSV of only white space."""
        if size == 0:
            return True
        if size > 4096 or not name.endswith(".csv"):
            return False
        lines = [r[0] for r in self.spark.read.text(where).collect()]
        return not "".join(lines).lstrip("\ufeff").strip()

    def locate(
        self, spec: Table, report: ValidationReport, failures: list[Failure]
    ) -> tuple[str, str] | None:
        """(how to read, where) of a table, or None when absent (a failure or warning is recorded).

        The messages are `features.validation`'s, word for word, so both engines read the same."""
        entries = self.entries()
        if self.catalog is not None:
            if spec.name in entries:
                return "table", entries[spec.name]
            missing, hint = f"no table {self.catalog}.{spec.name}", ""
            required = f"{missing} in the Spark catalog"
        else:
            present = [f"{spec.name}{s}" for s in TABLE_SUFFIXES if f"{spec.name}{s}" in entries]
            found = [n for n in present if spec.required or n not in self._empty]
            for n in present:
                if n not in found:
                    report.warnings.append(empty_optional_warning(spec, n))
            if len(found) > 1:
                report.warnings.append(
                    f"{spec.name}: both {' and '.join(found)} found; using {found[0]} "
                    "(remove the other to silence this)"
                )
            if found:
                return found[0].rsplit(".", 1)[1], entries[found[0]]
            if present:
                return None  # only 0-byte files of an optional table, already noted as absent
            near = [n for n in entries if n.split(".")[0].strip().lower() == spec.name]
            hint = (
                f"; found {', '.join(sorted(near))}: names are exact and lower-case, and only .csv or .parquet is read"
                if near
                else ""
            )
            missing = f"no {spec.name}.csv or {spec.name}.parquet"
            required = f"{missing} in {self.source}"
        if spec.required:
            failures.append(Failure(spec.name, None, RULE_TABLE, 0, [], f"{required}{hint}"))
        else:
            report.warnings.append(
                f"{spec.name}: optional table absent ({missing}){hint}; "
                f"{ABSENT_EFFECT.get(spec.name, 'the features it feeds will be missing')}"
            )
        return None

    def unknown(self) -> list[str]:
        if self.catalog is not None:
            return []
        known = {f"{t}{s}" for t in TABLES for s in TABLE_SUFFIXES}
        data_like = (".csv", ".parquet", ".pq", ".tsv", ".xlsx", ".xls", ".json")
        return sorted(n for n in self.entries() if n not in known and n.lower().endswith(data_like))


def _readable(spark, path: str, suffix: str) -> bool:
    try:
        reader = spark.read.parquet if suffix == ".parquet" else spark.read.text
        reader(path).schema  # noqa: B018 - resolving the schema lists the files
        return True
    except Exception:
        return False


def _read(spark, how: str, where: str):
    """The table as stored (CSV cells as text), or raises UserError saying why it cannot be read."""
    name = where.rstrip("/").rsplit("/", 1)[-1]
    try:
        if how == "table":
            return spark.table(where)
        if how == "parquet":
            return spark.read.parquet(where)
        header = _csv_header(spark, where, name)
        df = (
            spark.read.option("header", True)
            .option("inferSchema", False)
            .option("encoding", "UTF-8")
            .option("mode", "PERMISSIVE")
            .csv(where)
        )
        # Spark renames nothing when the header is clean (checked above); strip Excel's byte-order mark.
        return df.toDF(*header) if len(header) == len(df.columns) else df
    except UserError:
        raise
    except Exception as exc:
        text = " ".join(str(exc).split())[:200]
        raise UserError(f"cannot read {name} ({text})") from exc


def _csv_header(spark, where: str, name: str) -> list[str]:
    first = spark.read.text(where).limit(1).collect()
    if not first or not first[0][0].strip():
        raise UserError(f"{name} is empty; it needs at least a header line with the column names")
    line = first[0][0].lstrip("\ufeff")
    return next(csv.reader(io.StringIO(line)), [])


def _with_position(frame):
    """The frame with POS: its rows' 0-based positions in read order (file order within a file).

    monotonically_increasing_id is partition index << 33 plus the row's place in its partition;
    adding the sizes of the earlier partitions turns it into a dense position.
    """
    from pyspark.sql import functions as F

    df = frame.withColumn("__mid", F.monotonically_increasing_id()).withColumn(
        "__pid", F.spark_partition_id()
    )
    counts = sorted((r["__pid"], r["count"]) for r in df.groupBy("__pid").count().collect())
    offsets, total = {}, 0
    for pid, n in counts:
        offsets[pid] = total
        total += n
    if offsets:
        mapping = F.create_map(*[x for pid, off in offsets.items() for x in (F.lit(pid), F.lit(off))])
        pos = F.col("__mid") - F.shiftleft(F.col("__pid").cast("long"), 33) + mapping[F.col("__pid")]
    else:
        pos = F.lit(0).cast("long")
    return df.withColumn(POS, pos.cast("long")).drop("__mid", "__pid"), total


# --------------------------------------------------------------------------------------------
# Checking


@dataclass
class _SparkChecked:
    frame: object  # raw columns, POS, typed copies (_TYPED + name) and parse flags (_BAD + name)
    columns: list[str]  # raw column names as read
    present: list[str]  # contract columns present
    n_rows: int


def _check_source(spark, source: str, report: ValidationReport, check: bool) -> dict[str, _SparkChecked]:
    loc = _Locator(spark, source)
    problem = loc.check()
    if problem:
        report.failures.append(Failure("", None, RULE_FOLDER, 0, [], problem))
        return {}
    per_table: dict[str, list[Failure]] = {name: [] for name in TABLES}
    checked: dict[str, _SparkChecked] = {}
    for name, spec in TABLES.items():
        found = loc.locate(spec, report, per_table[name])
        if found is None:
            continue
        how, where = found
        report.files[name] = PurePosixPath(where)
        try:
            result = _check_table(spark, spec, how, where, report, per_table[name], check)
        except Exception as exc:  # one table's surprise must not hide the other tables' results
            per_table[name].append(
                Failure(name, None, RULE_CHECKED, 0, [], f"the checks could not run on {where}: {exc!r}")
            )
            continue
        if result is not None:
            checked[name] = result
            report.tables[name] = result.n_rows
    if check:
        for name, spec in TABLES.items():
            if name in checked:
                per_table[name] += _reference_failures(spec, checked)
    ignored = loc.unknown()
    if ignored:
        report.warnings.append(
            f"ignored file(s) that are not contract tables: {', '.join(ignored)} "
            f"(tables are {', '.join(TABLES)} as .csv or .parquet)"
        )
    if check:  # the pandas validator's warnings beyond the contract, in its order
        _warn_unrecognised_stages(checked, report)
        report.warnings += _deal_owner_warnings(checked)
    for name in TABLES:
        report.failures += per_table[name]
    return checked


def _check_table(spark, spec: Table, how, where, report, failures, check: bool) -> _SparkChecked | None:
    from pyspark.sql import functions as F

    name = spec.name
    try:
        raw = _read(spark, how, where)
    except UserError as exc:
        failures.append(Failure(name, None, RULE_READABLE, 0, [], str(exc)))
        return None
    columns = [str(c) for c in raw.columns]
    dups = sorted({c for c in columns if columns.count(c) > 1})
    if dups:
        shown = where.rstrip("/").rsplit("/", 1)[-1]
        for c in dups:
            failures.append(
                Failure(
                    name,
                    c,
                    RULE_HEADER,
                    0,
                    [],
                    f"column {c!r} appears {columns.count(c)} times in {shown}'s header; keep one",
                )
            )
        return None
    extras = [c for c in columns if c not in spec.column_names]
    if extras and header_delimiter(columns) is None:  # as the pandas validator: one message
        report.warnings.append(extra_columns_warning(spec, extras))

    frame, n = _with_position(raw)
    types = dict(frame.dtypes)
    present = [c.name for c in spec.columns if c.name in columns]
    exprs = []
    for col in spec.columns:
        if col.name in present:
            value, bad = _parse(col, F.col(f"`{col.name}`"), types[col.name])
            exprs += [value.alias(_TYPED + col.name), bad.alias(_BAD + col.name)]
    # Not persisted: each check re-reads the source, which for Parquet is cheaper than building an
    # in-memory copy (measured on the 1,500-rep organisation: 111 s against 197 s, docs/spark.md).
    frame = frame.select("*", *exprs)
    checked = _SparkChecked(frame, columns, present, n)
    if n == 0:
        report.warnings.append(f"{name}: {where.rstrip('/').rsplit('/', 1)[-1]} has no data rows")

    # Failures are sorted as the pandas validator reports them: parse failures, missing columns,
    # then column rules column by column, then the table's rules in spec order.
    found: list[tuple[tuple, Failure]] = []
    index = {c.name: i for i, c in enumerate(spec.columns)}
    for col in spec.columns:
        if col.name not in present and col.required:
            detail = _missing_column_detail(col.name, pd.DataFrame(columns=columns))
            found.append(((1, index[col.name], 0), Failure(name, col.name, RULE_COLUMN, 0, [], detail)))
    if check:
        found += _row_rule_failures(spec, frame, present, index)
        if name == "engagement" and "metric" in present:
            _warn_unknown_metrics(frame, report)
    failures += [f for _, f in sorted(found, key=lambda kf: kf[0])]
    return checked


def _row_rule_failures(spec: Table, frame, present: list[str], index: dict) -> list[tuple[tuple, Failure]]:
    """Every column and table rule as one flag per row, counted together in one pass over the table."""
    from pyspark.sql import functions as F

    name = spec.name
    flags = []  # (sort key, column, rule, flag, columns shown, detail)
    for col in spec.columns:
        if col.name not in present:
            continue
        ci = index[col.name]
        v, bad = F.col(_TYPED + col.name), F.col(_BAD + col.name)
        shown = [col.name]
        flags.append(((0, ci, 0), col.name, RULE_TYPE[col.kind], bad, shown, ""))
        if not col.nullable:
            flags.append(((2, ci, 0), col.name, RULE_NOT_NULL, v.isNull() & ~bad, shown, ""))
        if col.non_empty:
            flags.append(((2, ci, 1), col.name, RULE_NON_EMPTY, v.isNotNull() & v.rlike(r"^\s*$"), shown, ""))
        if col.ge is not None:
            flags.append(((2, ci, 3), col.name, f"{col.name} >= {col.ge:g}", v < F.lit(col.ge), shown, ""))
        if col.gt is not None:
            flags.append(((2, ci, 4), col.name, f"{col.name} > {col.gt:g}", v <= F.lit(col.gt), shown, ""))
        if col.one_of is not None:
            detail = f"allowed: {', '.join(col.one_of)} (see interventions.md)"
            outside = v.isNotNull() & ~v.isin(list(col.one_of))
            flags.append(((2, ci, 5), col.name, RULE_CATALOG, outside, shown, detail))
    overlap = []
    for ri, rule in enumerate(spec.rules):
        if not all(c in present for c in rule.columns):
            continue
        t = {c: F.col(_TYPED + c) for c in rule.columns}
        shown = list(rule.columns)
        if isinstance(rule, NotBefore):
            flags.append(((3, ri, 0), rule.column, rule.name, t[rule.column] < t[rule.other], shown, ""))
        elif isinstance(rule, Implies):
            broken = (t[rule.column] == F.lit(True)) & (t[rule.then] == F.lit(False))
            flags.append(((3, ri, 0), rule.column, rule.name, broken, shown, ""))
        elif isinstance(rule, RangeBy):
            for k, (key, (lo, hi)) in enumerate(rule.ranges.items()):
                out = F.lit(False)
                if lo is not None:
                    out = out | (t[rule.column] < F.lit(lo))
                if hi is not None:
                    out = out | (t[rule.column] > F.lit(hi))
                broken = (t[rule.by] == F.lit(key)) & out
                flags.append(((3, ri, k), rule.column, rule_range(key, lo, hi), broken, shown, ""))
        elif isinstance(rule, NoOverlap):
            overlap.append((ri, rule))

    found = []
    if flags:
        sums = [
            F.sum(F.coalesce(f[3], F.lit(False)).cast("long")).alias(f"f{i}") for i, f in enumerate(flags)
        ]
        counts = frame.agg(*sums).first()
        broken = [i for i in range(len(flags)) if counts[f"f{i}"]]
        first = _first_rows(frame, {i: flags[i][3] for i in broken})
        for i in broken:
            key, column, rule, _, shown, detail = flags[i]
            examples = [
                {"row": r[POS] + ROW_OFFSET, **{c: _plain(r[c]) for c in shown}} for r in first.get(i, [])
            ]
            found.append((key, Failure(name, column, rule, int(counts[f"f{i}"]), examples, detail)))
    for col in spec.columns:
        if col.unique and col.name in present:
            f = _unique_failure(spec, col, frame)
            if f is not None:
                found.append(((2, index[col.name], 2), f))
    for ri, rule in overlap:
        f = _overlap_failure(spec, rule, frame)
        if f is not None:
            found.append(((3, ri, 0), f))
    return found


def _first_rows(frame, flags: dict[int, object], n: int = MAX_EXAMPLES) -> dict[int, list]:
    """For each flag, the first `n` rows (by position) where it holds, in two jobs for all flags."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if not flags:
        return {}
    ids = F.array(*[F.when(F.coalesce(f, F.lit(False)), F.lit(i)) for i, f in flags.items()])
    hits = frame.select(POS, F.explode(ids).alias("__flag")).filter(F.col("__flag").isNotNull())
    rank = F.row_number().over(Window.partitionBy("__flag").orderBy(POS))
    picked = hits.withColumn("__rank", rank).filter(F.col("__rank") <= n).select("__flag", POS).collect()
    positions = sorted({r[POS] for r in picked})
    rows = {r[POS]: r for r in frame.filter(F.col(POS).isin(positions)).collect()}
    out: dict[int, list] = {}
    for r in sorted(picked, key=lambda r: (r["__flag"], r[POS])):
        out.setdefault(r["__flag"], []).append(rows[r[POS]])
    return out


def _examples(rows, shown: list[str], n: int = MAX_EXAMPLES) -> list[dict]:
    """The first `n` rows (by position) as {"row": number, column: value as read, ...}."""
    picked = rows.orderBy(POS).select(POS, *[f"`{c}`" for c in shown]).limit(n).collect()
    return [{"row": int(r[POS]) + ROW_OFFSET, **{c: _plain(r[c]) for c in shown}} for r in picked]


def _plain(v):
    """A value as read, shaped as the pandas validator shows it (timestamps as pandas Timestamps)."""
    import datetime as dt

    if isinstance(v, dt.datetime):
        return pd.Timestamp(v)
    if isinstance(v, dt.date):
        return pd.Timestamp(v)
    return v


def _unique_failure(spec: Table, col: Column, frame) -> Failure | None:
    from pyspark.sql import functions as F

    t = _TYPED + col.name
    repeated = frame.filter(F.col(t).isNotNull()).groupBy(t).count().filter(F.col("count") > 1).select(t)
    rows = frame.join(repeated, on=t, how="left_semi")
    k = rows.count()
    if not k:
        return None
    return Failure(spec.name, col.name, RULE_UNIQUE, int(k), _examples(rows, [col.name]))


def _overlap_failure(spec: Table, rule: NoOverlap, frame) -> Failure | None:
    """Rows whose [start, end] meets an earlier-starting row of the same key (ends inclusive)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    key, start, end = (F.col(_TYPED + c) for c in (rule.key, rule.start, rule.end))
    d = frame.filter(key.isNotNull() & start.isNotNull() & end.isNotNull() & (end >= start))
    w = Window.partitionBy(key).orderBy(start, end, F.col(POS))
    upto = w.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    d = d.withColumn("__max", F.max(end).over(upto))
    d = d.withColumn(
        "__holder", F.last(F.when(end == F.col("__max"), F.col(POS)), ignorenulls=True).over(upto)
    )
    d = d.withColumn("__prev_max", F.lag("__max").over(w)).withColumn(
        "__prev_holder", F.lag("__holder").over(w)
    )
    hits = d.filter(start <= F.col("__prev_max"))
    k = hits.count()
    if not k:
        return None
    shown = [rule.key, rule.start, rule.end]
    picked = hits.orderBy(POS).select(POS, "__prev_holder", *shown).limit(MAX_EXAMPLES).collect()
    examples = []
    for r in picked:
        other = frame.filter(F.col(POS) == r["__prev_holder"]).select(rule.start, rule.end).first()
        ex = {"row": int(r[POS]) + ROW_OFFSET, **{c: _plain(r[c]) for c in shown}}
        ex["overlaps"] = {
            "row": int(r["__prev_holder"]) + ROW_OFFSET,
            **{c: _plain(other[c]) for c in (rule.start, rule.end)},
        }
        examples.append(ex)
    return Failure(spec.name, rule.start, rule.name, int(k), examples)


def _reference_failures(spec: Table, checked: dict[str, _SparkChecked]) -> list[Failure]:
    from pyspark.sql import functions as F

    out = []
    mine = checked[spec.name]
    for col in spec.columns:
        if col.references is None or col.name not in mine.present:
            continue
        target, target_col = col.references
        other = checked.get(target)
        if other is None or target_col not in other.present:
            continue  # the missing table or column is reported already
        t = _TYPED + col.name
        known = (
            other.frame.select(F.col(_TYPED + target_col).alias(t)).filter(F.col(t).isNotNull()).distinct()
        )
        dangling = mine.frame.filter(F.col(t).isNotNull()).join(known, on=t, how="left_anti")
        k = dangling.count()
        if not k:
            continue
        unknown = dangling.groupBy(t).agg(F.min(POS).alias("first")).orderBy("first")
        n_unknown = unknown.count()
        values = [r[t] for r in unknown.limit(5).collect()]
        shown = ", ".join(_format_value(v) for v in values) + (" ..." if n_unknown > 5 else "")
        out.append(
            Failure(
                spec.name,
                col.name,
                rule_references(target, target_col),
                int(k),
                _examples(dangling, [col.name]),
                f"{n_unknown} unknown value(s): {shown}",
            )
        )
    return out


def _warn_unknown_metrics(frame, report: ValidationReport) -> None:
    from pyspark.sql import functions as F

    t = _TYPED + "metric"
    text = unknown_metrics_warning(
        r[t] for r in frame.select(t).filter(F.col(t).isNotNull()).distinct().collect()
    )
    if text:
        report.warnings.append(text)


def _warn_unrecognised_stages(checked: dict[str, _SparkChecked], report: ValidationReport) -> None:
    """`features.validation`'s stage-name warning: Spark counts stage names, deals and history steps,
    and `features.stages` reads those counts as it reads the pandas ones."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if "opportunities" not in checked or "opportunity_history" not in checked:
        return
    opps, hist = checked["opportunities"], checked["opportunity_history"]
    stage = F.col(_TYPED + "stage")
    names: dict[str, dict[str, int]] = {}
    for table, c in (("opportunities", opps), ("opportunity_history", hist)):
        if "stage" in c.present:
            # in order of first appearance, as pandas' value_counts(sort=False): the first spelling names a stage
            rows = (
                c.frame.select(stage.alias("name"), POS)
                .filter(F.col("name").isNotNull())
                .groupBy("name")
                .agg(F.count(F.lit(1)).alias("n"), F.min(POS).alias("first"))
                .orderBy("first")
                .collect()
            )
            names[table] = {r["name"]: int(r["n"]) for r in rows}

    carried: dict[str, tuple[bool, bool, bool]] = {}
    if {"stage", "is_closed"} <= set(opps.present):
        flag = {c: F.coalesce(F.col(_TYPED + c), F.lit(False)).cast("int") for c in ("is_closed", "is_won")}
        aggs = [F.min(flag["is_closed"]).alias("all_closed")]
        if "is_won" in opps.present:
            aggs += [F.min(flag["is_won"]).alias("all_won"), F.max(flag["is_won"]).alias("any_won")]
        for r in opps.frame.filter(stage.isNotNull()).groupBy(stage.alias("name")).agg(*aggs).collect():
            key = stage_key(r["name"])
            # without is_won, a deal's outcome is its stage's name, as in features.stages
            won = (
                (bool(r["all_won"]), bool(r["any_won"])) if "is_won" in opps.present else ("won" in key,) * 2
            )
            a, w, y = carried.get(key, (True, True, False))
            carried[key] = (a and bool(r["all_closed"]), w and won[0], y or won[1])

    ordered = {"opportunity_id", "changed_at", "stage"} <= set(hist.present)
    spelled = {n: stage_key(n) for per_name in names.values() for n in per_name}

    def history():
        h = hist.frame.select(
            F.col(_TYPED + "opportunity_id").alias("deal"),
            F.col(_TYPED + "changed_at").alias("at"),
            stage.alias("name"),
            POS,
        ).filter(F.col("deal").isNotNull() & F.col("name").isNotNull())
        keys = F.create_map(*[F.lit(x) for n, k in spelled.items() for x in (n, k)])
        # the features' order: by changed_at (missing last, as pandas sorts), then file order
        w = Window.partitionBy("deal").orderBy(F.col("at").asc_nulls_last(), F.col(POS))
        return h.withColumn("key", keys[F.col("name")]), w

    def steps(unsure: set[str]) -> tuple[dict[str, int], dict[str, int]]:
        if not ordered:
            return {}, {}
        h, w = history()
        deals = h.filter(F.col("name").isin([n for n, k in spelled.items() if k in unsure])).select("deal")
        h = h.join(deals.distinct(), on="deal", how="left_semi")
        prev, after = F.lag("name").over(w), F.lead("name").over(w)
        entry = ~F.coalesce(prev == F.col("name"), F.lit(False))
        exit_ = F.coalesce(after != F.col("name"), F.lit(False))
        rows = (
            h.select("key", entry.cast("long").alias("entry"), exit_.cast("long").alias("exit"))
            .groupBy("key")
            .agg(F.sum("entry").alias("entries"), F.sum("exit").alias("exits"))
            .collect()
        )
        return {r["key"]: int(r["entries"]) for r in rows}, {r["key"]: int(r["exits"]) for r in rows}

    def moves() -> dict[tuple[str, str], int]:
        if not ordered:
            return {}
        h, w = history()
        m = h.select(F.lag("key").over(w).alias("src"), F.col("key").alias("dst"))
        rows = m.filter(F.col("src").isNotNull() & (F.col("src") != F.col("dst"))).groupBy("src", "dst")
        return {(r["src"], r["dst"]): int(r["count"]) for r in rows.count().collect()}

    warning = unrecognised_stages_warning(*read_unrecognised_stages(names, carried, steps, moves))
    if warning:
        report.warnings.append(warning)


def _deal_owner_warnings(checked: dict[str, _SparkChecked]) -> list[str]:
    """`features.validation.deal_owner_warnings` on Spark: deals joined to their owner's first row in
    reps, the broken ones counted in one pass and only their first rows collected."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if "opportunities" not in checked or "reps" not in checked:
        return []
    opps, reps = checked["opportunities"], checked["reps"]
    if not {"rep_id", "hire_date"} <= set(reps.present) or "rep_id" not in opps.present:
        return []
    dates = [c for c in ("hire_date", "end_date") if c in reps.present]
    rep_id = F.col(_TYPED + "rep_id")
    # a repeated rep_id (a contract failure of its own) reads as its first row, as pandas' drop_duplicates
    first = F.row_number().over(Window.partitionBy(rep_id).orderBy(POS))
    owners = (
        reps.frame.filter(rep_id.isNotNull())
        .withColumn("__n", first)
        .filter(F.col("__n") == 1)
        .select(rep_id.alias("__owner"), *[F.col(_TYPED + c).alias(f"__owner_{c}") for c in dates])
    )
    deals = opps.frame.join(owners, rep_id == F.col("__owner"), "left")
    checks = []
    for column, rep_column, rule, detail, only in DEAL_OWNER_CHECKS:
        if column not in opps.present or rep_column not in dates or (only and only not in opps.present):
            continue
        mine, theirs = F.col(_TYPED + column), F.col(f"__owner_{rep_column}")
        broken = (mine < theirs) if rep_column == "hire_date" else (mine > theirs)
        if only:
            broken = broken & F.col(_TYPED + only)
        checks.append((column, rep_column, rule, detail, F.coalesce(broken, F.lit(False))))
    if not checks:
        return []
    counts = deals.agg(*[F.sum(c[4].cast("long")).alias(f"n{i}") for i, c in enumerate(checks)]).first()
    out = []
    for i, (column, rep_column, rule, detail, broken) in enumerate(checks):
        n = int(counts[f"n{i}"] or 0)
        if not n:
            continue
        shown = [c for c in deal_owner_shown(column) if c in opps.columns]
        picked = (
            deals.filter(broken)
            .orderBy(POS)
            .select(POS, *[f"`{c}`" for c in shown], f"__owner_{rep_column}")
            .limit(MAX_EXAMPLES)
            .collect()
        )
        examples = [
            {
                "row": int(r[POS]) + ROW_OFFSET,
                **{c: _plain(r[c]) for c in shown},
                rep_column: _plain(r[f"__owner_{rep_column}"]),
            }
            for r in picked
        ]
        out.append(deal_owner_warning(column, rule, detail, n, examples))
    return out


# --------------------------------------------------------------------------------------------
# Typing (the rules of features.validation's parsers, as Spark expressions)


def _parse(col: Column, c, spark_type: str):
    """(typed value, present-but-unparseable flag) of one column, from the type Spark read it as."""
    from pyspark.sql import functions as F

    kind = col.kind
    false = F.lit(False)
    if spark_type == "string":
        text = F.regexp_replace(c, r"^\s+|\s+$", "")
        present = c.isNotNull() & (text != "")
        if kind == "string":
            return F.when(c != "", c), false
        if kind == "number":
            value = F.when(text.rlike(_NUMBER_RE), text.try_cast("double"))
            value = F.when(~F.isnan(value) & (F.abs(value) < F.lit(float("inf"))), value)
            return value, present & value.isNull()
        if kind == "boolean":
            low = F.lower(text)
            value = F.when(low.isin(*_TRUE), True).when(low.isin(*_FALSE), False)
            return value, present & value.isNull()
        if kind == "date":
            value = F.when(text.rlike(_DATE_RE), text.try_cast("date"))
            return value, present & value.isNull()

        # timestamp: rebuilt from its parts as yyyy-MM-ddTHH:mm:ss[.f]+HH:MM, the one form Spark's
        # cast reads with every offset (it refuses an offset after a time without seconds)
        def part(i):
            return F.regexp_extract(text, _TIMESTAMP_RE, i)

        off = part(6)
        offset = (
            F.when(off == "", F.lit(""))
            .when(off == "Z", F.lit("+00:00"))
            .when(F.length(off) == 3, F.concat(off, F.lit(":00")))
            .when(F.length(off) == 5, F.concat(F.substring(off, 1, 3), F.lit(":"), F.substring(off, 4, 2)))
            .otherwise(off)
        )

        def two(g):
            return F.when(part(g) == "", F.lit("00")).otherwise(part(g))

        frac = F.when(part(5) == "", F.lit("")).otherwise(F.concat(F.lit("."), part(5)))
        canonical = F.concat(
            part(1), F.lit("T"), two(2), F.lit(":"), two(3), F.lit(":"), two(4), frac, offset
        )
        value = F.when(text.rlike(_TIMESTAMP_RE), canonical.try_cast("timestamp"))
        return value, present & value.isNull()
    present = c.isNotNull()
    numeric = (
        spark_type in ("tinyint", "smallint", "int", "bigint")
        or spark_type in ("float", "double")
        or spark_type.startswith("decimal")
    )
    integral = spark_type in ("tinyint", "smallint", "int", "bigint")
    if kind == "string":
        if integral:
            return c.cast("string"), false
        if numeric:  # 17.0 -> "17"; 17.5 is not an id
            whole = c == F.floor(c)
            return F.when(whole, c.cast("bigint").cast("string")), present & ~F.coalesce(whole, false)
        return F.lit(None).cast("string"), present
    if kind == "number":
        if numeric:
            d = c.cast("double")
            ok = ~F.isnan(d) & (F.abs(d) < F.lit(float("inf")))
            return F.when(ok, d), present & ~F.coalesce(ok, false)
        return F.lit(None).cast("double"), present
    if kind == "boolean":
        if spark_type == "boolean":
            return c, false
        if numeric:
            value = F.when(c == 1, True).when(c == 0, False)
            return value, present & value.isNull()
        return F.lit(None).cast("boolean"), present
    if kind == "date":
        if spark_type == "date":
            return c, false
        if spark_type.startswith("timestamp"):
            ts = c.cast("timestamp_ntz")
            has_time = ts != F.date_trunc("day", ts).cast("timestamp_ntz")
            return F.when(~has_time, F.to_date(ts)), present & F.coalesce(has_time, false)
        return F.lit(None).cast("date"), present
    # timestamp
    if spark_type in ("timestamp", "date", "timestamp_ntz"):
        return c.cast("timestamp"), false  # without an offset: UTC (the session's time zone)
    return F.lit(None).cast("timestamp"), present


_SPARK_TYPES = {
    "string": "string",
    "number": "double",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp",
}


def _finish(spec: Table, checked: _SparkChecked):
    """The typed table: contract columns in spec order (absent optional ones all null), reps'
    attributes after them as read, then POS."""
    from pyspark.sql import functions as F

    cols = []
    for col in spec.columns:
        if col.name in checked.present:
            cols.append(F.col(_TYPED + col.name).alias(col.name))
        else:
            cols.append(F.lit(None).cast(_SPARK_TYPES[col.kind]).alias(col.name))
    if spec.open_columns:
        cols += [F.col(f"`{c}`") for c in checked.columns if c not in spec.column_names]
    return checked.frame.select(*cols, POS)


def _to_pandas(spec: Table, frame) -> pd.DataFrame | None:
    """A typed Spark table as `features.io.load_folder` types it (read order kept)."""
    if frame is None:
        return None
    pdf = frame.orderBy(POS).drop(POS).toPandas()
    out = {}
    for col in spec.columns:
        s = pdf[col.name]
        if col.kind == "string":
            s = s.astype("str")  # pandas 3: missing stays missing
        elif col.kind == "number":
            s = pd.to_numeric(s).astype("float64")
        elif col.kind == "boolean":
            s = s.astype("boolean")
            if not s.isna().any():
                s = s.astype(bool)
        elif col.kind == "date":
            s = pd.to_datetime(s).astype(f"datetime64[{DATETIME_UNIT}]")
        else:
            s = pd.to_datetime(s, utc=True).astype(f"datetime64[{DATETIME_UNIT}, UTC]")
        out[col.name] = s
    for c in pdf.columns:
        if c not in out:
            out[c] = pdf[c]
    return pd.DataFrame(out).reset_index(drop=True)
