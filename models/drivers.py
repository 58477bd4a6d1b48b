"""Drivers in words: SHAP contributions grouped by registry group, compared with peers, as sentences.

Pure functions on frames. A row's *group drivers* are the registry groups whose contributions
(summed over the group's features and their `peer__` columns) raise its risk, largest first; each
names the group's strongest feature, the rep's value, the peers' value and a sentence in English
and Simplified Chinese. Non-actionable groups (attainment, tenure, calendar, unknown metrics) are
listed as context (`actionable: false`) and never become interventions.

Peers: the `peer__<feature>` column (segment median at the same as-of day) when the rep's segment
has at least `min_peers` reps on that day in the frame; otherwise (a rep alone in the segment, or no
segment) the median of the feature over every rep of the frame on the same as-of day, with
`peer_scope = "organisation"`. Features without a `peer__` column use the same medians computed over
the frame (the scoring batch holds every active rep on the day, so that is the segment).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from models import i18n
from models.currency import DEFAULT_CURRENCY
from models.spec import PEER_PREFIX, base_feature

CONTEXT_GROUPS_DEFAULT = ("attainment", "tenure", "calendar", "other_engagement", "other")
MIN_PEERS = 2  # reps of a segment on the day (the rep included) for a segment comparison
# A group's driver may name a feature other than its strongest (where the rep is better than peers)
# only if that feature pushes at least this share of the strongest one's contribution.
ALT_SHARE = 0.5


def group_actionable(group: str) -> bool:
    """Whether a manager can act on a group (feature registry; unknown groups are context)."""
    try:
        from features.registry import GROUPS
    except ImportError:  # pragma: no cover - the registry ships with the package
        return group not in CONTEXT_GROUPS_DEFAULT
    g = GROUPS.get(group)
    return bool(g.actionable) if g is not None else False


def _clean(v) -> float | None:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) or math.isinf(v) else v


# -- peers -------------------------------------------------------------------------------------
def peer_scope(frame: pd.DataFrame, *, min_peers: int = MIN_PEERS) -> pd.Series:
    """`segment` where the rep's segment has >= min_peers reps on the same as-of day, else `organisation`."""
    if "segment" not in frame or "as_of" not in frame or frame.empty:
        return pd.Series("organisation", index=frame.index, dtype="object")
    seg = frame["segment"].astype("string")
    counts = frame.groupby([seg.fillna("\x00"), frame["as_of"]], sort=False)["as_of"].transform("size")
    ok = seg.notna() & (counts >= min_peers)
    return pd.Series(np.where(ok, "segment", "organisation"), index=frame.index, dtype="object")


def peer_values(
    frame: pd.DataFrame, features: list[str], *, min_peers: int = MIN_PEERS, scope: pd.Series | None = None
) -> pd.DataFrame:
    """Peer value of each feature for each row (columns = features, index as frame); NaN when unknown."""
    scope = peer_scope(frame, min_peers=min_peers) if scope is None else scope
    features = list(dict.fromkeys(features))
    if not features:
        return pd.DataFrame(index=frame.index)
    by_seg = np.asarray(scope == "segment")[:, None]
    present = [f for f in features if f in frame]
    # All features in one frame, one grouping each for the day and the segment: a grouping per feature
    # cost more than the rest of the explanation. The medians are the same, column by column.
    x = pd.DataFrame(
        {f: pd.to_numeric(frame[f], errors="coerce").astype(float).to_numpy() for f in present},
        index=frame.index,
        columns=present,
    )
    if "as_of" in frame:
        org = x.groupby(frame["as_of"], sort=False).transform("median").to_numpy(dtype=float)
    else:
        org = np.tile(x.median().to_numpy(dtype=float), (len(x), 1))
    seg = org.copy()
    rest = []
    for j, f in enumerate(present):
        if PEER_PREFIX + f in frame:
            seg[:, j] = pd.to_numeric(frame[PEER_PREFIX + f], errors="coerce").astype(float).to_numpy()
        else:
            rest.append(j)
    if rest and "segment" in frame and "as_of" in frame:
        keys = [frame["segment"].astype("string").fillna("\x00"), frame["as_of"]]
        seg[:, rest] = x.iloc[:, rest].groupby(keys, sort=False).transform("median").to_numpy(dtype=float)
    out = pd.DataFrame(np.where(by_seg, seg, org), index=frame.index, columns=present)
    return out.reindex(columns=features) if len(present) < len(features) else out


