"""Models (data scientists): registered versions with metrics and promotion history, the curves a
version's training run logged, promotion through the gate."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse

from repradar.errors import Unavailable, UserError
from serving import audit
from serving.auth import Principal
from serving.db.engine import begin_write
from serving.deps import ModelDep, PrincipalDep, RequestIdDep, SessionDep, SettingsDep, model_version, require
from serving.http_errors import AUTHED, ApiError, responses
from serving.schemas import (
    CalibrationBinOut,
    CalibrationOut,
    CurrentModelOut,
    ErrorOut,
    LeadCurveOut,
    LeadPointOut,
    ModelCurvesOut,
    ModelsOut,
    ModelVersionOut,
    PromoteIn,
    PromotionEventOut,
    PromotionOut,
    TrackRecordOut,
    TrackRecordsOut,
)

router = APIRouter(tags=["models"])
Viewer = Annotated[Principal, Depends(require("data_scientist", "hr", "admin"))]
Promoter = Annotated[Principal, Depends(require("data_scientist"))]


def _text(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)


@router.get(
    "/models/current",
    response_model=CurrentModelOut,
    summary="The champion version this service is serving now",
    responses=responses(*AUTHED),
)
def current(
    request: Request, principal: PrincipalDep, settings: SettingsDep, model: ModelDep
) -> CurrentModelOut:
    holder = request.app.state.holder
    return CurrentModelOut(
        name=settings.model_name,
        version=model_version(model),
        loaded_at=holder.loaded_at,
        ready=model is not None,
        detail=holder.last_error,
    )


@router.get(
    "/models",
    response_model=ModelsOut,
    summary="Registered versions with their metrics, aliases and promotion history",
    responses=responses(*AUTHED),
)
def list_models(principal: Viewer, settings: SettingsDep, model: ModelDep) -> ModelsOut:
    from models.gate import describe_versions
    from models.registry import server_calls
    from serving.runs import run_state

    versions, promotions, champion = [], [], None
    with server_calls():
        described = describe_versions(settings)
    for v in described:
        if "champion" in v["aliases"]:
            champion = v["version"]
        metrics = {
            k: float(v[k]) for k in ("test_auc", "test_brier", "test_auc_week3") if v.get(k) is not None
        }
        created = dt.datetime.fromisoformat(v["created"]) if v.get("created") else None
        tags = {
            "data_window": v.get("data_window", ""),
            "currency": v["currency"],
            "features": v.get("features"),
        }
        # `repradar models` ends runs a killed training left RUNNING; a GET only reads: it shows them failed
        run = run_state(settings, v.get("run_id"))
        versions.append(
            ModelVersionOut(
                version=v["version"],
                aliases=v["aliases"],
                created_at=created,
                run_id=v.get("run_id"),
                metrics=metrics,
                tags=tags,
                run_status=run.status,
                run_note=run.note,
            )
        )
        for h in v.get("history", []):
            promotions.append(
                PromotionEventOut(
                    version=v["version"],
                    at=h.get("at"),
                    by=h.get("by"),
                    reason=h.get("reason"),
                    forced=h.get("forced"),
                    tags={k: _text(x) for k, x in h.items() if k not in ("at", "by", "reason", "forced")},
                )
            )
    promotions.sort(key=lambda p: p.at or "", reverse=True)
    return ModelsOut(
        name=settings.model_name,
        champion=champion,
        serving_version=model_version(model),
        versions=versions,
        promotions=promotions,
    )


@router.get(
    "/models/track-record",
    response_model=TrackRecordsOut,
    summary="How the lists given out turned out: each batch's risks against its periods' outcomes",
    responses=responses(*AUTHED),
)
def track_record(principal: Viewer, session: SessionDep) -> TrackRecordsOut:
    """Written by the batch jobs: each one judges the earlier batches whose periods have finished in its
    data (serving.jobs, reporting.track_record). Counts and rates only, no rep."""
    from serving.store import track_records

    return TrackRecordsOut(items=[track_record_out(rec, job) for rec, job in track_records(session)])


def track_record_out(rec, job) -> TrackRecordOut:
    """A stored track record as the API gives it; figures it lacks (another release wrote it) take the
    schema's defaults, keys it does not know are left out."""
    f = dict(rec.figures or {})
    f["bins"] = [
        CalibrationBinOut(mean_risk=b["mean_risk"], observed=b["observed"], n=b["n"])
        for b in f.get("bins") or []
        if isinstance(b, dict) and {"mean_risk", "observed", "n"} <= set(b)
    ]
    fields = set(TrackRecordOut.model_fields) - {
        "job_id",
        "as_of",
        "model_version",
        "judged_by",
        "judged_as_of",
    }
    return TrackRecordOut(
        job_id=job.id,
        as_of=job.as_of,
        model_version=str(f.get("model_version") or job.model_version),
        judged_by=rec.judged_by,
        judged_as_of=rec.judged_as_of,
        computed_at=rec.computed_at,
        **{k: f[k] for k in fields - {"computed_at"} if k in f},
    )


