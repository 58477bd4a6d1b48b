"""Drivers in words: grouping, peers (with the organisation-wide fallback), sentences, and sums."""

import numpy as np
import pandas as pd
import pytest

from models.drivers import (
    ALT_SHARE,
    MIN_PEERS,
    enrich_feature_drivers,
    explain_frame,
    feature_sentence,
    group_contributions,
    group_drivers_row,
    peer_scope,
    peer_side,
    peer_values,
    reads_as_risk,
)

GROUPS = {
    "win_rate_180d": "conversion",
    "peer__win_rate_180d": "conversion",
    "calls_per_week_28d": "activity",
    "tenure_days": "tenure",
    "attainment_to_date": "attainment",
}
UNITS = {
    "win_rate_180d": "share",
    "calls_per_week_28d": "per_week",
    "tenure_days": "days",
    "attainment_to_date": "ratio",
}


def _frame():
    day = pd.Timestamp("2024-04-22")
    return pd.DataFrame(
        {
            "rep_id": ["a", "b", "c", "d"],
            "manager_id": ["m", "m", "m", "n"],
            "as_of": [day] * 4,
            "segment": ["Mid-Market", "Mid-Market", "Mid-Market", "Enterprise"],
            "win_rate_180d": [0.18, 0.31, 0.40, 0.25],
            "peer__win_rate_180d": [0.31, 0.31, 0.31, 0.25],
            "calls_per_week_28d": [10.0, 20.0, 30.0, np.nan],
            "tenure_days": [100.0, 400.0, 800.0, 50.0],
            "attainment_to_date": [0.1, 0.2, 0.3, 0.0],
        }
    )


def _contrib():
    return pd.DataFrame(
        {
            "win_rate_180d": [0.5, -0.1, -0.2, 0.0],
            "peer__win_rate_180d": [0.1, 0.0, 0.0, 0.0],
            "calls_per_week_28d": [0.3, 0.0, -0.1, 0.2],
            "tenure_days": [0.4, 0.0, 0.0, 0.9],
            "attainment_to_date": [-0.2, 0.1, 0.0, 0.3],
            "base_value": [-1.0] * 4,
        }
    )


def test_the_example_sentence_in_both_languages():
    en = feature_sentence("win_rate_180d", 0.18, 0.31, unit="share", lang="en", segment="Mid-Market")
    assert en == "Win rate over the last 180 days is 18%, against 31% for Mid-Market peers"
    zh = feature_sentence("win_rate_180d", 0.18, 0.31, unit="share", lang="zh-CN", segment="Mid-Market")
    assert zh == "近180天赢单率为18%，Mid-Market同类销售为31%"
    org = feature_sentence("win_rate_180d", 0.18, 0.31, unit="share", lang="en", scope="organisation")
    assert org.endswith("against 31% across the organisation")
    missing = feature_sentence("calls_per_week_28d", None, 12, unit="per_week", lang="en")
    assert missing == "Call rate (last 28 days): no data for this rep"


def test_a_rep_and_peers_that_differ_never_read_the_same():
    """'Average new deal is $11k, against $11k for SMB peers' was given as a reason raising the risk (10,502
    against 10,893): when the two read the same, one more digit tells them apart."""
    en = feature_sentence(
        "avg_new_deal_size_182d", 10501.6, 10893.0, unit="currency", lang="en", segment="SMB"
    )
    assert "is $10.5k, against $10.9k for SMB peers" in en, en
    zh = feature_sentence(
        "avg_new_deal_size_182d", 10501.6, 10893.0, unit="currency", lang="zh-CN", segment="SMB"
    )
    assert "$1.05万" in zh and "$1.09万" in zh, zh
    rate = feature_sentence("emails_per_week_91d", 4.31, 4.26, unit="per_week", lang="en", segment="SMB")
    assert "4.31 a week, against 4.26 a week" in rate, rate
    same = feature_sentence(
        "avg_new_deal_size_182d", 11000.0, 11000.0, unit="currency", lang="en", segment="SMB"
    )
    assert "is $11k, the same as for SMB peers" in same  # equal values say so
    apart = feature_sentence(
        "avg_new_deal_size_182d", 9000.0, 31000.0, unit="currency", lang="en", segment="SMB"
    )
    assert "is $9k, against $31k" in apart  # the usual precision when they differ


def test_group_contributions_sum_features_and_their_peer_columns():
    g = group_contributions(_contrib(), GROUPS)
    assert g.loc[0, "conversion"] == pytest.approx(0.6)
    assert g.loc[0, "activity"] == pytest.approx(0.3)
    assert "base_value" not in g.columns


