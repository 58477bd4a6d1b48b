import json

import numpy as np
import pandas as pd
import pytest

from models.scoring import SCORE_COLUMNS, read_scores, write_scores
from repradar.errors import UserError

# a model's data windows as training records them in its spec's meta
WINDOWS = {
    "train_window": "2023-01-01..2024-06-30",
    "valid_window": "2024-07-01..2024-09-30",
    "test_window": "2024-10-01..2024-12-31",
}


def _scores():
    d = pd.Timestamp("2024-04-01")
    return pd.DataFrame(
        {
            "rep_id": pd.array(["a", "b"], dtype="string"),
            "manager_id": pd.array(["m", "m"], dtype="string"),
            "period_start": [d, d],
            "period_end": [pd.Timestamp("2024-06-30")] * 2,
            "as_of": [pd.Timestamp("2024-04-22")] * 2,
            "risk": [0.8, 0.1],
            "risk_band": ["high", "low"],
            "rank": np.array([1, 2], dtype="int64"),
            "attainment_to_date": [0.05, np.nan],
            "drivers": [
                [{"feature": "pipeline_coverage", "group": "pipeline", "value": 0.4, "contribution": 1.2}],
                [],
            ],
            "interventions": [[], []],
            "model_version": ["3", "3"],
            "raw_score": [1.5, -2.0],
        }
    )


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_roundtrip_and_identical_bytes(tmp_path, suffix):
    df = _scores()
    a, b = tmp_path / f"a{suffix}", tmp_path / f"b{suffix}"
    write_scores(df, a)
    write_scores(df, b)
    assert a.read_bytes() == b.read_bytes()
    back = read_scores(a)
    assert list(back.columns[: len(SCORE_COLUMNS)]) == SCORE_COLUMNS
    assert back["drivers"].iloc[0][0]["feature"] == "pipeline_coverage"
    assert back["interventions"].iloc[1] == []
    assert back["period_start"].iloc[0] == pd.Timestamp("2024-04-01")
    assert not list(tmp_path.glob(".*.tmp"))


def test_csv_holds_json_text_and_iso_dates(tmp_path):
    p = tmp_path / "s.csv"
    write_scores(_scores(), p)
    raw = pd.read_csv(p, dtype=str)
    assert raw["period_start"].iloc[0] == "2024-04-01"
    assert json.loads(raw["drivers"].iloc[0])[0]["contribution"] == 1.2
    assert raw["interventions"].iloc[0] == "[]"


def test_csv_numbers_are_written_short_and_read_back_exactly(tmp_path):
    """The CSV wrote 17 significant digits ("0.40178999999999998" for a risk of 0.40179), which a person
    opening it in a spreadsheet reads as noise; the shortest text that reads back as the same float does
    both jobs."""
    df = _scores().assign(risk=[0.40179, 0.1 + 0.2], raw_score=[-1.0 / 3.0, 123456789.123456789])
    p = tmp_path / "s.csv"
    write_scores(df, p)
    raw = pd.read_csv(p, dtype=str)
    assert raw["risk"].tolist() == ["0.40179", "0.30000000000000004"]
    assert raw["attainment_to_date"].iloc[0] == "0.05"
    back = read_scores(p)
    for c in ("risk", "raw_score", "attainment_to_date"):
        assert np.array_equal(back[c].to_numpy(), df[c].to_numpy(), equal_nan=True), c


def test_csv_text_never_starts_like_a_formula_and_reads_back(tmp_path):
    """Team, region and ids come from the customer's data: a spreadsheet must not run them as formulas."""
    df = _scores()
    df["team"] = ['=HYPERLINK("http://evil.example","x")', "'quoted"]
    df["region"] = ["@SUM(1)", "-East"]
    df["rep_id"] = pd.array(["+1", "b"], dtype="string")
    p = tmp_path / "s.csv"
    write_scores(df, p)
    raw = pd.read_csv(p, dtype=str, keep_default_na=False)
    cells = [v for c in ("team", "region", "rep_id", "manager_id", "risk_band") for v in raw[c]]
    assert not [v for v in cells if v.startswith(("=", "+", "-", "@"))]
    assert raw["team"].iloc[0] == '\'=HYPERLINK("http://evil.example","x")'
    back = read_scores(p)
    assert list(back["team"]) == list(df["team"]) and list(back["region"]) == ["@SUM(1)", "-East"]
    assert list(back["rep_id"]) == ["+1", "b"] and back["raw_score"].iloc[1] == -2.0


