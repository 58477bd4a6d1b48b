"""Settings read from REPRADAR_ variables: a value that does not read is refused with what to write."""

import pytest
from typer.testing import CliRunner

from repradar.settings import Settings, get_settings


def test_the_currency_is_an_iso_4217_code_usd_unless_set(tmp_path):
    assert Settings(home=tmp_path).currency == "USD"
    assert Settings(home=tmp_path, currency=" eur").currency == "EUR"
    with pytest.raises(ValueError, match="did you mean EUR"):
        Settings(home=tmp_path, currency="EUO")


@pytest.mark.parametrize("value", ["EURO", "€", "XYZ"])
def test_a_currency_that_does_not_read_stops_train_with_a_user_error(tmp_path, value):
    from repradar.cli import app

    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(
            app,
            ["train", "--data", str(tmp_path)],
            env={"REPRADAR_HOME": str(tmp_path / "home"), "REPRADAR_CURRENCY": value},
        )
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2, result.output
    assert "REPRADAR_CURRENCY" in result.stderr and "ISO 4217" in result.stderr
    assert "Traceback" not in result.stderr


def test_job_reports_are_languages_repradar_writes_each_once(tmp_path, monkeypatch):
    assert Settings(home=tmp_path).job_report_languages == []
    monkeypatch.setenv("REPRADAR_JOB_REPORTS", " zh-CN, en,zh-CN ")
    assert Settings(home=tmp_path).job_report_languages == ["zh-CN", "en"]
    monkeypatch.setenv("REPRADAR_JOB_REPORTS", "en,fr")
    with pytest.raises(ValueError, match="unknown language 'fr': give en or zh-CN"):
        Settings(home=tmp_path)