def peer_quantile(
    frame: pd.DataFrame, feature: str, q: float, *, scope: pd.Series, min_peers: int = MIN_PEERS
) -> pd.Series:
    """The q-quantile of a feature among the row's peers (segment, or organisation) on the same day."""
    x = pd.to_numeric(frame[feature], errors="coerce").astype(float)
    day = frame["as_of"] if "as_of" in frame else pd.Series(0, index=frame.index)
    org = x.groupby(day, sort=False).transform(lambda s: s.quantile(q))
    if "segment" in frame:
        seg = x.groupby([frame["segment"].astype("string").fillna("\x00"), day], sort=False).transform(
            lambda s: s.quantile(q)
        )
    else:
        seg = org
    return pd.Series(np.where(scope == "segment", seg, org), index=frame.index, dtype=float)


# -- sentences ---------------------------------------------------------------------------------
def peer_side(value, peer, better: str | None) -> int | None:
    """Where a value stands against a peer figure: 1 on the worse side, 0 level, -1 on the better
    side; None when either is missing or the feature has no good side."""
    value, peer = _clean(value), _clean(peer)
    if value is None or peer is None or better not in ("higher", "lower"):
        return None
    if value == peer:
        return 0
    worse = value < peer if better == "higher" else value > peer
    return 1 if worse else -1


def reads_as_risk(value, peer, org, better: str | None, scope: str) -> bool:
    """Whether a risk-raising driver's sentence shows the rep on the worse side (or level, or unknown):
    false only when the rep is better than the peers shown and, for a segment, than the organisation.
    SHAP measures against the whole organisation, so a rep better than a weak segment can still be
    below the organisation's figure; the sentence then cites both."""
    if peer_side(value, peer, better) != -1:
        return True
    return scope == "segment" and peer_side(value, org, better) == 1


def feature_sentence(
    feature: str,
    value,
    peer,
    *,
    unit: str,
    lang: str,
    scope: str = "segment",
    segment: str | None = None,
    org=None,
    better: str | None = None,
    currency: str = DEFAULT_CURRENCY,
) -> str:
    """ "Win rate over the last 180 days is 18%, against 31% for Mid-Market peers" (or its Chinese);
    amounts in `currency`, the model's (FeatureSpec.currency).

    A value that reads the same as the peers' says so ("..., the same as for Mid-Market peers: it weighs
    on their risk too") rather than "49%, against 49%".
    For a driver that raises risk while the rep is better than the segment's peers (`better`, the
    feature's good side, given): the organisation's figure `org` is added when the rep is below
    it; otherwise the sentence says the rep is better than peers and the risk comes from the
    rep's other figures, so that a manager is never left reading a strength as the reason.
    """
    name = base_feature(feature)
    label = i18n.feature_label(name, lang)
    value, peer, org = _clean(value), _clean(peer), _clean(org)
    if value is None:
        return i18n.text(lang, "driver.missing_value", label=label)
    v = i18n.format_value(value, unit, lang, currency=currency, feature=name)
    if peer is None:
        return i18n.text(lang, "driver.no_peer", label=label, value=v)
    p = i18n.format_value(peer, unit, lang, currency=currency, feature=name)
    if v == p and float(value) != float(peer):  # "$11k, against $11k": one more digit tells them apart
        v = i18n.format_value(value, unit, lang, currency=currency, feature=name, more=1)
        p = i18n.format_value(peer, unit, lang, currency=currency, feature=name, more=1)
    by_segment = scope == "segment" and segment
    side = peer_side(value, peer, better)
    if v == p and side != -1:
        # "49%, against 49%" read as nonsense next to a risk: the figure weighs on the peers as much.
        # A rep better by less than the digits shown keeps the strength's sentence below.
        return i18n.text(
            lang,
            "driver.segment_same" if by_segment else "driver.organisation_same",
            label=label,
            value=v,
            segment=segment,
        )
    if side != -1:
        if by_segment:
            return i18n.text(lang, "driver.segment", label=label, value=v, peer=p, segment=segment)
        return i18n.text(lang, "driver.organisation", label=label, value=v, peer=p)
    if by_segment and peer_side(value, org, better) == 1:
        o = i18n.format_value(org, unit, lang, currency=currency, feature=name)
        return i18n.text(lang, "driver.segment_and_org", label=label, value=v, peer=p, segment=segment, org=o)
    key = "driver.segment" if by_segment else "driver.organisation"
    t = i18n.text(lang, key, label=label, value=v, peer=p, segment=segment)
    return i18n.text(lang, "driver.better_than_peers", text=t)


