"""The intervention playbook: a YAML file of rules from risk drivers to catalog interventions.

The default playbook (`models/playbook.yaml`) ships with the package and is bundled into every
trained model; HR may edit a copy and pass it at scoring (`repradar score --playbook FILE`, or the
`playbook` setting: REPRADAR_PLAYBOOK=FILE). Loading
validates everything (unknown intervention ids, features, groups, placeholders; conditions that do
not parse) and refuses a broken file with the file name and line. Conditions use a small grammar
parsed here (no `eval`); see docs/playbook.md.

`recommend_frame` (the pure end of it all) turns a scored frame into the extra score columns:
`interventions` (best first), `intervention_reasons`, `driver_groups`, `quota_share`,
`insufficient_data`, `recourse`, `notes`.
"""

from __future__ import annotations

import functools
import math
import re
import string
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from models import i18n
from models.currency import DEFAULT_CURRENCY
from models.spec import base_feature
from repradar.errors import UserError

DEFAULT_PLAYBOOK = Path(__file__).resolve().parent / "playbook.yaml"
PLAYBOOK_ENV = "REPRADAR_PLAYBOOK"  # read by repradar.settings.Settings.playbook


class PlaybookError(UserError):
    """A playbook file that cannot be used; the message names the file and the line."""


class PlaybookWarning(str):
    """Something a loaded playbook should be checked for (the file still loads); `feature` is the name
    it is about, so that scoring can leave it out when the data holds that feature."""

    feature: str = ""


def catalog_ids() -> tuple[str, ...]:
    """The intervention catalog (shared/spec/interventions.md), as the data contract lists it."""
    from features.contract import INTERVENTION_IDS

    return tuple(INTERVENTION_IDS)


def known_groups() -> dict[str, bool]:
    """Registry groups -> actionable, plus `other` (features the registry does not know: context)."""
    from features.registry import GROUPS

    out = {g: bool(v.actionable) for g, v in GROUPS.items()}
    out.setdefault("other", False)
    return out


def known_features() -> list[str]:
    from features.registry import feature_names

    return list(feature_names())


def _is_feature(name: str) -> bool:
    from features.registry import is_unknown_metric_feature

    return name in set(known_features()) or is_unknown_metric_feature(name)


def _metric_features(metric: str) -> str:
    """The fixed features a metric of the data contract is read into (pulse_score: pulse_mean_28d ...)."""
    head = metric.split("_")[0] + "_"
    return ", ".join(f for f in known_features() if f.startswith(head))


def _engagement_warning(name: str) -> tuple[str, str] | None:
    """(feature, text) when `name` (or its peer./team. feature) reads an `eng__` feature of a metric
    the data contract does not know, or of one it does: either may be a typo that never has figures."""
    import difflib

    from features.contract import KNOWN_METRICS
    from features.registry import UNKNOWN_METRIC_PREFIX, UNKNOWN_METRIC_SUFFIX, is_unknown_metric_feature

    prefix, _, rest = name.partition(".")
    base = rest if prefix in ("peer", "team") and rest else name
    if not is_unknown_metric_feature(base):
        return None
    metric = base[len(UNKNOWN_METRIC_PREFIX) : -len(UNKNOWN_METRIC_SUFFIX)]
    if metric in KNOWN_METRICS:
        return base, (
            f"{base}: {metric!r} is a metric of the data contract, read into {_metric_features(metric)}; "
            f"an {UNKNOWN_METRIC_PREFIX} feature of it has figures only when an export spells the metric "
            f"otherwise (e.g. {metric.replace('_', ' ').title()!r}), so read those features instead"
        )
    close = difflib.get_close_matches(metric, list(KNOWN_METRICS), n=1)
    hint = (
        f" (did you mean {close[0]}? that metric of the contract is read into {_metric_features(close[0])})"
        if close
        else ""
    )
    return base, (
        f"{base} reads engagement metric {metric!r}, which the data contract does not know: it has figures "
        f"only if the export holds a metric of that name (a custom metric), so check the spelling{hint}"
    )


def _eng_hint(name: str) -> str:
    """What to write instead of an `eng__` name that is no feature, or "" for other names."""
    from features.contract import KNOWN_METRICS
    from features.registry import UNKNOWN_METRIC_PREFIX, UNKNOWN_METRIC_SUFFIX, unknown_metric_feature

    if not name.startswith(UNKNOWN_METRIC_PREFIX):
        return ""
    m = re.fullmatch(re.escape(UNKNOWN_METRIC_PREFIX) + r"(.+?)_[a-z]+_\d+d", name)
    if m and m.group(1) in KNOWN_METRICS:
        hint = f" (the contract's metric {m.group(1)!r} is read into {_metric_features(m.group(1))})"
    elif m:
        hint = f" (did you mean {unknown_metric_feature(m.group(1))!r}?)"
    else:
        hint = ""
    # the feature SQL (engagement_unknown.sql) computes the 28-day mean only
    return hint + (
        f"; a metric outside the data contract becomes one feature, {UNKNOWN_METRIC_PREFIX}<metric>"
        f"{UNKNOWN_METRIC_SUFFIX} (its 28-day mean; no other statistic or window)"
    )


# ==============================================================================================
# the condition grammar
#
#   expr    := or
#   or      := and ("or" and)*
#   and     := not ("and" not)*
#   not     := "not" not | cmp
#   cmp     := sum (("<" | "<=" | ">" | ">=" | "==" | "!=") sum)?
#   sum     := prod (("+" | "-") prod)*
#   prod    := unary (("*" | "/") unary)*
#   unary   := "-" unary | primary
#   primary := NUMBER | NAME | "missing" "(" NAME ")" | "present" "(" NAME ")" | "(" expr ")"
#   NAME    := word ("." word)?       e.g. win_rate_180d, peer.win_rate_180d, contribution.pipeline
#
# Values are numbers; a missing value (NaN) makes a comparison unknown, and unknown follows
# three-valued logic (false and unknown = false, true or unknown = true); a rule fires only when
# its condition is true.

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)"
    r"|(?P<op><=|>=|==|!=|<|>|\+|-|\*|/|\(|\)|,))"
)
_KEYWORDS = {"and", "or", "not", "missing", "present", "rel", "nz", "min", "max"}
# rel(x): the rep's (or team.x: the team's) value against the peers' as a relative gap, x / peer.x - 1,
# clipped to [REL_LOW, REL_HIGH]; 0 when either is missing (no evidence either way).
REL_LOW, REL_HIGH = -1.0, 2.0
_CMP = {"<", "<=", ">", ">=", "==", "!="}


class ConditionError(ValueError):
    """A condition that does not parse; `pos` is the 0-based column in the condition text."""

    def __init__(self, message: str, pos: int):
        super().__init__(message)
        self.pos = pos


