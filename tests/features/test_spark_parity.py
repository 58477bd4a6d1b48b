"""On Spark, what pandas and DuckDB give: the contract read and checked, the training set, the scores.

Reading and checking: the bad folder breaks every kind of rule `features.contract` declares (types,
nulls, blanks, uniqueness, bounds, catalog ids, references, multi-column rules, overlapping
periods), plus missing columns and tables, extra columns and files, and timestamp and number
spellings at the edge of what the contract reads. The Spark validator is generated from the same
specs; these tests hold it to the pandas validator's report, failure for failure.

Building and scoring run over the shared small trained organisation, through the command line: the
tables are read, checked and staged on Spark too. The training set and the scores that run returns
are also compared in memory, so the slow Spark builds (and the start of Spark's Python workers,
which score) are done once.

One module, so one local Spark session (local[2], tests/features/conftest.py) for all of it, and
since `--dist loadfile` hands out files with more tests first, the suite's longest file starts early.
"""

from __future__ import annotations

import math
import textwrap

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.spark

BAD = {
    "reps.csv": """\
        rep_id,manager_id,hire_date,end_date,segment,gender
        R1,M1,2024-01-01,,SMB,F
        R2,M1,2024-13-01,,SMB,M
        R2,  ,2024-02-01,2023-01-01,Mid-Market,F
        ,M2,2024-01-01,,SMB,F
        R5,M2,2024-01-01T10:00,,SMB,X
        """,
    "quotas.csv": """\
        rep_id,period_start,period_end,quota_amount
        R1,2024-01-01,2024-03-31,1000
        R1,2024-03-01,2024-06-30,1000
        R1,2024-07-01,2024-06-01,abc
        RX,2024-01-01,2024-03-31,0
        R5,2024-01-01,2024-03-31,-5
        R5,2024-04-01,2024-06-30, 2e3 
        """,
    "opportunities.csv": """\
        opportunity_id,rep_id,created_date,close_date,stage,amount,is_closed,is_won,note
        O1,R1,2024-01-05,2024-02-01,Closed Won,100,true,true,x
        O2,R1,2024-01-05,2024-02-01,Proposal,-1,false,true,x
        O3,R9,2024-01-05,2024-02-01,Proposal,1e3,maybe,false,x
        O3,R1,2024-01-05,2024-02-01,Proposal, 12 ,YES,0,x
        O4,R1,2024/01/05,2024-02-01,Proposal,nan,no,no,x
        """,
    "activities.csv": """\
        activity_id,rep_id,occurred_at,type,opportunity_id,duration_minutes
        A1,R1,2024-01-05T10:00:00+02:00,call,O1,5
        A2,R1,2024-01-05 10:00:00,email,,
        A3,R1,2024-01-05T10:00:00Z,meeting,,-3
        A4,R1,2024-01-05T10:00+0200,demo,,1
        A5,R1,"2024-01-05T10:00:00,5Z",call,,1
        A6,R1,2024-01-05T10:00:00z,call,,1
        A7,R1,2024-01-05T10:00:00+02,call,,1
        A8,R1,05/01/2024,call,,1
        A9,R1,2024-01-05T25:00:00,call,,1
        A10,R1,2024-01-05 10:00:00 +02:00,call,,inf
        A11,RQ,2024-01-05,Call,,1.5
        """,
    "engagement.csv": """\
        rep_id,date,metric,value
        R1,2024-01-05,pulse_score,11
        R1,2024-01-05,csat,0
        R1,2024-01-05,Pulse_Score,3
        R1,2024-01-05,my_metric,-4
        R1,2024-01-05,pto_days,-1
        R1,2024-01-05,,2
        """,
    "interventions.csv": """\
        rep_id,intervention,started_on,ended_on
        R1,skills_training,2024-01-10,2024-01-01
        R1,yoga,2024-01-10,
        R1,mentoring,2024-01-10,2024-03-01
        """,
    "extra.json": "{}\n",
}


