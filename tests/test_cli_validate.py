"""`repradar validate --data DIR`: exit 0 on a valid folder, 2 with a clear message on each broken kind."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from features.contract import TABLES
from repradar.cli import app

VALID = Path(__file__).resolve().parent / "fixtures" / "contract" / "valid"
runner = CliRunner()


def validate(folder: Path):
    return runner.invoke(app, ["validate", "--data", str(folder)])


def copy_valid(tmp_path: Path) -> Path:
    dst = tmp_path / "org"
    shutil.copytree(VALID, dst)
    return dst


def edit(folder: Path, table: str, row: int, column: str, value: str) -> None:
    """Set `column` of the `row`-th record (1-based; it sits on line row + 1 of the file, under the header)."""
    path = folder / f"{table}.csv"
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df.loc[row - 1, column] = value
    df.to_csv(path, index=False)


def test_valid_csv_folder_exits_0():
    result = validate(VALID)
    assert result.exit_code == 0, result.output
    assert "OK: every rule of the data contract holds." in result.output
    assert "reps" in result.output and "5 rows" in result.output


def test_valid_parquet_folder_exits_0(tmp_path):
    from features.io import load_folder

    folder = tmp_path / "pq"
    folder.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyarrow's pandas bridge warns about tz-aware .values
        for name, df in load_folder(VALID).items():
            t = pa.Table.from_pandas(df, preserve_index=False)
            for col in TABLES[name].columns:
                if col.kind == "date":
                    i = t.schema.get_field_index(col.name)
                    t = t.set_column(i, col.name, pc.cast(t[col.name], pa.date32()))
            pq.write_table(t, folder / f"{name}.parquet")
    result = validate(folder)
    assert result.exit_code == 0, result.output
    assert "reps.parquet" in result.output


def _drop_file(folder):
    (folder / "quotas.csv").unlink()


def _drop_column(folder):
    df = pd.read_csv(folder / "reps.csv", dtype=str, keep_default_na=False)
    df.drop(columns=["hire_date"]).to_csv(folder / "reps.csv", index=False)


def _duplicate_id(folder):
    edit(folder, "opportunities", 2, "opportunity_id", "o1")
    df = pd.read_csv(folder / "opportunity_history.csv", dtype=str, keep_default_na=False)
    df = df[df["opportunity_id"] != "o2"]  # keep history references intact
    df.to_csv(folder / "opportunity_history.csv", index=False)


def _binary(folder):
    (folder / "engagement.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")


# fmt: off
BROKEN = [
    ("missing-file", _drop_file,
     "quotas: rule 'required table present' broken: no quotas.csv or quotas.parquet"),
    ("missing-column", _drop_column,
     "reps.hire_date: rule 'required column present' broken: column missing"),
    ("wrong-type", lambda f: edit(f, "quotas", 3, "quota_amount", "80k"),
     "quotas.quota_amount: rule 'parses as number' broken by 1 row, first: row 4 (quota_amount=80k)"),
    ("duplicate-ids", _duplicate_id,
     "opportunities.opportunity_id: rule 'unique' broken by 2 rows, first: row 2 (opportunity_id=o1), "
     "row 3 (opportunity_id=o1)"),
    ("dangling-reference", lambda f: edit(f, "activities", 2, "rep_id", "r42"),
     "activities.rep_id: rule 'exists in reps.rep_id' broken by 1 row, first: row 3 (rep_id=r42)"),
    ("overlapping-periods", lambda f: edit(f, "quotas", 4, "period_start", "2024-03-01"),
     "quotas.period_start: rule 'periods of one rep_id do not overlap' broken by 1 row, first: "
     "row 5 (rep_id=r2, period_start=2024-03-01, period_end=2024-06-30) overlaps "
     "row 4 (period_start=2024-01-01, period_end=2024-03-31)"),
    ("negative-amount", lambda f: edit(f, "opportunities", 5, "amount", "-180000"),
     "opportunities.amount: rule 'amount >= 0' broken by 1 row, first: row 6 (amount=-180000)"),
    ("unparseable-date", lambda f: edit(f, "reps", 4, "hire_date", "1 Feb 2023"),
     "reps.hire_date: rule 'parses as date (YYYY-MM-DD)' broken by 1 row, first: row 5 (hire_date='1 Feb 2023')"),
    ("binary-file", _binary,
     "engagement: rule 'file readable' broken: engagement.csv is a binary file, not CSV text"),
]
# fmt: on


@pytest.mark.parametrize("breaker, message", [c[1:] for c in BROKEN], ids=[c[0] for c in BROKEN])
def test_each_broken_kind_exits_2_with_its_message(tmp_path, breaker, message):
    folder = copy_valid(tmp_path)
    breaker(folder)
    result = validate(folder)
    assert result.exit_code == 2, result.output
    assert "FAILED: 1 contract violation(s):" in result.output
    assert f"  - {message}" in result.output


def test_missing_folder_exits_2_with_a_message(tmp_path):
    result = validate(tmp_path / "nope")
    assert result.exit_code == 2
    assert "rule 'folder exists' broken" in result.output and "does not exist" in result.output


def test_the_console_script_keeps_stderr_for_its_own_messages():
    """The installed script on a valid folder: nothing on stderr (PySpark's pandas-3 warning, raised when
    pandera imports pyspark.pandas, is silenced by the script), the report on stdout."""
    import subprocess
    import sys

    script = Path(sys.executable).parent / "repradar"
    done = subprocess.run([str(script), "validate", "--data", str(VALID)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "" and "Data contract check" in done.stdout


def test_simulate_help_shows_the_start_default_as_a_date():
    from typer.testing import CliRunner

    from repradar.cli import app

    result = CliRunner().invoke(app, ["simulate", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "2023-01-01" in result.output and "00:00:00" not in result.output