def test_group_drivers_largest_first_with_context_flagged():
    f, c = _frame(), _contrib()
    peers = peer_values(f, ["win_rate_180d", "calls_per_week_28d", "tenure_days", "attainment_to_date"])
    d = group_drivers_row(f.loc[0], c.loc[0], peers.loc[0], groups=GROUPS, units=UNITS, scope="segment", k=5)
    assert [x["group"] for x in d] == ["conversion", "tenure", "activity"]  # attainment lowers the risk here
    top = d[0]
    assert top["feature"] == "win_rate_180d" and top["value"] == 0.18 and top["peer_value"] == 0.31
    assert top["actionable"] and top["text_en"].startswith("Win rate over the last 180 days is 18%")
    tenure = d[1]
    assert not tenure["actionable"] and "context" in tenure["text_en"] and "背景" in tenure["text_zh"]
    assert all(x["contribution"] > 0 for x in d)


def test_a_rep_alone_in_the_segment_is_compared_with_the_organisation():
    f = _frame()
    scope = peer_scope(f)
    assert scope.tolist() == ["segment", "segment", "segment", "organisation"]
    peers = peer_values(f, ["win_rate_180d", "calls_per_week_28d"], scope=scope)
    # the Enterprise rep's peer value is the median over everybody on that day, not their own value
    assert peers.loc[3, "win_rate_180d"] == pytest.approx(np.median([0.18, 0.31, 0.40, 0.25]))
    # without a peer__ column the segment median is computed over the frame
    assert peers.loc[0, "calls_per_week_28d"] == pytest.approx(20.0)
    ex = explain_frame(f, _contrib(), groups=GROUPS, units=UNITS, k=3)
    d = ex.loc[3, "driver_groups"]
    assert ex.loc[3, "peer_scope"] == "organisation"
    assert any("across the organisation" in x["text_en"] or "no data" in x["text_en"] for x in d)


def test_repeated_row_labels_are_matched_by_position():
    """Frames pooled from batches can repeat labels; each row is still explained as itself."""
    f, c = _frame(), _contrib()
    plain = explain_frame(f, c, groups=GROUPS, units=UNITS, k=3)
    labels = [0, 1, 0, 1]
    pooled = explain_frame(f.set_axis(labels), c.set_axis(labels), groups=GROUPS, units=UNITS, k=3)
    assert pooled.index.tolist() == labels
    assert pooled["driver_groups"].tolist() == plain["driver_groups"].tolist()
    assert pooled["peer_scope"].tolist() == plain["peer_scope"].tolist()
    assert pooled.attrs["peers"].to_numpy().tolist() == plain.attrs["peers"].to_numpy().tolist()


def test_no_segment_at_all_falls_back_to_the_organisation():
    f = _frame().drop(columns=["segment"])
    assert set(peer_scope(f)) == {"organisation"}
    ex = explain_frame(f, _contrib(), groups=GROUPS, units=UNITS)
    assert len(ex) == 4 and all(isinstance(v, list) for v in ex["driver_groups"])


def test_peer_side_follows_the_feature_s_good_side():
    assert peer_side(0.18, 0.31, "higher") == 1 and peer_side(0.40, 0.31, "higher") == -1
    assert peer_side(30, 21, "lower") == 1 and peer_side(12, 21, "lower") == -1
    assert peer_side(0.31, 0.31, "higher") == 0
    assert peer_side(900, 400, None) is None and peer_side(None, 0.3, "higher") is None
    # better than a weak segment, still below the organisation: a risk the sentence can show
    assert reads_as_risk(0.28, 0.25, 0.33, "higher", "segment")
    assert not reads_as_risk(0.28, 0.25, 0.20, "higher", "segment")
    assert not reads_as_risk(0.28, 0.25, 0.33, "higher", "organisation")  # only one figure is shown
    assert reads_as_risk(0.28, 0.25, 0.20, None, "segment")


