"""The playbook: loading and validation (with the line that is wrong), the condition grammar,
ranking, and the bad inputs (no rule firing, no engagement data, too little history)."""

import re

import numpy as np
import pytest

from models.playbook import (
    ConditionError,
    PlaybookError,
    choose,
    default_playbook,
    evaluate,
    load_playbook,
    parse_condition,
    parse_playbook,
    rank_interventions,
)

GOOD = """\
version: 1
settings:
  max_interventions: 2
rules:
  - name: low_win_rate
    group: conversion
    when: "win_rate_180d < 0.8 * peer.win_rate_180d"
    suggest: [skills_training, development_plan]
    reason:
      en: "Win rate {win_rate_180d} against {peer.win_rate_180d} for {peers}"
      zh: "赢单率{win_rate_180d}，{peers}为{peer.win_rate_180d}"
  - name: quota
    when: "quota_vs_segment >= 1.3"
    weight: 5
    suggest: smart_goals
    reason:
      en: "Quota {quota_vs_segment} the segment's"
      zh: "指标为同类的{quota_vs_segment}"
"""


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if needle in line)


def test_the_shipped_playbook_loads_and_names_only_catalog_ids():
    from features.contract import INTERVENTION_IDS

    pb = default_playbook()
    assert pb.rules and all(set(r.suggest) <= set(INTERVENTION_IDS) for r in pb.rules)
    # every cause of the simulator has a rule suggesting an intervention that answers it
    from simulator.truth import CAUSE_TO_INTERVENTIONS

    suggested = {i for r in pb.rules for i in r.suggest}
    for cause, ids in CAUSE_TO_INTERVENTIONS.items():
        assert suggested & set(ids), cause
    # the JSON form bundled with a model parses back to the same rules
    import json

    back = parse_playbook(json.dumps(pb.to_dict()), source="json")
    assert [r.name for r in back.rules] == [r.name for r in pb.rules]


@pytest.mark.parametrize(
    "old,new,needle,message",
    [
        (
            "[skills_training, development_plan]",
            "[skills_training, skill_training]",
            "suggest: [skills_training",
            "unknown intervention id 'skill_training'",
        ),
        ("win_rate_180d < 0.8", "win_rate_18d < 0.8", "when:", "unknown feature or name 'win_rate_18d'"),
        ('* peer.win_rate_180d"', '* peer.wins"', "when:", "unknown feature 'wins'"),
        ("< 0.8 *", "< < 0.8 *", "when:", "does not parse at column 17"),
        ("win_rate_180d < 0.8 * peer.win_rate_180d", "win_rate_180d + 1", "when:", "not a condition"),
        (
            "win_rate_180d < 0.8 * peer.win_rate_180d",
            "__import__('os').system('x')",
            "when:",
            "does not parse",
        ),
        ("group: conversion", "group: tenure", "group:", "context"),
        ("group: conversion", "group: conversions", "group:", "unknown group 'conversions'"),
        ("weight: 5", "weight: -1", "weight:", "positive number"),
        ('      zh: "指标为同类的{quota_vs_segment}"\n', "", 'reason:\n      en: "Quota', "'zh' is missing"),
        (
            "Quota {quota_vs_segment}",
            "Quota {quota_vs_segmnt}",
            "Quota {quota_vs_segmnt}",
            "placeholder {quota_vs_segmnt}",
        ),
        ("    weight: 5\n", "    weight: 5\n    priority: 2\n", "priority:", "unknown key 'priority'"),
        ("  max_interventions: 2", "  max_interventions: 0", "max_interventions", "at least 1"),
        (
            "  - name: quota\n",
            "  - name: low_win_rate\n",
            '- name: low_win_rate\n    when: "quota',
            "used twice",
        ),
    ],
)
def test_a_broken_playbook_is_refused_with_the_line_that_is_wrong(old, new, needle, message):
    assert old in GOOD
    text = GOOD.replace(old, new, 1)
    with pytest.raises(PlaybookError) as err:
        parse_playbook(text, source="hr.yaml")
    msg = str(err.value)
    assert message in msg
    line = (
        _line_of(text, needle.split("\n")[-1])
        if "\n" not in needle
        else text[: text.index(needle)].count("\n") + 1
    )
    assert f"playbook hr.yaml, line {line}:" in msg, msg


def test_yaml_syntax_errors_and_missing_files_are_user_errors(tmp_path):
    with pytest.raises(PlaybookError, match=r"line \d+: not valid YAML"):
        parse_playbook("version: 1\nrules:\n  - name: [unclosed\n")
    with pytest.raises(PlaybookError, match="does not exist"):
        load_playbook(tmp_path / "nope.yaml")
    with pytest.raises(PlaybookError, match="empty"):
        parse_playbook("")
    from repradar.errors import UserError

    assert issubclass(PlaybookError, UserError)  # CLI exit 2, HTTP 4xx


