"""The feature registry: every model feature with its group, unit, meaning and whether a manager can act on it.

The playbook, the drivers-in-words text and the dashboard read this; the model's feature list
is `feature_names()`. Groups are the unit in which explanations are shown to managers.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class Group:
    name: str
    title: str
    actionable: bool  # False: context only, never turned into an intervention
    description: str


@dataclass(frozen=True)
class Feature:
    name: str
    group: str
    unit: str  # one of UNITS
    description: str
    actionable: bool
    # Direction of risk the model is constrained to: -1 more of it never raises risk,
    # +1 more of it never lowers risk, 0 unconstrained.
    monotone: int = 0
    peer: bool = False  # the frame carries `peer__<name>`: segment median at the same as-of day
    # Which side a manager reads as good: "higher", "lower", or None (no good side: the calendar,
    # tenure, leave taken). A driver on the good side of its peers is phrased as such.
    better: str | None = "higher"


# Bump by one whenever Python-side staging or build logic (STAGING_SOURCES) changes a feature's values:
# the SQL and the registry are fingerprinted from their text, this code is not. A model trained on
# another revision is then said to need a retrain.
FEATURES_REVISION = 1

# The Python code that stages or builds feature values, and the digest of its code (staging_digest:
# syntax only, comments and docstrings left out) when FEATURES_REVISION was last decided.
# tests/features/test_registry.py fails when that code changes and the digest is not updated, so that
# the change's author decides, with a reviewer, whether values change (then FEATURES_REVISION + 1).
STAGING_SOURCES = ("staging.py", "spark_staging.py", "build.py", "stages.py")
STAGING_DIGEST = "4c7fdc4cb1d2462c9ef5e1812d6c36f3f3118e7a7f28b286d6a690505163a651"

UNITS = ("ratio", "share", "currency", "count", "per_week", "days", "score", "hours", "minutes", "index")

GROUPS: dict[str, Group] = {
    g.name: g
    for g in (
        Group(
            "attainment", "Attainment and pace", False, "won revenue so far against quota and time elapsed"
        ),
        Group(
            "pipeline",
            "Pipeline",
            True,
            "open pipeline, its coverage of the remaining quota, new deals created",
        ),
        Group("conversion", "Win rate and conversion", True, "win rate and stage-to-stage conversion"),
        Group("deal_size", "Deal size", True, "size of won and open deals"),
        Group("cycle", "Sales cycle", True, "cycle time, stalled and slipping deals"),
        Group("activity", "Activity", True, "calls, emails, meetings and demos, their volume, mix and trend"),
        Group("crm_hygiene", "CRM use", True, "CRM logins, stale or overdue deals"),
        Group("customer", "Customer relationship", True, "customer satisfaction and late-stage losses"),
        Group("wellbeing", "Workload and wellbeing", True, "after-hours work, leave, pulse score"),
        Group("coaching", "Coaching", True, "1:1s with the manager"),
        Group("learning", "Learning", True, "training hours and peer sessions"),
        Group("quota", "Quota and territory", True, "quota size against the rep's history and peers"),
        Group("tenure", "Tenure", False, "time in the job"),
        Group("calendar", "Calendar", False, "how far into the period, season"),
    )
}

# Unknown engagement metrics become generic features; their meaning is not known, so they are
# context only (never turned into an intervention).
GROUPS["other_engagement"] = Group(
    "other_engagement",
    "Other engagement metrics",
    False,
    "engagement metrics the contract does not know, averaged over 28 days",
)

# Which side of each feature a manager reads as good. Every feature is in exactly one of these sets
# (`_f` refuses one that is in none): a wrong default would phrase a rep behind peers as ahead.
HIGHER_IS_BETTER = frozenset(
    {
        "attainment_to_date",
        "pace_gap",
        "prev_period_attainment",
        "attainment_mean_4p",
        "open_pipeline_in_period",
        "open_deals_in_period",
        "pipeline_coverage",
        "open_pipeline_total",
        "new_deals_28d",
        "new_deals_91d",
        "new_pipeline_amount_28d",
        "new_pipeline_amount_91d",
        "new_deals_per_100_activities_91d",
        "new_deals_per_100_activities_182d",
        "win_rate_180d",
        "closed_deals_180d",
        "late_stage_reach_rate_180d",
        "early_stage_progress_rate_180d",
        "stage_progress_rate_364d",
        "avg_won_deal_size_180d",
        "avg_new_deal_size_182d",
        "won_deal_size_vs_segment",
        "crm_logins_per_week_28d",
        "crm_logins_per_week_91d",
        "activities_per_week_7d",
        "activities_per_week_28d",
        "activities_per_week_91d",
        "calls_per_week_28d",
        "calls_per_week_91d",
        "emails_per_week_28d",
        "emails_per_week_91d",
        "meetings_per_week_28d",
        "meetings_per_week_91d",
        "demos_per_week_28d",
        "demos_per_week_91d",
        "activity_trend_28d",
        "meeting_demo_share_28d",
        "csat_mean_28d",
        "csat_mean_91d",
        "late_stage_progress_rate_180d",
        "pulse_mean_28d",
        "pulse_mean_91d",
        "pulse_trend_28d",
        "one_on_ones_28d",
        "one_on_ones_91d",
        "training_hours_28d",
        "training_hours_91d",
        "peer_sessions_28d",
        "peer_sessions_91d",
    }
)
# Less is better: cycle times, slips, overdue deals, after-hours work, quota size.
LOWER_IS_BETTER = frozenset(
    {
        "won_cycle_days_180d",
        "close_date_slips_91d",
        "stage_days_91d",
        "overdue_open_deals",
        "overdue_open_share",
        "open_deal_stage_age_days",
        "late_stage_loss_share_180d",
        "after_hours_mean_28d",
        "after_hours_mean_91d",
        "days_since_pto",
        "quota_amount",
        "quota_vs_own_history",
        "quota_vs_segment",
    }
)
# Leave taken is wellbeing but also days not selling; tenure is context either way.
NO_BETTER_SIDE = frozenset(
    {"elapsed_share", "quarter_of_year", "pto_days_91d", "tenure_days", "history_days"}
)

_SIDES = {"higher": HIGHER_IS_BETTER, "lower": LOWER_IS_BETTER, None: NO_BETTER_SIDE}

UNKNOWN_METRIC_PREFIX = "eng__"
UNKNOWN_METRIC_SUFFIX = "_mean_28d"


def _f(name, group, unit, description, *, actionable=None, monotone=0, peer=False) -> Feature:
    """A feature whose actionable flag defaults to its group's."""
    if group not in GROUPS or unit not in UNITS:
        raise ValueError(
            f"feature {name!r}: unknown group {group!r} or unit {unit!r} "
            f"(groups: {', '.join(GROUPS)}; units: {', '.join(UNITS)})"
        )
    if actionable is None:
        actionable = GROUPS[group].actionable
    sides = [side for side, names in _SIDES.items() if name in names]
    if len(sides) != 1:
        raise ValueError(
            f"feature {name!r}: say which side a manager reads as good by listing it in exactly one of "
            f"HIGHER_IS_BETTER, LOWER_IS_BETTER or NO_BETTER_SIDE (features/registry.py)"
        )
    better = sides[0]
    return Feature(name, group, unit, description, actionable, monotone, peer, better)


