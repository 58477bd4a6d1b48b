"""Running a mapping: problems in the source's terms, nothing written on error, provenance, Salesforce."""

import hashlib
import json
import shutil
import tempfile
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from features.validation import validate_folder
from importer.mapping import QuotaPolicy, load_mapping
from importer.run import PROVENANCE_FILE, ImportFailed, run_import
from repradar.errors import UserError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

MAPPING = """\
version: 1
notes: ["hire_date is the first day in the people file"]
tables:
  reps:
    source: people.csv
    columns:
      rep_id: {from: name, id: slug}
      manager_id: {lookup: {file: teams.csv, key: member, match: name, column: lead, normalize: [lower]}, id: slug}
      hire_date: {from: started, format: "%d/%m/%Y"}
      name: name
  opportunities:
    source: deals.csv
    columns:
      opportunity_id: id
      rep_id: {from: owner, id: slug}
      created_date: opened
      close_date: closed
      stage: stage
      amount: {from: value, default: {lookup: {file: prices.csv, key: item, match: item, column: price, normalize: [no_spaces, lower]}}}
      is_closed: {from: stage, values: {Won: true, Lost: true, Open: false}}
      is_won: {from: stage, values: {Won: true, Lost: false, Open: false}}
      product: item
quota_policy: {kind: fixed, amount: 1000, period: quarter}
"""

PEOPLE = """\
name,started
Ann Lee,01/01/2023
Bo Chan,15/02/2023
"""
TEAMS = """\
member,lead
ann lee,Cy Boss
BO CHAN,Cy Boss
"""
DEALS = """\
id,owner,opened,closed,stage,value,item
d1,Ann Lee,2023-01-05,2023-02-10,Won,900,GTX Pro
d2,Ann Lee,2023-01-06,2023-03-01,Lost,0,GTX Pro
d3,Bo Chan,2023-02-20,2023-05-01,Won,1200,MG Basic
d4,Bo Chan,2023-04-02,2023-06-30,Open,,GTXPro
"""
PRICES = """\
item,price
GTX Pro,4821
MG Basic,55
"""


@pytest.fixture
def export(tmp_path):
    """A tiny export (people, teams, deals, prices) and its mapping; returns (mapping path, source dir)."""
    src = tmp_path / "export"
    src.mkdir()
    for name, text in {
        "people.csv": PEOPLE,
        "teams.csv": TEAMS,
        "deals.csv": DEALS,
        "prices.csv": PRICES,
    }.items():
        (src / name).write_text(text)
    mapping = tmp_path / "mine.yaml"
    mapping.write_text(MAPPING)
    return mapping, src


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def assert_nothing_written(tmp_path: Path, out: Path) -> None:
    assert not out.exists()
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def failure(mapping, src, out) -> str:
    with pytest.raises(UserError) as exc:
        run_import(mapping, src, out)
    return str(exc.value)


# ---------------------------------------------------------------- a clean import


def test_import_writes_a_valid_contract_folder(export, tmp_path):
    mapping, src = export
    out = tmp_path / "out"
    result = run_import(mapping, src, out)
    assert result.report.ok
    assert validate_folder(out).ok
    assert sorted(p.name for p in out.iterdir()) == [
        PROVENANCE_FILE,
        "opportunities.csv",
        "quotas.csv",
        "reps.csv",
    ]
    reps = pd.read_csv(out / "reps.csv", dtype=str)
    assert reps.to_dict("records") == [
        {"rep_id": "ann-lee", "manager_id": "cy-boss", "hire_date": "2023-01-01", "name": "Ann Lee"},
        {"rep_id": "bo-chan", "manager_id": "cy-boss", "hire_date": "2023-02-15", "name": "Bo Chan"},
    ]
    opps = pd.read_csv(out / "opportunities.csv", dtype=str)
    assert opps["amount"].tolist() == ["900.0", "0.0", "1200.0", "4821.0"]  # d4: GTXPro -> GTX Pro list price
    assert opps["is_closed"].tolist() == ["true", "true", "true", "false"]
    assert opps["is_won"].tolist() == ["true", "false", "true", "false"]


def test_provenance_records_mapping_sources_policy_and_notes(export, tmp_path):
    mapping, src = export
    out = tmp_path / "out"
    run_import(mapping, src, out)
    prov = json.loads((out / PROVENANCE_FILE).read_text())
    assert prov["mapping"]["sha256"] == hashlib.sha256(mapping.read_bytes()).hexdigest()
    files = prov["source"]["files"]
    assert set(files) == {"people.csv", "teams.csv", "deals.csv", "prices.csv"}
    assert files["deals.csv"]["sha256"] == hashlib.sha256((src / "deals.csv").read_bytes()).hexdigest()
    assert files["deals.csv"]["rows"] == 4
    assert prov["quotas"] == "derived"
    assert prov["quota_policy"]["kind"] == "fixed" and prov["quota_policy"]["amount"] == 1000.0
    assert any(n.startswith("quotas were derived") for n in prov["notes"])
    assert any("opportunities.amount: 1 of 4 rows" in n for n in prov["notes"])
    assert prov["assumptions"] == ["hire_date is the first day in the people file"]
    assert prov["tables"]["opportunities"]["rows"] == 4
    assert prov["validation"] == "passed"


