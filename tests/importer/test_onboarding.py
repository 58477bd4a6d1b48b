"""Onboarding real exports: empty and header-only files, report exports (HubSpot), upper-case
headers (Salesforce Data Loader), time zones, Excel's `sep=` line and byte-order marks."""

import json
import re
import shutil
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from features.io import load_folder
from features.validation import validate_folder
from importer.run import PROVENANCE_FILE, ImportFailed, run_import

HERE = Path(__file__).resolve().parent
DOCS = HERE.parents[1] / "docs" / "import.md"
SF_UPPER = HERE / "fixtures" / "salesforce_upper"  # tests/fixtures/salesforce as Data Loader writes it


def hubspot_mapping() -> str:
    """The mapping shown in docs/import.md, "Mapping HubSpot or Salesforce report exports"."""
    text = DOCS.read_text()
    section = text.split("## Mapping HubSpot or Salesforce report exports", 1)[1]
    return re.search(r"```yaml\n(.*?)```", section, re.S).group(1)


OWNERS = """\
\ufeffOwner ID;Email;Manager Email;Start Date;Team;Last Name
1000;ann@acme.example;boss@acme.example;01.02.2022;East;Lee
1001;bo@acme.example;boss@acme.example;15.03.2022;East;Chan
"""
DEALS = """\
\ufeffRecord ID;Deal owner ID;Create Date;Close Date;Deal Stage;Amount
1;1000 ;10/01/2023 00:00;11/29/2023 00:00;CLOSEDWON;$12,595.96
2;1000;10/04/2023 00:00;12/06/2023 00:00;Closed Lost ;$1,574.48
3;1001;11/02/2023 00:00;12/20/2023 00:00;closedwon;$900
4;1001;11/03/2023 00:00;02/20/2024 00:00;qualifiedtobuy;$0.50
"""
QUOTAS = """\
\ufeffOwner Email;Quarter start;Target
ann@acme.example;01.10.2023;€100,000
bo@acme.example;01.10.2023;€80,000
"""
CALLS_HEADER_ONLY = "Call ID;Owner Email;Date\n"