def test_the_grammar_is_three_valued_and_never_evaluates_python():
    env = {
        "a": np.array([1.0, np.nan, 3.0]),
        "peer.a": np.array([2.0, 2.0, 2.0]),
        "b": np.array([0.0, 1.0, np.nan]),
    }
    assert evaluate(parse_condition("a < peer.a"), env).tolist()[::2] == [1.0, 0.0]
    assert np.isnan(evaluate(parse_condition("a < peer.a"), env)[1])
    # false and unknown = false; true or unknown = true
    assert evaluate(parse_condition("a > 5 and b > 0"), env)[1] == 0.0 or np.isnan(
        evaluate(parse_condition("a > 5 and b > 0"), env)[1]
    )
    assert evaluate(parse_condition("b > 0 or a < 1"), env)[1] == 1.0
    assert evaluate(parse_condition("missing(a)"), env).tolist() == [0.0, 1.0, 0.0]
    assert evaluate(parse_condition("not (a >= 2) and present(b)"), env).tolist()[0] == 1.0
    assert evaluate(parse_condition("rel(a) < -0.4"), env).tolist() == [1.0, 0.0, 0.0]  # missing -> no gap
    for bad in ("a <", "a < 1 < 2", "(a < 1", "a << 1", "a < 1 and", "exec('x') > 1", "a.b.c > 1", ""):
        with pytest.raises(ConditionError):
            parse_condition(bad)


def test_rules_rank_best_score_first_and_secondary_ids_count_less():
    pb = parse_playbook(GOOD)
    env = {
        "win_rate_180d": np.array([0.1, 0.3, np.nan]),
        "peer.win_rate_180d": np.array([0.3, 0.3, 0.3]),
        "contribution.conversion": np.array([0.8, 0.8, 0.8]),
        "quota_vs_segment": np.array([1.5, 1.0, 1.0]),
    }
    ranked = rank_interventions(pb, env, 3)
    assert [i for i, _, _ in ranked[0]] == ["smart_goals", "skills_training", "development_plan"]
    assert ranked[0][1][1] == pytest.approx(0.8) and ranked[0][2][1] == pytest.approx(0.8 * 0.5)
    assert ranked[1] == [] and ranked[2] == []  # a missing win rate never fires the rule


TIES = """\
version: 1
settings:
  secondary_weight: 0.5
rules:
  - name: first
    strength: "2"
    suggest: [incentives, recognition]
    reason: {en: "a", zh: "a"}
  - name: second
    strength: "2"
    suggest: [pipeline_generation]
    reason: {en: "b", zh: "b"}
  - name: third
    strength: "win_rate_180d"
    suggest: [recognition, incentives]
    reason: {en: "c", zh: "c"}
"""


def test_ranking_ties_keep_file_order_and_an_id_keeps_its_best_rule():
    pb = parse_playbook(TIES)
    ranked = rank_interventions(pb, {"win_rate_180d": np.array([0.5, 3.0, 1.0, np.nan])}, 4)
    view = [[(i, s, r.name) for i, s, r in row] for row in ranked]
    # equal scores: the earlier rule first; recognition's best is first's 2 x 0.5 over third's 0.5
    assert view[0] == [
        ("incentives", 2.0, "first"),
        ("pipeline_generation", 2.0, "second"),
        ("recognition", 1.0, "first"),
    ]
    # third's 3 beats first's secondary 1 for recognition, and its own secondary 1.5 < first's 2 for incentives
    assert view[1] == [
        ("recognition", 3.0, "third"),
        ("incentives", 2.0, "first"),
        ("pipeline_generation", 2.0, "second"),
    ]
    # a tie between an id's two givers keeps the earlier rule (first: 1.0 = third: 1.0)
    assert view[2][2] == ("recognition", 1.0, "first")
    assert view[3] == view[0]  # a missing strength does not fire


def _reason(rule, lang, note=None, iid=None):
    return f"{note or rule.name}:{lang}"


def test_choose_puts_onboarding_and_quota_first_and_never_returns_nothing():
    pb = parse_playbook(GOOD)
    rule = pb.rules[0]
    ranked = [("skills_training", 1.0, rule), ("development_plan", 0.5, rule)]
    ids, reasons = choose(pb, ranked, quota_share=0.1, insufficient=False, reason_of=_reason)
    assert ids == ["skills_training", "development_plan"]
    assert reasons[0] == {
        "id": "skills_training",
        "reason_en": "low_win_rate:en",
        "reason_zh": "low_win_rate:zh-CN",
    }
    ids, _ = choose(pb, ranked, quota_share=0.7, insufficient=False, reason_of=_reason)
    assert ids == ["smart_goals", "skills_training"]  # quota first, rather than training
    ids, reasons = choose(pb, ranked, quota_share=0.0, insufficient=True, reason_of=_reason)
    assert ids == ["mentoring", "regular_checkins"] and reasons[0]["reason_en"] == "onboarding:en"
    ids, reasons = choose(pb, [], quota_share=0.0, insufficient=False, reason_of=_reason)
    assert ids == ["regular_checkins"] and reasons[0]["reason_en"] == "fallback_intervention:en"