def test_amounts_in_several_currencies_are_named_in_the_notes(export, tmp_path):
    # A multi-currency CRM writes each deal's amount in its own currency; the import sums them as
    # one, so it must say so rather than hide it.
    mapping, src = export
    deals = src / "deals.csv"
    lines = deals.read_text().splitlines()
    currencies = ["CurrencyIsoCode", "USD", "EUR", "USD", "USD"]
    deals.write_text("".join(f"{line},{c}\n" for line, c in zip(lines, currencies, strict=True)))
    result = run_import(mapping, src, tmp_path / "out")
    note = [n for n in result.provenance["notes"] if "CurrencyIsoCode" in n]
    assert len(note) == 1 and "deals.csv" in note[0] and "2 currencies" in note[0]
    assert "EUR: 1 row" in note[0] and "USD: 3 rows" in note[0]
    # One currency only: nothing to say.
    deals.write_text(
        "".join(f"{line},{c}\n" for line, c in zip(lines, ["Currency", *["USD"] * 4], strict=True))
    )
    result = run_import(mapping, src, tmp_path / "out2")
    assert not [n for n in result.provenance["notes"] if "currenc" in n.lower()]


def test_amounts_written_with_several_currency_signs_are_named_in_the_notes(export, tmp_path):
    # `currency: strip` drops `$` and `EUR` alike; amounts in two currencies must not pass unsaid.
    mapping, src = export
    edit(mapping, "amount: {from: value,", "amount: {from: value, number: {currency: strip},")
    edit(src / "deals.csv", "Won,900,", "Won,$900,")
    edit(src / "deals.csv", "Won,1200,", "Won,EUR 1200,")
    result = run_import(mapping, src, tmp_path / "out")
    note = [n for n in result.provenance["notes"] if "currencies" in n]
    assert len(note) == 1 and "deals.csv column value" in note[0]
    assert "$: 1 row" in note[0] and "EUR: 1 row" in note[0]
    # One sign only: nothing to say.
    edit(src / "deals.csv", "Won,EUR 1200,", "Won,$1200,")
    result = run_import(mapping, src, tmp_path / "out2")
    assert not [n for n in result.provenance["notes"] if "currencies" in n]


def test_amounts_with_a_european_thousands_separator_are_refused(export, tmp_path):
    # `€12.500` with the US format the mapping states parses as 12.5: 1000 times too small, silently.
    mapping, src = export
    edit(
        mapping,
        "amount: {from: value,",
        'amount: {from: value, number: {currency: strip, thousands: ",", decimal: "."},',
    )
    edit(src / "deals.csv", "Won,900,", "Won,€900,")
    edit(src / "deals.csv", "Lost,0,", "Lost,€1.000,")
    edit(src / "deals.csv", "Won,1200,", "Won,€12.500,")
    out = tmp_path / "out"
    msg = failure(mapping, src, out)
    assert "deals.csv, column value, rows 3, 4: value '€1.000', '€12.500' has exactly three digits" in msg
    assert "for opportunities.amount" in msg and "mine.yaml line" in msg
    assert '`number: {currency: strip, thousands: ".", decimal: ","}`' in msg
    assert_nothing_written(tmp_path, out)
    # Saying how the amounts are written imports them as meant.
    edit(mapping, 'thousands: ",", decimal: "."', 'thousands: ".", decimal: ","')
    run_import(mapping, src, out)
    assert pd.read_csv(out / "opportunities.csv")["amount"].tolist()[:3] == [900.0, 1000.0, 12500.0]


def price_lookup(mapping: Path, agg: str | None) -> None:
    """The export's list-price look-up, with `agg` and amounts written with a currency sign."""
    how = f"agg: {agg}, " if agg else ""
    edit(mapping, "column: price, normalize:", f"column: price, {how}normalize:")
    edit(
        mapping,
        "normalize: [no_spaces, lower]}}}",
        "normalize: [no_spaces, lower]}, number: {currency: strip}}}",
    )


