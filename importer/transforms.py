"""Pure cell transforms used by mappings: ids from names, value maps, look-ups, parsing to contract types.

Each function takes pandas objects and returns new ones plus the cells it could not handle
(`CellErrors`, by index label), so the caller can report them in the source's terms
(file, column, row) and unit tests can run them on tiny frames.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

NORMALIZE_STEPS = ("strip", "lower", "no_spaces", "alnum")
ID_METHODS = ("slug", "hash")
AGGREGATES = ("first", "last", "min", "max", "sum", "count", "mean")
PERIOD_MONTHS = {"month": 1, "quarter": 3, "half": 6, "year": 12}
UNMAPPED = ("error", "keep", "empty")
NUMBER_KEYS = ("currency", "thousands", "decimal")
CURRENCY_OPTIONS = ("strip", "none")
THOUSANDS_OPTIONS = (",", ".", " ", "'", "")
DECIMAL_OPTIONS = (".", ",")


@dataclass(frozen=True)
class NumberFormat:
    """How a number column's text is written: `currency: strip` drops currency symbols and codes
    (`$`, `€`, `USD`), `thousands` is the grouping character (removed; groups must be 3 digits),
    `decimal` the decimal mark. `$12,595.96` is {strip, ",", "."}; `1.234,56 €` is {strip, ".", ","}."""

    currency: str = "none"
    thousands: str = ""
    decimal: str = "."
    # `thousands: ""` written out: the amounts have no grouping, so `1.500` is meant as 1.5 and
    # `other_convention` does not question it.
    ungrouped: bool = False

    def describe(self) -> str:
        parts = []
        if self.currency == "strip":
            parts.append("currency stripped")
        parts.append(f"thousands {self.thousands!r}" if self.thousands else "no thousands separator")
        parts.append(f"decimal {self.decimal!r}")
        return ", ".join(parts)


_TRUE = {"true", "t", "1", "1.0", "yes", "y"}
_FALSE = {"false", "f", "0", "0.0", "no", "n"}


@dataclass
class CellErrors:
    """Cells a transform could not handle, with one message for all of them.

    `index` holds labels of the frame the transform ran on; `in_lookup` means the labels are
    rows of the look-up file rather than of the source being mapped.
    """

    message: str
    index: list = field(default_factory=list)
    values: list = field(default_factory=list)
    in_lookup: bool = False

    def __bool__(self) -> bool:
        return bool(self.index)


def is_empty(s: pd.Series) -> pd.Series:
    """Missing or blank cells (a CSV cell of spaces counts as empty)."""
    na = s.isna().to_numpy(dtype=bool)
    blank = np.zeros(len(s), dtype=bool)
    if s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
        try:
            blank = s.str.strip().eq("").fillna(False).to_numpy(dtype=bool)
        except AttributeError:  # no text cells at all
            pass
    return pd.Series(na | blank, index=s.index)


def _nones(index: pd.Index) -> pd.Series:
    """An all-missing object column (None, not NaN, so results compare plainly)."""
    return pd.Series([None] * len(index), index=index, dtype=object)


def _text(v) -> str:
    return v if isinstance(v, str) else str(v)


# ---------------------------------------------------------------- ids from names


def slug(text: str) -> str:
    """`Moses Frase` -> `moses-frase`: ASCII letters and digits joined by single dashes."""
    t = unicodedata.normalize("NFKD", _text(text)).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", t.lower()).strip("-")


def hash_id(text: str) -> str:
    """A stable 12-character id from a name; case and runs of spaces do not change it."""
    canon = " ".join(_text(text).split()).casefold()
    return "h" + hashlib.sha1(canon.encode("utf-8")).hexdigest()[:11]


def derive_ids(values: pd.Series, method: str) -> tuple[pd.Series, list[CellErrors]]:
    """Ids from names (`slug` or `hash`), stable across runs and files; empty cells stay empty.

    Two different names that give the same id are an error, as is a name with no letters or
    digits for `slug` (use `hash` for such names).
    """
    if method not in ID_METHODS:
        raise ValueError(f"unknown id method {method!r}")
    fn = slug if method == "slug" else hash_id
    empty = is_empty(values)
    names = values[~empty]
    uniques = pd.unique(names)
    ids = {name: fn(name) for name in uniques}
    out = _nones(values.index)
    out[~empty] = names.map(ids)
    errors: list[CellErrors] = []
    blank = ~empty & (out == "")
    if blank.any():
        errors.append(
            CellErrors(
                "gives an empty slug (no letters or digits); use `id: hash` for such names",
                list(values.index[blank]),
                list(values[blank]),
            )
        )
    # Two different names (not mere case or spacing variants) that give one id.
    canon_by_id: dict[str, set[str]] = {}
    for name, ident in ids.items():
        canon_by_id.setdefault(ident, set()).add(" ".join(_text(name).split()).casefold())
    clashing = {i for i, c in canon_by_id.items() if len(c) > 1 and i}
    if clashing:
        bad = out.isin(clashing) & ~empty
        errors.append(
            CellErrors(
                "gives the same id as a different name; use `id: hash` or give the source real ids",
                list(values.index[bad]),
                list(values[bad]),
            )
        )
    return out, errors


# ---------------------------------------------------------------- value maps and keys


def map_values(
    values: pd.Series, mapping: Mapping[str, object], unmapped: str = "error", normalize: Iterable[str] = ()
) -> tuple[pd.Series, list[CellErrors]]:
    """Replace each non-empty cell by `mapping[cell]`; keys are compared as text, exactly unless
    `normalize` steps (as for look-ups: strip, lower, ...) are applied to both the keys and the cells.

    `unmapped`: `error` (default) reports every value the map lacks, `keep` leaves it as it is,
    `empty` blanks it (e.g. for a later `default`).
    """
    if unmapped not in UNMAPPED:
        raise ValueError(f"unknown unmapped policy {unmapped!r}")
    steps = tuple(normalize)
    keys = {str(k): v for k, v in mapping.items()}
    if steps:
        norm = normalize_keys(pd.Series(list(keys), dtype=object), steps)
        keys = dict(zip(norm, keys.values(), strict=True))
    empty = is_empty(values)
    text = values.map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v)) else _text(v))
    if steps:
        text = normalize_keys(text.astype(object), steps)
    known = text.isin(list(keys)) & ~empty
    out = _nones(values.index)
    out[known] = text[known].map(keys)
    missing = ~known & ~empty
    errors: list[CellErrors] = []
    if missing.any():
        if unmapped == "keep":
            out[missing] = values[missing]
        elif unmapped == "error":
            errors.append(
                CellErrors(
                    "is not in the value map"
                    + (" after normalising" if steps else "")
                    + "; add it under `values`"
                    + ("" if steps else " (or compare loosely with `normalize: [strip, lower]`)"),
                    list(values.index[missing]),
                    list(values[missing]),
                )
            )
    return out, errors


def normalize_keys(values: pd.Series, steps: Iterable[str]) -> pd.Series:
    """Key normalisation for look-ups, so `GTXPro` can match `GTX Pro` (`no_spaces` + `lower`).

    Steps, applied in order: `strip` (outer spaces), `lower`, `no_spaces` (all white space),
    `alnum` (only letters and digits).
    """
    out = values.map(lambda v: v if v is None or (isinstance(v, float) and np.isnan(v)) else _text(v))
    for step in steps:
        if step == "strip":
            out = out.map(lambda v: v.strip() if isinstance(v, str) else v)
        elif step == "lower":
            out = out.map(lambda v: v.casefold() if isinstance(v, str) else v)
        elif step == "no_spaces":
            out = out.map(lambda v: re.sub(r"\s+", "", v) if isinstance(v, str) else v)
        elif step == "alnum":
            out = out.map(lambda v: re.sub(r"[\W_]+", "", v) if isinstance(v, str) else v)
        else:
            raise ValueError(f"unknown normalisation step {step!r}")
    return out


def _aggregate(s: pd.Series, agg: str):
    s = s[~is_empty(s)] if agg != "count" else s
    if agg == "count":
        return int((~is_empty(s)).sum())
    if s.empty:
        return None
    if agg == "first":
        return s.iloc[0]
    if agg == "last":
        return s.iloc[-1]
    if agg == "min":
        return s.min()
    if agg == "max":
        return s.max()
    if agg == "sum":
        return s.sum()
    if agg == "mean":
        return s.mean()
    raise ValueError(f"unknown aggregate {agg!r}")


def lookup(
    keys: pd.Series | None,
    table: pd.DataFrame,
    key: str | None,
    take: str,
    *,
    normalize: Iterable[str] = (),
    agg: str | None = None,
    missing: str = "error",
    index: pd.Index | None = None,
) -> tuple[pd.Series, list[CellErrors]]:
    """Values of `table[take]` for each of `keys`, matched against `table[key]`.

    With `agg`, the rows sharing a key are aggregated (`min`, `max`, `sum`, `count`, `mean`,
    `first`, `last`); without it a key must not map to two different values. With no
    `key` at all, the whole column is aggregated to one value for every row (`index`).
    `missing`: `error` reports keys not found, `empty` leaves them empty.
    """
    steps = tuple(normalize)
    if key is None:
        if agg is None:
            raise ValueError("a look-up without a key needs an aggregate")
        value = _aggregate(table[take], agg)
        idx = index if index is not None else (keys.index if keys is not None else pd.RangeIndex(0))
        return pd.Series([value] * len(idx), index=idx, dtype=object), []
    errors: list[CellErrors] = []
    tkeys = normalize_keys(table[key], steps)
    valid = ~is_empty(tkeys)
    if agg is None:
        pairs = pd.DataFrame({"k": tkeys[valid], "v": table[take][valid]})
        nvals = pairs.groupby("k", sort=False)["v"].nunique(dropna=False)
        ambiguous = set(nvals.index[nvals > 1])
        if ambiguous:
            bad = pairs["k"].isin(ambiguous)
            errors.append(
                CellErrors(
                    "is a look-up key with more than one value; add `agg` (first, min, max, ...) "
                    "or fix the file",
                    list(pairs.index[bad]),
                    list(table[key][valid][bad]),
                    in_lookup=True,
                )
            )
        table_map = pairs.drop_duplicates("k").set_index("k")["v"]
    else:
        frame = pd.DataFrame({"k": tkeys[valid], "v": table[take][valid]})
        table_map = frame.groupby("k", sort=False)["v"].agg(lambda s: _aggregate(s, agg))
    nkeys = normalize_keys(keys, steps)
    empty = is_empty(nkeys)
    found = nkeys.isin(list(table_map.index)) & ~empty
    out = _nones(keys.index)
    if found.any():  # mapping no key at all onto a typed (e.g. date) map fails in pandas
        out[found] = nkeys[found].map(table_map)
    notfound = ~found & ~empty
    if notfound.any() and missing == "error":
        errors.append(
            CellErrors(
                "is not found in the look-up file" + (" after normalising" if steps else ""),
                list(keys.index[notfound]),
                list(keys[notfound]),
            )
        )
    return out, errors


def lookup_rows_used(
    keys: pd.Series | None, table: pd.DataFrame, key: str | None, *, normalize: Iterable[str] = ()
) -> pd.Series:
    """Per row of the look-up `table`, whether `lookup` takes it for some of `keys` (a key matched
    it after `normalize`); with no `key` the whole column is aggregated, so every row is."""
    if key is None or keys is None:
        return pd.Series(True, index=table.index, dtype=bool)
    steps = tuple(normalize)
    nkeys = normalize_keys(keys, steps)
    wanted = set(nkeys[~is_empty(nkeys)])
    tkeys = normalize_keys(table[key], steps)
    return (tkeys.isin(wanted) & ~is_empty(tkeys)).astype(bool)


def split_used(errs: list[CellErrors], used: pd.Series) -> tuple[list[CellErrors], list[CellErrors]]:
    """`errs` on rows of a look-up file split into the cells of rows `used` marks (booleans by
    label, from `lookup_rows_used`) and those of the other rows; each part keeps its message."""

    def part(e: CellErrors, keep: bool) -> CellErrors:
        cells = [(i, v) for i, v in zip(e.index, e.values, strict=True) if bool(used.get(i, False)) == keep]
        return CellErrors(e.message, [i for i, _ in cells], [v for _, v in cells], e.in_lookup)

    return [p for e in errs if (p := part(e, True))], [p for e in errs if (p := part(e, False))]


# ---------------------------------------------------------------- parsing to contract kinds


def _is_missing(v) -> bool:  # one value; `is_empty` is the vectorised form
    if v is None or v is pd.NaT:
        return True
    if isinstance(v, float) and np.isnan(v):
        return True
    return isinstance(v, str) and not v.strip()


def parse_kind(
    values: pd.Series, kind: str, fmt: str | None = None, number: NumberFormat | None = None
) -> tuple[pd.Series, list[CellErrors]]:
    """Convert cells to a contract kind (string, number, boolean, date, timestamp).

    Text is parsed (dates with `fmt`, a `strptime` format, or ISO 8601 when absent; numbers as
    `number` says, else plain `1234.5`); values already of the right type pass through. Dates
    are naive midnight `datetime64`; a date read from a timestamp is its local calendar day (the
    day written, whatever the offset: `2023-10-01T00:00+02:00` is 2023-10-01). Timestamps are
    UTC; no offset means UTC.
    """
    missing = is_empty(values)
    if kind == "string":
        out = _nones(values.index)
        out[~missing] = values[~missing].map(lambda v: v.strip() if isinstance(v, str) else _text(v))
        return out, []
    if kind == "number":
        out = pd.Series(np.nan, index=values.index, dtype="float64")
        vals = values[~missing].astype(object)
        clean = vals.map(lambda v: _number_text(v, number) if isinstance(v, str) else v)
        num = pd.to_numeric(clean, errors="coerce")
        isbool = pd.Series([isinstance(v, bool | np.bool_) for v in vals], index=vals.index, dtype=bool)
        num[isbool] = np.nan
        out[~missing] = num.astype("float64")
        bad = ~missing & out.isna()
        if number is not None:
            message = f"is not a number written as the mapping's `number` says ({number.describe()})"
        else:
            message = (
                "is not a number; for formatted amounts set `number` in the mapping, "
                'e.g. `number: {currency: strip, thousands: ",", decimal: "."}`'
            )
        return out, _errs(message, values, bad)
    if kind == "boolean":
        out = _nones(values.index)

        def conv(v):
            if isinstance(v, bool | np.bool_):
                return bool(v)
            if isinstance(v, int | float | np.integer | np.floating) and v in (0, 1):
                return bool(v)
            t = _text(v).strip().casefold()
            if t in _TRUE:
                return True
            if t in _FALSE:
                return False
            return None

        out[~missing] = values[~missing].map(conv)
        bad = ~missing & out.isna()
        return out, _errs("is not a boolean (true/false, 1/0, yes/no)", values, bad)
    if kind in ("date", "timestamp"):
        ts = _parse_datetimes(values, missing, fmt)
        bad = ~missing & ts.isna()
        expected = f"format {fmt}" if fmt else "ISO 8601, e.g. 2026-07-01"
        what = "date" if kind == "date" else "timestamp"
        if kind == "date":
            # The calendar day where the stamp was made (its wall clock), not the UTC day.
            local = ts.dt.tz_convert(None) + _utc_offsets(values, ~missing & ~bad, fmt)
            ts = local.dt.normalize()
        return ts, _errs(f"is not a {what} in {expected}; set `format` in the mapping", values, bad)
    raise ValueError(f"unknown kind {kind!r}")


_CURRENCY_RE = re.compile(r"^\s*(?:[A-Z]{3}\s*)?(.*?)(?:\s*[A-Z]{3})?\s*$")


def _unsigned(v: str, number: NumberFormat) -> tuple[str, str]:
    """A formatted amount's sign (`-` or ``) and its digits and marks, currency and spaces removed."""
    t = v.strip()
    if number.currency == "strip":
        t = "".join(ch for ch in t if unicodedata.category(ch) != "Sc")
        t = _CURRENCY_RE.match(t).group(1)
    t = t.replace("\u00a0", " ").replace("\u202f", " ").strip()
    sign = ""
    if t[:1] in ("+", "-"):
        sign, t = ("-" if t[0] == "-" else ""), t[1:].strip()
    return sign, t


