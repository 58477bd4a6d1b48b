import math

import numpy as np
import pytest

from models.gate import Figures, figures_for, gate_decision, measure_checks, promote, render_figures
from repradar.errors import UserError
from repradar.settings import Settings


def F(auc, brier, v="2"):
    return Figures(v, auc, brier, 1000, 300)


def test_first_model_always_passes():
    ok, reasons = gate_decision(F(0.6, 0.3), None, 0.01, 0.005)
    assert ok and "first" in reasons[0]


@pytest.mark.parametrize(
    "challenger,champion,ok",
    [
        (F(0.80, 0.150), F(0.80, 0.150, "1"), True),  # equal
        (F(0.791, 0.154), F(0.80, 0.150, "1"), True),  # within both tolerances
        (F(0.789, 0.150), F(0.80, 0.150, "1"), False),  # AUC too low
        (F(0.85, 0.156), F(0.80, 0.150, "1"), False),  # Brier too high
        (F(math.nan, 0.1), F(0.80, 0.150, "1"), False),  # undefined AUC never passes
    ],
)
def test_tolerances(challenger, champion, ok):
    assert gate_decision(challenger, champion, 0.01, 0.005)[0] is ok


def E(auc, brier, early, v="2"):
    return Figures(v, auc, brier, 1000, 300, auc_early=early, n_early_rows=500, early_share=0.5)


@pytest.mark.parametrize(
    "challenger,champion,ok",
    [
        (E(0.90, 0.10, 0.80), E(0.90, 0.10, 0.80, "1"), True),
        (E(0.90, 0.10, 0.791), E(0.90, 0.10, 0.80, "1"), True),  # within the AUC tolerance
        # as good over the whole period, worse in its first half: refused
        (E(0.91, 0.09, 0.78), E(0.90, 0.10, 0.80, "1"), False),
        (E(0.90, 0.10, math.nan), E(0.90, 0.10, 0.80, "1"), False),  # undefined never passes
        (E(0.90, 0.10, math.nan), F(0.90, 0.10, "1"), True),  # a champion record without it: not compared
    ],
)
def test_early_period_auc(challenger, champion, ok):
    passes, reasons = gate_decision(challenger, champion, 0.01, 0.005)
    assert passes is ok
    compared = not math.isnan(champion.auc_early)
    assert [m for m, _ in measure_checks(challenger, champion, 0.01, 0.005)] == ["auc", "brier"] + (
        ["auc_early"] if compared else []
    )
    assert any("first 50% of the period" in r for r in reasons) is compared
    if not ok:
        assert "first 50% of the period" in reasons[-1] and "is below" in reasons[-1]


def test_figures_for_measures_the_early_rows_only():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    elapsed = rng.uniform(0, 1, 400)
    # risk is informative late in the period and noise early
    risk = np.where(elapsed > 0.5, y * 0.6 + rng.uniform(0, 0.4, 400), rng.uniform(0, 1, 400))
    f = figures_for("3", y, risk, elapsed, 0.5)
    early = elapsed <= 0.5
    assert f.n_early_rows == early.sum() and f.early_share == 0.5
    assert f.auc_early == pytest.approx(roc_auc_score(y[early], risk[early]))
    assert f.auc_early < 0.65 < f.auc
    plain = figures_for("3", y, risk)  # no elapsed share: nothing early
    assert math.isnan(plain.auc_early) and plain.n_early_rows == 0
    one_outcome = figures_for(
        "3", np.r_[np.zeros(10), np.ones(10)], np.arange(20.0), np.r_[np.zeros(10), np.ones(10)], 0.5
    )
    assert math.isnan(one_outcome.auc_early) and one_outcome.n_early_rows == 10


def test_figures_side_by_side():
    text = render_figures(F(0.81, 0.14), F(0.83, 0.13, "1"))
    assert "challenger v2" in text and "champion v1" in text
    assert "0.8100" in text and "0.8300" in text and "0.1300" in text
    assert "first" not in text  # records without an early-period AUC show no such row
    text = render_figures(E(0.81, 0.14, 0.71), E(0.83, 0.13, 0.74, "1"))
    assert "ROC-AUC, first 50% of the period" in text and "0.7100" in text and "0.7400" in text


def test_force_needs_a_reason(tmp_path):
    with pytest.raises(UserError, match="--reason"):
        promote(Settings(home=tmp_path), force=True, reason="  ")


def test_nothing_trained_yet_says_what_to_do(tmp_path):
    with pytest.raises(UserError, match="repradar train"):
        promote(Settings(home=tmp_path))


def test_a_versions_currency_is_never_a_usd_it_only_defaulted_to():
    """A version registered before the `currency` tag showed USD when nothing said otherwise; its bundled
    spec is read then (only then), and a gate record of USD, the default a spec without the field loads
    with, proves nothing."""
    from models.gate import version_currency

    def spec(code):
        def read():
            read.calls += 1
            return code

        read.calls = 0
        return read

    sek = [{"currencies": {"challenger": "SEK"}}]
    usd = [{"currencies": {"challenger": "USD"}}]
    for tags, history, bundled, expected, reads in (
        ({"currency": "EUR"}, usd, spec("JPY"), "EUR", 0),
        ({}, sek, spec("JPY"), "SEK", 0),
        ({}, [], spec("JPY"), "JPY", 1),
        ({}, usd, spec("USD"), "USD", 1),
        ({}, usd, spec(None), None, 1),
        ({}, [], spec(None), None, 1),
    ):
        assert version_currency(tags, history, bundled) == expected, (tags, history, expected)
        assert bundled.calls == reads
