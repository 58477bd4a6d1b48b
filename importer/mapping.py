"""Mapping files: YAML that says, for each contract table, where its columns come from in an export.

`load_mapping` checks the file against the schema below before anything is read, and names
the line and key of every problem (unknown keys, unknown contract tables or columns, malformed
entries). docs/import.md documents every option with an example.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from features.contract import TABLES
from importer import shipped_mappings
from importer.transforms import (
    AGGREGATES,
    CURRENCY_OPTIONS,
    DECIMAL_OPTIONS,
    ID_METHODS,
    NORMALIZE_STEPS,
    NUMBER_KEYS,
    PERIOD_MONTHS,
    THOUSANDS_OPTIONS,
    UNMAPPED,
    NumberFormat,
    normalize_keys,
    parse_kind,
)
from repradar.errors import UserError

MAPPING_VERSION = 1
TOP_KEYS = ("version", "name", "description", "notes", "csv", "tables", "quota_policy")
TABLE_KEYS = ("source", "sources", "columns", "attributes", "where", "optional", "only_known_reps")
SOURCE_KEYS = ("file", "columns", "attributes", "where", "optional")
SPEC_KEYS = (
    "from",
    "value",
    "lookup",
    "values",
    "normalize",
    "unmapped",
    "format",
    "number",
    "id",
    "default",
    "missing_when",
    "end_of_period",
)
LOOKUP_KEYS = ("file", "key", "match", "column", "normalize", "agg", "missing", "format")
WHERE_KEYS = ("column", "in", "not_in", "in_file")
CSV_KEYS = ("delimiter", "encoding")
POLICY_KEYS = (
    "kind",
    "period",
    "amount",
    "share",
    "basis",
    "lookback",
    "fallback",
    "fallback_amount",
    "from",
    "to",
    "year_start_month",
)
POLICY_KINDS = ("fixed", "trailing_share")
POLICY_PERIODS = ("quarter", "month")
# Tables whose rows belong to a rep: `only_known_reps` may drop rows of people who are not reps.
REP_TABLES = ("quotas", "opportunities", "activities", "engagement", "interventions")


class MappingFileError(UserError):
    """A mapping file that breaks the mapping schema; lists every problem with its line and key."""

    def __init__(self, path: str, problems: list[str], what: str = "mapping file"):
        self.problems = list(problems)
        lines = [f"{what} {path} is not valid ({len(problems)} problem(s)):"]
        lines += [f"  - {p}" for p in problems]
        lines.append("See docs/import.md for every mapping option.")
        super().__init__("\n".join(lines))


# ---------------------------------------------------------------- the mapping as data


@dataclass(frozen=True)
class Loc:
    """Where an entry sits in the mapping file, for messages."""

    file: str
    line: int | None
    path: str

    def __str__(self) -> str:
        where = f"{self.file} line {self.line}" if self.line else self.file
        return f"{where} ({self.path})" if self.path else where


@dataclass(frozen=True)
class Lookup:
    """A value taken from another source file by key (or aggregated over a whole column)."""

    file: str
    column: str
    key: str | None
    match: str | None
    normalize: tuple[str, ...]
    agg: str | None
    missing: str
    format: str | None
    loc: Loc

    def describe(self) -> str:
        if self.key is None:
            return f"the {self.agg} of {self.file} column {self.column}"
        how = f"the {self.agg} of " if self.agg else ""
        on = self.key if self.match == self.key else f"{self.key} = {self.match}"
        return f"{how}{self.file} column {self.column} matched on {on}"


@dataclass(frozen=True)
class Where:
    """A row condition: `column` is `in` / `not_in` a list, or `in_file` another file's column.

    A source's `where` keeps the rows meeting its conditions; a column's `missing_when` blanks them.
    """

    column: str
    loc: Loc
    isin: tuple[str, ...] | None = None
    not_in: tuple[str, ...] | None = None
    in_file: tuple[str, str] | None = None

    def describe(self) -> str:
        if self.isin is not None:
            return f"{self.column} in [{', '.join(self.isin)}]"
        if self.not_in is not None:
            return f"{self.column} not in [{', '.join(self.not_in)}]"
        assert self.in_file is not None
        return f"{self.column} in {self.in_file[0]} column {self.in_file[1]}"


@dataclass(frozen=True)
class ColumnSpec:
    """How one contract column (or reps attribute) is made from a source row."""

    target: str
    kind: str
    loc: Loc
    source: str | None = None
    has_value: bool = False
    value: Any = None
    lookup: Lookup | None = None
    values: dict[str, Any] | None = None
    normalize: tuple[str, ...] = ()  # value-map keys and cells compared after these steps
    unmapped: str = "error"
    format: str | None = None
    number: NumberFormat | None = None
    id: str | None = None
    default: ColumnSpec | None = None
    end_of_period: str | None = None
    # Rows meeting every condition count as having no value here (so `default` applies), e.g. the
    # 0 an export writes as the value of a lost deal.
    missing_when: tuple[Where, ...] = ()

    def describe(self) -> str:
        if self.source is not None:
            return f"column {self.source}"
        if self.has_value:
            return f"the constant {self.value!r}"
        assert self.lookup is not None
        return self.lookup.describe()

    def source_columns(self) -> list[str]:
        """Columns of the mapped source file this spec reads (for `default` too)."""
        cols = []
        if self.source is not None:
            cols.append(self.source)
        if self.lookup is not None and self.lookup.match is not None:
            cols.append(self.lookup.match)
        cols += [w.column for w in self.missing_when]
        if self.default is not None:
            cols += self.default.source_columns()
        return cols


@dataclass(frozen=True)
class SourceMap:
    """One source file feeding a contract table."""

    file: str
    columns: dict[str, ColumnSpec]
    attributes: dict[str, ColumnSpec]
    where: tuple[Where, ...]
    optional: bool
    loc: Loc


@dataclass(frozen=True)
class TableMap:
    name: str
    sources: tuple[SourceMap, ...]
    only_known_reps: bool
    loc: Loc

    @property
    def optional(self) -> bool:
        """All sources optional: the table is skipped when none of its files is in the export."""
        return all(s.optional for s in self.sources)


@dataclass(frozen=True)
class QuotaPolicy:
    """How quotas are derived for an export without them (docs/import.md, "Quota policy")."""

    kind: str
    period: str = "quarter"
    amount: float | None = None
    share: float | None = None
    basis: str = "rep"
    lookback: int = 4
    fallback: str = "team"
    fallback_amount: float | None = None
    start: dt.date | None = None
    end: dt.date | None = None
    year_start_month: int = 1

    def describe(self) -> str:
        if self.kind == "fixed":
            text = f"fixed: {self.amount:,.2f} per rep per {self.period}"
        else:
            whose = "the rep's" if self.basis == "rep" else "the team's per-rep"
            text = (
                f"trailing_share: {self.share:g} x {whose} average won amount over the previous "
                f"{self.lookback} {self.period}s; without history: {self.fallback}"
            )
            if self.fallback_amount is not None:
                text += f", else {self.fallback_amount:,.2f}"
        if self.start or self.end:
            text += (
                f"; periods from {self.start or 'the first closed deal'} to {self.end or 'the export end'}"
            )
        return text

    def to_dict(self) -> dict:
        d = asdict(self)
        d["from"], d["to"] = d.pop("start"), d.pop("end")
        if self.kind == "fixed":  # the trailing_share knobs mean nothing here
            for k in ("share", "basis", "lookback", "fallback", "fallback_amount"):
                d.pop(k)
        for k in ("from", "to"):
            if d[k] is not None:
                d[k] = d[k].isoformat()
        return d


@dataclass(frozen=True)
class CsvOptions:
    delimiter: str = ","
    encoding: str = "utf-8-sig"


@dataclass(frozen=True)
class Mapping:
    path: Path
    name: str
    description: str
    tables: dict[str, TableMap]
    quota_policy: QuotaPolicy | None
    notes: tuple[str, ...] = ()
    csv: CsvOptions = field(default_factory=CsvOptions)

    def files(self) -> list[str]:
        """Every source file the mapping names (tables, look-ups, filters), in order of first use."""
        names: list[str] = []

        def add(n):
            if n not in names:
                names.append(n)

        def spec_files(spec: ColumnSpec | None):
            if spec is None:
                return
            if spec.lookup is not None:
                add(spec.lookup.file)
            for w in spec.missing_when:
                if w.in_file:
                    add(w.in_file[0])
            spec_files(spec.default)

        for t in self.tables.values():
            for s in t.sources:
                add(s.file)
                for spec in (*s.columns.values(), *s.attributes.values()):
                    spec_files(spec)
                for w in s.where:
                    if w.in_file:
                        add(w.in_file[0])
        return names


# ---------------------------------------------------------------- YAML with line numbers


class _Loader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false are booleans, so `Yes:` or `No:` stay text (stage names)."""


