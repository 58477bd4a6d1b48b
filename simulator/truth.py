"""The hidden truth: causes of misses, and what interventions really do.

Attribution is counterfactual and exact in expectation: the expected won amount of each
rep-period is recomputed (mean-field recursion of the deal engine over the rep's real trait path)
with one trait's deficit removed; a cause's contribution is the log of how much expected
attainment would rise without it. Quota difficulty and ramp-up are compared against the standard
quota a ramped rep of that segment gets.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simulator import params as P

CAUSES = ("skill", "effort", "territory", "process", "customer", "burnout", "ramp", "quota", "manager")

# cause -> catalog ids (shared/spec/interventions.md) that answer it, best first
CAUSE_TO_INTERVENTIONS: dict[str, tuple[str, ...]] = {
    "skill": ("skills_training", "development_plan"),
    "effort": ("incentives", "recognition"),
    "territory": ("pipeline_generation",),
    "process": ("process_simplification", "crm_adoption"),
    "customer": ("customer_service_training",),
    "burnout": ("wellbeing_support", "work_life_balance"),
    "ramp": ("mentoring",),
    "quota": ("smart_goals",),
    "manager": ("manager_coaching", "regular_checkins"),
}

# trait index each trait-driven cause neutralises (ramp and quota are handled apart)
CAUSE_TRAIT = {
    "skill": P.SKILL,
    "effort": P.EFFORT,
    "territory": P.TERRITORY,
    "process": P.PROCESS,
    "customer": P.CUSTOMER,
    "burnout": P.BURNOUT,
    "manager": P.MANAGER,
}
MIN_CONTRIBUTION = 0.05  # a cause must cost at least ~5% of expected attainment to be named
AT_RISK_PROB = 0.4  # at risk: miss probability given the true trait path at least this

# truth column -> (trait index, sign) for the trait values written per rep-period
TRAIT_COLUMNS = {
    "trait_skill": (P.SKILL, 1.0),
    "trait_effort": (P.EFFORT, 1.0),
    "trait_territory": (P.TERRITORY, 1.0),
    "trait_process_friction": (P.PROCESS, -1.0),
    "trait_customer": (P.CUSTOMER, 1.0),
    "trait_burnout": (P.BURNOUT, -1.0),
    "trait_ramp": (P.RAMP, 1.0),
    "trait_manager_quality": (P.MANAGER, 1.0),
}

CAUSES_MD = """# Causes of missed targets in the simulated organisation

Each rep-period in `rep_periods.parquet` where the rep missed (attainment < 1) **and** was at risk
(miss probability >= 0.4 given the true trait path, `miss_prob`) names one `dominant_cause`: the
cause whose removal would raise expected attainment most (`contrib_<cause>` = log of that rise).
Misses without a material cause (largest contribution < 0.05) are bad luck: `dominant_cause` is empty.

| cause | latent trait | shows in the data as | interventions that answer it |
|---|---|---|---|
| skill | skill | low win rate and stage conversion, smaller deals | skills_training, development_plan |
| effort | effort | fewer activities per day, fewer new deals | incentives, recognition |
| territory | territory quality | few new deals created, thin pipeline | pipeline_generation |
| process | process friction | long cycles, stalled and slipping deals, deals going dark, few CRM logins | process_simplification, crm_adoption |
| customer | customer relationship | low csat, losses at Proposal/Negotiation | customer_service_training |
| burnout | wellbeing | after-hours work, no leave, falling pulse, then falling activity | wellbeing_support, work_life_balance |
| ramp | ramp-up | short tenure, little pipeline, low conversion early | mentoring |
| quota | quota difficulty | quota far above the rep's history and peers | smart_goals (halves next period's excess) |
| manager | manager quality | rare 1:1s, low pulse, the whole team under-performing | manager_coaching, regular_checkins |