def _texts(
    feature,
    value,
    peer,
    unit,
    scope,
    segment,
    actionable=True,
    org=None,
    better=None,
    currency=DEFAULT_CURRENCY,
) -> dict:
    out = {}
    for lang in i18n.LANGUAGES:
        t = feature_sentence(
            feature,
            value,
            peer,
            unit=unit,
            lang=lang,
            scope=scope,
            segment=segment,
            org=org,
            better=better,
            currency=currency,
        )
        if not actionable:
            t = i18n.text(lang, "driver.context", text=t)
        out[f"text_{i18n.SUFFIX[lang]}"] = t
    return out


class _Phrases:
    """Sentences, group titles and whether a group is actionable, each worked out once for a batch:
    many rows share a figure (no data, a level peer value, the period's elapsed share), and rendering
    both languages is most of what is left per row."""

    def __init__(self):
        self._texts: dict[tuple, dict] = {}
        self._titles: dict[str, dict] = {}
        self._actionable: dict[str, bool] = {}

    def texts(self, *args) -> dict:
        """`_texts(*args)`."""
        # type and repr, not the values: 0.0 == -0.0 and 1 == 1.0 == True as keys, yet -0.0 reads "-0%"
        key = tuple((type(a), repr(a)) for a in args)
        out = self._texts.get(key)
        if out is None:
            out = self._texts[key] = _texts(*args)
        return out

    def titles(self, group: str) -> dict:
        """`title_en`, `title_zh` of a group."""
        out = self._titles.get(group)
        if out is None:
            out = self._titles[group] = {
                f"title_{i18n.SUFFIX[lang]}": i18n.group_title(group, lang) for lang in i18n.LANGUAGES
            }
        return out

    def actionable(self, group: str) -> bool:
        """`group_actionable(group)`."""
        out = self._actionable.get(group)
        if out is None:
            out = self._actionable[group] = group_actionable(group)
        return out


# -- grouping ----------------------------------------------------------------------------------
def group_contributions(contrib: pd.DataFrame, groups: dict[str, str]) -> pd.DataFrame:
    """Sum of contributions per group (rows as `contrib`; `base_value` and unknown columns ignored)."""
    cols = [c for c in contrib.columns if c != "base_value"]
    mapping = {c: groups.get(c, groups.get(base_feature(c), "other")) for c in cols}
    g = contrib[cols].T.groupby(pd.Series(mapping)).sum().T
    return g.reindex(index=contrib.index)


def _base_contributions(contrib_row: pd.Series) -> dict[str, float]:
    """Contributions per base feature (x plus peer__x)."""
    out: dict[str, float] = {}
    for c, v in contrib_row.items():
        if c == "base_value":
            continue
        b = base_feature(c)
        out[b] = out.get(b, 0.0) + float(v)
    return out


def group_drivers_row(
    row: pd.Series,
    contrib_row: pd.Series,
    peers_row: pd.Series,
    *,
    groups: dict[str, str],
    units: dict[str, str],
    scope: str,
    k: int,
    actionable: dict[str, bool] | None = None,
    org_row: pd.Series | None = None,
    better: dict[str, str] | None = None,
    currency: str = DEFAULT_CURRENCY,
) -> list[dict]:
    """The up-to-k groups raising one row's risk, largest first, each with a feature in words.

    The feature named is the group's strongest, unless the rep is better than the peers on it
    (`reads_as_risk`) and another of the group's features with at least `ALT_SHARE` of its push
    shows the rep on the worse side: that one is the checkable reason.
    """
    return _group_drivers(
        _base_contributions(contrib_row),
        row,
        peers_row,
        groups=groups,
        units=units,
        scope=scope,
        k=k,
        actionable=actionable,
        org_row=org_row,
        better=better,
        currency=currency,
    )


