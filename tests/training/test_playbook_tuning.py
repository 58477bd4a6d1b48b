"""Tuning the playbook's weights on known causes: which numbers move, that the search improves the
match without touching anything else, and that its fast path ranks exactly as scoring does."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.playbook import PlaybookInputs, load_playbook, parse_playbook
from tests.training.conftest import run_cli
from training.playbook_tuning import TuningSet, hits, numbers, top_ids, tune, with_number

RULES = """\
version: 1
rules:
  # skill: the evidence is weak against the two catch-alls below
  - name: skill
    strength: "1 + 0.1 * win_rate_180d - min(quota_vs_segment - 1, 2)"
    suggest: [skills_training]
    reason: {en: "s", zh: "s"}
  - name: catch_all_a
    strength: "2"
    suggest: [incentives]
    reason: {en: "a", zh: "a"}
  - name: catch_all_b
    strength: "2"
    suggest: [recognition]
    reason: {en: "b", zh: "b"}
"""


def _set(win_rate, causes) -> TuningSet:
    n = len(causes)
    env = {"win_rate_180d": np.asarray(win_rate, dtype=float), "quota_vs_segment": np.ones(n)}
    inputs = PlaybookInputs(
        explained=pd.DataFrame(index=range(n)),
        env=env,
        quota_share=np.zeros(n),
        insufficient=np.zeros(n, bool),
    )
    return TuningSet(inputs=inputs, causes=np.asarray(causes, dtype=object), weeks=np.full(n, 3))


def test_only_the_weights_of_strength_expressions_are_tuned():
    text = (
        RULES
        + '  - name: n\n    strength: "3 * rel(new_deals_per_100_activities_91d) + 0.5 * contribution.quota"\n'
    )
    got = [v for _, _, v in numbers(text)]
    # the leading constant and the multipliers; not the offset (- 1), the bound (2) or digits in names
    assert got == [1.0, 0.1, 2.0, 2.0, 3.0, 0.5]
    changed = with_number(text, 1, 0.25)
    assert changed == text.replace("0.1 * win_rate", "0.25 * win_rate", 1)


def test_the_search_raises_the_match_and_changes_only_numbers():
    ts = _set([5.0, 5.0, 5.0, 0.0], ["skill", "skill", "skill", "effort"])
    before = hits(parse_playbook(RULES), ts)
    assert before.tolist() == [False, False, False, True]  # 1 + 0.5 < 2: the catch-alls fill the top two
    r = tune(RULES, ts, rounds=3)
    assert r.share_before == pytest.approx(0.25) and r.share_after == pytest.approx(1.0)
    assert r.changes and r.changes[-1]["share"] == pytest.approx(1.0)
    tuned = parse_playbook(r.text)
    assert hits(tuned, ts).mean() == pytest.approx(r.share_after)
    # same file but for numbers: comments, names and reasons untouched
    strip = lambda t: [ln for ln in t.splitlines() if "strength:" not in ln]  # noqa: E731
    assert strip(r.text) == strip(RULES)
    assert [x.name for x in tuned.rules] == ["skill", "catch_all_a", "catch_all_b"]


def test_the_search_stops_when_nothing_helps():
    ts = _set([0.0, 0.0], ["effort", "effort"])  # incentives already answers every row
    r = tune(RULES, ts, rounds=5)
    assert r.share_before == r.share_after == 1.0 and r.changes == [] and r.rounds == 1 and r.text == RULES


def test_a_tuned_file_that_does_worse_on_held_out_rows_is_flagged():
    from training.playbook_tuning import HeldOut, TuneResult, TuningReport

    result = TuneResult(text=RULES, share_before=0.69, share_after=0.76, rounds=1)
    better = HeldOut("org-a", 40, before={3: 0.60, 6: 0.70}, after={3: 0.65, 6: 0.70})
    worse = HeldOut("org-b", 40, before={3: 0.62, 6: 0.75}, after={3: 0.56, 6: 0.62})
    report = TuningReport(result, 100, ["org-a", "org-b"], heldout=[better, worse])
    assert report.worse_heldout() == [worse]
    (warning,) = [line for line in report.lines() if line.startswith("warning:")]
    assert "held-out period of org-b (0.685 -> 0.590" in warning
    assert TuningReport(result, 100, ["org-a"], heldout=[better]).worse_heldout() == []


@pytest.mark.slow
def test_the_fast_path_ranks_as_scoring_does(sim_org, model_v1, heldout, settings):
    from training.cause_match import load_truth, match_rows
    from training.playbook_tuning import tuning_set

    model = model_v1.pyfunc
    truth = load_truth(sim_org)
    pb = model.playbook_obj_
    ts = tuning_set(heldout, model, truth, playbook=pb, band_high=settings.band_high)
    sub = heldout[heldout["week_of_period"].isin([3, 6, 9])].reset_index(drop=True)
    scored = model.predict_frame(sub, actions=True, band_high=settings.band_high, recourse=False)
    rows = match_rows(sub, list(scored["interventions"]), truth)
    assert len(ts) == len(rows) > 0
    assert top_ids(pb, ts.inputs) == [list(x) for x in scored["interventions"].iloc[rows["row"]]]
    assert hits(pb, ts).tolist() == rows["hit"].tolist()


@pytest.mark.slow
def test_pooled_organisations_keep_their_own_peers_and_team_medians(model_v1, heldout, sim_org, settings):
    from training.cause_match import load_truth
    from training.playbook_tuning import pooled, tuning_set

    model, truth = model_v1.pyfunc, load_truth(sim_org)
    pb = model.playbook_obj_
    managers = sorted(heldout["manager_id"].dropna().unique())
    half = heldout[heldout["manager_id"].isin(managers[: len(managers) // 2])]
    a = tuning_set(heldout, model, truth, playbook=pb, band_high=settings.band_high)
    b = tuning_set(half, model, truth, playbook=pb, band_high=settings.band_high)
    both = pooled([a, b], pb)
    assert len(both) == len(a) + len(b) and len(b) > 0
    assert hits(pb, both).tolist() == hits(pb, a).tolist() + hits(pb, b).tolist()
    assert top_ids(pb, both.inputs) == top_ids(pb, a.inputs) + top_ids(pb, b.inputs)
    for name in ("peer.win_rate_180d", "team.one_on_ones_91d"):
        np.testing.assert_array_equal(both.inputs.env[name][: len(a)], a.inputs.env[name])
        np.testing.assert_array_equal(both.inputs.env[name][len(a) :], b.inputs.env[name])


@pytest.mark.slow
def test_tune_playbook_command_writes_a_loadable_playbook(trained, sim_org, tmp_path):
    out = tmp_path / "tuned.yaml"
    # the same organisation twice stands for two: their rows are pooled, their held-out windows kept apart
    args = ["--data", str(sim_org), "--data", str(sim_org), "--version", "1"]
    r = run_cli(trained, "tune-playbook", *args, "--out", str(out), "--rounds", "1")
    assert r.exit_code == 0, r.stdout + r.stderr
    assert r.stdout.count(f"held-out period of {sim_org}, for information") == 2
    tuned_on = next(ln for ln in r.stdout.splitlines() if ln.startswith("tuned on"))
    assert tuned_on.count(f"{sim_org}: ") == 2
    tuned = load_playbook(out)
    assert [x.name for x in tuned.rules] == [x.name for x in load_playbook(None).rules]


def test_tune_playbook_needs_known_causes(tmp_path):
    r = run_cli(
        tmp_path / "home", "tune-playbook", "--data", str(tmp_path), "--out", str(tmp_path / "x.yaml")
    )
    assert r.exit_code == 2 and "tuning needs known causes" in r.stderr
    assert not (tmp_path / "x.yaml").exists()
    r = run_cli(
        tmp_path / "home",
        "tune-playbook",
        "--data",
        str(tmp_path / "nope"),
        "--out",
        str(tmp_path / "x.yaml"),
    )
    assert r.exit_code == 2 and "does not exist" in r.stderr
    r = run_cli(
        tmp_path / "home",
        "tune-playbook",
        *["--data", str(tmp_path), "--data", str(tmp_path), "--data", str(tmp_path)],
        *["--version", "1", "--version", "2", "--out", str(tmp_path / "x.yaml")],
    )
    assert r.exit_code == 2 and "--version was given 2 times for 3 --data folders" in r.stderr, r.stderr
    assert not (tmp_path / "x.yaml").exists()


def test_tune_playbook_refuses_a_broken_playbook_before_any_work(tmp_path):
    data = tmp_path / "data"
    (data / "truth").mkdir(parents=True)
    pd.DataFrame(
        {
            "rep_id": ["R1"],
            "period_start": [pd.Timestamp("2024-01-01")],
            "missed": [True],
            "dominant_cause": ["skill"],
        }
    ).to_parquet(data / "truth" / "rep_periods.parquet")
    bad = tmp_path / "bad.yaml"
    text = RULES.replace("suggest: [incentives]", "suggest: [free_lunch]")
    bad.write_text(text)
    line = next(i for i, ln in enumerate(text.splitlines(), start=1) if "free_lunch" in ln)
    r = run_cli(
        tmp_path / "home",
        "tune-playbook",
        "--data",
        str(data),
        "--playbook",
        str(bad),
        "--out",
        str(tmp_path / "x.yaml"),
    )
    # the file's line is named; no model was needed (this home has none) and nothing was written
    assert r.exit_code == 2 and f"line {line}:" in r.stderr and "free_lunch" in r.stderr, r.stderr
    assert not (tmp_path / "x.yaml").exists()
