"""Words for people in the report: feature values in their units, amounts in the model's currency."""

from models.loading import LoadedModel
from reporting.labels import feature_value
from reporting.modelinfo import ModelInfo


def test_the_report_writes_amounts_in_the_currency_of_the_model_that_scored():
    from tests.models.tiny_model import shared_tiny_model

    info = ModelInfo("m", "2", None, LoadedModel("m", "2", shared_tiny_model(currency="GBP")))
    assert info.currency == "GBP"
    assert feature_value("open_pipeline_in_period", 220_400.0, currency=info.currency) == "£220k"
    assert feature_value("open_pipeline_in_period", 220_400.0, "zh-CN", currency="CNY") == "¥22万"
    assert feature_value("win_rate_180d", 0.18, currency="GBP") == "18%"
    assert feature_value("open_pipeline_in_period", None, currency="GBP") == "-"
    # the default currency, and that of every model trained before the spec recorded one
    assert ModelInfo("m", "1", None, LoadedModel("m", "1", shared_tiny_model())).currency == "USD"
