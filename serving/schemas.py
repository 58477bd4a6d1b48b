"""Request and response bodies. Requests are strict (unknown fields refused); responses are separate classes.

Score fields carry the names of the output contract (shared/spec/outputs.md).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from features.contract import INTERVENTION_IDS


def _iso_text(value: Any) -> Any:
    """Dates and times only as ISO 8601 text: pydantic would read 0 or "0.5" as a Unix timestamp."""
    if isinstance(value, (dt.date, dt.datetime)):
        return value
    if not isinstance(value, str) or len(value) < 10 or value[4] != "-" or value[7] != "-":
        raise ValueError("give an ISO 8601 date, e.g. 2024-01-31")
    return value


# Characters no stored text may hold: C0 and C1 controls (NUL breaks PostgreSQL text and CSV), DEL,
# and the bidirectional overrides and isolates, which reorder what a reader sees on a page.
_BIDI = set(range(0x202A, 0x202F)) | set(range(0x2066, 0x206A))


def text_problem(value: str, *, multiline: bool) -> str | None:
    """Why `value` may not be stored as text, or None. Line breaks and tabs only in multi-line text."""
    for ch in value:
        o = ord(ch)
        if multiline and ch in "\n\r\t":
            continue
        if o < 32 or 127 <= o < 160:
            return "holds a control character" + ("; only text, line breaks and tabs" if multiline else "")
        if o in _BIDI:
            return "holds a bidirectional override character, which would reorder the text on screen"
    return None


def _line(value: Any) -> Any:
    if isinstance(value, str) and (why := text_problem(value, multiline=False)):
        raise ValueError(f"the text {why}")
    return value


def _lines(value: Any) -> Any:
    if isinstance(value, str) and (why := text_problem(value, multiline=True)):
        raise ValueError(f"the text {why}")
    return value


# The same rules as JSON Schema patterns, so that the OpenAPI document says what is accepted (the
# validators above give the clearer message).
_LINE_PATTERN = "^[^\\x00-\\x1f\\x7f-\\x9f\\u202a-\\u202e\\u2066-\\u2069]*$"
_LINES_PATTERN = "^[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f\\u202a-\\u202e\\u2066-\\u2069]*$"


def _text(*, multiline: bool, min_length: int | None = None, max_length: int | None = None) -> Any:
    """Text to be stored: one line (or several), of bounded length. The length is checked on the string
    itself, so that a caller reads "String should have at most N characters" (a length given in
    `Field` would be checked after the validator, as a count of "items")."""
    schema: dict[str, Any] = {"type": "string", "pattern": _LINES_PATTERN if multiline else _LINE_PATTERN}
    if min_length is not None:
        schema["minLength"] = min_length
    if max_length is not None:
        schema["maxLength"] = max_length
    return Annotated[
        StrictStr,
        StringConstraints(min_length=min_length, max_length=max_length),
        AfterValidator(_lines if multiline else _line),
        WithJsonSchema(schema),
    ]


Note = _text(multiline=True, max_length=2000)
Reason = _text(multiline=True, min_length=1, max_length=500)
VersionText = _text(multiline=False, min_length=1, max_length=64)
ManagerIdText = _text(multiline=False, min_length=1, max_length=100)

IsoDate = Annotated[dt.date, BeforeValidator(_iso_text)]


def _in_utc(value: dt.datetime) -> dt.datetime:
    """A time as UTC (without an offset: UTC). One a UTC clock cannot show is refused here: converting it
    later (e.g. 0001-01-01T00:00:00+14:00) would be an OverflowError, a 500 for a caller's typo."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError(
            "the time is out of range once converted to UTC; give one between years 1 and 9999"
        ) from None


