"""Mapping files are checked on load, and every schema problem names its line and key."""

import datetime as dt
import textwrap

import pytest

from importer import shipped_mappings
from importer.mapping import MappingFileError, load_mapping, parse_quota_policy
from repradar.errors import UserError

GOOD = """\
version: 1
tables:
  reps:
    source: people.csv
    columns:
      rep_id: {from: name, id: slug}
      manager_id: boss
      hire_date: {from: started, format: "%d/%m/%Y"}
    attributes:
      gender: sex
  opportunities:
    source: deals.csv
    columns:
      opportunity_id: id
      rep_id: {from: owner, id: slug}
      created_date: opened
      close_date: closed
      stage: stage
      amount: {from: value, default: 0}
      is_closed:
        from: stage
        values: {Won: true, Lost: true, Open: false, Yes: false, No: false}
      is_won: {from: stage, values: {Won: true, Lost: false, Open: false, Yes: false, No: false}}
quota_policy: {kind: fixed, amount: 5000, period: month}
"""


def write(tmp_path, text, name="m.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def problems(tmp_path, text) -> list[str]:
    with pytest.raises(MappingFileError) as exc:
        load_mapping(write(tmp_path, text))
    return exc.value.problems


def test_a_good_mapping_loads(tmp_path):
    m = load_mapping(write(tmp_path, GOOD))
    reps = m.tables["reps"].sources[0]
    assert reps.file == "people.csv"
    assert reps.columns["rep_id"].source == "name" and reps.columns["rep_id"].id == "slug"
    assert reps.columns["hire_date"].format == "%d/%m/%Y"
    assert reps.attributes["gender"].source == "sex"
    opp = m.tables["opportunities"].sources[0].columns
    assert opp["amount"].default.has_value and opp["amount"].default.value == 0
    # YAML 1.1 would read Yes/No as booleans; stage names must stay text.
    assert set(opp["is_closed"].values) == {"Won", "Lost", "Open", "Yes", "No"}
    assert opp["is_closed"].values["Won"] is True
    assert m.quota_policy.kind == "fixed" and m.quota_policy.period == "month"
    assert m.files() == ["people.csv", "deals.csv"]


@pytest.mark.parametrize("name", ["salesforce", "maven_crm"])
def test_shipped_mappings_load(name):
    assert name in shipped_mappings()
    m = load_mapping(name)
    assert {"reps", "opportunities"} <= set(m.tables)
    assert m.notes, "shipped mappings document their assumptions"


def test_unknown_key_names_line_key_and_suggestion(tmp_path):
    text = GOOD.replace("manager_id: boss", "manager_id: {form: boss}")
    [p] = problems(tmp_path, text)
    assert "m.yaml line 7" in p
    assert "tables.reps.columns.manager_id.form" in p
    assert "unknown key 'form'" in p and "did you mean 'from'" in p


def test_unknown_table_and_column(tmp_path):
    text = GOOD.replace("  opportunities:\n", "  opportunites:\n")
    ps = problems(tmp_path, text)
    assert any(
        "unknown contract table 'opportunites'" in p and "did you mean 'opportunities'" in p for p in ps
    )
    assert any("`opportunities` is required but not mapped" in p for p in ps)
    text = GOOD.replace("manager_id: boss", "manger_id: boss")
    ps = problems(tmp_path, text)
    assert any("line 7" in p and "'manger_id' is not a column of the contract table reps" in p for p in ps)
    assert any("required column reps.manager_id is not mapped" in p for p in ps)


def test_malformed_specs(tmp_path):
    text = GOOD.replace("manager_id: boss", "manager_id: {from: boss, value: x}")
    assert any("exactly one of from / value / lookup" in p for p in problems(tmp_path, text))
    text = GOOD.replace("stage: stage\n", "stage: {from: stage, format: '%Y'}\n")
    assert any("format is for date and timestamp columns" in p for p in problems(tmp_path, text))
    text = GOOD.replace("amount: {from: value, default: 0}", "amount: {value: lots}")
    assert any("'lots'" in p and "is not a number" in p for p in problems(tmp_path, text))
    text = GOOD.replace("manager_id: boss", "manager_id: [boss]")
    assert any("must be a source column name" in p for p in problems(tmp_path, text))
    text = GOOD.replace("rep_id: {from: name, id: slug}", "rep_id: {from: name, id: uuid}")
    assert any("id must be one of slug, hash" in p for p in problems(tmp_path, text))


def test_lookup_and_where_entries_are_checked(tmp_path):
    text = GOOD.replace(
        "manager_id: boss", "manager_id: {lookup: {file: teams.csv, column: manager, normalise: [lower]}}"
    )
    ps = problems(tmp_path, text)
    assert any("unknown key 'normalise'" in p and "did you mean 'normalize'" in p for p in ps)
    assert any("needs `agg`" in p for p in ps)
    text = GOOD.replace("    source: deals.csv\n", "    source: deals.csv\n    where: [{column: x}]\n")
    assert any("exactly one of in / not_in / in_file" in p for p in problems(tmp_path, text))


def test_missing_when_takes_where_conditions(tmp_path):
    # A lost deal's 0 is no amount: `missing_when` blanks it so that `default` applies.
    amount = "amount: {from: value, default: 0}"
    ok = GOOD.replace(amount, "amount: {from: value, missing_when: {column: stage, in: [Lost]}, default: 0}")
    spec = load_mapping(write(tmp_path, ok)).tables["opportunities"].sources[0].columns["amount"]
    [cond] = spec.missing_when
    assert (cond.column, cond.isin, cond.not_in) == ("stage", ("Lost",), None)
    assert cond.describe() == "stage in [Lost]"
    two = "[{column: stage, not_in: [Won, Open]}, {column: id, in_file: {file: lost.csv, column: id}}]"
    m = load_mapping(write(tmp_path, GOOD.replace(amount, f"amount: {{from: value, missing_when: {two}}}")))
    spec = m.tables["opportunities"].sources[0].columns["amount"]
    assert [w.describe() for w in spec.missing_when] == [
        "stage not in [Won, Open]",
        "id in lost.csv column id",
    ]
    assert "lost.csv" in m.files()  # its file is read (and checked) like a `where` file


def test_a_broken_missing_when_is_refused_with_file_line_and_path(tmp_path):
    amount = "amount: {from: value, default: 0}"
    line = next(i for i, row in enumerate(GOOD.splitlines(), 1) if amount in row)
    bad = [
        ("{column: stage, is: [Lost]}", "unknown key 'is' in a missing_when condition", ".0.is"),
        ("{column: stage}", "a missing_when condition needs exactly one of in / not_in / in_file", ""),
        ("{in: [Lost]}", "missing_when.column must be a non-empty text", ".0.column"),
        ("Lost", "missing_when must be a list of conditions {column, in | not_in | in_file}", ""),
    ]
    for cond, says, where in bad:
        found = problems(tmp_path, GOOD.replace(amount, f"amount: {{from: value, missing_when: {cond}}}"))
        assert any(
            says in p and f"m.yaml line {line}" in p and f"columns.amount.missing_when{where}" in p
            for p in found
        ), (cond, found)
    typo = problems(tmp_path, GOOD.replace(amount, "amount: {from: value, missing_wen: {column: stage}}"))
    assert any("unknown key 'missing_wen'" in p and "did you mean 'missing_when'" in p for p in typo)


def test_attributes_only_on_reps_and_not_contract_names(tmp_path):
    text = GOOD.replace("      gender: sex", "      hire_date: sex")
    assert any("is a contract column of reps" in p for p in problems(tmp_path, text))


def test_not_yaml_and_not_a_mapping(tmp_path):
    ps = problems(tmp_path, "tables: {reps: [\n")
    assert "not valid YAML" in ps[0] and "line" in ps[0]
    ps = problems(tmp_path, "- a\n- b\n")
    assert "must be a YAML mapping" in ps[0]


def test_quota_policy_errors(tmp_path):
    text = GOOD.replace("{kind: fixed, amount: 5000, period: month}", "{kind: fixed, period: week}")
    ps = problems(tmp_path, text)
    assert any("period must be one of quarter, month" in p for p in ps)
    assert any("needs `amount`" in p for p in ps)


def test_a_mapping_saved_in_a_windows_code_page_is_a_user_error_naming_line_and_byte(tmp_path):
    # Notepad's "ANSI": a German stage name in cp1252 is not UTF-8.
    text = GOOD.replace("Won: true, Lost: true", "Gewonnen: true, Verloren: true, Ausgewählt: false")
    path = tmp_path / "m.yaml"
    path.write_bytes(text.encode("cp1252"))
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "Ausgew" in row)
    with pytest.raises(UserError) as exc:
        load_mapping(path)
    msg = str(exc.value)
    assert "m.yaml" in msg and "not UTF-8" in msg and f"line {line}" in msg and "0xe4" in msg
    # With a byte-order mark (Notepad's "UTF-8 with BOM") it loads.
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    assert load_mapping(path).tables


