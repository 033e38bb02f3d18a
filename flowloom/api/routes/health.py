"""Liveness and metrics, outside ``/api/v1``: ``GET /healthz`` and ``GET /metrics``."""

import asyncio
from typing import Final

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from flowloom.api.deps import AppStateDep
from flowloom.api.errors import problem_response
from flowloom.api.metrics import CONTENT_TYPE
from flowloom.exceptions import StorageError

__all__ = ["router"]

router = APIRouter(tags=["operations"])

_PING_TIMEOUT_S: Final = 5.0


@router.get("/healthz", response_class=JSONResponse)
async def check_health(state: AppStateDep) -> JSONResponse:
    """200 when the database answers and the engine runs; 503 (problem+json) otherwise.

    A database that does not answer within ``_PING_TIMEOUT_S`` (a network path that drops
    packets rather than refusing) is as good as down: liveness probes must get an answer.
    """
    try:
        async with asyncio.timeout(_PING_TIMEOUT_S):
            await state.db.ping()
    except StorageError as exc:
        return problem_response(503, str(exc), headers={"Retry-After": "1"})
    except TimeoutError:
        return problem_response(
            503,
            f"the database did not answer within {_PING_TIMEOUT_S:g} s",
            headers={"Retry-After": "1"},
        )
    if state.engine is None:
        return problem_response(503, "the engine is not running")
    return JSONResponse({"status": "ok"})


@router.get("/metrics", response_class=Response)
async def read_metrics(state: AppStateDep) -> Response:
    """Prometheus text: runs by status, node durations, queue depth."""
    return Response(await state.metrics.render(state.db), media_type=CONTENT_TYPE)
