"""pandera loads without PySpark, and PySpark still loads afterwards for the Spark engine."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = """
import json, os, sys
os.environ.pop("SPARK_LOCAL_IP", None)
from features.validation import validate_folder
seen = {"pyspark_after_validation": "pyspark" in sys.modules,
        "spark_local_ip": os.environ.get("SPARK_LOCAL_IP")}
import pyspark.sql
seen["spark_session_class"] = pyspark.sql.SparkSession.__name__
print(json.dumps(seen))
"""


def test_pyspark_is_hidden_from_pandera_only_while_it_loads():
    pytest.importorskip("pyspark")  # without the `spark` extra there is nothing to hide
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["pyspark_after_validation"] is False
    # What pandera does for PySpark before importing it is kept, and PySpark imports normally after.
    assert seen["spark_local_ip"] == "127.0.0.1"
    assert seen["spark_session_class"] == "SparkSession"
