"""Loading a contract folder: typed frames per the conventions, validation first, files read as stored."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from features.contract import TABLES
from features.io import Tables, load_folder, read_raw, table_path, write_table
from repradar.errors import ContractError, UserError

VALID = Path(__file__).resolve().parents[1] / "fixtures" / "contract" / "valid"

KIND_DTYPES = {
    "string": "str",
    "date": "datetime64[us]",
    "timestamp": "datetime64[us, UTC]",
    "number": "float64",
    "boolean": "bool",
}


def as_parquet(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    for name, df in load_folder(src).items():
        if df is None:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pyarrow's pandas bridge warns about tz-aware .values
            t = pa.Table.from_pandas(df, preserve_index=False)
        for col in TABLES[name].columns:
            if col.kind == "date":
                t = t.set_column(
                    t.schema.get_field_index(col.name), col.name, pc.cast(t[col.name], pa.date32())
                )
        pq.write_table(t, dst / f"{name}.parquet")
    return dst


@pytest.fixture(scope="module")
def tables() -> Tables:
    return load_folder(VALID)


def test_every_table_is_loaded_with_contract_dtypes(tables):
    for name, df in tables.items():
        spec = TABLES[name]
        assert df is not None, name
        assert list(df.columns[: len(spec.columns)]) == spec.column_names
        assert isinstance(df.index, pd.RangeIndex) and df.index.start == 0
        for col in spec.columns:
            assert str(df[col.name].dtype) == KIND_DTYPES[col.kind], (name, col.name, df[col.name].dtype)


def test_dates_are_midnight_and_timestamps_are_utc(tables):
    reps = tables.reps
    assert reps.loc[0, "hire_date"] == pd.Timestamp("2021-03-01")
    assert (reps["hire_date"] == reps["hire_date"].dt.normalize()).all()
    h = tables.opportunity_history["changed_at"]
    assert h[0] == pd.Timestamp("2023-11-02 09:00", tz="UTC")  # Z
    assert h[1] == pd.Timestamp("2024-02-20 15:30", tz="UTC")  # +01:00 converted
    assert h[2] == pd.Timestamp("2024-01-10 10:00", tz="UTC")  # no offset means UTC
    assert h[3] == pd.Timestamp("2024-03-05 13:15", tz="UTC")  # -05:00 converted
    assert h[5] == pd.Timestamp("2024-03-15 12:00:00.250", tz="UTC")


def test_booleans_numbers_and_missing_cells(tables):
    o = tables.opportunities
    # true/True/1/yes and false/False/0/no
    assert o["is_closed"].tolist() == [True, False, True, False, True, False, True, True]
    assert o["is_won"].tolist() == [True, False, False, False, True, False, True, False]
    assert o.loc[3, "amount"] == 52000.75
    assert pd.isna(o.loc[3, "account_id"]) and pd.isna(o.loc[2, "product"])
    a = tables.activities
    assert pd.isna(a.loc[2, "duration_minutes"]) and pd.isna(a.loc[2, "opportunity_id"])
    assert tables.reps["end_date"].notna().tolist() == [False, False, False, False, True]


def test_reps_keep_attributes_other_tables_keep_the_contract(tmp_path):
    folder = tmp_path / "org"
    shutil.copytree(VALID, folder)
    o = pd.read_csv(folder / "opportunities.csv", dtype=str, keep_default_na=False)
    o["crm_owner"] = "x"
    o.to_csv(folder / "opportunities.csv", index=False)
    t = load_folder(folder)
    assert list(t.reps.columns) == TABLES["reps"].column_names + ["gender", "age_band"]
    assert t.reps["gender"].tolist() == ["female", "male", "female", "male", "female"]
    assert list(t.opportunities.columns) == TABLES["opportunities"].column_names


def test_absent_optional_tables_are_none_and_absent_optional_columns_are_missing(tmp_path):
    folder = tmp_path / "org"
    shutil.copytree(VALID, folder)
    for name in ("opportunity_history", "activities", "engagement", "interventions"):
        (folder / f"{name}.csv").unlink()
    reps = pd.read_csv(folder / "reps.csv", dtype=str)[["rep_id", "manager_id", "hire_date"]]
    reps.to_csv(folder / "reps.csv", index=False)
    t = load_folder(folder)
    assert t.opportunity_history is None and t.activities is None
    assert t.engagement is None and t.interventions is None
    assert list(t.reps.columns) == TABLES["reps"].column_names
    assert t.reps["end_date"].isna().all() and str(t.reps["end_date"].dtype) == "datetime64[us]"
    assert t.reps["team"].isna().all() and str(t.reps["team"].dtype) == "str"


def test_csv_and_parquet_load_the_same_frames(tmp_path, tables):
    folder = as_parquet(VALID, tmp_path / "pq")
    again = load_folder(folder)
    for name, df in tables.items():
        pd.testing.assert_frame_equal(getattr(again, name), df, check_like=False)


def test_load_folder_refuses_a_folder_that_breaks_the_contract(tmp_path):
    folder = tmp_path / "org"
    shutil.copytree(VALID, folder)
    q = pd.read_csv(folder / "quotas.csv", dtype=str)
    q.loc[0, "quota_amount"] = "-1"
    q.to_csv(folder / "quotas.csv", index=False)
    with pytest.raises(ContractError) as exc:
        load_folder(folder)
    [f] = exc.value.failures
    assert (f.table, f.column, f.rule, f.n_rows) == ("quotas", "quota_amount", "quota_amount > 0", 1)
    assert "quotas.quota_amount: rule 'quota_amount > 0' broken by 1 row" in str(exc.value)
    assert isinstance(exc.value, UserError)


def test_load_without_validation_still_types(tmp_path):
    t = load_folder(VALID, validate=False)
    assert str(t.quotas["period_start"].dtype) == "datetime64[us]"


def test_table_path_prefers_parquet(tmp_path):
    (tmp_path / "reps.csv").write_text("rep_id\n")
    assert table_path(tmp_path, "reps") == tmp_path / "reps.csv"
    (tmp_path / "reps.parquet").write_bytes(b"")
    assert table_path(tmp_path, "reps") == tmp_path / "reps.parquet"
    assert table_path(tmp_path, "quotas") is None


def test_read_raw_keeps_text_as_written_and_numbers_rows_as_in_the_file(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes("\ufeffa,b\nNA, 1 \n\n,null\n,\n3,4\n".encode())
    raw = read_raw(path)
    assert list(raw.columns) == ["a", "b"]  # byte-order mark dropped
    assert raw.index.tolist() == [0, 2, 4]  # blank rows dropped, numbering kept
    assert raw.loc[0, "a"] == "NA" and raw.loc[0, "b"] == " 1 "  # only empty cells are missing
    assert pd.isna(raw.loc[2, "a"]) and raw.loc[2, "b"] == "null"


@pytest.mark.parametrize(
    "content, says",
    [(b"", "is empty"), (b"a,b\x00\x01", "binary file"), (b"a\n\xff\xfe\n", "not UTF-8")],
)
def test_read_raw_says_what_is_wrong(tmp_path, content, says):
    path = tmp_path / "t.csv"
    path.write_bytes(content)
    with pytest.raises(UserError, match=says):
        read_raw(path)


def test_write_table_round_trips(tmp_path, tables):
    write_table(tables.quotas, tmp_path / "q.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "q.parquet"), tables.quotas)
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


def test_read_raw_parquet_with_a_stored_pandas_index(tmp_path):
    df = pd.DataFrame({"rep_id": ["r1", "r2", "r3"], "x": [1, 2, 3]})
    df[df["x"] > 1].to_parquet(tmp_path / "filtered.parquet")  # index [1, 2] stored
    raw = read_raw(tmp_path / "filtered.parquet")
    assert raw.index.tolist() == [0, 1] and list(raw.columns) == ["rep_id", "x"]
    df.set_index("rep_id").to_parquet(tmp_path / "indexed.parquet")  # the id stored as the index
    raw = read_raw(tmp_path / "indexed.parquet")
    assert list(raw.columns) == ["rep_id", "x"] and raw["rep_id"].tolist() == ["r1", "r2", "r3"]


def test_quota_span_reads_the_first_start_and_last_end(tmp_path):
    import datetime as dt

    from features.io import quota_span

    q = pd.DataFrame(
        {
            "rep_id": ["a", "b", "c"],
            "period_start": ["2024-04-01", "2024-01-01", "not a date"],
            "period_end": ["2024-06-30", "2024-03-31", ""],
            "quota_amount": [1, 1, 1],
        }
    )
    q.to_csv(tmp_path / "quotas.csv", index=False)
    assert quota_span(tmp_path) == (dt.date(2024, 1, 1), dt.date(2024, 6, 30))
    q.iloc[:2].assign(
        period_start=lambda d: pd.to_datetime(d["period_start"]),
        period_end=lambda d: pd.to_datetime(d["period_end"]),
    ).to_parquet(tmp_path / "quotas.parquet")
    assert quota_span(tmp_path) == (dt.date(2024, 1, 1), dt.date(2024, 6, 30))  # Parquet is preferred


def test_quota_span_is_none_when_it_cannot_tell(tmp_path):
    from features.io import quota_span

    assert quota_span(tmp_path) is None  # no quotas table
    (tmp_path / "quotas.csv").write_text("rep_id,start,end\na,2024-01-01,2024-03-31\n")
    assert quota_span(tmp_path) is None  # columns misnamed: validation explains it later
    (tmp_path / "quotas.csv").write_text("rep_id,period_start,period_end,quota_amount\na,x,y,1\n")
    assert quota_span(tmp_path) is None