Trait columns (`trait_*`) are the values in the period's first week (the first that starts in it,
after January's territory redraw): skill, effort, territory, customer and manager quality in standard units (0 = average, negative = worse); process friction and
burnout are oriented so that higher is worse; ramp is the share of full productivity (1 = ramped);
quota difficulty is quota / the standard quota for the rep's segment, period, tenure and start date.
Gender and age band have no effect on anything unless the organisation was simulated with
`bias_quota_against`, which multiplies that group's quota difficulty by 1.25.
"""


def normal_cdf(z: np.ndarray) -> np.ndarray:
    """Standard normal CDF (Abramowitz-Stegun 7.1.26 erf, |error| < 1.5e-7), numpy only."""
    x = np.abs(z) / np.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erf = 1.0 - poly * np.exp(-x * x)
    return 0.5 * (1.0 + np.sign(z) * erf)


def lognormal_miss_prob(expected: np.ndarray, m2: np.ndarray, quota: np.ndarray) -> np.ndarray:
    """P(won < quota) for a lognormal with the given mean and (Poisson-approximated) second moment."""
    e = np.maximum(expected, 1e-9)
    var = np.maximum(m2, 1e-12)
    s2 = np.log1p(var / e**2)
    s = np.sqrt(s2)
    mu = np.log(e) - s2 / 2
    out = normal_cdf((np.log(np.maximum(quota, 1e-9)) - mu) / s)
    return np.where(expected <= 0, 1.0, out)


def attribute(cal, org, res, rep_periods: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Add expectations, per-cause contributions, risk and the dominant cause to `rep_periods`.

    `rep_periods` has integer columns rep (index) and period; returns the enriched frame and the
    saved mean-field states at period starts (for intervention counterfactuals).
    """
    from simulator.expect import forward

    n = org.n
    variants = ["actual", "skill", "effort", "territory", "process", "customer", "burnout", "manager", "ramp"]
    V = len(variants)
    seg = np.tile(org.seg, V)
    hire = np.tile(org.hire_day, V).astype(np.int64)
    hire[(V - 1) * n :] = np.minimum(org.hire_day, 0)
    end = np.tile(res.end_day, V)
    X = res.X

    def x_of_week(w):
        x = X[min(w, X.shape[0] - 1)].astype(np.float64)
        out = np.tile(x, (V, 1))
        for i, name in enumerate(variants[1:-1], start=1):
            k = CAUSE_TRAIT[name]
            sl = slice(i * n, (i + 1) * n)
            out[sl, k] = np.maximum(out[sl, k], 0.0)
        out[(V - 1) * n :, P.RAMP] = 1.0
        return out

    avail = ~res.on_leave

    def not_on_leave(d):
        return np.tile(avail[d], V).astype(np.float64)

    save = {int(d) for d in cal.period_start_day}
    won, won2, saved = forward(
        cal, seg, x_of_week, hire, end, not_on_leave, 0, cal.n_days - 1, save_days=save
    )
    E = won.reshape(V, n, -1)
    E2 = won2[:n]
    r, p = rep_periods["rep"].to_numpy(), rep_periods["period"].to_numpy()
    quota = rep_periods["quota_amount"].to_numpy()
    e0 = E[0, r, p]
    out = rep_periods.copy()
    out["expected_won"] = e0
    out["expected_attainment"] = e0 / quota
    out["won_m2"] = E2[r, p]
    out["miss_prob"] = lognormal_miss_prob(e0, E2[r, p], quota)
    contrib = {}
    for i, name in enumerate(variants[1:-1], start=1):
        contrib[name] = np.log((E[i, r, p] + 1.0) / (e0 + 1.0))
    contrib["ramp"] = np.log((E[V - 1, r, p] + 1.0) / (e0 + 1.0)) + np.log(res.quota_ramp[r, p])
    contrib["quota"] = np.log(res.quota_difficulty[r, p])
    C = np.column_stack([np.maximum(contrib[c], 0.0) for c in CAUSES])
    for i, c in enumerate(CAUSES):
        out[f"contrib_{c}"] = C[:, i]
    out["at_risk"] = out["miss_prob"].to_numpy() >= AT_RISK_PROB
    top = np.argmax(C, axis=1)
    named = out["missed"].to_numpy() & out["at_risk"].to_numpy() & (C.max(axis=1) >= MIN_CONTRIBUTION)
    out["dominant_cause"] = pd.Series(
        np.where(named, np.asarray(CAUSES, dtype=object)[top], None), dtype="str"
    )
    out.loc[~named, "dominant_cause"] = None
    out["top_deficit"] = np.where(
        C.max(axis=1) >= MIN_CONTRIBUTION, np.asarray(CAUSES, dtype=object)[top], None
    )
    states = {d: s.take(np.arange(n)) for d, s in saved.items()}
    return out, states


