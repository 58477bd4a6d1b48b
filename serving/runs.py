"""What the training run behind a registered version logged, for the dashboard's models page and
`GET /api/v1/models/{version}/curves`: the lead-time curve (the `lead_{model}_{auc|brier}` step
metrics, step = week of the period) and the calibration bins (`evaluation/calibration_bins.json`);
and the run's state for `GET /api/v1/models`. Read from MLflow, never from `training/`.

A finished run does not change, so answers are kept per run id. A version without a run, or whose
run predates these records, gives `None` for what is missing; the page and the API say so plainly.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass

LEAD_PREFIX = "lead_"
CALIBRATION_ARTIFACT = "evaluation/calibration_bins.json"
MEASURES = ("auc", "brier")
_CACHE: OrderedDict[tuple[str, str], RunCurves] = OrderedDict()
_STATES: OrderedDict[tuple[str, str], RunState] = OrderedDict()  # runs that ended: they do not change
_LOCK = threading.Lock()
_CACHE_SIZE = 64
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunCurves:
    """lead: {measure: {model: [(week, value), ...]}}; calibration: {model: [(mean risk, observed, n), ...]}."""

    lead: dict[str, dict[str, list[tuple[int, float]]]] | None
    calibration: dict[str, list[tuple[float, float, int]]] | None


EMPTY = RunCurves(None, None)
ENDED = ("FINISHED", "FAILED", "KILLED")


@dataclass(frozen=True)
class RunState:
    """A version's training run as the API shows it: MLflow's status (None: no run, or it cannot be read),
    and why it differs from MLflow's when it does."""

    status: str | None
    note: str | None = None


def run_state(settings, run_id: str | None) -> RunState:
    """The status of run `run_id`; a run MLflow still holds as RUNNING whose training process is gone
    (`models.registry.stale_reason`: killed, or the machine restarted) is FAILED, with a note. Only read:
    the service does not write to MLflow on a GET; `repradar models` or the next `repradar train` on the
    training host ends such a run in MLflow."""
    if not run_id:
        return RunState(None)
    key = (settings.tracking_uri, run_id)
    with _LOCK:
        if key in _STATES:
            _STATES.move_to_end(key)
            return _STATES[key]
    from mlflow.exceptions import MlflowException

    from models import registry

    try:
        run = registry.configure(settings).get_run(run_id)
    except MlflowException:  # deleted, or the registry points at another tracking store
        return RunState(None)
    status = run.info.status
    if status == "RUNNING" and (why := registry.stale_reason(run.data.tags)):
        return RunState(
            "FAILED",
            f"MLflow still holds the run as RUNNING, but {why}; `repradar models` (or the next `repradar "
            "train`) on that host ends it there as FAILED",
        )
    state = RunState(status)
    if status in ENDED:
        with _LOCK:
            _STATES[key] = state
            while len(_STATES) > _CACHE_SIZE:
                _STATES.popitem(last=False)
    return state


def lead_key(key: str) -> tuple[str, str] | None:
    """'lead_logistic_auc' -> ('logistic', 'auc'); None for any other metric."""
    if not key.startswith(LEAD_PREFIX):
        return None
    model, _, measure = key[len(LEAD_PREFIX) :].rpartition("_")
    return (model, measure) if model and measure in MEASURES else None


def _lead(client, run) -> dict | None:
    out: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for key in sorted(run.data.metrics):
        parsed = lead_key(key)
        if parsed is None:
            continue
        model, measure = parsed
        history = client.get_metric_history(run.info.run_id, key)
        points = {int(m.step): float(m.value) for m in history if math.isfinite(m.value)}
        if points:
            out.setdefault(measure, {})[model] = sorted(points.items())
    return out or None


def _calibration(client, settings, run_id: str) -> dict | None:
    folder = CALIBRATION_ARTIFACT.rpartition("/")[0]
    if not any(a.path == CALIBRATION_ARTIFACT for a in client.list_artifacts(run_id, folder)):
        return None
    from models.registry import scratch_dir

    with tempfile.TemporaryDirectory(dir=scratch_dir(settings)) as tmp:
        local = client.download_artifacts(run_id, CALIBRATION_ARTIFACT, tmp)
        with open(local, encoding="utf-8") as f:
            data = json.load(f)
    out = {
        str(model): [(float(b["mean_risk"]), float(b["observed"]), int(b["n"])) for b in bins]
        for model, bins in (data.get("models") or {}).items()
        if bins
    }
    return out or None


def curves(settings, run_id: str | None) -> RunCurves:
    """The lead-time curve and calibration bins logged with run `run_id` (None where not recorded)."""
    if not run_id:
        return EMPTY
    key = (settings.tracking_uri, run_id)
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    from mlflow.exceptions import MlflowException

    from models import registry

    client = registry.configure(settings)
    try:
        run = client.get_run(run_id)
    except MlflowException:  # the run was deleted, or the registry points at another tracking store
        return EMPTY
    errors: list[Exception] = []
    found = RunCurves(
        _safely(errors, run_id, _lead, client, run),
        _safely(errors, run_id, _calibration, client, settings, run_id),
    )
    if not errors and run.info.status in ENDED:  # a finished run does not change
        with _LOCK:
            _CACHE[key] = found
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
    return found


def _safely(errors: list, run_id: str, fn, *args):
    """`fn(*args)`, or None (and the error noted, so the answer is not kept) when the store fails or
    the record is malformed: the page then says "not recorded" instead of failing."""
    from mlflow.exceptions import MlflowException

    try:
        return fn(*args)
    except (MlflowException, OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("could not read %s of run %s: %s", fn.__name__.strip("_"), run_id, exc)
        errors.append(exc)
        return None
