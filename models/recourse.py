"""Recourse: the smallest change in actionable levers, within what peers achieve, that takes a rep out
of the high band — found by querying the model, not read off SHAP values.

A *lever* is something a rep can do this month (more meetings, more new pipeline ...). It has a
principal feature, bounded above by the peers' `quantile` (default 75th percentile: segment on the
same as-of day, organisation-wide without segment peers), and it moves every feature derived from
the same events together, so the model never sees an impossible row:

| lever | principal feature | also updated |
|---|---|---|
| new_pipeline | new_pipeline_amount_28d | new_pipeline_amount_91d, open_pipeline_in_period, open_pipeline_total, pipeline_coverage (recomputed on the quota still to win), new_deals_28d/91d and open_deals_in_period (+ amount / typical deal size, rounded up), new_deals_per_100_activities_91d (recomputed) |
| meetings, demos, calls | <type>_per_week_28d | <type>_per_week_91d (x 28/91), activities_per_week_7d/28d/91d, meeting_demo_share_28d, activity_trend_28d and new_deals_per_100_activities_91d (recomputed) |
| crm_logins | crm_logins_per_week_28d | crm_logins_per_week_91d (x 28/91) |
| one_on_ones, training, peer_sessions | <x>_28d | <x>_91d |

Peer comparison columns (`peer__*`) stay as they are (one rep barely moves a segment median); won
revenue, attainment and the calendar do not change (the plan is read "as if done by today").

Search: each lever moves on a grid of natural steps (0.5 a week, 1 session, 1-2-5 money steps) up to
its bound. Greedy coordinate descent adds, at each round, the step (1, 2 or 4 grid steps of one
lever) with the largest drop in calibrated risk per unit of cost (cost of a lever = its change over
the distance from the rep to the bound); then a pruning pass takes back every step not needed to stay
below the high band. A rep whose levers all at their bounds stay in the high band gets
`feasible: false`, with the best risk reached.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models import i18n
from models.currency import DEFAULT_CURRENCY

MAX_ROUNDS = 40
MAX_LEVELS = 12
JUMPS = (1, 2, 4)


@dataclass(frozen=True)
class Lever:
    name: str
    principal: str
    kind: str  # per_week, count, hours, currency: sets the grid step and the wording
    minimum_step: float


LEVERS: tuple[Lever, ...] = (
    Lever("new_pipeline", "new_pipeline_amount_28d", "currency", 1000.0),
    Lever("meetings", "meetings_per_week_28d", "per_week", 0.5),
    Lever("demos", "demos_per_week_28d", "per_week", 0.5),
    Lever("calls", "calls_per_week_28d", "per_week", 1.0),
    Lever("crm_logins", "crm_logins_per_week_28d", "per_week", 1.0),
    Lever("one_on_ones", "one_on_ones_28d", "count", 1.0),
    Lever("training", "training_hours_28d", "hours", 1.0),
    Lever("peer_sessions", "peer_sessions_28d", "count", 1.0),
)
LEVER_BY_NAME = {lv.name: lv for lv in LEVERS}
# Features the events of a lever change but the lever leaves as they are. A test adds each lever's
# events to an export and holds every other feature that moves to move with its lever, so that a
# feature added later is not forgotten here. These are approximations: the row does not say how many
# activities or deals of the last 182 days, or how old the open deals, a plan would add to.
_PER_100 = frozenset({"new_deals_per_100_activities_182d"})
LEFT_AS_IS: dict[str, frozenset[str]] = {
    "new_pipeline": _PER_100 | {"avg_new_deal_size_182d", "open_deal_stage_age_days"},
    "meetings": _PER_100,
    "demos": _PER_100,
    "calls": _PER_100,
}
W91 = 28.0 / 91.0


# -- applying a plan ---------------------------------------------------------------------------
def _get(row: dict, name: str) -> float:
    v = row.get(name, np.nan)
    try:
        v = float(v)
    except (TypeError, ValueError):
        return np.nan
    return v


def apply_lever_array(X: np.ndarray, col: dict[str, int], lever: str, delta) -> np.ndarray:
    """Rows of X (columns named by `col`) after raising `lever` by `delta` (scalar or per row),
    with every dependent feature updated. Columns absent from `col` are skipped; NaN stays NaN."""
    X = np.array(X, dtype=float, copy=True)
    d = np.broadcast_to(np.asarray(delta, dtype=float), (X.shape[0],)).copy()
    if not np.any(d != 0):
        return X
    nan = np.full(X.shape[0], np.nan)

    def get(f):
        j = col.get(f)
        return X[:, j].copy() if j is not None else nan

    def add(f, dd):
        j = col.get(f)
        if j is not None:
            X[:, j] = X[:, j] + dd  # NaN + d stays NaN

    if lever == "new_pipeline":
        n_open, old_open, won = (
            get("open_deals_in_period"),
            get("open_pipeline_in_period"),
            get("avg_won_deal_size_180d"),
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            size = np.where((n_open > 0) & (old_open > 0), old_open / n_open, np.nan)
        size = np.where(size > 0, size, np.where(won > 0, won, np.where(d > 0, d, 1.0)))
        n = np.where(d > 0, np.ceil(d / size - 1e-9), 0.0)
        j = col.get("new_deals_per_100_activities_91d")
        if j is not None:  # the same activities (100 x deals / ratio) for more deals
            n91 = get("new_deals_91d")
            ok = (n91 > 0) & (X[:, j] > 0) & (n != 0)
            X[:, j] = np.where(ok, X[:, j] * (n91 + n) / np.where(ok, n91, 1.0), X[:, j])
        add("new_pipeline_amount_28d", d)
        add("new_pipeline_amount_91d", d)
        add("open_pipeline_in_period", d)
        add("open_pipeline_total", d)
        add("new_deals_28d", n)
        add("new_deals_91d", n)
        add("open_deals_in_period", n)
        j = col.get("pipeline_coverage")
        if j is not None:
            remaining = get("quota_amount") * (1.0 - get("attainment_to_date"))
            new_open = get("open_pipeline_in_period")
            ok = (remaining > 0) & ~np.isnan(new_open) & (d != 0)
            X[:, j] = np.where(ok, new_open / np.where(remaining > 0, remaining, 1.0), X[:, j])
    elif lever in ("meetings", "demos", "calls"):
        act28, act91 = get("activities_per_week_28d"), get("activities_per_week_91d")
        j = col.get("new_deals_per_100_activities_91d")
        if j is not None:  # the same deals for more activities
            ok = (act91 > 0) & (d != 0)
            X[:, j] = np.where(ok, X[:, j] * act91 / np.where(ok, act91 + d * W91, 1.0), X[:, j])
        add(f"{lever}_per_week_28d", d)
        add(f"{lever}_per_week_91d", d * W91)
        add("activities_per_week_7d", d)
        add("activities_per_week_28d", d)
        add("activities_per_week_91d", d * W91)
        j = col.get("meeting_demo_share_28d")
        if j is not None:
            md = X[:, j] * act28 + (d if lever in ("meetings", "demos") else 0.0)
            ok = (act28 + d > 0) & (d != 0)
            X[:, j] = np.where(ok, md / np.where(ok, act28 + d, 1.0), X[:, j])
        j = col.get("activity_trend_28d")
        if j is not None:
            ok = (act28 > 0) & (d != 0)
            X[:, j] = np.where(ok, X[:, j] * (act28 + d) / np.where(ok, act28, 1.0), X[:, j])
    elif lever == "crm_logins":
        add("crm_logins_per_week_28d", d)
        add("crm_logins_per_week_91d", d * W91)
    elif lever in ("one_on_ones", "training", "peer_sessions"):
        stem = {"one_on_ones": "one_on_ones", "training": "training_hours", "peer_sessions": "peer_sessions"}[
            lever
        ]
        add(f"{stem}_28d", d)
        add(f"{stem}_91d", d)
    else:
        raise KeyError(f"unknown lever {lever!r}")
    return X


def apply_plan_array(X: np.ndarray, col: dict[str, int], deltas: dict) -> np.ndarray:
    """Apply several levers {lever: increment (scalar or per row)} in the fixed LEVERS order."""
    for lv in LEVERS:
        d = deltas.get(lv.name)
        if d is not None:
            X = apply_lever_array(X, col, lv.name, d)
    return X


def apply_plan(row: dict, deltas: dict[str, float]) -> dict:
    """One row (feature -> value) after a plan {lever: increment}, dependents updated."""
    names = list(row)
    col = {n: i for i, n in enumerate(names)}
    X = apply_plan_array(np.array([[_get(row, n) for n in names]], dtype=float), col, deltas)
    return {n: float(X[0, i]) for n, i in col.items()}


def apply_lever(row: dict, lever: str, delta: float) -> dict:
    return apply_plan(row, {lever: delta})


def apply_changes(frame: pd.DataFrame, changes: list[dict]) -> pd.DataFrame:
    """Set each `{feature, to}` of a plan on a copy of `frame` (what a re-scoring check does)."""
    out = frame.copy()
    for c in changes:
        out[c["feature"]] = float(c["to"])
    return out


# -- grids -------------------------------------------------------------------------------------
def _nice(x: float) -> float:
    """The 1-2-5 number at or above x."""
    if x <= 0:
        return 0.0
    e = 10 ** math.floor(math.log10(x))
    for m in (1, 2, 5, 10):
        if m * e >= x - 1e-12:
            return m * e
    return 10 * e


def lever_grid(lever: Lever, room: float) -> np.ndarray:
    """Increments tried for a lever: natural steps up to `room` (the last one exactly `room`)."""
    if not room > 0:
        return np.zeros(0)
    step = max(lever.minimum_step, room / MAX_LEVELS)
    step = (
        _nice(step) if lever.kind == "currency" else math.ceil(step / lever.minimum_step) * lever.minimum_step
    )
    levels = list(np.arange(1, int(room // step) + 1) * step)
    if not levels or room - levels[-1] > 1e-9 * max(1.0, room):
        if levels and room - levels[-1] < 0.25 * step:
            levels[-1] = room
        else:
            levels.append(room)
    return np.asarray(levels[: MAX_LEVELS + 1], dtype=float)


# -- the search --------------------------------------------------------------------------------
def plan_levers(
    model, X: np.ndarray, col: dict[str, int], bounds: np.ndarray, *, threshold: float
) -> list[dict]:
    """Greedy search for each row of X (columns named by `col`, holding at least the model's features).

    `bounds[i, l]` is the upper bound of lever l's principal feature (LEVERS order) for row i.
    Returns per row {deltas: {lever: increment}, risk_before, risk_after, feasible, levers_available}.
    """
    names = list(model.feature_names)
    idx = np.array([col[f] for f in names])
    n, L = X.shape[0], len(LEVERS)

    def risk_of(M: np.ndarray) -> np.ndarray:
        if len(M) == 0:
            return np.zeros(0)
        return np.asarray(model.risk_from_raw(model.raw_score(M[:, idx])), dtype=float)

    # grids: per row and lever, the increments tried (empty: lever unusable)
    grids: list[list[np.ndarray]] = []
    usable = np.zeros((n, L), dtype=bool)
    probe = {}
    for li, lv in enumerate(LEVERS):
        # does one unit of this lever move any model feature (present and known) for the row?
        moved = apply_lever_array(X, col, lv.name, 1.0)
        probe[li] = np.any((moved[:, idx] != X[:, idx]) & ~np.isnan(X[:, idx]), axis=1)
    for i in range(n):
        g = []
        for li, lv in enumerate(LEVERS):
            j = col.get(lv.principal)
            cur = X[i, j] if j is not None else np.nan
            room = bounds[i, li] - cur
            grid = lever_grid(lv, room) if (probe[li][i] and not np.isnan(room)) else np.zeros(0)
            g.append(grid)
            usable[i, li] = len(grid) > 0
        grids.append(g)
    sizes = np.array([[len(grids[i][li]) for li in range(L)] for i in range(n)], dtype=float)

    def deltas_of(rows: np.ndarray, levels: np.ndarray) -> dict[str, np.ndarray]:
        out = {}
        for li, lv in enumerate(LEVERS):
            d = np.zeros(len(rows))
            for k, (i, v) in enumerate(zip(rows, levels[:, li], strict=True)):
                if v > 0:
                    d[k] = grids[i][li][int(v) - 1]
            out[lv.name] = d
        return out

    def evaluate(rows: np.ndarray, levels: np.ndarray) -> np.ndarray:
        return risk_of(apply_plan_array(X[rows], col, deltas_of(rows, levels)))

    def cost(rows: np.ndarray, levels: np.ndarray) -> np.ndarray:
        return np.sum(np.divide(levels, np.maximum(sizes[rows], 1.0)), axis=1)

    level = np.zeros((n, L), dtype=int)
    risk0 = risk_of(X)
    risk = risk0.copy()
    active = np.flatnonzero((risk >= threshold) & usable.any(axis=1))
    for _ in range(MAX_ROUNDS):
        if len(active) == 0:
            break
        c_rows, c_levels = [], []
        for i in active:
            seen = set()
            for li in range(L):
                for jump in JUMPS:
                    new = min(level[i, li] + jump, int(sizes[i, li]))
                    if new == level[i, li] or (li, new) in seen:
                        continue
                    seen.add((li, new))
                    lv = level[i].copy()
                    lv[li] = new
                    c_rows.append(i)
                    c_levels.append(lv)
        if not c_rows:
            break
        c_rows, c_levels = np.array(c_rows), np.array(c_levels)
        r = evaluate(c_rows, c_levels)
        gain = risk[c_rows] - r
        dc = cost(c_rows, c_levels) - cost(c_rows, level[c_rows])
        below = r < threshold
        still = []
        for i in active:
            m = np.flatnonzero(c_rows == i)
            if len(m) == 0:  # every lever already at its bound
                continue
            if np.any(below[m]):
                # reaching the target: the cheapest such move
                k = m[below[m]][np.argmin(cost(c_rows[m[below[m]]], c_levels[m[below[m]]]))]
            else:
                rate = gain[m] / np.maximum(dc[m], 1e-9)
                k = m[np.argmax(rate)] if np.max(gain[m]) > 1e-12 else None
            if k is not None:
                level[i], risk[i] = c_levels[k], r[k]
            else:
                # no single move lowers the risk: every lever at its bound, then stop
                full = sizes[i].astype(int)[None, :]
                rf = evaluate(np.array([i]), full)[0]
                if rf < risk[i]:
                    level[i], risk[i] = full[0], rf
                continue
            if risk[i] >= threshold:
                still.append(i)
        active = np.array(still, dtype=int)

    # pruning: give back steps not needed to stay below the threshold, costliest lever first
    for i in np.flatnonzero(risk < threshold):
        changed = True
        while changed and level[i].any():
            changed = False
            order = np.argsort(-(level[i] / np.maximum(sizes[i], 1.0)), kind="stable")
            for li in order:
                if level[i, li] == 0:
                    continue
                lv = level[i].copy()
                lv[li] -= 1
                rl = evaluate(np.array([i]), lv[None, :])[0]
                if rl < threshold:
                    level[i], risk[i] = lv, rl
                    changed = True
    out = []
    for i in range(n):
        d = {
            lv.name: float(grids[i][li][level[i, li] - 1]) for li, lv in enumerate(LEVERS) if level[i, li] > 0
        }
        out.append(
            {
                "deltas": d,
                "risk_before": float(risk0[i]),
                "risk_after": float(risk[i]),
                "feasible": bool(risk[i] < threshold),
                "levers_available": [lv.name for li, lv in enumerate(LEVERS) if usable[i, li]],
            }
        )
    return out


# -- wording -----------------------------------------------------------------------------------
def lever_phrase(lever: str, delta: float, lang: str, currency: str = DEFAULT_CURRENCY) -> str:
    lv = LEVER_BY_NAME[lever]
    if lv.kind == "currency":
        amount = i18n.format_amount(delta, lang, currency=currency)
        return i18n.text(lang, f"recourse.levers.{lever}", amount=amount)
    n = i18n._num(delta, 1)
    return i18n.counted(lang, f"recourse.levers.{lever}", n, n=n)


def risk_against(risk: float, threshold: float) -> str:
    """`risk` as a sentence setting it against `threshold`: whole percents, or as many decimals as it takes
    to keep the side it is on ("59.6%, below the high band (60%)", never "60%, below ... (60%)")."""
    below = risk < threshold
    for digits in (0, 1, 2):
        shown = round(risk * 100, digits)
        if (shown < threshold * 100) == below:
            return f"{shown:.{digits}f}%"
    # closer to the threshold than 0.005 points: the last digit rounded towards the risk's own side
    step = (math.floor if below else math.ceil)(risk * 10_000) / 100
    return f"{step:.2f}%"


def plan_text(
    deltas: dict[str, float],
    *,
    feasible: bool,
    risk_before: float,
    risk_after: float,
    threshold: float,
    lang: str,
    scope: str,
    segment: str | None,
    levers_available: bool = True,
    currency: str = DEFAULT_CURRENCY,
) -> str:
    r = i18n.format_risk
    if not levers_available:
        return i18n.text(lang, "recourse.no_lever", risk_before=r(risk_before))
    if not feasible:
        sc = (
            i18n.text(lang, "recourse.scope_segment", segment=segment)
            if scope == "segment" and segment
            else i18n.text(lang, "recourse.scope_organisation")
        )
        if r(risk_after) == r(risk_before):
            # "the best reaches 63%" from 63% reads like a plan: say that no lever moves the risk at all
            return i18n.text(lang, "recourse.no_effect", scope=sc, risk_before=r(risk_before))
        return i18n.text(
            lang,
            "recourse.infeasible",
            scope=sc,
            risk_before=risk_against(risk_before, threshold),
            risk_after=risk_against(risk_after, threshold),
            threshold=r(threshold),
        )
    parts = [lever_phrase(lv.name, deltas[lv.name], lang, currency) for lv in LEVERS if deltas.get(lv.name)]
    return i18n.text(
        lang,
        "recourse.plan",
        changes=i18n.join_list(parts, lang),
        risk_before=risk_against(risk_before, threshold),
        risk_after=risk_against(risk_after, threshold),
        threshold=r(threshold),
    )


# -- the frame-level step ----------------------------------------------------------------------
def lever_bounds(
    frame: pd.DataFrame, *, quantile: float = 0.75, scope: pd.Series | None = None
) -> pd.DataFrame:
    """Upper bound of each lever's principal feature per row: the peers' `quantile` on the same day."""
    from models.drivers import peer_quantile, peer_scope

    scope = peer_scope(frame) if scope is None else scope
    out = pd.DataFrame(index=frame.index)
    for lv in LEVERS:
        out[lv.name] = (
            peer_quantile(frame, lv.principal, quantile, scope=scope) if lv.principal in frame else np.nan
        )
    return out


EXTRA_INPUTS = ("quota_amount", "attainment_to_date", "avg_won_deal_size_180d", "activities_per_week_28d")


def recourse_frame(
    model,
    frame: pd.DataFrame,
    risk: np.ndarray,
    *,
    band_high: float,
    quantile: float = 0.75,
    currency: str = DEFAULT_CURRENCY,
) -> list[dict | None]:
    """Per row: a recourse plan for high-band rows (risk >= band_high), None for the others; its texts
    write amounts in `currency` (the model's).

    Each plan: {feasible, changes: [{feature, from, to}], levers: [{lever, feature, delta, from, to,
    bound}], risk_before, risk_after, bound_quantile, peer_scope, text_en, text_zh}. `changes` lists
    every model feature the plan moves (dependents included): setting them on the row and re-scoring
    gives `risk_after`.
    """
    from models.drivers import peer_scope

    risk = np.asarray(risk, dtype=float)
    out: list[dict | None] = [None] * len(frame)
    high = np.flatnonzero(risk >= band_high)
    if len(high) == 0:
        return out
    scope = peer_scope(frame)
    bounds = lever_bounds(frame, quantile=quantile, scope=scope)
    names = list(model.feature_names)
    extra = [lv.principal for lv in LEVERS] + list(EXTRA_INPUTS)
    cols = list(dict.fromkeys(names + [c for c in extra if c in frame]))
    col = {c: k for k, c in enumerate(cols)}
    sub = frame.iloc[high]
    X = np.column_stack(
        [
            pd.to_numeric(sub[c], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            if c in sub
            else np.full(len(sub), np.nan)
            for c in cols
        ]
    )
    B = bounds.iloc[high][[lv.name for lv in LEVERS]].to_numpy(dtype=float)
    plans = plan_levers(model, X, col, B, threshold=band_high)
    segs = frame["segment"].astype("string") if "segment" in frame else pd.Series(pd.NA, index=frame.index)
    for j, i in enumerate(high):
        p = plans[j]
        after = apply_plan_array(X[j : j + 1], col, p["deltas"])[0]
        changes = [
            {"feature": f, "from": float(X[j, col[f]]), "to": float(after[col[f]])}
            for f in names
            if not np.isnan(X[j, col[f]]) and after[col[f]] != X[j, col[f]]
        ]
        levers = [
            {
                "lever": lv.name,
                "feature": lv.principal,
                "delta": float(p["deltas"][lv.name]),
                "from": float(X[j, col[lv.principal]]),
                "to": float(X[j, col[lv.principal]] + p["deltas"][lv.name]),
                "bound": float(B[j, li]),
            }
            for li, lv in enumerate(LEVERS)
            if p["deltas"].get(lv.name)
        ]
        seg = None if pd.isna(segs.iat[i]) else str(segs.iat[i])
        plan = {
            "feasible": p["feasible"],
            "changes": changes if p["feasible"] else [],
            "levers": levers if p["feasible"] else [],
            "risk_before": p["risk_before"],
            "risk_after": p["risk_after"],
            "bound_quantile": float(quantile),
            "peer_scope": str(scope.iat[i]),
        }
        for lang in i18n.LANGUAGES:
            plan[f"text_{i18n.SUFFIX[lang]}"] = plan_text(
                p["deltas"],
                feasible=p["feasible"],
                risk_before=p["risk_before"],
                risk_after=p["risk_after"],
                threshold=band_high,
                lang=lang,
                scope=str(scope.iat[i]),
                segment=seg,
                levers_available=bool(p["levers_available"]),
                currency=currency,
            )
        out[i] = plan
    return out
