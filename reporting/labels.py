"""Words for people in the report and the digests: intervention titles, feature labels and values
in their units (from models/messages, the dashboard's texts), never a catalog id or a column name."""

from __future__ import annotations

import math

LANG = "en"


def intervention_title(intervention_id, lang: str = LANG) -> str:
    """The catalog title in the report's language (the id when the catalog has none)."""
    from models import i18n

    return i18n.intervention_title(str(intervention_id), lang)


def intervention_titles(ids, lang: str = LANG) -> list[str]:
    return [intervention_title(i, lang) for i in list(ids or [])]


def feature_label(name, lang: str = LANG) -> str:
    """The feature's display label ("New pipeline created in the last 28 days")."""
    from models import i18n

    return i18n.feature_label(str(name), lang)


def feature_value(name, value, lang: str = LANG, *, currency: str) -> str:
    """A feature's value in its unit, rounded for reading ($220k, 18%, 3.5 a week); "-" when missing.
    `currency`: the ISO code of the model's data (ModelInfo.currency)."""
    from models import i18n

    if value is None:
        return "-"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(v):
        return "-"
    return i18n.format_value(v, i18n.feature_unit(str(name)), lang, currency=currency, feature=str(name))