def test_a_strength_is_never_shown_as_the_reason_without_saying_so():
    kw = {"unit": "days", "lang": "en", "segment": "Enterprise", "better": "lower"}
    # worse than the peers: the plain sentence, whatever the organisation's figure
    plain = feature_sentence("stage_days_91d", 25, 21, org=11, **kw)
    assert plain == "Time a deal spends in a stage (91 days) is 25 days, against 21 days for Enterprise peers"
    # better than the segment, worse than the organisation (which SHAP measures against): both shown
    both = feature_sentence("stage_days_91d", 19, 21, org=11, **kw)
    assert both.endswith("against 21 days for Enterprise peers and 11 days across the organisation")
    zh = feature_sentence("stage_days_91d", 19, 21, org=11, **{**kw, "lang": "zh-CN"})
    assert "11" in zh and "全公司" in zh and "Enterprise" in zh
    # better than both: said so, not left to read as the reason
    better = feature_sentence("stage_days_91d", 8, 21, org=11, **kw)
    assert better.startswith("Time a deal spends in a stage (91 days) is 8 days, against 21 days")
    assert "better than peers" in better
    assert "优于" in feature_sentence("stage_days_91d", 8, 21, org=11, **{**kw, "lang": "zh-CN"})
    # no good side (or a model that bundles none): the sentence as before
    assert "better" not in feature_sentence("stage_days_91d", 8, 21, org=11, **{**kw, "better": None})


def test_a_group_names_a_feature_where_the_rep_is_behind_when_one_pushes_enough():
    units = {"stage_days_91d": "days", "won_cycle_days_180d": "days"}
    groups = dict.fromkeys(units, "cycle")
    better = dict.fromkeys(units, "lower")
    row = pd.Series({"segment": "SMB", "stage_days_91d": 8.0, "won_cycle_days_180d": 70.0})
    peers = pd.Series({"stage_days_91d": 21.0, "won_cycle_days_180d": 50.0})
    org = pd.Series({"stage_days_91d": 11.0, "won_cycle_days_180d": 55.0})

    def driver(stage_push, cycle_push, **kw):
        c = pd.Series({"stage_days_91d": stage_push, "won_cycle_days_180d": cycle_push})
        return group_drivers_row(
            row, c, peers, groups=groups, units=units, scope="segment", k=1, org_row=org, **kw
        )[0]

    d = driver(0.30, 0.20, better=better)  # the strongest shows a strength; the next one pushes enough
    assert d["feature"] == "won_cycle_days_180d" and d["feature_contribution"] == 0.20
    assert d["contribution"] == pytest.approx(0.50) and "better" not in d["text_en"]
    d = driver(0.30, 0.30 * ALT_SHARE - 0.01, better=better)  # too weak to stand for the group
    assert d["feature"] == "stage_days_91d" and "better than peers" in d["text_en"]
    assert driver(0.30, 0.20)["feature"] == "stage_days_91d"  # no good sides known: the strongest


def test_enriched_feature_drivers_keep_the_contract_keys():
    f, c = _frame(), _contrib()
    drivers = [
        [{"feature": "peer__win_rate_180d", "group": "conversion", "value": 0.31, "contribution": 0.1}]
    ] + [[]] * 3
    ex = explain_frame(f, c, groups=GROUPS, units=UNITS, drivers=drivers)
    d = ex.loc[0, "drivers"][0]
    assert {"feature", "group", "value", "contribution"} <= set(d)
    assert d["value"] == 0.31 and d["peer_value"] == 0.31  # the contract's value is kept as it was
    assert "18%" in d["text_en"] and "31%" in d["text_en"]


def test_explanations_add_up_to_the_raw_score():
    from tests.models.tiny_model import shared_tiny_model, tiny_frame

    model = shared_tiny_model()
    rows = tiny_frame(200, seed=3)
    contrib = model.contributions(rows)
    raw = model.predict_frame(rows)["raw_score"].to_numpy()
    names = model.feature_names
    np.testing.assert_allclose(contrib[names].sum(axis=1) + contrib["base_value"], raw, rtol=0, atol=1e-6)
    groups = group_contributions(contrib, model.spec_.groups)
    np.testing.assert_allclose(groups.sum(axis=1) + contrib["base_value"], raw, rtol=0, atol=1e-6)


