"""`repradar import`: exit 0 with a summary, or exit 2 with the problems and nothing written."""

from pathlib import Path

from typer.testing import CliRunner

from repradar.cli import app

runner = CliRunner()
SALESFORCE = Path(__file__).resolve().parents[1] / "fixtures" / "salesforce"


def output(result) -> str:
    text = result.output
    try:
        text += result.stderr
    except (ValueError, AttributeError):  # stderr mixed into output
        pass
    return text


def test_import_is_a_command():
    result = runner.invoke(app, ["--help"])
    assert "import" in result.output


def test_import_salesforce_prints_tables_notes_and_the_check(tmp_path):
    out = tmp_path / "acme"
    result = runner.invoke(
        app, ["import", "--mapping", "salesforce", "--source", str(SALESFORCE), "--out", str(out)]
    )
    assert result.exit_code == 0, output(result)
    text = output(result)
    assert "reps: 6 rows" in text and "activities: 16 rows" in text
    assert "OK: every rule of the data contract holds." in text
    assert f"Data contract check of {out}" in text  # not the temporary folder
    assert (out / "_import.json").exists()


def test_import_errors_exit_2_and_write_nothing(tmp_path):
    src = tmp_path / "sf"
    src.mkdir()
    for f in SALESFORCE.iterdir():
        (src / f.name).write_text(f.read_text())
    text = (src / "Opportunity.csv").read_text().replace(",2023-11-20,", ",20/11/2023,")
    (src / "Opportunity.csv").write_text(text)
    out = tmp_path / "acme"
    result = runner.invoke(
        app, ["import", "--mapping", "salesforce", "--source", str(src), "--out", str(out)]
    )
    assert result.exit_code == 2
    msg = output(result)
    assert "Opportunity.csv, column CloseDate, row 2: value '20/11/2023' is not a date" in msg
    assert "nothing was written" in msg
    assert not out.exists()


def test_bad_quota_policy_and_missing_mapping_exit_2(tmp_path):
    args = ["import", "--source", str(SALESFORCE), "--out", str(tmp_path / "o")]
    result = runner.invoke(app, [*args, "--mapping", "salesforce", "--quota-policy", "fixed,amount=-5"])
    assert result.exit_code == 2 and "amount must be a positive number" in output(result)
    result = runner.invoke(app, [*args, "--mapping", "hubspot"])
    assert result.exit_code == 2 and "shipped mapping" in output(result)
    assert not (tmp_path / "o").exists()


def test_an_amount_with_a_european_thousands_separator_exits_2_and_writes_nothing(tmp_path):
    src = tmp_path / "sf"
    src.mkdir()
    for f in SALESFORCE.iterdir():
        (src / f.name).write_text(f.read_text())
    lines = (src / "Opportunity.csv").read_text().splitlines()
    head = lines[0].split(",")
    amount = head.index("Amount")
    rows = []
    for line in lines[1:]:
        cells = line.split(",")
        if cells[amount]:
            cells[amount] = "12.500"
        rows.append(",".join(cells))
    (src / "Opportunity.csv").write_text("\n".join([lines[0], *rows]) + "\n")
    out = tmp_path / "acme"
    result = runner.invoke(
        app, ["import", "--mapping", "salesforce", "--source", str(src), "--out", str(out)]
    )
    assert result.exit_code == 2, output(result)
    msg = output(result)
    assert "Opportunity.csv, column Amount, rows 2," in msg and "has exactly three digits" in msg
    assert "for opportunities.amount" in msg and "nothing was written" in msg
    assert "Traceback" not in msg
    assert not out.exists()