def test_choose_puts_a_rule_without_any_of_the_reps_figures_after_those_with_figures():
    pb = parse_playbook(GOOD)
    blind, seen = pb.rules[0], pb.rules[1]

    def reason_of(rule, lang, note=None, iid=None):
        # the first rule fired on evidence the rep's own data lack: its reason can show no figure
        if rule is blind or note == "reason_without_figures":
            return f"without figures:{lang}"
        return _reason(rule, lang, note, iid)

    ranked = [("regular_checkins", 3.0, blind), ("pipeline_generation", 1.0, seen)]
    ids, reasons = choose(pb, ranked, quota_share=0.0, insufficient=False, reason_of=reason_of)
    assert ids == ["pipeline_generation", "regular_checkins"]  # kept, but after the checkable one
    assert reasons[1] == {
        "id": "regular_checkins",
        "reason_en": "without figures:en",
        "reason_zh": "without figures:zh-CN",
    }
    ids, _ = choose(pb, ranked[:1], quota_share=0.0, insufficient=False, reason_of=reason_of)
    assert ids == ["regular_checkins"]  # alone, it still stands: never an empty list


def test_choose_renders_the_reasons_of_the_rules_it_keeps_only():
    """Every fired rule's reason was rendered in both languages and all but the first few thrown away:
    about half the suggestion time of a batch. The list is the same; the others are not rendered."""
    pb = parse_playbook(GOOD)
    limit = pb.settings["max_interventions"]
    blind, seen = pb.rules[0], pb.rules[1]
    ids = ["skills_training", "development_plan", "pipeline_generation", "recognition", "mentoring"]
    calls = []

    def reason_of(rule, lang, note=None, iid=None):
        calls.append((rule.name if rule else note, lang))
        if rule is blind or note == "reason_without_figures":
            return f"without figures:{lang}"
        return _reason(rule, lang, note, iid)

    # a blind rule first, a repeated id, then more rules than the list holds
    ranked = [
        ("regular_checkins", 9.0, blind),
        ("skills_training", 5.0, seen),
        ("skills_training", 4.0, seen),
    ]
    ranked += [(iid, 3.0 - i * 0.1, seen) for i, iid in enumerate(ids[1:])]
    got, reasons = choose(pb, ranked, quota_share=0.0, insufficient=False, reason_of=reason_of)
    assert got == ids[:limit] and len(reasons) == limit
    assert sum(lang == "zh-CN" for _, lang in calls) == limit  # only the kept ones, in Chinese
    # English: the note, the blind rule, then rules until `limit` distinct ids with figures were seen
    assert len(calls) - limit == 2 + limit + 1  # (the repeated id's second rule is rendered once more)


def _scored(model, frame):
    return model.predict_frame(frame, actions=True)


def test_every_scored_rep_gets_interventions_with_reasons_in_both_languages():
    from features.contract import INTERVENTION_IDS
    from tests.models.tiny_model import shared_tiny_model, tiny_frame

    model = shared_tiny_model()
    out = _scored(model, tiny_frame(120, seed=5))
    assert all(len(ids) >= 1 for ids in out["interventions"])
    for ids, reasons in zip(out["interventions"], out["intervention_reasons"], strict=True):
        assert set(ids) <= set(INTERVENTION_IDS) and len(ids) == len(set(ids))
        assert [r["id"] for r in reasons] == ids
        assert all(
            r["reason_en"] and r["reason_zh"] and "{" not in r["reason_en"] + r["reason_zh"] for r in reasons
        )
    for groups in out["driver_groups"]:
        assert all(g["text_en"] and g["text_zh"] for g in groups)
    assert out["quota_share"].between(0, 1).all()