def test_unknown_suffix_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match=".parquet or .csv"):
        write_scores(_scores(), tmp_path / "s.xlsx")


def test_failed_write_leaves_previous_file_untouched(tmp_path):
    p = tmp_path / "s.parquet"
    write_scores(_scores(), p)
    before = p.read_bytes()
    bad = _scores()
    bad["drivers"] = ["not a list", []]
    with pytest.raises((TypeError, ValueError)):  # pyarrow cannot make a list of drivers from a string
        write_scores(bad, p)
    assert p.read_bytes() == before
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_two_writers_of_one_path_at_once_both_succeed_and_leave_one_whole_file(tmp_path, monkeypatch, suffix):
    """Two `repradar score --out` of one path at once: the second starts writing while the first is
    half-way. Both finish (before, one moved the other's half-written file into place and then failed
    with an internal error), and the file is one of them whole."""
    import pyarrow.parquet as pq

    p = tmp_path / f"s{suffix}"
    first, second = _scores(), _scores()
    second["model_version"] = ["4", "4"]
    real_table, real_csv = pq.write_table, pd.DataFrame.to_csv
    nested = []

    def then_the_other(write):
        def wrapper(*args, **kwargs):
            out = write(*args, **kwargs)
            if not nested:  # the first writer's file is written, not yet renamed: the second writes now
                nested.append(True)
                write_scores(second, p)
            return out

        return wrapper

    monkeypatch.setattr(pq, "write_table", then_the_other(real_table))
    monkeypatch.setattr(pd.DataFrame, "to_csv", then_the_other(real_csv))
    write_scores(first, p)
    assert nested and read_scores(p)["model_version"].tolist() == ["3", "3"]  # the last to finish
    assert [q.name for q in tmp_path.iterdir()] == [p.name]


def _texts(scores: pd.DataFrame, suffix: str) -> dict[str, list[str]]:
    """Every sentence a scores frame holds in one language, by where it is."""
    key = f"text_{suffix}"
    return {
        "drivers": [d[key] for ds in scores["drivers"] for d in ds],
        "driver_groups": [g[key] for gs in scores["driver_groups"] for g in gs],
        "reasons": [r[f"reason_{suffix}"] for rs in scores["intervention_reasons"] for r in rs],
        "recourse": [p[key] for p in scores["recourse"] if p],
    }


@pytest.fixture(scope="module")
def euro_scores(tmp_path_factory):
    """A tiny model trained on amounts in euros, scored with the same currency set."""
    from models.loading import LoadedModel
    from models.scoring import scores_from_features
    from repradar.settings import Settings
    from tests.models.tiny_model import shared_tiny_model, tiny_frame

    model = LoadedModel("m", "2", shared_tiny_model(currency="EUR"))
    settings = Settings(home=tmp_path_factory.mktemp("home"), currency="EUR")
    return scores_from_features(tiny_frame(300, seed=11), model, settings)


@pytest.mark.parametrize("suffix,amount", [("en", r"€\d[\d.,]*[kM]?\b"), ("zh", r"€\d[\d.]*[万亿]?")])
def test_a_model_trained_on_euros_writes_its_drivers_and_recourse_in_euros(euro_scores, suffix, amount):
    import re

    texts = _texts(euro_scores, suffix)
    # the amounts are there (deal sizes, pipeline, the recourse plans' new pipeline), all in euros
    for where in ("driver_groups", "recourse"):
        assert any(re.search(amount, t) for t in texts[where]), (where, texts[where][:5])
    assert any("€" in t for t in texts["drivers"])
    assert [t for ts in texts.values() for t in ts if "$" in t] == []
    assert set(euro_scores["currency"]) == {"EUR"}  # the dashboard and the digests write it likewise


