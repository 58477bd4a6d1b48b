"""How latent traits become rates: one function shared by the engine, the expectations and the oracle."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator import params as P


@dataclass
class Channels:
    """Per-rep daily rates implied by traits (arrays over reps; per-stage arrays have a last axis of 4)."""

    lam: np.ndarray  # new deals per working day (before season, leave and employment)
    amt_mult: np.ndarray  # multiplier of a new deal's amount
    amt_mean: np.ndarray  # expected amount of a new deal
    amt_m2: np.ndarray  # expected squared amount of a new deal
    p: np.ndarray  # chance of advancing when a deal leaves a stage
    h: np.ndarray  # daily chance a deal leaves its stage (before the quarter-end push)
    delta: np.ndarray  # daily chance an open deal goes dark
    act_rate: np.ndarray  # activities per working day
    burnout: np.ndarray  # burnout level (>= 0)


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


_LOGIT_P = np.log(P.P_ADVANCE / (1 - P.P_ADVANCE))
_CUSTOMER_BY_STAGE = np.array([0.15, 0.15, 0.8, 0.9])  # customer relationship matters late


def channels(seg: np.ndarray, x: np.ndarray) -> Channels:
    """Rates for reps of segment `seg` with trait values `x` (..., 8); see params for the trait order."""
    S, E, T, Pr, C, M = (
        x[..., k] for k in (P.SKILL, P.EFFORT, P.TERRITORY, P.PROCESS, P.CUSTOMER, P.MANAGER)
    )
    B = np.maximum(-x[..., P.BURNOUT], 0.0)
    ramp = np.clip(x[..., P.RAMP], 0.0, 1.0)
    late = np.maximum(B - P.LATE_BURNOUT, 0.0)
    lam = (
        P.LAMBDA0[seg] * np.exp(0.55 * T + 0.4 * E + 0.25 * M + 0.1 * Pr - 0.5 * late) * (0.05 + 0.95 * ramp)
    )
    amt_mult = np.exp(0.12 * S + 0.1 * T)
    med = P.AMOUNT_MEDIAN[seg] * amt_mult
    sig2 = P.AMOUNT_SIGMA[seg] ** 2
    amt_mean = med * np.exp(sig2 / 2)
    amt_m2 = med**2 * np.exp(2 * sig2)
    shift = 0.45 * S + 0.3 * M + 0.25 * E - 0.4 * late + 0.9 * (ramp - 1.0)
    p = _sigmoid(_LOGIT_P[seg] + shift[..., None] + _CUSTOMER_BY_STAGE * C[..., None])
    h = np.minimum((1.0 / P.STAGE_DAYS[seg]) * np.exp(0.5 * Pr)[..., None], 0.9)
    delta = P.DEATH0[seg] * np.exp(-0.7 * Pr)
    act = P.ACTIVITY_BASE * np.exp(0.55 * E - 0.9 * late + 0.2 * M) * (1 + 0.15 * np.minimum(B, 0.6))
    act = np.clip(act * (0.6 + 0.4 * ramp), 0.2, 9.0)
    return Channels(lam, amt_mult, amt_mean, amt_m2, p, h, delta, act, B)


def neutral_traits(n: int) -> np.ndarray:
    """Trait values of an average, fully ramped, healthy rep."""
    x = np.zeros((n, P.N_TRAITS))
    x[:, P.RAMP] = 1.0
    return x
