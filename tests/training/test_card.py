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
    """The build's notes are Messages (features/build.py): English as text, as they always were, and in
    Chinese in the Chinese card; a plain-text note is shown as written, saying it is the English."""
    from types import SimpleNamespace

    import pandas as pd

    from features.build import FALLBACK_COLUMNS, _notes, fallback_note
    from models.i18n import Message
    from training.card import build_note

    tables = SimpleNamespace(reps=pd.DataFrame(columns=["rep_id", "manager_id", "gender", "age_band"]))
    staged = SimpleNamespace(has_history=False, has_activities=False, has_engagement=False)
    notes = _notes(tables, staged, ["nps", "badge_count"])
    assert notes[0] == fallback_note() and len(notes) == 5
    assert notes[-1] == "reps columns kept out of the model (attributes): gender, age_band."
    assert "became generic 28-day-mean features: nps, badge_count." in notes[-2]
    assert notes[0].startswith("opportunity_history is absent") and (
        "leak a little into " + ", ".join(FALLBACK_COLUMNS[:9]) + "; close_date_slips_91d" in notes[0]
    )
    snapshots = Message("card.build_note.snapshots", every_days=7, periods=5, day="2024-04-01")
    assert snapshots == "snapshots every 7 days of 5 finished period(s) ending before 2024-04-01"
    for note in [*notes, snapshots]:
        assert isinstance(note, Message) and build_note(note, "en") == note
        zh = build_note(note, "zh-CN")
        assert "英文原文" not in zh and not re.search(r"[A-Za-z]+ [A-Za-z]+ [A-Za-z]+", zh), zh
    assert build_note(notes[-1], "zh-CN") == "未用于模型的 reps 列（属性）：gender、age_band。"
    # a plain-text note is shown as written, and in Chinese says it is the English original
    assert build_note("a new kind of note.", "en") == "a new kind of note."
    assert build_note("a new kind of note.", "zh-CN") == "a new kind of note.（特征构建写下的英文原文）"


def test_the_build_notes_of_a_training_set_are_messages(tmp_path):
    """The notes a real build writes (the snapshot line first) are Messages, so the card can translate them."""
    from features.build import build_training_set
    from features.io import load_folder
    from models.i18n import Message
    from simulator.simulate import SimConfig, simulate

    simulate(SimConfig(n_reps=12, n_periods=2, seed=1, oracle_sims=0), tmp_path)
    fs = build_training_set(load_folder(tmp_path))
    assert fs.notes and all(isinstance(n, Message) for n in fs.notes), fs.notes
    assert fs.notes[0].startswith("snapshots every 7 days of ")


def test_thin_data_caveats_in_chinese_write_counts_as_the_report_does():
    zh = data_caveats({"reps": THIN_REPS - 1, "train_periods": 1, "test_missed_rep_periods": 3}, "zh-CN")
    assert zh[0] == f"只有 {THIN_REPS - 1} 名销售代表（少于 {THIN_REPS} 名）：每个数字都只基于很少的人"
    assert len(zh) == len(data_caveats({"reps": 1, "train_periods": 1, "test_missed_rep_periods": 3})) == 4