@pytest.mark.parametrize("agg", ["max", "mean", None])
def test_looked_up_amounts_with_a_european_thousands_separator_are_refused(export, tmp_path, agg):
    # The list price of open deals comes from prices.csv; aggregated, `€4.821` would become 4.821 and
    # lose its text before any check. The look-up column as a whole shows how it is written, in its
    # own file's terms; the rows a deal looks up (GTX Pro, row 2) refuse it, and only they are named.
    mapping, src = export
    price_lookup(mapping, agg)
    (src / "prices.csv").write_text("item,price\nGTX Pro,€4.821\nMG Basic,€55\nHub,€1.250\n")
    out = tmp_path / "out"
    msg = failure(mapping, src, out)
    assert "prices.csv, column price, row 2: value '€4.821' has exactly three digits" in msg
    assert "1.250" not in msg  # Hub: no deal looks it up
    assert "(looked up for opportunities.amount)" in msg and "mine.yaml line 19" in msg
    assert '`number: {currency: strip, thousands: ".", decimal: ","}`' in msg
    assert "deals.csv" not in msg
    assert_nothing_written(tmp_path, out)
    # Saying how the prices are written imports them as meant.
    edit(mapping, "number: {currency: strip}", 'number: {currency: strip, thousands: ".", decimal: ","}')
    run_import(mapping, src, out)
    assert pd.read_csv(out / "opportunities.csv")["amount"].tolist()[3] == 4821.0


def unused_lookup_warning(mapping, src, out):
    """Import with a prices look-up whose bad rows no deal matches: the import goes on (GTX Pro's price
    is read), and the one look-up warning, kept in _import.json and printed at the end, says the rows
    were not imported and where the look-up is. Returns it."""
    result = run_import(mapping, src, out)
    assert pd.read_csv(out / "opportunities.csv")["amount"].tolist()[3] == 4821.0
    prov = json.loads((out / PROVENANCE_FILE).read_text())
    (warning,) = [w["message"] for w in prov["warnings"] if "look-up" in w["message"]]
    assert "no row of deals.csv matches these rows' item, so they were not imported" in warning
    assert "mine.yaml line 19" in warning
    assert warning in result.report.render()
    return warning


@pytest.mark.parametrize("agg", ["max", None])
def test_an_unused_look_up_row_with_a_european_thousands_separator_is_a_warning(export, tmp_path, agg):
    # `€1.250` on products no deal has (Hub, Dock) is as ambiguous, but nothing imported reads it: the
    # import goes on, and says so with the row, among the warnings printed and kept in _import.json.
    mapping, src = export
    price_lookup(mapping, agg)
    (src / "prices.csv").write_text("item,price\nGTX Pro,€4821\nMG Basic,€55\nHub,€1.250\nDock,€2.500\n")
    warning = unused_lookup_warning(mapping, src, tmp_path / "out")
    assert warning.startswith("2 unused row(s) of a look-up file: prices.csv, column price, rows 4, 5: ")
    assert "value '€1.250', '€2.500' has exactly three digits after the decimal mark '.'" in warning


@pytest.mark.parametrize("agg", ["max", "sum"])
def test_an_unparseable_look_up_row_refuses_only_when_a_key_matches_it(export, tmp_path, agg):
    # With `agg` the whole price column is parsed before aggregating; `call us` on a product no deal
    # has (Hub) is never imported, so the import goes on and says so among the warnings.
    mapping, src = export
    price_lookup(mapping, agg)
    (src / "prices.csv").write_text("item,price\nGTX Pro,€4821\nMG Basic,€55\nHub,call us\n")
    warning = unused_lookup_warning(mapping, src, tmp_path / "out")
    assert warning.startswith(
        "1 unused row(s) of a look-up file: prices.csv, column price, row 4: value 'call us' is not a number"
    )
    # A row a deal looks up (GTX Pro, row 3) still refuses the import, and is the only one named.
    (src / "prices.csv").write_text("item,price\nGTX Pro,€4821\nGTX Pro,n/a\nHub,call us\n")
    out = tmp_path / "out2"
    msg = failure(mapping, src, out)
    assert "prices.csv, column price, row 3: value 'n/a' is not a number" in msg
    assert "(looked up for opportunities.amount)" in msg and "mine.yaml line 19" in msg
    assert "call us" not in msg
    assert_nothing_written(tmp_path, out)