# A required table misnamed, a header in semicolons, a repeated column, an empty optional table,
# optional tables whose files are blank (0 bytes; a byte-order mark and white space).
THIN = {
    "Reps.csv": "rep_id,manager_id,hire_date\nR1,M1,2024-01-01\n",
    "quotas.csv": "rep_id;period_start;period_end;quota_amount\nR1;2024-01-01;2024-03-31;5\n",
    "opportunities.csv": "opportunity_id,rep_id,created_date,created_date\nO1,R1,2024-01-01,2024-01-01\n",
    "activities.csv": "activity_id,rep_id,occurred_at,type\n",
    "engagement.csv": "",
    "interventions.csv": "\ufeff\n  \n",
}


def _write(folder, files: dict[str, str]):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text))
    return folder


def _verdicts(report) -> tuple[list[str], list[str], dict]:
    return sorted(map(str, report.failures)), sorted(report.warnings), dict(report.tables)


def test_missing_source_tables_and_columns_read_the_same(spark, tmp_path):
    from features.spark_io import validate_source
    from features.validation import validate_folder

    missing = tmp_path / "nowhere"
    assert _verdicts(validate_source(spark, str(missing))) == _verdicts(validate_folder(missing))
    folder = _write(tmp_path / "thin", THIN)
    p, s = validate_folder(folder), validate_source(spark, str(folder))
    assert not p.ok and _verdicts(s) == _verdicts(p)
    assert any(
        w.startswith("engagement: engagement.csv is empty (no header, no rows), read as absent")
        for w in p.warnings
    )


# Valid data the warnings beyond the contract read: deals created before their owner's hire_date
# (O2, O3) and won after their end_date (O4, not the lost O5); stage names no word reads ('Angebot',
# 'Verhandlung'), 'Final Decision', which the history places after the proposal, and stages only
# closed deals carry: 'Zusage' reads as closed, 'Auftrag' not (the history moves on from it).
OWNERS_AND_STAGES = {
    "reps.csv": """\
        rep_id,manager_id,hire_date,end_date
        R1,M1,2024-01-01,
        R2,M1,2024-02-01,2024-03-01
        """,
    "quotas.csv": """\
        rep_id,period_start,period_end,quota_amount
        R1,2024-01-01,2024-03-31,1000
        R2,2024-01-01,2024-03-31,1000
        """,
    "opportunities.csv": """\
        opportunity_id,rep_id,created_date,close_date,stage,amount,is_closed,is_won
        O1,R1,2024-01-05,2024-02-01,Closed Won,100,true,true
        O2,R1,2023-12-01,2024-02-01,Angebot,100,false,false
        O3,R2,2024-01-15,2024-02-20,Verhandlung,100,false,false
        O4,R2,2024-02-05,2024-03-10,Won,100,true,true
        O5,R2,2024-02-05,2024-03-10,Lost,100,true,false
        O6,R1,2024-01-05,2024-03-01,Final Decision,100,false,false
        O7,R1,2024-01-05,2024-02-01,Zusage,100,true,false
        O8,R1,2024-01-05,2024-02-01,Auftrag,100,true,true
        """,
    "opportunity_history.csv": """\
        opportunity_id,changed_at,stage,amount,close_date
        O2,2024-01-02T00:00:00Z,Angebot,100,2024-02-01
        O3,2024-01-16T00:00:00Z,Angebot,100,2024-02-20
        O3,2024-01-20T00:00:00Z,Verhandlung,100,2024-02-20
        O6,2024-01-06T00:00:00Z,Proposal,100,2024-03-01
        O6,2024-01-07T00:00:00Z,Final Decision,100,2024-03-01
        O8,2024-01-06T00:00:00Z,Auftrag,100,2024-02-01
        O8,2024-01-07T00:00:00Z,Verhandlung,100,2024-02-01
        """,
}


