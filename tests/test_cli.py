"""The console script: every stage is a sub-command, and user errors exit 2."""

import pytest
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


def _modules_after(code: str) -> set[str]:
    """The top-level packages a fresh interpreter has loaded once `code` has run (even if it exits)."""
    import subprocess
    import sys

    probe = (
        "import atexit, sys\n"
        "atexit.register(lambda: print(' '.join(sorted({m.split('.')[0] for m in sys.modules})), file=sys.stderr))\n"
        + code
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    return set(done.stderr.strip().splitlines()[-1].split())


def test_importing_the_cli_loads_neither_pandera_nor_pyspark():
    loaded = _modules_after("import repradar.cli")
    assert "repradar" in loaded and not {"pandera", "pyspark"} & loaded


def test_a_command_on_the_default_engine_does_not_load_pyspark():
    # pandera imports pyspark.pandas whenever PySpark is installed, about 2 s of every command that
    # validates data; validation uses only pandera's pandas API, and the default engine is DuckDB.
    from pathlib import Path

    valid = Path(__file__).parent / "fixtures" / "contract" / "valid"
    loaded = _modules_after(
        f"import sys\nfrom repradar.cli import main\nsys.argv = ['repradar', 'validate', '--data', {str(valid)!r}]\nmain()"
    )
    assert "pandera" in loaded and "features" in loaded  # it did validate
    assert "pyspark" not in loaded


def test_an_internal_error_says_what_failed_even_when_the_exception_s_repr_is_empty(monkeypatch, capsys):
    # a feature SQL naming a column the Spark staging lacks printed only "internal error: AnalysisException()"
    from pyspark.errors import AnalysisException

    import repradar.cli as cli

    def spark_fails():
        raise AnalysisException(message="[UNRESOLVED_COLUMN] `a`.`on_deal` cannot be resolved.")

    monkeypatch.setattr(cli, "app", spark_fails)
    with pytest.raises(SystemExit) as stop:
        cli.main()
    assert stop.value.code == 1
    err = capsys.readouterr().err
    assert "internal error: AnalysisException: [UNRESOLVED_COLUMN] `a`.`on_deal` cannot be resolved." in err


@pytest.mark.parametrize("typed", ["", " ", "v3", "0", "-1", "1.5", "99999999999999999999"])
def test_promote_refuses_a_version_that_is_not_a_number_before_recording_anything(tmp_path, typed):
    # '' was looked up in the registry and reported as "model 'repradar-risk' has no version ;"
    from repradar.settings import get_settings

    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(
            app, ["promote", "--version", typed], env={"REPRADAR_HOME": str(tmp_path)}
        )
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert f"--version {typed!r} is not a version number" in result.stderr
    assert "has no version" not in result.stderr
    assert list(tmp_path.iterdir()) == []  # not even the audit trail's request