IsoDateTime = Annotated[dt.datetime, BeforeValidator(_iso_text), AfterValidator(_in_utc)]
InterventionId = Literal[INTERVENTION_IDS]  # type: ignore[valid-type]
Role = Literal["manager", "hr", "data_scientist", "admin"]
Band = Literal["high", "medium", "low"]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Response(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---- errors ---------------------------------------------------------------------------------
class ErrorOut(Response):
    detail: str = Field(description="What went wrong and what to do about it.")
    code: str = Field(
        description="A stable machine-readable code: bad_request (400), unauthenticated (401), forbidden (403), "
        "not_found (404), no_score (404: the rep is known but has no score for the day or version asked), "
        "method_not_allowed (405), conflict (409), gone (410), body_too_large (413), unsupported_media_type "
        "(415), invalid_request (422), too_many_requests (429), internal_error (500), unavailable (503: not "
        "ready, or the database), overloaded (503: too many requests at once)."
    )


class FieldErrorOut(Response):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorOut(Response):
    detail: str
    code: Literal["invalid_request"]
    errors: list[FieldErrorOut]


# ---- requests -------------------------------------------------------------------------------
class InterventionIn(Request):
    intervention: InterventionId = Field(description="An id from the intervention catalog.")
    started_on: IsoDate
    ended_on: IsoDate | None = None
    note: Note | None = None

    @field_validator("ended_on")
    @classmethod
    def _order(cls, value: dt.date | None, info: ValidationInfo) -> dt.date | None:
        # on the field, so that the error's loc names ended_on (a model check names only the body)
        started = info.data.get("started_on")  # absent when started_on was refused itself
        if value is not None and started is not None and value < started:
            raise ValueError("ended_on must not be before started_on")
        return value


class InterventionEndIn(Request):
    ended_on: IsoDate = Field(description="The intervention's last day: not before its start.")


class JobIn(Request):
    as_of: IsoDate | None = Field(
        default=None,
        description="Score every active rep's period containing this day. Left out: the first day that "
        "sees the data's latest event (the day after it, within the quota periods): the newest picture, "
        "for a scheduled call after each export.",
    )


class PromoteIn(Request):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "if": {"properties": {"force": {"const": True}}, "required": ["force"]},
            "then": {"required": ["reason"], "properties": {"reason": {"type": "string"}}},
        },
    )
    version: VersionText | None = Field(default=None, description="Default: the current challenger.")
    force: StrictBool = Field(default=False, description="Promote even if the gate refuses; needs a reason.")
    reason: Reason | None = None
    dry_run: StrictBool = Field(
        default=False,
        description="Only compare the version with the champion on the same held-out rows and say what "
        "the gate would decide (200 either way); nothing is recorded or moved.",
    )

    @model_validator(mode="after")
    def _reason(self) -> PromoteIn:
        if self.force and self.dry_run:
            raise ValueError("dry_run checks what the gate would decide: it takes no force")
        if self.force and not self.reason:
            raise ValueError("force needs a reason: it is recorded on the version and in the audit trail")
        return self


class UserIn(Request):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "if": {"properties": {"roles": {"contains": {"const": "manager"}}}, "required": ["roles"]},
            "then": {"required": ["manager_id"], "properties": {"manager_id": {"type": "string"}}},
            "else": {"properties": {"manager_id": {"type": "null"}}},
        },
    )
    name: StrictStr = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._@-]+$")
    roles: list[Role] = Field(min_length=1, max_length=4)
    manager_id: ManagerIdText | None = Field(
        default=None, description="Only with the manager role, which needs it."
    )

    @model_validator(mode="after")
    def _manager(self) -> UserIn:
        if "manager" in self.roles and not self.manager_id:
            raise ValueError("a manager needs manager_id: the id their reps carry in reps.manager_id")
        return self

    @field_validator("manager_id")
    @classmethod
    def _only_for_managers(cls, value: str | None, info: ValidationInfo) -> str | None:
        roles = info.data.get("roles")  # absent when the roles were refused themselves
        if value is not None and roles is not None and "manager" not in roles:
            raise ValueError(
                "manager_id is only for the manager role (it names the reps they see); "
                f"roles {', '.join(sorted(set(roles)))} need none"
            )
        return value


# ---- responses ------------------------------------------------------------------------------
class HealthOut(Response):
    status: Literal["ok", "ready", "not_ready"]
    model_version: str | None = None
    detail: str | None = None


class MeOut(Response):
    name: str
    roles: list[str]
    manager_id: str | None
    model_version: str | None = Field(description="The champion version serving this request.")


