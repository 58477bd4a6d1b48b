"""The day-by-day engine: latent traits drift weekly and drive deals, activities and engagement.

Everything is vectorised over reps (and open deals); the only Python loops are over days and weeks.
Raw outputs are integer-coded arrays; `simulator.output` turns them into contract tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simulator import params as P
from simulator.channels import channels, neutral_traits
from simulator.expect import REMAINING_FACTOR, backward
from simulator.org import Org
from simulator.timeline import Calendar
from simulator.truth import CAUSE_TO_INTERVENTIONS, CAUSES

CATALOG = tuple(P.INTERVENTION_EFFECTS)
NEVER = 10**9
METRICS = (
    "after_hours_minutes",
    "crm_logins",
    "csat",
    "one_on_one",
    "peer_sessions",
    "pto_days",
    "pulse_score",
    "training_hours",
)
M_AFTER, M_CRM, M_CSAT, M_1ON1, M_PEER, M_PTO, M_PULSE, M_TRAIN = range(len(METRICS))


class _Deals:
    """Growable column store of deals; a deal's id is its index (creation order)."""

    def __init__(self, cap: int = 1 << 16):
        self.size = 0
        self.rep = np.empty(cap, np.int32)
        self.created = np.empty(cap, np.int32)
        self.stage = np.empty(cap, np.int8)  # 0..3 open, 4 won, 5 lost
        self.amount = np.empty(cap, np.float64)
        self.exp_close = np.empty(cap, np.int32)
        self.close = np.empty(cap, np.int32)
        self.account = np.empty(cap, np.int32)
        self.product = np.empty(cap, np.int16)

    _cols = ("rep", "created", "stage", "amount", "exp_close", "close", "account", "product")

    def add(self, k: int) -> np.ndarray:
        if self.size + k > len(self.rep):
            cap = max(2 * len(self.rep), self.size + k)
            for c in self._cols:
                old = getattr(self, c)
                new = np.empty(cap, old.dtype)
                new[: self.size] = old[: self.size]
                setattr(self, c, new)
        ids = np.arange(self.size, self.size + k)
        self.size += k
        return ids

    def trimmed(self) -> dict[str, np.ndarray]:
        return {c: getattr(self, c)[: self.size] for c in self._cols}


@dataclass
class AppliedIntervention:
    rep: int
    intervention: str
    started: int  # day
    ended: int  # day, or NEVER when still running at the end
    period: int
    first_week: int  # first week its effect shows
    perceived_cause: str | None
    at_risk_perceived: bool
    # (trait, boost gain, bonus) as applied; RAMP gain is extra ramp progress per week
    effects: list[tuple[int, float, float]] = field(default_factory=list)


@dataclass
class EngineResult:
    deals: dict[str, np.ndarray]
    history: dict[str, np.ndarray]
    activities: dict[str, np.ndarray]
    engagement: dict[str, np.ndarray]
    end_day: np.ndarray
    quota: np.ndarray  # (n, periods), 0 = no quota
    quota_difficulty: np.ndarray  # quota / standard quota for the rep's situation
    quota_ramp: np.ndarray  # ramp relief x proration in the quota
    quota_base: np.ndarray  # (segments, periods) standard quota of a ramped rep
    won: np.ndarray  # (n, periods)
    n_won: np.ndarray
    X: np.ndarray  # (weeks, n, traits) trait values at each week's start
    DEF: np.ndarray  # deficits net of intervention boosts
    BOOST: np.ndarray  # intervention boosts in force (RAMP: extra ramp progress)
    on_leave: np.ndarray  # (days, n) bool
    interventions: list[AppliedIntervention]
    oracle: dict[str, np.ndarray]