def test_a_look_up_key_with_two_values_refuses_only_when_a_key_matches_it(export, tmp_path):
    # Without `agg` a key with two prices has no answer; `Hub`/`hub` (one key once normalised) is a
    # product no deal has, so nothing imported reads it: the import goes on and says so.
    mapping, src = export
    (src / "prices.csv").write_text("item,price\nGTX Pro,4821\nMG Basic,55\nHub,10\nhub,12\n")
    warning = unused_lookup_warning(mapping, src, tmp_path / "out")
    assert warning.startswith(
        "2 unused row(s) of a look-up file: prices.csv, column item, rows 4, 5: value 'Hub', 'hub' "
        "is a look-up key with more than one value"
    )
    # The key a deal looks up (GTX Pro, rows 2 and 3) still refuses the import, and only it is named.
    (src / "prices.csv").write_text("item,price\nGTX Pro,4821\nGTXPro,4900\nHub,10\nhub,12\n")
    out = tmp_path / "out2"
    msg = failure(mapping, src, out)
    assert "prices.csv, column item, rows 2, 3: value 'GTX Pro', 'GTXPro' is a look-up key with more" in msg
    assert "(look-up in prices.csv for opportunities.amount)" in msg
    assert "hub" not in msg.lower()
    assert_nothing_written(tmp_path, out)


def test_decimals_with_three_places_import_when_the_mapping_says_there_is_no_grouping(export, tmp_path):
    mapping, src = export
    edit(src / "deals.csv", "Won,1200,", "Won,1.250,")
    assert "has exactly three digits" in failure(mapping, src, tmp_path / "out")  # the default format too
    edit(mapping, "amount: {from: value,", 'amount: {from: value, number: {thousands: ""},')
    run_import(mapping, src, tmp_path / "out")
    assert pd.read_csv(tmp_path / "out" / "opportunities.csv")["amount"].tolist()[2] == 1.25
    # A constant in the mapping is written by its author, not exported: it is taken as written.
    text = mapping.read_text()
    mapping.write_text(
        text[: text.index("      amount:")]
        + '      amount: {value: "2.500"}\n'
        + text[text.index("      is_closed:") :]
    )
    run_import(mapping, src, tmp_path / "out2")
    assert set(pd.read_csv(tmp_path / "out2" / "opportunities.csv")["amount"]) == {2.5}


def test_rows_of_owners_who_are_not_reps_are_named_when_left_out(export, tmp_path):
    # A new hire missing from the people file: their deals leave attainment, so say whose and where.
    mapping, src = export
    edit(mapping, "    source: deals.csv\n", "    source: deals.csv\n    only_known_reps: true\n")
    deals = src / "deals.csv"
    deals.write_text(deals.read_text() + "d5,Zed Ghost,2023-01-07,2023-02-01,Won,50,GTX Pro\n")
    result = run_import(mapping, src, tmp_path / "out")
    note = [n for n in result.provenance["notes"] if "only_known_reps" in n]
    assert len(note) == 1 and "1 row(s) of 1 owner(s)" in note[0]
    assert "zed-ghost (1 row)" in note[0] and "deals.csv row 6" in note[0]


def test_a_quota_policy_given_by_the_user_wins(export, tmp_path):
    mapping, src = export
    out = tmp_path / "out"
    run_import(mapping, src, out, quota_policy=QuotaPolicy(kind="fixed", amount=250.0, period="month"))
    quotas = pd.read_csv(out / "quotas.csv")
    assert set(quotas["quota_amount"]) == {250.0}
    assert quotas["period_start"].str.endswith("-01").all()
    assert json.loads((out / PROVENANCE_FILE).read_text())["quota_policy"]["period"] == "month"


def test_parquet_output_validates(export, tmp_path):
    mapping, src = export
    out = tmp_path / "out"
    run_import(mapping, src, out, fmt="parquet")
    assert (out / "opportunities.parquet").exists()
    assert validate_folder(out).ok


# ---------------------------------------------------------------- errors in the source's terms


def test_a_source_column_that_does_not_exist(export, tmp_path):
    mapping, src = export
    edit(mapping, "stage: stage", "stage: deal_stage")
    out = tmp_path / "out"
    msg = failure(mapping, src, out)
    assert "deals.csv, column deal_stage: does not exist" in msg
    assert "mine.yaml line 18 (tables.opportunities.columns.stage)" in msg
    assert "the file's columns are: id, owner, opened, closed, stage, value, item" in msg
    assert_nothing_written(tmp_path, out)


def test_missing_when_gives_a_lost_deal_the_default_amount(export, tmp_path):
    # d2 is Lost with value 0: nothing was booked, so its value is its list price, as for open deals.
    mapping, src = export
    when = "missing_when: {column: stage, in: [Lost]}"
    edit(mapping, "amount: {from: value, default:", f"amount: {{from: value, {when}, default:")
    # The value of such a row is not read: a placeholder there does not refuse the import.
    edit(src / "deals.csv", "Lost,0,GTX Pro", "Lost,n/a,GTX Pro")
    out = tmp_path / "out"
    result = run_import(mapping, src, out)
    assert result.report.ok
    opps = pd.read_csv(out / "opportunities.csv")
    assert opps["amount"].tolist() == [900.0, 4821.0, 1200.0, 4821.0]  # won deals keep their value
    notes = json.loads((out / PROVENANCE_FILE).read_text())["notes"]
    assert (
        "opportunities.amount: 1 of 4 rows of deals.csv have stage in [Lost], so their column value "
        "counts as no value (missing_when)" in notes
    )
    assert any(n.startswith("opportunities.amount: 2 of 4 rows of deals.csv had no value") for n in notes)
    # Its column is checked like a `where` column, in the source's and the mapping's terms.
    edit(mapping, "column: stage, in: [Lost]", "column: status, in: [Lost]")
    msg = failure(mapping, src, tmp_path / "out2")
    assert "deals.csv, column status: does not exist" in msg
    assert "used in `missing_when` of amount" in msg and "mine.yaml line 19" in msg


