"""Every number that shapes the synthetic organisation, in one place.

The engine, the mean-field expectations (truth) and the oracle all read these, so the
hidden truth is computed from exactly the model that generated the data.
"""

from __future__ import annotations

import numpy as np

# --- organisation -------------------------------------------------------------------------
SEGMENTS = ("SMB", "Mid-Market", "Enterprise")
SEGMENT_SHARE = np.array([0.5, 0.33, 0.17])
REGIONS = ("North America", "EMEA", "APAC", "LATAM")
REGION_SHARE = np.array([0.4, 0.3, 0.2, 0.1])
REGION_UTC_OFFSET_H = np.array([-5, 1, 8, -3])  # local working hours are shifted to UTC with this
TEAM_SIZE = 8  # reps per first-line manager
DIRECTOR_LED_SHARE = 0.1  # share of teams whose reps report to a regional director directly
GENDERS = ("F", "M", "X")
GENDER_SHARE = np.array([0.47, 0.51, 0.02])
AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55+")
AGE_SHARE = np.array([0.12, 0.42, 0.28, 0.13, 0.05])
QUOTA_BIAS_FACTOR = 1.25  # quotas of the `bias_quota_against` group are this much harder

WARMUP_DAYS = 182  # deals are simulated from about this long before the first period
EMIT_LOOKBACK_DAYS = 91  # activities and engagement are written from this long before it
QUARTERLY_HIRE_RATE = 0.057  # hires per head per quarter (sets the initial/hired split)
WEEKLY_LEAVE_HAZARD = 0.0033
MIN_TENURE_TO_LEAVE = 120
MIN_DAYS_FOR_QUOTA = 45  # a rep hired later than period_end - 45 days has no quota that period

# --- deals, per segment (index = segment) --------------------------------------------------
OPEN_STAGES = ("Prospecting", "Qualification", "Proposal", "Negotiation")
WON_STAGE, LOST_STAGE = "Closed Won", "Closed Lost"
LAMBDA0 = np.array([0.8, 0.5, 0.35])  # new deals per working day of a neutral, ramped rep
AMOUNT_MEDIAN = np.array([10_000.0, 30_000.0, 70_000.0])
AMOUNT_SIGMA = np.array([0.4, 0.45, 0.5])
STAGE_DAYS = np.array(  # mean working days in each open stage
    [[5.0, 5.0, 6.0, 5.0], [9.0, 9.0, 11.0, 9.0], [14.0, 16.0, 20.0, 16.0]]
)
P_ADVANCE = np.array(  # probability of moving to the next stage when leaving a stage
    [[0.70, 0.78, 0.75, 0.80], [0.70, 0.78, 0.75, 0.80], [0.68, 0.76, 0.75, 0.80]]
)
DEATH0 = np.array([0.006, 0.004, 0.003])  # daily chance an open deal goes dark (lost)
TARGET_RATIO = np.array([2.05, 2.2, 2.3])  # neutral expected won / standard quota
RAMP_TAU = np.array([45.0, 70.0, 100.0])  # days: ramp = 1 - exp(-tenure / tau)
PRODUCTS = (("Starter", "Pro"), ("Pro", "Business", "Add-on"), ("Enterprise", "Platform", "Services"))
ACCOUNTS_PER_REP = 60
# amount re-estimated on entering Proposal: x exp(N(0, 0.2)); discounted on entering Negotiation: x U(0.85, 1.02)
PROPOSAL_SIGMA = 0.2
DISCOUNT_LO, DISCOUNT_HI = 0.85, 1.02
E_PROPOSAL = float(np.exp(PROPOSAL_SIGMA**2 / 2))
E2_PROPOSAL = float(np.exp(2 * PROPOSAL_SIGMA**2))
E_DISCOUNT = (DISCOUNT_LO + DISCOUNT_HI) / 2
E2_DISCOUNT = (DISCOUNT_HI**3 - DISCOUNT_LO**3) / (3 * (DISCOUNT_HI - DISCOUNT_LO))

# --- calendar --------------------------------------------------------------------------------
# month -> multiplier of new-deal creation (Q4 strongest, summer and January slower)
CREATION_SEASON = np.array([0.85, 0.9, 1.0, 1.0, 1.0, 0.95, 0.85, 0.85, 1.1, 1.15, 1.05, 0.8])
PUSH_WORKING_DAYS = 10  # end-of-quarter push: Negotiation closes faster in the last 10 working days
PUSH_FACTOR = 1.8
Q4_CLOSE_FACTOR = 1.5  # November-December budget flush on Negotiation closes