class Engine:
    def __init__(self, cfg, cal: Calendar, org: Org, streams: dict[str, np.random.Generator], quota_base):
        self.cfg, self.cal, self.org = cfg, cal, org
        self.rng = streams
        self.quota_base = quota_base
        n = org.n
        self.n = n
        r = streams["traits"]
        self.tau = P.RAMP_TAU[org.seg]
        mgr = org.managers
        # traits: stable base + AR noise - (deficits - intervention boosts) + bonuses
        self.base = np.zeros((n, P.N_TRAITS))
        for k in P.FREE_TRAITS:
            self.base[:, k] = r.normal(0, P.BASE_SD[k], n)
        self.base[:, P.MANAGER] = mgr["quality_base"].to_numpy()[org.manager]
        self.noise = np.zeros((n, P.N_TRAITS))
        self.noise[:, P.FREE_TRAITS] = r.normal(0, P.NOISE_SD, (n, len(P.FREE_TRAITS)))
        self.d_pers = np.zeros((n, P.N_TRAITS))
        for k, (prob, lo, hi) in P.PERSISTENT.items():
            self.d_pers[:, k] = np.where(r.random(n) < prob, r.uniform(lo, hi, n), 0.0)
        self.d_pers[:, P.MANAGER] = mgr["poor_severity"].to_numpy()[org.manager]
        self.d_ep = np.zeros((n, P.N_TRAITS))
        self.ep_type = np.full(n, -1)
        self.ep_age = np.zeros(n, int)
        self.ep_dur = np.zeros(n, int)
        self.ep_sev = np.zeros(n)
        self.boost = np.zeros((n, P.N_TRAITS))
        self.bonus = np.zeros((n, P.N_TRAITS))
        self.rp_boost = np.zeros(n)
        self.reg_left = np.zeros(len(P.REGIONS), int)
        self.x = np.zeros((n, P.N_TRAITS))
        self.deficit = np.zeros((n, P.N_TRAITS))
        self.pending: dict[int, list[tuple[int, int, float, float]]] = {}
        self.responder = streams["engagement"].random(n) < 0.85
        self.logs_1on1 = mgr["logs_one_on_ones"].to_numpy()[org.manager]
        # employment, leave, quotas
        self.end_day = np.full(n, NEVER, dtype=np.int64)
        self.pto_left = np.zeros(n, int)
        self.hard = np.zeros(n, bool)
        self.hard_excess = np.zeros(n)
        self.relief_next = np.zeros(n, bool)
        self.missed_last = np.zeros(n, bool)
        nP = cal.n_periods
        self.quota = np.zeros((n, nP))
        self.q_diff = np.ones((n, nP))
        self.q_ramp = np.ones((n, nP))
        self.won = np.zeros((n, nP))
        self.n_won = np.zeros((n, nP), int)
        self.check_week = np.full((n, nP), -1)
        self.until = {k: np.full(n, -1) for k in ("training", "mentoring", "checkins", "crm", "wlb")}
        self.interventions: list[AppliedIntervention] = []
        self.bias = (
            (org.gender == cfg.bias_quota_against)
            if cfg.bias_quota_against is not None
            else np.zeros(n, bool)
        )
        self.bias_factor = np.where(self.bias, P.QUOTA_BIAS_FACTOR, 1.0)
        W = cal.n_weeks
        self.X = np.zeros((W, n, P.N_TRAITS), np.float32)
        self.DEF = np.zeros((W, n, P.N_TRAITS), np.float32)
        self.BOOST = np.zeros((W, n, P.N_TRAITS), np.float32)
        self.on_leave = np.zeros((cal.n_days, n), bool)
        self.deals = _Deals()
        self.open = np.zeros(0, np.int64)
        self.hist: dict[str, list[np.ndarray]] = {
            k: [] for k in ("deal", "day", "seq", "stage", "amount", "close")
        }
        self.act: dict[str, list[np.ndarray]] = {k: [] for k in ("rep", "t", "type", "deal", "dur")}
        self.eng: dict[str, list[np.ndarray]] = {k: [] for k in ("rep", "day", "metric", "value")}
        self.oracle: dict[str, list[np.ndarray]] = {
            k: [] for k in ("rep", "period", "day", "risk", "exp", "won")
        }
        self.cycle_days = P.STAGE_DAYS.sum(axis=1) * 7 / 5
        # oracle snapshots: weekly from the start of each of the last two periods
        self.oracle_days: dict[int, int] = {}
        if cfg.oracle_sims > 0:
            for p in range(max(0, nP - 2), nP):
                for d in range(cal.period_start_day[p], cal.period_end_day[p] + 1, 7):
                    self.oracle_days[int(d)] = p

    # ---- traits ------------------------------------------------------------------------------
    def _weekly(self, w: int) -> None:
        cal, org, r = self.cal, self.org, self.rng["traits"]
        d = 7 * w
        n = self.n
        free = list(P.FREE_TRAITS)
        self.noise[:, free] = P.NOISE_PHI * self.noise[:, free] + r.normal(
            0, P.NOISE_SD * np.sqrt(1 - P.NOISE_PHI**2), (n, len(free))
        )
        self.d_pers[:, P.SKILL] = np.maximum(self.d_pers[:, P.SKILL] - P.SKILL_LEARNING_PER_WEEK, 0.0)
        date = cal.dates[min(d, cal.n_days - 1)]
        if cal.month[min(d, cal.n_days - 1)] == 0 and (date - date.astype("datetime64[M]")).astype(int) < 7:
            redraw = r.random(n) < P.TERRITORY_REDRAW_SHARE
            prob, lo, hi = P.PERSISTENT[P.TERRITORY]
            new_d = np.where(r.random(n) < prob, r.uniform(lo, hi, n), 0.0)
            new_b = r.normal(0, P.BASE_SD[P.TERRITORY], n)
            self.d_pers[redraw, P.TERRITORY] = new_d[redraw]
            self.base[redraw, P.TERRITORY] = new_b[redraw]
            self.boost[redraw, P.TERRITORY] = 0.0
        self._episodes(w, r)
        if w % 13 == 0:
            start = r.random(len(P.REGIONS)) < P.REGION_SHOCK_PROB
            self.reg_left = np.where(start, r.integers(8, 14, len(P.REGIONS)), self.reg_left)
        reg_d = np.where(self.reg_left > 0, P.REGION_SHOCK_SEVERITY, 0.0)
        self.reg_left = np.maximum(self.reg_left - 1, 0)
        for rep, k, inc, inc_b in self.pending.pop(w, []):
            if k == P.RAMP:
                self.rp_boost[rep] += inc
            else:
                self.boost[rep, k] += inc
                self.bonus[rep, k] += inc_b
        dtot = self.d_pers + self.d_ep
        dtot[:, P.PROCESS] += reg_d[org.region]
        self.boost = np.minimum(self.boost, dtot)
        self.boost[:, P.RAMP] = 0.0
        deficit = dtot - self.boost
        x = self.base + self.noise - deficit + self.bonus
        x[:, P.BURNOUT] = -deficit[:, P.BURNOUT]
        tenure = d - org.hire_day
        rp = np.maximum(tenure / self.tau + self.rp_boost, 0.0)
        x[:, P.RAMP] = np.where(tenure >= 0, 1.0 - np.exp(-rp), 0.0)
        deficit[:, P.RAMP] = 0.0
        self.x, self.deficit = x, deficit
        if w < self.X.shape[0]:
            self.X[w] = x
            self.DEF[w] = deficit
            b = self.boost.copy()
            b[:, P.RAMP] = self.rp_boost
            self.BOOST[w] = b
        self.ch = channels(org.seg, x)

    def _episodes(self, w: int, r: np.random.Generator) -> None:
        kinds = list(P.EPISODES)
        haz = np.array([P.EPISODES[k][0] for k in kinds])
        idle = self.ep_type < 0
        mult = np.ones((self.n, len(kinds)))
        eff_free = self.base[:, P.EFFORT] + self.noise[:, P.EFFORT]
        mult[:, kinds.index(P.BURNOUT)] = 1 + 1.5 * self.hard + 0.5 * (eff_free > 0.2)
        rates = haz * mult
        u = r.random(self.n)
        cum = np.cumsum(rates, axis=1)
        start = idle & (u < cum[:, -1])
        if start.any():
            idx = np.flatnonzero(start)
            kind = (u[idx, None] >= cum[idx]).sum(axis=1)
            ks = np.asarray(kinds)[kind]
            self.ep_type[idx] = ks
            self.ep_age[idx] = 0
            means = np.array([P.EPISODES[k][3] for k in ks])
            self.ep_dur[idx] = np.maximum(3, r.geometric(1.0 / means))
            lo = np.array([P.EPISODES[k][1] for k in ks])
            hi = np.array([P.EPISODES[k][2] for k in ks])
            self.ep_sev[idx] = r.uniform(lo, hi)
        act = self.ep_type >= 0
        if not act.any():
            return
        idx = np.flatnonzero(act)
        age, dur, sev, typ = self.ep_age[idx], self.ep_dur[idx], self.ep_sev[idx], self.ep_type[idx]
        level = np.where(
            age < dur,
            sev * np.minimum(1.0, (age + 1) / 2.0),
            sev * np.maximum(0.0, 1.0 - (age - dur + 1) / 2.0),
        )
        burn = typ == P.BURNOUT
        prev = self.d_ep[idx, P.BURNOUT]
        level = np.where(
            burn,
            np.where(
                age < dur,
                np.minimum(sev, P.BURNOUT_BUILD_PER_WEEK * (age + 1)),
                np.maximum(prev - P.BURNOUT_RECOVERY_PER_WEEK, 0.0),
            ),
            level,
        )
        self.d_ep[idx, typ] = level
        done = (age >= dur) & (level <= 0.0)
        self.ep_type[idx[done]] = -1
        self.ep_age[idx] += 1

    # ---- people --------------------------------------------------------------------------------
    def _leavers(self, w: int) -> None:
        d = 7 * w
        r = self.rng["traits"]
        org = self.org
        cand = (org.hire_day <= d - P.MIN_TENURE_TO_LEAVE) & (self.end_day == NEVER)
        haz = P.WEEKLY_LEAVE_HAZARD * (1 + 2.5 * (self.ch.burnout > 1.0)) * (1 + 0.6 * self.missed_last)
        leave = cand & (r.random(self.n) < haz)
        day = d + r.integers(0, 5, self.n)
        leave &= day < self.cal.n_days
        self.end_day[leave] = day[leave]

    def _set_quotas(self, p: int) -> None:
        cal, org = self.cal, self.org
        r = self.rng["quotas"]
        ps, pe = int(cal.period_start_day[p]), int(cal.period_end_day[p])
        n = self.n
        eligible = (org.hire_day <= pe - P.MIN_DAYS_FOR_QUOTA) & (self.end_day >= ps)
        stay = r.random(n) < P.HARD_QUOTA_STAY
        # the first period starts from the chain's stationary share of hard quotas
        p_start = (
            P.HARD_QUOTA_START / (P.HARD_QUOTA_START + 1 - P.HARD_QUOTA_STAY)
            if p == 0
            else P.HARD_QUOTA_START
        )
        start = r.random(n) < p_start
        excess = r.uniform(*P.HARD_QUOTA_EXCESS, n)
        new_hard = np.where(self.hard, stay, start)
        self.hard_excess = np.where(new_hard & ~self.hard, excess, self.hard_excess)
        self.hard = new_hard
        exc = np.where(self.hard, self.hard_excess, 0.0)
        exc = np.where(self.relief_next, 0.5 * exc, exc)
        self.hard &= ~self.relief_next
        self.relief_next[:] = False
        logd = r.normal(0, P.QUOTA_NOISE_SD, n) + exc
        days = pe - ps + 1
        prorate = (pe - np.maximum(org.hire_day, ps) + 1) / days
        tenure = np.maximum(ps - org.hire_day, 0)
        q0, full = P.QUOTA_RAMP
        qramp = np.clip(q0 + (1 - q0) * tenure / full, q0, 1.0)
        diff = np.exp(logd) * self.bias_factor
        raw = self.quota_base[org.seg, p] * prorate * qramp * diff
        q = np.maximum(np.round(raw / 1000.0) * 1000.0, 1000.0)
        self.quota[:, p] = np.where(eligible, q, 0.0)
        self.q_diff[:, p] = diff
        self.q_ramp[:, p] = prorate * qramp
        first_week = (ps + 6) // 7
        self.check_week[:, p] = np.where(eligible, first_week + r.integers(2, 9, n), -1)

    # ---- interventions -------------------------------------------------------------------------
    def _judged_traits(self, reps: np.ndarray) -> np.ndarray:
        """The traits a manager's projection at a check rests on (`SimConfig.manager_view`): the reps'
        true traits ("informed"), or those of a neutral rep at the rep's ramp ("observed": ramp shows
        in tenure and mentoring, nothing else of the latent state shows in the data)."""
        if self.cfg.manager_view == "informed":
            return self.x[reps]
        x = neutral_traits(len(reps))
        x[:, P.RAMP] = self.x[reps, P.RAMP]
        return x

    def _expected_final(self, reps: np.ndarray, d: int, p: int, x: np.ndarray | None = None) -> np.ndarray:
        """Expected won amount at period end from the state at the start of day d, traits frozen
        (at the reps' true traits, or at `x`): won so far, open deals by stage and amount, new deals."""
        cal = self.cal
        pe = int(cal.period_end_day[p])
        ch = channels(self.org.seg[reps], self.x[reps] if x is None else x)
        V, acc = backward(cal, ch, d, pe)
        exp_won = self.won[reps, p].copy()
        dl = self.deals
        o = self.open
        pos = np.full(self.n, -1)
        pos[reps] = np.arange(len(reps))
        sel = pos[dl.rep[o]] >= 0
        o = o[sel]
        if len(o):
            j = pos[dl.rep[o]]
            s = dl.stage[o].astype(int)
            np.add.at(exp_won, j, V[j, s] * dl.amount[o] * REMAINING_FACTOR[s])
        exp_won += ch.lam * (1 - P.EXPECTED_PTO_SHARE) * acc * ch.amt_mean * REMAINING_FACTOR[0]
        return exp_won

    def _checks(self, w: int) -> None:
        """Each rep's check week of the period: the manager projects the period's result (from what
        `manager_view` lets them see, with noise), judges the rep at risk or not, and, at random
        among the at-risk (CHECK_ACT_PROB), picks an intervention for the cause they perceive; a
        few reps not at risk get a routine one."""
        cal, org = self.cal, self.org
        d = 7 * w
        p = cal.period_of_day[min(d, cal.n_days - 1)]
        if p < 0:
            return
        r = self.rng["interventions"]
        reps = np.flatnonzero((self.check_week[:, p] == w) & (self.end_day > d) & (org.hire_day <= d))
        if len(reps) == 0:
            return
        exp_won = self._expected_final(reps, d, p, self._judged_traits(reps))
        ratio = exp_won / self.quota[reps, p] * np.exp(r.normal(0, P.CHECK_NOISE_SD, len(reps)))
        at_risk = ratio < P.CHECK_AT_RISK_RATIO
        u_act = r.random(len(reps))
        for i, rep in enumerate(reps):
            if at_risk[i]:
                if u_act[i] >= P.CHECK_ACT_PROB:
                    continue
                cause = self._perceived_cause(rep, p, r)
                right = CAUSE_TO_INTERVENTIONS[cause]
                if r.random() < P.CHECK_RIGHT_PROB:
                    iv = right[r.integers(len(right))]
                else:
                    wrong = [c for c in CATALOG if c not in right]
                    iv = wrong[r.integers(len(wrong))]
            else:
                if u_act[i] >= P.BACKGROUND_INTERVENTION_PROB:
                    continue
                cause = None
                tenure = d - org.hire_day[rep]
                iv = "mentoring" if (tenure < 180 and r.random() < 0.5) else CATALOG[r.integers(len(CATALOG))]
            self._apply(rep, iv, d + int(r.integers(0, 5)), p, cause, bool(at_risk[i]), r)

    def _perceived_cause(self, rep: int, p: int, r: np.random.Generator) -> str:
        x = self.x[rep]
        deficit = {
            "skill": max(0.0, -x[P.SKILL]),
            "effort": max(0.0, -x[P.EFFORT]),
            "territory": max(0.0, -x[P.TERRITORY]),
            "process": max(0.0, -x[P.PROCESS]),
            "customer": max(0.0, -x[P.CUSTOMER]),
            "burnout": max(0.0, -x[P.BURNOUT] - 0.3),
            "ramp": 1.0 - x[P.RAMP],
            "quota": max(0.0, float(np.log(self.q_diff[rep, p]))),
            "manager": max(0.0, -x[P.MANAGER]),
        }
        score = np.array([P.PERCEIVED_WEIGHT[c] * deficit[c] for c in CAUSES]) + r.normal(0, 0.1, len(CAUSES))
        return CAUSES[int(np.argmax(score))]

    def _apply(self, rep, iv, start, p, cause, at_risk, r) -> None:
        cal = self.cal
        start = min(start, cal.n_days - 1, int(self.end_day[rep]))
        end = start + int(r.integers(*P.INTERVENTION_DAYS))
        end = min(end, int(self.end_day[rep])) if self.end_day[rep] != NEVER else end
        ended = end if end <= cal.n_days - 1 else NEVER
        w0 = start // 7 + P.EFFECT_LAG_WEEKS
        applied = []
        for k, f, b in P.INTERVENTION_EFFECTS[iv]:
            if k == P.RAMP:
                inc = P.MENTORING_SPEEDUP * 7.0 / self.tau[rep]
                for j in range(P.MENTORING_WEEKS):
                    self.pending.setdefault(w0 + j, []).append((rep, k, inc, 0.0))
                applied.append((k, inc * P.MENTORING_WEEKS, 0.0))
                continue
            gain = f * float(self.deficit[rep, k])
            for j in range(P.EFFECT_RAMP_WEEKS):
                self.pending.setdefault(w0 + j, []).append(
                    (rep, k, gain / P.EFFECT_RAMP_WEEKS, b / P.EFFECT_RAMP_WEEKS)
                )
            applied.append((k, gain, b))
        if iv == "smart_goals":
            self.relief_next[rep] = True
        key = {
            "skills_training": "training",
            "development_plan": "training",
            "mentoring": "mentoring",
            "regular_checkins": "checkins",
            "manager_coaching": "checkins",
            "crm_adoption": "crm",
            "work_life_balance": "wlb",
            "wellbeing_support": "wlb",
        }.get(iv)
        if key:
            self.until[key][rep] = max(self.until[key][rep], min(end, cal.n_days - 1))
        self.interventions.append(
            AppliedIntervention(
                int(rep), iv, int(start), int(ended), int(p), int(w0), cause, at_risk, applied
            )
        )

    # ---- the day -------------------------------------------------------------------------------
    def _close_leavers(self, d: int) -> None:
        dl, o = self.deals, self.open
        gone = self.end_day[dl.rep[o]] < d
        if not gone.any():
            return
        g = o[gone]
        dl.stage[g] = 5
        dl.close[g] = self.end_day[dl.rep[g]]
        self._hist(g, dl.close[g], 3, dl.stage[g], dl.amount[g], dl.close[g])
        self.open = o[~gone]

    def _hist(self, ids, day, seq, stage, amount, close) -> None:
        k = len(ids)
        h = self.hist
        h["deal"].append(np.asarray(ids, np.int64))
        h["day"].append(np.broadcast_to(np.asarray(day, np.int32), (k,)).copy())
        h["seq"].append(np.full(k, seq, np.int8))
        h["stage"].append(np.asarray(stage, np.int8).copy())
        h["amount"].append(np.asarray(amount, np.float64).copy())
        h["close"].append(np.asarray(close, np.int32).copy())

    def _progress(self, d: int) -> None:
        r = self.rng["deals"]
        dl, o, ch, cal = self.deals, self.open, self.ch, self.cal
        if len(o) == 0:
            return
        rep = dl.rep[o]
        s = dl.stage[o].astype(int)
        k = len(o)
        h = ch.h[rep, s] * np.where(s == 3, cal.push[d], 1.0)
        h = np.where(s == 3, np.minimum(h, 0.95), h)
        dies = r.random(k) < ch.delta[rep]
        exits = ~dies & (r.random(k) < h)
        adv = exits & (r.random(k) < ch.p[rep, s])
        lost = dies | (exits & ~adv)
        # advancing deals: amounts re-estimated on entering Proposal, discounted on entering Negotiation
        ai = o[adv]
        ns = s[adv] + 1
        amt = dl.amount[ai]
        to_prop = ns == 2
        to_neg = ns == 3
        amt = np.where(to_prop, np.round(amt * np.exp(r.normal(0, P.PROPOSAL_SIGMA, len(ai))), -1), amt)
        amt = np.where(to_neg, np.round(amt * r.uniform(P.DISCOUNT_LO, P.DISCOUNT_HI, len(ai)), -1), amt)
        dl.amount[ai] = amt
        won = ns == 4
        dl.stage[ai] = np.where(won, 4, ns)
        wi = ai[won]
        dl.close[wi] = d
        p = cal.period_of_day[d]
        if p >= 0 and len(wi):
            np.add.at(self.won[:, p], dl.rep[wi], dl.amount[wi])
            np.add.at(self.n_won[:, p], dl.rep[wi], 1)
        li = o[lost]
        dl.stage[li] = 5
        dl.close[li] = d
        changed = np.concatenate([ai, li])
        close = np.where(dl.stage[changed] >= 4, d, dl.exp_close[changed])
        self._hist(changed, d, 1, dl.stage[changed], dl.amount[changed], close)
        still = ~lost & ~(adv & (s == 3))
        o = o[still]
        # expected close dates that passed slip into the future
        late = dl.exp_close[o] < d
        if late.any():
            li = o[late]
            mean = 10.0 * np.exp(-0.4 * self.x[dl.rep[li], P.PROCESS])
            dl.exp_close[li] = d + 7 + np.round(r.exponential(mean)).astype(np.int32)
            self._hist(li, d, 2, dl.stage[li], dl.amount[li], dl.exp_close[li])
        self.open = o

    def _create(self, d: int, avail: np.ndarray) -> None:
        r = self.rng["deals"]
        org, ch, dl = self.org, self.ch, self.deals
        lam = ch.lam * self.cal.season[d] * avail
        cnt = r.poisson(lam)
        tot = int(cnt.sum())
        if tot == 0:
            return
        rep = np.repeat(np.arange(self.n), cnt)
        ids = dl.add(tot)
        seg = org.seg[rep]
        dl.rep[ids] = rep
        dl.created[ids] = d
        dl.stage[ids] = 0
        med = P.AMOUNT_MEDIAN[seg] * ch.amt_mult[rep]
        dl.amount[ids] = np.maximum(
            np.round(med * np.exp(P.AMOUNT_SIGMA[seg] * r.standard_normal(tot)), -1), 10.0
        )
        # reps forecast a close date around the segment's typical cycle; late deals slip (see _progress)
        dl.exp_close[ids] = d + np.round(self.cycle_days[seg] * r.uniform(0.7, 1.3, tot)).astype(np.int32)
        dl.close[ids] = -1
        dl.account[ids] = rep * P.ACCOUNTS_PER_REP + (P.ACCOUNTS_PER_REP * r.random(tot) ** 2).astype(int)
        nprod = np.array([len(x) for x in P.PRODUCTS])[seg]
        dl.product[ids] = (r.random(tot) * nprod).astype(int)
        self._hist(ids, d, 0, np.zeros(tot, np.int8), dl.amount[ids], dl.exp_close[ids])
        self.open = np.concatenate([self.open, ids])

    def _activities(self, d: int, avail: np.ndarray) -> np.ndarray:
        """Write the day's activities; return meetings+demos per rep (customers rate those)."""
        r = self.rng["activities"]
        org, ch, dl = self.org, self.ch, self.deals
        cnt = r.poisson(ch.act_rate * avail)
        tot = int(cnt.sum())
        if tot == 0:
            return np.zeros(self.n, int)
        rep = np.repeat(np.arange(self.n), cnt)
        typ = np.searchsorted(np.cumsum(P.ACTIVITY_MIX), r.random(tot) * 0.999999).astype(np.int8)
        after_p = 0.03 + 0.25 * np.minimum(ch.burnout[rep], 1.0)
        after = r.random(tot) < after_p
        local = np.where(
            after, 18.5 * 3600 + r.random(tot) * 4.5 * 3600, 8 * 3600 + r.random(tot) * 10 * 3600
        )
        t = d * 86400 + local.astype(np.int64) - P.REGION_UTC_OFFSET_H[org.region[rep]] * 3600
        dur = np.full(tot, np.nan, np.float32)
        c = typ == 0
        dur[c] = np.maximum(1, np.round(np.exp(np.log(6) + 0.6 * r.standard_normal(int(c.sum())))))
        m = typ == 2
        dur[m] = np.array([30, 45, 60])[r.integers(0, 3, int(m.sum()))]
        dm = typ == 3
        dur[dm] = np.array([45, 60, 90])[r.integers(0, 3, int(dm.sum()))]
        # link to one of the rep's open deals
        o = self.open
        deal = np.full(tot, -1, np.int64)
        if len(o):
            orep = dl.rep[o]
            order = np.argsort(orep, kind="stable")
            counts = np.bincount(orep, minlength=self.n)
            starts = np.cumsum(counts) - counts
            link_p = np.array([0.5, 0.35, 0.6, 0.9])[typ]
            k = counts[rep]
            link = (k > 0) & (r.random(tot) < link_p)
            pick = starts[rep[link]] + (r.random(int(link.sum())) * k[link]).astype(int)
            deal[link] = o[order[pick]]
        a = self.act
        a["rep"].append(rep.astype(np.int32))
        a["t"].append(t)
        a["type"].append(typ)
        a["deal"].append(deal)
        a["dur"].append(dur)
        md = (typ >= 2).astype(int)
        return np.bincount(rep, weights=md, minlength=self.n).astype(int)

    def _engagement(self, d: int, active: np.ndarray, pto: np.ndarray, meet: np.ndarray) -> None:
        r = self.rng["engagement"]
        x, ch, n = self.x, self.ch, self.n
        work = active & ~pto
        B = ch.burnout
        rows = []  # (mask, metric, values)
        rows.append((active & pto, M_PTO, np.ones(n)))
        ah = work & (r.random(n) < 0.25 + 0.5 * np.minimum(B, 1.0) + 0.1 * np.maximum(x[:, P.EFFORT], 0))
        ah_val = np.minimum(np.maximum(1, np.round(r.gamma(2.0, (10 + 70 * np.minimum(B, 2.0)) / 2.0))), 600)
        rows.append((ah, M_AFTER, ah_val))
        crm_rate = (
            3.0
            * np.exp(0.7 * x[:, P.PROCESS] + 0.15 * x[:, P.EFFORT])
            * np.where(self.until["crm"] >= d, 1.3, 1.0)
        )
        logins = r.poisson(crm_rate)
        rows.append((work & (logins > 0), M_CRM, logins.astype(float)))
        cs = work & (r.random(n) < 1 - np.exp(-0.3 * meet))
        cs_val = np.clip(np.round(4.1 + 0.9 * x[:, P.CUSTOMER] + r.normal(0, 0.7, n)), 1, 5)
        rows.append((cs, M_CSAT, cs_val))
        tenure = d - self.org.hire_day
        tp = 0.04 + 0.3 * (self.until["training"] >= d) + 0.1 * (tenure < 90)
        rows.append((work & (r.random(n) < tp), M_TRAIN, 0.5 * r.integers(1, 8, n)))
        pp = 0.03 + 0.2 * (self.until["mentoring"] >= d) + 0.05 * (tenure < 120)
        rows.append((work & (r.random(n) < pp), M_PEER, np.ones(n)))
        weekly = np.where(
            self.until["checkins"] >= d, 0.95, 0.95 / (1 + np.exp(-(0.4 + 2.0 * x[:, P.MANAGER])))
        )
        rows.append((work & self.logs_1on1 & (r.random(n) < weekly / 5), M_1ON1, np.ones(n)))
        if (d % 14) == 11:  # every other Friday
            pulse = np.clip(
                np.round(
                    7.0
                    + 0.8 * x[:, P.MANAGER]
                    + 0.5 * x[:, P.EFFORT]
                    + 0.3 * x[:, P.PROCESS]
                    - 2.0 * B
                    + r.normal(0, 1.0, n)
                ),
                0,
                10,
            )
            rows.append((work & self.responder & (r.random(n) < 0.75), M_PULSE, pulse))
        e = self.eng
        for mask, metric, vals in rows:
            idx = np.flatnonzero(mask)
            if len(idx):
                e["rep"].append(idx.astype(np.int32))
                e["day"].append(np.full(len(idx), d, np.int32))
                e["metric"].append(np.full(len(idx), metric, np.int8))
                e["value"].append(vals[idx].astype(np.float64))

    def _off_day_engagement(self, d: int, active: np.ndarray) -> None:
        """Weekends and holidays: some reps still log in, and burnt-out reps work (after hours)."""
        r = self.rng["engagement"]
        n, B = self.n, self.ch.burnout
        on = active & (self.pto_left == 0)
        work = on & (r.random(n) < 0.04 + 0.35 * np.minimum(B, 1.0))
        minutes = np.minimum(np.maximum(1, np.round(r.gamma(2.0, (20 + 60 * np.minimum(B, 2.0)) / 2.0))), 600)
        login = on & (work | (r.random(n) < 0.05))
        e = self.eng
        for mask, metric, vals in ((work, M_AFTER, minutes), (login, M_CRM, 1.0 + r.poisson(0.5, n))):
            idx = np.flatnonzero(mask)
            if len(idx):
                e["rep"].append(idx.astype(np.int32))
                e["day"].append(np.full(len(idx), d, np.int32))
                e["metric"].append(np.full(len(idx), metric, np.int8))
                e["value"].append(vals[idx].astype(np.float64))

    def _leave_today(self, d: int, active: np.ndarray) -> np.ndarray:
        r = self.rng["engagement"]
        on = self.pto_left > 0
        start = (
            active
            & ~on
            & (
                r.random(self.n)
                < P.PTO_START * np.exp(-2.5 * self.ch.burnout) * np.where(self.until["wlb"] >= d, 3.0, 1.0)
            )
        )
        self.pto_left = np.where(start, r.geometric(1.0 / P.PTO_MEAN_DAYS, self.n), self.pto_left)
        pto = active & (self.pto_left > 0)
        self.pto_left = np.maximum(self.pto_left - 1, 0)
        return pto

    def _oracle(self, d: int, p: int) -> None:
        from simulator.oracle import oracle_snapshot

        org = self.org
        reps = np.flatnonzero((self.quota[:, p] > 0) & (org.hire_day <= d) & (self.end_day >= d))
        if len(reps) == 0:
            return
        res = oracle_snapshot(self, reps, d, p, self.cfg.oracle_sims, self.rng["oracle"])
        o = self.oracle
        o["rep"].append(reps)
        o["period"].append(np.full(len(reps), p))
        o["day"].append(np.full(len(reps), d))
        o["risk"].append(res[0])
        o["exp"].append(res[1])
        o["won"].append(self.won[reps, p].copy())

    def run(self) -> EngineResult:
        cal, org = self.cal, self.org
        period_starts = {int(d): p for p, d in enumerate(cal.period_start_day)}
        period_ends = {int(d): p for p, d in enumerate(cal.period_end_day)}
        for d in range(cal.n_days):
            if d % 7 == 0:
                w = d // 7
                self._weekly(w)
                self._leavers(w)
            if d in period_starts:
                self._set_quotas(period_starts[d])
            if d % 7 == 0:
                self._checks(d // 7)
            if d in self.oracle_days:
                self._oracle(d, self.oracle_days[d])
            if cal.working[d]:
                active = (org.hire_day <= d) & (d <= self.end_day)
                self._close_leavers(d)
                pto = self._leave_today(d, active)
                self.on_leave[d] = pto
                avail = (active & ~pto).astype(float)
                self._progress(d)
                self._create(d, avail)
                if d >= cal.emit_start_day:
                    meet = self._activities(d, avail)
                    self._engagement(d, active, pto, meet)
            elif d >= cal.emit_start_day:
                self._off_day_engagement(d, (org.hire_day <= d) & (d <= self.end_day))
            if d in period_ends:
                p = period_ends[d]
                has = self.quota[:, p] > 0
                self.missed_last = has & (self.won[:, p] < self.quota[:, p])
        cat = lambda parts, dt: np.concatenate(parts).astype(dt) if parts else np.zeros(0, dt)  # noqa: E731
        hist = {k: cat(v, v[0].dtype if v else np.float64) for k, v in self.hist.items()}
        act = {k: cat(v, v[0].dtype if v else np.float64) for k, v in self.act.items()}
        eng = {k: cat(v, v[0].dtype if v else np.float64) for k, v in self.eng.items()}
        orc = {k: cat(v, v[0].dtype if v else np.float64) for k, v in self.oracle.items()}
        return EngineResult(
            deals=self.deals.trimmed(),
            history=hist,
            activities=act,
            engagement=eng,
            end_day=self.end_day,
            quota=self.quota,
            quota_difficulty=self.q_diff,
            quota_ramp=self.q_ramp,
            quota_base=self.quota_base,
            won=self.won,
            n_won=self.n_won,
            X=self.X,
            DEF=self.DEF,
            BOOST=self.BOOST,
            on_leave=self.on_leave,
            interventions=self.interventions,
            oracle=orc,
        )
