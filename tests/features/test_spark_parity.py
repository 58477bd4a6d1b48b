"""The training set built on Spark equals the DuckDB one; Spark scoring equals embedded scoring."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.spark


@pytest.fixture(scope="session")
def spark():
    """One local Spark session for the test session (skipped without Java, unless CI=true)."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        if os.environ.get("CI") == "true":
            pytest.fail("Java 17+ is needed for the Spark tests (packages.apt: openjdk-17-jre-headless)")
        pytest.skip("no Java runtime: Spark tests skipped")
    pyspark = pytest.importorskip("pyspark")
    session = (
        pyspark.sql.SparkSession.builder.master("local[2]")
        .appName("repradar-tests")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", "2g")
        .config("spark.sql.adaptive.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def small_org(tmp_path_factory):
    from features.io import load_folder
    from simulator.simulate import SimConfig, simulate

    out = tmp_path_factory.mktemp("spark-org") / "data"
    simulate(SimConfig(n_reps=30, n_periods=4, seed=3, oracle_sims=0), out)
    return load_folder(out)


def assert_frames_match(a: pd.DataFrame, b: pd.DataFrame, tol: float = 1e-9) -> None:
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


def test_training_set_on_spark_equals_duckdb(spark, small_org):
    from features.build import build_training_set
    from features.spark_engine import SparkEngine

    duck = build_training_set(small_org)
    on_spark = build_training_set(small_org, engine=SparkEngine(spark))
    assert on_spark.feature_names == duck.feature_names
    assert_frames_match(duck.frame, on_spark.frame)
    assert on_spark.frame["missed"].tolist() == duck.frame["missed"].tolist()