def _group_drivers(
    base: dict[str, float],
    row: Mapping,
    peers_row: Mapping,
    *,
    groups: dict[str, str],
    units: dict[str, str],
    scope: str,
    k: int,
    actionable: dict[str, bool] | None = None,
    org_row: Mapping | None = None,
    better: dict[str, str] | None = None,
    currency: str = DEFAULT_CURRENCY,
    phrases: _Phrases | None = None,
) -> list[dict]:
    """`group_drivers_row` from the row's contributions per base feature (`_base_contributions`); the
    rows may be Series or dicts (explain_frame's); `phrases` can be shared by the rows of a batch."""
    phrases = phrases or _Phrases()
    better, actionable = better or {}, actionable or {}
    by_group: dict[str, list[tuple[str, float]]] = {}
    for f, c in base.items():
        by_group.setdefault(groups.get(f, "other"), []).append((f, c))
    totals = {g: sum(c for _, c in fs) for g, fs in by_group.items()}
    order = sorted((g for g, t in totals.items() if t > 0), key=lambda g: (-totals[g], g))[:k]
    segment = None if "segment" not in row or pd.isna(row["segment"]) else str(row["segment"])

    def figures(f):
        value = _clean(row[f]) if f in row else None
        peer = _clean(peers_row[f]) if f in peers_row else None
        org = _clean(org_row[f]) if org_row is not None and f in org_row else None
        return value, peer, org

    out = []
    for g in order:
        ranked = sorted(by_group[g], key=lambda fc: (-fc[1], fc[0]))
        f, c = ranked[0]
        for alt, ca in ranked:
            if ca < ALT_SHARE * c:
                break
            if reads_as_risk(*figures(alt), better.get(alt), scope):
                f, c = alt, ca
                break
        act = actionable[g] if g in actionable else phrases.actionable(g)
        value, peer, org = figures(f)
        d = {
            "group": g,
            "contribution": float(totals[g]),
            "actionable": bool(act),
            "feature": f,
            "feature_contribution": float(c),
            "value": value,
            "peer_value": peer,
            "peer_scope": scope,
        }
        d.update(phrases.titles(g))
        d.update(
            phrases.texts(f, value, peer, units.get(f, ""), scope, segment, act, org, better.get(f), currency)
        )
        out.append(d)
    return out


def enrich_feature_drivers(
    drivers: list[dict],
    row: pd.Series,
    peers_row: pd.Series,
    *,
    units,
    scope,
    org_row: pd.Series | None = None,
    better: dict[str, str] | None = None,
    currency: str = DEFAULT_CURRENCY,
) -> list[dict]:
    """Add `peer_value`, `text_en`, `text_zh` to the per-feature drivers of outputs.md (keys kept)."""
    return _enrich_drivers(
        drivers, row, peers_row, units=units, scope=scope, org_row=org_row, better=better, currency=currency
    )


def _enrich_drivers(
    drivers: list[dict],
    row: Mapping,
    peers_row: Mapping,
    *,
    units,
    scope,
    org_row: Mapping | None = None,
    better: dict[str, str] | None = None,
    currency: str = DEFAULT_CURRENCY,
    phrases: _Phrases | None = None,
) -> list[dict]:
    """`enrich_feature_drivers` on Series or dicts; `phrases` can be shared by the rows of a batch."""
    phrases = phrases or _Phrases()
    better = better or {}
    segment = None if "segment" not in row or pd.isna(row["segment"]) else str(row["segment"])
    out = []
    for d in drivers:
        b = base_feature(d["feature"])
        value = _clean(row[b]) if b in row else d.get("value")
        peer = _clean(peers_row[b]) if b in peers_row else None
        org = _clean(org_row[b]) if org_row is not None and b in org_row else None
        e = dict(d)
        e["peer_value"] = peer
        e.update(
            phrases.texts(
                b,
                value,
                peer,
                units.get(b, units.get(d["feature"], "")),
                scope,
                segment,
                phrases.actionable(d.get("group", "")),
                org,
                better.get(b),
                currency,
            )
        )
        out.append(e)
    return out