def test_a_column_renamed_to_its_label_is_suggested_over_a_similar_name(export, tmp_path):
    # A report export writes `Close Value` where the API export wrote `close_value`; the hint must
    # name that column, not the merely similar-looking `close_date`.
    mapping, src = export
    edit(mapping, "amount: {from: value,", "amount: {from: close_value,")
    edit(src / "deals.csv", "stage,value,item", "stage,Close Value,item")
    edit(mapping, "close_date: closed", "close_date: close_date")
    edit(src / "deals.csv", "opened,closed,", "opened,close_date,")
    out = tmp_path / "out"
    msg = failure(mapping, src, out)
    assert "deals.csv, column close_value: does not exist; did you mean 'Close Value'?" in msg
    assert_nothing_written(tmp_path, out)


def test_a_value_map_that_misses_a_stage(export, tmp_path):
    mapping, src = export
    edit(
        src / "deals.csv",
        "d3,Bo Chan,2023-02-20,2023-05-01,Won",
        "d3,Bo Chan,2023-02-20,2023-05-01,Negotiation",
    )
    out = tmp_path / "new" / "out"
    msg = failure(mapping, src, out)
    # Row 4 of the spreadsheet: the header is row 1. One problem for both columns that need it.
    assert "deals.csv, column stage, row 4: value 'Negotiation' is not in the value map" in msg
    assert "(for is_closed; for is_won)" in msg and "(1 problem(s))" in msg
    assert "mine.yaml line 20 (tables.opportunities.columns.is_closed)" in msg
    assert not (tmp_path / "new").exists()  # not even the parent folder of --out
    assert_nothing_written(tmp_path, out)


def test_a_date_that_does_not_parse(export, tmp_path):
    mapping, src = export
    edit(src / "deals.csv", "d2,Ann Lee,2023-01-06", "d2,Ann Lee,06/01/2023")
    edit(src / "people.csv", "Bo Chan,15/02/2023", "Bo Chan,2023-02-15")
    out = tmp_path / "out"
    msg = failure(mapping, src, out)
    assert "deals.csv, column opened, row 3: value '06/01/2023' is not a date in ISO 8601" in msg
    assert "people.csv, column started, row 3: value '2023-02-15' is not a date in format %d/%m/%Y" in msg
    assert_nothing_written(tmp_path, out)


def test_a_lookup_key_not_found(export, tmp_path):
    mapping, src = export
    edit(src / "teams.csv", "BO CHAN,Cy Boss", "Bob Chan,Cy Boss")
    msg = failure(mapping, src, tmp_path / "out")
    assert "people.csv, column name, row 3: value 'Bo Chan' is not found in the look-up file" in msg
    assert "teams.csv" in msg


def test_a_missing_source_file(export, tmp_path):
    mapping, src = export
    (src / "prices.csv").rename(src / "Prices.csv")
    msg = failure(mapping, src, tmp_path / "out")
    assert "look-up file prices.csv is not in" in msg and "did you mean Prices.csv?" in msg


def test_contract_violations_point_at_source_rows(export, tmp_path):
    mapping, src = export
    edit(src / "deals.csv", "d3,Bo Chan", "d1,Bo Chan")
    out = tmp_path / "out"
    msg = failure(mapping, src, out)
    assert "opportunities.opportunity_id: rule 'unique'" in msg
    assert "in the source: deals.csv, column id, rows 2, 4" in msg
    assert_nothing_written(tmp_path, out)


