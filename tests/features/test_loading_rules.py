"""How contract files are read: Parquet dictionary columns, time zones, Excel's `sep=` line, files
that are not UTF-8 or not well-formed, and what an absent optional table costs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from features.io import load_folder, read_raw
from features.validation import validate_folder
from repradar.errors import UserError

VALID = Path(__file__).resolve().parents[1] / "fixtures" / "contract" / "valid"


@pytest.fixture
def folder(tmp_path) -> Path:
    dst = tmp_path / "data"
    shutil.copytree(VALID, dst)
    return dst


def _opps_as_parquet(folder: Path, **columns) -> pd.DataFrame:
    opps = pd.read_csv(folder / "opportunities.csv", dtype=str, keep_default_na=False)
    opps = opps.assign(**{k: v(opps) for k, v in columns.items()})
    (folder / "opportunities.csv").unlink()
    opps.to_parquet(folder / "opportunities.parquet")
    return opps


def test_a_category_parquet_column_is_text(folder):
    opps = _opps_as_parquet(
        folder, stage=lambda d: pd.Categorical(d["stage"]), rep_id=lambda d: pd.Categorical(d["rep_id"])
    )
    report = validate_folder(folder)
    assert report.ok, report.render()
    loaded = load_folder(folder).opportunities
    assert loaded["stage"].tolist() == opps["stage"].tolist()
    assert pd.api.types.is_string_dtype(loaded["stage"].dtype)


def test_a_timezone_aware_parquet_date_is_its_local_calendar_day(folder):
    def berlin(d):
        return pd.to_datetime(d["created_date"]).dt.tz_localize("Europe/Berlin")

    opps = _opps_as_parquet(folder, created_date=berlin)
    assert validate_folder(folder).ok
    loaded = load_folder(folder).opportunities["created_date"]
    assert loaded.tolist() == pd.to_datetime(opps["created_date"].dt.tz_localize(None)).tolist()


def test_excel_sep_line_is_skipped_with_a_warning_and_rows_keep_file_lines(folder):
    text = (folder / "reps.csv").read_text()
    (folder / "reps.csv").write_text("sep=,\n" + text)
    report = validate_folder(folder)
    assert report.ok, report.render()
    assert any("line 1 of reps.csv is Excel's `sep=,` line; skipped" in w for w in report.warnings)
    lines = text.splitlines()
    lines[2] = lines[2].replace("2022-07-15", "15/07/2022")
    (folder / "reps.csv").write_text("sep=,\n" + "\n".join(lines) + "\n")
    failure = validate_folder(folder).failures[0]
    assert failure.column == "hire_date" and failure.examples[0]["row"] == 4  # the file's line


def test_a_row_with_too_many_fields_is_named_by_its_line(tmp_path):
    path = tmp_path / "reps.csv"
    path.write_text("a,b\n1,2,3\n4,5,6\n")
    with pytest.raises(UserError, match=r"line 2 has more fields than the header"):
        read_raw(path)


def test_a_cp1252_file_names_the_line_and_column(tmp_path):
    path = tmp_path / "reps.csv"
    path.write_bytes("rep_id,name\nr1,Ann\nr2,Zo\u00eb \u2013 East\n".encode("cp1252"))
    with pytest.raises(UserError, match=r"not UTF-8 text \(line 3, column name \(byte 0xeb\)\)"):
        read_raw(path)


def test_an_absent_interventions_table_does_not_claim_missing_features(folder):
    (folder / "interventions.csv").unlink()
    (folder / "engagement.csv").unlink()
    warnings = validate_folder(folder).warnings
    iv = next(w for w in warnings if w.startswith("interventions:"))
    assert "features it feeds" not in iv and "no feature is built from it" in iv and "repradar report" in iv
    eng = next(w for w in warnings if w.startswith("engagement:"))
    assert "the features it feeds will be missing" in eng