def _number_text(v: str, number: NumberFormat | None) -> str | None:
    """A formatted amount as plain `1234.5` text, or None when it is not written as `number` says
    (a thousands group that is not 3 digits, e.g. `1,5` read with thousands `,`)."""
    if number is None:
        return v.strip()
    sign, t = _unsigned(v, number)
    d = re.escape(number.decimal)
    if number.thousands:
        th = re.escape(number.thousands)
        pattern = rf"(?:\d{{1,3}}(?:{th}\d{{3}})+|\d+)(?:{d}\d+)?|{d}\d+"
    else:
        pattern = rf"\d+(?:{d}\d+)?|{d}\d+"
    if not re.fullmatch(pattern, t):
        return None
    if number.thousands:
        t = t.replace(number.thousands, "")
    return sign + t.replace(number.decimal, ".")


def other_convention(
    values: pd.Series, parsed: pd.Series, number: NumberFormat | None, among: pd.Series | None = None
) -> CellErrors | None:
    """Cells read with a decimal mark that is more likely a thousands separator, or None.

    `100.000` read with decimal `.` is 100.0, but a European export means 100000. Such a cell
    parses without error, so the column as a whole decides: when every parsed text cell that has
    the decimal mark has it once, after 1-3 digits (no leading 0) and before exactly three, those
    cells are returned (`parsed` holds `parse_kind`'s numbers, same index). Any other decimal part
    (`12.50`) shows the mark is a decimal mark; `thousands: ""` written out turns the check off.
    `among` (booleans, same index) keeps only those cells in the result, e.g. the rows of a look-up
    file that a key matched; every cell still counts as evidence of how the column is written.
    """
    number = number or NumberFormat()
    if number.ungrouped:
        return None
    mark = number.decimal
    grouped = re.compile(rf"[1-9]\d{{0,2}}{re.escape(mark)}\d{{3}}")
    suspects, labels = [], []
    for label, v in values.items():
        if not isinstance(v, str) or pd.isna(parsed.get(label)):
            continue
        t = _unsigned(v, number)[1]
        if mark not in t:
            continue
        if not grouped.fullmatch(t):
            return None  # a decimal part that is not three digits: the mark is a decimal mark here
        if among is None or among.get(label, False):
            labels.append(label)
            suspects.append(v)
    if not labels:
        return None
    other = "," if mark == "." else "."
    currency = "currency: strip, " if number.currency == "strip" else ""
    example = _unsigned(suspects[0], number)[1]
    as_read = float(example.replace(mark, "."))
    as_grouped = float(example.replace(mark, ""))
    return CellErrors(
        f"has exactly three digits after the decimal mark {mark!r}, as has every value of this column "
        f"with a {mark!r}: that is how a thousands separator writes, so {example!r} is probably "
        f"{as_grouped:.0f}, not {as_read:g} as read (rule: a decimal mark followed by exactly three "
        f"digits in every value that has one). If {mark!r} separates thousands, set "
        f'`number: {{{currency}thousands: "{mark}", decimal: "{other}"}}` on this column; if these '
        f'really are decimals, set `number: {{{currency}thousands: ""}}` to say the amounts have no '
        "thousands separator",
        labels,
        suspects,
    )