# The model's features, in model order. Windows count whole days before the as-of day:
# "28d" = the 28 days as_of-28 .. as_of-1. The SQL in features/sql/ computes exactly these columns.
FEATURES: list[Feature] = [
    # attainment and pace
    _f(
        "attainment_to_date",
        "attainment",
        "ratio",
        "won amount with close date in the period, known before the as-of day, over quota",
        monotone=-1,
        peer=True,
    ),
    _f(
        "pace_gap",
        "attainment",
        "ratio",
        "attainment_to_date minus elapsed_share: below 0 means behind a straight-line pace",
        monotone=-1,
    ),
    _f(
        "prev_period_attainment",
        "attainment",
        "ratio",
        "attainment of the rep's previous quota period (won amount with close date in it, as known the "
        "day after it ended, over its quota); NaN without an earlier period",
    ),
    _f(
        "attainment_mean_4p",
        "attainment",
        "ratio",
        "mean attainment of the rep's last (up to) 4 quota periods, each as known the day after it ended",
    ),
    # calendar
    _f("elapsed_share", "calendar", "share", "share of the period's days before the as-of day"),
    _f("quarter_of_year", "calendar", "index", "calendar quarter (1-4) of the period's first day"),
    # pipeline
    _f(
        "open_pipeline_in_period",
        "pipeline",
        "currency",
        "amount of deals open as of the as-of day with expected close inside the period",
        monotone=-1,
        peer=True,
    ),
    _f(
        "open_deals_in_period",
        "pipeline",
        "count",
        "number of deals open as of the as-of day with expected close inside the period",
    ),
    _f(
        "pipeline_coverage",
        "pipeline",
        "ratio",
        "open_pipeline_in_period over the quota still to win (quota - won to date); NaN once quota is met",
        monotone=-1,
        peer=True,
    ),
    _f(
        "open_pipeline_total",
        "pipeline",
        "currency",
        "amount of all deals open as of the as-of day, whatever their expected close",
        monotone=-1,
    ),
    _f("new_deals_28d", "pipeline", "count", "deals created in the last 28 days"),
    _f("new_deals_91d", "pipeline", "count", "deals created in the last 91 days", peer=True),
    _f(
        "new_pipeline_amount_28d",
        "pipeline",
        "currency",
        "amount (at creation) of deals created in the last 28 days",
    ),
    _f(
        "new_pipeline_amount_91d",
        "pipeline",
        "currency",
        "amount (at creation) of deals created in the last 91 days",
        peer=True,
    ),
    _f(
        "new_deals_per_100_activities_91d",
        "pipeline",
        "count",
        "deals created per 100 activities in the last 91 days: deal flow for the effort put in (a thin "
        "territory yields few deals for normal activity)",
        peer=True,
    ),
    _f(
        "new_deals_per_100_activities_182d",
        "pipeline",
        "count",
        "deals created per 100 activities in the last 182 days (the territory's yield over half a year)",
        peer=True,
    ),
    # conversion
    _f(
        "win_rate_180d",
        "conversion",
        "share",
        "won / (won + lost) among deals closed in the last 180 days",
        peer=True,
    ),
    _f("closed_deals_180d", "conversion", "count", "deals closed (won or lost) in the last 180 days"),
    _f(
        "late_stage_reach_rate_180d",
        "conversion",
        "share",
        "share of deals closed in the last 180 days that were won or lost only after reaching a late "
        "stage (proposal, negotiation ...); needs the stages of lost deals (opportunity_history)",
    ),
    _f(
        "early_stage_progress_rate_180d",
        "conversion",
        "share",
        "of the deals that left an early stage (before proposal) in the last 180 days, the share that "
        "moved on to a later stage or were won rather than lost; needs opportunity_history",
        peer=True,
    ),
    _f(
        "stage_progress_rate_364d",
        "conversion",
        "share",
        "of the deals that left any open stage in the last 364 days, the share that moved on or were won "
        "rather than lost (a year of stage-to-stage conversion); needs opportunity_history",
        peer=True,
    ),
    # deal size
    _f(
        "avg_won_deal_size_180d",
        "deal_size",
        "currency",
        "mean amount of deals won in the last 180 days",
        peer=True,
    ),
    _f(
        "avg_new_deal_size_182d",
        "deal_size",
        "currency",
        "mean amount at creation of the deals created in the last 182 days",
        peer=True,
    ),
    _f(
        "won_deal_size_vs_segment",
        "deal_size",
        "ratio",
        "avg_won_deal_size_180d over the mean won deal size of the rep's segment in the same 180 days",
    ),
    # cycle
    _f(
        "won_cycle_days_180d",
        "cycle",
        "days",
        "mean days from creation to close of deals won in the last 180 days",
        peer=True,
    ),
    _f(
        "close_date_slips_91d",
        "cycle",
        "count",
        "times an open deal's expected close date was pushed later in the last 91 days; needs opportunity_history",
    ),
    _f(
        "stage_days_91d",
        "cycle",
        "days",
        "mean days a deal spent in a stage, over the deals that left a stage (moved on, won or lost) in "
        "the last 91 days; needs opportunity_history",
        peer=True,
    ),
    # CRM hygiene
    _f(
        "overdue_open_deals",
        "crm_hygiene",
        "count",
        "open deals whose expected close date is already past",
        peer=True,
    ),
    _f(
        "overdue_open_share",
        "crm_hygiene",
        "share",
        "share of the open pipeline amount whose expected close date is already past",
    ),
    _f(
        "open_deal_stage_age_days",
        "crm_hygiene",
        "days",
        "mean days the open deals have sat in their current stage on the as-of day (stale deals); "
        "needs opportunity_history",
        peer=True,
    ),
    _f(
        "crm_logins_per_week_28d",
        "crm_hygiene",
        "per_week",
        "CRM logins per week over the last 28 days",
        peer=True,
    ),
    _f("crm_logins_per_week_91d", "crm_hygiene", "per_week", "CRM logins per week over the last 91 days"),
    # activity
    _f("activities_per_week_7d", "activity", "per_week", "activities of any type per week, last 7 days"),
    _f(
        "activities_per_week_28d",
        "activity",
        "per_week",
        "activities of any type per week, last 28 days",
        peer=True,
    ),
    _f("activities_per_week_91d", "activity", "per_week", "activities of any type per week, last 91 days"),
    _f("calls_per_week_28d", "activity", "per_week", "calls per week, last 28 days"),
    _f("calls_per_week_91d", "activity", "per_week", "calls per week, last 91 days"),
    _f("emails_per_week_28d", "activity", "per_week", "emails per week, last 28 days"),
    _f("emails_per_week_91d", "activity", "per_week", "emails per week, last 91 days"),
    _f("meetings_per_week_28d", "activity", "per_week", "meetings per week, last 28 days"),
    _f("meetings_per_week_91d", "activity", "per_week", "meetings per week, last 91 days"),
    _f("demos_per_week_28d", "activity", "per_week", "demos per week, last 28 days"),
    _f("demos_per_week_91d", "activity", "per_week", "demos per week, last 91 days"),
    _f(
        "activity_trend_28d",
        "activity",
        "ratio",
        "activities in the last 28 days over activities in the 28 days before (1 = steady)",
    ),
    _f(
        "meeting_demo_share_28d",
        "activity",
        "share",
        "share of the last 28 days' activities that were meetings or demos",
        peer=True,
    ),
    # customer
    _f("csat_mean_28d", "customer", "score", "mean customer-satisfaction rating (1-5), last 28 days"),
    _f(
        "csat_mean_91d",
        "customer",
        "score",
        "mean customer-satisfaction rating (1-5), last 91 days",
        peer=True,
    ),
    _f(
        "late_stage_loss_share_180d",
        "customer",
        "share",
        "share of deals lost in the last 180 days that were lost after reaching a late stage; "
        "needs opportunity_history",
        peer=True,
    ),
    _f(
        "late_stage_progress_rate_180d",
        "customer",
        "share",
        "of the deals that left a late stage (proposal, negotiation ...) in the last 180 days, the share "
        "that moved on or were won rather than lost; needs opportunity_history",
        peer=True,
    ),
    # wellbeing
    _f("pulse_mean_28d", "wellbeing", "score", "mean pulse-survey answer (0-10), last 28 days"),
    _f("pulse_mean_91d", "wellbeing", "score", "mean pulse-survey answer (0-10), last 91 days", peer=True),
    _f(
        "pulse_trend_28d",
        "wellbeing",
        "score",
        "mean pulse answer of the last 28 days minus that of the 63 days before",
    ),
    _f(
        "after_hours_mean_28d",
        "wellbeing",
        "minutes",
        "mean after-hours minutes per recorded day, last 28 days",
        peer=True,
    ),
    _f(
        "after_hours_mean_91d",
        "wellbeing",
        "minutes",
        "mean after-hours minutes per recorded day, last 91 days",
    ),
    _f("pto_days_91d", "wellbeing", "days", "days of leave taken in the last 91 days", peer=True),
    _f(
        "days_since_pto",
        "wellbeing",
        "days",
        "days since the last day of leave (or since hire / start of leave records if none)",
    ),
    # coaching
    _f("one_on_ones_28d", "coaching", "count", "1:1s with the manager in the last 28 days"),
    _f("one_on_ones_91d", "coaching", "count", "1:1s with the manager in the last 91 days", peer=True),
    # learning
    _f("training_hours_28d", "learning", "hours", "hours of sales training in the last 28 days"),
    _f("training_hours_91d", "learning", "hours", "hours of sales training in the last 91 days", peer=True),
    _f("peer_sessions_28d", "learning", "count", "peer knowledge-sharing sessions in the last 28 days"),
    _f(
        "peer_sessions_91d",
        "learning",
        "count",
        "peer knowledge-sharing sessions in the last 91 days",
        peer=True,
    ),
    # quota
    _f("quota_amount", "quota", "currency", "the period's quota"),
    _f(
        "quota_vs_own_history",
        "quota",
        "ratio",
        "quota over the mean of the rep's earlier quotas, each per month of its period (a monthly quota "
        "against a third of a quarterly one); NaN for a first period",
        peer=True,
    ),
    _f(
        "quota_vs_segment",
        "quota",
        "ratio",
        "quota over the median quota of the segment's reps (hired by the as-of day) for the same period",
    ),
    # tenure
    _f("tenure_days", "tenure", "days", "days since hire"),
    _f("history_days", "tenure", "days", "days of data available for the rep (since hire or start of data)"),
]

_BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}


def feature_names() -> list[str]:
    """Names of the fixed features, model order (unknown-metric features come after, per data set)."""
    return [f.name for f in FEATURES]


def peer_feature_names() -> list[str]:
    """Features that get a `peer__<name>` column: the segment median at the same as-of day."""
    return [f.name for f in FEATURES if f.peer]


def unknown_metric_feature(metric_slug: str) -> str:
    """Feature name of an engagement metric the contract does not know."""
    return f"{UNKNOWN_METRIC_PREFIX}{metric_slug}{UNKNOWN_METRIC_SUFFIX}"


def is_unknown_metric_feature(name: str) -> bool:
    return (
        name.startswith(UNKNOWN_METRIC_PREFIX)
        and name.endswith(UNKNOWN_METRIC_SUFFIX)
        and len(name) > len(UNKNOWN_METRIC_PREFIX) + len(UNKNOWN_METRIC_SUFFIX)
    )


def get(name: str) -> Feature:
    """The feature called `name`, including generic unknown-metric features; KeyError otherwise."""
    if name in _BY_NAME:
        return _BY_NAME[name]
    if is_unknown_metric_feature(name):
        metric = name[len(UNKNOWN_METRIC_PREFIX) : -len(UNKNOWN_METRIC_SUFFIX)]
        return Feature(
            name,
            "other_engagement",
            "index",
            f"mean of engagement metric '{metric}' over the last 28 days (not in the contract)",
            False,
            0,
            False,
            None,
        )
    raise KeyError(name)


