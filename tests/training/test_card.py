"""Thin-data caveats: the training report says when figures rest on too little data; the card in Chinese."""

import re

from training.card import THIN_REPS, THIN_TEST_MISSES, data_caveats


def test_enough_data_has_no_caveat():
    assert data_caveats({"reps": 500, "train_periods": 8, "test_missed_rep_periods": 120}) == []


def test_each_thin_dimension_is_named():
    few_reps = data_caveats({"reps": THIN_REPS - 1, "train_periods": 8, "test_missed_rep_periods": 120})
    assert any(f"only {THIN_REPS - 1} reps" in c for c in few_reps)
    few_periods = data_caveats({"reps": 500, "train_periods": 1, "test_missed_rep_periods": 120})
    assert any("training period" in c for c in few_periods)
    few_misses = data_caveats(
        {"reps": 500, "train_periods": 8, "test_missed_rep_periods": THIN_TEST_MISSES - 1}
    )
    assert any("held-out metrics are uncertain" in c for c in few_misses)
    assert "starting point" in few_misses[-1]


def test_every_note_the_feature_build_writes_reads_in_chinese_in_the_chinese_card():
    """The build's notes are English text (features/build.py); the Chinese card reads each kind back with
    its English message and writes it in Chinese. A note whose wording changed would stay English there."""
    from types import SimpleNamespace

    import pandas as pd

    from features.build import FALLBACK_NOTE, _notes
    from training.card import build_note

    tables = SimpleNamespace(reps=pd.DataFrame(columns=["rep_id", "manager_id", "gender", "age_band"]))
    staged = SimpleNamespace(has_history=False, has_activities=False, has_engagement=False)
    notes = _notes(tables, staged, ["nps", "badge_count"])
    assert FALLBACK_NOTE in notes and len(notes) == 5
    for note in notes + ["snapshots every 7 days of 5 finished period(s) ending before 2024-04-01"]:
        assert build_note(note, "en") == note
        zh = build_note(note, "zh-CN")
        assert "英文原文" not in zh and not re.search(r"[A-Za-z]+ [A-Za-z]+ [A-Za-z]+", zh), zh
    assert build_note(notes[-1], "zh-CN") == "未用于模型的 reps 列（属性）：gender, age_band。"
    # a note of a kind this release does not know is shown as written, and says so
    assert build_note("a new kind of note.", "zh-CN") == "a new kind of note.（特征构建写下的英文原文）"


def test_thin_data_caveats_in_chinese_write_counts_as_the_report_does():
    zh = data_caveats({"reps": THIN_REPS - 1, "train_periods": 1, "test_missed_rep_periods": 3}, "zh-CN")
    assert zh[0] == f"只有 {THIN_REPS - 1} 名销售代表（少于 {THIN_REPS} 名）：每个数字都只基于很少的人"
    assert len(zh) == len(data_caveats({"reps": 1, "train_periods": 1, "test_missed_rep_periods": 3})) == 4
