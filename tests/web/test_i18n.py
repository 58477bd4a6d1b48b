"""The message catalog: both languages hold the same keys and placeholders, and every key the pages use exists."""

from __future__ import annotations

import re
import string
from pathlib import Path

from features.contract import INTERVENTION_IDS
from features.registry import GROUPS
from serving import i18n

SERVING = Path(i18n.__file__).parent
USED = re.compile(r"""\bt\(\s*['"]([a-z_]+\.[A-Za-z0-9_.-]+)['"]\s*[,)]""")  # whole keys, not prefixes


def _fields(text: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(text) if f}


def test_no_key_is_missing_in_either_language():
    en, zh = i18n.catalog("en"), i18n.catalog("zh-CN")
    assert sorted(set(en) - set(zh)) == [] and sorted(set(zh) - set(en)) == []
    for key in en:
        assert _fields(en[key]) == _fields(zh[key]), key
        assert zh[key].strip(), key


def test_every_key_used_by_a_page_exists():
    used = set()
    for path in [*SERVING.glob("templates/*.html"), *SERVING.glob("web/*.py")]:
        used |= set(USED.findall(path.read_text(encoding="utf-8")))
    assert used
    for lang in i18n.LANGS:
        assert sorted(k for k in used if not i18n.has(lang, k)) == [], lang


def test_catalog_covers_interventions_groups_bands_and_statuses():
    dynamic = [f"intervention.{i}" for i in INTERVENTION_IDS] + [f"group.{g}" for g in GROUPS]
    dynamic += [f"band.{b}" for b in ("high", "medium", "low")]
    dynamic += [f"jobs.status_{s}" for s in ("queued", "running", "succeeded", "failed")]
    dynamic += [f"lang.{lang}" for lang in i18n.LANGS] + ["models.fig_challenger", "models.fig_champion"]
    dynamic += [f"models.lead_{m}" for m in ("auc", "brier")]  # serving/web/pages.py lead_chart
    dynamic += [
        f"models.run_{s}" for s in ("FINISHED", "FAILED", "KILLED", "RUNNING", "SCHEDULED")
    ]  # MLflow's
    dynamic += [f"models.series_{m}" for m in ("model", "pacing", "logistic", "oracle")]  # the run's models
    dynamic += [f"models.decision_{d}" for d in ("first", "passed", "forced", "refused")]  # models.gate
    dynamic += [
        "rep.drivers_intro_low",
        "rep.drivers_intro_other",
        "team.intro",
        "team.intro_org",
        "team.point_one",
        "rep.log_caption_one",
    ]  # rep/team.html, serving/web/pages.py _points
    dynamic += [f"rep.field_{f}" for f in ("intervention", "started_on", "ended_on", "note")]  # form errors
    dynamic += [
        f"models.verdict_{m}_{v}" for m in ("auc", "brier", "auc_early") for v in ("ok", "bad")
    ]  # _verdicts
    for lang in i18n.LANGS:
        assert [k for k in dynamic if not i18n.has(lang, k)] == [], lang


def test_unknown_language_falls_back_to_english():
    assert i18n.pick_lang("fr") == "en"
    assert i18n.t("zh-CN", "nav.team") == "早期预警"
    assert i18n.t("en", "nav.signed_in_as", name="mo") == "Signed in as mo"


def test_every_job_refusal_and_failure_code_is_said_in_both_languages():
    from serving.jobs import FAILURE_CODES, REFUSAL_CODES

    for lang in i18n.LANGS:
        for code in REFUSAL_CODES:
            assert i18n.has(lang, f"jobs.refused.{code}"), (lang, code)
        for code in FAILURE_CODES:
            assert i18n.has(lang, f"jobs.failure.{code}"), (lang, code)
    from typing import get_args

    from serving.schemas import JobOut

    assert set(get_args(get_args(JobOut.model_fields["error_code"].annotation)[0])) == set(FAILURE_CODES)


# an English comma, colon, semicolon or bracket touching a Chinese character (or a placeholder's brace on a
# Chinese line): Chinese text takes the full-width marks ，：；（）
ASCII_BY_CJK = re.compile(r"[\u4e00-\u9fff][,:;()]|[,:;()][\u4e00-\u9fff]|[}%][,;:](?=[\u4e00-\u9fff{])")


def test_chinese_texts_use_chinese_punctuation():
    zh = i18n.catalog("zh-CN")
    assert sorted(k for k, v in zh.items() if ASCII_BY_CJK.search(v)) == []
    assert sorted(k for k, v in i18n.catalog("en").items() if re.search(r"[，：；（）]", v)) == []


def test_chinese_pages_name_one_thing_one_way():
    """The models page said 配额周期 and 未完成配额 where every other page says 考核期 (quota period) and
    指标 (quota): a manager should not wonder whether these are other things."""
    zh = i18n.catalog("zh-CN")
    assert sorted(k for k, v in zh.items() if "配额" in v or ("周期内" in v and "考核期" not in v)) == []
    # a revoked token is 撤销 everywhere (the sign-in page also said 吊销 for the same thing)
    assert sorted(k for k, v in zh.items() if "吊销" in v) == []


def test_driver_groups_are_named_as_the_model_names_them():
    """The list's reason column named groups from this catalog and the rep page from the model's texts: in
    Chinese one group had two names (完成率与进度 on the list, 业绩完成与进度 on the rep page)."""
    from models import i18n as model_i18n

    for lang in i18n.LANGS:
        shown = {g: i18n.t(lang, f"group.{g}") for g in GROUPS if model_i18n.has(lang, f"groups.{g}")}
        assert len(shown) > 10
        assert {g: t for g, t in shown.items() if t != model_i18n.group_title(g, lang)} == {}, lang


def test_every_audited_action_has_a_label_in_both_languages():
    """The audit log on the organisation page showed its action codes only (org.read, job.create), English
    on a Chinese page; each code the service records has a label (the code stays beside it and in the CSV)."""
    source = "\n".join(p.read_text(encoding="utf-8") for p in SERVING.rglob("*.py"))
    codes = set(re.findall(r'audit\.record\(\s*[^"]*?"([a-z_]+(?:\.[a-z_]+)+)"', source, re.S))
    codes |= set(re.findall(r'^\s*"([a-z_]+(?:\.[a-z_]+)+)",\s*$', (SERVING / "audit.py").read_text(), re.M))
    codes |= {"org.read", "access.denied", "rep.read", "rep.history.read", "rep.interventions.read"}
    codes |= {"audit.export_end", "interventions.export_end"}  # named in the routes' audit.export_end
    assert {"session.start", "intervention.create", "model.promote", "job.create"} <= codes
    for lang in i18n.LANGS:
        assert sorted(c for c in codes if not i18n.has(lang, "audit.act." + c.replace(".", "_"))) == [], lang