_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


@dataclass
class _Doc:
    """The parsed YAML plus the line of every entry and the raw text of every scalar, by key path."""

    data: Any
    lines: dict[tuple, int]
    raw: dict[tuple, str]


def _convert(node, loader, path: tuple, lines: dict, raw: dict):
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out = {}
        for k, v in node.value:
            key = k.value if isinstance(k, yaml.ScalarNode) else str(loader.construct_object(k, deep=True))
            out[key] = _convert(v, loader, (*path, key), lines, raw)
            lines[(*path, key)] = k.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(v, loader, (*path, i), lines, raw) for i, v in enumerate(node.value)]
    raw[path] = node.value
    return loader.construct_object(node, deep=True)


def _parse_yaml(text: str, name: str) -> _Doc:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        lines: dict[tuple, int] = {}
        raw: dict[tuple, str] = {}
        data = _convert(node, loader, (), lines, raw) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise MappingFileError(name, [f"{name}{where}: not valid YAML: {problem}"]) from None
    finally:
        loader.dispose()
    return _Doc(data, lines, raw)


# ---------------------------------------------------------------- schema checks


class _Checker:
    """Walks the parsed YAML, builds the mapping objects and collects every schema problem."""

    def __init__(self, doc: _Doc, name: str):
        self.doc = doc
        self.name = name
        self.problems: list[str] = []

    def loc(self, path: tuple) -> Loc:
        line = None
        p = path
        while p and line is None:
            line = self.doc.lines.get(p)
            p = p[:-1]
        return Loc(self.name, line, ".".join(str(x) for x in path))

    def err(self, path: tuple, message: str) -> None:
        self.problems.append(f"{self.loc(path)}: {message}")

    def keys(self, obj: dict, path: tuple, allowed: tuple[str, ...], what: str) -> list[str]:
        unknown = [k for k in obj if k not in allowed]
        for k in unknown:
            hint = _suggest(k, allowed)
            tip = f"; did you mean '{hint[0]}'?" if hint else f"; allowed: {', '.join(allowed)}"
            self.err((*path, k), f"unknown key '{k}' in {what}{tip}")
        return unknown

    def mapping_at(self, obj, path: tuple, what: str) -> dict | None:
        if not isinstance(obj, dict):
            self.err(path, f"{what} must be a mapping of keys to values, not {_kind(obj)}")
            return None
        return obj

    def text_at(self, obj, path: tuple, what: str, *, optional: bool = False) -> str | None:
        if obj is None and optional:
            return None
        if (
            isinstance(obj, bool)
            or not isinstance(obj, str | int | float)
            or (isinstance(obj, str) and not obj)
        ):
            self.err(path, f"{what} must be a non-empty text, not {_kind(obj)}")
            return None
        return self.doc.raw.get(path, str(obj))

    def choice(self, obj, path: tuple, options: tuple[str, ...], what: str) -> str | None:
        if obj not in options:
            self.err(path, f"{what} must be one of {', '.join(options)}, not {obj!r}")
            return None
        return obj

    def boolean(self, obj, path: tuple, what: str) -> bool:
        if not isinstance(obj, bool):
            self.err(path, f"{what} must be true or false, not {obj!r}")
            return False
        return obj

    # -- top level

    def mapping(self, path: Path) -> Mapping | None:
        data = self.doc.data
        if not isinstance(data, dict):
            self.err((), f"the file must be a YAML mapping with a `tables` key, not {_kind(data)}")
            return None
        self.keys(data, (), TOP_KEYS, "the mapping")
        version = data.get("version", MAPPING_VERSION)
        if version != MAPPING_VERSION:
            self.err(("version",), f"version must be {MAPPING_VERSION}, not {version!r}")
        notes = data.get("notes", [])
        if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
            self.err(("notes",), "notes must be a list of texts")
            notes = []
        csv = CsvOptions()
        if "csv" in data and self.mapping_at(data["csv"], ("csv",), "csv"):
            self.keys(data["csv"], ("csv",), CSV_KEYS, "csv")
            csv = CsvOptions(
                delimiter=str(data["csv"].get("delimiter", ",")),
                encoding=str(data["csv"].get("encoding", "utf-8-sig")),
            )
        tables: dict[str, TableMap] = {}
        raw_tables = data.get("tables")
        if raw_tables is None:
            self.err((), "missing key `tables` (one entry per contract table)")
        elif self.mapping_at(raw_tables, ("tables",), "tables"):
            for tname, tdef in raw_tables.items():
                t = self.table(tname, tdef, ("tables", tname))
                if t is not None:
                    tables[tname] = t
            for required in ("reps", "opportunities"):
                if required not in raw_tables:
                    self.err(("tables",), f"the contract table `{required}` is required but not mapped")
        policy = None
        if data.get("quota_policy") is not None:
            policy = self.policy(data["quota_policy"], ("quota_policy",))
        return Mapping(
            path=path,
            name=str(data.get("name") or path.stem),
            description=str(data.get("description") or ""),
            tables=tables,
            quota_policy=policy,
            notes=tuple(notes),
            csv=csv,
        )

    def table(self, tname: str, tdef, path: tuple) -> TableMap | None:
        if tname not in TABLES:
            hint = _suggest(tname, TABLES)
            tip = f"; did you mean '{hint[0]}'?" if hint else f"; contract tables: {', '.join(TABLES)}"
            self.err(path, f"unknown contract table '{tname}'{tip}")
            return None
        if not self.mapping_at(tdef, path, f"table {tname}"):
            return None
        self.keys(tdef, path, TABLE_KEYS, f"table {tname}")
        only_known = self.boolean(
            tdef.get("only_known_reps", False), (*path, "only_known_reps"), "only_known_reps"
        )
        if only_known and tname not in REP_TABLES:
            self.err((*path, "only_known_reps"), f"only_known_reps applies to {', '.join(REP_TABLES)}")
        sources: list[SourceMap] = []
        if "sources" in tdef:
            for k in ("source", "columns", "attributes", "where", "optional"):
                if k in tdef:
                    self.err((*path, k), f"`{k}` goes inside each entry of `sources` when `sources` is used")
            if not isinstance(tdef["sources"], list) or not tdef["sources"]:
                self.err((*path, "sources"), "sources must be a non-empty list of {file, columns, ...}")
            else:
                for i, sdef in enumerate(tdef["sources"]):
                    spath = (*path, "sources", i)
                    if self.mapping_at(sdef, spath, "a source"):
                        self.keys(sdef, spath, SOURCE_KEYS, "a source")
                        s = self.source(tname, sdef.get("file"), sdef, spath, file_path=(*spath, "file"))
                        if s:
                            sources.append(s)
        elif "source" in tdef:
            s = self.source(tname, tdef.get("source"), tdef, path, file_path=(*path, "source"))
            if s:
                sources.append(s)
        else:
            self.err(path, f"table {tname} needs `source: FILE` (or a `sources:` list)")
        return TableMap(tname, tuple(sources), only_known, self.loc(path))

    def source(self, tname: str, file, sdef: dict, path: tuple, file_path: tuple) -> SourceMap | None:
        fname = self.text_at(file, file_path, "the source file name")
        spec = TABLES[tname]
        columns: dict[str, ColumnSpec] = {}
        attributes: dict[str, ColumnSpec] = {}
        cdefs = sdef.get("columns")
        if cdefs is None:
            self.err(path, f"table {tname} needs `columns:` (contract column: source column or spec)")
        elif self.mapping_at(cdefs, (*path, "columns"), "columns"):
            for cname, cdef in cdefs.items():
                cpath = (*path, "columns", cname)
                if cname not in spec.column_names:
                    hint = _suggest(cname, spec.column_names)
                    tip = f"did you mean '{hint[0]}'? " if hint else ""
                    extra = " Other reps columns go under `attributes:`." if spec.open_columns else ""
                    self.err(
                        cpath,
                        f"'{cname}' is not a column of the contract table {tname}; {tip}"
                        f"its columns: {', '.join(spec.column_names)}.{extra}",
                    )
                    continue
                c = self.spec(cname, spec.column(cname).kind, cdef, cpath)
                if c is not None:
                    columns[cname] = c
            for col in spec.columns:
                if col.required and col.name not in cdefs:
                    self.err((*path, "columns"), f"required column {tname}.{col.name} is not mapped")
        adefs = sdef.get("attributes")
        if adefs is not None and self.mapping_at(adefs, (*path, "attributes"), "attributes"):
            if not spec.open_columns:
                self.err((*path, "attributes"), f"only reps has attributes; {tname} has fixed columns")
            for aname, adef in adefs.items():
                apath = (*path, "attributes", aname)
                if aname in spec.column_names:
                    self.err(apath, f"'{aname}' is a contract column of {tname}; map it under `columns`")
                    continue
                if aname != aname.lower() or not re.fullmatch(r"[a-z][a-z0-9_]*", aname):
                    self.err(apath, f"attribute name '{aname}' must be lower-case letters, digits and _")
                    continue
                a = self.spec(aname, "string", adef, apath)
                if a is not None:
                    attributes[aname] = a
        where = self.conditions(sdef.get("where", []), (*path, "where"), "where")
        optional = self.boolean(sdef.get("optional", False), (*path, "optional"), "optional")
        if optional and spec.required and tname != "quotas":
            self.err((*path, "optional"), f"{tname} is a required contract table; it cannot be optional")
        if fname is None:
            return None
        return SourceMap(fname, columns, attributes, tuple(where), optional, self.loc(path))

    def spec(self, target: str, kind: str, cdef, path: tuple, *, nested: bool = False) -> ColumnSpec | None:
        loc = self.loc(path)
        if isinstance(cdef, str):
            if not cdef:
                self.err(path, "an empty source column name")
                return None
            return ColumnSpec(target, kind, loc, source=self.doc.raw.get(path, cdef))
        if not isinstance(cdef, dict):
            if nested and cdef is not None:  # `default: 0` is a constant
                return self._constant(target, kind, cdef, path, loc)
            self.err(
                path,
                f"'{target}' must be a source column name or a mapping with one of from / value / lookup, "
                f"not {_kind(cdef)}",
            )
            return None
        unknown = self.keys(cdef, path, SPEC_KEYS, f"column {target}")
        given = [k for k in ("from", "value", "lookup") if k in cdef]
        if not given and unknown:  # a misspelt `from` is reported once, as an unknown key
            return None
        if len(given) != 1:
            self.err(
                path,
                f"'{target}' needs exactly one of from / value / lookup"
                + (f"; found {', '.join(given)}" if given else ""),
            )
            return None
        kw: dict[str, Any] = {}
        if "from" in cdef:
            kw["source"] = self.text_at(cdef["from"], (*path, "from"), "from (a source column)")
            if kw["source"] is None:
                return None
        elif "value" in cdef:
            c = self._constant(target, kind, cdef["value"], (*path, "value"), loc)
            if c is None:
                return None
            kw.update(has_value=True, value=c.value)
        else:
            lk = self.lookup(cdef["lookup"], (*path, "lookup"))
            if lk is None:
                return None
            kw["lookup"] = lk
        if "values" in cdef:
            vals = cdef["values"]
            if not isinstance(vals, dict) or not vals:
                self.err(
                    (*path, "values"), "values must be a non-empty mapping of source value: contract value"
                )
            else:
                kw["values"] = {str(k): v for k, v in vals.items()}
        if "normalize" in cdef:
            kw["normalize"] = self.normalize_steps(cdef["normalize"], (*path, "normalize"))
            if "values" not in cdef:
                self.err((*path, "normalize"), "normalize (on a column) only makes sense with `values`")
            elif isinstance(kw.get("values"), dict):
                self.clashing_keys(kw["values"], kw["normalize"], (*path, "values"))
        if "unmapped" in cdef:
            kw["unmapped"] = (
                self.choice(cdef["unmapped"], (*path, "unmapped"), UNMAPPED, "unmapped") or "error"
            )
            if "values" not in cdef:
                self.err((*path, "unmapped"), "unmapped only makes sense with `values`")
        if "format" in cdef:
            if kind not in ("date", "timestamp"):
                self.err((*path, "format"), f"format is for date and timestamp columns; {target} is a {kind}")
            kw["format"] = self.text_at(cdef["format"], (*path, "format"), "format (a strptime format)")
        if "number" in cdef:
            if kind != "number":
                self.err((*path, "number"), f"number is for number columns; {target} is a {kind}")
            kw["number"] = self.number_format(cdef["number"], (*path, "number"))
        if "id" in cdef:
            if kind != "string":
                self.err((*path, "id"), f"id is for text columns; {target} is a {kind}")
            kw["id"] = self.choice(cdef["id"], (*path, "id"), ID_METHODS, "id")
        if "end_of_period" in cdef:
            if kind != "date":
                self.err((*path, "end_of_period"), f"end_of_period is for date columns; {target} is a {kind}")
            kw["end_of_period"] = self.choice(
                cdef["end_of_period"], (*path, "end_of_period"), tuple(PERIOD_MONTHS), "end_of_period"
            )
        if "missing_when" in cdef:
            kw["missing_when"] = self.conditions(
                cdef["missing_when"], (*path, "missing_when"), "missing_when"
            )
        if "default" in cdef:
            kw["default"] = self.spec(target, kind, cdef["default"], (*path, "default"), nested=True)
        return ColumnSpec(target, kind, loc, **kw)

    def _constant(self, target: str, kind: str, value, path: tuple, loc: Loc) -> ColumnSpec | None:
        if isinstance(value, dict | list) or value is None:
            self.err(path, f"a constant for {target} must be a single value, not {_kind(value)}")
            return None
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            value = value.isoformat()
        if isinstance(value, str) and kind != "string":
            value = self.doc.raw.get(path, value)
        _, errors = parse_kind(pd.Series([value], dtype=object), kind)
        if errors:
            self.err(path, f"the constant {value!r} for {target} {errors[0].message.split(';')[0]}")
            return None
        return ColumnSpec(target, kind, loc, has_value=True, value=value)

    def lookup(self, ldef, path: tuple) -> Lookup | None:
        if not self.mapping_at(ldef, path, "lookup"):
            return None
        self.keys(ldef, path, LOOKUP_KEYS, "lookup")
        file = self.text_at(ldef.get("file"), (*path, "file"), "lookup.file (a source file)")
        column = self.text_at(ldef.get("column"), (*path, "column"), "lookup.column (the column to take)")
        key = self.text_at(ldef.get("key"), (*path, "key"), "lookup.key", optional=True)
        match = self.text_at(ldef.get("match"), (*path, "match"), "lookup.match", optional=True)
        agg = ldef.get("agg")
        if agg is not None:
            agg = self.choice(agg, (*path, "agg"), AGGREGATES, "agg")
        if key is None and match is not None:
            self.err(path, "lookup.match needs lookup.key (the column of the look-up file to match against)")
        if key is None and agg is None and "agg" not in ldef:
            self.err(path, "a lookup without `key` takes one value from the whole column: it needs `agg`")
        norm = self.normalize_steps(ldef.get("normalize", []), (*path, "normalize"))
        missing = self.choice(ldef.get("missing", "error"), (*path, "missing"), ("error", "empty"), "missing")
        fmt = self.text_at(ldef.get("format"), (*path, "format"), "lookup.format", optional=True)
        if file is None or column is None:
            return None
        return Lookup(
            file=file,
            column=column,
            key=key,
            match=(match or key) if key is not None else None,
            normalize=norm,
            agg=agg,
            missing=missing or "error",
            format=fmt,
            loc=self.loc(path),
        )

    def normalize_steps(self, norm, path: tuple) -> tuple[str, ...]:
        """`normalize: [strip, lower]` (or one step as text), for look-ups and value maps."""
        if isinstance(norm, str):
            norm = [norm]
        if not isinstance(norm, list):
            self.err(path, f"normalize must be a list of: {', '.join(NORMALIZE_STEPS)}")
            return ()
        for i, step in enumerate(norm):
            self.choice(step, (*path, i), NORMALIZE_STEPS, "a normalize step")
        return tuple(s for s in norm if s in NORMALIZE_STEPS)

    def clashing_keys(self, values: dict, steps: tuple[str, ...], path: tuple) -> None:
        """Two value-map keys that normalise to one key must map to the same value."""
        seen: dict[str, tuple[str, Any]] = {}
        for k, v in values.items():
            n = normalize_keys(pd.Series([k], dtype=object), steps).iloc[0]
            if n in seen and seen[n][1] != v:
                self.err(
                    path,
                    f"keys {seen[n][0]!r} and {k!r} are the same after normalize ({', '.join(steps)}) "
                    f"but map to {seen[n][1]!r} and {v!r}; keep one",
                )
            seen.setdefault(n, (k, v))

    def number_format(self, ndef, path: tuple) -> NumberFormat | None:
        """`number: {currency: strip, thousands: ",", decimal: "."}`: how amounts are written."""
        if not self.mapping_at(ndef, path, "number"):
            return None
        self.keys(ndef, path, NUMBER_KEYS, "number")
        currency = self.choice(
            ndef.get("currency", "none"), (*path, "currency"), CURRENCY_OPTIONS, "currency"
        )
        thousands = ndef.get("thousands", "")
        thousands = "" if thousands is None else thousands
        ungrouped = "thousands" in ndef and thousands == ""
        if thousands not in THOUSANDS_OPTIONS:
            shown = ", ".join(repr(o) for o in THOUSANDS_OPTIONS)
            self.err((*path, "thousands"), f"thousands must be one of {shown} (quoted), not {thousands!r}")
            thousands = None
        decimal = ndef.get("decimal", ".")
        if decimal not in DECIMAL_OPTIONS:
            self.err((*path, "decimal"), f'decimal must be "." or "," (quoted), not {decimal!r}')
            decimal = None
        if thousands is not None and decimal is not None and thousands == decimal:
            self.err(path, f"thousands and decimal are both {decimal!r}; they must differ")
            return None
        if currency is None or thousands is None or decimal is None:
            return None
        return NumberFormat(currency=currency, thousands=thousands, decimal=decimal, ungrouped=ungrouped)

    def conditions(self, wdefs, path: tuple, key: str) -> tuple[Where, ...]:
        """A list of conditions (or one), all of which a row must meet: `where` and `missing_when`."""
        if isinstance(wdefs, dict):
            wdefs = [wdefs]
        if not isinstance(wdefs, list):
            self.err(path, f"{key} must be a list of conditions {{column, in | not_in | in_file}}")
            return ()
        found = (self.where(wdef, (*path, i), key) for i, wdef in enumerate(wdefs))
        return tuple(w for w in found if w)

    def where(self, wdef, path: tuple, key: str = "where") -> Where | None:
        if not self.mapping_at(wdef, path, f"a {key} condition"):
            return None
        self.keys(wdef, path, WHERE_KEYS, f"a {key} condition")
        column = self.text_at(wdef.get("column"), (*path, "column"), f"{key}.column")
        given = [k for k in ("in", "not_in", "in_file") if k in wdef]
        if len(given) != 1:
            self.err(path, f"a {key} condition needs exactly one of in / not_in / in_file")
            return None
        kw: dict[str, Any] = {}
        k = given[0]
        if k in ("in", "not_in"):
            vals = wdef[k]
            if not isinstance(vals, list):
                vals = [vals]
            raws = tuple(self.doc.raw.get((*path, k, i), str(v)) for i, v in enumerate(vals))
            if not isinstance(wdef[k], list):
                raws = (self.doc.raw.get((*path, k), str(wdef[k])),)
            kw["isin" if k == "in" else "not_in"] = raws
        else:
            f = wdef["in_file"]
            if not isinstance(f, dict) or set(f) != {"file", "column"}:
                self.err((*path, "in_file"), "in_file must be {file: FILE, column: COLUMN}")
                return None
            kw["in_file"] = (str(f["file"]), str(f["column"]))
        if column is None:
            return None
        return Where(column, self.loc(path), **kw)

    def policy(self, pdef, path: tuple) -> QuotaPolicy | None:
        if not self.mapping_at(pdef, path, "quota_policy"):
            return None
        self.keys(pdef, path, POLICY_KEYS, "quota_policy")
        kind = self.choice(pdef.get("kind"), (*path, "kind"), POLICY_KINDS, "quota_policy.kind")
        period = self.choice(pdef.get("period", "quarter"), (*path, "period"), POLICY_PERIODS, "period")

        def number(key, *, positive=True, integer=False):
            v = pdef.get(key)
            if v is None:
                return None
            if isinstance(v, str):  # `5e4` is text to YAML 1.1
                try:
                    v = float(v)
                except ValueError:
                    pass
            if isinstance(v, bool) or not isinstance(v, int | float) or (positive and v <= 0):
                self.err((*path, key), f"{key} must be a {'positive ' if positive else ''}number, not {v!r}")
                return None
            if integer and int(v) != v:
                self.err((*path, key), f"{key} must be a whole number, not {v!r}")
                return None
            return int(v) if integer else float(v)

        def date(key):
            v = pdef.get(key)
            if v is None:
                return None
            if isinstance(v, dt.date):
                return v if not isinstance(v, dt.datetime) else v.date()
            try:
                return dt.date.fromisoformat(str(v))
            except ValueError:
                self.err((*path, key), f"{key} must be a date like 2017-04-01, not {v!r}")
                return None

        amount = number("amount")
        share = number("share")
        lookback = number("lookback", integer=True) or 4
        fallback_amount = number("fallback_amount")
        ysm = number("year_start_month", integer=True) or 1
        if not 1 <= ysm <= 12:
            self.err((*path, "year_start_month"), "year_start_month must be 1..12")
        basis = self.choice(pdef.get("basis", "rep"), (*path, "basis"), ("rep", "team"), "basis")
        fallback = self.choice(
            pdef.get("fallback", "team"), (*path, "fallback"), ("team", "amount", "skip"), "fallback"
        )
        if kind == "fixed":
            if amount is None:
                self.err(path, "a fixed quota policy needs `amount` (per rep and period)")
            for k in ("share", "basis", "lookback", "fallback", "fallback_amount"):
                if k in pdef:
                    self.err((*path, k), f"{k} is for kind trailing_share, not fixed")
        elif kind == "trailing_share":
            if share is None:
                self.err(
                    path, "a trailing_share quota policy needs `share` (e.g. 1.0 = the trailing average)"
                )
            if "amount" in pdef:
                self.err((*path, "amount"), "amount is for kind fixed; use fallback_amount here")
            if fallback == "amount" and fallback_amount is None:
                self.err(path, "fallback: amount needs `fallback_amount`")
        start, end = date("from"), date("to")
        if start and end and start > end:
            self.err(path, f"from ({start}) is after to ({end})")
        if kind is None or period is None:
            return None
        return QuotaPolicy(
            kind=kind,
            period=period,
            amount=amount,
            share=share,
            basis=basis or "rep",
            lookback=lookback,
            fallback=fallback or "team",
            fallback_amount=fallback_amount,
            start=start,
            end=end,
            year_start_month=ysm,
        )