def test_contract_violations_of_the_tables_that_mapped_come_with_the_mapping_problems(
    export, tmp_path, monkeypatch
):
    # Fixing the missing column only to learn of the duplicate deal next run costs a round trip.
    mapping, src = export
    edit(src / "people.csv", "name,started", "name,start")  # reps: a mapping problem
    edit(src / "deals.csv", "Lost,0,", "Lost,-50,")  # opportunities: maps, but breaks the contract
    edit(src / "deals.csv", "d3,Bo Chan", "d1,Bo Chan")
    scratch = tmp_path / "system-tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    out = tmp_path / "out"
    msg = failure(mapping, src, out)
    assert "(3 problem(s)); nothing was written" in msg
    assert "people.csv, column started: does not exist; did you mean 'start'?" in msg
    assert "opportunities.opportunity_id: rule 'unique' broken by 2 rows" in msg
    assert "opportunities.amount: rule 'amount >= 0' broken by 1 row" in msg
    assert "in the source: deals.csv, column value, row 3" in msg
    # References to a table that did not map are not checked (every rep_id would be unknown).
    assert "exists in reps.rep_id" not in msg
    assert (
        "The tables that mapped (opportunities) were checked against the contract too; reps and the derived quotas will be"
        in msg
    )
    assert_nothing_written(tmp_path, out)
    assert list(scratch.iterdir()) == []  # the scratch folder of the check is gone too


def test_a_cell_that_did_not_map_is_not_reported_again_by_the_contract(export, tmp_path):
    mapping, src = export
    edit(src / "people.csv", "Ann Lee,01/01/2023", "Ann Lee,2023-01-01")  # a mapping problem in reps
    edit(src / "deals.csv", "d3,Bo Chan", "d1,Bo Chan")
    msg = failure(mapping, src, tmp_path / "out")
    assert "value '2023-01-01' is not a date in format %d/%m/%Y" in msg
    assert "reps.hire_date" not in msg  # the table with the bad cell is not checked: no 'not null' echo
    assert "opportunities.opportunity_id: rule 'unique'" in msg


def test_no_quotas_and_no_policy(export, tmp_path):
    mapping, src = export
    edit(mapping, "quota_policy: {kind: fixed, amount: 1000, period: quarter}\n", "")
    msg = failure(mapping, src, tmp_path / "out")
    assert "no quotas" in msg and "--quota-policy" in msg


def test_a_required_table_with_only_a_header_is_named(export, tmp_path):
    mapping, src = export
    (src / "people.csv").write_text("name,started\n")  # the reps' file, header only
    msg = failure(mapping, src, tmp_path / "out")
    assert msg.startswith("reps: no rows to import from people.csv (the file has only a header")
    assert "opportunities" not in msg  # not the deals' references to reps that are not there
    assert not (tmp_path / "out").exists()


def test_an_existing_out_folder_is_kept_unless_forced(export, tmp_path):
    mapping, src = export
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    msg = failure(mapping, src, out)
    assert "already exists" in msg and "--force" in msg
    assert (out / "mine.txt").read_text() == "keep me"
    (tmp_path / "a_file").write_text("")  # an empty file where the folder should go is named as a file
    msg = failure(mapping, src, tmp_path / "a_file")
    assert "is a file, not a folder" in msg and "--force" in msg
    run_import(mapping, src, tmp_path / "a_file", force=True)  # forced: the folder replaces the file
    assert (tmp_path / "a_file" / "reps.csv").is_file()
    assert not list(tmp_path.glob(".a_file.replaced-*"))  # and nothing of it is left beside
    # A failing forced import leaves the old folder as it was.
    edit(src / "deals.csv", "Won,900", "Maybe,900")
    with pytest.raises(ImportFailed):
        run_import(mapping, src, out, force=True)
    assert (out / "mine.txt").exists()
    edit(src / "deals.csv", "Maybe,900", "Won,900")
    run_import(mapping, src, out, force=True)
    assert not (out / "mine.txt").exists() and (out / "reps.csv").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# ---------------------------------------------------------------- Salesforce