def test_bad_reps_no_engagement_no_peers_little_history_get_a_note_not_a_crash():
    from tests.models.tiny_model import shared_tiny_model, tiny_frame

    model = shared_tiny_model()
    f = tiny_frame(60, seed=6)
    f.loc[0, ["one_on_ones_91d", "csat_mean_91d", "crm_logins_per_week_28d"]] = np.nan  # no engagement at all
    f.loc[1, "segment"] = "Partners"  # alone in its segment
    f.loc[2, ["tenure_days", "history_days"]] = [20.0, 20.0]  # hired three weeks ago
    f.loc[3, "segment"] = None  # no segment in the data for this rep
    out = _scored(model, f)
    codes = [[n["code"] for n in notes] for notes in out["notes"]]
    assert "org_peers" in codes[1] and out.loc[1, "peer_scope"] == "organisation"
    assert "Partners" in out.loc[1, "notes"][codes[1].index("org_peers")]["text_en"]
    assert "no_segment" in codes[3] and "org_peers" not in codes[3]
    assert "—" not in str(out.loc[3, "notes"])  # no placeholder for a segment that does not exist
    assert out.loc[2, "insufficient_data"] and out.loc[2, "interventions"][0] == "mentoring"
    assert "insufficient_data" in codes[2]
    assert out.loc[2, "risk"] == out.loc[2, "risk"]  # the risk is still given, flagged, not hidden
    for i in range(3):
        assert out.loc[i, "interventions"], i
    # engagement features all missing: said so
    f2 = f.copy()
    for c in ("one_on_ones_91d", "csat_mean_91d", "crm_logins_per_week_28d"):
        f2[c] = np.nan
    out2 = _scored(model, f2)
    assert all("no_engagement" in [n["code"] for n in notes] for notes in out2["notes"])
    assert all(len(ids) >= 1 for ids in out2["interventions"])


LOW_PULSE = """\
version: 1
rules:
  - name: low_pulse
    when: "pulse_mean_91d < 0.9 * peer.pulse_mean_91d"
    strength: "1 - rel(pulse_mean_91d)"
    weight: 50
    suggest: wellbeing_support
    reason:
      en: "Pulse {pulse_mean_91d} against {peer.pulse_mean_91d} for {peers}"
      zh: "情绪{pulse_mean_91d}，{peers}为{peer.pulse_mean_91d}"
"""


def test_a_rule_on_a_feature_the_model_lacks_compares_the_rep_with_peers_from_the_data():
    """A model trained on fewer (or older) features than the playbook reads: the data still holds the
    feature, so `peer.<feature>` and `rel()` come from it and the rule fires, instead of never."""
    from tests.models.tiny_model import shared_tiny_model, tiny_frame

    model = shared_tiny_model()
    assert "pulse_mean_91d" not in model.spec_.feature_names
    f = tiny_frame(60, seed=3)
    low = np.arange(60) % 3 == 0
    f["pulse_mean_91d"] = np.where(low, 3.0, 8.0)
    out = model.predict_frame(f, actions=True, playbook=parse_playbook(LOW_PULSE, source="hr.yaml"))
    fired = np.array(["wellbeing_support" in ids for ids in out["interventions"]])
    assert (fired == low).all()
    reason = out["intervention_reasons"].iat[0][0]
    assert reason["id"] == "wellbeing_support" and "against 8 for" in reason["reason_en"], reason


def test_an_operator_playbook_overrides_the_bundled_one(tmp_path, monkeypatch):
    from models.playbook import playbook_override
    from models.scoring import _playbook

    path = tmp_path / "hr.yaml"
    path.write_text(GOOD)
    monkeypatch.setenv("REPRADAR_PLAYBOOK", str(path))
    assert playbook_override(None) == path
    pb = _playbook(None)
    assert [r.name for r in pb.rules] == ["low_win_rate", "quota"]
    path.write_text(GOOD.replace("smart_goals", "smart_goal"))
    with pytest.raises(
        PlaybookError,
        match="hr.yaml, line 15: rule 'quota': unknown intervention id 'smart_goal' \\(did you mean 'smart_goals'\\?\\)",
    ):
        _playbook(None)


def test_playbook_and_min_history_days_are_settings(tmp_path, monkeypatch):
    from models.playbook import option, playbook_override
    from repradar.settings import Settings

    path = tmp_path / "hr.yaml"
    path.write_text(GOOD)
    assert playbook_override(Settings(playbook=path)) == path
    assert playbook_override(Settings()) is None
    assert option(Settings(min_history_days=30), "min_history_days", 0) == 30
    assert option(Settings(), "min_history_days", 0) == 0
    # the environment reaches them through Settings (REPRADAR_ prefix)
    monkeypatch.setenv("REPRADAR_MIN_HISTORY_DAYS", "45")
    monkeypatch.setenv("REPRADAR_PLAYBOOK", str(path))
    assert Settings().min_history_days == 45
    assert option(None, "min_history_days", 0) == 45
    assert playbook_override(Settings()) == path
    monkeypatch.setenv("REPRADAR_MIN_HISTORY_DAYS", "soon")
    with pytest.raises(ValueError, match="min_history_days"):
        Settings()


