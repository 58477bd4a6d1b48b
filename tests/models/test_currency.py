"""The ISO 4217 list in models/currency.py against the official one (pycountry's, from Debian's
iso-codes; a test-only dependency)."""

from __future__ import annotations

import pytest

from models.currency import ISO_4217, WITHDRAWN, normalise_currency

# Official codes nobody's quotas are in: precious metals, bond units, the SDR, supranational units of
# account, the testing and "no currency" codes.
NOT_MONEY = {"XAD", "XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XDR", "XPD", "XPT", "XSU", "XTS", "XUA", "XXX"}


def test_our_codes_are_the_official_current_codes():
    import pycountry  # a dev dependency (`uv add --dev`): installed by `make setup`

    official = {c.alpha_3 for c in pycountry.currencies}
    assert NOT_MONEY <= official  # what is left out is left out by name
    assert sorted(ISO_4217 - (official - NOT_MONEY)) == []  # withdrawn or never official
    assert sorted((official - NOT_MONEY) - ISO_4217) == []  # official and missing
    assert not set(WITHDRAWN) & official and set(WITHDRAWN.values()) <= ISO_4217


@pytest.mark.parametrize(("code", "replaced_by"), [("BGN", "EUR"), ("ang", "XCG"), ("ZWL", "ZWG")])
def test_a_withdrawn_code_is_refused_with_what_replaced_it(code, replaced_by):
    with pytest.raises(ValueError, match=f"{code.upper()} is no longer .* replaced by {replaced_by}"):
        normalise_currency(code)
