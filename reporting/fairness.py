"""Fairness audit: who lands in the high band, per group of each attribute the data declares.

Pure functions on frames. The audit reads attributes (reps columns beyond the contract's, e.g.
`gender`, `age_band`) and controls (`region`); they are never model features. For each it gives
the share of reps in the high band per group, the impact ratio against a reference group (the
four-fifths rule: by default the most-flagged group, so a ratio below 0.8 means that group is
flagged 1.25x or more as often), a two-proportion z-test beside it, and calibration per group on
the held-out periods of the model's training run (mean predicted risk vs realised miss rate).
Groups smaller than a minimum are merged into one "other (merged)" group, and said so; a group
smaller than `min_cell` reps has its counts and rates suppressed, so nobody can be singled out, and
tables of the same reps are checked two by two so that one less another gives no small group back.
Beside the model's flags, the outcome itself: per group, how often its reps missed target in the
data's finished periods and how hard their quotas were against their segment's, so that a call-out
says whether the disparity is already in the outcome (e.g. quotas set harder for one group) or
comes from the model.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np
import pandas as pd

from models.i18n import Items, Message, QuotedItems, localise, text

# reps columns the contract defines: everything else is an attribute
CONTRACT_REPS_COLUMNS = ("rep_id", "manager_id", "hire_date", "end_date", "team", "region", "segment", "name")
OTHER = "other (merged)"
MISSING = "(missing)"


@dataclass
class AttributeAudit:
    """The audit of one column."""

    column: str
    kind: str  # "attribute" or "control"
    selection: (
        pd.DataFrame
    )  # group, n, n_high, rate, judged, ratio, reference, out_of_bounds, p_value, significant
    calibration: pd.DataFrame | None  # group, n_rows, n_reps, mean_risk, miss_rate, gap
    merged: list[str] = field(default_factory=list)  # original groups merged into OTHER
    reference: str | None = None
    notes: list[str] = field(default_factory=list)
    # group, n_reps, n_periods, miss_rate, quota_vs_segment, suppressed: finished periods in the data
    outcomes: pd.DataFrame | None = None
    # the calibration table's columns on the lists given out earlier (`repradar report --earlier`),
    # against what happened: the high band as it was given, not as the held-out rows would have had it
    given: pd.DataFrame | None = None

    @property
    def out_of_bounds(self) -> list[str]:
        s = self.selection
        return [str(g) for g in s.loc[s["out_of_bounds"], "group"]]


@dataclass
class Callout:
    """A disparity outside the bounds: `over` is flagged more often than `under`."""

    column: str
    kind: str
    over: str
    under: str
    ratio: float  # the impact ratio that broke the bounds
    rate_over: float
    rate_under: float
    n_over: int
    n_under: int
    p_value: float
    significant: bool
    source: str = ""  # what the finished periods say: is the disparity already in the outcome?

    def text(self, low: float, high: float, lang: str = "en") -> str:
        """The call-out in `lang` (the JSON's `text` is English)."""
        times = self.rate_over / self.rate_under if self.rate_under > 0 else math.inf
        sig = Message(
            "report.note.significant" if self.significant else "report.note.not_significant", p=self.p_value
        )
        what = "control" if self.kind == "control" else "attribute"
        text = Message(
            "report.note.callout",
            column=self.column,
            kind=Message(f"report.kind.{what}"),
            over=group_name(self.over),
            under=group_name(self.under),
            times=_times(times, low, high),
            rate_over=self.rate_over,
            n_over=self.n_over,
            rate_under=self.rate_under,
            n_under=self.n_under,
            ratio=ratio_text(self.ratio, low, high),
            low=low,
            high=high,
            sig=sig,
        ).in_lang(lang)
        if not self.source:
            return text
        return Message("report.note.callout_source", callout=text, source=self.source).in_lang(lang)


def _digits(x: float, bounds, least: int = 2, most: int = 6) -> int:
    """The fewest decimals (at least `least`) at which `x` rounds to a figure on the same side of
    every bound as `x` itself: a ratio of 0.797 against the bound 0.8 reads 0.797, not 0.80."""
    for d in range(least, most + 1):
        r = round(x, d)
        if all((r > b) == (x > b) and (r < b) == (x < b) for b in bounds):
            return d
    return most


def ratio_text(ratio, low: float, high: float) -> str:
    """An impact ratio with the digits that show which side of [low, high] it is on ("-" if none)."""
    if ratio is None or (isinstance(ratio, float) and math.isnan(ratio)):
        return "-"
    x = float(ratio)
    if math.isinf(x):
        return "inf"
    return f"{x:.{_digits(x, (low, high))}f}"


def _times(x: float, low: float = 0.8, high: float = 1.25) -> Message:
    """How many times as often: 1.254x, not 1.25x, when 1.25 (= 1/0.8, or the upper bound) is the line."""
    if math.isinf(x):
        return Message("report.note.infinitely")
    bounds = [b for b in (low, high, 1 / low, 1 / high) if b > 0]
    return Message("report.fairness.times", x=f"{x:.{_digits(x, bounds)}f}")


def group_name(group) -> str:
    """A group as people read it: the audit's own groups ("other (merged)", "(missing)") in the report's
    language (a Message), the data's names as they are."""
    if group == OTHER:
        return Message("report.group.other")
    if group == MISSING:
        return Message("report.group.missing")
    return str(group)


@dataclass
class FairnessAudit:
    attributes: list[AttributeAudit]
    callouts: list[Callout]
    low: float
    high: float
    min_group_size: int
    reference: str
    notes: list[str] = field(default_factory=list)
    min_cell: int = 0

    def flagged(self, column: str) -> list[str]:
        """Groups of `column` called out as flagged more often than another group."""
        return sorted({c.over for c in self.callouts if c.column == column})

    def get(self, column: str) -> AttributeAudit:
        for a in self.attributes:
            if a.column == column:
                return a
        raise KeyError(column)

    def _names(self, audits) -> Items:
        return Items(
            Message("report.note.control_column", column=a.column) if a.kind == "control" else a.column
            for a in audits
        )

    def nothing_compared(self, lang: str = "en") -> str | None:
        """Why no group was judged at all, None if one was. A small organisation (or one whose reps table
        has no attribute) compares nothing; that must not read as an audit that found nothing."""
        if any(a.reference is not None for a in self.attributes):
            return None
        no_attr = not any(a.kind == "attribute" for a in self.attributes)
        if not self.attributes:
            return text(lang, "report.note.nothing_audited", declare=text(lang, "report.note.declare"))
        return Message(
            "report.note.nothing_judged",
            min_group=self.min_group_size,
            columns=self._names(self.attributes),
            declare=Message("report.note.declare_also") if no_attr else "",
        ).in_lang(lang)

    def summary_lines(self) -> list[str]:
        """The audit in a few lines for the command line: the call-outs, else what was compared, and
        which columns could not be (too few reps per group), so that silence is never read as a pass."""
        nothing = self.nothing_compared()
        if nothing:
            return [nothing]
        lines = [c.text(self.low, self.high) for c in self.callouts]
        compared = [a for a in self.attributes if a.reference is not None]
        if not lines:
            lines.append(
                f"every compared group within [{self.low:g}, {self.high:g}] ({localise(self._names(compared), 'en')})"
            )
        skipped = [a for a in self.attributes if a.reference is None]
        if skipped:
            lines.append(
                f"not compared (fewer than two groups of at least {self.min_group_size} scored reps): "
                + localise(self._names(skipped), "en")
            )
        return lines

    def to_dict(self) -> dict:
        return {
            "bounds": [self.low, self.high],
            "min_group_size": self.min_group_size,
            "min_cell": self.min_cell,
            "reference": self.reference,
            "callouts": [c.__dict__ | {"text": c.text(self.low, self.high)} for c in self.callouts],
            "nothing_compared": self.nothing_compared(),
            "attributes": [
                {
                    "column": a.column,
                    "kind": a.kind,
                    "reference": a.reference,
                    "merged": a.merged,
                    "notes": a.notes,
                    "selection": _records(a.selection),
                    "calibration": None if a.calibration is None else _records(a.calibration),
                    "outcomes": None if a.outcomes is None else _records(a.outcomes),
                    "given": None if a.given is None else _records(a.given),
                }
                for a in self.attributes
            ],
            "notes": self.notes,
        }


def _records(df: pd.DataFrame) -> list[dict]:
    out = []
    for row in df.to_dict("records"):
        out.append(
            {k: (None if isinstance(v, float) and math.isnan(v) else _plain(v)) for k, v in row.items()}
        )
    return out


def _plain(v):
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


# ---------------------------------------------------------------------------------------------
def audit_columns(reps: pd.DataFrame, controls=("region",)) -> list[tuple[str, str]]:
    """(column, kind) to audit: every attribute column of `reps`, then the controls present."""
    attrs = [c for c in reps.columns if c not in CONTRACT_REPS_COLUMNS]
    ctrl = [c for c in controls if c in reps.columns and c not in attrs]
    return [(c, "attribute") for c in attrs] + [(c, "control") for c in ctrl]


def group_labels(values: pd.Series) -> pd.Series:
    """Values as group labels (strings), missing values as their own group."""
    s = values.astype("string")
    s = s.str.strip()
    s = s.mask(s.isna() | (s == ""), MISSING)
    return s.astype(object)


def merge_small_groups(groups: pd.Series, min_size: int, min_cell: int = 0) -> tuple[pd.Series, list[str]]:
    """Groups with fewer than `min_size` members become OTHER; returns (groups, merged names).

    When what is left in OTHER has fewer than `min_cell` members, the smallest other group joins it
    too (while more than one group is left): a group shown beside the others with its counts
    suppressed is not hidden, since the report's totals (reps, high band) minus the other groups'
    counts give it back, and with a handful of reps that is a figure about each of them."""
    counts = groups.value_counts()
    small = sorted(str(g) for g in counts[counts < min_size].index)
    out = groups.where(~groups.isin(small), OTHER) if small else groups
    while True:
        c = out.value_counts()
        below = [g for g in c.index if c[g] < min_cell]
        rest = c.drop(index=below)
        if not below or rest.empty:  # nothing small, or nothing larger to join (then all are suppressed)
            break
        joins = set(below)
        if c[below].sum() < min_cell:  # the smallest of the others joins them
            joins.add(min(rest.items(), key=lambda kv: (kv[1], str(kv[0])))[0])
        small = sorted(set(small) | {str(g) for g in joins if g != OTHER})
        out = out.where(~out.isin(joins), OTHER)
    return out, small


def fold_small_groups(groups, rep_ids, min_cell: int) -> tuple[pd.Series, list[str]]:
    """Rows' groups (held-out snapshots, finished rep-periods) with the groups of fewer than `min_cell`
    reps *among these rows* merged into OTHER, and the smallest other group joining it while it is
    that small: `merge_small_groups` on one row per rep. These rows' reps differ from the scored ones, so
    a group large enough to show among the scored reps can be a handful here, and shown beside the
    others with its figures suppressed it is not hidden: the totals (the model's held-out rows and
    misses, or another attribute's table of the same rows) minus the other groups' give it back.
    Returns (groups, the groups folded into OTHER); every group of the rows is left as it is when all
    of them are that small (then all are suppressed)."""
    g = pd.Series(np.asarray(groups, dtype=object))
    per_rep = pd.DataFrame({"group": g, "rep": np.asarray(rep_ids, dtype=object)}).drop_duplicates("rep")
    merged, folded = merge_small_groups(per_rep["group"].reset_index(drop=True), 0, min_cell)
    if not folded:
        return g, []
    to = dict(zip(per_rep["group"], merged, strict=True))
    return g.map(to), folded


# the report's tables of reps per band (reporting.summary.band_table), published beside the audit over
# the same scored reps and never merged (they count what HR already sees rep by rep)
BAND_TABLES = ("manager_id", "team", "region", "segment")
# two tables are compared over every union of the smaller one's groups, up to 2**16 unions; beyond
# that, over the unions of up to SOME_CROSSED_GROUPS groups and the rest of the table after them
MAX_CROSSED_GROUPS = 16
SOME_CROSSED_GROUPS = 3


def _unions(k: int) -> np.ndarray:
    """Rows of 0/1 over k groups: every non-empty union, or for many groups the small ones and the
    rest after each of them (see MAX_CROSSED_GROUPS)."""
    if k <= MAX_CROSSED_GROUPS:
        return (np.arange(1, 2**k)[:, None] >> np.arange(k)) & 1
    few = [
        np.isin(np.arange(k), c).astype(int)
        for n in range(1, SOME_CROSSED_GROUPS + 1)
        for c in itertools.combinations(range(k), n)
    ]
    return np.array(few + [1 - f for f in few])


def differenced_group(a, b, min_cell: int) -> tuple[list[str], list[str], int] | None:
    """A set of 0 < k < `min_cell` members that two tables of the same members give away by
    differences, or None. `a`, `b`: each member's group in either table (aligned). Returns (groups of
    one table, groups of the other lying wholly inside them, k): the first groups' counts less the
    second's are those k members' counts.

    Every set two partitions' counts give away is made of such differences (a union of one table's
    groups less a union of the other's lying inside it; a union of the other's groups alone is
    published anyway), and the least a union gives away is the rest after *every* group inside it,
    so trying every union of the smaller table's groups finds it if there is one: exact for two
    tables (when both have more than MAX_CROSSED_GROUPS groups, only some unions are tried). Three
    or more tables at once can give away more: not tried here."""
    ia, rows = pd.factorize(pd.Series(np.asarray(a, dtype=object)).astype(str), sort=True)
    ib, cols = pd.factorize(pd.Series(np.asarray(b, dtype=object)).astype(str), sort=True)
    m = np.bincount(ia * len(cols) + ib, minlength=len(rows) * len(cols)).reshape(len(rows), len(cols))
    if len(rows) > len(cols):
        m, rows, cols = m.T, cols, rows
    col = m.sum(axis=0)
    masks = _unions(len(rows))
    inside = masks @ m
    contained = inside == col
    d = inside.sum(axis=1) - (contained * col).sum(axis=1)
    # with nothing of the other table inside, the union is what its own groups' counts add up to
    hit = np.flatnonzero((d > 0) & (d < min_cell) & contained.any(axis=1))
    if not len(hit):
        return None
    i = int(hit[np.argmin(d[hit])])
    return (
        [str(g) for g, on in zip(rows, masks[i], strict=True) if on],
        [str(g) for g, on in zip(cols, contained[i], strict=True) if on],
        int(d[i]),
    )


def _coarser(groups: pd.Series):
    """Each way of merging one more group into OTHER: (groups, the groups that joined it)."""
    names = sorted(str(g) for g in groups.unique())
    if OTHER in names:
        for g in names:
            if g != OTHER:
                yield groups.where(groups != g, OTHER), [g]
    else:
        for i, g in enumerate(names):
            for h in names[i + 1 :]:
                yield groups.where(~groups.isin([g, h]), OTHER), [g, h]


def protect_crossings(
    tables: dict[str, pd.Series], min_cell: int, fixed: dict[str, pd.Series] | None = None
) -> tuple[dict[str, pd.Series], dict[str, list[tuple[list[str], str]]]]:
    """Merge groups of `tables` (each member's group, one series per table, aligned on the same
    members) into OTHER until no two of them, nor one of them and one of `fixed` (tables published
    as they are), give away fewer than `min_cell` members by differences (`differenced_group`).

    Each table on its own already hides its small groups (`merge_small_groups`), but tables of the
    same members are published side by side: an attribute nested in another (an office within a
    region) gives a small group back as one table's count less the other's. The merge taken is the
    one that ends the difference with the smallest merged group (less is lost), in the table of the
    pair that allows it. Returns (tables, per table the groups that joined OTHER and the table that
    would have given them away)."""
    fixed = fixed or {}
    out = {name: pd.Series(s.to_numpy(dtype=object), index=s.index) for name, s in tables.items()}
    joined: dict[str, list[tuple[list[str], str]]] = {name: [] for name in out}
    names = list(out)
    while True:
        pairs = [(x, y) for i, x in enumerate(names) for y in names[i + 1 :]] + [
            (x, y) for x in names for y in fixed
        ]
        found = None
        for x, y in pairs:
            other = out[y] if y in out else fixed[y]
            if differenced_group(out[x], other.to_numpy(dtype=object), min_cell) is not None:
                found = (x, y)
                break
        if found is None:
            return out, joined
        x, y = found
        best = None
        for t, u in ((x, y), (y, x)):
            if t not in out:
                continue
            against = (out[u] if u in out else fixed[u]).to_numpy(dtype=object)
            for coarse, moved in _coarser(out[t]):
                still = differenced_group(coarse, against, min_cell) is not None
                key = (still, int((coarse == OTHER).sum()), t != x, moved)
                if best is None or key < best[0]:
                    best = (key, t, u, coarse, moved)
        _, t, u, coarse, moved = best
        out[t] = coarse
        joined[t].append((moved, u))


def _folded_note(folded: list[str], where: str, min_cell: int) -> Message:
    """`where`: a key of report.note ("in_heldout", "in_finished")."""
    return Message(
        "report.note.folded",
        groups=QuotedItems(group_name(g) for g in folded),
        other=group_name(OTHER),
        where=Message(f"report.note.{where}"),
        min_cell=min_cell,
    )


def _crossed_note(moved: list[str], against, where: str, min_cell: int) -> Message:
    """`against`: the other table (an audited column, or a Message naming the report's reps per band);
    `where`: a key of report.note ("in_heldout_after", ...), or "" for the scored reps."""
    beside = against if isinstance(against, Message) else Message("report.note.crossed_table", column=against)
    return Message(
        "report.note.crossed",
        groups=QuotedItems(group_name(g) for g in moved if g != OTHER),
        other=group_name(OTHER),
        where=Message(f"report.note.{where}") if where else "",
        beside=beside,
        min_cell=min_cell,
    )


def _rows_notes(folded: list[str], joins, where: str, min_cell: int) -> list[Message]:
    """What one rows table (held-out, given out, finished) folded and joined: `where` a key of
    report.note ("in_heldout"; its "_after" form names the table after a join)."""
    notes = [_folded_note(folded, where, min_cell)] if folded else []
    return notes + [_crossed_note(m, u, f"{where}_after", min_cell) for m, u in joins]


def _rows_calibration(groups: pd.Series, rows: pd.DataFrame, alpha: float, **band) -> pd.DataFrame:
    """`calibration_table` of one rows table (rep_id, risk, missed); `band`: high_cut or high."""
    return calibration_table(
        groups,
        rows["risk"],
        rows["missed"].astype(float),
        rows["rep_id"].astype(str),
        alpha=alpha,
        **band,
    )


def _crossed_rows(rows, reps, kept: dict[str, set], min_cell: int, column_of):
    """Per audited column, the groups of `rows` (held-out snapshots, finished rep-periods): the scored
    tables' groups (`kept`), those of fewer than `min_cell` reps among these rows folded
    (`fold_small_groups`), then the columns' tables of these rows crossed (`protect_crossings`).
    Returns (groups per column, or None without rows; joins per column; folded per column)."""
    if rows is None:
        return None, {}, {}
    ids = rows["rep_id"].astype(str).reset_index(drop=True)
    groups, folded = {}, {}
    for col, keep in kept.items():
        g = column_of(ids, col)
        groups[col], folded[col] = fold_small_groups(g.where(g.isin(keep), OTHER), ids, min_cell)
    first = (~ids.duplicated()).to_numpy()
    if not first.any():
        return groups, {col: [] for col in kept}, folded
    per_rep, joins = protect_crossings({col: g[first] for col, g in groups.items()}, min_cell)
    for col, g in per_rep.items():
        groups[col] = ids.map(dict(zip(ids[first], g, strict=True)))
    return groups, joins, folded


def two_proportion_p(x1: int, n1: int, x2: int, n2: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test (1.0 when undefined)."""
    if n1 == 0 or n2 == 0:
        return 1.0
    p = (x1 + x2) / (n1 + n2)
    se = math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    z = (x1 / n1 - x2 / n2) / se
    return math.erfc(abs(z) / math.sqrt(2))


def selection_table(groups: pd.Series, selected: pd.Series, min_size: int) -> pd.DataFrame:
    """Per group: n, n_high, rate, and whether the group is large enough to be judged."""
    df = pd.DataFrame({"group": groups.to_numpy(), "sel": np.asarray(selected, dtype=bool)})
    t = df.groupby("group", sort=True)["sel"].agg(n="size", n_high="sum").reset_index()
    t["n"] = t["n"].astype(int)
    t["n_high"] = t["n_high"].astype(int)
    t["rate"] = t["n_high"] / t["n"]
    t["judged"] = t["n"] >= min_size
    return t


def wilson_interval(x: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval of a proportion x/n at confidence 1 - alpha ((nan, nan) for n = 0)."""
    if n <= 0:
        return math.nan, math.nan
    z = NormalDist().inv_cdf(1 - alpha / 2)
    p = x / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def ratio_interval(x1: int, n1: int, x0: int, n0: int, alpha: float = 0.05) -> tuple[float, float]:
    """Interval of the ratio of proportions (x1/n1) / (x0/n0) at confidence 1 - alpha: Katz's log
    method, with 0.5 added to every cell when a count is 0 or equals its total."""
    if min(n1, n0) <= 0:
        return math.nan, math.nan
    if min(x1, x0) == 0 or x1 == n1 or x0 == n0:
        x1, n1, x0, n0 = x1 + 0.5, n1 + 1, x0 + 0.5, n0 + 1
    r = (x1 / n1) / (x0 / n0)
    se = math.sqrt(1 / x1 - 1 / n1 + 1 / x0 - 1 / n0)
    z = NormalDist().inv_cdf(1 - alpha / 2)
    return r * math.exp(-z * se), r * math.exp(z * se)


def impact_ratios(
    table: pd.DataFrame,
    *,
    low: float = 0.8,
    high: float = 1.25,
    reference: str = "most_flagged",
    alpha: float = 0.05,
) -> tuple[pd.DataFrame, str | None]:
    """Add ratio (rate / reference rate), out_of_bounds, p_value and significant; returns (table, reference).

    Only judged groups (large enough) take part; the reference is the judged group with the
    highest rate ("most_flagged", the four-fifths rule) or the most reps ("largest").
    """
    t = table.copy()
    t["reference"] = False
    t["ratio"] = np.nan
    t["out_of_bounds"] = False
    t["p_value"] = np.nan
    t["significant"] = False
    ci = [wilson_interval(int(x), int(n), alpha) for x, n in zip(t["n_high"], t["n"], strict=True)]
    t["rate_low"] = [c[0] for c in ci]
    t["rate_high"] = [c[1] for c in ci]
    t["ratio_low"] = np.nan
    t["ratio_high"] = np.nan
    judged = t[t["judged"]]
    if len(judged) < 2:
        return t, None
    if reference == "largest":
        ref_idx = judged.sort_values(["n", "group"], ascending=[False, True]).index[0]
    else:
        ref_idx = judged.sort_values(["rate", "n"], ascending=[False, False]).index[0]
    ref = t.loc[ref_idx]
    t.loc[ref_idx, "reference"] = True
    if ref["rate"] == 0:
        # nobody of the reference group is flagged; ratios are undefined unless others are
        if (judged["rate"] == 0).all():
            t.loc[judged.index, "ratio"] = 1.0
            t.loc[judged.index, "p_value"] = 1.0
            return t, str(ref["group"])
    for i in judged.index:
        r = t.loc[i]
        if ref["rate"] > 0:
            ratio = r["rate"] / ref["rate"]
        else:
            ratio = 1.0 if r["rate"] == 0 else math.inf
        p = (
            1.0
            if i == ref_idx
            else two_proportion_p(int(r["n_high"]), int(r["n"]), int(ref["n_high"]), int(ref["n"]))
        )
        t.loc[i, "ratio"] = ratio
        t.loc[i, "p_value"] = p
        if i != ref_idx:
            lo, hi = ratio_interval(int(r["n_high"]), int(r["n"]), int(ref["n_high"]), int(ref["n"]), alpha)
            t.loc[i, "ratio_low"], t.loc[i, "ratio_high"] = lo, hi
        t.loc[i, "out_of_bounds"] = bool(ratio < low or ratio > high)
        t.loc[i, "significant"] = bool(p < alpha)
    return t, str(ref["group"])


BOOTSTRAP_DRAWS = 1000


def rep_bootstrap_ratio(
    rep_ids, num, den, *, alpha: float = 0.05, draws: int = BOOTSTRAP_DRAWS, seed: int = 0
) -> tuple[float, float]:
    """Percentile interval of sum(num) / sum(den), resampling reps (not rows) with replacement.

    A rep contributes several held-out snapshots or periods whose outcomes move together, so a
    row-level interval would be too narrow; the seed keeps a report reproducible."""
    d = pd.DataFrame({"rep": np.asarray(rep_ids, dtype=object), "n": num, "d": den}).astype(
        {"n": float, "d": float}
    )
    per = d.groupby("rep", sort=True)[["n", "d"]].sum()
    if len(per) == 0 or per["d"].sum() <= 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    w = rng.multinomial(len(per), np.full(len(per), 1.0 / len(per)), size=draws).astype(float)
    top, bottom = w @ per["n"].to_numpy(), w @ per["d"].to_numpy()
    ratio = top[bottom > 0] / bottom[bottom > 0]
    lo, hi = np.quantile(ratio, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def _intervals(t: pd.DataFrame, df: pd.DataFrame, name: str, num: str, den: str, alpha: float):
    """Add `name`_low / `name`_high to the per-group table `t` (rep-clustered bootstrap)."""
    ci = {
        g: rep_bootstrap_ratio(sub["rep_id"], sub[num], sub[den], alpha=alpha)
        for g, sub in df.groupby("group", sort=True)
    }
    t[f"{name}_low"] = t["group"].map(lambda g: ci.get(g, (math.nan, math.nan))[0]).astype(float)
    t[f"{name}_high"] = t["group"].map(lambda g: ci.get(g, (math.nan, math.nan))[1]).astype(float)


def calibration_table(
    groups: pd.Series,
    risk,
    missed,
    rep_ids,
    high_cut: float | None = None,
    alpha: float = 0.05,
    high=None,
) -> pd.DataFrame:
    """Per group: rows, reps, mean predicted risk, realised miss rate and the gap (risk - miss rate);
    with `high_cut` (the high band's cut point) also the error rates of the high band once outcomes
    are known: fnr (share of the missed rows not in the high band) and fpr (share of the met rows in
    it); `high` instead of `high_cut`: which rows were in the high band (a list's bands as given). Miss
    rate, gap and error rates carry 1 - `alpha` intervals (`_low`, `_high`) from resampling reps."""
    cols = {
        "group": np.asarray(groups, dtype=object),
        "risk": np.asarray(risk, dtype=float),
        "missed": np.asarray(missed, dtype=float),
        "rep_id": np.asarray(rep_ids, dtype=object),
    }
    if high is not None:
        cols["high"] = np.asarray(high, dtype=bool)
    df = pd.DataFrame(cols).dropna(subset=["risk", "missed"])
    t = df.groupby("group", sort=True).agg(
        n_rows=("risk", "size"),
        n_reps=("rep_id", "nunique"),
        mean_risk=("risk", "mean"),
        miss_rate=("missed", "mean"),
    )
    t = t.reset_index()
    t["gap"] = t["mean_risk"] - t["miss_rate"]
    df["one"] = 1.0
    df["excess"] = df["risk"] - df["missed"]
    _intervals(t, df, "miss_rate", "missed", "one", alpha)
    _intervals(t, df, "gap", "excess", "one", alpha)
    if high_cut is not None or high is not None:
        if high is None:
            df["high"] = df["risk"] >= high_cut
        miss, met = df[df["missed"] == 1], df[df["missed"] == 0]
        fnr = (~miss["high"]).groupby(miss["group"]).mean()
        fpr = met["high"].groupby(met["group"]).mean()
        t["fnr"] = t["group"].map(fnr).astype(float)
        t["fpr"] = t["group"].map(fpr).astype(float)
        df["missed_low"] = df["missed"] * (~df["high"])
        df["met_high"] = (1 - df["missed"]) * df["high"]
        df["met"] = 1 - df["missed"]
        _intervals(t, df, "fnr", "missed_low", "missed", alpha)
        _intervals(t, df, "fpr", "met_high", "met", alpha)
    return t


# what a small group's calibration and outcome rows lose (counts, rates and their intervals)
_RATE_COLUMNS = tuple(
    f"{c}{end}" for c in ("miss_rate", "gap", "fnr", "fpr") for end in ("", "_low", "_high")
) + ("n_rows", "n_periods", "mean_risk", "quota_vs_segment")


def suppress_small(table: pd.DataFrame, size_col: str, cols, min_cell: int) -> pd.DataFrame:
    """Rows of groups with fewer than `min_cell` reps lose `cols` (NaN) and get suppressed=True: with a
    handful of reps, a count or a rate says something about each of them."""
    t = table.copy()
    small = t[size_col] < min_cell
    t["suppressed"] = small
    for c in cols:
        if c in t:
            t[c] = t[c].astype(float).mask(small)
    return t


def finished_outcomes(
    tables,
    as_of,
    *,
    miss_threshold: float = 1.0,
    lookback_days: int = 365,
    notes: list[str] | None = None,
    covered_before: dt.date | None = None,
) -> pd.DataFrame:
    """Per rep and quota period that ended before `as_of` (within `lookback_days`) and that the data
    covers: attainment, missed (the training label, from the feature SQL:
    `features.build.period_outcomes`) and quota_vs_segment (the quota over the median quota of the
    same segment and period).

    A period is finished only when the data covers its end: it ends before the day after the data's
    latest event (`features.build.default_reference_day`, training's own "finished before"). A data
    folder exported before the as-of day holds only the first weeks of a period that ended between its
    export and the as-of day; its won amounts are short and its misses overstated, so it is left out,
    and a sentence saying how many periods and rep-periods and why is appended to `notes`.
    `covered_before`: that day when `tables` were cut from a folder running further (the report reads
    the folder as known on the as-of day: a quarter ending on a quiet Sunday before it is still
    covered, since the folder holds later events); default `default_reference_day(tables)`."""
    from features.build import default_reference_day, period_outcomes

    day = pd.Timestamp(as_of).date()
    out = period_outcomes(
        tables,
        day,
        since=day - dt.timedelta(days=lookback_days),
        miss_threshold=miss_threshold,
    )
    covered = covered_before if covered_before is not None else default_reference_day(tables)
    ends = pd.to_datetime(out["period_end"])
    cut = ends.notna() if covered is None else ends >= pd.Timestamp(covered)
    if not cut.any():
        return out
    left = out[cut]
    spans = sorted(
        {
            f"{pd.Timestamp(s).date()}..{pd.Timestamp(e).date()}"
            for s, e in zip(left["period_start"], left["period_end"], strict=True)
        }
    )
    if notes is not None:
        last = (
            Message("report.note.no_dated_event")
            if covered is None
            else Message("report.note.latest_event", day=covered - dt.timedelta(days=1))
        )
        notes.append(
            Message(
                "report.note.uncovered",
                n=len(spans),
                day=day,
                spans=Items(spans),
                rows=len(left),
                last=last,
            )
        )
    return out[~cut].reset_index(drop=True)


def outcome_table(groups: pd.Series, outcomes: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Per group: reps, rep-periods, realised miss rate (with a 1 - `alpha` interval from resampling
    reps) and median quota against the segment's."""
    df = pd.DataFrame(
        {
            "group": np.asarray(groups, dtype=object),
            "rep_id": outcomes["rep_id"].to_numpy(),
            "missed": outcomes["missed"].astype(float).to_numpy(),
            "quota_vs_segment": outcomes["quota_vs_segment"].astype(float).to_numpy(),
        }
    )
    t = df.groupby("group", sort=True).agg(
        n_reps=("rep_id", "nunique"),
        n_periods=("missed", "size"),
        miss_rate=("missed", "mean"),
        quota_vs_segment=("quota_vs_segment", "median"),
    )
    t = t.reset_index()
    df = df.dropna(subset=["missed"]).assign(one=1.0)
    _intervals(t, df, "miss_rate", "missed", "one", alpha)
    return t


# quotas this much harder (median quota against the segment's) for the more-flagged group are named
QUOTA_GAP = 0.05


def outcome_source(
    outcomes: pd.DataFrame | None, over: str, under: str, alpha: float, significant: bool = True
) -> str:
    """Whether the finished periods show the same disparity in the outcome itself (and in the quotas).
    `significant`: whether the flags' disparity itself is; if not, nothing is pinned on the model."""
    if outcomes is None or not len(outcomes):
        return Message("report.note.no_outcome_period")
    t = outcomes.set_index("group")
    if over not in t.index or under not in t.index or t.loc[[over, under], "suppressed"].any():
        return ""
    o, u = t.loc[over], t.loc[under]
    # tested on reps, not rep-periods (a rep's periods are not independent): conservative
    p = two_proportion_p(
        round(o["miss_rate"] * o["n_reps"]),
        int(o["n_reps"]),
        round(u["miss_rate"] * u["n_reps"]),
        int(u["n_reps"]),
    )
    facts = Message(
        "report.note.outcome_facts",
        over=group_name(over),
        under=group_name(under),
        rate_over=float(o["miss_rate"]),
        n_over=int(o["n_periods"]),
        rate_under=float(u["miss_rate"]),
        n_under=int(u["n_periods"]),
        p=p,
        quota_over=float(o["quota_vs_segment"]),
        quota_under=float(u["quota_vs_segment"]),
    )
    harder = o["quota_vs_segment"] >= u["quota_vs_segment"] * (1 + QUOTA_GAP)
    if o["miss_rate"] > u["miss_rate"] and p < alpha:
        key = "outcome_harder" if harder else "outcome_differs"
    elif harder:
        key = "outcome_quotas"
    elif not significant:
        key = "outcome_chance"
    else:
        key = "outcome_model"
    return Message(f"report.note.{key}", facts=facts, over=group_name(over))


def _callouts(audit: AttributeAudit, alpha: float = 0.05) -> list[Callout]:
    s = audit.selection
    if audit.reference is None:
        return []
    ref = s[s["reference"]].iloc[0]
    out = []
    for _, r in s[s["out_of_bounds"]].iterrows():
        if r["rate"] >= ref["rate"]:
            over, under = r, ref
        else:
            over, under = ref, r
        out.append(
            Callout(
                column=audit.column,
                kind=audit.kind,
                over=str(over["group"]),
                under=str(under["group"]),
                ratio=float(r["ratio"]),
                rate_over=float(over["rate"]),
                rate_under=float(under["rate"]),
                n_over=int(over["n"]),
                n_under=int(under["n"]),
                p_value=float(r["p_value"]),
                significant=bool(r["significant"]),
                source=outcome_source(
                    audit.outcomes, str(over["group"]), str(under["group"]), alpha, bool(r["significant"])
                )
                if audit.outcomes is not None
                else "",
            )
        )
    return out


# below this share of held-out reps found in `reps` with the same segment, they are other people
HELDOUT_MATCH_MIN = 0.5


def _heldout_of_these_reps(heldout: pd.DataFrame | None, reps: pd.DataFrame, notes: list[str]):
    """The held-out rows, or None (with a note) when they are not of this reps table's people.

    Calibration per group reads each held-out row's attribute from `reps` by rep_id. A model trained
    on another export (another organisation, a test set-up) has held-out rep ids that name other
    people here, or nobody: its rows would be grouped by strangers' attributes. Checked on the
    segment the held-out rows carry: most reps keep theirs from one quarter to the next."""
    if heldout is None or not len(heldout):
        return heldout
    h = heldout.drop_duplicates("rep_id").copy()
    h["rep_id"] = h["rep_id"].astype(str)
    known = h["rep_id"].isin(reps.index)
    if "segment" in h and "segment" in reps:
        here = h["rep_id"].map(reps["segment"]).astype(object)
        same = known & ((here == h["segment"].astype(object)) | (here.isna() & h["segment"].isna()))
    else:
        same = known
    share = float(same.mean())
    if share < HELDOUT_MATCH_MIN:
        notes.append(Message("report.note.heldout_strangers", share=share, n=len(h)))
        return None
    return heldout


def fairness_audit(
    scores: pd.DataFrame,
    reps: pd.DataFrame,
    *,
    heldout: pd.DataFrame | None = None,
    low: float = 0.8,
    high: float = 1.25,
    min_group_size: int = 50,
    reference: str = "most_flagged",
    alpha: float = 0.05,
    controls=("region",),
    model_features=(),
    outcomes: pd.DataFrame | None = None,
    min_cell: int = 10,
    high_cut: float | None = None,
    given: pd.DataFrame | None = None,
) -> FairnessAudit:
    """The audit of every attribute and control of `reps` for the scored reps.

    `scores`: rep_id and risk_band (high = selected). `heldout`: rep_id, risk, missed (the model's
    held-out rows with predicted risk); None skips calibration. `outcomes`: `finished_outcomes` of
    the data folder (None skips the outcome comparison). Groups with fewer than `min_cell` reps have
    their counts and rates suppressed. `high_cut`: the high band's cut point, for the error rates
    per group on the held-out rows (None: not computed). `given`: rep_id, risk, high, missed of the
    lists given out earlier whose outcomes are known (reporting.track_record.given_rows): the same
    table per group, its error rates those of the band each rep was given; None skips it.
    """
    if not 0 < low <= 1 <= high:
        raise ValueError("impact bounds must satisfy 0 < low <= 1 <= high")
    notes: list[str] = []
    cols = audit_columns(reps, controls)
    leaked = sorted(set(c for c, _ in cols if c in set(model_features)))
    if leaked:
        notes.append(Message("report.note.leaked", columns=Items(leaked)))
    if not [c for c, k in cols if k == "attribute"]:
        notes.append(Message("report.note.no_attributes"))
    r = reps.drop_duplicates("rep_id").copy()
    r["rep_id"] = r["rep_id"].astype(str)
    r = r.set_index("rep_id")
    sc = scores[["rep_id", "risk_band"]].copy()
    sc["rep_id"] = sc["rep_id"].astype(str)
    unknown = int((~sc["rep_id"].isin(r.index)).sum())
    if unknown:
        notes.append(Message("report.note.unknown_reps", n=unknown, missing=group_name(MISSING)))
    selected = (sc["risk_band"].astype(str) == "high").to_numpy()
    heldout = _heldout_of_these_reps(heldout, r, notes)
    audits, callouts = [], []

    def column_of(ids: pd.Series, col: str) -> pd.Series:
        return group_labels(ids.map(r[col]) if col in r else pd.Series(pd.NA, index=ids.index))

    # every table of one set of reps is merged with the others in view: one table's counts less
    # another's must not give back a small group either (protect_crossings)
    raws = {col: column_of(sc["rep_id"], col) for col, _ in cols}
    merging = {col: merge_small_groups(raws[col], min_size=min_group_size, min_cell=min_cell) for col in raws}
    bands = {}
    for b in BAND_TABLES:  # the report's reps per band, as reporting.summary.with_context reads them
        if b in scores.columns and not scores[b].isna().all():
            bands[b] = group_labels(scores[b].reset_index(drop=True))
        elif b in r:
            bands[b] = column_of(sc["rep_id"], b)
    crossed, crossed_joins = protect_crossings(
        {col: g for col, (g, _) in merging.items()},
        min_cell,
        fixed={
            Message("report.note.band_table", by=Message(f"report.band_by.{b}")): v for b, v in bands.items()
        },
    )
    held_groups, held_joins, held_folded = _crossed_rows(
        heldout if heldout is not None and len(heldout) else None,
        r,
        {col: set(crossed[col].unique()) for col in crossed},
        min_cell,
        column_of,
    )
    out_groups, out_joins, out_folded = _crossed_rows(
        outcomes, r, {col: set(crossed[col].unique()) for col in crossed}, min_cell, column_of
    )
    given = given if given is not None and len(given) else None
    given_groups, given_joins, given_folded = _crossed_rows(
        given, r, {col: set(crossed[col].unique()) for col in crossed}, min_cell, column_of
    )
    for col, kind in cols:
        raw = raws[col]
        groups, merged = crossed[col], list(merging[col][1])
        for moved, _ in crossed_joins[col]:
            merged = sorted(set(merged) | (set(moved) - {OTHER}))
        sizes = raw.value_counts()
        folded = [g for g in merging[col][1] if sizes.get(g, 0) >= min_group_size]
        merged_small = [g for g in merging[col][1] if g not in folded]
        table = selection_table(groups, selected, min_group_size)
        table, ref = impact_ratios(table, low=low, high=high, reference=reference, alpha=alpha)
        table = suppress_small(
            table, "n", ("n_high", "rate", "rate_low", "rate_high", "ratio_low", "ratio_high"), min_cell
        )
        a = AttributeAudit(
            column=col, kind=kind, selection=table, calibration=None, merged=merged, reference=ref
        )
        if merged_small:
            a.notes.append(
                Message(
                    "report.note.merged_small",
                    min_group=min_group_size,
                    other=group_name(OTHER),
                    groups=Items(group_name(g) for g in merged_small),
                )
            )
        if folded:
            a.notes.append(
                Message(
                    "report.note.joined_too",
                    groups=QuotedItems(group_name(g) for g in folded),
                    other=group_name(OTHER),
                    min_cell=min_cell,
                )
            )
        a.notes += [_crossed_note(moved, u, "", min_cell) for moved, u in crossed_joins[col]]
        small = table.loc[~table["judged"], "group"].tolist()
        if small:
            a.notes.append(
                Message(
                    "report.note.too_small",
                    min_group=min_group_size,
                    groups=Items(group_name(g) for g in small),
                )
            )
        if ref is None:
            a.notes.append(Message("report.note.no_ratio"))
        if held_groups is not None:
            a.notes += _rows_notes(held_folded[col], held_joins[col], "in_heldout", min_cell)
            cal = _rows_calibration(held_groups[col], heldout, alpha, high_cut=high_cut)
            a.calibration = suppress_small(cal, "n_reps", _RATE_COLUMNS, min_cell)
        if given_groups is not None:
            a.notes += _rows_notes(given_folded[col], given_joins[col], "in_given", min_cell)
            cal = _rows_calibration(given_groups[col], given, alpha, high=given["high"])
            a.given = suppress_small(cal, "n_reps", _RATE_COLUMNS, min_cell)
        if out_groups is not None:
            a.notes += _rows_notes(out_folded[col], out_joins[col], "in_finished", min_cell)
            og = out_groups[col]
            a.outcomes = suppress_small(outcome_table(og, outcomes, alpha), "n_reps", _RATE_COLUMNS, min_cell)
        if table["suppressed"].any():
            a.notes.append(
                Message(
                    "report.note.suppressed",
                    min_cell=min_cell,
                    groups=Items(group_name(g) for g in table.loc[table["suppressed"], "group"]),
                )
            )
        audits.append(a)
        callouts.extend(_callouts(a, alpha))
    # attributes first, then controls; the largest disparities first within each
    callouts.sort(
        key=lambda c: (c.kind != "attribute", not c.significant, c.ratio if c.ratio <= 1 else 1 / c.ratio)
    )
    return FairnessAudit(audits, callouts, low, high, min_group_size, reference, notes, min_cell=min_cell)