def test_score_playbook_option(tmp_path, monkeypatch):
    """`repradar score --playbook FILE` scores with that file; a broken one is refused (exit 2, its line)."""
    import pandas as pd
    from typer.testing import CliRunner

    import models.scoring
    from repradar.cli import app

    seen = {}

    def fake_score_folder(data_dir, as_of, settings, model=None, *, playbook=None):
        seen["playbook"] = settings.playbook
        return pd.DataFrame({"risk_band": ["high"], "model_version": ["1"]})

    monkeypatch.setattr(models.scoring, "score_folder", fake_score_folder)
    monkeypatch.setattr(models.scoring, "write_scores", lambda df, out: None)
    data = tmp_path / "data"
    data.mkdir()
    good = tmp_path / "hr.yaml"
    good.write_text(GOOD)
    args = ["score", "--data", str(data), "--as-of", "2024-02-01", "--out", str(tmp_path / "s.parquet")]
    res = CliRunner().invoke(app, [*args, "--playbook", str(good)])
    assert res.exit_code == 0, res.output
    assert seen["playbook"] == good
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("smart_goals", "smart_goal"))
    seen.clear()
    res = CliRunner().invoke(app, [*args, "--playbook", str(bad)])
    assert res.exit_code == 2
    assert "bad.yaml, line 15" in res.output and "smart_goal" in res.output
    assert not seen  # refused before any scoring work


def test_a_team_without_any_logged_one_on_one_is_no_evidence_of_weak_coaching():
    """Many managers never log 1:1s: a team median of zero says nothing about coaching, so the
    shipped weak_coaching rule ignores the 1:1 gaps there and weighs them where the team logs some."""
    rule = next(r for r in default_playbook().rules if r.name == "weak_coaching")
    names = ["one_on_ones_91d", "team.one_on_ones_91d", "pulse_mean_91d", "team.pulse_mean_91d"]
    env = {n: np.array([0.0, 0.0, 0.0]) for n in names}
    env["team.one_on_ones_91d"] = np.array([0.0, 4.0, 5.0])  # none logged / logged, rep has none / normal
    env["one_on_ones_91d"] = np.array([0.0, 0.0, 5.0])
    env["pulse_mean_91d"] = env["team.pulse_mean_91d"] = np.full(3, 7.0)
    for n in list(env):
        env[f"peer.{n.removeprefix('team.')}"] = (
            np.array([5.0, 5.0, 5.0]) if "one_on" in n else np.full(3, 7.0)
        )
    env["contribution.coaching"] = np.zeros(3)
    s = evaluate(rule.strength_expr, env)
    assert s[0] == pytest.approx(s[2])  # no 1:1 records in the team: as if the rep were at the norm
    assert s[1] > s[0] + 1.0  # the team logs 1:1s and this rep gets none: real evidence


def test_a_reason_leaves_out_the_clauses_whose_figures_are_missing():
    """A rep without activities or closed deals: no "n/a" in the reason; the clauses with figures stay,
    and a reason with none left says plainly that the figures are missing."""
    from models import i18n
    from models.playbook import render_reason

    env = {
        "win_rate_180d": np.array([np.nan, 0.2, np.nan]),
        "peer.win_rate_180d": np.array([0.3, 0.3, 0.3]),
        "activities_per_week_28d": np.array([12.0, 14.0, np.nan]),
    }
    en = "Win rate {win_rate_180d} against {peer.win_rate_180d} for {peers}; activity {activities_per_week_28d}"
    zh = "赢单率{win_rate_180d}，{peers}为{peer.win_rate_180d}；销售活动{activities_per_week_28d}"

    def r(template, i, lang="en"):
        return render_reason(template, env, i, lang, {}, "SMB", "segment")

    assert r(en, 1) == "Win rate 20% against 30% for SMB peers; activity 14 a week"
    assert r(en, 0) == "Activity 12 a week"
    assert r(zh, 0, "zh-CN") == "销售活动每周12次"
    assert r(en, 2) == i18n.text("en", "notes.reason_without_figures")
    assert all("n/a" not in r(en, i) and "无数据" not in r(zh, i, "zh-CN") for i in range(3))


