"""Exact expectations of the deal engine: forward (expected wins per period) and backward (win chances).

The engine moves each open deal once per working day: it goes dark with chance `delta`, else it
leaves its stage with chance `h` (Negotiation: times the quarter-end push), advancing with chance
`p`; new deals enter Prospecting after the day. Both recursions below follow that order, so the
truth's expectations and the oracle use the very model that generated the data.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from simulator import params as P
from simulator.channels import Channels, channels
from simulator.timeline import Calendar

# expected factor, and squared factor, applied to an amount when a deal enters stage s (index)
_ENTER = np.array([1.0, 1.0, P.E_PROPOSAL, P.E_DISCOUNT])
_ENTER2 = np.array([1.0, 1.0, P.E2_PROPOSAL, P.E2_DISCOUNT])
# expected factor still ahead of a deal sitting in stage s, up to a win
REMAINING_FACTOR = np.array([P.E_PROPOSAL * P.E_DISCOUNT, P.E_PROPOSAL * P.E_DISCOUNT, P.E_DISCOUNT, 1.0])


def _step_probs(cal: Calendar, ch: Channels, d: int) -> tuple[np.ndarray, np.ndarray]:
    h = ch.h.copy()
    h[..., 3] = np.minimum(h[..., 3] * cal.push[d], 0.95)
    surv = (1.0 - ch.delta)[..., None]
    return surv * h * ch.p, surv * (1.0 - h)


class ForwardState:
    """Expected number of open deals, their expected amount mass and squared-amount mass, per stage
    and rep: one array (3, 4, reps), stage-major so that every update runs over contiguous reps."""

    def __init__(self, m: int):
        self.s = np.zeros((3, 4, m))

    def copy(self) -> ForwardState:
        st = ForwardState(0)
        st.s = self.s.copy()
        return st

    def take(self, idx: np.ndarray) -> ForwardState:
        st = ForwardState(0)
        st.s = self.s[:, :, idx].copy()
        return st


# factor applied to (count, amount, squared amount) when a deal enters stage s = 1..3
_ENTER_ALL = np.stack([np.ones(4), _ENTER, _ENTER2])[:, 1:, None]


def forward(
    cal: Calendar,
    seg: np.ndarray,
    x_of_week: Callable[[int], np.ndarray],
    hire: np.ndarray,
    end: np.ndarray,
    not_on_leave: Callable[[int], np.ndarray] | float,
    d0: int,
    d1: int,
    state: ForwardState | None = None,
    save_days: set[int] | frozenset = frozenset(),
) -> tuple[np.ndarray, np.ndarray, dict[int, ForwardState]]:
    """Expected won amount (and sum of expected squared amounts) per rep and period over days d0..d1.

    `x_of_week(w)` gives the reps' traits in week w; `not_on_leave(d)` a 0/1 array (or a constant
    share) of reps available to create deals on day d. States at the start of `save_days` are returned.
    """
    m = len(seg)
    S = state.s.copy() if state is not None else np.zeros((3, 4, m))
    F = np.empty_like(S)
    won = np.zeros((cal.n_periods, m))
    won2 = np.zeros((cal.n_periods, m))
    saved: dict[int, ForwardState] = {}
    # a rep's deals are lost the day after the rep leaves
    gone_on: dict[int, np.ndarray] = {}
    ends = np.asarray(end) + 1
    for d in np.unique(ends[(ends >= d0) & (ends <= d1)]):
        gone_on[int(d)] = np.flatnonzero(ends == d)
    week, cache = -1, {}
    for d in range(d0, d1 + 1):
        if d // 7 != week:
            week = d // 7
            ch = channels(seg, x_of_week(week))
            surv = 1.0 - ch.delta
            h, pa = ch.h.T, ch.p.T  # (4, m)
            adv0, stay0 = surv * h * pa, surv * (1.0 - h)
            new = np.stack([np.ones(m), ch.amt_mean, ch.amt_m2])
            cache = {}
        if d in gone_on:
            S[:, :, gone_on[d]] = 0.0
        if d in save_days:
            st = ForwardState(0)
            st.s = S.copy()
            saved[d] = st
        if not cal.working[d]:
            continue
        push = cal.push[d]
        if push not in cache:
            adv, stay = adv0.copy(), stay0.copy()
            h3 = np.minimum(h[3] * push, 0.95)
            adv[3] = surv * h3 * pa[3]
            stay[3] = surv * (1.0 - h3)
            cache[push] = (adv[None], stay[None])
        adv, stay = cache[push]
        np.multiply(S, adv, out=F)
        p = cal.period_of_day[d]
        if p >= 0:
            won[p] += F[1, 3]
            won2[p] += F[2, 3]
        S *= stay
        F[:, :3] *= _ENTER_ALL
        S[:, 1:] += F[:, :3]
        avail = not_on_leave(d) if callable(not_on_leave) else not_on_leave
        lam = ch.lam * (cal.season[d] * ((hire <= d) & (d <= end)) * avail)
        S[:, 0] += lam * new
    return won.T.copy(), won2.T.copy(), saved


def backward(cal: Calendar, ch: Channels, d0: int, d1: int) -> tuple[np.ndarray, np.ndarray]:
    """Chance a deal in each stage at the start of day d0 is won by the end of d1 (reps x 4), and
    the season-weighted sum over working days u in d0..d1 of the chance a deal created on u is won
    by then (multiply by a rep's daily creation rate for the expected number of new wins)."""
    m = ch.lam.shape[0]
    V = np.zeros((m, 5))
    V[:, 4] = 1.0
    acc = np.zeros(m)
    for t in range(d1, d0 - 1, -1):
        if not cal.working[t]:
            continue
        acc += cal.season[t] * V[:, 0]
        adv, stay = _step_probs(cal, ch, t)
        V[:, :4] = adv * V[:, 1:5] + stay * V[:, :4]
    return V[:, :4], acc
