"""The registry: one entry per feature column, valid groups and units, attributes never features."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from features import registry
from features.build import KEY_COLUMNS, LABEL_COLUMNS, META_COLUMNS, PEER_PREFIX, compute_features
from features.engine import sql_text
from tests.conftest import make_tables

DOC = Path(__file__).resolve().parents[2] / "docs" / "features.md"


@pytest.fixture(scope="module")
def feature_set():
    tables = make_tables(n_reps=4, n_periods=2, seed=1)
    snaps = pd.DataFrame(
        [
            dict(rep_id=r, period_start="2024-04-01", period_end="2024-06-30", as_of="2024-05-15")
            for r in tables.reps["rep_id"]
        ]
    )
    return compute_features(tables, snaps)


def test_names_are_unique_and_groups_units_exist():
    names = registry.feature_names()
    assert len(names) == len(set(names))
    for f in registry.FEATURES:
        assert f.group in registry.GROUPS, f.name
        assert f.unit in registry.UNITS, f.name
        assert f.monotone in (-1, 0, 1), f.name
        assert f.description and "\n" not in f.description, f.name
        assert re.fullmatch(r"[a-z][a-z0-9_]*", f.name), f.name
        if not registry.GROUPS[f.group].actionable:
            assert not f.actionable, f"{f.name}: actionable in a context-only group"


def test_risk_directions_that_are_not_in_doubt():
    for name in ("attainment_to_date", "open_pipeline_in_period", "pipeline_coverage", "open_pipeline_total"):
        assert registry.get(name).monotone == -1


def test_registry_covers_every_feature_column_exactly_once(feature_set):
    frame = feature_set.frame
    feature_cols = [
        c
        for c in frame.columns
        if c not in KEY_COLUMNS + META_COLUMNS + LABEL_COLUMNS and not c.startswith(PEER_PREFIX)
    ]
    assert feature_cols == feature_set.feature_names
    assert feature_set.feature_names[: len(registry.FEATURES)] == registry.feature_names()
    for name in feature_set.feature_names:
        f = registry.get(name)
        assert f.group in registry.GROUPS
    extra = feature_set.feature_names[len(registry.FEATURES) :]
    assert extra == ["eng__focus_score_mean_28d"]
    assert registry.get(extra[0]).group == "other_engagement" and not registry.get(extra[0]).actionable


def test_peer_columns_match_the_registry(feature_set):
    peers = [c for c in feature_set.frame.columns if c.startswith(PEER_PREFIX)]
    assert peers == [PEER_PREFIX + n for n in registry.peer_feature_names()]
    assert feature_set.peer_columns == peers


def test_attributes_never_appear(feature_set):
    for col in ("gender", "age_band", "name"):
        assert col not in feature_set.feature_names
        assert col not in feature_set.frame.columns
        assert not any(col in n for n in feature_set.feature_names)


def test_get_unknown_name_raises():
    with pytest.raises(KeyError):
        registry.get("no_such_feature")
    with pytest.raises(KeyError):
        registry.get("eng___mean_28d")


def test_registry_frame_and_markdown():
    df = registry.registry_frame()
    assert df["name"].tolist() == registry.feature_names()
    assert {"name", "group", "unit", "actionable", "monotone", "peer", "description"} <= set(df.columns)
    md = registry.registry_markdown()
    for name in registry.feature_names():
        assert f"`{name}`" in md


def test_each_feature_s_good_side_agrees_with_its_monotone_constraint():
    by_name = {f.name: f for f in registry.FEATURES}
    assert registry.LOWER_IS_BETTER | registry.NO_BETTER_SIDE <= set(by_name)  # no typo hides a feature
    for f in registry.FEATURES:
        assert f.better in ("higher", "lower", None)
        if f.monotone:  # -1: more never raises risk, so more is the good side
            assert f.better == {-1: "higher", 1: "lower"}[f.monotone], f.name
    assert by_name["after_hours_mean_28d"].better == "lower" and by_name["tenure_days"].better is None


def test_a_feature_in_an_unknown_group_or_unit_is_refused_with_the_known_ones():
    # a misspelt group was a bare KeyError: 'activty' at import; a misspelt unit passed until a test
    with pytest.raises(ValueError, match="unknown group 'activty'.*groups: attainment, pipeline"):
        registry._f("meetings_per_week_28d", "activty", "per_week", "meetings per week, last 28 days")
    with pytest.raises(ValueError, match="unit 'per_weak'.*units: ratio, share"):
        registry._f("meetings_per_week_28d", "activity", "per_weak", "meetings per week, last 28 days")


def test_a_feature_without_a_declared_good_side_is_refused():
    # a new feature used to read "higher is better" by default: a rep with more days since their last
    # won deal than peers was phrased as ahead of them
    sides = (registry.HIGHER_IS_BETTER, registry.LOWER_IS_BETTER, registry.NO_BETTER_SIDE)
    assert sum(map(len, sides)) == len(set().union(*sides)) == len(registry.FEATURES)  # each in one set
    with pytest.raises(ValueError, match="HIGHER_IS_BETTER, LOWER_IS_BETTER or NO_BETTER_SIDE"):
        registry._f("days_since_last_win", "conversion", "days", "days since the rep's last won deal")


def test_docs_list_the_generated_registry():
    assert registry.registry_markdown() in DOC.read_text(), (
        "docs/features.md is out of date: paste registry_markdown() into it"
    )


def test_sql_outputs_the_registry_features():
    text = sql_text("snapshot_features") + sql_text("engagement_known")
    for name in registry.feature_names():
        assert re.search(rf"\bAS {name}\b", text), f"no SQL column for {name}"
    peers = re.findall(r"AS peer__(\w+)", sql_text("feature_table"))
    assert peers == registry.peer_feature_names()


def test_the_definitions_fingerprint_moves_with_the_values_not_with_comments(tmp_path, monkeypatch):
    """A champion trained by an older release kept being served on features computed by newer code, and
    nothing said so: the fingerprint recorded with a model must change when a definition can change its
    values (SQL, the registry's model-facing facts, FEATURES_REVISION), not on a reworded comment."""
    import shutil

    from features.engine import SQL_DIR

    here = registry.definitions_fingerprint()
    assert re.fullmatch(r"[0-9a-f]{64}", here) and registry.definitions_fingerprint() == here
    sql = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql)
    assert registry.definitions_fingerprint(sql) == here
    states = sql / "deal_states.sql"
    text = states.read_text()
    # comments and layout only: a reworded comment, a new one, lines re-indented
    cosmetic = "-- reworded /* not code */\n" + text.replace("\n    ", "\n\t  ").replace(
        "-- deal_states:", "/* block */ -- deal_states, reworded:"
    )
    states.write_text(cosmetic)
    assert registry.definitions_fingerprint(sql) == here
    # an expression that changes values
    old = sql / "activity_windows.sql"
    body = old.read_text()
    assert "27 PRECEDING" in body
    old.write_text(body.replace("27 PRECEDING", "28 PRECEDING", 1))
    moved = registry.definitions_fingerprint(sql)
    assert moved != here
    old.write_text(body)  # put back: the same fingerprint again
    assert registry.definitions_fingerprint(sql) == here
    # Python-side staging changed: the developer bumps the revision
    monkeypatch.setattr(registry, "FEATURES_REVISION", registry.FEATURES_REVISION + 1)
    assert registry.definitions_fingerprint(sql) not in (here, moved)
    monkeypatch.undo()
    # a model-facing fact of the registry (a monotone constraint)
    import dataclasses

    first = registry.FEATURES[0]
    flipped = [dataclasses.replace(first, monotone=-first.monotone or 1), *registry.FEATURES[1:]]
    monkeypatch.setattr(registry, "FEATURES", flipped)
    assert registry.definitions_fingerprint(sql) != here


