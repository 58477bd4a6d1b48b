"""Settings from the environment (prefix REPRADAR_), resolved lazily: importing this has no side effects."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of an installation. All state lives under `home` unless a URI points elsewhere."""

    model_config = SettingsConfigDict(env_prefix="REPRADAR_", env_file=None, extra="ignore")

    home: Path = Field(default=Path(".repradar"), description="Folder holding all state.")
    mlflow_tracking_uri: str | None = Field(
        default=None, description="MLflow tracking URI; default: sqlite store under home."
    )
    mlflow_registry_uri: str | None = None
    model_name: str = "repradar-risk"
    experiment_name: str = "repradar"
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default: sqlite under home.")
    data_dir: Path | None = Field(default=None, description="Data folder the service scores in batch jobs.")
    miss_threshold: float = Field(default=1.0, gt=0, description="Attainment below this is a miss.")
    currency: str = Field(
        default="USD",
        description="The ISO 4217 code of the data's amounts and quotas (EUR, GBP, CNY ...): never converted, "
        "only written with them ($40k, €40k, SEK 40k); `train` records it in the model, whose texts use it.",
    )
    band_high: float = Field(default=0.6, gt=0, lt=1, description="Risk at or above this is high.")
    band_medium: float = Field(default=0.3, gt=0, lt=1, description="Risk at or above this is medium.")
    snapshot_every_days: int = Field(default=7, ge=1, description="Spacing of training snapshots.")
    seed: int = 42
    # Model training, promotion and scoring (training/, models/).
    mlflow_artifact_location: str | None = Field(
        default=None, description="Artifact root for a new experiment; default: under home when embedded."
    )
    max_drivers: int = Field(default=5, ge=1, description="Drivers listed per scored row.")
    playbook: Path | None = Field(
        default=None,
        description="Playbook YAML to suggest interventions with when scoring (training bundles it into the "
        "model); default: the playbook bundled with the model (docs/playbook.md).",
    )
    min_history_days: int | None = Field(
        default=None,
        ge=0,
        description="Fewer days of data than this flag a rep as 'not enough data' when scoring; default: "
        "the playbook's min_history_days.",
    )
    test_periods: int = Field(default=1, ge=1, description="Latest finished periods held out for evaluation.")
    calibration_periods: int = Field(
        default=4,
        ge=1,
        description="Periods the calibrator is fitted on: the validation period and up to this many less one "
        "before it, each scored by a booster fitted only on the periods that ended before it (1: validation only).",
    )
    min_misses: int = Field(
        default=5, ge=1, description="Fewest missed and met rep-periods each split needs to train."
    )
    train_num_threads: int = Field(
        default=1,
        ge=1,
        description="LightGBM threads for training and batch SHAP (1: fastest on shared small machines).",
    )
    gate_tol_auc: float = Field(
        default=0.01, ge=0, description="Challenger AUC may trail the champion by this."
    )
    gate_tol_brier: float = Field(
        default=0.005, ge=0, description="Challenger Brier may exceed the champion by this."
    )
    gate_early_share: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="The gate also compares AUC on held-out rows at most this far into their period "
        "(within the AUC tolerance): the weeks an early warning is for.",
    )
    operator: str | None = Field(
        default=None, description="Who is acting (promotion records); default $USER."
    )

    # --- the HTTP service (serving/) ---
    api_host: str = Field(default="127.0.0.1", description="Address `repradar serve` listens on.")
    api_port: int = Field(default=8000, ge=1, le=65535, description="Port `repradar serve` listens on.")
    api_workers: int = Field(default=1, ge=1, le=64, description="Server processes (SO_REUSEPORT).")
    alert_budget: int = Field(
        default=20, ge=1, le=1000, description="Early-warning list: at most this many reps per answer."
    )
    max_body_bytes: int = Field(default=64_000, ge=1024, description="Request bodies above this get 413.")
    max_in_flight: int = Field(default=64, ge=1, description="Requests handled at once per process.")
    max_waiting: int = Field(default=256, ge=0, description="Requests queued beyond that; more get 503.")
    queue_timeout_s: float = Field(
        default=2.0, gt=0, description="A queued request waits this long, then 503."
    )
    model_poll_s: float = Field(
        default=5.0, gt=0, description="How often the service checks the champion alias."
    )
    job_workers: int = Field(default=1, ge=1, le=8, description="Batch jobs run at once per process.")
    max_queued_jobs: int = Field(default=4, ge=1, description="Unfinished batch jobs allowed; more get 429.")
    job_alerts: bool = Field(
        default=False,
        description="After each batch job that succeeds, send managers the digests of their reps newly in "
        "the high band against the previous batch (`repradar alerts`; channels from REPRADAR_ALERTS_*).",
    )
    job_reports: str = Field(
        default="",
        description="After each batch job that succeeds, make HR's report of it in these languages (comma-separated: "
        "en, zh-CN) in the background, so that the first request for it is served from the job's folder instead of "
        "waiting for it to be made (tens of seconds for a large organisation). Empty: made on the first request.",
    )
    job_heartbeat_s: float = Field(default=5.0, gt=0, description="A running job's liveness beat.")
    job_stale_after_s: float = Field(
        default=60.0, gt=0, description="A job without a beat for this long is reported failed."
    )
    graceful_timeout_s: int = Field(
        default=30, ge=1, description="SIGTERM: in-flight requests get this long."
    )
    db_timeout_s: float = Field(default=15.0, gt=0, description="Database connect, lock and pool timeouts.")
    db_auto_migrate: bool = Field(default=True, description="The service upgrades its database at start.")
    export_idle_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="PostgreSQL: a CSV download whose client stops reading for this long is ended, so that "
        "stalled clients cannot hold the database's connections (idle in transaction) without end.",
    )
    # --- dashboard sign-in and the proxy in front (docs/service.md, "Sessions and browser security") ---
    session_idle_minutes: int = Field(
        default=60, ge=1, le=7 * 24 * 60, description="A dashboard session unused this long ends."
    )
    session_max_hours: int = Field(
        default=12,
        ge=1,
        le=30 * 24,
        description="A dashboard session ends this long after sign-in, used or not.",
    )
    token_max_days: int = Field(
        default=90,
        ge=0,
        le=3650,
        description="An API token stops working this many days after it was issued (0: never); `repradar "
        "users token NAME` issues a fresh one.",
    )
    signin_max_failures: int = Field(
        default=10,
        ge=1,
        le=10_000,
        description="Refused dashboard sign-ins from one address within SIGNIN_WINDOW_S before it is turned "
        "away (429) until the oldest leaves the window; per process.",
    )
    api_max_token_failures: int = Field(
        default=100,
        ge=1,
        le=100_000,
        description="API requests with an unknown, revoked or expired token from one address within "
        "SIGNIN_WINDOW_S before its bearer requests get 429 until the oldest leaves the window; per process.",
    )
    signin_window_s: int = Field(
        default=300, ge=1, le=24 * 3600, description="The window of SIGNIN_MAX_FAILURES, in seconds."
    )
    timezone: str = Field(
        default="UTC",
        description="The dashboard's clock (an IANA time zone, e.g. Asia/Shanghai): the zone of the times its "
        "pages show (session end, jobs, audit, models) and of the day its forms propose as today.",
    )
    cookie_secure: bool | None = Field(
        default=None,
        description="The sign-in cookie's Secure flag: auto (default) follows the request's scheme; true always "
        "sets it (HTTPS behind a proxy whose scheme the service cannot see); false never does.",
    )
    forwarded_allow_ips: str = Field(
        default="127.0.0.1,::1",
        description="Proxies trusted for X-Forwarded-Proto/-For (comma-separated addresses or networks, or *); "
        "passed to uvicorn by `repradar serve`.",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        """A time zone the machine's database knows (a typo would otherwise show UTC without saying so)."""
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(value.strip())
        except Exception:
            raise ValueError(
                f"unknown time zone {value!r}: give an IANA name such as Asia/Shanghai or UTC"
            ) from None
        return value.strip()

    @field_validator("currency")
    @classmethod
    def _iso_currency(cls, value: str) -> str:
        """A known ISO 4217 code in capitals: a typo would otherwise be written beside every amount."""
        from models.currency import normalise_currency

        return normalise_currency(value)

    @field_validator("cookie_secure", mode="before")
    @classmethod
    def _auto_is_none(cls, value: Any) -> Any:
        """`auto` (or empty) means: follow the request's scheme."""
        if isinstance(value, str) and value.strip().lower() in ("", "auto"):
            return None
        return value

    @field_validator("job_reports")
    @classmethod
    def _report_languages(cls, value: str) -> str:
        """Languages RepRadar writes reports in (read as --lang reads them), each once (a typo would
        otherwise never make one)."""
        from models.i18n import LANGUAGES, language

        items = []
        for v in (v for v in value.split(",") if v.strip()):
            try:
                items.append(language(v))
            except ValueError:
                raise ValueError(
                    f"unknown language {v.strip()!r}: give {' or '.join(LANGUAGES)} (comma-separated)"
                ) from None
        return ",".join(dict.fromkeys(items))

    @property
    def job_report_languages(self) -> list[str]:
        """REPRADAR_JOB_REPORTS as a list."""
        return [v for v in self.job_reports.split(",") if v]

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _addresses(cls, value: str) -> str:
        """Every entry an IP address or network (uvicorn would silently treat a typo as a name never matched)."""
        items = [v.strip() for v in value.split(",") if v.strip()]
        if items == ["*"]:
            return "*"
        if not items:
            raise ValueError("give at least one address (e.g. 127.0.0.1), network (10.0.0.0/8) or *")
        out = []
        for item in items:
            try:  # written as uvicorn parses them: a network with host bits set would be a dead literal there
                out.append(
                    str(
                        ipaddress.ip_network(item, strict=False)
                        if "/" in item
                        else ipaddress.ip_address(item)
                    )
                )
            except ValueError:
                raise ValueError(
                    f"{item!r} is not an IP address or network; give addresses or networks "
                    "separated by commas (e.g. 127.0.0.1,10.0.0.0/8), or * to trust every client"
                ) from None
        return ",".join(out)

    @property
    def resolved_home(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def tracking_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{self.resolved_home / 'mlflow.db'}"

    @property
    def artifact_root(self) -> str:
        return (self.resolved_home / "mlartifacts").as_uri()

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.resolved_home / 'repradar.db'}"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings; tests build their own `Settings(...)` instead."""
    return Settings()