def _utc_offsets(values: pd.Series, ok: pd.Series, fmt: str | None) -> pd.Series:
    """Per cell, the UTC offset it was stamped with (0 when it has none), so a date read from a
    timestamp is the day its own clock showed."""
    out = pd.Series(pd.Timedelta(0), index=values.index, dtype="timedelta64[us]")
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        tz = getattr(values.dt, "tz", None)
        if tz is not None and ok.any():
            wall = values[ok].dt.tz_localize(None)
            utc = values[ok].dt.tz_convert("UTC").dt.tz_localize(None)
            out[ok] = (wall - utc).astype("timedelta64[us]")
        return out
    sub = values[ok].astype(object)
    is_str = pd.Series([isinstance(v, str) for v in sub], index=sub.index, dtype=bool)
    if fmt is None or "%z" in fmt:  # text without an offset has none to apply
        strs = sub[is_str].astype(str).str.strip()
        has = strs.str.contains(r"[+-][0-9]{2}:?[0-9]{2}$", regex=True)
        zero = strs.str.endswith(("+0000", "+00:00", "-0000", "-00:00"))  # UTC already: skip the parse
        with_offset = strs[(has & ~zero).fillna(False).astype(bool)]
    else:
        with_offset = sub.iloc[0:0]
    cells = pd.concat([with_offset, sub[~is_str]])
    if len(cells):
        cache: dict = {}
        offs = [
            cache.setdefault(v, _offset_of(v, fmt)) if isinstance(v, str) else _offset_of(v, fmt)
            for v in cells
        ]
        out[cells.index] = pd.Series(offs, index=cells.index, dtype="timedelta64[us]")
    return out


