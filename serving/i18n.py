"""The dashboard's message catalog: one YAML file per language under serving/messages/, flat dotted keys.

Every text a page shows comes from here; tests/web/test_i18n.py checks both languages hold the same keys.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml

LANGS = ("en", "zh-CN")
DEFAULT_LANG = "en"
MESSAGES_DIR = Path(__file__).parent / "messages"


def _flatten(tree: dict, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = str(v)
    return out


@cache
def catalog(lang: str) -> dict[str, str]:
    """All messages of one language, as {dotted key: text}."""
    path = MESSAGES_DIR / f"{lang}.yaml"
    with path.open(encoding="utf-8") as f:
        return _flatten(yaml.safe_load(f) or {})


def pick_lang(value: str | None) -> str:
    """A supported language from a cookie or form value; anything else is the default."""
    return value if value in LANGS else DEFAULT_LANG


def from_accept_language(header: str | None) -> str | None:
    """The supported language a browser prefers most (its `Accept-Language`), else None.

    Simplified Chinese tags (`zh`, `zh-CN`, `zh-Hans`, `zh-SG`) are `zh-CN`; any `en` is `en`; tags for
    traditional Chinese or other languages match nothing. Ties keep the browser's order; `q=0` is refused.
    """
    best: tuple[float, int, str] | None = None
    for pos, part in enumerate((header or "")[:500].split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        sub = tag.strip().lower().replace("_", "-").split("-")
        if sub[0] == "en":
            lang = "en"
        elif sub[0] == "zh" and not ({"tw", "hk", "mo", "hant"} & set(sub[1:])):
            lang = "zh-CN"
        else:
            continue
        if q > 0 and (best is None or q > best[0]):
            best = (q, pos, lang)
    return best[2] if best else None


def t(lang: str, key: str, default: str | None = None, **values) -> str:
    """The text for `key` in `lang` (English when missing there), with `{name}` placeholders filled."""
    text = catalog(pick_lang(lang)).get(key)
    if text is None:
        text = catalog(DEFAULT_LANG).get(key, default if default is not None else key)
    return text.format(**values) if values else text


def has(lang: str, key: str) -> bool:
    return key in catalog(pick_lang(lang))
