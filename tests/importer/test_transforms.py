"""The pure cell transforms behind mappings, on tiny frames."""

import pandas as pd
import pytest

from importer.transforms import (
    NumberFormat,
    derive_ids,
    end_of_period,
    fill_empty,
    hash_id,
    is_empty,
    lookup,
    map_values,
    normalize_keys,
    other_convention,
    parse_kind,
    slug,
    where_mask,
)


def s(*values):
    return pd.Series(list(values), dtype=object)


# ---------------------------------------------------------------- ids


def test_slug_is_ascii_lower_dashed():
    assert slug("Moses Frase") == "moses-frase"
    assert slug("  Zoë  O'Brien-Smith ") == "zoe-o-brien-smith"
    assert slug("Anna   Snelling") == slug("anna snelling")


def test_hash_id_is_stable_and_ignores_case_and_spacing():
    assert hash_id("Moses Frase") == hash_id("moses  frase")
    assert hash_id("Moses Frase") != hash_id("Moses Frasé")
    assert hash_id("x").startswith("h") and len(hash_id("x")) == 12


def test_derive_ids_keeps_empty_cells_empty():
    out, errors = derive_ids(s("Ann Lee", None, "Bo Chan", "Ann Lee"), "slug")
    assert out.tolist() == ["ann-lee", None, "bo-chan", "ann-lee"]
    assert errors == []


def test_derive_ids_reports_two_names_with_one_slug():
    out, errors = derive_ids(s("Anne-Marie Roy", "Anne Marie Roy", "Bo"), "slug")
    assert len(errors) == 1
    assert "same id" in errors[0].message
    assert errors[0].index == [0, 1]


def test_derive_ids_reports_names_without_letters_for_slug_but_not_hash():
    _, errors = derive_ids(s("王伟"), "slug")
    assert errors and "hash" in errors[0].message
    out, errors = derive_ids(s("王伟"), "hash")
    assert errors == [] and out[0].startswith("h")


# ---------------------------------------------------------------- value maps


def test_map_values_maps_every_value_and_reports_the_missing_ones():
    stages = s("Won", "Lost", "Engaging", None, "Negotiation", "Negotiation")
    out, errors = map_values(stages, {"Won": True, "Lost": True, "Engaging": False})
    assert out.tolist()[:4] == [True, True, False, None]
    assert len(errors) == 1
    assert errors[0].index == [4, 5]
    assert errors[0].values == ["Negotiation", "Negotiation"]


def test_map_values_keep_and_empty():
    out, errors = map_values(s("Call", "Webinar"), {"Call": "call"}, unmapped="keep")
    assert out.tolist() == ["call", "Webinar"] and errors == []
    out, errors = map_values(s("Call", "Webinar"), {"Call": "call"}, unmapped="empty")
    assert out.tolist() == ["call", None] and errors == []


def test_map_values_compares_keys_as_text():
    out, errors = map_values(s("1", "0"), {1: "yes", 0: "no"})
    assert out.tolist() == ["yes", "no"] and errors == []


# ---------------------------------------------------------------- look-ups


PRODUCTS = pd.DataFrame({"product": ["GTX Pro", "MG Special"], "sales_price": ["4821", "55"]})


def test_lookup_with_normalisation_matches_gtxpro_to_gtx_pro():
    out, errors = lookup(
        s("GTXPro", "mg special", None), PRODUCTS, "product", "sales_price", normalize=["no_spaces", "lower"]
    )
    assert out.tolist() == ["4821", "55", None]
    assert errors == []


def test_lookup_without_normalisation_reports_the_key_not_found():
    out, errors = lookup(s("GTXPro", "GTX Pro"), PRODUCTS, "product", "sales_price")
    assert out.tolist() == [None, "4821"]
    assert errors[0].index == [0] and errors[0].values == ["GTXPro"]
    _, errors = lookup(s("GTXPro"), PRODUCTS, "product", "sales_price", missing="empty")
    assert errors == []


def test_lookup_reports_ambiguous_keys_in_the_lookup_file():
    teams = pd.DataFrame({"agent": ["Ann", "Ann", "Bo"], "manager": ["X", "Y", "Z"]})
    _, errors = lookup(s("Ann"), teams, "agent", "manager")
    assert errors[0].in_lookup and errors[0].index == [0, 1]
    # The same value twice is not ambiguous.
    teams = pd.DataFrame({"agent": ["Ann", "Ann"], "manager": ["X", "X"]})
    out, errors = lookup(s("Ann"), teams, "agent", "manager")
    assert out.tolist() == ["X"] and errors == []


