"""The organisation's currency: ISO 4217 codes and how an amount's currency is written in each language.

Amounts are never converted (docs/import.md, "One currency"): the currency is a label of the data,
set by REPRADAR_CURRENCY and recorded in the model's feature spec at training. Pure data and
functions; models/i18n.py `format_amount` is the one place that writes an amount.
"""

from __future__ import annotations

import difflib

DEFAULT_CURRENCY = "USD"

# ISO 4217's current currency codes, as pycountry 26.2.16 (Debian's iso-codes) lists them, without
# precious metals, bond units, SDRs, the units of account of supranational institutions (XAD, XSU, XUA)
# and the testing and "no currency" codes (XAU, XBA, XDR, XTS, XXX, ...): nobody's quotas are in those.
# tests/models/test_currency.py checks it against that list (pycountry is a test-only dependency).
ISO_4217 = frozenset(
    """
    AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BHD BIF BMD BND BOB BOV BRL BSD BTN BWP
    BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR
    FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES
    KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR
    MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF
    SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS
    UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
    """.split()
)
# Codes withdrawn from the list lately, and what replaced them: said when one is given.
WITHDRAWN = {"ANG": "XCG", "BGN": "EUR", "ZWL": "ZWG"}

# Symbols written before the amount ("€40k", "€4万"), as in Unicode CLDR's English data, except that
# USD stays "$" (what RepRadar always wrote). A code missing here is written as itself and a space
# ("SEK 40k", "CHF 40k": CLDR has no symbol for these either).
SYMBOLS = {
    "USD": "$",
    "EUR": "€",
    "GBP": "£",
    "JPY": "¥",
    "CNY": "CN¥",
    "CAD": "CA$",
    "AUD": "A$",
    "NZD": "NZ$",
    "HKD": "HK$",
    "INR": "₹",
    "KRW": "₩",
    "BRL": "R$",
    "MXN": "MX$",
}
# Where a language writes a symbol differently (CLDR zh): in Chinese "¥" is the yuan, as on every
# Chinese invoice and banking app, so the yen is "JP¥"; in English "¥" is the yen and the yuan "CN¥".
SYMBOLS_BY_LANG = {"zh-CN": {"CNY": "¥", "JPY": "JP¥"}}


def normalise_currency(code: str) -> str:
    """An ISO 4217 code in capitals ("eur" -> "EUR"); ValueError saying what to write otherwise."""
    value = str(code).strip().upper()
    if len(value) != 3 or not value.isascii() or not value.isalpha():
        raise ValueError(
            f"{code!r} is not an ISO 4217 currency code: give three letters such as USD, EUR, GBP or CNY"
        )
    if value in WITHDRAWN:
        raise ValueError(
            f"{value} is no longer an ISO 4217 currency code: it was withdrawn and replaced by {WITHDRAWN[value]}"
        )
    if value not in ISO_4217:
        near = difflib.get_close_matches(value, sorted(ISO_4217), n=3, cutoff=0.6)
        hint = f" (did you mean {' or '.join(near)}?)" if near else ""
        raise ValueError(f"{value} is not an ISO 4217 currency code{hint}")
    return value


def currency_prefix(currency: str, lang: str) -> str:
    """What goes before an amount's number: "€", "¥", or the code and a space ("SEK ")."""
    code = str(currency).strip().upper()
    symbol = SYMBOLS_BY_LANG.get(lang, {}).get(code) or SYMBOLS.get(code)
    return symbol if symbol else f"{code} "


def scores_currency(code) -> str:
    """The ISO code a scores row's amounts are in: its `currency` field (the model's); USD for scores
    written before they carried one, as their own sentences were."""
    return code if isinstance(code, str) and code else DEFAULT_CURRENCY
