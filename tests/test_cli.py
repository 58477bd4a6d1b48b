"""The console script: every stage is a sub-command, and user errors exit 2."""

from typer.testing import CliRunner

from repradar.cli import app

runner = CliRunner()


def test_help_lists_every_stage():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("simulate", "validate", "build-training-set"):
        assert command in result.output


def test_version_is_the_projects():
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output == f"repradar {project['version']}\n"


def test_missing_data_folder_is_a_user_error(tmp_path):
    result = runner.invoke(app, ["validate", "--data", str(tmp_path / "nope")])
    assert result.exit_code == 2
