"""Bilingual texts: every catalog id, driver group and feature has English and Chinese text."""

import re

import pytest

from features.contract import INTERVENTION_IDS
from features.registry import FEATURES, GROUPS
from models import i18n


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
def test_every_catalog_id_has_a_title_and_an_action(lang):
    for iid in INTERVENTION_IDS:
        for key in ("title", "action"):
            text = i18n.lookup(lang, f"interventions.{iid}.{key}")
            assert isinstance(text, str) and text.strip(), f"{lang}: interventions.{iid}.{key} is missing"


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
def test_every_driver_group_and_feature_has_a_text(lang):
    for g in [*GROUPS, "other"]:
        assert i18n.lookup(lang, f"groups.{g}.title").strip(), f"{lang}: group {g} has no title"
    for f in FEATURES:
        assert i18n.lookup(lang, f"features.{f.name}").strip(), f"{lang}: feature {f.name} has no label"


def test_the_languages_hold_the_same_keys_and_placeholders():
    import string

    assert i18n.missing_keys("zh-CN") == []
    assert i18n.missing_keys("en", reference="zh-CN") == []
    for key in sorted(i18n.flat_keys(i18n.catalog("en")) - {"language", "name"}):
        fields = [
            {f for _, f, _, _ in string.Formatter().parse(str(i18n.lookup(lang, key))) if f}
            for lang in i18n.LANGUAGES
        ]
        assert fields[0] == fields[1], f"{key}: placeholders differ between languages"
    # the report's and the digests' texts (reporting/) and the model card's (training/card.py) are keys of
    # these files too: each one the code or the report's template names is in both languages
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    used = set()
    for path in [
        *root.glob("reporting/*.py"),
        *root.glob("reporting/templates/*.j2"),
        root / "training" / "card.py",
    ]:
        text = path.read_text(encoding="utf-8")
        used |= set(re.findall(r"[\"']((?:report|digest|card)\.[a-z0-9_.]*[a-z0-9_])[\"']", text))
    used.discard("report.html.j2")  # the template's file name
    assert {"digest.subject_new", "digest.headline", "card.data.train", "card.limits.heading"} <= used
    for lang in i18n.LANGUAGES:
        assert sorted(k for k in used if not i18n.has(lang, k)) == [], lang


def test_the_catalog_in_the_spec_matches_the_chinese_titles():
    # shared/spec/interventions.md: the zh-CN titles are the spec's
    assert i18n.intervention_title("smart_goals", "zh-CN") == "设定SMART目标，明确期望"
    assert i18n.intervention_title("manager_coaching", "en").startswith("Coach the manager")


@pytest.mark.parametrize(
    "value,unit,feature,lang,expected",
    [
        (0.18, "share", None, "en", "18%"),
        (41234.0, "currency", None, "en", "$41k"),
        (41234.0, "currency", None, "zh-CN", "$4.1万"),
        (1_250_000.0, "currency", None, "en", "$1.2M"),
        (3.0, "per_week", None, "en", "3 a week"),
        (3.5, "per_week", None, "zh-CN", "每周3.5次"),
        (45.0, "days", None, "en", "45 days"),
        (1.4, "ratio", "quota_vs_segment", "en", "1.40x"),
        (0.12, "ratio", "attainment_to_date", "en", "12% of quota"),
        # deals per 100 activities are a count, also for a model whose bundled unit still says ratio
        (14.69, "ratio", "new_deals_per_100_activities_91d", "en", "14.7"),
        (14.69, "count", "new_deals_per_100_activities_182d", "zh-CN", "14.7"),
        (float("nan"), "share", None, "en", "n/a"),
    ],
)
def test_values_are_written_with_their_units(value, unit, feature, lang, expected):
    assert i18n.format_value(value, unit, lang, currency="USD", feature=feature) == expected


