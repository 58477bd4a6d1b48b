"""Settings of the quarterly report and of the alert digests (environment, prefixes below).

They live here rather than in `repradar.settings` so the report's knobs travel with the report;
both are plain pydantic settings, so tests and the service build their own instances.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ReportSettings(BaseSettings):
    """Knobs of `repradar report` (environment prefix REPRADAR_REPORT_)."""

    model_config = SettingsConfigDict(env_prefix="REPRADAR_REPORT_", env_file=None, extra="ignore")

    # Fairness audit: the four-fifths rule of employment-selection audits. A group's impact ratio
    # is its high-band rate over the reference group's; outside [impact_low, impact_high] it is
    # called out. With the most-flagged group as reference every ratio is <= 1, so only the lower
    # bound can bite; with reference "largest" both can.
    impact_low: float = Field(default=0.8, gt=0, le=1, description="Lower bound of the impact ratio.")
    impact_high: float = Field(default=1.25, ge=1, description="Upper bound of the impact ratio.")
    impact_reference: str = Field(
        default="most_flagged", description="Reference group: most_flagged (four-fifths rule) or largest."
    )
    min_group_size: int = Field(
        default=50, ge=1, description="Groups with fewer reps are merged into 'other (merged)'."
    )
    alpha: float = Field(default=0.05, gt=0, lt=1, description="Significance level shown beside each ratio.")
    min_cell: int = Field(
        default=10,
        ge=1,
        description="Groups with fewer reps show no counts or rates (nobody can be singled out).",
    )
    outcome_lookback_days: int = Field(
        default=365,
        ge=1,
        description="Finished periods ending this many days before the as-of day are the fairness "
        "audit's realised outcomes (miss rate, quota against the segment's).",
    )
    control_attributes: tuple[str, ...] = Field(
        default=("region",), description="Context columns audited as controls beside the attributes."
    )
    # Drift: population stability index per feature, training set vs scored snapshot.
    psi_threshold: float = Field(default=0.2, gt=0, description="PSI above this: drifted, retrain advised.")
    psi_watch: float = Field(default=0.1, gt=0, description="PSI above this: watch.")
    psi_bins: int = Field(default=10, ge=2, le=50, description="Quantile bins of the training values.")
    missing_shift: float = Field(
        default=0.2,
        gt=0,
        le=1,
        description="A feature missing this much more often than in training is drifted.",
    )
    drift_week_window: int = Field(
        default=0,
        ge=0,
        description="Training snapshots within this many weeks of the scored week are compared "
        "(0: the same week of the period only).",
    )
    drift_same_season: bool = Field(
        default=True,
        description="Compare with the training periods that start within a week of the same day of the "
        "year as the scored one (last year's first quarter for this year's), when training has one.",
    )
    drift_exclude: tuple[str, ...] = Field(
        default=("history_days",),
        description="Features left out of drift (they grow with the export's span).",
    )
    driver_depth: int = Field(
        default=3, ge=1, description="A score rests on a drifted feature if one of its first k drivers is."
    )
    # Interventions: matched comparison.
    effect_neighbours: int = Field(
        default=5, ge=1, description="Comparable reps matched to each treated rep."
    )
    effect_min_reps: int = Field(
        default=20, ge=2, description="Fewest treated reps for an estimate to be shown."
    )
    effect_horizon_days: int = Field(
        default=28, ge=7, description="Risk change is measured over this many days."
    )
    effect_caliper: float = Field(
        default=0.1, gt=0, le=1, description="Largest risk difference between a treated rep and a match."
    )
    effect_confidence: float = Field(default=0.95, gt=0.5, lt=1, description="Coverage of the intervals.")
    # Manager suggestions (fallback rule when models.team is not available).
    coaching_ratio: float = Field(
        default=2.0, gt=1, description="Team high-band rate at least this times the org's: manager_coaching."
    )
    coaching_min_reps: int = Field(default=4, ge=1, description="Smallest team the coaching rule judges.")
    # Rendering.
    chromium: Path = Field(default=Path("/usr/bin/chromium"), description="Chromium used to print the PDF.")
    pdf_timeout_s: float = Field(default=120.0, gt=0, description="Longest the PDF printing may take.")

    @model_validator(mode="after")
    def _check(self) -> ReportSettings:
        if self.impact_reference not in ("most_flagged", "largest"):
            raise ValueError("impact_reference must be most_flagged or largest")
        if self.psi_watch > self.psi_threshold:
            raise ValueError("psi_watch must not exceed psi_threshold")
        return self


class AlertSettings(BaseSettings):
    """Where manager digests go (environment prefix REPRADAR_ALERTS_)."""

    model_config = SettingsConfigDict(env_prefix="REPRADAR_ALERTS_", env_file=None, extra="ignore")

    webhook_url: str | None = Field(default=None, description="JSON POST target, one request per manager.")
    webhook_token: SecretStr | None = Field(default=None, description="Sent as 'Authorization: Bearer ...'.")
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    smtp_host: str | None = Field(default=None, description="SMTP server; e-mail is off without it.")
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_from: str | None = Field(default=None, description="Sender address.")
    smtp_starttls: bool = Field(default=False, description="Upgrade the connection with STARTTLS.")
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_s: float = Field(default=15.0, gt=0)
    email_map: Path | None = Field(
        default=None, description="CSV with columns manager_id,email: where each manager's digest goes."
    )
    email_default: str | None = Field(
        default=None, description="Address for managers missing from email_map (e.g. HR); unset: skipped."
    )
    lang: str = Field(
        default="en",
        description="Language of the digests (en or zh-CN): the service's after each batch job, and the command's "
        "without --lang; a manager's `lang` in email_map overrides it for that manager.",
    )
    max_reps: int = Field(default=20, ge=1, description="Reps listed per digest (the rest are counted).")
    drivers: int = Field(default=3, ge=1, description="Drivers listed per rep.")

    @field_validator("lang")
    @classmethod
    def _language(cls, value: str) -> str:
        from models.i18n import language

        return language(value)