def test_salesforce_fixture_imports_and_validates(tmp_path):
    out = tmp_path / "acme"
    result = run_import("salesforce", FIXTURES / "salesforce", out)
    assert result.report.ok and validate_folder(out).ok
    reps = pd.read_csv(out / "reps.csv", dtype=str).set_index("rep_id")
    # Opportunity owners only: not the VP, the managers or the admin.
    assert sorted(reps.index) == [f"0055e000001Rep{i}AA" for i in range(1, 7)]
    assert reps.loc["0055e000001Rep1AA", "hire_date"] == "2022-01-10"
    assert reps.loc["0055e000001Rep1AA", "manager_id"] == "0055e000001MgrNAA"
    assert reps.loc["0055e000001Rep6AA", "manager_id"] == "unassigned"
    assert reps.loc["0055e000001Rep4AA", "team"] == "Sales South"
    opps = pd.read_csv(out / "opportunities.csv", dtype=str).set_index("opportunity_id")
    assert len(opps) == 12
    assert opps.loc["0065e00000Op05AAA", "amount"] == "0.0"  # blank Amount
    assert opps.loc["0065e00000Op01AAA", ["is_closed", "is_won", "created_date"]].tolist() == [
        "true",
        "true",
        "2023-09-12",
    ]
    hist = pd.read_csv(out / "opportunity_history.csv", dtype=str)
    assert len(hist) == 9  # the row of an opportunity that is not in Opportunity.csv is left out
    acts = pd.read_csv(out / "activities.csv", dtype=str).set_index("activity_id")
    assert len(acts) == 16  # 10 tasks + 8 events, less the two owned by managers
    assert acts.loc["00T5e00000Tk02AAA", "type"] == "email"  # Type blank: TaskSubtype
    assert acts.loc["00T5e00000Tk04AAA", "occurred_at"] == "2023-11-02T10:00:00Z"  # no ActivityDate
    assert acts.loc["00U5e00000Ev02AAA", ["type", "duration_minutes"]].tolist() == ["demo", "45.0"]
    assert acts.loc["00U5e00000Ev03AAA", "occurred_at"] == "2023-12-05T00:00:00Z"  # all-day event
    quotas = pd.read_csv(out / "quotas.csv", dtype=str)
    assert len(quotas) == 9  # the manager's quota and the quantity quota are left out
    q = quotas[(quotas.rep_id == "0055e000001Rep1AA") & (quotas.period_start == "2024-01-01")]
    assert q[["period_end", "quota_amount"]].values.tolist() == [["2024-03-31", "65000.0"]]
    prov = json.loads((out / PROVENANCE_FILE).read_text())
    assert prov["quotas"] == "mapped" and prov["quota_policy"] is None
    assert any("only_known_reps" in n for n in prov["notes"])


def german_salesforce(tmp_path: Path) -> Path:
    """The Salesforce fixture with its late stages named in German (Verhandlung, Angebot)."""
    src = tmp_path / "sf"
    shutil.copytree(FIXTURES / "salesforce", src)
    for name in ("Opportunity.csv", "OpportunityHistory.csv"):
        text = (src / name).read_text().replace("Negotiation/Review", "Verhandlung")
        (src / name).write_text(text.replace("Proposal/Price Quote", "Angebot"))
    return src


def test_stage_names_the_late_stage_features_cannot_read_are_named_with_the_fix(tmp_path):
    # German stage names import cleanly, but every deal would count as never reaching a late stage.
    src = german_salesforce(tmp_path)
    result = run_import("salesforce", src, tmp_path / "a")
    assert result.report.ok
    (warning,) = [w for w in result.report.warnings if "stage names" in w]
    assert "opportunities.stage (from Opportunity.csv column StageName): 'Angebot' (1 row)" in warning
    assert "opportunity_history.stage (from OpportunityHistory.csv column StageName): " in warning
    assert "late_stage_reach_rate_180d" in warning and "(0)" in warning
    assert "`stage: {from: StageName, values: {'Angebot': Negotiation}, unmapped: keep}`" in warning
    # The fix it names: a value map on `stage` in both tables.
    mapping = tmp_path / "sf.yaml"
    stage = "stage: {from: StageName, values: {Verhandlung: Negotiation, Angebot: Proposal}, unmapped: keep}"
    mapping.write_text(
        (Path(__file__).resolve().parents[2] / "importer" / "mappings" / "salesforce.yaml")
        .read_text()
        .replace("stage: StageName", stage)
    )
    result = run_import(mapping, src, tmp_path / "b")
    assert not [w for w in result.report.warnings if "stage names" in w]
    assert set(pd.read_csv(tmp_path / "b" / "opportunities.csv")["stage"]) >= {"Negotiation", "Proposal"}
    # The shipped fixture's English names raise nothing.
    result = run_import("salesforce", FIXTURES / "salesforce", tmp_path / "c")
    assert not [w for w in result.report.warnings if "stage names" in w]


def test_the_stage_names_warning_is_kept_in_the_import_record(tmp_path):
    # The warning scrolls past once; whoever reads the scores later finds it in _import.json.
    result = run_import("salesforce", german_salesforce(tmp_path), tmp_path / "a")
    prov = json.loads((tmp_path / "a" / PROVENANCE_FILE).read_text())
    assert [w["message"] for w in prov["warnings"]] == result.report.warnings  # all of them, as printed
    (stages,) = [w for w in prov["warnings"] if "stage names" in w["message"]]
    assert stages["kind"] == "unrecognised_stage_names"
    assert stages["tables"] == [
        {
            "table": "opportunities",
            "column": "stage",
            "source_file": "Opportunity.csv",
            "source_column": "StageName",
            "names": [{"name": "Angebot", "rows": 1}, {"name": "Verhandlung", "rows": 1}],
        },
        {
            "table": "opportunity_history",
            "column": "stage",
            "source_file": "OpportunityHistory.csv",
            "source_column": "StageName",
            "names": [{"name": "Verhandlung", "rows": 2}],
        },
    ]
    assert stages["late_stage_in_data"] is False
    assert "late_stage_reach_rate_180d" in stages["features"]
    # English names: nothing about stages in the record.
    run_import("salesforce", FIXTURES / "salesforce", tmp_path / "b")
    prov = json.loads((tmp_path / "b" / PROVENANCE_FILE).read_text())
    assert not [w for w in prov["warnings"] if "kind" in w or "stage names" in w["message"]]