def write_export(folder: Path, calls: str | None = CALLS_HEADER_ONLY, deals: str = DEALS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (("owners.csv", OWNERS), ("deals.csv", deals), ("quotas.csv", QUOTAS)):
        (folder / name).write_text(text, encoding="utf-8", newline="\r\n")
    if calls is not None:
        (folder / "calls.csv").write_text(calls)
    (folder / "hubspot.yaml").write_text(hubspot_mapping())
    return folder


def test_the_documented_hubspot_mapping_imports_a_report_export(tmp_path):
    src = write_export(tmp_path / "export")
    result = run_import(src / "hubspot.yaml", src, tmp_path / "out")
    opps = load_folder(tmp_path / "out").opportunities.set_index("opportunity_id")
    assert opps["amount"].tolist() == [12595.96, 1574.48, 900.0, 0.5]
    assert opps["is_won"].tolist() == [True, False, True, False]
    assert opps["is_closed"].tolist() == [True, True, True, False]
    assert opps["rep_id"].tolist()[:2] == ["ann@acme.example"] * 2
    quotas = load_folder(tmp_path / "out").quotas
    assert quotas["quota_amount"].tolist() == [100000.0, 80000.0]
    assert result.provenance["tables"]["activities"]["rows"] == 0


def test_an_amount_that_still_does_not_parse_names_file_column_and_rows(tmp_path):
    deals = DEALS.replace("$900", "900,5").replace("$0.50", "EUR 1.234,56")
    src = write_export(tmp_path / "export", deals=deals)
    with pytest.raises(ImportFailed) as exc:
        run_import(src / "hubspot.yaml", src, tmp_path / "out")
    text = str(exc.value)
    assert "deals.csv, column Amount, rows 4, 5: value '900,5', 'EUR 1.234,56'" in text
    assert "`number` says (currency stripped, thousands ',', decimal '.')" in text
    assert "(for amount)" in text and not (tmp_path / "out").exists()


def test_a_header_only_optional_file_gives_an_empty_table_with_contract_dtypes(tmp_path):
    src = write_export(tmp_path / "export", calls=CALLS_HEADER_ONLY)
    for fmt in ("csv", "parquet"):
        out = tmp_path / f"out-{fmt}"
        run_import(src / "hubspot.yaml", src, out, fmt=fmt)
        acts = load_folder(out).activities
        assert len(acts) == 0 and str(acts["occurred_at"].dtype) == "datetime64[us, UTC]"
        assert pd.api.types.is_string_dtype(acts["activity_id"].dtype)


def test_an_empty_optional_file_is_absent_with_a_note(tmp_path):
    src = write_export(tmp_path / "export", calls="")
    result = run_import(src / "hubspot.yaml", src, tmp_path / "out")
    assert "activities" not in result.provenance["tables"]
    assert any("calls.csv is empty" in n and "skipped" in n for n in result.provenance["notes"])
    assert not (tmp_path / "out" / "activities.csv").exists()


def test_an_empty_required_file_says_so(tmp_path):
    src = write_export(tmp_path / "export")
    (src / "deals.csv").write_bytes(b"")
    with pytest.raises(ImportFailed) as exc:
        run_import(src / "hubspot.yaml", src, tmp_path / "out")
    assert "deals.csv: the file is empty; it needs at least a header line" in str(exc.value)
    assert "No columns to parse" not in str(exc.value)


def test_a_byte_order_mark_is_stripped_whatever_the_encoding(tmp_path):
    src = write_export(tmp_path / "export")
    text = (
        (src / "hubspot.yaml")
        .read_text()
        .replace('csv: {delimiter: ";"}', 'csv: {delimiter: ";", encoding: cp1252}')
    )
    (src / "hubspot.yaml").write_text(text)
    result = run_import(src / "hubspot.yaml", src, tmp_path / "out")
    assert any("byte-order mark: read as UTF-8, not cp1252" in n for n in result.provenance["notes"])
    assert load_folder(tmp_path / "out").quotas["quota_amount"].tolist() == [100000.0, 80000.0]  # € intact


MINI = """\
version: 1
tables:
  reps:
    source: reps.csv
    columns: {rep_id: id, manager_id: boss, hire_date: hired, name: name}
  opportunities:
    source: deals.{ext}
    columns:
      opportunity_id: id
      rep_id: owner
      created_date: opened
      close_date: closed
      stage: stage
      amount: value
      is_closed: {from: stage, values: {Won: true, Open: false}}
      is_won: {from: stage, values: {Won: true, Open: false}}
quota_policy: {kind: fixed, amount: 1000, period: quarter}
"""
REPS = "id,boss,hired,name\nr1,m1,2023-01-01,Zoë\nr2,m1,2023-01-01,Ann\n"


def test_a_timezone_aware_parquet_date_is_its_local_day_in_import_and_validate(tmp_path):
    berlin = pd.to_datetime(["2023-10-01 00:00", "2023-10-02 00:00"]).tz_localize("Europe/Berlin")
    deals = pd.DataFrame(
        {
            "id": ["d1", "d2"],
            "owner": ["r1", "r2"],
            "opened": berlin,
            "closed": pd.to_datetime(["2023-11-01", "2023-11-02"]),
            "stage": ["Won", "Open"],
            "value": [10.0, 20.0],
        }
    )
    src = tmp_path / "src"
    src.mkdir()
    (src / "reps.csv").write_text(REPS)
    deals.to_parquet(src / "deals.parquet")
    (tmp_path / "m.yaml").write_text(MINI.replace("{ext}", "parquet"))
    run_import(tmp_path / "m.yaml", src, tmp_path / "out")
    imported = load_folder(tmp_path / "out").opportunities["created_date"]
    # The same file given to `validate` / `train` as a contract table.
    contract = tmp_path / "contract"
    shutil.copytree(tmp_path / "out", contract)
    (contract / "opportunities.csv").unlink()
    deals.rename(columns={"id": "opportunity_id", "owner": "rep_id", "opened": "created_date"}).rename(
        columns={"closed": "close_date", "value": "amount"}
    ).assign(is_closed=[True, False], is_won=[True, False]).to_parquet(contract / "opportunities.parquet")
    validated = load_folder(contract).opportunities["created_date"]
    expected = [pd.Timestamp("2023-10-01"), pd.Timestamp("2023-10-02")]
    assert imported.tolist() == expected and validated.tolist() == expected


def test_a_category_parquet_column_is_text_in_import(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "reps.csv").write_text(REPS)
    pd.DataFrame(
        {
            "id": ["d1", "d2"],
            "owner": pd.Categorical(["r1", "r2"]),
            "opened": ["2023-10-01", "2023-10-02"],
            "closed": ["2023-11-01", "2023-11-02"],
            "stage": pd.Categorical(["Won", "Open"]),
            "value": [1.0, 2.0],
        }
    ).to_parquet(src / "deals.parquet")
    (tmp_path / "m.yaml").write_text(MINI.replace("{ext}", "parquet"))
    run_import(tmp_path / "m.yaml", src, tmp_path / "out")
    assert load_folder(tmp_path / "out").opportunities["stage"].tolist() == ["Won", "Open"]


def test_excel_sep_line_is_honoured_and_rows_keep_the_file_numbering(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "reps.csv").write_text("sep=;\nid;boss;hired;name\nr1;m1;2023-01-01;A\nr2;m1;01/01/2023;B\n")
    (src / "deals.csv").write_text("id,owner,opened,closed,stage,value\nd1,r1,2023-01-02,2023-02-01,Won,5\n")
    (tmp_path / "m.yaml").write_text(MINI.replace("{ext}", "csv"))
    with pytest.raises(ImportFailed) as exc:
        run_import(tmp_path / "m.yaml", src, tmp_path / "out")
    assert "reps.csv, column hired, row 4: value '01/01/2023' is not a date" in str(exc.value)
    (src / "reps.csv").write_text("sep=;\nid;boss;hired;name\nr1;m1;2023-01-01;A\n")
    result = run_import(tmp_path / "m.yaml", src, tmp_path / "out")
    assert any("line 1 is Excel's `sep=;` line; skipped" in n for n in result.provenance["notes"])


def test_a_file_in_another_encoding_names_line_and_column(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "reps.csv").write_bytes(
        "id,boss,hired,name\nr1,m1,2023-01-01,A\nr2,m1,2023-01-01,Zoë\n".encode("cp1252")
    )
    (src / "deals.csv").write_text("id,owner,opened,closed,stage,value\nd1,r1,2023-01-02,2023-02-01,Won,5\n")
    (tmp_path / "m.yaml").write_text(MINI.replace("{ext}", "csv"))
    with pytest.raises(ImportFailed) as exc:
        run_import(tmp_path / "m.yaml", src, tmp_path / "out")
    assert "reps.csv: is not UTF-8 text (line 3, column name (byte 0xeb))" in str(exc.value)
    assert "csv: {encoding: cp1252}" in str(exc.value)


def test_salesforce_data_loader_upper_case_headers_match_with_a_note(tmp_path):
    result = run_import("salesforce", SF_UPPER, tmp_path / "out")
    notes = result.provenance["notes"]
    assert any(n.startswith("User.csv: column names matched ignoring case: Id <- ID") for n in notes)
    assert result.provenance["tables"]["opportunities"]["rows"] == 12
    assert json.loads((tmp_path / "out" / PROVENANCE_FILE).read_text())["validation"] == "passed"
    assert validate_folder(tmp_path / "out").ok


def test_two_columns_differing_only_in_case_are_an_error(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(SF_UPPER, src)
    user = src / "User.csv"
    lines = user.read_text().splitlines()
    user.write_text("\n".join([lines[0] + ",id", *(line + ",x" for line in lines[1:])]) + "\n")
    with pytest.raises(ImportFailed) as exc:
        run_import("salesforce", src, tmp_path / "out")
    assert (
        "User.csv, column Id: does not exist; the file has 'ID', 'id', which differ from it only in case"
        in str(exc.value)
    )


def test_value_map_normalize_in_an_import(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "reps.csv").write_text(REPS)
    (src / "deals.csv").write_text(
        "id,owner,opened,closed,stage,value\nd1,r1,2023-01-02,2023-02-01,WON ,5\nd2,r2,2023-01-02,2023-02-01,open,5\n"
    )
    mapping = MINI.replace("{ext}", "csv").replace(
        "is_closed: {from: stage, values:", "is_closed: {from: stage, normalize: [strip, lower], values:"
    )
    mapping = mapping.replace("values: {Won: true, Open: false}}", "values: {won: true, open: false}}")
    (tmp_path / "m.yaml").write_text(textwrap.dedent(mapping))
    with pytest.raises(ImportFailed) as exc:  # is_won has no normalize: still exact
        run_import(tmp_path / "m.yaml", src, tmp_path / "out")
    assert "column stage, row 2: value 'WON ' is not in the value map" in str(exc.value)
    assert "(for is_won)" in str(exc.value)
    assert "for is_closed" not in str(exc.value)
    mapping = mapping.replace(
        "is_won: {from: stage, values:", "is_won: {from: stage, normalize: [strip, lower], values:"
    )
    (tmp_path / "m.yaml").write_text(mapping)
    run_import(tmp_path / "m.yaml", src, tmp_path / "out")
    assert load_folder(tmp_path / "out").opportunities["is_won"].tolist() == [True, False]