def explain_frame(
    frame: pd.DataFrame,
    contrib: pd.DataFrame,
    *,
    groups: dict[str, str],
    units: dict[str, str],
    k: int = 5,
    drivers: list[list[dict]] | None = None,
    min_peers: int = MIN_PEERS,
    better: dict[str, str] | None = None,
    currency: str = DEFAULT_CURRENCY,
) -> pd.DataFrame:
    """Per row: `driver_groups` (grouped drivers in words), `peer_scope`, and enriched `drivers` if given;
    amounts in `currency` (the model's).

    Also returns the group sums as columns `contrib__<group>` for the playbook. Rows of `frame` and
    `contrib` are matched by label, or by position when `frame` repeats a label (pooled batches).
    """
    if not frame.index.is_unique:
        if len(contrib) != len(frame):
            raise ValueError(
                f"explain_frame: {len(frame)} rows with repeated labels but {len(contrib)} contribution rows"
            )
        out = explain_frame(
            frame.reset_index(drop=True),
            contrib.reset_index(drop=True),
            groups=groups,
            units=units,
            k=k,
            drivers=drivers,
            min_peers=min_peers,
            better=better,
            currency=currency,
        )
        out.index = frame.index
        out.attrs["peers"].index = frame.index
        return out
    bases = sorted({base_feature(c) for c in contrib.columns if c != "base_value"})
    scope = peer_scope(frame, min_peers=min_peers)
    peers = peer_values(frame, [b for b in bases if b in frame], min_peers=min_peers, scope=scope)
    # the organisation's figures too: SHAP measures against the organisation, and a sentence that
    # shows the rep better than a weak segment cites them (feature_sentence)
    org_peers = peer_values(
        frame, [b for b in bases if b in frame], scope=pd.Series("organisation", index=frame.index)
    )
    gsum = group_contributions(contrib, groups).loc[frame.index]  # by label, like the rows' contributions
    out = pd.DataFrame(index=frame.index)
    out["peer_scope"] = scope
    # Plain dicts and lists, made column-wise once: a Series per row (frame.loc[idx] and the like) cost
    # most of the time. The rows hold what the per-feature drivers name as well, as frame.loc did.
    named = {base_feature(d["feature"]) for ds in drivers or [] for d in ds}
    rows = _records(frame, [*bases, *sorted(named), "segment"])
    peer_rows, org_rows = _records(peers, bases), _records(org_peers, bases)
    base_rows = _base_contribution_rows(contrib, frame.index)
    scopes = scope.tolist()
    phrases = _Phrases()
    grouped = []
    enriched = []
    for i in range(len(frame)):
        grouped.append(
            _group_drivers(
                base_rows[i],
                rows[i],
                peer_rows[i],
                groups=groups,
                units=units,
                scope=scopes[i],
                k=k,
                org_row=org_rows[i],
                better=better,
                currency=currency,
                phrases=phrases,
            )
        )
        if drivers is not None:
            enriched.append(
                _enrich_drivers(
                    drivers[i],
                    rows[i],
                    peer_rows[i],
                    units=units,
                    scope=scopes[i],
                    org_row=org_rows[i],
                    better=better,
                    currency=currency,
                    phrases=phrases,
                )
            )
    out["driver_groups"] = grouped
    if drivers is not None:
        out["drivers"] = enriched
    for g in gsum.columns:
        out[f"contrib__{g}"] = gsum[g].to_numpy()
    out.attrs["peers"] = peers
    return out


def _records(frame: pd.DataFrame, columns: list[str]) -> list[dict]:
    """Each row of `frame` as a dict of those of `columns` it has, values as `frame.loc` gives them up to
    numpy scalar types (which `_clean` and `str` read alike)."""
    cols = [c for c in dict.fromkeys(columns) if c in frame]
    if not cols:
        return [{} for _ in range(len(frame))]
    return [
        dict(zip(cols, values, strict=True))
        for values in zip(*(frame[c].tolist() for c in cols), strict=True)
    ]


def _base_contribution_rows(contrib: pd.DataFrame, index: pd.Index) -> list[dict[str, float]]:
    """`_base_contributions` of the rows of `contrib` labelled `index`, in that order, summed column-wise.

    Each base feature's sum starts at 0.0 and adds its columns in `contrib`'s order, as the per-row
    function does, so that every float is the same to the last bit.
    """
    positions = contrib.index.get_indexer(index)
    if (positions < 0).any():
        raise KeyError(f"explain_frame: no contributions for rows {list(index[positions < 0][:5])}")
    values = contrib.to_numpy(dtype=float)[positions]
    sums: dict[str, np.ndarray] = {}
    for j, c in enumerate(contrib.columns):
        if c == "base_value":
            continue
        b = base_feature(c)
        sums[b] = sums.get(b, 0.0) + values[:, j]
    names = list(sums)
    if not names:
        return [{} for _ in range(len(index))]
    return [dict(zip(names, row, strict=True)) for row in np.column_stack([sums[b] for b in names]).tolist()]