def test_deal_owner_and_stage_name_warnings_read_the_same(spark, tmp_path):
    """Reassigned deals and unrecognised stage names get the pandas validator's warnings, word for word."""
    from features.spark_io import validate_source
    from features.validation import validate_folder

    folder = _write(tmp_path / "owners", OWNERS_AND_STAGES)
    p, s = validate_folder(folder), validate_source(spark, str(folder))
    assert p.ok, p.render()  # premise: only warnings
    assert any("created on or after the owner's hire_date" in w and "2 rows" in w for w in p.warnings)
    assert any("won on or before the owner's end_date" in w and "1 row," in w for w in p.warnings)
    assert any("'Final Decision' (1 row)" in w and "'Auftrag' (1 row)" in w for w in p.warnings)
    assert not any("Zusage" in w for w in p.warnings)
    assert s.warnings == p.warnings
    assert s.render() == p.render()


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A small simulated organisation's folder, and a CSV copy of it: every table, nulls included, at
    about a seventh of the trained organisation's rows (the comparisons hold at any size; no model)."""
    from features.io import load_folder
    from simulator.simulate import SimConfig, simulate

    data = tmp_path_factory.mktemp("good-org") / "data"
    simulate(SimConfig(n_reps=12, n_periods=3, seed=1, oracle_sims=0), data)
    tables = load_folder(data)
    csv = tmp_path_factory.mktemp("csv-org")
    for name, frame in tables.items():
        if frame is not None:
            frame.to_csv(csv / f"{name}.csv", index=False)
    return data, csv, tables


def _spark_frame_as_pandas(frame) -> pd.DataFrame:
    from features.spark_io import POS

    return frame.orderBy(POS).drop(POS).toPandas()


@pytest.mark.parametrize("fmt", ["parquet", "csv", "catalog"])
def test_a_good_source_loads_the_same_tables_on_spark(spark, good, fmt):
    """Small tables equal load_folder's frames (dtypes too); large ones hold the same typed values."""
    from features.io import load_folder
    from features.spark_io import load_spark_tables

    data, csv, _ = good
    folder = csv if fmt == "csv" else data
    expected = load_folder(folder)
    if fmt == "catalog":
        # Any catalog database works the same; global temp views need no metastore in a test.
        for name, _ in expected.items():
            path = folder / f"{name}.parquet"
            if path.exists():
                spark.read.parquet(str(path)).createOrReplaceGlobalTempView(name)
        source = "catalog:global_temp"
    else:
        source = str(folder)
    # The catalog is read with the checks off: the same typing, without a third validation run.
    got = load_spark_tables(spark, source, validate=fmt != "catalog")
    try:
        for name in ("reps", "quotas", "interventions"):
            pd.testing.assert_frame_equal(
                getattr(got, name), getattr(expected, name), check_exact=True, obj=name
            )
        for name in ("opportunities", "opportunity_history", "activities", "engagement"):
            want = getattr(expected, name)
            have = _spark_frame_as_pandas(getattr(got, name))
            assert list(have.columns) == list(want.columns), name
            for c in want.columns:
                x, y = want[c], have[c]
                if pd.api.types.is_datetime64_any_dtype(x):
                    tz = getattr(x.dt, "tz", None)
                    y = pd.to_datetime(y).dt.tz_localize(tz) if tz is not None else pd.to_datetime(y)
                    assert (x.isna() == y.isna()).all() and (
                        x.dropna().to_numpy() == y.dropna().to_numpy()
                    ).all(), c
                else:
                    assert (
                        x.astype("string").fillna("<NA>").tolist()
                        == y.astype("string").fillna("<NA>").tolist()
                    ), c
        assert got.latest_data_day() is not None
        from features.staging import latest_data_day

        assert latest_data_day(got) == latest_data_day(expected)
    finally:
        if fmt == "catalog":
            for name, _ in expected.items():
                spark.catalog.dropGlobalTempView(name)