def test_a_currency_setting_other_than_the_model_s_keeps_the_model_s_and_says_so(tmp_path):
    from types import SimpleNamespace

    from models.loading import LoadedModel
    from models.scoring import score_notes, scores_from_features
    from repradar.settings import Settings
    from tests.models.tiny_model import shared_tiny_model, tiny_frame

    model = LoadedModel("m", "2", shared_tiny_model(currency="EUR"))
    pounds = Settings(home=tmp_path, currency="GBP")
    scores = scores_from_features(tiny_frame(300, seed=11), model, pounds)
    texts = [t for ts in _texts(scores, "en").values() for t in ts]
    assert any("€" in t for t in texts) and not any("£" in t for t in texts)
    fs = SimpleNamespace(notes=[])
    (note,) = score_notes(fs, model, pounds)
    assert "trained on amounts in EUR, but REPRADAR_CURRENCY is GBP" in note
    assert "REPRADAR_CURRENCY=GBP" in note
    assert score_notes(fs, model, Settings(home=tmp_path, currency="EUR")) == []


def test_scoring_a_period_the_model_was_fitted_on_says_so():
    """HR typing 2023 for 2024 scored a period whose outcomes the model was fitted and calibrated on, and
    nothing said so: such risks are not a forecast (they look surer than they are)."""
    from types import SimpleNamespace

    import pandas as pd

    from models.scoring import fitted_period_note, score_notes

    meta = WINDOWS
    q2_2023 = [(pd.Timestamp("2023-04-01"), pd.Timestamp("2023-06-30"))]
    note = fitted_period_note(q2_2023, meta, "1")
    assert note == (
        "the period 2023-04-01..2023-06-30 is in the data model version 1 was fitted and calibrated on "
        "(2023-01-01..2024-09-30): the model knew how it ended, so these risks are not a forecast and look "
        "surer than they are; for an early warning, score a day of a later period"
    )
    q3_2024 = [(pd.Timestamp("2024-07-01"), pd.Timestamp("2024-09-30"))]  # the calibration fold counts too
    assert fitted_period_note(q3_2024, meta, "1") and "2024-07-01..2024-09-30" in fitted_period_note(
        q3_2024, meta, "1"
    )
    # the held-out period and later ones are out of sample; a model without the windows says nothing
    assert fitted_period_note([(pd.Timestamp("2024-10-01"), pd.Timestamp("2024-12-31"))], meta, "1") is None
    assert fitted_period_note([(pd.Timestamp("2025-01-01"), pd.Timestamp("2025-03-31"))], meta, "1") is None
    assert fitted_period_note(q2_2023, {}, "1") is None
    model = SimpleNamespace(
        version="1", pyfunc=SimpleNamespace(spec_=SimpleNamespace(meta=meta, currency="USD"))
    )
    frame = pd.DataFrame({"period_start": [q2_2023[0][0]] * 2, "period_end": [q2_2023[0][1]] * 2})
    assert score_notes(SimpleNamespace(notes=[], frame=frame), model) == [note]


def test_a_registered_versions_tags_give_the_same_fitted_periods_as_its_spec():
    """The service judges lists of versions it does not serve from their registry tags (data_window,
    test_window): every period gets the verdict the version's own spec gives; no tags, no verdict."""
    import pandas as pd

    from models.scoring import fitted_period_note, version_fitted_meta

    tags = {"data_window": "2023-01-01..2024-12-31", "test_window": WINDOWS["test_window"]}
    meta = version_fitted_meta(tags)
    assert meta == {"train_window": "2023-01-01..2024-09-30"}
    for start in pd.date_range("2022-10-01", "2025-04-01", freq="QS"):
        period = [(start, start + pd.offsets.QuarterEnd(0))]
        assert fitted_period_note(period, meta, "3") == fitted_period_note(period, WINDOWS, "3"), start
    assert version_fitted_meta({}) == {} and version_fitted_meta({"data_window": tags["data_window"]}) == {}
    assert version_fitted_meta({**tags, "test_window": "soon..later"}) == {}