def _offset_of(v, fmt: str | None) -> pd.Timedelta:
    try:
        if isinstance(v, str):
            s = v.strip()
            parsed = dt.datetime.strptime(s, fmt) if fmt else dt.datetime.fromisoformat(s)
        else:
            parsed = pd.Timestamp(v)
        off = parsed.utcoffset()
    except (ValueError, TypeError):
        off = None
    return pd.Timedelta(off) if off else pd.Timedelta(0)


def _parse_datetimes(values: pd.Series, missing: pd.Series, fmt: str | None) -> pd.Series:
    """UTC-aware timestamps; unparseable or missing cells are NaT."""
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us, UTC]")
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        typed = ~missing
    else:
        # By element: `Series.map(type)` on an empty text column keeps its string dtype and then
        # cannot be compared with classes.
        is_dt = [isinstance(v, dt.date | np.datetime64) for v in values]
        typed = pd.Series(is_dt, index=values.index, dtype=bool) & ~missing
    if typed.any():
        out[typed] = pd.to_datetime(
            values[typed].map(lambda v: pd.Timestamp(v)), utc=True, errors="coerce"
        ).astype("datetime64[us, UTC]")
    text = ~typed & ~missing
    if text.any():
        strs = values[text].astype(str).str.strip()
        parsed = pd.to_datetime(strs, format=fmt or "ISO8601", utc=True, errors="coerce")
        if fmt is None:
            # ISO 8601 only: "2017-3-1" or "03/01/2017" must not slip through as a guess.
            iso = strs.str.match(
                r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$"
            )
            parsed[~iso.astype(bool)] = pd.NaT
        out[text] = parsed.astype("datetime64[us, UTC]")
    return out