class DriverOut(BaseModel):
    """One reason, strongest first; later issues may add fields (e.g. a sentence), which pass through."""

    model_config = ConfigDict(extra="allow")
    feature: str
    group: str | None = None
    value: float | int | str | bool | None = None
    contribution: float


class ScoreOut(Response):
    rep_id: str
    manager_id: str
    period_start: dt.date
    period_end: dt.date
    as_of: dt.date
    risk: float = Field(ge=0, le=1)
    risk_band: Band
    rank: int
    attainment_to_date: float | None
    drivers: list[DriverOut]
    interventions: list[str]
    model_version: str = Field(description="The registered model version that scored the row.")


class AlertOut(Response):
    rep_id: str
    name: str | None = Field(description="Shown to HR and to the rep's managers only.")
    manager_id: str
    team: str | None
    region: str | None
    segment: str | None
    period_start: dt.date
    period_end: dt.date
    as_of: dt.date
    risk: float = Field(ge=0, le=1)
    risk_band: Band
    rank: int
    attainment_to_date: float | None
    risk_change: float | None = Field(description="Change since the rep's previous score in this period.")
    top_driver: DriverOut | None
    interventions: list[str]
    model_version: str


class EarlyWarningOut(Response):
    as_of: dt.date | None = Field(description="The as-of day of the batch shown (None: nothing scored yet).")
    budget: int = Field(description="The alert budget: the most reps one answer holds.")
    in_scope: int = Field(description="Scored reps the caller may see.")
    matching: int = Field(description="Of those, reps in the requested bands.")
    truncated: bool = Field(
        description="More reps matched than this answer holds (the alert budget, or a smaller limit)."
    )
    model_version: str | None = Field(description="The champion version serving this request.")
    items: list[AlertOut]


class RepInfoOut(Response):
    rep_id: str
    name: str | None
    manager_id: str
    team: str | None
    region: str | None
    segment: str | None
    hire_date: dt.date | None
    end_date: dt.date | None


class TrendPointOut(Response):
    as_of: dt.date
    risk: float = Field(ge=0, le=1)
    risk_band: Band
    model_version: str


class RepOut(Response):
    rep: RepInfoOut
    score: ScoreOut
    details: dict[str, Any] = Field(
        description="Further columns of the scores file: drivers in words, reasons for interventions, "
        "recourse, quota-versus-rep split, not-enough-data flag, as the model provides them."
    )
    trend: list[TrendPointOut] = Field(description="The risk through the period up to this as-of day.")
    job_id: str | None
    scored_at: dt.datetime


class PeriodOutcomeOut(Response):
    """How the rep's quota period ended, as a later batch job's data knew it."""

    attainment: float | None = Field(description="Won amount over quota for the whole period.")
    missed: bool = Field(description="Whether the rep missed target (the model's label).")
    known_on: dt.date = Field(description="The as-of day of the batch job whose data gave it.")


class HistoryItemOut(Response):
    as_of: dt.date
    period_start: dt.date
    period_end: dt.date
    risk: float = Field(ge=0, le=1)
    risk_band: Band
    model_version: str
    job_id: str | None
    scored_at: dt.datetime
    outcome: PeriodOutcomeOut | None = Field(
        default=None,
        description="How the period ended, once a later batch job has judged a list holding the rep in "
        "it; null while the period runs or before such a job.",
    )


class HistoryOut(Response):
    rep_id: str
    total: int = Field(
        description="The rep's stored scores in all; page on with `offset` while fewer are seen."
    )
    limit: int
    offset: int
    items: list[HistoryItemOut]


class InterventionOut(Response):
    id: int
    rep_id: str
    intervention: str
    started_on: dt.date
    ended_on: dt.date | None
    note: str | None
    recorded_by: str
    recorded_at: dt.datetime
    model_version: str | None
    risk_at_record: float | None


class InterventionListOut(Response):
    rep_id: str
    items: list[InterventionOut]


class InterventionExportOut(Response):
    total: int = Field(
        description="Entries matching the filters in all; page on with `offset` while fewer are seen."
    )
    limit: int
    offset: int
    items: list[InterventionOut] = Field(description="Oldest start first (then in the order recorded).")