# --- latent traits ---------------------------------------------------------------------------
# index of each trait in trait arrays; quota difficulty lives per period, not here
SKILL, EFFORT, TERRITORY, PROCESS, CUSTOMER, BURNOUT, RAMP, MANAGER = range(8)
TRAITS = ("skill", "effort", "territory", "process", "customer", "burnout", "ramp", "manager")
N_TRAITS = 8
FREE_TRAITS = (SKILL, EFFORT, TERRITORY, PROCESS, CUSTOMER, MANAGER)  # have a base and an AR noise
BASE_SD = np.array([0.18, 0.18, 0.18, 0.15, 0.15, 0.0, 0.0, 0.0])  # per-rep stable part
MANAGER_BASE_SD = 0.1
NOISE_SD = 0.1  # stationary sd of the weekly AR(1) drift
NOISE_PHI = 0.85
# persistent problems drawn at hire: (probability, severity low, severity high)
PERSISTENT = {
    SKILL: (0.08, 0.7, 1.4),
    TERRITORY: (0.045, 0.7, 1.4),
    CUSTOMER: (0.04, 0.7, 1.4),
    PROCESS: (0.04, 0.7, 1.3),
}
POOR_MANAGER_SHARE = 0.1
POOR_MANAGER_SEVERITY = (0.7, 1.3)
SKILL_LEARNING_PER_WEEK = 0.002  # persistent skill gaps close slowly on the job
TERRITORY_REDRAW_SHARE = 0.2  # each January this share of reps gets a new territory
# episodes: weekly start hazard, severity range, mean duration in weeks
EPISODES = {
    EFFORT: (0.007, 0.8, 1.5, 12.0),
    PROCESS: (0.007, 0.8, 1.4, 12.0),
    CUSTOMER: (0.003, 0.8, 1.5, 12.0),
    BURNOUT: (0.0070, 1.2, 2.0, 14.0),
}
BURNOUT_BUILD_PER_WEEK = 0.15
BURNOUT_RECOVERY_PER_WEEK = 0.1
REGION_SHOCK_PROB = 0.1  # per region and quarter: a new process / tool rollout hurts everyone in it
REGION_SHOCK_SEVERITY = 0.6
HARD_QUOTA_START = 0.06  # per rep-period chance a rep starts getting hard quotas
HARD_QUOTA_STAY = 0.6
HARD_QUOTA_EXCESS = (0.3, 0.55)  # log quota difficulty added when hard
QUOTA_NOISE_SD = 0.08
QUOTA_RAMP = (0.1, 210.0)  # new hires' quota: share at day 0, rising linearly to full after this many days

# --- how traits drive observable behaviour (shared by engine, truth and oracle) -------------
LATE_BURNOUT = 0.6  # burnout above this starts to cut activity and results
ACTIVITY_BASE = 4.0  # activities per working day of a neutral rep
ACTIVITY_MIX = np.array([0.36, 0.40, 0.16, 0.08])  # call, email, meeting, demo
ACTIVITY_TYPES = ("call", "email", "meeting", "demo")
PTO_START = 0.016  # daily chance of starting a leave spell (mean 3 days)
PTO_MEAN_DAYS = 3.0
EXPECTED_PTO_SHARE = 0.045  # used for the neutral rep behind standard quotas

# --- interventions ----------------------------------------------------------------------------
# at a check (one week per rep-period, weeks 2-8 of it) the manager projects the rep's won amount
# at period end and judges the rep at risk when projection / quota x exp(N(0, CHECK_NOISE_SD)) is
# below CHECK_AT_RISK_RATIO. What the projection rests on is `SimConfig.manager_view`:
#   "informed": the rep's true latent traits this week (private information no table shows: a fresh
#               episode, a burnout building up), so among reps with the same data the helped ones
#               are truly worse off (hidden confounding for any observational effect estimate);
#   "observed": only what the CRM shows: won so far, the open deals with their stages and amounts,
#               and the new business of a neutral rep of the segment at the rep's ramp (tenure).
MANAGER_VIEWS = ("informed", "observed")
CHECK_NOISE_SD = 0.15
CHECK_AT_RISK_RATIO = 0.95
CHECK_ACT_PROB = 0.27  # a manager who sees a rep at risk acts with this probability
CHECK_RIGHT_PROB = 0.75  # ... choosing an intervention that answers the perceived cause
BACKGROUND_INTERVENTION_PROB = 0.02  # routine interventions for reps not at risk
EFFECT_LAG_WEEKS = 1
EFFECT_RAMP_WEEKS = 3
MENTORING_SPEEDUP = 0.5  # extra ramp progress per day, as a share of the normal pace
MENTORING_WEEKS = 8
# intervention -> list of (trait, share of the current deficit restored, permanent bonus)
INTERVENTION_EFFECTS: dict[str, list[tuple[int, float, float]]] = {
    "skills_training": [(SKILL, 0.6, 0.1)],
    "development_plan": [(SKILL, 0.5, 0.1)],
    "incentives": [(EFFORT, 0.7, 0.1)],
    "recognition": [(EFFORT, 0.5, 0.05), (BURNOUT, 0.2, 0.0)],
    "crm_adoption": [(PROCESS, 0.5, 0.1)],
    "process_simplification": [(PROCESS, 0.65, 0.1)],
    "pipeline_generation": [(TERRITORY, 0.6, 0.1)],
    "customer_service_training": [(CUSTOMER, 0.65, 0.1)],
    "wellbeing_support": [(BURNOUT, 0.7, 0.0)],
    "work_life_balance": [(BURNOUT, 0.6, 0.0)],
    "mentoring": [(RAMP, 0.0, 0.0), (SKILL, 0.2, 0.05)],
    "smart_goals": [(EFFORT, 0.0, 0.2)],  # and next period's quota difficulty excess is halved
    "regular_checkins": [(MANAGER, 0.5, 0.05)],
    "manager_coaching": [(MANAGER, 0.65, 0.05)],
    "team_building": [(EFFORT, 0.15, 0.05), (BURNOUT, 0.15, 0.0)],
    "feedback_channel": [(PROCESS, 0.25, 0.05), (BURNOUT, 0.2, 0.0)],
}
INTERVENTION_DAYS = (28, 84)  # planned duration range
# the manager's rough sense of how much each deficit hurts (perceived cause), per unit deficit
PERCEIVED_WEIGHT = {
    "skill": 0.75,
    "effort": 0.45,
    "territory": 0.65,
    "process": 0.6,
    "customer": 0.6,
    "burnout": 0.6,
    "ramp": 0.8,
    "quota": 1.0,
    "manager": 0.55,
}
