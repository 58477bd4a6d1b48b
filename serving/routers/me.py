"""Who the token belongs to."""

from __future__ import annotations

from fastapi import APIRouter

from serving.deps import ModelDep, PrincipalDep, model_version
from serving.http_errors import AUTHED, responses
from serving.schemas import MeOut

router = APIRouter(tags=["me"])


@router.get(
    "/me", response_model=MeOut, summary="The caller: name, roles, manager id", responses=responses(*AUTHED)
)
def me(principal: PrincipalDep, model: ModelDep) -> MeOut:
    return MeOut(
        name=principal.name,
        roles=sorted(principal.roles),
        manager_id=principal.manager_id,
        model_version=model_version(model),
    )