class JobOut(Response):
    id: str
    status: Literal["queued", "running", "succeeded", "failed"]
    as_of: dt.date
    model_version: str
    data_digest: str
    created_by: str
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    error: str | None
    error_code: Literal["stopped", "worker_lost", "data", "internal"] | None = Field(
        default=None,
        description="Why the job failed: the service stopped, its worker was lost, the data could not be "
        "scored (see `error`), or an internal error (see the service log).",
    )
    rows: int | None
    download: str | None = Field(description="Path of the scores file once the job succeeded.")
    reports: list[Literal["en", "zh-CN"]] = Field(
        default_factory=list,
        description="Languages in which HR's report of the job is already made: served at once from the job's "
        "folder (REPRADAR_JOB_REPORTS makes them right after the job); any other is made on its first request.",
    )
    notes: list[str] = Field(
        default_factory=list,
        description="What the scoring said with the scores, in English as `repradar score` prints them: e.g. an "
        "as-of day after the export's latest event (features see nothing after it, so risks rise), reps not "
        "scored for want of a quota, a period the model was fitted on.",
    )


class JobListOut(Response):
    total: int = Field(description="Jobs in all; page on with `offset` while fewer are seen.")
    limit: int
    offset: int
    items: list[JobOut]


class CurrentModelOut(Response):
    name: str
    version: str | None
    loaded_at: dt.datetime | None
    ready: bool
    detail: str | None


class ModelVersionOut(Response):
    version: str
    aliases: list[str]
    created_at: dt.datetime | None
    run_id: str | None
    metrics: dict[str, float]
    tags: dict[str, str | None] = Field(
        description="data_window; currency: the ISO 4217 code of the version's amounts, null when not "
        "known (a version trained before its currency was recorded); features: 'current' when the version was "
        "trained on the feature definitions this release computes, 'older' when on an earlier release's "
        "(retrain and promote), null when not known (trained before they were recorded)."
    )
    run_status: str | None = Field(
        None,
        description="The state of the version's training run: MLflow's FINISHED, FAILED, KILLED or RUNNING "
        "(training now, or where the service cannot check); FAILED also for a run MLflow still holds as "
        "RUNNING whose training process on the service's host is gone (killed, or the machine restarted), "
        "with `run_note` saying so. Null without a run, or when MLflow cannot give it.",
    )
    run_note: str | None = Field(
        None, description="Why `run_status` differs from MLflow's record, if it does."
    )


class PromotionEventOut(Response):
    version: str
    at: str | None
    by: str | None
    reason: str | None
    forced: bool | None
    tags: dict[str, str]


class ModelsOut(Response):
    name: str
    champion: str | None
    serving_version: str | None
    versions: list[ModelVersionOut]
    promotions: list[PromotionEventOut]


class LeadPointOut(Response):
    week: int = Field(description="Week of the period (the MLflow step of the metric).")
    value: float


class LeadCurveOut(Response):
    model: str = Field(description="`model` (the registered model) or a baseline, e.g. `pacing`, `logistic`.")
    measure: Literal["auc", "brier"]
    metric: str = Field(description="The MLflow step metric the points come from, e.g. `lead_model_auc`.")
    points: list[LeadPointOut] = Field(description="One point per week with a finite value, by week.")


class CalibrationBinOut(Response):
    mean_risk: float = Field(description="Mean predicted risk of the bin's held-out rows.")
    observed: float = Field(description="Observed miss rate of those rows.")
    n: int = Field(description="Held-out rows in the bin.")


class CalibrationOut(Response):
    model: str
    bins: list[CalibrationBinOut] = Field(description="Non-empty equal-width risk bins, lowest risk first.")


