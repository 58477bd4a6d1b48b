"""pandera's pandas API, loaded without PySpark.

Whenever PySpark is installed (the `spark` extra), importing pandera imports `pyspark.pandas` too,
and with it most of PySpark (about 2 s, and a pandas-3 warning), though contract validation only
uses pandera's pandas API and the default engine is DuckDB. pandera 0.35 has no entry point that
skips it: `pandera.pandas` runs `pandera/__init__.py` as well, whose `external_config` imports
`pyspark.pandas` in a `try` that treats an ImportError as "not installed". So PySpark is hidden
while pandera loads: pandera then runs as on a machine without PySpark (its pyspark.pandas type
hints are off; RepRadar never validates pyspark.pandas frames with it), it still sets the Spark
environment variables it sets before that import, and PySpark imports normally afterwards for
`--engine spark`. When PySpark is already loaded (the Spark engine started first, or MLflow's schema
types imported it), only `pyspark.pandas` is hidden: its import, which pandera would run for nothing,
costs seconds and warns about pandas 3 (and with pandas 3 fails half-way anyway).
"""

from __future__ import annotations

import sys


def _load_pandera():
    hidden = "pyspark.pandas" if "pyspark" in sys.modules else "pyspark"
    if hidden in sys.modules or "pandera" in sys.modules:
        import pandera.pandas

        return pandera.pandas
    sys.modules[hidden] = None  # `import pyspark.pandas` raises ModuleNotFoundError meanwhile
    try:
        import pandera.pandas
    finally:
        if sys.modules.get(hidden, 0) is None:
            del sys.modules[hidden]
    return pandera.pandas


pa = _load_pandera()
SchemaError = pa.errors.SchemaError
SchemaErrors = pa.errors.SchemaErrors