def test_lookup_aggregates_by_key_and_over_the_whole_column():
    deals = pd.DataFrame(
        {"agent": ["Ann", "Ann", "Bo"], "day": pd.to_datetime(["2017-03-02", "2017-01-05", "2017-02-01"])}
    )
    out, _ = lookup(s("Ann", "Bo", "Cy"), deals, "agent", "day", agg="min", missing="empty")
    assert out.tolist() == [pd.Timestamp("2017-01-05"), pd.Timestamp("2017-02-01"), None]
    out, _ = lookup(None, deals, None, "day", agg="max", index=pd.RangeIndex(2))
    assert out.tolist() == [pd.Timestamp("2017-03-02")] * 2


def test_lookup_of_dates_with_no_key_found_leaves_every_row_empty():
    # A header-only pipeline file, or agents none of whose names appear in it: the typed (date)
    # look-up column must not make the empty result fail to build.
    empty = pd.DataFrame({"agent": pd.Series([], dtype=object), "day": pd.to_datetime([])})
    out, errors = lookup(s("Ann", "Bo"), empty, "agent", "day", agg="min", missing="empty")
    assert out.tolist() == [None, None] and errors == []
    deals = pd.DataFrame({"agent": ["Cy"], "day": pd.to_datetime(["2017-03-02"])})
    out, errors = lookup(s("Ann", "Bo"), deals, "agent", "day", agg="min", missing="empty")
    assert out.tolist() == [None, None] and errors == []


def test_normalize_keys_steps():
    assert normalize_keys(s(" GTX  Pro "), ["strip"]).tolist() == ["GTX  Pro"]
    assert normalize_keys(s(" GTX  Pro "), ["no_spaces", "lower"]).tolist() == ["gtxpro"]
    assert normalize_keys(s("GTX-Pro!"), ["alnum"]).tolist() == ["GTXPro"]


# ---------------------------------------------------------------- parsing


def test_parse_dates_iso_and_with_a_format():
    out, errors = parse_kind(s("2017-03-01", None, "2017-3-1"), "date")
    assert out[0] == pd.Timestamp("2017-03-01") and pd.isna(out[1]) and pd.isna(out[2])
    assert errors[0].index == [2] and "ISO 8601" in errors[0].message
    out, errors = parse_kind(s("03/01/2017"), "date", "%m/%d/%Y")
    assert out[0] == pd.Timestamp("2017-03-01") and errors == []


def test_a_date_from_a_timestamp_is_the_day_its_own_clock_showed():
    # One rule with `repradar validate`: the local calendar day, not the UTC day.
    out, errors = parse_kind(s("2023-01-15T23:30:00.000+0000", "2023-01-15T23:30:00.000-0200"), "date")
    assert errors == []
    assert out.tolist() == [pd.Timestamp("2023-01-15"), pd.Timestamp("2023-01-15")]
    assert out.dt.tz is None
    berlin = pd.Series(pd.to_datetime(["2023-10-01 00:00"]).tz_localize("Europe/Berlin"))
    for cells in (berlin, berlin.astype(object)):  # a tz-aware Parquet column, and as the importer reads it
        out, errors = parse_kind(cells, "date")
        assert errors == [] and out.tolist() == [pd.Timestamp("2023-10-01")]
    out, _ = parse_kind(s("01.10.2023 00:00 +0200"), "date", "%d.%m.%Y %H:%M %z")
    assert out.tolist() == [pd.Timestamp("2023-10-01")]


def test_an_empty_text_column_parses_to_every_kind():
    # A header-only export file: no cells, but the column's dtype is text.
    empty = pd.Series([], dtype="str")
    for kind in ("string", "number", "boolean", "date", "timestamp"):
        out, errors = parse_kind(empty, kind)
        assert len(out) == 0 and errors == []
    assert str(parse_kind(empty, "date")[0].dtype).startswith("datetime64")


def test_formatted_amounts_with_a_number_format():
    us = NumberFormat(currency="strip", thousands=",", decimal=".")
    out, errors = parse_kind(s("$12,595.96", "€100,000", " -$3.50 ", "USD 7", None), "number", number=us)
    assert errors == [] and out.tolist()[:4] == [12595.96, 100000.0, -3.5, 7.0] and pd.isna(out[4])
    eu = NumberFormat(currency="strip", thousands=".", decimal=",")
    out, errors = parse_kind(s("1.234,56", "12 €", "0,5"), "number", number=eu)
    assert errors == [] and out.tolist() == [1234.56, 12.0, 0.5]
    # A decimal comma read with thousands "," must not become 15: groups are 3 digits.
    out, errors = parse_kind(s("1,5", "12,34,567", "$1.2.3"), "number", number=us)
    assert out.isna().all() and errors[0].index == [0, 1, 2] and "thousands ','" in errors[0].message