@dataclass(frozen=True)
class Node:
    kind: str  # num, name, missing, neg, arith, cmp, and, or, not
    value: object = None
    args: tuple = ()
    pos: int = 0

    @property
    def type(self) -> str:
        return "bool" if self.kind in ("missing", "cmp", "and", "or", "not") else "num"


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out, i = [], 0
    while i < len(text):
        if text[i:].strip() == "":
            break
        m = _TOKEN.match(text, i)
        if not m or m.end() == i:
            j = i + (len(text[i:]) - len(text[i:].lstrip()))
            raise ConditionError(f"unexpected character {text[j]!r}", j)
        kind = m.lastgroup
        tok = m.group(kind)
        start = m.start(kind)
        if kind == "name" and tok in _KEYWORDS:
            kind = "kw"
        out.append((kind, tok, start))
        i = m.end()
    out.append(("end", "", len(text)))
    return out


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.toks = _tokens(text)
        self.i = 0

    def peek(self):
        return self.toks[self.i]

    def take(self):
        t = self.toks[self.i]
        self.i += 1
        return t

    def expect(self, kind, value=None):
        t = self.take()
        if t[0] != kind or (value is not None and t[1] != value):
            want = value or kind
            got = t[1] or "the end of the condition"
            raise ConditionError(f"expected {want!r} but found {got!r}", t[2])
        return t

    def parse(self, want: str = "bool") -> Node:
        if self.peek()[0] == "end":
            raise ConditionError("the expression is empty", 0)
        node = self.or_()
        t = self.peek()
        if t[0] != "end":
            raise ConditionError(f"unexpected {t[1]!r} (missing 'and'/'or' or an operator?)", t[2])
        _check(node, want)
        return node

    def or_(self):
        node = self.and_()
        while self.peek()[:2] == ("kw", "or"):
            t = self.take()
            node = Node("or", args=(node, self.and_()), pos=t[2])
        return node

    def and_(self):
        node = self.not_()
        while self.peek()[:2] == ("kw", "and"):
            t = self.take()
            node = Node("and", args=(node, self.not_()), pos=t[2])
        return node

    def not_(self):
        if self.peek()[:2] == ("kw", "not"):
            t = self.take()
            return Node("not", args=(self.not_(),), pos=t[2])
        return self.cmp()

    def cmp(self):
        left = self.sum()
        t = self.peek()
        if t[0] == "op" and t[1] in _CMP:
            self.take()
            right = self.sum()
            node = Node("cmp", value=t[1], args=(left, right), pos=t[2])
            nt = self.peek()
            if nt[0] == "op" and nt[1] in _CMP:
                raise ConditionError("chained comparisons are not supported; join them with 'and'", nt[2])
            return node
        return left

    def sum(self):
        node = self.prod()
        while self.peek()[0] == "op" and self.peek()[1] in ("+", "-"):
            t = self.take()
            node = Node("arith", value=t[1], args=(node, self.prod()), pos=t[2])
        return node

    def prod(self):
        node = self.unary()
        while self.peek()[0] == "op" and self.peek()[1] in ("*", "/"):
            t = self.take()
            node = Node("arith", value=t[1], args=(node, self.unary()), pos=t[2])
        return node

    def unary(self):
        if self.peek()[:2] == ("op", "-"):
            t = self.take()
            return Node("neg", args=(self.unary(),), pos=t[2])
        return self.primary()

    def primary(self):
        t = self.take()
        kind, tok, pos = t
        if kind == "num":
            return Node("num", value=float(tok), pos=pos)
        if kind == "name":
            return Node("name", value=tok, pos=pos)
        if kind == "kw" and tok in ("missing", "present", "rel"):
            self.expect("op", "(")
            n = self.expect("name")
            self.expect("op", ")")
            if tok == "rel":
                return Node("rel", value=n[1], pos=n[2])
            node = Node("missing", value=n[1], pos=n[2])
            return node if tok == "missing" else Node("not", args=(node,), pos=pos)
        if kind == "kw" and tok in ("nz", "min", "max"):
            self.expect("op", "(")
            args = [self.or_()]
            while tok != "nz" and self.peek()[:2] == ("op", ","):
                self.take()
                args.append(self.or_())
            self.expect("op", ")")
            if tok != "nz" and len(args) < 2:
                raise ConditionError(f"{tok}() takes two or more numbers", pos)
            return Node("func", value=tok, args=tuple(args), pos=pos)
        if kind == "op" and tok == "(":
            node = self.or_()
            self.expect("op", ")")
            return node
        got = tok or "the end of the condition"
        raise ConditionError(f"expected a number, a name or '(' but found {got!r}", pos)


def _check(node: Node, want: str) -> None:
    """Type check: and/or/not take conditions, comparisons and arithmetic take numbers."""
    if node.kind in ("and", "or", "not"):
        for a in node.args:
            _check(a, "bool")
    elif node.kind in ("cmp", "arith", "neg", "func"):
        for a in node.args:
            _check(a, "num")
    if node.type != want:
        if want == "bool":
            raise ConditionError("this is a number, not a condition (compare it with <, >, == ...)", node.pos)
        raise ConditionError("a condition cannot be used as a number", node.pos)


def parse_condition(text: str) -> Node:
    """Parse a condition; ConditionError (with the column) if it does not parse."""
    return _Parser(str(text)).parse()


def parse_expression(text: str) -> Node:
    """Parse a numeric expression (a rule's strength); ConditionError if it does not parse."""
    return _Parser(str(text)).parse(want="num")


def condition_names(node: Node) -> set[str]:
    if node.kind in ("name", "missing"):
        return {node.value}
    if node.kind == "rel":
        rest = node.value.split(".", 1)[1] if node.value.startswith("team.") else node.value
        return {node.value, f"peer.{rest}"}
    out = set()
    for a in node.args:
        out |= condition_names(a)
    return out


def evaluate(node: Node, env) -> np.ndarray:
    """Evaluate over `env` (name -> array); conditions give 1.0 true, 0.0 false, NaN unknown."""
    k = node.kind
    if k == "num":
        return np.float64(node.value)
    if k == "name":
        return np.asarray(env[node.value], dtype=float)
    if k == "missing":
        return np.isnan(np.asarray(env[node.value], dtype=float)).astype(float)
    if k == "neg":
        return -evaluate(node.args[0], env)
    if k == "rel":
        rest = node.value.split(".", 1)[1] if node.value.startswith("team.") else node.value
        x = np.asarray(env[node.value], dtype=float)
        p = np.asarray(env[f"peer.{rest}"], dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where((p != 0) & ~np.isnan(p) & ~np.isnan(x), x / np.where(p != 0, p, 1.0) - 1.0, 0.0)
        return np.clip(np.nan_to_num(r, nan=0.0), REL_LOW, REL_HIGH)
    if k == "func":
        vals = [np.asarray(evaluate(a, env), dtype=float) for a in node.args]
        if node.value == "nz":
            return np.nan_to_num(vals[0], nan=0.0)
        return (
            np.fmin.reduce(np.broadcast_arrays(*vals))
            if node.value == "min"
            else np.fmax.reduce(np.broadcast_arrays(*vals))
        )
    if k == "arith":
        a, b = (evaluate(x, env) for x in node.args)
        with np.errstate(divide="ignore", invalid="ignore"):
            if node.value == "+":
                r = a + b
            elif node.value == "-":
                r = a - b
            elif node.value == "*":
                r = a * b
            else:
                r = np.where(b == 0, np.nan, a / np.where(b == 0, 1.0, b))
        return np.where(np.isinf(r), np.nan, r)
    if k == "cmp":
        a, b = (np.asarray(evaluate(x, env), dtype=float) for x in node.args)
        op = node.value
        with np.errstate(invalid="ignore"):
            r = {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b, "==": a == b, "!=": a != b}[op]
        return np.where(np.isnan(a) | np.isnan(b), np.nan, r.astype(float))
    if k == "not":
        return 1.0 - evaluate(node.args[0], env)
    a, b = (np.asarray(evaluate(x, env), dtype=float) for x in node.args)
    if k == "and":
        return np.where((a == 0) | (b == 0), 0.0, np.where(np.isnan(a) | np.isnan(b), np.nan, 1.0))
    return np.where((a == 1) | (b == 1), 1.0, np.where(np.isnan(a) | np.isnan(b), np.nan, 0.0))


# ==============================================================================================
# variables a condition or a reason may name

BUILTINS = {
    "risk": "calibrated risk of the row (0..1)",
    "quota_share": "share of the rep-side risk that comes from the quota group (0..1)",
    "insufficient_data": "1 when the rep's history is too short for the features that matter, else 0",
    "team.risk": "mean risk of the reps of the same manager scored on the same day",
    "team.high_share": "share of the same manager's reps in the high band on the same day",
    "team.size": "reps of the same manager scored on the same day",
    "org.risk": "mean risk of every rep scored on the same day",
    "org.high_share": "share of every rep scored on the same day in the high band",
}
PREFIXED = {
    "peer": "the peers' value of a feature (segment median on the same day; organisation-wide without segment peers)",
    "contribution": "the sum of a group's SHAP contributions for the row (log-odds; > 0 raises risk)",
    "rank": "the rank of a group among the row's risk-raising groups (1 = strongest; missing if it lowers risk)",
    "team": "the median of a feature over the reps of the same manager scored on the same day",
}
# names a reason template may use besides the variables
TEMPLATE_EXTRAS = {"segment", "peers"}


def check_name(name: str) -> str | None:
    """None if `name` is a known variable, else a message saying what is wrong."""
    if name in BUILTINS or _is_feature(name):
        return None
    if "." in name:
        prefix, rest = name.split(".", 1)
        if prefix == "peer":
            return None if _is_feature(rest) else f"unknown feature {rest!r} in {name!r}" + _eng_hint(rest)
        if prefix in ("contribution", "rank"):
            return None if rest in known_groups() else f"unknown group {rest!r} in {name!r}"
        if prefix == "team" and _is_feature(rest):
            return None
        if prefix == "team" and rest.startswith("eng__"):
            return f"unknown feature {rest!r} in {name!r}" + _eng_hint(rest)
        if prefix in ("team", "org"):
            return (
                f"unknown name {name!r} (known: {', '.join(b for b in BUILTINS if '.' in b)}, team.<feature>)"
            )
        return f"unknown prefix {prefix!r} in {name!r} (known: {', '.join(PREFIXED)}, team, org)"
    return f"unknown feature or name {name!r}" + (_eng_hint(name) or _suggest(name))


def _suggest(name: str) -> str:
    import difflib

    pool = known_features() + list(BUILTINS)
    close = difflib.get_close_matches(name, pool, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# ==============================================================================================
# loading with line numbers


class _Map(dict):
    line: int = 0
    lines: dict


class _Seq(list):
    line: int = 0
    lines: list


def _from_node(node):
    """YAML node -> plain Python, with 1-based line numbers on mappings and sequences."""
    if isinstance(node, yaml.MappingNode):
        out = _Map()
        out.line, out.lines = node.start_mark.line + 1, {}
        for k, v in node.value:
            key = _from_node(k)
            out[key] = _from_node(v)
            out.lines[key] = k.start_mark.line + 1  # the key's line: where a reader looks
        return out
    if isinstance(node, yaml.SequenceNode):
        out = _Seq(_from_node(v) for v in node.value)
        out.line = node.start_mark.line + 1
        out.lines = [v.start_mark.line + 1 for v in node.value]
        return out
    return yaml.safe_load(yaml.serialize(node)) if node.tag != "tag:yaml.org,2002:str" else node.value


@dataclass
class Rule:
    name: str
    suggest: list[str]
    groups: list[str] = field(default_factory=list)
    when: str | None = None
    condition: Node | None = None
    weight: float = 1.0
    reason: dict[str, str] = field(default_factory=dict)  # lang -> template
    line: int = 0
    strength: str | None = None
    strength_expr: Node | None = None
    # lines of `when:` and `strength:` (0 without them): what a note about the figures they read points at
    when_line: int = 0
    strength_line: int = 0


SETTING_DEFAULTS = {
    "max_interventions": 3,
    "min_contribution": 0.02,
    "secondary_weight": 0.5,
    "quota_share_high": 0.5,
    "quota_groups": ["quota"],
    "fallback": "regular_checkins",
    "insufficient_data": ["mentoring", "regular_checkins"],
    "min_history_days": 90,
    "recourse_quantile": 0.75,
}


@dataclass
class Playbook:
    rules: list[Rule]
    settings: dict
    source: str = "<playbook>"
    text: str = ""
    version: int = 1
    # what the file should be checked for though it loads (PlaybookWarning: "playbook F, line N: ...")
    warnings: list[PlaybookWarning] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "version": self.version,
            "settings": dict(self.settings),
            "rules": [
                {
                    "name": r.name,
                    **({"group": r.groups[0] if len(r.groups) == 1 else list(r.groups)} if r.groups else {}),
                    **({"when": r.when} if r.when else {}),
                    **({"strength": r.strength} if r.strength else {}),
                    "suggest": list(r.suggest),
                    "weight": r.weight,
                    "reason": {("zh" if k == "zh-CN" else k): v for k, v in r.reason.items()},
                }
                for r in self.rules
            ],
        }

    def names(self) -> set[str]:
        out = set()
        for r in self.rules:
            if r.condition is not None:
                out |= condition_names(r.condition)
            if r.strength_expr is not None:
                out |= condition_names(r.strength_expr)
            for t in r.reason.values():
                out |= {f for _, f, _, _ in string.Formatter().parse(t) if f}
        return out - TEMPLATE_EXTRAS


def _fail(source: str, line: int, message: str):
    raise PlaybookError(f"playbook {source}, line {line}: {message}")


def _warn_names(out: list, seen: set, names, source: str, line: int, where: str) -> None:
    """Add a warning per `eng__` feature of `names` that `_engagement_warning` doubts, once a rule."""
    for n in sorted(names):
        found = _engagement_warning(n)
        if found is None or (where, found[0]) in seen:
            continue
        seen.add((where, found[0]))
        w = PlaybookWarning(f"playbook {source}, line {line}: {where}: {found[1]}")
        w.feature = found[0]
        out.append(w)


def _langs(reason, source, line, where) -> dict[str, str]:
    if not isinstance(reason, dict):
        _fail(source, line, f"{where}: 'reason' must map languages to texts, e.g. en: ... and zh: ...")
    out = {}
    for key, lang in (("en", "en"), ("zh", "zh-CN"), ("zh-CN", "zh-CN")):
        if key in reason:
            if not isinstance(reason[key], str) or not reason[key].strip():
                _fail(
                    source, reason.lines.get(key, line), f"{where}: reason {key!r} must be a non-empty text"
                )
            out[lang] = reason[key]
    unknown = set(reason) - {"en", "zh", "zh-CN"}
    if unknown:
        k = sorted(unknown)[0]
        _fail(
            source, reason.lines.get(k, line), f"{where}: unknown language {k!r} in 'reason' (use en and zh)"
        )
    for lang in i18n.LANGUAGES:
        if lang not in out:
            _fail(
                source,
                line,
                f"{where}: the reason needs a text in both languages; {i18n.SUFFIX[lang]!r} is missing",
            )
    return out


def _check_template(template: str, source: str, line: int, where: str) -> None:
    try:
        fields = [f for _, f, spec, conv in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        _fail(
            source,
            line,
            f"{where}: the reason text is malformed ({exc}); write a literal brace as {{{{ or }}}}",
        )
    for f in fields:
        if f == "":
            _fail(
                source,
                line,
                f"{where}: empty placeholder {{}} in the reason; name a feature, e.g. {{win_rate_180d}}",
            )
        if f in TEMPLATE_EXTRAS:
            continue
        problem = check_name(f)
        if problem:
            _fail(source, line, f"{where}: the reason's placeholder {{{f}}}: {problem}")


def parse_playbook(text: str, source: str = "<playbook>") -> Playbook:
    """Parse and validate a playbook text; PlaybookError naming `source` and the line otherwise."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        _fail(source, line, f"not valid YAML: {exc.problem or exc}")
    if node is None:
        _fail(source, 1, "the file is empty; it needs a 'rules:' list")
    doc = _from_node(node)
    if not isinstance(doc, dict):
        _fail(source, 1, "the file must be a mapping with 'version', 'settings' and 'rules'")
    unknown = set(doc) - {"version", "settings", "rules", "note"}
    if unknown:
        k = sorted(unknown)[0]
        _fail(source, doc.lines[k], f"unknown key {k!r} (the file holds version, settings, rules)")
    ids = set(catalog_ids())
    groups = known_groups()

    settings = dict(SETTING_DEFAULTS)
    raw = doc.get("settings") or _Map()
    if "settings" in doc and not isinstance(raw, dict):
        _fail(source, doc.lines["settings"], "'settings' must be a mapping")
    for k, v in raw.items():
        line = raw.lines.get(k, 1) if isinstance(raw, _Map) else 1
        if k not in SETTING_DEFAULTS:
            _fail(source, line, f"unknown setting {k!r} (known: {', '.join(SETTING_DEFAULTS)})")
        settings[k] = _check_setting(k, v, source, line, ids, groups)

    rules_raw = doc.get("rules")
    if not isinstance(rules_raw, list):
        _fail(source, doc.lines.get("rules", 1), "'rules' must be a list of rules")
    rules, seen = [], set()
    warnings, warned = [], set()
    for i, r in enumerate(rules_raw):
        line = rules_raw.lines[i]
        if not isinstance(r, dict):
            _fail(
                source,
                line,
                "each rule must be a mapping with name, suggest, reason (and group, when, weight)",
            )
        name = r.get("name")
        where = f"rule {name!r}" if name else f"rule #{i + 1}"
        bad = set(r) - {"name", "group", "when", "strength", "suggest", "weight", "reason"}
        if bad:
            k = sorted(bad)[0]
            _fail(
                source,
                r.lines[k],
                f"{where}: unknown key {k!r} (a rule has name, group, when, strength, suggest, weight, reason)",
            )
        if not isinstance(name, str) or not name:
            _fail(source, line, f"{where}: every rule needs a 'name'")
        if name in seen:
            _fail(source, r.lines["name"], f"{where}: the name is used twice; names must be unique")
        seen.add(name)
        sug = r.get("suggest")
        if isinstance(sug, str):
            sug = _Seq([sug])
            sug.lines = [r.lines["suggest"]]
        if not isinstance(sug, list) or not sug:
            _fail(
                source,
                r.lines.get("suggest", line),
                f"{where}: 'suggest' must list one or more intervention ids",
            )
        for j, s in enumerate(sug):
            if s not in ids:
                import difflib

                close = difflib.get_close_matches(str(s), sorted(ids), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                _fail(
                    source,
                    sug.lines[j],
                    f"{where}: unknown intervention id {s!r}{hint}; the catalog holds {', '.join(sorted(ids))}",
                )
        grp = r.get("group", [])
        grp = [grp] if isinstance(grp, str) else grp
        if not isinstance(grp, list):
            _fail(source, r.lines["group"], f"{where}: 'group' must be a group name or a list of them")
        for g in grp:
            gl = r.lines["group"]
            if g not in groups:
                _fail(source, gl, f"{where}: unknown group {g!r} (known: {', '.join(sorted(groups))})")
            if not groups[g]:
                _fail(
                    source,
                    gl,
                    f"{where}: group {g!r} is context (no manager can act on it) and cannot drive an intervention; use it in 'when' instead",
                )
        when = r.get("when")
        cond = None
        if when is not None:
            wl = r.lines["when"]
            if not isinstance(when, str):
                _fail(
                    source,
                    wl,
                    f"{where}: 'when' must be a condition text, e.g. \"win_rate_180d < peer.win_rate_180d\"",
                )
            try:
                cond = parse_condition(when)
            except ConditionError as exc:
                _fail(
                    source,
                    wl,
                    f"{where}: the condition does not parse at column {exc.pos + 1}: {exc}\n    {when}\n    {' ' * exc.pos}^",
                )
            for n in sorted(condition_names(cond)):
                problem = check_name(n)
                if problem:
                    _fail(source, wl, f"{where}: in the condition, {problem}")
            _warn_names(warnings, warned, condition_names(cond), source, wl, where)
        strength = r.get("strength")
        sexpr = None
        if strength is not None:
            sl = r.lines["strength"]
            if isinstance(strength, bool) or not isinstance(strength, str | int | float):
                _fail(
                    source,
                    sl,
                    f"{where}: 'strength' must be a number or an expression, e.g. \"1 - win_rate_180d / peer.win_rate_180d\"",
                )
            try:
                sexpr = parse_expression(str(strength))
            except ConditionError as exc:
                _fail(
                    source,
                    sl,
                    f"{where}: the strength does not parse at column {exc.pos + 1}: {exc}\n    {strength}\n    {' ' * exc.pos}^",
                )
            for nm in sorted(condition_names(sexpr)):
                problem = check_name(nm)
                if problem:
                    _fail(source, sl, f"{where}: in the strength, {problem}")
            _warn_names(warnings, warned, condition_names(sexpr), source, sl, where)
        if not grp and cond is None and sexpr is None:
            _fail(
                source,
                line,
                f"{where}: a rule needs a 'group' (the driver it answers), a 'when' condition or a 'strength'",
            )
        weight = r.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not weight > 0:
            _fail(source, r.lines.get("weight", line), f"{where}: 'weight' must be a positive number")
        if "reason" not in r:
            _fail(source, line, f"{where}: a rule needs a 'reason' with en and zh texts")
        reason = _langs(r["reason"], source, r.lines["reason"], where)
        for lang, t in reason.items():
            rl = r["reason"].lines.get(
                "zh" if lang == "zh-CN" and "zh" in r["reason"] else lang, r.lines["reason"]
            )
            _check_template(t, source, rl, where)
            fields = {f for _, f, _, _ in string.Formatter().parse(t) if f} - TEMPLATE_EXTRAS
            _warn_names(warnings, warned, fields, source, rl, where)
        rules.append(
            Rule(
                name,
                list(sug),
                list(grp),
                when,
                cond,
                float(weight),
                reason,
                line,
                None if strength is None else str(strength),
                sexpr,
                when_line=r.lines["when"] if cond is not None else 0,
                strength_line=r.lines["strength"] if sexpr is not None else 0,
            )
        )
    if not rules:
        _fail(source, doc.lines.get("rules", 1), "the playbook has no rules")
    return Playbook(
        rules=rules,
        settings=settings,
        source=source,
        text=text,
        version=int(doc.get("version", 1) or 1),
        warnings=warnings,
    )


def _check_setting(k, v, source, line, ids, groups):
    if k in ("max_interventions", "min_history_days"):
        if isinstance(v, bool) or not isinstance(v, int) or v < (1 if k == "max_interventions" else 0):
            _fail(
                source,
                line,
                f"setting {k!r} must be a whole number"
                + (" of at least 1" if k == "max_interventions" else ""),
            )
    elif k in ("min_contribution", "secondary_weight"):
        if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
            _fail(source, line, f"setting {k!r} must be a number >= 0")
        v = float(v)
    elif k in ("quota_share_high", "recourse_quantile"):
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v <= 1:
            _fail(source, line, f"setting {k!r} must be a number in (0, 1]")
        v = float(v)
    elif k == "quota_groups":
        v = [v] if isinstance(v, str) else v
        if not isinstance(v, list) or not all(g in groups for g in v):
            _fail(
                source, line, f"setting 'quota_groups' must list known groups ({', '.join(sorted(groups))})"
            )
        v = list(v)
    elif k == "fallback":
        if v not in ids:
            _fail(source, line, f"setting 'fallback': unknown intervention id {v!r}")
    elif k == "insufficient_data":
        v = [v] if isinstance(v, str) else v
        if not isinstance(v, list) or not v:
            _fail(source, line, "setting 'insufficient_data' must list intervention ids")
        for s in v:
            if s not in ids:
                _fail(source, line, f"setting 'insufficient_data': unknown intervention id {s!r}")
        v = list(v)
    return v


def load_playbook(path: str | Path | None = None) -> Playbook:
    """Load and validate a playbook file (default: the one shipped with the package)."""
    path = Path(path) if path is not None else DEFAULT_PLAYBOOK
    if not path.is_file():
        raise PlaybookError(
            f"playbook file {str(path)!r} does not exist; pass a YAML file (docs/playbook.md)"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PlaybookError(f"cannot read playbook {str(path)!r}: {exc}") from None
    return parse_playbook(text, source=path.name if path == DEFAULT_PLAYBOOK else str(path))


def default_playbook() -> Playbook:
    return load_playbook(DEFAULT_PLAYBOOK)


def _settings(settings=None):
    """`settings`, or the installation's settings read afresh from the environment (REPRADAR_*)."""
    if settings is not None:
        return settings
    from repradar.settings import Settings

    return Settings()


def playbook_override(settings=None) -> Path | None:
    """The playbook file the operator chose: the `playbook` setting (REPRADAR_PLAYBOOK), else None."""
    value = getattr(_settings(settings), "playbook", None)
    return Path(value) if value else None


def option(settings, name: str, default):
    """A knob of the settings (REPRADAR_<NAME>) when set, else `default`."""
    v = getattr(_settings(settings), name, None)
    return default if v is None else v


# ==============================================================================================
# applying the rules


def variables(frame: pd.DataFrame, peers: pd.DataFrame, group_contrib: pd.DataFrame, extra: dict) -> dict:
    """Name -> array for every variable a condition may use (rows as `frame`)."""
    n = len(frame)
    env: dict[str, np.ndarray] = {}
    for f in known_features():
        env[f] = (
            pd.to_numeric(frame[f], errors="coerce").to_numpy(dtype=float)
            if f in frame
            else np.full(n, np.nan)
        )
    for c in frame.columns:
        if c.startswith("eng__"):
            env[c] = pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=float)
    for f in peers.columns:
        env[f"peer.{f}"] = peers[f].to_numpy(dtype=float)
    groups = known_groups()
    g = group_contrib.reindex(columns=sorted(set(groups) | set(group_contrib.columns)), fill_value=0.0)
    for c in g.columns:
        env[f"contribution.{c}"] = g[c].to_numpy(dtype=float)
    vals = g.to_numpy(dtype=float)
    ranks = np.full(vals.shape, np.nan)
    for i in range(n):
        order = [j for j in np.argsort(-vals[i], kind="stable") if vals[i, j] > 0]
        for r, j in enumerate(order, start=1):
            ranks[i, j] = r
    for j, c in enumerate(g.columns):
        env[f"rank.{c}"] = ranks[:, j]
    for k, v in extra.items():
        env[k] = np.asarray(v, dtype=float)
    return _Env(env, n, frame)


class _Env(dict):
    """Variables; team medians are computed on first use; a feature the data lacks reads as missing."""

    def __init__(self, data, n, frame=None):
        super().__init__(data)
        self.n = n
        self.frame = frame

    def __missing__(self, key):
        prefix, _, rest = key.partition(".")
        f = self.frame
        if prefix == "team" and f is not None and rest in f and "manager_id" in f:
            x = pd.to_numeric(f[rest], errors="coerce").astype(float)
            keys = [f["manager_id"].astype("string").fillna("\x00")]
            if "as_of" in f:
                keys.append(f["as_of"])
            v = x.groupby(keys, sort=False).transform("median").to_numpy(dtype=float)
            self[key] = v
            return v
        if check_name(key) is None:
            v = np.full(self.n, np.nan)
            self[key] = v  # asked again for every row's reason
            return v
        raise KeyError(key)


def _format_var(name: str, value: float, lang: str, units: dict[str, str], currency: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a" if lang == "en" else "无数据"
    if name in ("risk", "quota_share", "team.risk", "team.high_share", "org.risk", "org.high_share"):
        return f"{value * 100:.0f}%"
    if name.startswith("contribution."):
        return f"{value:+.2f}"
    if name.startswith("rank.") or name in ("team.size", "insufficient_data"):
        return f"{value:.0f}"
    f = base_feature(name.split(".", 1)[1] if name.startswith(("peer.", "team.")) else name)
    unit = units.get(f)
    return i18n.format_value(
        value, i18n.feature_unit(f) if unit is None else unit, lang, currency=currency, feature=f
    )


_CLAUSES = re.compile(r"(; |;|\uff1b)")  # "a; b" in English, "a;b" in Chinese


def _base(name: str) -> str:
    """The feature a variable is about: peer.x and team.x are about x."""
    prefix, _, rest = name.partition(".")
    return rest if rest and prefix in ("peer", "team") else name


def _or_terms(node: Node | None) -> list[Node]:
    """The alternatives of a condition joined by `or` at its top level (none for any other condition)."""
    if node is None or node.kind != "or":
        return []
    out = []
    for a in node.args:
        out += _or_terms(a) if a.kind == "or" else [a]
    return out


def _terms_holding(condition: Node | None, env, i: int) -> list[tuple[set[str], bool]]:
    """For each `or` alternative of the condition: the features it is about, and whether it holds for row i."""
    terms = _or_terms(condition)
    if len(terms) < 2:
        return []
    # one evaluation per batch and alternative, not per row: the reasons of a batch share env
    cache = env.__dict__.setdefault("_term_cache", {}) if hasattr(env, "__dict__") else {}
    out = []
    for t in terms:
        if id(t) not in cache:
            cache[id(t)] = (t, np.atleast_1d(np.asarray(evaluate(t, env), dtype=float)))
        truth = cache[id(t)][1]
        out.append(({_base(n) for n in condition_names(t)}, bool(truth[i if truth.size > 1 else 0] == 1.0)))
    return out


def render_reason(
    template: str,
    env,
    i: int,
    lang: str,
    units: dict,
    segment: str | None,
    scope: str,
    condition: Node | None = None,
    currency: str = DEFAULT_CURRENCY,
) -> str:
    """Fill a rule's reason template for row i (amounts in `currency`, the model's).

    A reason is split into clauses at semicolons. A clause naming a figure that is missing for this
    row is left out rather than shown as "n/a"; when no clause is left, a plain sentence says the
    figures are missing. When the rule's `condition` is alternatives joined by `or`, a clause whose
    figures appear only in alternatives that do not hold for the row is left out too, so the reason
    cites the evidence that made the rule fire and not a figure where the rep is level with or better
    than the peers (unless that would leave no clause about the condition at all).
    """
    params, missing = {}, set()
    for _, f, _, _ in string.Formatter().parse(template):
        if not f or f in params:
            continue
        if f == "segment":
            params[f] = segment or ("—")
        elif f == "peers":
            params[f] = (
                i18n.text(lang, "recourse.scope_segment", segment=segment)
                if scope == "segment" and segment
                else i18n.text(lang, "recourse.scope_organisation")
            )
        else:
            value = float(np.asarray(env[f])[i]) if np.ndim(env[f]) else float(env[f])
            if math.isnan(value):
                missing.add(f)
            params[f] = _format_var(f, value, lang, units, currency)
    parts = _CLAUSES.split(template)
    clauses, seps = parts[0::2], parts[1::2]
    names = [{f for _, f, _, _ in string.Formatter().parse(c) if f} for c in clauses]
    keep = [j for j, fs in enumerate(names) if not fs & missing]
    terms = _terms_holding(condition, env, i)
    if terms:
        about = [[held for feats, held in terms if {_base(f) for f in names[j]} & feats] for j in keep]
        evidence = [j for j, a in zip(keep, about, strict=True) if a and any(a)]
        if evidence:
            keep = [j for j, a in zip(keep, about, strict=True) if not a or any(a)]
    if not keep:
        return i18n.text(lang, "notes.reason_without_figures")
    out = ""
    for k, j in enumerate(keep):
        out += (seps[j - 1] if k else "") + fill(clauses[j], params)
        if "peers" in names[j]:
            # the peers are named in full once ("SMB peers"), then plainly ("peers")
            params["peers"] = i18n.text(lang, "recourse.scope_again")
    return out[:1].upper() + out[1:] if lang == "en" else out


def fill(template: str, params: dict) -> str:
    """`template` with each {name} replaced by params[name] (dotted names are plain keys, not attributes)."""
    out = []
    for literal, f, _, _ in string.Formatter().parse(template):
        out.append(literal)
        if f is not None:
            out.append(str(params[f]))
    return "".join(out)


def rank_interventions(playbook: Playbook, env, n: int) -> list[list[tuple[str, float, Rule]]]:
    """Per row, (intervention id, score, rule) for every id a firing rule suggests, best first.

    A rule fires when its groups' summed contribution is at least `min_contribution` (if it names
    groups) and its condition is true (if it has one). Its score is weight x strength: the value of
    its `strength` expression (clipped at 0; a missing value does not fire), else the groups'
    contribution, else 1. The first id of a rule gets the score, the next ones score x
    `secondary_weight`. An id takes the best score any rule gives it; ties keep file order.
    """
    s = playbook.settings
    # one column per suggested id: its best score so far and the (file order, position) that gave it
    ids = list(dict.fromkeys(iid for rule in playbook.rules for iid in rule.suggest))
    col = {iid: j for j, iid in enumerate(ids)}
    best = np.full((n, len(ids)), -np.inf)
    tie = np.full((n, len(ids)), np.iinfo(np.int64).max, dtype=np.int64)
    giver = np.full((n, len(ids)), -1, dtype=np.int64)
    for order, rule in enumerate(playbook.rules):
        if rule.groups:
            strength = np.zeros(n)
            for g in rule.groups:
                strength = strength + np.asarray(env[f"contribution.{g}"], dtype=float)
            fires = strength >= s["min_contribution"]
            score = rule.weight * strength
        else:
            fires = np.ones(n, dtype=bool)
            score = np.full(n, rule.weight)
        if rule.strength_expr is not None:
            st = np.broadcast_to(np.asarray(evaluate(rule.strength_expr, env), dtype=float), (n,))
            fires = fires & ~np.isnan(st) & (st > 0)
            score = rule.weight * np.where(np.isnan(st), 0.0, np.maximum(st, 0.0))
        if rule.condition is not None:
            c = np.broadcast_to(evaluate(rule.condition, env), (n,))
            fires = fires & (c == 1.0)
        for j, iid in enumerate(rule.suggest):
            k = col[iid]
            sc = np.asarray(score, dtype=float) * (1.0 if j == 0 else s["secondary_weight"])
            # an earlier rule keeps an id on a tie
            better = fires & (sc > best[:, k])
            best[better, k] = sc[better]
            tie[better, k] = order * 100 + j
            giver[better, k] = order
    # best score first, ties in file order
    by_tie = np.argsort(tie, axis=1, kind="stable")
    by_score = np.argsort(-np.take_along_axis(best, by_tie, axis=1), axis=1, kind="stable")
    ranked_cols = np.take_along_axis(by_tie, by_score, axis=1)
    rules = playbook.rules
    out = []
    for i in range(n):
        row = []
        for k in ranked_cols[i]:
            if giver[i, k] < 0:
                break  # the rest never fired: their score is -inf, sorted last
            row.append((ids[k], float(best[i, k]), rules[giver[i, k]]))
        out.append(row)
    return out


# ==============================================================================================
# the whole step: from a scored frame to the extra columns


def _batch_context(frame: pd.DataFrame, risk: np.ndarray, high: float) -> dict[str, np.ndarray]:
    n = len(frame)
    day = frame["as_of"].to_numpy() if "as_of" in frame else np.zeros(n)
    mgr = (
        frame["manager_id"].astype("string").fillna("\x00").to_numpy()
        if "manager_id" in frame
        else np.zeros(n)
    )
    r = pd.Series(risk, index=frame.index)
    hi = (r >= high).astype(float)
    team_keys = [pd.Series(mgr, index=frame.index), pd.Series(day, index=frame.index)]
    org_keys = [pd.Series(day, index=frame.index)]
    return {
        "team.risk": r.groupby(team_keys, sort=False).transform("mean").to_numpy(),
        "team.high_share": hi.groupby(team_keys, sort=False).transform("mean").to_numpy(),
        "team.size": r.groupby(team_keys, sort=False).transform("size").to_numpy(dtype=float),
        "org.risk": r.groupby(org_keys, sort=False).transform("mean").to_numpy(),
        "org.high_share": hi.groupby(org_keys, sort=False).transform("mean").to_numpy(),
    }


def insufficient_data_flags(frame: pd.DataFrame, min_history_days: int) -> np.ndarray:
    """True where the rep's history (`history_days`, else `tenure_days`) is shorter than the threshold."""
    col = "history_days" if "history_days" in frame else "tenure_days" if "tenure_days" in frame else None
    if col is None:
        return np.zeros(len(frame), dtype=bool)
    h = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float)
    if col == "history_days" and "tenure_days" in frame:
        t = pd.to_numeric(frame["tenure_days"], errors="coerce").to_numpy(dtype=float)
        h = np.fmin(h, t)
    return np.isnan(h) | (h < min_history_days)


ENGAGEMENT_FEATURES = (
    "pulse_mean_91d",
    "one_on_ones_91d",
    "pto_days_91d",
    "training_hours_91d",
    "crm_logins_per_week_91d",
    "csat_mean_91d",
    "after_hours_mean_91d",
    "peer_sessions_91d",
)


def _note(code: str, **params) -> dict:
    """A row's note in every language; a callable parameter is given the language (a figure with its unit)."""

    def filled(lang: str) -> dict:
        return {k: v(lang) if callable(v) else v for k, v in params.items()}

    return {
        "code": code,
        **{
            f"text_{i18n.SUFFIX[lang]}": i18n.text(lang, f"notes.{code}", **filled(lang))
            for lang in i18n.LANGUAGES
        },
    }


def choose(
    playbook: Playbook,
    ranked: list[tuple[str, float, Rule]],
    *,
    quota_share: float,
    insufficient: bool,
    reason_of,
) -> tuple[list[str], list[dict]]:
    """Final ordered ids and their reasons for one row (pure): insufficient data and quota first, then
    rules, those whose reason shows none of the rep's figures last.

    `reason_of(rule, lang)` renders a rule's reason for the row.
    """
    s = playbook.settings
    picked: list[tuple[str, dict]] = []

    def add(iid, reason):
        if iid not in [p[0] for p in picked]:
            picked.append((iid, reason))

    if insufficient:
        for iid in s["insufficient_data"]:
            add(
                iid,
                {
                    "reason_en": reason_of(None, "en", "onboarding", iid),
                    "reason_zh": reason_of(None, "zh-CN", "onboarding", iid),
                },
            )
    if quota_share >= s["quota_share_high"]:
        add(
            "smart_goals",
            {
                "reason_en": reason_of(None, "en", "quota_first"),
                "reason_zh": reason_of(None, "zh-CN", "quota_first"),
            },
        )
    # a rule whose figures are all missing for this rep (it fired on the team's or the model's
    # evidence) comes after those a manager can check against the rep's own figures
    limit = s["max_interventions"]
    unchecked = reason_of(None, "en", "reason_without_figures")
    shown, blind = [], []
    ahead = {p[0] for p in picked}
    for iid, _, rule in ranked:
        if len(ahead) >= limit:  # later rules cannot reach the list: their reasons are not rendered
            break
        en = reason_of(rule, "en")
        if en == unchecked:
            blind.append((iid, rule, en))
        else:
            shown.append((iid, rule, en))
            ahead.add(iid)
    for iid, rule, en in shown + blind:
        if len(picked) >= limit:
            break
        if iid not in [p[0] for p in picked]:
            add(iid, {"reason_en": en, "reason_zh": reason_of(rule, "zh-CN")})
    if not picked:
        add(
            s["fallback"],
            {
                "reason_en": reason_of(None, "en", "fallback_intervention"),
                "reason_zh": reason_of(None, "zh-CN", "fallback_intervention"),
            },
        )
    picked = picked[: s["max_interventions"]]
    return [p[0] for p in picked], [{"id": p[0], **p[1]} for p in picked]


@dataclass
class PlaybookInputs:
    """What the rules read for a batch of scored rows (rows as the frame)."""

    explained: pd.DataFrame  # models.drivers.explain_frame: driver groups, peer scope, group sums
    env: dict  # variable name -> array: features, peer.*, team.*, contribution.*, risk, ...
    quota_share: np.ndarray
    insufficient: np.ndarray

    def take(self, rows: np.ndarray, playbook: Playbook) -> PlaybookInputs:
        """The inputs of some rows only, with peers and team medians still those of the whole batch."""
        for name in playbook.names():
            self.env[name]  # team medians are built on first use, from the whole batch
        env = _Env({k: np.asarray(v)[rows] for k, v in self.env.items()}, len(rows))
        return PlaybookInputs(
            explained=self.explained.iloc[rows],
            env=env,
            quota_share=np.asarray(self.quota_share)[rows],
            insufficient=np.asarray(self.insufficient)[rows],
        )

    @staticmethod
    def concat(parts: list[PlaybookInputs], playbook: Playbook) -> PlaybookInputs:
        """Several batches' inputs as one, each row keeping the peers and team medians of its own batch."""
        for part in parts:
            for name in playbook.names():
                part.env[name]  # team medians are built on first use, from each batch's own rows
        keys = set.intersection(*(set(p.env) for p in parts))
        n = sum(len(p.quota_share) for p in parts)
        frames = [p.explained.reset_index(drop=True) for p in parts]
        for f in frames:
            f.attrs = {}  # per-batch peer tables do not carry over to a pooled frame
        explained = pd.concat(frames, ignore_index=True)
        return PlaybookInputs(
            explained=explained,
            env=_Env(
                {k: np.concatenate([np.asarray(p.env[k], dtype=float) for p in parts]) for k in keys}, n
            ),
            quota_share=np.concatenate([np.asarray(p.quota_share) for p in parts]),
            insufficient=np.concatenate([np.asarray(p.insufficient) for p in parts]),
        )


def playbook_inputs(
    frame: pd.DataFrame,
    risk: np.ndarray,
    contrib: pd.DataFrame,
    *,
    spec,
    playbook: Playbook,
    band_high: float,
    min_history_days: int | None = None,
    drivers: list[list[dict]] | None = None,
    k: int = 5,
) -> PlaybookInputs:
    """Group the contributions, find the peers and build the rules' variables, once per batch."""
    from models.drivers import explain_frame
    from models.quota_split import quota_shares

    s = playbook.settings
    min_hist = s["min_history_days"] if min_history_days is None else int(min_history_days)
    ex = explain_frame(
        frame,
        contrib,
        groups=spec.groups,
        units=spec.units,
        k=k,
        drivers=drivers,
        better=spec.better,
        currency=spec.currency,
    )
    gcols = [c for c in ex.columns if c.startswith("contrib__")]
    gsum = ex[gcols].rename(columns=lambda c: c[len("contrib__") :])
    qshare = quota_shares(gsum, quota_groups=s["quota_groups"])
    insufficient = insufficient_data_flags(frame, min_hist)
    ctx = _batch_context(frame, np.asarray(risk, dtype=float), band_high)
    env = variables(
        frame,
        _playbook_peers(frame, ex, playbook),
        gsum,
        {"risk": risk, "quota_share": qshare, "insufficient_data": insufficient.astype(float), **ctx},
    )
    return PlaybookInputs(explained=ex, env=env, quota_share=qshare, insufficient=insufficient)


def _playbook_peers(frame: pd.DataFrame, explained: pd.DataFrame, playbook: Playbook) -> pd.DataFrame:
    """The drivers' peer values, plus those of features the playbook reads and the model lacks.

    The drivers compare only the model's features; a model trained on fewer or older features than
    the playbook names would leave `peer.<feature>` (and `rel`) missing, so its rules never fired.
    """
    peers = explained.attrs["peers"]
    wanted = {n[len("peer.") :] for n in playbook.names() if n.startswith("peer.")}
    extra = sorted(wanted - set(peers.columns))
    if not extra:
        return peers
    from models.drivers import peer_values

    return peers.join(peer_values(frame, extra, scope=explained["peer_scope"]))


def recommend_frame(
    frame: pd.DataFrame,
    risk: np.ndarray,
    contrib: pd.DataFrame,
    *,
    spec,
    playbook: Playbook,
    band_high: float,
    min_history_days: int | None = None,
    drivers: list[list[dict]] | None = None,
    k: int | None = None,
    model=None,
    recourse: bool = True,
) -> pd.DataFrame:
    """The action columns for scored rows (index as `frame`).

    `contrib` holds per-feature contributions (columns = model features); `model` (a RepRadarModel)
    is needed for recourse only.
    """
    s = playbook.settings
    k = k or getattr(spec, "max_drivers", 5)
    inp = playbook_inputs(
        frame,
        risk,
        contrib,
        spec=spec,
        playbook=playbook,
        band_high=band_high,
        min_history_days=min_history_days,
        drivers=drivers,
        k=k,
    )
    ex, env, qshare, insufficient = inp.explained, inp.env, inp.quota_share, inp.insufficient
    n = len(frame)
    from models.quota_split import quota_varies

    gsum = ex[[c for c in ex.columns if c.startswith("contrib__")]].rename(
        columns=lambda c: c[len("contrib__") :]
    )
    no_quota_signal = not quota_varies(gsum, quota_groups=s["quota_groups"])
    ranked = rank_interventions(playbook, env, n)
    segs = frame["segment"].astype("string") if "segment" in frame else pd.Series(pd.NA, index=frame.index)
    scope = ex["peer_scope"].to_numpy()
    hist = pd.to_numeric(
        frame.get("history_days", pd.Series(np.nan, index=frame.index)), errors="coerce"
    ).to_numpy()
    ten = pd.to_numeric(
        frame.get("tenure_days", pd.Series(np.nan, index=frame.index)), errors="coerce"
    ).to_numpy()
    eng_missing = np.ones(n, dtype=bool)
    for f in ENGAGEMENT_FEATURES:
        if f in frame:
            eng_missing &= pd.to_numeric(frame[f], errors="coerce").isna().to_numpy()

    ids_col, reasons_col, notes_col = [], [], []
    for i in range(n):
        seg = None if pd.isna(segs.iat[i]) else str(segs.iat[i])

        def reason_of(rule, lang, note=None, iid=None, i=i, seg=seg):
            if rule is not None:
                return render_reason(
                    rule.reason[lang], env, i, lang, spec.units, seg, scope[i], rule.condition, spec.currency
                )
            if note == "onboarding":
                action = i18n.text(lang, f"interventions.{iid}.action")
                return i18n.text(
                    lang, "notes.onboarding", days=_days(np.fmin(hist[i], ten[i]), lang), action=action
                )
            if note == "insufficient_data":
                return i18n.text(
                    lang, "notes.insufficient_data", days=_days(hist[i], lang), tenure=_days(ten[i], lang)
                )
            if note == "quota_first":
                return i18n.text(lang, "notes.quota_first", share=f"{qshare[i] * 100:.0f}%")
            return i18n.text(lang, f"notes.{note}")

        ids, reasons = choose(
            playbook,
            ranked[i],
            quota_share=float(qshare[i]),
            insufficient=bool(insufficient[i]),
            reason_of=reason_of,
        )
        ids_col.append(ids)
        reasons_col.append(reasons)
        notes = []
        if insufficient[i]:
            notes.append(
                _note(
                    "insufficient_data",
                    days=functools.partial(_days, hist[i]),
                    tenure=functools.partial(_days, ten[i]),
                )
            )
        if scope[i] == "organisation":
            # without a segment column there is no segment to speak of, only the organisation
            notes.append(_note("org_peers", segment=seg) if seg else _note("no_segment"))
        if eng_missing[i]:
            notes.append(_note("no_engagement"))
        if no_quota_signal:
            notes.append(_note("no_quota_signal"))
        notes_col.append(notes)

    out = pd.DataFrame(index=frame.index)
    out["interventions"] = ids_col
    out["intervention_reasons"] = reasons_col
    if drivers is not None:
        out["drivers"] = ex["drivers"]
    out["driver_groups"] = ex["driver_groups"]
    # empty, not 0: without a quota signal "0% from the quota" would read as a verdict on the rep
    out["quota_share"] = np.full(n, np.nan) if no_quota_signal else qshare
    out["insufficient_data"] = insufficient
    out["peer_scope"] = ex["peer_scope"]
    out["notes"] = notes_col
    if recourse and model is not None:
        from models.recourse import recourse_frame

        out["recourse"] = recourse_frame(
            model,
            frame,
            np.asarray(risk, dtype=float),
            band_high=band_high,
            quantile=s["recourse_quantile"],
            currency=spec.currency,
        )
    elif recourse:
        out["recourse"] = [None] * n
    return out


def rules_without_data(playbook: Playbook, frame: pd.DataFrame) -> list[tuple[str, list[str]]]:
    """(rule name, features) for each rule that cannot fire on `frame` for want of data: its `when` or
    its `strength` reads only features missing for every row (absent, or all empty), and evaluated so
    it is never true (or never positive). A rule that also reads the model's evidence is not judged."""
    return [(rule.name, fs) for rule, fs, _ in _rules_without_data(playbook, frame)]


def _rules_without_data(playbook: Playbook, frame: pd.DataFrame) -> list[tuple[Rule, list[str], int]]:
    """rules_without_data with the rule and the line of the `when` (or `strength`) that cannot fire."""
    empty = {
        c
        for c in set(frame.columns)
        if _is_feature(c) and pd.to_numeric(frame[c], errors="coerce").isna().all()
    }

    def lacking(name: str) -> str | None:
        prefix, _, rest = name.partition(".")
        base = rest if prefix in ("peer", "team") and rest else name
        return base if _is_feature(base) and (base not in frame or base in empty) else None

    out = []
    for rule in playbook.rules:
        for node, fires, at in (
            (rule.condition, lambda v: v == 1, rule.when_line),
            (rule.strength_expr, lambda v: v > 0, rule.strength_line),
        ):
            names = condition_names(node) if node is not None else set()
            bases = {lacking(n) for n in names}
            if not names or None in bases:
                continue
            value = np.asarray(evaluate(node, {n: np.full(1, np.nan) for n in names}), dtype=float)
            if not fires(value).any():
                out.append((rule, sorted(bases), at or rule.line))
                break
    return out


def data_note(playbook: Playbook | None, frame: pd.DataFrame | None) -> str | None:
    """Why some playbook rules suggest nothing on this data (rules_without_data), or None."""
    if playbook is None or frame is None or frame.empty:
        return None
    lost = _rules_without_data(playbook, frame)
    if not lost:
        return None
    # the line of the `when` (or `strength`) that reads the missing figures: what HR edits
    rules = ", ".join(
        f"{r.name} (line {line}: {', '.join(fs[:4])}{' ...' if len(fs) > 4 else ''})" for r, fs, line in lost
    )
    return (
        f"playbook {playbook.source}: rule(s) {rules} cannot fire on this data: their condition (or strength) reads only "
        "figures that no scored rep has, so they suggest nothing; add those figures to the export "
        "(docs/import.md) or edit the rules"
    )


def warning_notes(playbook: Playbook | None, frame: pd.DataFrame | None) -> list[str]:
    """The playbook's load warnings for a score's notes, but those about a feature the scored data holds
    (a custom metric that is there needs no check)."""
    if playbook is None:
        return []
    held = set()
    if frame is not None:
        held = {c for c in frame.columns if pd.to_numeric(frame[c], errors="coerce").notna().any()}
    return [str(w) for w in playbook.warnings if getattr(w, "feature", "") not in held]


def _days(v, lang: str) -> str:
    """A number of days with its unit ("1 day", "45 days", "45天"); "? days" when unknown."""
    shown = "?" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{float(v):.0f}"
    return i18n.counted(lang, "units.days", shown, v=shown)


def check_main(argv: list[str] | None = None) -> int:
    """`python -m models.playbook FILE`: check a playbook file as scoring would load it. Prints
    "ok" with the number of rules (exit 0) after its warnings on stderr, or the refusal's message alone
    on stderr (exit 2)."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print(
            "usage: python -m models.playbook FILE (checks a playbook file; docs/playbook.md)",
            file=sys.stderr,
        )
        return 2
    try:
        pb = load_playbook(args[0])
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for w in pb.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"{args[0]}: ok, {len(pb.rules)} rule(s)")
    return 0


if __name__ == "__main__":  # pragma: no cover - exercised through a subprocess in the tests
    raise SystemExit(check_main())