def test_a_reason_cites_only_the_alternatives_of_its_condition_that_hold():
    """A rule that fires on "low win rate or low activity": a rep with a better win rate than the peers
    is not told their win rate as a reason; a clause naming no figure of the condition stays; when no
    alternative the reason speaks of holds, the whole reason is shown rather than none."""
    from models.playbook import parse_condition, render_reason

    env = {
        "win_rate_180d": np.array([0.2, 0.4, 0.2, 0.4]),
        "peer.win_rate_180d": np.array([0.3, 0.3, 0.3, 0.3]),
        "activities_per_week_28d": np.array([10.0, 10.0, 14.0, 14.0]),
        "peer.activities_per_week_28d": np.array([12.0, 12.0, 12.0, 12.0]),
        "tenure_days": np.array([400.0, 400.0, 400.0, 400.0]),
        "contribution.conversion": np.array([0.0, 0.0, 0.0, 0.5]),
    }
    cond = parse_condition(
        "win_rate_180d < peer.win_rate_180d or activities_per_week_28d < peer.activities_per_week_28d"
        " or contribution.conversion > 0.1"
    )
    en = (
        "Win rate {win_rate_180d}, against {peer.win_rate_180d} for {peers}; "
        "activity {activities_per_week_28d}, against {peer.activities_per_week_28d} for {peers}; "
        "in the job for {tenure_days}"
    )
    zh = "赢单率{win_rate_180d}，{peers}为{peer.win_rate_180d}；销售活动{activities_per_week_28d}，{peers}为{peer.activities_per_week_28d}"

    def r(template, i, lang="en", c=cond):
        return render_reason(template, env, i, lang, {}, "SMB", "segment", c)

    assert r(en, 0) == (
        "Win rate 20%, against 30% for SMB peers; activity 10 a week, against 12 a week for peers; "
        "in the job for 400 days"
    )
    assert r(en, 1) == "Activity 10 a week, against 12 a week for SMB peers; in the job for 400 days"
    assert r(en, 2) == "Win rate 20%, against 30% for SMB peers; in the job for 400 days"
    assert r(zh, 1, "zh-CN") == "销售活动每周10次，SMB同类销售为每周12次"
    # fired on the contribution alone: neither comparison holds, so both stay rather than none
    assert r(en, 3).startswith("Win rate 40%, against 30% for SMB peers; activity 14 a week")
    # without a condition (a group rule) or with a single comparison nothing is left out
    assert r(en, 1, c=None).startswith("Win rate 40%")
    assert r(en, 1, c=parse_condition("activities_per_week_28d < peer.activities_per_week_28d")).startswith(
        "Win rate 40%"
    )


def test_the_default_playbook_never_cites_a_comparison_that_does_not_hold():
    """On a simulated batch, every reason of an evidence rule whose condition is `a < peer.a or ...`
    leaves out the alternatives where the rep is level with or better than the peers (unless none holds)."""
    from models.playbook import _base, _or_terms, condition_names, default_playbook, evaluate, render_reason

    rng = np.random.default_rng(3)
    pb = default_playbook()
    n = 200
    names = set()
    for rule in pb.rules:
        for t in _or_terms(rule.condition):
            names |= {_base(x) for x in condition_names(t)}
    env = {}
    for f in names:
        if f.startswith(("contribution.", "rank.")):
            continue
        env[f] = rng.lognormal(0, 0.5, n)
        env[f"peer.{f}"] = np.ones(n)
        env[f"team.{f}"] = rng.lognormal(0, 0.5, n)
    env["pulse_trend_28d"] = rng.normal(0, 1, n)

    def plain(text):
        return text.lower().replace("smb peers", "peers")

    checked = 0
    for rule in pb.rules:
        terms = _or_terms(rule.condition)
        if len(terms) < 2:
            continue
        truth = [np.broadcast_to(evaluate(t, env), (n,)) for t in terms]
        for i in range(n):
            holding = [t for t, v in zip(terms, truth, strict=True) if v[i] == 1.0]
            if not holding:
                continue
            text = render_reason(rule.reason["en"], env, i, "en", {}, "SMB", "segment", rule.condition)
            for t, v in zip(terms, truth, strict=True):
                feats = {_base(x) for x in condition_names(t)}
                if v[i] == 1.0 or any(feats & {_base(x) for x in condition_names(h)} for h in holding):
                    continue
                # a comparison that does not hold: the clauses naming only its figures are not in the text
                for clause in rule.reason["en"].split("; "):
                    fields = {_base(f) for f in re.findall(r"\{([^}]+)\}", clause)} - {"peers"}
                    if fields and fields <= feats:
                        alone = render_reason(clause, env, i, "en", {}, "SMB", "segment")
                        assert plain(alone) not in plain(text), (rule.name, i, text)
                        checked += 1
    assert checked > 100


def test_deals_per_100_activities_read_as_a_count_in_both_languages():
    """The shipped thin-territory reason said '18.31x new deals per 100 activities' ('18.31倍个' in Chinese)."""
    from models.playbook import default_playbook, render_reason

    rule = next(r for r in default_playbook().rules if r.name == "thin_territory")
    env = {
        "new_deals_91d": np.array([26.0]),
        "peer.new_deals_91d": np.array([42.0]),
        "new_deals_per_100_activities_91d": np.array([18.31]),
        "peer.new_deals_per_100_activities_91d": np.array([19.06]),
    }
    en = render_reason(rule.reason["en"], env, 0, "en", {}, "SMB", "segment")
    assert "new deals per 100 activities: 18.3, against 19.1 for peers" in en, en
    zh = render_reason(rule.reason["zh-CN"], env, 0, "zh-CN", {}, "SMB", "segment")
    assert "每100次活动新建商机18.3个" in zh and "倍" not in zh, zh