class TrackRecordOut(Response):
    """How one batch's list turned out (reporting.track_record; docs/report.md "How earlier scores turned out").
    Every figure has a default: a record written by another release lacks none of the rest."""

    job_id: str = Field(description="The batch job whose list this is.")
    as_of: dt.date
    model_version: str
    period_start: dt.date | None = None
    period_end: dt.date | None = None
    judged_by: str = Field(description="The later batch job whose data folder gave the outcomes.")
    judged_as_of: dt.date = Field(description="The day the outcomes are known on (that job's as-of day).")
    computed_at: dt.datetime
    n_scored: int = 0
    n_known: int = Field(
        default=0, description="Reps of the list whose period has finished, with an outcome."
    )
    n_pending: int = Field(
        default=0, description="Reps whose period has not finished (or the data do not cover) yet."
    )
    n_missed: int = 0
    missed_share: float | None = Field(
        default=None, description="Realised miss rate among the reps with an outcome."
    )
    mean_risk: float | None = None
    brier: float | None = None
    ece: float | None = Field(
        default=None, description="Expected calibration error over 10 equal-width risk bins, as training's."
    )
    bins: list[CalibrationBinOut] = Field(
        default_factory=list, description="The risk bins behind the ECE: mean risk, observed miss rate, reps."
    )
    auc: float | None = Field(
        default=None, description="ROC-AUC of the risks for the misses; null with too few reps."
    )
    auc_low: float | None = None
    auc_high: float | None = None
    pacing_auc: float | None = Field(
        default=None, description="ROC-AUC of the pace (attainment against time) on the same reps."
    )
    n_high: int = 0
    high_missed: int = 0
    precision: float | None = Field(default=None, description="Share of the high band that missed.")
    precision_low: float | None = None
    precision_high: float | None = None
    recall: float | None = Field(default=None, description="Share of the misses that were in the high band.")
    recall_low: float | None = None
    recall_high: float | None = None
    in_sample: bool | None = Field(
        default=None,
        description="Whether the model version that made the list was fitted on its period (risks that "
        "are no forecast); null when that version's fitted window is not recorded in the registry.",
    )
    notes: list[str] = Field(default_factory=list, description="What limits the figures (English).")


class TrackRecordsOut(Response):
    items: list[TrackRecordOut] = Field(description="Newest as-of day first; at most 100 lists.")


class ModelCurvesOut(Response):
    name: str
    version: str
    run_id: str | None = Field(description="The training run the figures were logged with (None: no run).")
    recorded: bool = Field(
        description="False when the run recorded neither figure (older version, no run, or the "
        "tracking store could not be read): both lists are then empty."
    )
    lead: list[LeadCurveOut] = Field(description="The lead-time curves: held-out AUC and Brier by week.")
    calibration: list[CalibrationOut] = Field(description="The calibration plot's bins, per model.")


class PromotionOut(Response):
    promoted: bool
    version: str | None
    message: str
    figures: dict[str, Any]
    model_version: str | None = Field(description="The champion version serving this request.")
    dry_run: bool = Field(
        default=False,
        description="A check: `figures.decision` is what the gate would decide; nothing changed.",
    )


class AuditEventOut(Response):
    id: int
    at: dt.datetime
    actor: str
    actor_roles: str
    action: str
    resource_type: str
    resource_id: str | None
    model_version: str | None
    outcome: str
    detail: dict[str, Any]
    request_id: str | None


class AuditListOut(Response):
    total: int
    limit: int
    offset: int
    items: list[AuditEventOut]


class UserOut(Response):
    id: int
    name: str
    roles: list[str]
    manager_id: str | None
    created_at: dt.datetime
    disabled: bool
    active_tokens: int
    token_prefixes: list[str] = Field(
        description="The live tokens' first 10 characters, oldest first: what revoke-token names a token by."
    )
    token_expires_at: list[dt.datetime | None] = Field(
        description="When each of those tokens stops working (REPRADAR_TOKEN_MAX_DAYS after it was issued), "
        "same order; null: never. A token past it is refused but listed here until revoked: rotate before it."
    )


class UserCreatedOut(Response):
    user: UserOut
    token: str = Field(description="Shown once: only its hash is stored.")
    warnings: list[str] = Field(
        default_factory=list,
        description="What looks wrong but was done anyway, as `repradar users add` notes it: a manager id that "
        "no rep in the service's rep directory reports to (a typo sees nobody). Empty when nothing does.",
    )


class UserListOut(Response):
    items: list[UserOut]
