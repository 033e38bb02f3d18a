"""Webhooks: ``POST /api/v1/hooks/{hook_path}`` with the hook's token starts a run.

The token comes in the ``X-Flowloom-Token`` header (or, for senders that cannot set headers,
the ``token`` query parameter, which access logs and proxies may record: prefer the header).
The JSON body, an object, is the run's inputs; the run belongs to the webhook's owner and is
marked as started by the trigger. The answer is 202 with the run's id, or, for a webhook made
with ``respond: "output"``, 200 with the finished run's status and outputs (202 if it is
still going after the webhook's ``timeout_s``). An ``Idempotency-Key`` header makes a repeated
delivery answer with the run the first one started.

An unknown address, a missing token and a wrong token all answer the same 404, so a caller
without the token cannot tell whether a hook lives there; a refused call to a hook that exists
is written to its owner's audit log (``webhook.refused``). A hook switched off, or one whose
workflow is inactive, answers 403 to a caller holding the right token.

This is the hottest route of the API (benchmark S3): the hook is found with one indexed read
on the database's fast path, and read again at every request (a token replaced or a hook
switched off takes effect at the next request). On PostgreSQL, a hook that started a run
before is read by the next run's own start statement instead (``WebhookGuard``): the run is
written only if the hook is still exactly as it was then, else nothing is written and the
request is answered from the hook as that statement read it, as at a first call. The run's own
event says when it has finished, and its outcome is what the engine committed (a run driven
elsewhere: one read by primary key).
"""

import asyncio
import json
import logging
import weakref
from typing import Any

from fastapi import APIRouter, Request, Response, status
from starlette.background import BackgroundTask

from flowloom.api.deps import app_state, client_ip
from flowloom.api.errors import problem_response
from flowloom.engine import RUN_FINISHED_EVENTS, Engine, RunResult
from flowloom.engine.ports import StartRefused
from flowloom.exceptions import FlowloomError, InputError, NotFound, PermissionDenied
from flowloom.storage.database import Database
from flowloom.storage.enums import RunStatus, TriggerKind
from flowloom.storage.repos.audit import AuditRepo
from flowloom.storage.repos.triggers import (
    RunOutcome,
    WebhookGuard,
    WebhookTarget,
    lookup_webhook,
    run_outcome,
)
from flowloom.triggers.tokens import token_matches
from flowloom.triggers.webhooks import TOKEN_HEADER, TOKEN_QUERY, WebhookOptions, inputs_from_body

__all__ = ["router"]

router = APIRouter(prefix="/hooks", tags=["webhooks"])

_log = logging.getLogger("flowloom.triggers")

_PATH_MAX_LENGTH = 64

_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "``respond: output``: the finished run",
        "content": {
            "application/json": {
                "example": {"run_id": "run_...", "status": "COMPLETED", "outputs": {}}
            }
        },
    },
    202: {
        "description": "The run started (or, ``respond: output``, is still going)",
        "content": {"application/json": {"example": {"run_id": "run_...", "status": "PENDING"}}},
    },
    403: {"description": "The webhook is switched off, or its workflow is inactive"},
    404: {"description": "No webhook at this address, or the token is missing or wrong"},
    # What FastAPI documents for a route with parameters it validates itself.
    422: {
        "description": "Validation Error",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}
        },
    },
}


def _token_parameter(name: str, where: str, description: str) -> dict[str, Any]:
    """An optional text parameter as FastAPI itself would document it."""
    return {
        "name": name,
        "in": where,
        "required": False,
        "schema": {
            "anyOf": [{"type": "string"}, {"type": "null"}],
            "description": description,
            "title": name.replace("_", " ").title() if where == "query" else name,
        },
        "description": description,
    }


# The hook's path and the token's two places are read from the request itself (FastAPI's
# parameter solving and validation was a twentieth of a webhook call's server CPU) and
# documented here as FastAPI would.
_BODY: dict[str, Any] = {
    "parameters": [
        {
            "name": "hook_path",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "title": "Hook Path"},
        },
        _token_parameter(TOKEN_QUERY, "query", "The token, if no header can be sent."),
        _token_parameter(TOKEN_HEADER, "header", "The webhook's secret token."),
    ],
    "requestBody": {
        "required": False,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "additionalProperties": True,
                    "description": "The run's inputs, by trigger.manual field name.",
                }
            }
        },
    },
}