@pytest.mark.parametrize(
    "rule_name, figures",
    [
        ("thin_territory", ["new_deals_per_100_activities_91d", "closed_deals_180d", "new_deals_91d"]),
        ("selling_skills", ["early_stage_progress_rate_180d", "win_rate_180d", "late_stage_reach_rate_180d"]),
    ],
)
def test_deal_figures_over_a_window_longer_than_the_time_in_the_job_weigh_in_proportion(rule_name, figures):
    """A rep hired 19 days ago has no 91 (or 180) days of deals: their empty counts are thin evidence
    of a thin territory or weak skills, so the shipped rules weigh them by the share of the window in
    the job, and in full from one window on (where nothing changed)."""
    rule = next(r for r in default_playbook().rules if r.name == rule_name)
    tenure = np.array([19.0, 19.0, 400.0, 400.0, 180.0])
    env = {"tenure_days": tenure}
    for n in figures:
        env[n] = np.array([0.0, 5.0, 0.0, 5.0, 0.0])  # no deals at all / at the peers' level
        env[f"peer.{n}"] = np.full(5, 5.0)
    s = evaluate(rule.strength_expr, {**env, **_zeros_for(rule, env, 5)})
    at_norm = s[1]
    assert s[1] == pytest.approx(s[3])  # at the peers' level, tenure changes nothing
    assert s[2] - at_norm > 1.0  # a tenured rep with no deals: strong evidence
    # 19 days in the job: the empty counts weigh 19/91 or 19/180 of that, no more
    assert 0 < s[0] - at_norm < 0.25 * (s[2] - at_norm)
    assert s[4] == pytest.approx(s[2])  # one full window in the job: weighs in full


def _zeros_for(rule, env, n):
    """The rule's other variables at 'no evidence' (0), so only the figures under test move."""
    from models.playbook import condition_names

    names = condition_names(rule.strength_expr) - set(env)
    return {name: np.zeros(n) for name in names}


def test_a_reason_left_with_its_second_clause_says_what_the_figure_is():
    """When only the second alternative of a rule held, its reason began with a bare figure: "14.6 a week
    over 91 days, against 18.2 ..." / "近91天为每周14.6次" (what is 14.6?), "1.3x the rep's earlier quotas"
    / "为本人以往指标的1.3倍". Each clause that can come first names its subject."""
    from models.playbook import default_playbook, render_reason

    rules = {r.name: r for r in default_playbook().rules}
    env = {
        "activities_per_week_28d": np.array([20.0]),
        "peer.activities_per_week_28d": np.array([17.5]),
        "activities_per_week_91d": np.array([14.6]),
        "peer.activities_per_week_91d": np.array([18.2]),
        "quota_vs_segment": np.array([1.0]),
        "quota_vs_own_history": np.array([1.3]),
    }

    def r(name, lang):
        rule = rules[name]
        return render_reason(rule.reason[lang], env, 0, lang, {}, "SMB", "segment", rule.condition)

    assert r("low_effort", "en").startswith("Activity is 14.6 a week over the last 91 days, against 18.2")
    assert r("low_effort", "zh-CN").startswith("近91天销售活动为每周14.6次，SMB同类销售为每周18.2次")
    assert r("quota_far_above", "en") == "Quota is 1.30x the rep's earlier quotas"
    assert r("quota_far_above", "zh-CN") == "指标为本人以往指标的1.30倍"


ENGAGEMENT = """\
version: 1
rules:
  - name: survey
    group: wellbeing
    when: "eng__pulse_scor_mean_28d < 5 or team.eng__pulse_scor_mean_28d < 5"
    suggest: wellbeing_support
    reason: {en: "Pulse {eng__pulse_scor_mean_28d}", zh: "情绪{eng__pulse_scor_mean_28d}"}
  - name: badges
    group: learning
    strength: "1 - rel(eng__badge_count_mean_28d)"
    suggest: recognition
    reason: {en: "Badges", zh: "徽章"}
  - name: contract_pulse
    group: wellbeing
    when: "eng__pulse_score_mean_28d < 5"
    suggest: wellbeing_support
    reason: {en: "Pulse", zh: "情绪"}
"""