@pytest.mark.parametrize(
    "currency,lang,value,expected",
    [
        ("USD", "en", 41234.0, "$41k"),
        ("USD", "zh-CN", 41234.0, "$4.1万"),
        ("EUR", "en", 41234.0, "€41k"),
        ("EUR", "zh-CN", 41234.0, "€4.1万"),
        ("GBP", "en", 1_250_000.0, "£1.2M"),
        ("GBP", "zh-CN", 250_000_000.0, "£2.5亿"),
        # one "¥" per language: the yen in English, the yuan in Chinese (CLDR)
        ("JPY", "en", 4_100_000.0, "¥4.1M"),
        ("JPY", "zh-CN", 41234.0, "JP¥4.1万"),
        ("CNY", "en", 41234.0, "CN¥41k"),
        ("CNY", "zh-CN", 41234.0, "¥4.1万"),
        ("CNY", "zh-CN", 123_000_000.0, "¥1.23亿"),
        ("CAD", "en", 41234.0, "CA$41k"),
        ("AUD", "en", 900.0, "A$900"),
        ("INR", "zh-CN", 41234.0, "₹4.1万"),
        # no symbol: the code and a space
        ("CHF", "en", 41234.0, "CHF 41k"),
        ("SEK", "en", 41234.0, "SEK 41k"),
        ("SEK", "zh-CN", 41234.0, "SEK 4.1万"),
        ("eur", "en", 5500.0, "€5.5k"),
    ],
)
def test_amounts_are_written_in_the_data_s_currency(currency, lang, value, expected):
    assert i18n.format_amount(value, lang, currency=currency) == expected
    assert i18n.format_value(value, "currency", lang, currency=currency) == expected


@pytest.mark.parametrize(
    "value,unit,feature,expected",
    [
        (-0.003, "ratio", "pace_gap", "+0 points"),
        (-0.0, "ratio", "pace_gap", "+0 points"),
        (-0.03, "ratio", "pace_gap", "-3 points"),
        (-0.001, "share", None, "0%"),
        (-0.001, "ratio", "attainment_to_date", "0% of quota"),
        (-0.001, "ratio", "quota_vs_segment", "0.00x"),
        (-0.04, "count", None, "0"),
        (-0.4, "currency", None, "$0"),
        (-0.04, "per_week", None, "0 a week"),
    ],
)
def test_a_figure_that_reads_as_zero_has_no_minus_sign(value, unit, feature, expected):
    """A pace a hair behind read "-0 points", and "+0 points, against -0 points" next to peers level with
    it (a median of -0.0): a figure written as zero is never negative."""
    assert i18n.format_value(value, unit, "en", currency="USD", feature=feature) == expected


def test_a_rep_level_with_peers_at_zero_reads_the_same_as_peers():
    from models.drivers import feature_sentence

    text = feature_sentence(
        "pace_gap", 0.0, -0.0, unit="ratio", lang="en", scope="organisation", better="higher"
    )
    assert "the same as across the organisation" in text and "-0" not in text, text


def test_a_signed_amount_puts_the_sign_before_the_currency():
    assert i18n.format_amount(40_000, "en", currency="EUR", signed=True) == "+€40k"
    assert i18n.format_amount(-40_000, "en", currency="SEK") == "-SEK 40k"
    assert i18n.format_amount(40_000, "zh-CN", currency="CNY", signed=True) == "+¥4万"
    # a value in another unit is not an amount, whatever the currency
    assert i18n.format_value(0.18, "share", "en", currency="EUR") == "18%"


@pytest.mark.parametrize(
    "code,message",
    [
        ("EURO", "not an ISO 4217 currency code: give three letters"),
        ("€", "not an ISO 4217 currency code: give three letters"),
        ("", "not an ISO 4217 currency code: give three letters"),
        ("EUO", "EUO is not an ISO 4217 currency code (did you mean EUR"),
        ("XAU", "XAU is not an ISO 4217 currency code"),  # gold, not money anyone's quota is in
    ],
)
def test_a_currency_code_is_an_iso_4217_one(code, message):
    from models.currency import normalise_currency

    with pytest.raises(ValueError, match=re.escape(message)):
        normalise_currency(code)


def test_a_currency_code_is_read_in_any_case_and_every_symbol_is_for_a_known_code():
    from models.currency import ISO_4217, SYMBOLS, SYMBOLS_BY_LANG, normalise_currency

    assert normalise_currency(" cny ") == "CNY"
    assert set(SYMBOLS) <= ISO_4217
    assert all(set(by) <= ISO_4217 and lang in i18n.LANGUAGES for lang, by in SYMBOLS_BY_LANG.items())


def test_unknown_metric_features_get_a_generic_label():
    assert "focus_score" in i18n.feature_label("eng__focus_score_mean_28d", "en")
    assert i18n.feature_label("peer__win_rate_180d", "zh-CN") == i18n.feature_label("win_rate_180d", "zh-CN")
    with pytest.raises(ValueError, match="unknown language"):
        i18n.catalog("fr")