def _answer(code: int, body: dict[str, Any], run_id: str) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":"), default=str),
        status_code=code,
        media_type="application/json",
        headers={"Location": f"/api/v1/runs/{run_id}"},
    )


@router.post(
    "/{hook_path}", status_code=status.HTTP_202_ACCEPTED, responses=_ANSWERS, openapi_extra=_BODY
)
async def call_webhook(request: Request) -> Response:
    """Start a run of the webhook's workflow with the JSON body as its inputs."""
    hook_path: str = request.scope["path_params"]["hook_path"]
    state = app_state(request)
    db, engine = state.db, state.require_engine()
    offered = request.headers.get(TOKEN_HEADER)
    if offered is None and request.scope["query_string"]:
        offered = request.query_params.get(TOKEN_QUERY)
    idempotency = request.headers.get("idempotency-key")
    target: WebhookTarget | None
    seen = None if idempotency is not None else _seen_target(db, hook_path, offered)
    if seen is not None:
        started = await _start_as_seen(request, db, engine, hook_path, seen)
        if isinstance(started, Response):
            return started
        target = started
    else:
        target = await _find(db, hook_path)
    if target is None or not token_matches(target.secret_sha256, offered):
        refused = problem_response(
            404, str(NotFound("webhook", hook_path)), instance=request.url.path, kind="webhook"
        )
        if target is not None:
            # Written after the answer is sent, so that the answer takes no longer for a hook
            # that exists than for one that does not.
            reason = "no token" if offered is None else "wrong token"
            refused.background = BackgroundTask(_refused, db, target, request, reason)
        return refused
    if not target.enabled or not target.workflow_active:
        reason = "switched off" if not target.enabled else "workflow inactive"
        await _refused(db, target, request, reason)
        what = "this webhook is switched off" if not target.enabled else "the workflow is inactive"
        raise PermissionDenied(what)
    inputs = inputs_from_body(await request.body(), max_bytes=state.settings.max_run_inputs_bytes)
    if not db.is_sqlite:
        _remember(db, hook_path, target)
    run_id = await _start(engine, target, inputs, idempotency)
    return await _respond(engine, db, target, run_id)


_SEEN_MAX = 4096
"""At most this many webhooks are remembered per database (``_seen_target``)."""

_SEEN: weakref.WeakKeyDictionary[Database, dict[str, WebhookTarget]] = weakref.WeakKeyDictionary()
"""The webhooks that last started runs, by path, as read then (PostgreSQL only)."""


def _seen_target(db: Database, path: str, offered: str | None) -> WebhookTarget | None:
    """The webhook at ``path`` as it was when it last started a run, if ``offered`` is its
    token then: a guess, never trusted alone. The run's start reads the hook again in its
    own statement and writes only if it is still exactly this (``WebhookGuard``)."""
    seen = _SEEN.get(db, {}).get(path)
    if seen is None or not token_matches(seen.secret_sha256, offered):
        return None
    return seen


def _remember(db: Database, path: str, target: WebhookTarget) -> None:
    seen = _SEEN.setdefault(db, {})
    if len(seen) >= _SEEN_MAX and path not in seen:
        seen.clear()
    seen[path] = target


async def _start_as_seen(
    request: Request, db: Database, engine: Engine, path: str, seen: WebhookTarget
) -> Response | WebhookTarget | None:
    """On PostgreSQL, the hook's look-up and the run's start in one statement: the run is
    written only if the hook is still ``seen`` (``WebhookGuard``). The answer when it was;
    else the hook as it is now (None: no hook at ``path``), for the route's checks, as if it
    had been read alone: nothing was written. A body that is not inputs is answered after
    those checks, as ever (the hook is read alone then)."""
    settings = app_state(request).settings
    try:
        inputs = inputs_from_body(await request.body(), max_bytes=settings.max_run_inputs_bytes)
    except InputError:
        return await _find(db, path)
    try:
        run_id = await _start(engine, seen, inputs, None, guard=WebhookGuard(path, seen))
    except StartRefused as refused:
        _SEEN.get(db, {}).pop(path, None)
        return WebhookGuard.target_of(refused.row)
    return await _respond(engine, db, seen, run_id)


