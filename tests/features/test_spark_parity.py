"""The training set built on Spark equals the DuckDB one; Spark scoring equals embedded scoring.

Runs on a local Spark session (local[2], tests/features/conftest.py) over the shared small trained
organisation. Through the command line, the tables are read, checked and staged on Spark too.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.spark

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


def test_training_set_on_spark_equals_duckdb(spark, org):
    from features.build import build_training_set
    from features.spark_engine import SparkEngine

    tables, _, _ = org
    duck = build_training_set(tables)
    engine = SparkEngine(spark)
    on_spark = build_training_set(tables, engine=engine)
    assert [s for s, _ in engine.timings_]  # every step ran on Spark
    assert len(duck.frame) > 1000 and duck.frame["missed"].nunique() == 2
    assert on_spark.feature_names == duck.feature_names
    assert_frames_match(duck.frame, on_spark.frame)
    assert on_spark.frame["missed"].tolist() == duck.frame["missed"].tolist()


def test_spark_scores_equal_embedded_scores(spark, org, tmp_path):
    from models.loading import load_model
    from models.scoring import read_scores, score_tables, write_scores
    from models.spark_scoring import score_tables_spark
    from repradar.settings import Settings

    tables, home, as_of = org
    settings = Settings(home=home)
    model = load_model(settings)
    embedded = score_tables(tables, as_of, model, settings)
    on_spark = score_tables_spark(tables, as_of, model, settings, spark)

    assert len(embedded) >= 40 and (embedded["risk_band"] == "high").any()
    assert_scores_match(embedded, on_spark, "frame")
    assert on_spark.attrs["notes"] == embedded.attrs["notes"]
    # The files written from either frame read back the same (types of nested columns included).
    write_scores(embedded, tmp_path / "embedded.parquet")
    write_scores(on_spark, tmp_path / "spark.parquet")
    a, b = read_scores(tmp_path / "embedded.parquet"), read_scores(tmp_path / "spark.parquet")
    assert_scores_match(a, b, "file")


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


def test_cli_engine_spark_writes_the_same_files(spark, trained, tmp_path):
    """`--engine spark` on build-training-set and score (the active session is picked up; the
    folder is read, checked and staged on Spark) writes what the default engine writes; here to a
    URI, where Spark writes Parquet datasets."""
    from models.scoring import read_scores

    data, home, as_of = trained
    lake = (tmp_path / "lake").as_uri()
    files = {}
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
    assert (tmp_path / "lake" / "scores-spark.parquet").is_dir()  # a dataset, as Spark writes them
    assert_frames_match(files["duckdb"][0], files["spark"][0])
    assert_scores_match(files["duckdb"][1], files["spark"][1], "cli")