def test_missing_mapping_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist.*salesforce"):
        load_mapping(tmp_path / "nope.yaml")


def test_parse_quota_policy_forms():
    p = parse_quota_policy("fixed,amount=100000,period=quarter")
    assert (p.kind, p.amount, p.period) == ("fixed", 100000.0, "quarter")
    p = parse_quota_policy(
        "trailing_share,share=0.9,basis=team,lookback=2,fallback_amount=5e4,from=2017-04-01"
    )
    assert (p.kind, p.share, p.basis, p.lookback, p.fallback_amount) == (
        "trailing_share",
        0.9,
        "team",
        2,
        5e4,
    )
    assert p.start == dt.date(2017, 4, 1)
    p = parse_quota_policy("{kind: fixed, amount: 7, period: month}")
    assert p.amount == 7.0 and p.period == "month"
    with pytest.raises(UserError, match="unknown key 'amout'"):
        parse_quota_policy("fixed,amout=1")
    with pytest.raises(UserError, match="kind must be one of"):
        parse_quota_policy("generous")


def test_number_format_option_is_checked(tmp_path):
    amount = "amount: {from: value, default: 0}"
    ok = GOOD.replace(
        amount, 'amount: {from: value, number: {currency: strip, thousands: ",", decimal: "."}}'
    )
    spec = load_mapping(write(tmp_path, ok)).tables["opportunities"].sources[0].columns["amount"]
    assert (spec.number.currency, spec.number.thousands, spec.number.decimal) == ("strip", ",", ".")
    bad = [
        ('{from: value, number: {thousands: ",", decimal: ","}}', "they must differ"),
        ('{from: value, number: {thousands: "_"}}', "thousands must be one of"),
        ('{from: value, number: {decimal: ";"}}', 'decimal must be "." or ","'),
        ("{from: value, number: {currency: keep}}", "currency must be one of strip, none"),
        ('{from: value, number: {thousand: ","}}', "did you mean 'thousands'?"),
        ("{from: value, number: strip}", "number must be a mapping"),
    ]
    for spec_text, says in bad:
        found = problems(tmp_path, GOOD.replace(amount, f"amount: {spec_text}"))
        assert any(says in p and "columns.amount.number" in p for p in found), (spec_text, found)
    text = GOOD.replace("stage: stage\n", 'stage: {from: stage, number: {thousands: ","}}\n')
    assert any("number is for number columns" in p for p in problems(tmp_path, text))


def test_normalize_on_a_value_map_is_checked(tmp_path):
    values = "values: {Won: true, Lost: true, Open: false, Yes: false, No: false}"
    ok = GOOD.replace(values, f"normalize: [strip, lower]\n        {values}")
    spec = load_mapping(write(tmp_path, ok)).tables["opportunities"].sources[0].columns["is_closed"]
    assert spec.normalize == ("strip", "lower")
    text = GOOD.replace(values, f"normalize: [upper]\n        {values}")
    assert any("a normalize step must be one of" in p for p in problems(tmp_path, text))
    text = GOOD.replace(values, "normalize: lower\n        values: {Won: true, WON: false}")
    assert any("'Won' and 'WON' are the same after normalize" in p for p in problems(tmp_path, text))
    text = GOOD.replace("manager_id: boss", "manager_id: {from: boss, normalize: [lower]}")
    assert any("only makes sense with `values`" in p for p in problems(tmp_path, text))