def test_the_cli_checks_a_source_on_spark_and_refuses_uris_without_it(spark, tmp_path, monkeypatch):
    """The bad folder gets the same report on Spark as from pandas, failure for failure: the report
    `validate --engine spark` printed is recorded on the way (one Spark validation of it, not two)."""
    from typer.testing import CliRunner

    import features.spark_io
    from features.validation import validate_folder
    from repradar.cli import app

    reports = []
    validate_source = features.spark_io.validate_source

    def recorded(spark, source):
        reports.append(validate_source(spark, source))
        return reports[-1]

    runner = CliRunner()
    bad = _write(tmp_path / "bad", BAD)
    with monkeypatch.context() as m:
        m.setattr(features.spark_io, "validate_source", recorded)
        r = runner.invoke(app, ["validate", "--data", str(bad), "--engine", "spark"])
    assert r.exit_code == 2
    assert "quotas.period_start: rule 'periods of one rep_id do not overlap' broken by 1 row" in r.output
    assert "activities.occurred_at: rule 'parses as timestamp (ISO 8601)' broken by 4 rows" in r.output
    [spark_report] = reports
    pandas_report = validate_folder(bad)
    failures, warnings, tables = _verdicts(pandas_report)
    assert len(failures) >= 25  # premise: the folder breaks many rules
    rules = {f.rule for f in pandas_report.failures}
    assert {
        "unique",
        "not null",
        "non-empty",
        "exists in reps.rep_id",
        "is_won implies is_closed",
        "periods of one rep_id do not overlap",
        "is a catalog id",
        "pulse_score value in [0, 10]",
        "parses as timestamp (ISO 8601)",
    } <= rules
    assert _verdicts(spark_report) == (failures, warnings, tables)
    # Same rows, same values as written in the file, failure for failure.
    key = {(f.table, f.column, f.rule): f for f in pandas_report.failures}
    for f in spark_report.failures:
        p = key[(f.table, f.column, f.rule)]
        assert (f.n_rows, f.examples, f.detail) == (p.n_rows, p.examples, p.detail), str(f)
    assert spark_report.render() == pandas_report.render()

    uri = _write(tmp_path / "thin", THIN).as_uri()
    r = runner.invoke(app, ["validate", "--data", uri])
    assert r.exit_code == 2 and "URIs and catalog databases are read with --engine spark" in r.output
    r = runner.invoke(app, ["validate", "--data", uri, "--engine", "spark"])
    assert (
        r.exit_code == 2
        and "reps: rule 'required table present' broken: no reps.csv or reps.parquet" in r.output
    )
    out = ["--out", f"{uri}/out"]
    r = runner.invoke(app, ["build-training-set", "--data", str(bad), *out, "--engine", "duckdb"])
    assert r.exit_code == 2 and "URIs are written with --engine spark" in r.output
    r = runner.invoke(
        app, ["build-training-set", "--data", uri, "--out", str(tmp_path / "t.parquet"), "--engine", "spark"]
    )
    assert r.exit_code == 2 and "breaks the data contract" in r.output
    assert not (tmp_path / "t.parquet").exists()


SPELLINGS = {
    "timestamp": [
        "2024-01-05T10:00:00+02:00",
        "2024-01-05 10:00:00",
        "2024-01-05T10:00:00Z",
        "2024-01-05T10:00+0200",
        "2024-01-05T10+02:00",
        "2024-01-05T10:00Z",
        "2024-01-05 10:00:00 +02:00",
        "2024-01-05T10:00:00 Z",
        "2024-01-05T10:00:00.123456789-05:30",
        "2024-01-05T10:00:00.5",
        " 2024-01-05 ",
        "2024-01-05T10:00:00,5Z",
        "2024-01-05T10:00:00z",
        "2024-01-05Z",
        "2024-01-05T25:00:00",
        "2024-02-30T10:00:00",
        "05/01/2024",
        "",
        None,
    ],
    "date": [
        "2024-01-05",
        " 2024-01-05",
        "2024-02-29",
        "2023-02-29",
        "2024-1-5",
        "2024-01-05T00:00",
        "x",
        None,
    ],
    "number": [
        "12",
        " 12 ",
        "-1.5",
        "1e3",
        "1.5E-2",
        ".5",
        "5.",
        "+3",
        "1,000",
        "nan",
        "inf",
        "0x10",
        "1.5d",
        "",
        None,
    ],
    "boolean": ["true", "FALSE", " yes ", "No", "1", "0", "t", "2", "", None],
}


@pytest.mark.parametrize("kind", sorted(SPELLINGS))
def test_every_spelling_reads_the_same_on_both_engines(spark, kind):
    """The value each engine reads from a cell, and whether it refuses it, agree cell by cell."""
    from pyspark.sql import functions as F

    from features.contract import Column
    from features.spark_io import _parse
    from features.validation import _PARSERS

    cells = SPELLINGS[kind]
    want, want_bad = _PARSERS[kind](pd.Series(cells, dtype="str"))
    frame = spark.createDataFrame([(i, v) for i, v in enumerate(cells)], "i int, v string")
    value, bad = _parse(Column("v", kind), F.col("v"), "string")
    rows = frame.select("i", value.alias("value"), bad.alias("bad")).orderBy("i").collect()
    got = pd.Series([r["value"] for r in rows])
    assert [bool(r["bad"]) for r in rows] == want_bad.fillna(False).astype(bool).tolist()
    if kind == "timestamp":
        got = pd.to_datetime(got).dt.tz_localize("UTC")  # Spark returns UTC wall times (session zone)
    elif kind == "date":
        got = pd.to_datetime(got)
    for cell, x, y in zip(cells, want.tolist(), got.tolist(), strict=True):
        assert (pd.isna(x) and pd.isna(y)) or x == y, f"{kind} {cell!r}: pandas {x!r}, Spark {y!r}"


