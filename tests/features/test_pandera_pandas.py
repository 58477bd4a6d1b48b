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


# PySpark loaded first, as with `--engine spark` (the session starts before the contract check) or
# once MLflow's schema types have imported it: pandera ran pyspark.pandas' import on top (seconds,
# and a pandas-3 warning on stderr; with pandas 3 it then fails, half loaded) for type hints
# RepRadar never uses.
PROBE_LOADED = """
import json, sys
import pyspark.sql
from features.validation import validate_folder
print(json.dumps({"pandera": "pandera" in sys.modules,
                  "pyspark_pandas": sorted(m for m in sys.modules if m.startswith("pyspark.pandas"))}))
"""


def test_pandera_leaves_pyspark_pandas_out_when_pyspark_is_already_loaded():
    pytest.importorskip("pyspark")
    done = subprocess.run([sys.executable, "-c", PROBE_LOADED], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    # Neither loaded nor left blocked (no None entry): `import pyspark.pandas` is as it was for others.
    assert json.loads(done.stdout) == {"pandera": True, "pyspark_pandas": []}
    assert "PySpark does not yet fully support pandas" not in done.stderr