async def _start(
    engine: Engine,
    target: WebhookTarget,
    inputs: dict[str, Any],
    idempotency: str | None,
    *,
    guard: WebhookGuard | None = None,
) -> str:
    return await engine.start_run(
        owner_id=target.user_id,
        workflow_id=target.workflow_id,
        inputs=inputs,
        trigger_kind=TriggerKind.WEBHOOK,
        trigger_data={"trigger_id": target.trigger_id},
        idempotency_key=(
            f"webhook:{target.trigger_id}:{idempotency[:100]}" if idempotency else None
        ),
        guard=guard,
    )


async def _respond(engine: Engine, db: Database, target: WebhookTarget, run_id: str) -> Response:
    options = WebhookOptions.from_config(target.config)
    if options.respond == "output":
        return await _output(engine, db, run_id, target.user_id, options.timeout_s)
    return _answer(202, {"run_id": run_id, "status": RunStatus.PENDING.value}, run_id)


async def _find(db: Database, path: str) -> WebhookTarget | None:
    if not path or len(path) > _PATH_MAX_LENGTH:
        return None
    return await lookup_webhook(db, path=path)


_SETTLED_EVENTS = frozenset({*RUN_FINISHED_EVENTS, "run.waiting"})


async def _output(
    engine: Engine, db: Database, run_id: str, owner_id: str, timeout_s: float
) -> Response:
    """Wait for the run to finish (or park), up to ``timeout_s``; answer its outcome.

    Must be called right after ``start_run`` returned, with no ``await`` in between, so that
    the subscription sees every event of the run. The run's own event says when it settled;
    a run driven in this process that finished has its outcome on its driver, as committed
    by the tick that finished it, and any other outcome is then one read by primary key.

    What sends no event here is waited for beside it: a run driven here whose driver ends
    without settling it (the driver's end closes the subscription; then its error, its
    result, or ``Engine.wait``), and a run driven elsewhere or finished already (an
    idempotent repeat: ``Engine.wait`` runs beside the subscription, and is cancelled,
    before it reads anything, when the event comes first).
    """
    driver = engine.driver_of(run_id)
    subscription = engine.bus.subscribe(run_id)
    waiter: asyncio.Future[RunResult] | None = None
    if driver is None:
        waiter = asyncio.ensure_future(engine.wait(run_id))
        waiter.add_done_callback(lambda _: subscription.close())
    else:
        driver.finished.add_done_callback(lambda _: subscription.close())
    result: RunResult | None = None
    try:
        async with asyncio.timeout(timeout_s):
            async for event in subscription:
                if event.type in _SETTLED_EVENTS:
                    break
            else:
                if driver is not None:
                    # Its driver ended without settling it here: as ``Engine.wait`` would
                    # have told (the driver's error, or its result, or the run as it stands).
                    await driver.finished
                    result = driver.result or await engine.wait(run_id)
    except TimeoutError:
        return _answer(202, {"run_id": run_id, "status": RunStatus.RUNNING.value}, run_id)
    finally:
        subscription.close()
        if waiter is not None and not waiter.done():
            waiter.cancel()
    if result is None:
        if waiter is not None and waiter.done() and not waiter.cancelled():
            result = waiter.result()
        elif driver is not None:
            # Set once the finishing tick had committed, before its events were published.
            result = driver.result
    if result is not None:
        outcome = RunOutcome(result.status.value, result.outputs, result.error, result.duration_ms)
    else:
        found = await db.run_read(
            lambda conn: run_outcome(conn, run_id=run_id, owner_id=owner_id), inline=True
        )
        if found is None:
            raise NotFound("run", run_id)
        outcome = found
    body = {
        "run_id": run_id,
        "status": outcome.status,
        "outputs": outcome.outputs,
        "error": outcome.error,
        "duration_ms": outcome.duration_ms,
    }
    return _answer(200, body, run_id)


async def _refused(db: Database, target: WebhookTarget, request: Request, reason: str) -> None:
    try:
        async with db.write() as session:
            await AuditRepo(session).record(
                user_id=target.user_id,
                action="webhook.refused",
                object_type="workflow_trigger",
                object_id=target.trigger_id,
                ip=client_ip(request),
                user_agent=request.headers.get("user-agent"),
                details={"workflow_id": target.workflow_id, "reason": reason},
            )
    except FlowloomError:
        _log.exception("webhook %s: a refused call could not be audited", target.trigger_id)
