"""The input data contract (shared/spec/data-contract.md, v1) as data.

Validation, loading, the simulator and the import mappings all read these specs, so the
contract is written down once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["string", "date", "timestamp", "number", "boolean"]


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    required: bool = True  # the column must be present
    nullable: bool = False  # empty cells allowed
    unique: bool = False
    non_empty: bool = False  # strings: not blank
    ge: float | None = None  # numbers: >= ge
    gt: float | None = None  # numbers: > gt
    references: tuple[str, str] | None = None  # (table, column) the value must exist in
    one_of: tuple[str, ...] | None = None  # strings: the only values allowed (a catalog)


# Rules that involve more than one column or more than one row of a table.


@dataclass(frozen=True)
class NotBefore:
    """`column` >= `other` on every row where both are present (e.g. period_end >= period_start)."""

    column: str
    other: str

    @property
    def name(self) -> str:
        return f"{self.column} >= {self.other}"

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.other, self.column)


@dataclass(frozen=True)
class Implies:
    """A true `column` requires a true `then` (e.g. is_won implies is_closed)."""

    column: str
    then: str

    @property
    def name(self) -> str:
        return f"{self.column} implies {self.then}"

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column, self.then)


@dataclass(frozen=True)
class RangeBy:
    """`column` lies in ranges[key] (inclusive; None: unbounded) on rows whose `by` is a known key."""

    column: str
    by: str
    ranges: Mapping[str, tuple[float | None, float | None]]

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.by, self.column)


@dataclass(frozen=True)
class NoOverlap:
    """Rows with the same `key` have disjoint [start, end] intervals (both ends inclusive)."""

    key: str
    start: str
    end: str

    @property
    def name(self) -> str:
        return f"periods of one {self.key} do not overlap"

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.key, self.start, self.end)


Rule = NotBefore | Implies | RangeBy | NoOverlap


@dataclass(frozen=True)
class Table:
    name: str
    required: bool
    columns: tuple[Column, ...]
    open_columns: bool = False  # reps: unknown columns are attributes, not errors
    description: str = ""
    keys: tuple[str, ...] = field(default_factory=tuple)
    rules: tuple[Rule, ...] = ()  # multi-column and multi-row rules, checked after the column rules

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


KNOWN_METRICS = {
    "training_hours": "hours of sales training completed that day",
    "one_on_one": "1 when a 1:1 with the manager took place",
    "pulse_score": "pulse-survey answer, 0 (worst) to 10 (best)",
    "after_hours_minutes": "minutes of work logged outside working hours",
    "pto_days": "days of leave taken",
    "crm_logins": "logins to the CRM that day",
    "csat": "a customer-satisfaction rating received, 1 to 5",
    "peer_sessions": "knowledge-sharing sessions with peers attended",
}
# Ranges of known metrics (inclusive); values outside are contract violations.
METRIC_RANGES = {
    "pulse_score": (0.0, 10.0),
    "csat": (1.0, 5.0),
    "training_hours": (0.0, 24.0),
    "one_on_one": (0.0, 1.0),
    "after_hours_minutes": (0.0, 1440.0),
    "pto_days": (0.0, None),
    "crm_logins": (0.0, None),
    "peer_sessions": (0.0, None),
}

INTERVENTION_IDS = (
    "smart_goals",
    "regular_checkins",
    "skills_training",
    "development_plan",
    "incentives",
    "recognition",
    "crm_adoption",
    "process_simplification",
    "pipeline_generation",
    "customer_service_training",
    "wellbeing_support",
    "work_life_balance",
    "mentoring",
    "team_building",
    "manager_coaching",
    "feedback_channel",
)


REPS = Table(
    "reps",
    True,
    (
        Column("rep_id", "string", unique=True, non_empty=True),
        Column("manager_id", "string", non_empty=True),
        Column("hire_date", "date"),
        Column("end_date", "date", required=False, nullable=True),
        Column("team", "string", required=False, nullable=True),
        Column("region", "string", required=False, nullable=True),
        Column("segment", "string", required=False, nullable=True),
        Column("name", "string", required=False, nullable=True),
    ),
    open_columns=True,
    description="a sales rep",
    rules=(NotBefore("end_date", "hire_date"),),
)

QUOTAS = Table(
    "quotas",
    True,
    (
        Column("rep_id", "string", non_empty=True, references=("reps", "rep_id")),
        Column("period_start", "date"),
        Column("period_end", "date"),
        Column("quota_amount", "number", gt=0),
    ),
    description="one rep's target for one period",
    rules=(
        NotBefore("period_end", "period_start"),
        NoOverlap("rep_id", "period_start", "period_end"),
    ),
)

OPPORTUNITIES = Table(
    "opportunities",
    True,
    (
        Column("opportunity_id", "string", unique=True, non_empty=True),
        Column("rep_id", "string", non_empty=True, references=("reps", "rep_id")),
        Column("created_date", "date"),
        Column("close_date", "date"),
        Column("stage", "string"),
        Column("amount", "number", ge=0),
        Column("is_closed", "boolean"),
        Column("is_won", "boolean"),
        Column("account_id", "string", required=False, nullable=True),
        Column("product", "string", required=False, nullable=True),
    ),
    description="a deal, in its latest state",
    rules=(Implies("is_won", "is_closed"),),
)

OPPORTUNITY_HISTORY = Table(
    "opportunity_history",
    False,
    (
        Column("opportunity_id", "string", non_empty=True, references=("opportunities", "opportunity_id")),
        Column("changed_at", "timestamp"),
        Column("stage", "string"),
        Column("amount", "number", ge=0),
        Column("close_date", "date"),
    ),
    description="one change of a deal's stage, amount or expected close date",
)

ACTIVITIES = Table(
    "activities",
    False,
    (
        Column("activity_id", "string", unique=True, non_empty=True),
        Column("rep_id", "string", non_empty=True, references=("reps", "rep_id")),
        Column("occurred_at", "timestamp"),
        Column("type", "string"),
        Column("opportunity_id", "string", required=False, nullable=True),
        Column("duration_minutes", "number", required=False, nullable=True, ge=0),
    ),
    description="one call, email, meeting, demo ...",
)

ENGAGEMENT = Table(
    "engagement",
    False,
    (
        Column("rep_id", "string", non_empty=True, references=("reps", "rep_id")),
        Column("date", "date"),
        Column("metric", "string", non_empty=True),
        Column("value", "number"),
    ),
    description="one measurement of one metric for one rep on one day",
    rules=(RangeBy("value", "metric", METRIC_RANGES),),  # unknown metrics are allowed
)

INTERVENTIONS = Table(
    "interventions",
    False,
    (
        Column("rep_id", "string", non_empty=True, references=("reps", "rep_id")),
        Column("intervention", "string", non_empty=True, one_of=INTERVENTION_IDS),
        Column("started_on", "date"),
        Column("ended_on", "date", required=False, nullable=True),
    ),
    description="one intervention given to a rep",
    rules=(NotBefore("ended_on", "started_on"),),
)

TABLES: dict[str, Table] = {
    t.name: t
    for t in (REPS, QUOTAS, OPPORTUNITIES, OPPORTUNITY_HISTORY, ACTIVITIES, ENGAGEMENT, INTERVENTIONS)
}

# Columns of `reps` that are context, never attributes; every other extra column is an attribute.
REP_CONTEXT_COLUMNS = ("team", "region", "segment")
REP_DISPLAY_COLUMNS = ("name",)