def test_an_engagement_metric_the_contract_does_not_know_loads_with_a_warning_naming_its_line(
    tmp_path, capsys
):
    """`eng__pulse_scor_mean_28d` (a typo of pulse_score) passed the check without a word and its rule
    never fired. A metric outside the contract is legitimate (it becomes a feature), so the file still
    loads, but with a warning naming the rule, the line, the name and the closest known metric; the
    check prints the warnings and still says ok (exit 0). A wrong statistic or window is refused: the
    feature SQL makes only the 28-day mean."""
    from models.playbook import check_main

    pb = parse_playbook(ENGAGEMENT, source="hr.yaml")
    assert [r.name for r in pb.rules] == ["survey", "badges", "contract_pulse"]
    typo, custom, known = pb.warnings
    line = _line_of(ENGAGEMENT, "eng__pulse_scor_mean_28d < 5")
    assert typo.startswith(f"playbook hr.yaml, line {line}: rule 'survey': eng__pulse_scor_mean_28d ")
    assert "'pulse_scor'" in typo and "did you mean pulse_score?" in typo and "pulse_mean_91d" in typo
    assert custom.startswith(f"playbook hr.yaml, line {_line_of(ENGAGEMENT, 'strength:')}: rule 'badges': ")
    assert "'badge_count'" in custom and "did you mean" not in custom
    assert known.startswith(f"playbook hr.yaml, line {_line_of(ENGAGEMENT, 'eng__pulse_score_')}: ")
    assert "'pulse_score' is a metric of the data contract" in known and "pulse_mean_28d" in known
    assert default_playbook().warnings == []

    path = tmp_path / "hr.yaml"
    path.write_text(ENGAGEMENT, encoding="utf-8")
    assert check_main([str(path)]) == 0
    out = capsys.readouterr()
    assert out.out == f"{path}: ok, 3 rule(s)\n"
    assert out.err.splitlines()[0] == f"warning: {str(typo).replace('hr.yaml', str(path))}"
    assert out.err.count("warning: ") == 3

    with pytest.raises(PlaybookError) as err:
        parse_playbook(
            ENGAGEMENT.replace("eng__pulse_score_mean_28d", "eng__pulse_score_meen_28d"), "hr.yaml"
        )
    assert f"line {_line_of(ENGAGEMENT, 'eng__pulse_score_')}:" in str(err.value)
    assert "eng__<metric>_mean_28d" in str(err.value) and "'pulse_score' is read into pulse_mean_28d" in str(
        err.value
    )
    with pytest.raises(PlaybookError, match="did you mean 'eng__badge_count_mean_28d'"):
        parse_playbook(ENGAGEMENT.replace("rel(eng__badge_count_mean_28d)", "rel(eng__badge_count_sum_7d)"))
    # the team's median of one: the same hint (it said only "unknown name ... team.<feature>")
    with pytest.raises(PlaybookError, match="did you mean 'eng__pulse_scor_mean_28d'"):
        parse_playbook(ENGAGEMENT.replace("team.eng__pulse_scor_mean_28d", "team.eng__pulse_scor_mean_91d"))


def test_playbook_warnings_are_score_notes_unless_the_data_holds_the_figure(tmp_path):
    """`repradar score` (and a batch job) says once what the check says, where the playbook's other
    note goes; a custom metric the export does hold is not warned about."""
    from types import SimpleNamespace

    from models.loading import LoadedModel
    from models.scoring import score_notes
    from repradar.settings import Settings
    from tests.models.tiny_model import shared_tiny_model, tiny_frame

    path = tmp_path / "hr.yaml"
    path.write_text(ENGAGEMENT, encoding="utf-8")
    model = LoadedModel("m", "1", shared_tiny_model())
    frame = tiny_frame(40, seed=2).assign(eng__badge_count_mean_28d=2.0)
    notes = [
        str(n)
        for n in score_notes(
            SimpleNamespace(notes=[], frame=frame), model, Settings(home=tmp_path, playbook=path)
        )
    ]
    warned = [n for n in notes if "eng__" in n and "cannot fire" not in n]
    assert len(warned) == 2, notes
    assert "eng__pulse_scor_mean_28d" in warned[0] and "eng__pulse_score_mean_28d" in warned[1]
    assert not any("badge_count" in n for n in notes)


DATA_NOTE = """\
version: 1
rules:
  - name: low_pulse
    group: wellbeing
    when: "pulse_mean_91d < peer.pulse_mean_91d"
    suggest: wellbeing_support
    reason: {en: "Pulse {pulse_mean_91d}", zh: "情绪{pulse_mean_91d}"}
  - name: coaching
    group: coaching
    when: "win_rate_180d < 1"
    strength: "peer.one_on_ones_91d - one_on_ones_91d"
    suggest: regular_checkins
    reason: {en: "1:1s", zh: "1:1"}
"""


def test_the_note_on_rules_the_data_cannot_fire_points_at_the_line_that_reads_the_figures():
    """The note named a rule's `- name:` line; HR must edit its `when` (or `strength`), which is where
    the missing figures are read."""
    import pandas as pd

    from models.playbook import data_note

    pb = parse_playbook(DATA_NOTE, source="hr.yaml")
    note = data_note(pb, pd.DataFrame({"win_rate_180d": [0.2, 0.3]}))
    when = _line_of(DATA_NOTE, 'when: "pulse_mean_91d')
    strength = _line_of(DATA_NOTE, "strength:")
    assert f"low_pulse (line {when}: pulse_mean_91d)" in note, note
    assert f"coaching (line {strength}: one_on_ones_91d)" in note, note