def test_sql_tokens_keep_string_literals_whole():
    assert registry._sql_tokens("SELECT 'a -- b'  AS x -- note\n FROM t /* c */") == [
        "SELECT",
        "'a -- b'",
        "AS",
        "x",
        "FROM",
        "t",
    ]
    assert registry._sql_tokens("WHERE s = 'a  b'") != registry._sql_tokens("WHERE s = 'a b'")


def test_the_staging_code_is_the_code_its_revision_was_decided_for():
    """Nothing made a developer who changed Python-side staging (a re-hire's hire date, handed-over deals)
    think of FEATURES_REVISION, so older models were served new values without a word. A change to that
    code now fails here until its author records the new digest, deciding the revision with it."""
    now = registry.staging_digest()
    assert now == registry.STAGING_DIGEST, (
        f"the Python code that stages feature values changed ({', '.join(registry.STAGING_SOURCES)} in "
        "features/): if it can change any feature's value, add 1 to FEATURES_REVISION in features/registry.py; "
        f'either way set STAGING_DIGEST = "{now}" there (docs/features.md, "The revision")'
    )


def test_the_staging_digest_ignores_comments_layout_and_docstrings_not_code(tmp_path):
    import shutil

    here = Path(registry.__file__).parent
    for name in registry.STAGING_SOURCES:
        shutil.copy(here / name, tmp_path / name)
    base = registry.staging_digest(tmp_path)
    assert base == registry.staging_digest()
    stages = tmp_path / "stages.py"
    text = stages.read_text()
    first = text.index("\ndef ")
    stages.write_text(
        "# a new comment\n"
        + text[:first]
        + "\n\n# another\n"
        + text[first:].replace("):\n", "):  # why\n", 1).replace('"""', '"""Reworded. ', 1)
    )
    assert registry.staging_digest(tmp_path) == base
    stages.write_text(text + "\n\nEXTRA_STAGE = 'won'\n")
    assert registry.staging_digest(tmp_path) != base