def _run_from_period_start(cal, res, org, states, reps, periods, effects, sign, capped_by_boost):
    """Expected won in each row's period with `effects` (lists of (trait, gain, bonus, first week))
    added (sign=+1) to or removed (sign=-1) from the row's rep's true trait path.

    An effect ramps in over EFFECT_RAMP_WEEKS and is capped by the boost in force (removal) or the
    deficit left (addition); a RAMP effect is extra ramp progress accumulated over MENTORING_WEEKS.
    """
    from simulator.expect import forward

    out = np.zeros(len(reps))
    X, DEF, BOOST = res.X, res.DEF, res.BOOST
    cap_src = BOOST if capped_by_boost else DEF
    avail = ~res.on_leave
    for p in np.unique(periods):
        rows = np.flatnonzero(periods == p)
        ps, pe = int(cal.period_start_day[p]), int(cal.period_end_day[p])
        rr = reps[rows]
        flat = [(j, k, g, b, w0) for j, i in enumerate(rows) for k, g, b, w0 in effects[i]]
        e_row = np.array([f[0] for f in flat], dtype=np.int64)
        e_k = np.array([f[1] for f in flat], dtype=np.int64)
        e_gain = np.array([f[2] for f in flat], dtype=float)
        e_bonus = np.array([f[3] for f in flat], dtype=float)
        e_w0 = np.array([f[4] for f in flat], dtype=np.int64)
        ramp = e_k == P.RAMP

        def x_of_week(w, rr=rr, e_row=e_row, e_k=e_k, e_gain=e_gain, e_bonus=e_bonus, e_w0=e_w0, ramp=ramp):
            wi = min(w, X.shape[0] - 1)
            x = X[wi, rr].astype(np.float64)
            if len(e_row) == 0:
                return x
            t = ~ramp
            frac = np.clip((w - e_w0[t] + 1) / P.EFFECT_RAMP_WEEKS, 0.0, 1.0)
            cap = cap_src[wi, rr[e_row[t]], e_k[t]]
            dx = np.minimum(e_gain[t] * frac, cap) + e_bonus[t] * frac
            np.add.at(x, (e_row[t], e_k[t]), sign * dx)
            if ramp.any():
                steps = np.clip(w - e_w0[ramp] + 1, 0, P.MENTORING_WEEKS)
                drp = np.zeros(len(rr))
                np.add.at(drp, e_row[ramp], e_gain[ramp] / P.MENTORING_WEEKS * steps)
                rp = -np.log(np.maximum(1.0 - x[:, P.RAMP], 1e-12))
                x[:, P.RAMP] = np.where(
                    drp != 0, 1.0 - np.exp(-np.maximum(rp + sign * drp, 0.0)), x[:, P.RAMP]
                )
            return x

        state = states[ps].take(rr)
        won, _, _ = forward(
            cal,
            org.seg[rr],
            x_of_week,
            org.hire_day[rr],
            res.end_day[rr],
            lambda d, rr=rr: avail[d, rr].astype(float),
            ps,
            pe,
            state=state,
        )
        out[rows] = won[:, p]
    return out