def test_scoring_a_period_before_the_models_training_data_says_so():
    """Scoring the Maven export (2017) in the demo's home, whose champion learnt from 2023-2024, gave risks
    from the simulated organisation's model and no word about it: a period that ended before the model's
    data begins is named, with what to check."""
    from types import SimpleNamespace

    import pandas as pd

    from models.scoring import earlier_period_note, score_notes

    meta = WINDOWS
    q4_2017 = [(pd.Timestamp("2017-10-01"), pd.Timestamp("2017-12-31"))]
    note = earlier_period_note(q4_2017, meta, "1")
    assert note == (
        "the period 2017-10-01..2017-12-31 ended before the data model version 1 was trained on begins "
        "(2023-01-01..2024-12-31): the model learnt from later years, perhaps of another organisation; if "
        "this data has a model of its own, set REPRADAR_HOME to the home it was trained in (`repradar models` "
        "lists each version's data window)"
    )
    # a period the model's data covers, or a later one, says nothing; nor does a model without windows
    assert earlier_period_note([(pd.Timestamp("2022-10-01"), pd.Timestamp("2023-01-01"))], meta, "1") is None
    assert earlier_period_note([(pd.Timestamp("2025-01-01"), pd.Timestamp("2025-03-31"))], meta, "1") is None
    assert earlier_period_note(q4_2017, {}, "1") is None
    model = SimpleNamespace(
        version="1", pyfunc=SimpleNamespace(spec_=SimpleNamespace(meta=meta, currency="USD"))
    )
    frame = pd.DataFrame({"period_start": [q4_2017[0][0]] * 2, "period_end": [q4_2017[0][1]] * 2})
    assert score_notes(SimpleNamespace(notes=[], frame=frame), model) == [note]


HR_PLAYBOOK = """\
version: 1
rules:
  - name: low_pulse
    when: "pulse_mean_91d < peer.pulse_mean_91d or team.pulse_mean_91d < 5"
    suggest: wellbeing_support
    reason: {en: "Pulse {pulse_mean_91d}", zh: "情绪{pulse_mean_91d}"}
  - name: no_pulse_yet
    when: "missing(pulse_mean_91d)"
    suggest: regular_checkins
    reason: {en: "No pulse answers", zh: "没有情绪调查"}
  - name: quota
    when: "quota_vs_segment >= 1.3 or pulse_mean_91d < 3"
    suggest: smart_goals
    reason: {en: "Quota {quota_vs_segment}", zh: "指标{quota_vs_segment}"}
"""


def test_playbook_rules_the_data_cannot_fire_are_named_in_the_score_notes(tmp_path):
    """A rule reading only figures no scored rep has (no pulse survey in the export) suggested nothing
    and nobody was told: the notes name it, its line and the figures; rules the data can fire are not."""
    from types import SimpleNamespace

    import numpy as np

    from models.loading import LoadedModel
    from models.scoring import score_notes
    from repradar.settings import Settings
    from tests.models.tiny_model import shared_tiny_model, tiny_frame

    path = tmp_path / "hr.yaml"
    path.write_text(HR_PLAYBOOK, encoding="utf-8")
    settings = Settings(home=tmp_path, playbook=path)
    model = LoadedModel("m", "1", shared_tiny_model())
    frame = tiny_frame(40, seed=2).assign(pulse_mean_91d=np.nan)
    (note,) = score_notes(SimpleNamespace(notes=[], frame=frame), model, settings)
    assert f"playbook {path}: rule(s) low_pulse (line 4: pulse_mean_91d) cannot fire on this data" in note
    assert "no_pulse_yet" not in note and "quota" not in note
    frame.loc[0, "pulse_mean_91d"] = 6.0  # one rep with a pulse: the rule can fire
    assert score_notes(SimpleNamespace(notes=[], frame=frame), model, settings) == []


def test_a_model_trained_on_other_feature_definitions_says_so_once_and_an_unrecorded_one_does_not():
    """An upgrade kept serving a champion trained by an older release on features the new code computes
    differently, without a word: its scores (and a batch job's, which stores these notes) say to retrain.
    A model trained before the fingerprint was recorded is not alarmed about (unknown)."""
    from types import SimpleNamespace

    from features.registry import definitions_fingerprint
    from models.i18n import Message
    from models.scoring import definitions_note, score_notes

    def model(**meta):
        return SimpleNamespace(
            version="1", pyfunc=SimpleNamespace(spec_=SimpleNamespace(meta=meta, currency="USD"))
        )

    fs = SimpleNamespace(notes=[], frame=None)
    (note,) = score_notes(fs, model(features_sha256="0123456789" * 6 + "abcd"))
    assert isinstance(note, Message)  # the report shows it in its own language
    assert note.startswith("model version 1 was trained on other feature definitions than this release")
    assert f"(features 01234567, now {definitions_fingerprint()[:8]})" in note
    assert "Retrain and promote; `repradar models` shows which versions were trained on the current" in note
    assert "模型版本 1" in note.in_lang("zh-CN")
    assert score_notes(fs, model(features_sha256=definitions_fingerprint())) == []
    assert score_notes(fs, model()) == [] and definitions_note(model()) is None