@router.get(
    "/models/{version}/curves",
    response_model=ModelCurvesOut,
    summary="The lead-time curves (AUC and Brier by week) and calibration bins logged by a version's training run",
    responses=responses(*AUTHED, 404, 422),
)
def curves(
    principal: Viewer,
    settings: SettingsDep,
    version: Annotated[str, Path(min_length=1, max_length=64, description="A registered version, e.g. 3.")],
) -> ModelCurvesOut:
    from serving import runs

    mv = _version(settings, version)
    if mv is None:
        raise ApiError(
            404,
            f"model {settings.model_name!r} has no version {version!r}; GET /api/v1/models lists them",
        )
    logged = runs.curves(settings, mv.run_id)
    lead = [
        LeadCurveOut(
            model=model,
            measure=measure,
            metric=f"{runs.LEAD_PREFIX}{model}_{measure}",
            points=[LeadPointOut(week=w, value=v) for w, v in points],
        )
        for measure in runs.MEASURES
        for model, points in sorted((logged.lead or {}).get(measure, {}).items())
    ]
    calibration = [
        CalibrationOut(
            model=model, bins=[CalibrationBinOut(mean_risk=p, observed=o, n=n) for p, o, n in bins]
        )
        for model, bins in sorted((logged.calibration or {}).items())
    ]
    return ModelCurvesOut(
        name=settings.model_name,
        version=str(mv.version),
        run_id=mv.run_id or None,
        recorded=bool(lead or calibration),
        lead=lead,
        calibration=calibration,
    )


@router.post(
    "/models/promote",
    response_model=PromotionOut,
    summary="Promote a version (default: the challenger) through the same gate as `repradar promote`, or "
    "only check what the gate would decide (`dry_run`)",
    responses={
        **responses(*AUTHED, 400, 404, 413, 415, 422),
        409: {
            "model": PromotionOut | ErrorOut,
            "description": "The gate refused (the figures side by side), or nothing can be promoted yet.",
        },
    },
)
async def promote(
    request: Request,
    body: PromoteIn,
    principal: Promoter,
    settings: SettingsDep,
    model: ModelDep,
    rid: RequestIdDep,
):
    from models.gate import promote as run_gate

    if body.version is not None and not await asyncio.to_thread(_registered, settings, body.version):
        raise ApiError(
            404,
            f"model {settings.model_name!r} has no version {body.version!r}; GET /api/v1/models lists them",
        )

    def _audit_request() -> None:
        with begin_write(request.app.state.sessions) as s:
            audit.promotion_requested(s, principal, body.version, body.force, body.reason, rid)

    if not body.dry_run:  # a check changes nothing and names no rep: not a request for the trail
        await asyncio.to_thread(_audit_request)
    # The gate scores held-out data: seconds of CPU, so off the event loop.
    try:
        result = await asyncio.to_thread(
            _in_server_calls(run_gate),
            settings,
            body.version,
            body.force,
            body.reason,
            f"api:{principal.name}",
            principal.name,
            body.dry_run,
        )
    except Unavailable:  # the registry is down: 503, retry later
        raise
    except UserError as exc:  # nothing trained, no challenger, incomparable versions: the registry's state
        raise ApiError(409, str(exc)) from None
    figures = {k: (vars(f) if hasattr(f, "__dict__") else f) for k, f in (result.figures or {}).items()}
    out = PromotionOut(
        promoted=result.promoted,
        version=result.challenger_version,
        message=result.message,
        figures={"decision": result.decision, "champion_before": result.champion_version, **figures},
        model_version=model_version(model),
        dry_run=result.dry_run,
    )
    if result.dry_run:
        return out

    def _audit() -> None:
        with begin_write(request.app.state.sessions) as s:
            audit.promotion_outcome(s, principal, result, body.force, body.reason, rid)

    await asyncio.to_thread(_audit)
    if result.promoted:
        # Do not wait for the next poll: load the new champion now, in the background.
        asyncio.get_running_loop().create_task(request.app.state.holder.refresh())
    if not result.promoted and result.decision != "already":
        return JSONResponse(out.model_dump(mode="json"), 409)
    return out


def _in_server_calls(fn):
    """`fn` with an MLflow server that is down said as `Unavailable` (`models.registry.server_calls`)."""
    from models.registry import server_calls

    def call(*args):
        with server_calls():
            return fn(*args)

    return call


def _registered(settings, version: str) -> bool:
    return _version(settings, version) is not None


def _version(settings, version: str):
    """The registered ModelVersion, or None when there is no such version (or nothing registered yet)."""
    from models import registry

    # Registered versions are positive integers; anything else (and a number too large for the store's
    # integer column, which it answers with an internal error) cannot be one.
    if not (version.isascii() and version.isdigit() and len(version) <= 18):
        return None
    if not registry.store_exists(settings):
        return None
    with registry.server_calls():
        return registry.get_version(registry.configure(settings), settings.model_name, version)