def intervention_truth(cal, org, res, truth: pd.DataFrame, states, rng: np.random.Generator):
    """(per applied intervention effects, per (intervention, cause) average effects)."""
    key = pd.Series(np.arange(len(truth)), index=pd.MultiIndex.from_arrays([truth["rep"], truth["period"]]))
    # 1. the interventions that happened: expected attainment with it versus without it
    rows = []
    for iv in res.interventions:
        if (iv.rep, iv.period) in key.index:
            rows.append(iv)
    applied = pd.DataFrame()
    if rows:
        reps = np.array([iv.rep for iv in rows])
        periods = np.array([iv.period for iv in rows])
        effects = [[(k, g, b, iv.first_week) for k, g, b in iv.effects] for iv in rows]
        without = _run_from_period_start(cal, res, org, states, reps, periods, effects, -1.0, True)
        idx = key.loc[list(zip(reps, periods, strict=True))].to_numpy()
        t = truth.iloc[idx]
        q = t["quota_amount"].to_numpy()
        e_with = t["expected_won"].to_numpy()
        m2 = t["won_m2"].to_numpy()
        cause = t["top_deficit"].to_numpy()
        applied = pd.DataFrame(
            {
                "rep": reps,
                "period": periods,
                "intervention": [iv.intervention for iv in rows],
                "started": [iv.started for iv in rows],
                "ended": [iv.ended for iv in rows],
                "perceived_cause": pd.Series([iv.perceived_cause for iv in rows], dtype="str"),
                "true_cause": pd.Series(cause, dtype="str"),
                "recommended": [
                    c is not None
                    and isinstance(c, str)
                    and iv.intervention in CAUSE_TO_INTERVENTIONS.get(c, ())
                    for iv, c in zip(rows, cause, strict=True)
                ],
                "expected_attainment_with": e_with / q,
                "expected_attainment_without": without / q,
                "delta_expected_attainment": (e_with - without) / q,
                "delta_miss_prob": lognormal_miss_prob(e_with, m2, q)
                - lognormal_miss_prob(without, m2 * (without / np.maximum(e_with, 1e-9)) ** 2, q),
            }
        )
    # 2. a designed experiment: every catalog id given at day 28 to at-risk reps of each cause
    risky = truth[truth["at_risk"].to_numpy() & truth["top_deficit"].notna().to_numpy()]
    parts = []
    for c in CAUSES:
        cand = np.flatnonzero(risky["top_deficit"].to_numpy() == c)
        if len(cand):
            t = risky.iloc[np.sort(rng.choice(cand, size=min(40, len(cand)), replace=False))].copy()
            t["cause"] = c
            parts.append(t)
    exp_rows = []
    if parts:
        catalog = list(P.INTERVENTION_EFFECTS)
        t = pd.concat(parts, ignore_index=True)
        nc = len(catalog)
        reps = np.repeat(t["rep"].to_numpy(), nc)
        periods = np.repeat(t["period"].to_numpy(), nc)
        ivs = np.tile(np.array(catalog, dtype=object), len(t))
        effects = []
        for r, p, iv in zip(reps, periods, ivs, strict=True):
            w0 = (int(cal.period_start_day[p]) + 28) // 7 + P.EFFECT_LAG_WEEKS
            wd = min(w0 - 1, res.DEF.shape[0] - 1)
            eff = []
            for k, f, b in P.INTERVENTION_EFFECTS[iv]:
                if k == P.RAMP:
                    gain = P.MENTORING_SPEEDUP * 7.0 / P.RAMP_TAU[org.seg[r]] * P.MENTORING_WEEKS
                else:
                    gain = f * float(res.DEF[wd, r, k])
                eff.append((k, gain, b, w0))
            effects.append(eff)
        e_hyp = _run_from_period_start(cal, res, org, states, reps, periods, effects, +1.0, False)
        rep_col = lambda c: np.repeat(t[c].to_numpy(), nc)  # noqa: E731
        q, e0, m2 = rep_col("quota_amount"), rep_col("expected_won"), rep_col("won_m2")
        d_miss = lognormal_miss_prob(
            e_hyp, m2 * (e_hyp / np.maximum(e0, 1e-9)) ** 2, q
        ) - lognormal_miss_prob(e0, m2, q)
        excess = np.maximum(np.log(rep_col("trait_quota_difficulty") / rep_col("bias_factor")), 0.0)
        next_relief = np.where(
            ivs == "smart_goals", rep_col("expected_attainment") * (np.exp(0.5 * excess) - 1.0), 0.0
        )
        df = pd.DataFrame(
            {
                "cause": rep_col("cause"),
                "intervention": ivs,
                "d_att": (e_hyp - e0) / q,
                "d_miss": d_miss,
                "d_next": next_relief,
            }
        )
        g = df.groupby(["cause", "intervention"], sort=False).agg(
            n_reps=("d_att", "size"),
            d_att=("d_att", "mean"),
            d_miss=("d_miss", "mean"),
            d_next=("d_next", "mean"),
        )
        for (c, iv), row in g.iterrows():
            exp_rows.append(
                {
                    "intervention": iv,
                    "cause": c,
                    "recommended": iv in CAUSE_TO_INTERVENTIONS[c],
                    "n_reps": int(row["n_reps"]),
                    "expected_delta_attainment": float(row["d_att"]),
                    "expected_delta_miss_prob": float(row["d_miss"]),
                    "expected_delta_attainment_next_period": float(row["d_next"]),
                }
            )
    effects_df = pd.DataFrame(exp_rows)
    design = {
        iv: "; ".join(
            f"{P.TRAITS[k]}: restores {f:.0%} of the deficit, +{b:g}"
            if k != P.RAMP
            else f"ramp: +{P.MENTORING_SPEEDUP:.0%} ramp pace for {P.MENTORING_WEEKS} weeks"
            for k, f, b in effs
        )
        + ("; halves next period's quota difficulty excess" if iv == "smart_goals" else "")
        for iv, effs in P.INTERVENTION_EFFECTS.items()
    }
    if len(effects_df):
        effects_df.insert(2, "mechanism", effects_df["intervention"].map(design))
        if len(applied):
            agg = (
                applied[applied["true_cause"].notna()]
                .groupby(["intervention", "true_cause"])
                .agg(
                    n_applied=("delta_expected_attainment", "size"),
                    applied_delta_attainment=("delta_expected_attainment", "mean"),
                )
            )
            agg.index = agg.index.set_names(["intervention", "cause"])
            effects_df = effects_df.merge(agg.reset_index(), on=["intervention", "cause"], how="left")
            effects_df["n_applied"] = effects_df["n_applied"].fillna(0).astype(int)
    return applied, effects_df
