"""Benchmark: the explanation step (`models.drivers.explain_frame`) of a scoring batch, column-wise against
the per-row code it replaced.

    .venv/bin/python bench/bench_explain.py [--reps 1500] [--periods 13] [--seed 0] [--runs 3] [--as-of DAY ...]

Real inputs: the simulated organisation of bench_features.py (cached under bench/data/, git-ignored), one
scoring batch per as-of day (default: the sixth day of its last-but-one quarter and the 47th of its last),
explained by a model trained once on a smaller simulated organisation (300 reps x 6 quarters, its
REPRADAR_HOME cached as bench/data/home-300x6-s0). Each run times the previous implementation (kept
below, here only, as the reference) and the current one alternately; prints the medians in ms a row,
their ratio, and whether the outputs are exactly equal (every column, both languages, the peers table).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from models import i18n  # noqa: E402
from models.currency import DEFAULT_CURRENCY  # noqa: E402
from models.drivers import (  # noqa: E402
    ALT_SHARE,
    MIN_PEERS,
    _clean,
    _texts,
    explain_frame,
    group_actionable,
    group_contributions,
    peer_scope,
    reads_as_risk,
)
from models.spec import PEER_PREFIX, base_feature  # noqa: E402


def ensure_model(reps: int = 300, periods: int = 6, seed: int = 0) -> Path:
    """A REPRADAR_HOME with a champion trained on a small simulated organisation; made once."""
    from bench_features import DATA, ensure_data

    home = DATA / f"home-{reps}x{periods}-s{seed}"
    done = home / ".complete"
    if done.exists():
        return home
    folder = ensure_data(reps, periods, seed)
    env = {**os.environ, "REPRADAR_HOME": str(home)}
    cli = [sys.executable, "-c", "from repradar.cli import main; main()"]
    print(f"training a model on {folder} into {home} (once) ...", flush=True)
    subprocess.run([*cli, "train", "--data", str(folder), "--seed", str(seed)], env=env, check=True)
    subprocess.run([*cli, "promote"], env=env, check=True)
    done.write_text("trained\n")
    return home


def default_days(tables) -> list[pd.Timestamp]:
    """Early in the last-but-one quarter and mid-way through the last one."""
    starts = sorted(pd.to_datetime(tables.quotas["period_start"]).unique())
    return [pd.Timestamp(starts[-2]) + pd.Timedelta(days=5), pd.Timestamp(starts[-1]) + pd.Timedelta(days=46)]


def batch(tables, day, model) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """explain_frame's arguments as `repradar score` passes them (models.pyfunc.predict_frame)."""
    from features.build import build_scoring_set

    frame = build_scoring_set(tables, day.date()).frame
    pyfunc, spec = model.pyfunc, model.pyfunc.spec_
    contrib = pyfunc.contributions(frame).drop(columns="base_value")
    drivers = list(pyfunc.predict_frame(frame, explain=True)["drivers"])
    kw = dict(
        groups=spec.groups,
        units=spec.units,
        k=spec.max_drivers,
        drivers=drivers,
        better=spec.better,
        currency=spec.currency,
    )
    return frame, contrib, kw


