"""Oracle risk: the miss probability from the true latent state on an as-of day, by Monte Carlo.

From the start of the as-of day, with every rep's traits held at their values that week and no
further interventions: each open deal is won by period end with its exact chance (backward
recursion of the engine), new deals arrive as a Poisson process thinned by their chance to close
in time, and amounts get the engine's re-estimate and discount. Vectorised over reps x sims.
"""

from __future__ import annotations

import numpy as np

from simulator import params as P
from simulator.channels import channels
from simulator.expect import REMAINING_FACTOR, backward


def oracle_snapshot(eng, reps: np.ndarray, d: int, p: int, sims: int, rng: np.random.Generator):
    """(miss probability, expected won amount at period end) for `reps` as of day `d` of period `p`."""
    cal, org, dl = eng.cal, eng.org, eng.deals
    pe = int(cal.period_end_day[p])
    seg = org.seg[reps]
    ch = channels(seg, eng.x[reps])
    V, acc = backward(cal, ch, d, pe)
    m = len(reps)
    pos = np.full(eng.n, -1)
    pos[reps] = np.arange(m)
    o = eng.open
    o = o[pos[dl.rep[o]] >= 0]
    j = pos[dl.rep[o]]
    s = dl.stage[o].astype(int)
    amt = dl.amount[o]
    q = V[j, s]
    so_far = eng.won[reps, p]
    won = np.repeat(so_far[:, None], sims, axis=1)
    if len(o):
        k = len(o)
        f = np.ones((k, sims))
        early = s < 2
        f[early] *= np.exp(rng.normal(0, P.PROPOSAL_SIGMA, (int(early.sum()), sims)))
        mid = s < 3
        f[mid] *= rng.uniform(P.DISCOUNT_LO, P.DISCOUNT_HI, (int(mid.sum()), sims))
        contrib = (rng.random((k, sims)) < q[:, None]) * amt[:, None] * f
        flat = (j[:, None] * sims + np.arange(sims)).ravel()
        won += np.bincount(flat, contrib.ravel(), minlength=m * sims).reshape(m, sims)
    mu = ch.lam * (1 - P.EXPECTED_PTO_SHARE) * acc
    cnt = rng.poisson(np.repeat(mu[:, None], sims, axis=1))
    tot = int(cnt.sum())
    if tot:
        cell = np.repeat(np.arange(m * sims), cnt.ravel())
        rr = cell // sims
        a = (
            P.AMOUNT_MEDIAN[seg[rr]]
            * ch.amt_mult[rr]
            * np.exp(P.AMOUNT_SIGMA[seg[rr]] * rng.standard_normal(tot))
            * np.exp(rng.normal(0, P.PROPOSAL_SIGMA, tot))
            * rng.uniform(P.DISCOUNT_LO, P.DISCOUNT_HI, tot)
        )
        won += np.bincount(cell, a, minlength=m * sims).reshape(m, sims)
    quota = eng.quota[reps, p]
    risk = (won < quota[:, None]).mean(axis=1)
    expected = so_far + mu * ch.amt_mean * REMAINING_FACTOR[0]
    if len(o):
        expected = expected + np.bincount(j, q * amt * REMAINING_FACTOR[s], minlength=m)
    return risk, expected