def registry_frame() -> pd.DataFrame:
    """The fixed features as a table: name, group, group title, unit, actionable, monotone, peer, better,
    description."""
    rows = [
        {
            "name": f.name,
            "group": f.group,
            "group_title": GROUPS[f.group].title,
            "unit": f.unit,
            "actionable": f.actionable,
            "monotone": f.monotone,
            "peer": f.peer,
            "better": f.better,
            "description": f.description,
        }
        for f in FEATURES
    ]
    return pd.DataFrame(rows)


def registry_markdown() -> str:
    """The registry as a Markdown table (docs/features.md embeds it)."""
    lines = [
        "| feature | group | unit | actionable | monotone | peer | better | description |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for f in FEATURES:
        mono = {-1: "-1", 0: "", 1: "+1"}[f.monotone]
        lines.append(
            f"| `{f.name}` | {f.group} | {f.unit} | {'yes' if f.actionable else 'no'} | {mono} | "
            f"{'yes' if f.peer else ''} | {f.better or ''} | {f.description} |"
        )
    lines.append(
        f"| `{UNKNOWN_METRIC_PREFIX}<metric>{UNKNOWN_METRIC_SUFFIX}` | other_engagement | index | no | | | | "
        "one per engagement metric the contract does not know: its 28-day mean |"
    )
    return "\n".join(lines) + "\n"


# A SQL text as tokens: string literals and quoted names kept whole, comments and white space dropped.
_SQL_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/|\s+|\w+|.", re.DOTALL)


def _sql_tokens(text: str) -> list[str]:
    return [t for t in _SQL_TOKENS.findall(text) if not (t.isspace() or t.startswith(("--", "/*")))]


def definitions_fingerprint(sql_dir: Path | None = None) -> str:
    """SHA-256 of what decides the feature values a model reads: the SQL of features/sql/ (comments and
    white space left out, so a reworded comment keeps it), the registry's model-facing facts (names in
    order, group, unit, monotone constraint, peer column) and FEATURES_REVISION. Reads no data."""
    from features.engine import SQL_DIR

    folder = Path(sql_dir) if sql_dir is not None else SQL_DIR
    facts = {
        "revision": FEATURES_REVISION,
        "sql": {p.stem: " ".join(_sql_tokens(p.read_text())) for p in sorted(folder.glob("*.sql"))},
        "features": [[f.name, f.group, f.unit, f.monotone, f.peer] for f in FEATURES],
        "unknown_metric": [UNKNOWN_METRIC_PREFIX, UNKNOWN_METRIC_SUFFIX],
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


def staging_digest(folder: Path | None = None) -> str:
    """SHA-256 over the syntax of STAGING_SOURCES (in `folder`, default features/): comments, layout and
    docstrings left out, and fields that are None or empty skipped so that Python 3.11-3.13, whose
    syntax trees differ only by such new empty fields, agree."""
    import ast

    def canon(v) -> str:
        if isinstance(v, ast.AST):
            fields = []
            for name in v._fields:
                x = getattr(v, name, None)
                if x is None or (isinstance(x, list) and not x):
                    continue
                if name == "body" and isinstance(x, list):
                    x = [n for n in x if not _is_docstring(n)] or [ast.Pass()]
                fields.append(f"{name}={canon(x)}")
            return f"{type(v).__name__}({','.join(fields)})"
        if isinstance(v, list):
            return "[" + ",".join(canon(x) for x in v) + "]"
        return repr(v)

    here = Path(folder) if folder is not None else Path(__file__).parent
    h = hashlib.sha256()
    for name in STAGING_SOURCES:
        h.update(f"{name}\n{canon(ast.parse((here / name).read_text()))}\n".encode())
    return h.hexdigest()


def _is_docstring(node) -> bool:
    import ast

    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )
