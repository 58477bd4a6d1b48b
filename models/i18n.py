"""Bilingual messages (English, Simplified Chinese): catalog files under models/messages/, one per language.

Every language file holds the same keys as `en.yaml` (a test checks it). `text(lang, key, **params)`
looks a dotted key up and fills its {placeholders}; `format_value` renders a feature value with its unit,
amounts in the data's currency (models/currency.py: a setting recorded in the model, not a message).
The dashboard reuses this mechanism: add keys to both files and call `text`.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import yaml

from models.currency import currency_prefix

MESSAGES_DIR = Path(__file__).resolve().parent / "messages"
LANGUAGES = ("en", "zh-CN")
DEFAULT_LANGUAGE = "en"
# Short suffixes of the extra score fields (`text_en`, `text_zh`, `reason_en`, `reason_zh`).
SUFFIX = {"en": "en", "zh-CN": "zh"}

# Language-independent display kind of a feature where its unit alone would mislead.
FORMAT_OVERRIDES = {
    "attainment_to_date": "percent_of_quota",
    "pace_gap": "points",
    "prev_period_attainment": "percent_of_quota",
    "attainment_mean_4p": "percent_of_quota",
    # a count per 100 activities ("14.7"), not a ratio ("14.69x"): models trained before the registry
    # said so still carry "ratio" in their bundled units
    "new_deals_per_100_activities_91d": "count",
    "new_deals_per_100_activities_182d": "count",
}


def language(value: str) -> str:
    """`value` as one of LANGUAGES ("zh-cn" and "zh_CN" read as zh-CN); ValueError naming them otherwise."""
    wanted = str(value).strip().replace("_", "-").lower()
    for lang in LANGUAGES:
        if lang.lower() == wanted:
            return lang
    raise ValueError(f"{value!r}: RepRadar writes {' or '.join(LANGUAGES)}")


@lru_cache
def catalog(lang: str = DEFAULT_LANGUAGE) -> dict:
    """The message tree of a language (models/messages/<lang>.yaml)."""
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}; RepRadar speaks {', '.join(LANGUAGES)}")
    with open(MESSAGES_DIR / f"{lang}.yaml", encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def flat_keys(tree: dict, prefix: str = "") -> set[str]:
    """Dotted keys of the leaves of a message tree."""
    out = set()
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out |= flat_keys(v, key + ".")
        else:
            out.add(key)
    return out


def missing_keys(lang: str, reference: str = DEFAULT_LANGUAGE) -> list[str]:
    """Keys the reference language has and `lang` lacks (should be empty)."""
    return sorted(flat_keys(catalog(reference)) - flat_keys(catalog(lang)) - {"language", "name"})


def lookup(lang: str, key: str):
    """The raw message at a dotted key; KeyError naming the key and the language when absent."""
    node = catalog(lang)
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(f"message {key!r} is missing in models/messages/{lang}.yaml")
        node = node[part]
    return node


def has(lang: str, key: str) -> bool:
    try:
        lookup(lang, key)
        return True
    except KeyError:
        return False


def text(lang: str, key: str, **params) -> str:
    """The message at `key` in `lang` with {placeholders} filled; falls back to English, then to the key."""
    try:
        msg = lookup(lang, key)
    except KeyError:
        if lang == DEFAULT_LANGUAGE:
            return key
        return text(DEFAULT_LANGUAGE, key, **params)
    return str(msg).format(**params) if params else str(msg)


def counted(lang: str, key: str, shown: str, **params) -> str:
    """The message at `key` about the figure `shown` (as written, e.g. "+1"): its `<key>_one` form where
    the figure reads as one and the language has one ("1 day", "+1 meeting a week"), else `key`."""
    if shown.lstrip("+-") == "1" and has(lang, f"{key}_one"):
        key = f"{key}_one"
    return text(lang, key, **params)


class Message(str):
    """A text kept with its key and values: English wherever it is used as a str (the report's JSON, the
    command line), any language through `in_lang`. The report's notes are made once, while its figures
    are gathered, and shown in the language it is written in."""

    key: str
    params: dict

    def __new__(cls, key: str, **params):
        en = text(DEFAULT_LANGUAGE, key, **{k: localise(v, DEFAULT_LANGUAGE) for k, v in params.items()})
        self = super().__new__(cls, en)
        self.key, self.params = key, params
        return self

    def __reduce__(self):
        return (_message, (self.key, self.params))

    def in_lang(self, lang: str) -> str:
        return text(lang, self.key, **{k: localise(v, lang) for k, v in self.params.items()})


def _message(key: str, params: dict) -> Message:
    return Message(key, **params)


class Items(tuple):
    """Names from the data listed in a Message, joined by the language's separator ("a, b" / "a、b")."""

    separator = "report.sep"


class QuotedItems(Items):
    """Quoted names listed in a Message ("'a', 'b'" / "“a”、“b”"): the quotes are the message's own."""

    separator = "report.sep_quoted"


def localise(value, lang: str):
    """A Message (or a list of names) in `lang`; any other value as it is."""
    if isinstance(value, Message):
        return value.in_lang(lang)
    if isinstance(value, Items):
        return text(lang, value.separator).join(str(localise(v, lang)) for v in value)
    return value


# -- names -------------------------------------------------------------------------------------
def intervention_title(intervention_id: str, lang: str) -> str:
    """The catalog title ("Team building and collaboration"); the id itself when no catalog text has
    one (an id from a newer catalog), never the message key."""
    key = f"interventions.{intervention_id}.title"
    return text(lang, key) if has(lang, key) or has(DEFAULT_LANGUAGE, key) else str(intervention_id)


def group_title(group: str, lang: str) -> str:
    return (
        text(lang, f"groups.{group}.title")
        if has(lang, f"groups.{group}")
        else text(lang, "groups.other.title")
    )


def feature_label(name: str, lang: str) -> str:
    """The display label of a feature (peer__x reads as x); unknown metrics get a generic label."""
    from models.spec import base_feature

    name = base_feature(name)
    if has(lang, f"features.{name}"):
        return text(lang, f"features.{name}")
    prefix, suffix = "eng__", "_mean_28d"
    if name.startswith(prefix) and name.endswith(suffix):
        return text(lang, "features.unknown_metric", metric=name[len(prefix) : -len(suffix)])
    return text(lang, "features.unknown_feature", name=name)


def feature_unit(name: str) -> str:
    """The registry unit of a feature (peer__x reads as x); "" for a feature the registry does not know."""
    from features.registry import get
    from models.spec import base_feature

    try:
        return get(base_feature(name)).unit
    except KeyError:
        return ""


# -- numbers -----------------------------------------------------------------------------------
def _zero_unsigned(s: str, signed: bool = False) -> str:
    """A figure that rounds to zero has no minus sign: "-0", "-0.0" (from -0.004, or a median of -0.0)
    read as "0" ("+0" where figures are signed), so that "the same as peers" reads the same too."""
    if s.startswith("-") and not any(c in "123456789" for c in s):
        return ("+" if signed else "") + s[1:]
    return s


def _num(v: float, digits: int = 1) -> str:
    """A short number: integers without decimals, else up to `digits` decimals."""
    if abs(v - round(v)) < 1e-9:
        return f"{int(round(v)):,}"
    s = f"{v:,.{digits}f}"
    return _zero_unsigned(s.rstrip("0").rstrip(".") if "." in s else s)


def format_count(v) -> str:
    """A count with thousands separators (1,500), as the dashboard, the report and the model card write
    counts in both languages; "-" for a missing one."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{int(v):,}"


def format_fixed(v, digits: int = 2) -> str:
    """A figure with exactly `digits` decimals (0.930), as the report's and the card's tables write AUC,
    Brier and the like; "-" for a missing one, "inf" for an infinite one."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    return f"{v:.{digits}f}"


def format_amount(v: float, lang: str, *, currency: str, signed: bool = False, more: int = 0) -> str:
    """A currency amount: $40k, €1.2M, SEK 40k, ¥4.1万 (models/currency.py); `more` digits.

    `currency` is the data's ISO 4217 code (the model's, FeatureSpec.currency): required, so that no
    caller writes an organisation's amounts in another currency by leaving it out.
    """
    sym = currency_prefix(currency, lang)
    sign = ("+" if v > 0 else "-" if v < 0 else "") if signed else ("-" if v < 0 else "")
    a = abs(v)
    if text(lang, "units.amount_style") == "wan":  # Chinese groups by 10,000 (万) and 10^8 (亿)
        if a >= 1e8:
            body = text(lang, "units.million", v=_num(a / 1e8, 2 + more))
        elif a >= 1e4:
            body = text(lang, "units.thousand", v=_num(a / 1e4, 1 + more))
        else:
            body = _num(a, more)
    elif a >= 1e6:
        body = text(lang, "units.million", v=_num(a / 1e6, 1 + more))
    elif a >= 1e3:
        body = text(lang, "units.thousand", v=_num(a / 1e3, (0 if a >= 1e4 else 1) + more))
    else:
        body = _num(a, more)
    if not any(c in "123456789" for c in body):
        sign = ""  # -$0.40 shown as "$0": no sign on a figure that reads as zero
    return f"{sign}{sym}{body}"


def format_value(
    value, unit: str, lang: str, *, currency: str, feature: str | None = None, more: int = 0
) -> str:
    """A feature value with its unit: 18%, $40k, 3.5 a week, 45 days, 1.4x; `more` digits than usual (to
    tell apart two values that read the same). `currency`: the ISO code amounts are in."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a" if lang == "en" else "无数据"
    v = float(value)
    kind = FORMAT_OVERRIDES.get(feature or "", unit)
    if kind == "percent_of_quota":
        return text(lang, "misc.percent_of_quota", v=_zero_unsigned(f"{v * 100:.{more}f}%"))
    if kind == "points":
        shown = _zero_unsigned(f"{v * 100:+.{more}f}", signed=True)
        return counted(lang, "units.points", shown, v=shown)
    if kind == "share":
        return _zero_unsigned(f"{v * 100:.{more}f}%")
    if kind == "currency":
        return format_amount(v, lang, currency=currency, more=more)
    if kind == "ratio":
        return text(lang, "units.times", v=_zero_unsigned(f"{v:.{2 + more}f}"))
    if kind == "per_week":
        return text(lang, "units.per_week", v=_num(v, 1 + more))
    if kind in ("days", "hours", "minutes"):
        shown = _num(v, (0 if kind == "days" else 1) + more)
        return counted(lang, f"units.{kind}", shown, v=shown)
    if kind == "count":
        return _num(v, 1 + more)
    if kind in ("score", "index"):
        return _num(v, (2 if abs(v) < 10 else 1) + more)
    return _num(v, 2 + more)


def format_risk(risk: float) -> str:
    return f"{float(risk) * 100:.0f}%"


def join_list(items: list[str], lang: str) -> str:
    """a, b and c (en) / a、b和c (zh)."""
    items = [i for i in items if i]
    if len(items) <= 1:
        return "".join(items)
    return text(lang, "recourse.join").join(items[:-1]) + text(lang, "recourse.last_join") + items[-1]