TOL = 1e-9


@pytest.fixture(scope="module")
def org(trained):
    from features.io import load_folder

    data, home, as_of = trained
    return load_folder(data), home, as_of


def assert_frames_match(a: pd.DataFrame, b: pd.DataFrame, tol: float = TOL) -> None:
    assert list(a.columns) == list(b.columns)
    assert len(a) == len(b)
    for c in a.columns:
        x, y = a[c], b[c]
        if pd.api.types.is_float_dtype(x):
            np.testing.assert_allclose(
                x.to_numpy(float), y.to_numpy(float), rtol=0, atol=tol, equal_nan=True, err_msg=c
            )
        else:
            assert x.astype("string").fillna("<NA>").tolist() == y.astype("string").fillna("<NA>").tolist(), c


def assert_nested_equal(a, b, where: str, tol: float = TOL) -> None:
    """Nested values (lists, dicts, numbers, text) equal, numbers within `tol`."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert set(a) == set(b), f"{where}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            assert_nested_equal(a[k], b[k], f"{where}.{k}", tol)
    elif isinstance(a, list | tuple | np.ndarray) and isinstance(b, list | tuple | np.ndarray):
        assert len(a) == len(b), f"{where}: {len(a)} items != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_nested_equal(x, y, f"{where}[{i}]", tol)
    elif isinstance(a, float | np.floating) or isinstance(b, float | np.floating):
        if a is None or b is None:
            assert a is None and b is None, f"{where}: {a!r} != {b!r}"
        elif math.isnan(float(a)) or math.isnan(float(b)):
            assert math.isnan(float(a)) and math.isnan(float(b)), f"{where}: {a!r} != {b!r}"
        else:
            assert abs(float(a) - float(b)) <= tol, f"{where}: {a!r} != {b!r}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def assert_scores_match(a: pd.DataFrame, b: pd.DataFrame, where: str) -> None:
    """Same columns; flat ones within TOL; nested ones (drivers, interventions ...) equal item by item."""
    from models.scoring import NESTED_COLUMNS

    assert list(a.columns) == list(b.columns)
    flat = [c for c in a.columns if c not in NESTED_COLUMNS]
    assert_frames_match(a[flat], b[flat])
    for c in NESTED_COLUMNS:
        for i, (x, y) in enumerate(zip(a[c], b[c], strict=True)):
            assert_nested_equal(x, y, f"{where} {c}[{a['rep_id'].iat[i]}]")


def test_reps_without_a_segment_column_stage_text_that_spark_can_read(spark, tiny_tables):
    """An export whose `reps` has no `segment` (the Maven CRM one) stages an all-null segment. On Spark
    it must be text, as the feature SQL's `COALESCE(segment, '')` reads it; typed as a number, every
    `--engine spark` build and scoring of such an export stopped with an internal error (exit 1)."""
    import dataclasses

    from features.spark_engine import SparkEngine
    from features.staging import stage

    tables = dataclasses.replace(tiny_tables, reps=tiny_tables.reps.drop(columns=["segment"]))
    engine = SparkEngine(spark)
    engine.register({"stg_reps": stage(tables).frames["stg_reps"]})
    try:
        rows = spark.sql("SELECT DISTINCT COALESCE(segment, '') AS segment_key FROM stg_reps").collect()
    finally:
        engine.release()
    assert [r.segment_key for r in rows] == [""]


def test_spark_scoring_refuses_a_day_outside_the_quota_periods(spark, org):
    from models.loading import load_model
    from models.spark_scoring import score_tables_spark
    from repradar.errors import UserError
    from repradar.settings import Settings

    tables, home, _ = org
    settings = Settings(home=home)
    with pytest.raises(UserError, match="as-of date 1990-01-01 is outside every quota period"):
        score_tables_spark(tables, "1990-01-01", load_model(settings), settings, spark)


def _cli(home, *args):
    from typer.testing import CliRunner

    from repradar.cli import app
    from repradar.settings import get_settings

    get_settings.cache_clear()
    try:
        return CliRunner().invoke(app, list(args), env={"REPRADAR_HOME": str(home)})
    finally:
        get_settings.cache_clear()


def test_cli_engine_spark_writes_the_same_files_and_scores(spark, trained, tmp_path, monkeypatch):
    """`--engine spark` on build-training-set and score (the active session is picked up; the
    folder is read, checked and staged on Spark) writes what the default engine writes; here to a
    URI, where Spark writes Parquet datasets. What both builds and both scorings returned is recorded
    on the way and must be equal in memory too: the training set (every step on Spark, same feature
    names, same labels) and the scores (every number within TOL, nested columns item by item, the
    same notes), and the scores frames written by `write_scores` read back equal. One Spark scoring
    proves both: a second would cost a whole feature build and the Python workers' start."""
    import features.build
    import models.scoring
    import models.spark_scoring
    from models.scoring import read_scores, write_scores

    data, home, as_of = trained
    lake = (tmp_path / "lake").as_uri()
    files, built, scored = {}, {}, {}
    build = features.build.build_training_set
    score_embedded, score_on_spark = models.scoring.score_tables, models.spark_scoring.score_tables_spark

    def recorded(tables, **kw):
        fs = build(tables, **kw)
        built["duckdb" if kw.get("engine") is None else "spark"] = fs, kw.get("engine")
        return fs

    def recorded_scores(engine, score):
        def record(*args, **kw):
            scored[engine] = score(*args, **kw)
            return scored[engine]

        return record

    monkeypatch.setattr(features.build, "build_training_set", recorded)
    monkeypatch.setattr(models.scoring, "score_tables", recorded_scores("duckdb", score_embedded))
    monkeypatch.setattr(models.spark_scoring, "score_tables_spark", recorded_scores("spark", score_on_spark))
    for engine in ("duckdb", "spark"):
        where = {"duckdb": str(tmp_path), "spark": lake}[engine]
        out, scores = f"{where}/train-{engine}.parquet", f"{where}/scores-{engine}.parquet"
        r = _cli(home, "build-training-set", "--data", str(data), "--out", out, "--engine", engine)
        assert r.exit_code == 0, r.output
        args = ["--data", str(data), "--as-of", as_of.isoformat(), "--out", scores, "--engine", engine]
        r = _cli(home, "score", *args)
        assert r.exit_code == 0, r.output
        assert f"wrote {scores}" in r.output
        base = tmp_path if engine == "duckdb" else tmp_path / "lake"
        files[engine] = (
            pd.read_parquet(base / f"train-{engine}.parquet").reset_index(drop=True),
            read_scores(base / f"scores-{engine}.parquet").sort_values("rank").reset_index(drop=True),
        )
    (duck, _), (on_spark, spark_engine) = built["duckdb"], built["spark"]
    assert [s for s, _ in spark_engine.timings_]  # every step ran on Spark
    assert len(duck.frame) > 1000 and duck.frame["missed"].nunique() == 2
    assert on_spark.feature_names == duck.feature_names
    assert_frames_match(duck.frame, on_spark.frame)
    assert on_spark.frame["missed"].tolist() == duck.frame["missed"].tolist()
    assert (tmp_path / "lake" / "scores-spark.parquet").is_dir()  # a dataset, as Spark writes them
    assert_frames_match(files["duckdb"][0], files["spark"][0])
    assert_scores_match(files["duckdb"][1], files["spark"][1], "cli")

    embedded, on_spark = scored["duckdb"], scored["spark"]
    assert len(embedded) >= 40 and (embedded["risk_band"] == "high").any()
    assert_scores_match(embedded, on_spark, "frame")
    assert on_spark.attrs["notes"] == embedded.attrs["notes"]
    # The files write_scores writes from either frame read back the same (types of nested columns included).
    write_scores(embedded, tmp_path / "embedded.parquet")
    write_scores(on_spark, tmp_path / "spark.parquet")
    a, b = read_scores(tmp_path / "embedded.parquet"), read_scores(tmp_path / "spark.parquet")
    assert_scores_match(a, b, "file")
