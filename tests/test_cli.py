"""The console script: every stage is a sub-command, and user errors exit 2."""

from typer.testing import CliRunner

from repradar.cli import app

runner = CliRunner()


def test_help_lists_every_stage():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("simulate", "validate", "build-training-set"):
        assert command in result.output


def test_missing_data_folder_is_a_user_error(tmp_path):
    result = runner.invoke(app, ["validate", "--data", str(tmp_path / "nope")])
    assert result.exit_code == 2