def test_a_driver_level_with_its_peers_says_so_instead_of_against_the_same_figure():
    """Maven: "Share of the period elapsed is 49%, against 49% for Mid-Market peers" was a reason raising
    the risk; next to an identical figure a manager reads it as nonsense, so it says the peers share it."""
    day = pd.Timestamp("2017-11-15")
    f = pd.DataFrame(
        {
            "as_of": [day] * 3,
            "segment": ["Mid-Market"] * 3,
            "elapsed_share": [0.49] * 3,
            "pace_gap": [-0.2, -0.2, 0.1],
        }
    )
    c = pd.DataFrame({"elapsed_share": [0.3] * 3, "pace_gap": [0.2, 0.2, -0.1], "base_value": [-1.0] * 3})
    groups = {"elapsed_share": "calendar", "pace_gap": "attainment"}
    units = {"elapsed_share": "share", "pace_gap": "ratio"}
    ex = explain_frame(f, c, groups=groups, units=units)
    d = {x["feature"]: x for x in ex.loc[0, "driver_groups"]}
    en, zh = d["elapsed_share"]["text_en"], d["elapsed_share"]["text_zh"]
    assert en == (
        "Share of the period elapsed is 49%, the same as for Mid-Market peers: it weighs on their risk too "
        "(context, not an intervention)"
    ), en
    assert "与Mid-Market同类销售相同" in zh and "背景" in zh, zh
    assert "the same as for Mid-Market peers" in d["pace_gap"]["text_en"]  # -20 points, median -20 points
    assert d["elapsed_share"]["value"] == d["elapsed_share"]["peer_value"] == 0.49  # numbers kept
    org = feature_sentence("elapsed_share", 0.49, 0.49, unit="share", lang="en", scope="organisation")
    assert org.endswith("the same as across the organisation: it weighs on the other reps' risk too")


def test_a_strength_too_small_to_show_is_still_said_to_be_one():
    """11.1345 against 11.1339 reads '11.13' twice even with one more digit: the rep is better, so the
    sentence says so rather than 'the same as for peers' (the end-to-end check on simulated data)."""
    en = feature_sentence(
        "new_deals_per_100_activities_182d",
        11.1345,
        11.1339,
        unit="count",
        lang="en",
        segment="SMB",
        better="higher",
    )
    assert "better than peers" in en and "the same as" not in en, en


# -- explain_frame against a per-row reference ---------------------------------------------------
EDGE_UNITS = {
    "win_rate_180d": "share",
    "calls_per_week_28d": "per_week",
    "quota_amount": "currency",
    "stage_days_91d": "days",
    "pace_gap": "points",
    "eng__pulse_score_mean_28d": "score",
    "tenure_days": "days",
    "not_in_frame": "share",
}
EDGE_GROUPS = {
    "win_rate_180d": "conversion",
    "calls_per_week_28d": "activity",
    "quota_amount": "quota",
    "stage_days_91d": "cycle",
    "pace_gap": "attainment",
    "eng__pulse_score_mean_28d": "wellbeing",
    "tenure_days": "tenure",
    "not_in_frame": "pipeline",
}
EDGE_BETTER = {"win_rate_180d": "higher", "calls_per_week_28d": "higher", "stage_days_91d": "lower"}