def test_a_european_thousands_separator_read_as_a_decimal_point_is_caught():
    # `€100.000` parses as 100.0 with decimal "."; the column, not the cell, tells it is grouping.
    us = NumberFormat(currency="strip", thousands=",", decimal=".")
    cells = s("€100.000", "€950", "€12.500", None)
    out, errors = parse_kind(cells, "number", number=us)
    assert errors == [] and out.tolist()[:3] == [100.0, 950.0, 12.5]
    found = other_convention(cells, out, us)
    assert found is not None and found.index == [0, 2] and found.values == ["€100.000", "€12.500"]
    assert '`number: {currency: strip, thousands: ".", decimal: ","}`' in found.message
    assert "'100.000' is probably 100000, not 100 as read" in found.message
    # The default format too, and the mirror case: a decimal comma before three digits.
    plain = s("100.000", "7")
    assert other_convention(plain, parse_kind(plain, "number")[0], None).index == [0]
    eu = NumberFormat(thousands=".", decimal=",")
    comma = s("1,500", "2,250")
    assert (
        'thousands: ",", decimal: "."'
        in other_convention(comma, parse_kind(comma, "number", number=eu)[0], eu).message
    )


def test_decimals_that_are_decimals_are_not_questioned():
    us = NumberFormat(currency="strip", thousands=",", decimal=".")
    for cells in (s("$12,595.96", "$100.000"), s("0.125", "0.500"), s("1234.567"), s("1,200", "950")):
        assert other_convention(cells, parse_kind(cells, "number", number=us)[0], us) is None
    said = NumberFormat(thousands="", ungrouped=True)  # `thousands: ""` written out
    cells = s("1.500", "2.250")
    assert other_convention(cells, parse_kind(cells, "number", number=said)[0], said) is None


def test_a_formatted_amount_without_a_number_format_says_how_to_read_it():
    out, errors = parse_kind(s("$12,595.96"), "number")
    assert pd.isna(out[0]) and "`number`" in errors[0].message and "currency: strip" in errors[0].message


def test_value_maps_with_normalize_ignore_case_and_spaces():
    out, errors = map_values(
        s("CLOSEDWON", " Closed Lost ", "closedwon", "Open"),
        {"closedwon": True, "Closed Lost": False},
        normalize=("strip", "lower"),
    )
    assert out.tolist()[:3] == [True, False, True]
    assert errors[0].index == [3] and "after normalising" in errors[0].message
    _, errors = map_values(s("CLOSEDWON"), {"closedwon": True})  # exact without normalize
    assert errors and "normalize" in errors[0].message


def test_parse_timestamps_are_utc():
    out, errors = parse_kind(s("2023-01-15T10:00:00.000+0100", "2023-01-15", "nope"), "timestamp")
    assert out[0] == pd.Timestamp("2023-01-15T09:00:00Z")
    assert out[1] == pd.Timestamp("2023-01-15T00:00:00Z")
    assert errors[0].index == [2]


def test_parse_numbers_and_booleans():
    out, errors = parse_kind(s("1054", " 2.5 ", None, "12k"), "number")
    assert out.tolist()[:2] == [1054.0, 2.5] and pd.isna(out[2])
    assert errors[0].index == [3]
    out, errors = parse_kind(s("true", "FALSE", "1", True, "maybe"), "boolean")
    assert out.tolist()[:4] == [True, False, True, True]
    assert errors[0].values == ["maybe"]


def test_end_of_period():
    starts = pd.Series(pd.to_datetime(["2024-01-01", "2024-02-01", "2023-10-01"]))
    assert end_of_period(starts, "quarter").tolist() == list(
        pd.to_datetime(["2024-03-31", "2024-04-30", "2023-12-31"])
    )
    assert end_of_period(starts, "month")[1] == pd.Timestamp("2024-02-29")


def test_fill_empty_counts_what_it_filled():
    out, n = fill_empty(pd.Series([1.0, None, None]), pd.Series([9.0, 8.0, None]))
    assert out.tolist()[:2] == [1.0, 8.0] and pd.isna(out[2]) and n == 1


def test_is_empty_and_where_mask():
    assert is_empty(s("a", " ", None, 3)).tolist() == [False, True, True, False]
    frame = pd.DataFrame({"stage": ["Won", "Lost", "Open", None]})
    assert where_mask(frame, "stage", isin=["Won", "Lost"]).tolist() == [True, True, False, False]
    assert where_mask(frame, "stage", not_in=["Won"]).tolist() == [False, True, True, True]
    assert where_mask(frame, "stage", in_values=["Open", None]).tolist() == [False, False, True, False]


@pytest.mark.parametrize("kind", ["string", "number", "boolean", "date", "timestamp"])
def test_every_kind_keeps_empty_cells_empty_without_errors(kind):
    out, errors = parse_kind(s(None, "", "  "), kind)
    assert out.isna().all() and errors == []
