"""A local Spark session for the Spark tests of this package (one per test module)."""

from __future__ import annotations

import os
import shutil

import pytest


@pytest.fixture(scope="module")
def spark():
    """One local Spark session, configured as RepRadar configures its own local sessions.

    Needs Java 17+; without Java the tests are skipped, except under CI=true where a missing
    Java is a failure (`.ci/run` installs it from packages.apt)."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        if os.environ.get("CI") == "true":
            pytest.fail("Java 17+ is needed for the Spark tests (packages.apt: openjdk-17-jre-headless)")
        pytest.skip("no Java runtime: Spark tests skipped")
    pytest.importorskip("pyspark")
    from features.spark_engine import spark_session

    session = spark_session("local[2]", app_name="repradar-tests")
    yield session
    session.stop()