def equal(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Every column exactly, the drivers' JSON, the peers table."""
    try:
        pd.testing.assert_frame_equal(a, b, check_exact=True)
        pd.testing.assert_frame_equal(a.attrs["peers"], b.attrs["peers"], check_exact=True)
    except AssertionError:
        return False
    lists = ("driver_groups", "drivers")
    return all(
        json.dumps(a[c].tolist(), ensure_ascii=False) == json.dumps(b[c].tolist(), ensure_ascii=False)
        for c in lists
    )


def main() -> None:
    from bench_features import ensure_data, org_arguments

    from features.io import load_folder

    ap = org_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    ap.add_argument("--as-of", nargs="*", type=pd.Timestamp, default=None, help="default: two days")
    args = ap.parse_args()
    os.environ["REPRADAR_HOME"] = str(ensure_model())
    from models.loading import load_model
    from repradar.settings import Settings

    model = load_model(Settings())
    tables = load_folder(ensure_data(args.reps, args.periods, args.seed))
    print(
        f"{args.reps} reps x {args.periods} quarters, model version {model.version}, medians of {args.runs}:"
    )
    for day in args.as_of or default_days(tables):
        frame, contrib, kw = batch(tables, day, model)
        times = {"per-row": [], "column-wise": []}
        same = True
        for _ in range(args.runs):
            outs = {}
            for label, fn in (("per-row", _old_explain_frame), ("column-wise", explain_frame)):
                t = time.perf_counter()
                outs[label] = fn(frame, contrib, **kw)
                times[label].append(time.perf_counter() - t)
            same = same and equal(outs["per-row"], outs["column-wise"])
        ms = {k: statistics.median(v) * 1000 / len(frame) for k, v in times.items()}
        print(
            f"  {day.date()}: {len(frame)} rows, per-row {ms['per-row']:.2f} ms a row, column-wise "
            f"{ms['column-wise']:.2f} ms a row, {ms['per-row'] / ms['column-wise']:.1f}x; equal: {same}"
        )


# -- the previous implementation, the reference (models/drivers.py before the column-wise rewrite) ----------
# Its contrib__ sums take the contributions' row order, which is the frame's here, as in `repradar score`.
def _old_peer_values(
    frame: pd.DataFrame, features: list[str], *, min_peers: int = MIN_PEERS, scope: pd.Series | None = None
) -> pd.DataFrame:
    """Peer value of each feature for each row (columns = features, index as frame); NaN when unknown."""
    scope = peer_scope(frame, min_peers=min_peers) if scope is None else scope
    out = pd.DataFrame(index=frame.index)
    by_seg = scope == "segment"
    keys_day = [frame["as_of"]] if "as_of" in frame else None
    for f in features:
        if f not in frame:
            out[f] = np.nan
            continue
        x = pd.to_numeric(frame[f], errors="coerce").astype(float)
        if keys_day is not None:
            org = x.groupby(keys_day, sort=False).transform("median")
        else:
            org = pd.Series(x.median(), index=frame.index)
        if PEER_PREFIX + f in frame:
            seg_v = pd.to_numeric(frame[PEER_PREFIX + f], errors="coerce").astype(float)
        elif "segment" in frame and keys_day is not None:
            seg_v = x.groupby(
                [frame["segment"].astype("string").fillna("\x00"), frame["as_of"]], sort=False
            ).transform("median")
        else:
            seg_v = org
        out[f] = np.where(by_seg, seg_v, org)
    return out


def _old_base_contributions(contrib_row: pd.Series) -> dict[str, float]:
    """Contributions per base feature (x plus peer__x)."""
    out: dict[str, float] = {}
    for c, v in contrib_row.items():
        if c == "base_value":
            continue
        b = base_feature(c)
        out[b] = out.get(b, 0.0) + float(v)
    return out


def _old_group_drivers_row(
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
    better = better or {}
    base = _old_base_contributions(contrib_row)
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
        act = (actionable or {}).get(g, group_actionable(g))
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
        for lang in i18n.LANGUAGES:
            d[f"title_{i18n.SUFFIX[lang]}"] = i18n.group_title(g, lang)
        d.update(_texts(f, value, peer, units.get(f, ""), scope, segment, act, org, better.get(f), currency))
        out.append(d)
    return out


def _old_enrich_feature_drivers(
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
            _texts(
                b,
                value,
                peer,
                units.get(b, units.get(d["feature"], "")),
                scope,
                segment,
                group_actionable(d.get("group", "")),
                org,
                better.get(b),
                currency,
            )
        )
        out.append(e)
    return out


def _old_explain_frame(
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
        out = _old_explain_frame(
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
    peers = _old_peer_values(frame, [b for b in bases if b in frame], min_peers=min_peers, scope=scope)
    # the organisation's figures too: SHAP measures against the organisation, and a sentence that
    # shows the rep better than a weak segment cites them (feature_sentence)
    org_peers = _old_peer_values(
        frame, [b for b in bases if b in frame], scope=pd.Series("organisation", index=frame.index)
    )
    gsum = group_contributions(contrib, groups)
    out = pd.DataFrame(index=frame.index)
    out["peer_scope"] = scope
    rows = []
    enriched = []
    for i, idx in enumerate(frame.index):
        row, prow, orow = frame.loc[idx], peers.loc[idx], org_peers.loc[idx]
        rows.append(
            _old_group_drivers_row(
                row,
                contrib.loc[idx],
                prow,
                groups=groups,
                units=units,
                scope=scope[idx],
                k=k,
                org_row=orow,
                better=better,
                currency=currency,
            )
        )
        if drivers is not None:
            enriched.append(
                _old_enrich_feature_drivers(
                    drivers[i],
                    row,
                    prow,
                    units=units,
                    scope=scope[idx],
                    org_row=orow,
                    better=better,
                    currency=currency,
                )
            )
    out["driver_groups"] = rows
    if drivers is not None:
        out["drivers"] = enriched
    for g in gsum.columns:
        out[f"contrib__{g}"] = gsum[g].to_numpy()
    out.attrs["peers"] = peers
    return out


if __name__ == "__main__":
    main()