def test_no_feature_measured_per_100_of_something_is_written_as_a_ratio():
    from features.registry import FEATURES

    per = [f for f in FEATURES if "per 100" in f.description]
    assert per and all(f.unit == "count" for f in per), [(f.name, f.unit) for f in per]


def test_chinese_sentences_and_playbook_reasons_use_chinese_punctuation():
    """The model's Chinese sentences (drivers, recourse, notes, the playbook's reasons) had English commas,
    colons, semicolons and brackets between Chinese characters."""
    import re
    from pathlib import Path

    import yaml

    bad = re.compile(r"[\u4e00-\u9fff][,:;()]|[,:;()][\u4e00-\u9fff]|[}%][,;:](?=[\u4e00-\u9fff{])")

    def strings(node, path=""):
        if isinstance(node, dict):
            for k, v in node.items():
                yield from strings(v, f"{path}.{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                yield from strings(v, f"{path}[{i}]")
        elif isinstance(node, str):
            yield path, node

    here = Path(i18n.__file__).parent
    catalog = yaml.safe_load((here / "messages" / "zh-CN.yaml").read_text(encoding="utf-8"))
    playbook = yaml.safe_load((here / "playbook.yaml").read_text(encoding="utf-8"))
    zh = [*strings(catalog), *((p, s) for p, s in strings(playbook) if p.endswith(".zh"))]
    assert len(zh) > 100
    assert [p for p, s in zh if bad.search(s)] == []


def test_a_figure_that_reads_as_one_takes_the_singular():
    """ "1 days", "+1 points", "+1 meetings a week": a figure of one was written with the plural."""
    from models.recourse import lever_phrase

    def days(v, lang="en"):
        return i18n.format_value(v, "days", lang, currency="USD")

    assert (days(1), days(1.2), days(2), days(0)) == ("1 day", "1 day", "2 days", "0 days")
    assert days(1, "zh-CN") == "1天" and days(3, "zh-CN") == "3天"
    assert i18n.format_value(1.5, "hours", "en", currency="USD") == "1.5 hours"
    assert i18n.format_value(1, "hours", "en", currency="USD") == "1 hour"
    assert i18n.format_value(0.01, "share", "en", currency="USD", feature="pace_gap") == "+1 point"
    assert i18n.format_value(-0.01, "share", "en", currency="USD", feature="pace_gap") == "-1 point"
    assert i18n.format_value(-0.11, "share", "en", currency="USD", feature="pace_gap") == "-11 points"
    assert lever_phrase("meetings", 1.0, "en") == "+1 meeting a week"
    assert lever_phrase("meetings", 1.5, "en") == "+1.5 meetings a week"
    assert lever_phrase("one_on_ones", 1.0, "en") == "+1 1:1 with the manager this month"
    assert lever_phrase("one_on_ones", 2.0, "en") == "+2 1:1s with the manager this month"
    assert lever_phrase("meetings", 1.0, "zh-CN") == "每周多1次会议"
    assert lever_phrase("one_on_ones", 1.0, "zh-CN") == "本月与经理多1次一对一沟通"
    # every singular form is a form of a key that exists, in both languages
    for lang in i18n.LANGUAGES:
        ones = [k for k in i18n.flat_keys(i18n.catalog(lang)) if k.endswith("_one")]
        assert ones and all(i18n.has(lang, k[: -len("_one")]) for k in ones), lang


def test_no_shipped_reason_writes_a_plural_after_one():
    """Every English reason of the shipped playbook, every figure of a rep at 1 against peers at 2 and at 0
    (so that each alternative of a condition holds once): no "1 deals", "1 1:1s", "1 days"."""
    import re

    import numpy as np

    from models.playbook import default_playbook, render_reason

    pb = default_playbook()
    plural_after_one = re.compile(r"(?<![\d.,$])[+-]?1 (?:new |open )?(?:[A-Za-z:0-9]*[a-rt-z:0-9]s)\b")
    checked = 0
    for rule in pb.rules:
        template = rule.reason.get("en")
        if not template:
            continue
        for peer in (2.0, 0.0):

            class Env(dict):
                def __missing__(self, name, peer=peer):
                    return np.array([peer if name.startswith(("peer.", "team.")) else 1.0])

            text = render_reason(template, Env(), 0, "en", {}, "SMB", "segment", rule.condition)
            assert not plural_after_one.search(text), (rule.name, text)
            checked += 1
    assert checked >= 2 * 15