def test_salesforce_without_forecasting_quota_needs_a_policy(tmp_path):
    src = tmp_path / "sf"
    shutil.copytree(FIXTURES / "salesforce", src)
    for name in ("ForecastingQuota.csv", "Event.csv", "OpportunityHistory.csv"):
        (src / name).unlink()
    with pytest.raises(UserError, match="no quotas"):
        run_import("salesforce", src, tmp_path / "a")
    out = tmp_path / "b"
    policy = QuotaPolicy(kind="trailing_share", share=1.0, basis="team", fallback_amount=40000.0)
    result = run_import("salesforce", src, out, quota_policy=policy)
    assert result.report.ok
    assert not (out / "opportunity_history.csv").exists()
    assert len(pd.read_csv(out / "activities.csv")) == 9  # tasks only
    prov = json.loads((out / PROVENANCE_FILE).read_text())
    assert prov["quotas"] == "derived" and prov["quota_policy"]["basis"] == "team"
    assert any("OpportunityHistory.csv" in n and "skipped" in n for n in prov["notes"])


def test_salesforce_mapping_names_every_standard_field():
    m = load_mapping("salesforce")
    used = {
        (t, s.file, spec.source)
        for t, tm in m.tables.items()
        for s in tm.sources
        for spec in s.columns.values()
        if spec.source
    }
    for field in [
        ("reps", "User.csv", "Id"),
        ("reps", "User.csv", "ManagerId"),
        ("opportunities", "Opportunity.csv", "StageName"),
        ("opportunities", "Opportunity.csv", "IsWon"),
        ("opportunity_history", "OpportunityHistory.csv", "OpportunityId"),
        ("activities", "Task.csv", "WhatId"),
        ("activities", "Event.csv", "DurationInMinutes"),
        ("quotas", "ForecastingQuota.csv", "QuotaOwnerId"),
    ]:
        assert field in used, field


def test_mapping_files_are_reported_with_lines_before_any_source_is_read(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(textwrap.dedent(MAPPING).replace("stage: stage", "stage: {frm: stage}"))
    with pytest.raises(UserError, match=r"bad.yaml line 18 \(tables.opportunities.columns.stage.frm\)"):
        run_import(bad, tmp_path / "nowhere", tmp_path / "out")


def test_source_rows_are_the_files_line_numbers(export, tmp_path):
    """A blank line and a quoted cell spanning two lines: the bad value on line 7 is reported as row 7."""
    mapping, src = export
    (src / "deals.csv").write_text(
        "id,owner,opened,closed,stage,value,item\n"
        'd1,Ann Lee,2023-01-05,2023-02-10,Won,900,"GTX\nPro"\n'  # lines 2-3
        "\n"  # line 4
        "d2,Ann Lee,2023-01-06,2023-03-01,Lost,0,GTX Pro\n"
        "d3,Bo Chan,2023-02-20,2023-05-01,Won,1200,MG Basic\n"
        "d4,Bo Chan,2023-04-02,2023-06-30,Negotiation,,GTXPro\n"  # line 7
    )
    msg = failure(mapping, src, tmp_path / "out")
    assert "deals.csv, column stage, row 7: value 'Negotiation'" in msg


def test_contract_violations_use_the_source_row_numbers_only(export, tmp_path):
    """The validation part and the source part of one message name the same row: the source file's."""
    mapping, src = export
    edit(
        src / "deals.csv",
        "d3,Bo Chan,2023-02-20,2023-05-01,Won,1200",
        "d3,Bo Chan,2023-02-20,2023-05-01,Won,-500",
    )
    edit(
        src / "deals.csv",
        "id,owner,opened,closed,stage,value,item\n",
        "id,owner,opened,closed,stage,value,item\n\n",
    )
    msg = failure(mapping, src, tmp_path / "out")  # d3 is now on line 5 (line 2 is blank)
    assert "first: row 5 (amount=-500.0); in the source: deals.csv, column value, row 5" in msg


def test_a_source_saved_with_semicolons_points_to_the_delimiter_option(export, tmp_path):
    mapping, src = export
    (src / "teams.csv").write_text(TEAMS.replace(",", ";"))
    msg = failure(mapping, src, tmp_path / "out")
    assert "teams.csv: the header is one column separated by semicolons" in msg
    assert '`csv: {delimiter: ";"}`' in msg
    assert "did you mean" not in msg and "(1 problem(s))" in msg