def _edge_batch(seed: int = 0, n: int = 24):
    """Two as-of days; a segment of one rep on a day and reps without a segment (organisation peers);
    NaN features, engagement missing for everybody, a feature the frame lacks (its drivers' values 0.0
    and -0.0, which read "0%" and "-0%"), a `peer__` column, -0.0 in it and in contributions. Values are
    multiples of 1/8 so that every median is exact whichever way it is computed."""
    rng = np.random.default_rng(seed)

    def eighths(size, top=16):
        return rng.integers(0, top, size) / 8.0

    seg = np.array(["SMB", "Mid-Market"] * (n // 2), dtype=object)
    seg[[3, 10]] = None
    seg[5] = "Enterprise"  # alone in its segment
    f = pd.DataFrame(
        {
            "rep_id": pd.array([f"r{i:02d}" for i in range(n)], dtype="string"),
            "as_of": pd.to_datetime(["2024-04-22", "2024-05-06"])[np.arange(n) % 2],
            "segment": pd.array(seg, dtype="string"),
            "win_rate_180d": eighths(n) / 2,
            "calls_per_week_28d": eighths(n) * 10,
            "quota_amount": eighths(n) * 40_000,
            "stage_days_91d": eighths(n) * 8,
            "pace_gap": eighths(n, 8) - 0.5,
            "eng__pulse_score_mean_28d": np.nan,
            "tenure_days": rng.integers(0, 900, n),
        }
    )
    f["peer__win_rate_180d"] = eighths(n) / 2
    for c in ("win_rate_180d", "calls_per_week_28d", "stage_days_91d"):
        f.loc[rng.random(n) < 0.2, c] = np.nan
    f.loc[[1, 4], "peer__win_rate_180d"] = -0.0
    cols = [*EDGE_UNITS, "peer__win_rate_180d"]
    c = pd.DataFrame(rng.normal(0, 0.3, (n, len(cols))), columns=cols)
    c.loc[[0, 2], "win_rate_180d"] = -0.0
    c["not_in_frame"] = c["not_in_frame"].abs() + 0.3  # a driver of every row
    c["base_value"] = -1.0
    drivers = [
        [
            {
                "feature": k,
                "group": EDGE_GROUPS[k.removeprefix("peer__")],
                "value": -0.0 if i % 4 >= 2 else 0.0,
                "contribution": v,
            }
            for k, v in c.loc[i, cols].items()
            if v > 0.25
        ]
        for i in range(n)
    ]
    # rows labelled out of order, contributions in yet another order: rows are matched by label
    labels = rng.permutation(n) + 100
    return f.set_axis(labels), c.set_axis(labels).sample(frac=1, random_state=seed), drivers


def _reference_peers(f: pd.DataFrame, features: list[str]):
    """The peers of each row, one row at a time, as the module docstring defines them."""
    peers, org, scope = {}, {}, {}
    for idx, row in f.iterrows():
        day = f[f["as_of"] == row["as_of"]]
        mates = day[day["segment"] == row["segment"]] if pd.notna(row["segment"]) else day.iloc[:0]
        scope[idx] = "segment" if len(mates) >= MIN_PEERS else "organisation"
        org[idx] = {x: day[x].astype(float).median() for x in features}
        if scope[idx] == "segment":
            peers[idx] = {
                x: float(row["peer__" + x]) if "peer__" + x in f else mates[x].astype(float).median()
                for x in features
            }
        else:
            peers[idx] = org[idx]
    return peers, org, scope


def _reference_explanation(f, c, drivers, **kw):
    """explain_frame's columns for each row through the per-row public functions, on Series."""
    features = sorted(x for x in EDGE_UNITS if x in f)
    peers, org, scope = _reference_peers(f, features)
    grouped, enriched = [], []
    for i, idx in enumerate(f.index):
        prow, orow = pd.Series(peers[idx], dtype=float), pd.Series(org[idx], dtype=float)
        common = {"units": EDGE_UNITS, "scope": scope[idx], "org_row": orow, "better": EDGE_BETTER, **kw}
        grouped.append(group_drivers_row(f.loc[idx], c.loc[idx], prow, groups=EDGE_GROUPS, k=3, **common))
        enriched.append(enrich_feature_drivers(drivers[i], f.loc[idx], prow, **common))
    return grouped, enriched, list(scope.values()), pd.DataFrame.from_dict(peers, orient="index")[features]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_explain_frame_equals_the_per_row_reference_on_every_row(seed):
    """The batch explanation (columns built once, sentences shared between rows) says for each row exactly
    what the per-row functions say with that row's own figures and peers, to the last digit and -0.0."""
    f, c, drivers = _edge_batch(seed)
    ex = explain_frame(f, c, groups=EDGE_GROUPS, units=EDGE_UNITS, k=3, drivers=drivers, better=EDGE_BETTER)
    grouped, enriched, scope, peers = _reference_explanation(f, c, drivers)
    assert ex.index.equals(f.index) and ex["peer_scope"].tolist() == scope
    assert {"segment", "organisation"} <= set(scope)
    assert repr(ex["driver_groups"].tolist()) == repr(grouped)
    assert repr(ex["drivers"].tolist()) == repr(enriched)
    pd.testing.assert_frame_equal(ex.attrs["peers"], peers, check_exact=True, check_names=False)
    # pooled batches repeat labels: the same explanation, matched by position
    labels = np.arange(len(f)) % 5
    pooled = explain_frame(
        f.set_axis(labels),
        c.loc[f.index].set_axis(labels),
        groups=EDGE_GROUPS,
        units=EDGE_UNITS,
        k=3,
        drivers=drivers,
        better=EDGE_BETTER,
    )
    assert repr(pooled["driver_groups"].tolist()) == repr(grouped)
    assert repr(pooled["drivers"].tolist()) == repr(enriched)


def test_group_sums_follow_the_frame_s_rows_when_contributions_come_in_another_order():
    """Rows are matched by label: the `contrib__<group>` sums the playbook reads (quota share, rules) were
    taken in the contributions' order, so each rep got another rep's sums."""
    f, c, _ = _edge_batch(0)
    assert not c.index.equals(f.index)
    ex = explain_frame(f, c, groups=EDGE_GROUPS, units=EDGE_UNITS, k=3)
    sums = group_contributions(c.loc[f.index], EDGE_GROUPS)
    for g in sums.columns:
        np.testing.assert_array_equal(ex[f"contrib__{g}"].to_numpy(), sums[g].to_numpy(), err_msg=g)