def _errs(message: str, values: pd.Series, bad: pd.Series) -> list[CellErrors]:
    if not bad.any():
        return []
    return [CellErrors(message, list(values.index[bad]), list(values[bad]))]


def end_of_period(starts: pd.Series, period: str) -> pd.Series:
    """The last day of the period of length `period` (month, quarter, half, year) starting on each date."""
    months = PERIOD_MONTHS[period]
    return starts.map(
        lambda d: d if pd.isna(d) else d + pd.DateOffset(months=months) - pd.Timedelta(days=1)
    ).astype(starts.dtype)


def fill_empty(values: pd.Series, fallback: pd.Series) -> tuple[pd.Series, int]:
    """Cells of `values` that are missing take `fallback`'s value; returns how many were filled."""
    missing = values.isna()
    if not missing.any():
        return values, 0
    out = values.copy()
    fb = fallback.reindex(values.index)
    out[missing] = fb[missing]
    return out, int((missing & fb.notna()).sum())


# ---------------------------------------------------------------- row filters


def where_mask(frame: pd.DataFrame, column: str, *, isin=None, not_in=None, in_values=None) -> pd.Series:
    """Rows kept by one `where` condition: `in` a list, `not_in` a list, or in another file's column."""
    col = frame[column].astype(object).where(~is_empty(frame[column]), None)
    col = col.map(lambda v: v if v is None else _text(v).strip())
    mask = pd.Series(True, index=frame.index)
    if isin is not None:
        mask &= col.isin([_text(v) for v in isin])
    if not_in is not None:
        mask &= ~col.isin([_text(v) for v in not_in])
    if in_values is not None:
        mask &= col.isin([_text(v).strip() for v in in_values if not _is_missing(v)])
    return mask