def _suggest(word: str, options) -> list[str]:
    """The likeliest intended option: a transposition (`form` -> `from`) first, else the closest."""
    swapped = [o for o in options if sorted(o) == sorted(word)]
    return swapped[:1] or difflib.get_close_matches(word, list(options), n=1)


def _kind(obj) -> str:
    if obj is None:
        return "nothing"
    if isinstance(obj, dict):
        return "a mapping"
    if isinstance(obj, list):
        return "a list"
    return f"{type(obj).__name__} {obj!r}"


# ---------------------------------------------------------------- entry points


def resolve_mapping_path(mapping: str | Path) -> Path:
    """A mapping file path, or the name of a shipped mapping (`salesforce`, `maven_crm`)."""
    p = Path(mapping)
    if p.exists():
        return p
    shipped = shipped_mappings()
    if str(mapping) in shipped:
        return shipped[str(mapping)]
    names = ", ".join(shipped)
    raise UserError(f"mapping file {mapping} does not exist; give a path or a shipped mapping ({names})")


def load_mapping(mapping: str | Path) -> Mapping:
    """Read and check a mapping file (or a shipped mapping by name); raise MappingFileError listing every problem."""
    path = resolve_mapping_path(mapping)
    if path.is_dir():
        raise UserError(f"mapping {path} is a folder; give a YAML file")
    raw = path.read_bytes().removeprefix(b"\xef\xbb\xbf")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise UserError(
            f"mapping file {path.name} is not UTF-8 text (line {line}, byte 0x{raw[exc.start]:02x}); "
            "save it as UTF-8 (in Notepad: Save as, Encoding UTF-8)"
        ) from None
    doc = _parse_yaml(text, path.name)
    checker = _Checker(doc, path.name)
    result = checker.mapping(path)
    if checker.problems:
        raise MappingFileError(str(path), checker.problems)
    assert result is not None
    return result


def parse_quota_policy(text: str) -> QuotaPolicy:
    """A quota policy from the command line: `fixed,amount=100000,period=quarter` or a YAML mapping.

    Raises UserError naming the bad key.
    """
    text = text.strip()
    if text.startswith("{"):
        doc = _parse_yaml(text, "--quota-policy")
    else:
        parts = [p.strip() for p in text.split(",") if p.strip()]
        if not parts:
            raise UserError("--quota-policy is empty; e.g. fixed,amount=100000,period=quarter")
        pieces = [f"kind: {parts[0]}"] if "=" not in parts[0] else []
        for p in parts[1:] if "=" not in parts[0] else parts:
            if "=" not in p:
                raise UserError(
                    f"--quota-policy: '{p}' is not key=value; e.g. fixed,amount=100000,period=quarter"
                )
            k, v = p.split("=", 1)
            pieces.append(f"{k.strip()}: {v.strip()}")
        doc = _parse_yaml("{" + ", ".join(pieces) + "}", "--quota-policy")
    checker = _Checker(doc, "--quota-policy")
    policy = checker.policy(doc.data, ())
    if checker.problems or policy is None:
        raise MappingFileError(repr(text), checker.problems or ["not a quota policy"], what="--quota-policy")
    return policy
