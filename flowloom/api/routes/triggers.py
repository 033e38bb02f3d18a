"""Triggers of a workflow: webhooks and schedules. Create, list, read, change, delete.

A webhook is made with a random address and a secret token; the token is in the answer to
``POST`` (and to ``POST /triggers/{id}/token``, which replaces it) and never again: only its
SHA-256 is stored. A schedule takes a five-field cron expression and an IANA time zone; a bad
one answers 422 naming ``cron`` or ``timezone``. ``PATCH`` with ``enabled`` switches a trigger
off and on; a schedule switched on again starts from its next fire time after now, so the time
it was off is not reported as missed.

For the triggers panel: a schedule answers with its cron expression in words and its next five
fire times, and ``GET /schedule-preview`` says the same of an expression not saved yet;
``GET /timezones`` lists the IANA names to pick from; ``GET /triggers/{id}/calls`` lists the
runs a trigger started, ``GET /triggers/{id}/events`` its missed fire times and refused calls;
``POST /triggers/{id}/test`` starts the run a webhook call would start, without the token.
"""

from datetime import datetime
from functools import cache
from typing import Annotated, Any, Final
from zoneinfo import available_timezones

from fastapi import APIRouter, Query, Request, Response, status

from flowloom.api.deps import (
    Caller,
    DatabaseDep,
    EngineDep,
    RunExecutor,
    SettingsDep,
    WorkflowReader,
    WorkflowWriter,
    client_ip,
)
from flowloom.api.limits import check_inputs_size
from flowloom.api.schemas.common import Page
from flowloom.api.schemas.runs import RunPublic, run_public
from flowloom.api.schemas.triggers import (
    SchedulePreview,
    TimezoneList,
    TriggerCreate,
    TriggerCreated,
    TriggerEvent,
    TriggerPublic,
    TriggerUpdate,
    WebhookTestCall,
    WebhookTestStarted,
)
from flowloom.exceptions import Conflict, InputError
from flowloom.storage.enums import TriggerKind, TriggerType
from flowloom.storage.repos.audit import AuditRepo
from flowloom.storage.repos.runs import RunRepo
from flowloom.storage.repos.triggers import KEEP, TriggerRepo
from flowloom.storage.tables import AuditEntry, WorkflowTrigger
from flowloom.storage.tables.base import utcnow
from flowloom.triggers.describe import describe_cron
from flowloom.triggers.schedule import Schedule
from flowloom.triggers.tokens import new_webhook_path, new_webhook_token
from flowloom.triggers.webhooks import WebhookOptions

__all__ = ["HOOKS_PATH", "router"]

router = APIRouter(tags=["triggers"])

HOOKS_PATH: Final = "/api/v1/hooks"

Limit = Annotated[int, Query(ge=1, le=100)]

UPCOMING_FIRES: Final = 5
"""How many of a schedule's next fire times an answer lists."""


def upcoming_fires(schedule: Schedule, count: int = UPCOMING_FIRES) -> list[datetime]:
    """The schedule's next ``count`` fire times after now, in UTC."""
    times: list[datetime] = []
    moment = utcnow()
    for _ in range(count):
        moment = schedule.next_after(moment)
        times.append(moment)
    return times


def trigger_public(trigger: WorkflowTrigger) -> TriggerPublic:
    webhook = trigger.kind == TriggerType.WEBHOOK
    options = WebhookOptions.from_config(trigger.config) if webhook else None
    inputs = trigger.config.get("inputs") if not webhook else None
    description: str | None = None
    upcoming: list[datetime] = []
    if not webhook and trigger.cron:
        description = describe_cron(trigger.cron)
        if trigger.enabled:
            upcoming = upcoming_fires(Schedule(trigger.cron, trigger.timezone or "UTC"))
    return TriggerPublic(
        id=trigger.id,
        workflow_id=trigger.workflow_id,
        kind=TriggerType(trigger.kind),
        enabled=trigger.enabled,
        url=f"{HOOKS_PATH}/{trigger.webhook_path}" if webhook else None,
        cron=trigger.cron,
        timezone=None if webhook else trigger.timezone,
        next_fire_at=trigger.next_fire_at,
        description=description,
        upcoming=upcoming,
        last_fired_at=trigger.last_fired_at,
        inputs=inputs if isinstance(inputs, dict) else ({} if not webhook else None),
        respond=options.respond if options else None,
        timeout_s=options.timeout_s if options else None,
        created_at=trigger.created_at,
        updated_at=trigger.updated_at,
    )


def _created(trigger: WorkflowTrigger, token: str | None) -> TriggerCreated:
    return TriggerCreated(**trigger_public(trigger).model_dump(), token=token)


def _refuse_for(kind: TriggerType, fields: dict[str, Any]) -> None:
    """InputError naming the first field sent that the other kind of trigger takes."""
    only = (
        ("cron", "timezone", "inputs") if kind is TriggerType.WEBHOOK else ("respond", "timeout_s")
    )
    for name in only:
        if fields.get(name) is not None:
            raise InputError(f"a {kind.value} takes no {name}", field=name)


async def _audit(
    session: Any, caller: Caller, request: Request, action: str, trigger: WorkflowTrigger
) -> None:
    await AuditRepo(session).record(
        user_id=caller.user_id,
        action=action,
        object_type="workflow_trigger",
        object_id=trigger.id,
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
        details={"workflow_id": trigger.workflow_id, "kind": trigger.kind},
    )


@router.post("/workflows/{workflow_id}/triggers", status_code=status.HTTP_201_CREATED)
async def create_trigger(
    workflow_id: str,
    body: TriggerCreate,
    caller: WorkflowWriter,
    db: DatabaseDep,
    settings: SettingsDep,
    request: Request,
    response: Response,
) -> TriggerCreated:
    """A new webhook or schedule on the workflow. A webhook's ``token`` is in this answer
    only: store it now."""
    fields = body.model_dump()
    _refuse_for(body.kind, fields)
    token: str | None = None
    async with db.write() as session:
        repo = TriggerRepo(session, owner_id=caller.user_id)
        if body.kind is TriggerType.WEBHOOK:
            token, digest = new_webhook_token()
            options = WebhookOptions(
                respond=body.respond or "run",
                timeout_s=body.timeout_s or WebhookOptions().timeout_s,
            )
            trigger = await repo.create(
                workflow_id=workflow_id,
                kind=TriggerType.WEBHOOK,
                enabled=body.enabled,
                webhook_path=new_webhook_path(),
                webhook_secret_sha256=digest,
                config=options.to_config(),
            )
        else:
            if body.cron is None:
                raise InputError("a schedule needs a cron expression", field="cron")
            schedule = Schedule(body.cron, body.timezone or "UTC")
            inputs = body.inputs or {}
            check_inputs_size(inputs, max_bytes=settings.max_run_inputs_bytes)
            trigger = await repo.create(
                workflow_id=workflow_id,
                kind=TriggerType.SCHEDULE,
                enabled=body.enabled,
                cron=schedule.cron,
                timezone=schedule.timezone,
                next_fire_at=schedule.next_after(utcnow()) if body.enabled else None,
                config={"inputs": inputs},
            )
        await _audit(session, caller, request, "trigger.create", trigger)
    response.headers["Location"] = f"/api/v1/triggers/{trigger.id}"
    return _created(trigger, token)


@router.get("/workflows/{workflow_id}/triggers")
async def list_triggers(
    workflow_id: str,
    caller: WorkflowReader,
    db: DatabaseDep,
    cursor: str | None = None,
    limit: Limit = 20,
) -> Page[TriggerPublic]:
    """The workflow's triggers, newest first (no tokens: they are never shown again)."""
    async with db.read() as session:
        page = await TriggerRepo(session, owner_id=caller.user_id).list(
            workflow_id=workflow_id, cursor=cursor, limit=limit
        )
    return Page(items=[trigger_public(t) for t in page.items], next_cursor=page.next_cursor)


@router.get("/triggers/{trigger_id}")
async def read_trigger(trigger_id: str, caller: WorkflowReader, db: DatabaseDep) -> TriggerPublic:
    async with db.read() as session:
        trigger = await TriggerRepo(session, owner_id=caller.user_id).get(trigger_id=trigger_id)
    return trigger_public(trigger)


@router.patch("/triggers/{trigger_id}")
async def update_trigger(
    trigger_id: str,
    body: TriggerUpdate,
    caller: WorkflowWriter,
    db: DatabaseDep,
    settings: SettingsDep,
) -> TriggerPublic:
    """Change a trigger: switch it on or off, change a schedule's time or inputs, or how a
    webhook answers. A schedule's next fire time is worked out again from now when it is
    switched on or its cron or time zone changes."""
    fields = body.model_dump(exclude_unset=True)
    if body.inputs is not None:
        check_inputs_size(body.inputs, max_bytes=settings.max_run_inputs_bytes)
    async with db.write() as session:
        repo = TriggerRepo(session, owner_id=caller.user_id)
        trigger = await repo.get(trigger_id=trigger_id)
        kind = TriggerType(trigger.kind)
        _refuse_for(kind, fields)
        enabled = trigger.enabled if body.enabled is None else body.enabled
        if kind is TriggerType.WEBHOOK:
            options = WebhookOptions.from_config(trigger.config)
            options = WebhookOptions(
                respond=body.respond or options.respond,
                timeout_s=body.timeout_s or options.timeout_s,
            )
            trigger = await repo.update(
                trigger_id=trigger_id, enabled=body.enabled, config=options.to_config()
            )
            return trigger_public(trigger)
        schedule = Schedule(body.cron or trigger.cron or "", body.timezone or trigger.timezone)
        moved = body.cron is not None or body.timezone is not None
        restarted = enabled and (not trigger.enabled or trigger.next_fire_at is None)
        next_fire_at: datetime | None = trigger.next_fire_at
        if not enabled:
            next_fire_at = None
        elif moved or restarted:
            next_fire_at = schedule.next_after(utcnow())
        config = dict(trigger.config)
        if body.inputs is not None:
            config["inputs"] = body.inputs
        trigger = await repo.update(
            trigger_id=trigger_id,
            enabled=body.enabled,
            cron=schedule.cron if body.cron is not None else None,
            timezone=schedule.timezone if body.timezone is not None else None,
            next_fire_at=next_fire_at if next_fire_at != trigger.next_fire_at else KEEP,
            config=config,
        )
    return trigger_public(trigger)


@router.post("/triggers/{trigger_id}/token")
async def replace_token(
    trigger_id: str, caller: WorkflowWriter, db: DatabaseDep, request: Request
) -> TriggerCreated:
    """A new secret token for a webhook; the old one stops working at once. The new ``token``
    is in this answer only."""
    async with db.write() as session:
        repo = TriggerRepo(session, owner_id=caller.user_id)
        trigger = await repo.get(trigger_id=trigger_id)
        if trigger.kind != TriggerType.WEBHOOK:
            raise InputError("only a webhook has a token", field="trigger_id")
        token, digest = new_webhook_token()
        trigger = await repo.update(trigger_id=trigger_id, webhook_secret_sha256=digest)
        await _audit(session, caller, request, "trigger.token_replace", trigger)
    return _created(trigger, token)


@router.delete("/triggers/{trigger_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_trigger(
    trigger_id: str, caller: WorkflowWriter, db: DatabaseDep, request: Request
) -> Response:
    """Delete the trigger for good; the runs it started stay."""
    async with db.write() as session:
        trigger = await TriggerRepo(session, owner_id=caller.user_id).delete(trigger_id=trigger_id)
        await _audit(session, caller, request, "trigger.delete", trigger)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/triggers/{trigger_id}/calls")
async def list_trigger_calls(
    trigger_id: str,
    caller: WorkflowReader,
    db: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> Page[RunPublic]:
    """The runs the trigger started, newest first: a webhook's last calls, a schedule's last
    firings (a refused webhook call starts nothing; it is in the audit log)."""
    async with db.read() as session:
        trigger = await TriggerRepo(session, owner_id=caller.user_id).get(trigger_id=trigger_id)
        runs = await RunRepo(session, owner_id=caller.user_id).started_by_trigger(
            workflow_id=trigger.workflow_id, trigger_id=trigger.id, limit=limit
        )
    return Page(items=[run_public(r) for r in runs], next_cursor=None)


_EVENT_ACTIONS: Final = ("schedule.missed", "webhook.refused")


def _event(entry: AuditEntry) -> TriggerEvent:
    details = entry.details or {}

    def moment(name: str) -> datetime | None:
        value = details.get(name)
        try:
            return datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            return None

    missed = details.get("missed")
    reason = details.get("reason")
    return TriggerEvent(
        id=entry.id,
        at=entry.created_at,
        kind="missed" if entry.action == "schedule.missed" else "refused",
        missed=missed if isinstance(missed, int) else None,
        count_is_lower_bound=bool(details.get("count_is_lower_bound"))
        if entry.action == "schedule.missed"
        else None,
        first_missed_at=moment("first_missed_at"),
        last_missed_at=moment("last_missed_at"),
        reason=reason if isinstance(reason, str) else None,
        ip=entry.ip,
    )


@router.get("/triggers/{trigger_id}/events")
async def list_trigger_events(
    trigger_id: str,
    caller: WorkflowReader,
    db: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> Page[TriggerEvent]:
    """What happened to the trigger that started no run, newest first: a schedule's missed
    fire times (the server was down past the grace period), a webhook's refused calls."""
    async with db.read() as session:
        trigger = await TriggerRepo(session, owner_id=caller.user_id).get(trigger_id=trigger_id)
        entries = await AuditRepo(session).list_for_object(
            owner_id=caller.user_id,
            object_type="workflow_trigger",
            object_id=trigger.id,
            actions=_EVENT_ACTIONS,
            limit=limit,
        )
    return Page(items=[_event(e) for e in entries], next_cursor=None)


@router.post("/triggers/{trigger_id}/test", status_code=status.HTTP_202_ACCEPTED)
async def send_test_call(
    trigger_id: str,
    caller: RunExecutor,
    db: DatabaseDep,
    engine: EngineDep,
    settings: SettingsDep,
    response: Response,
    body: WebhookTestCall | None = None,
) -> WebhookTestStarted:
    """Start the run a call to the webhook would start, as its owner and without the token;
    it is listed among the webhook's calls (``trigger_data.test`` is true). 409 while the
    webhook is switched off; 422 for a schedule."""
    inputs = body.inputs if body is not None else {}
    check_inputs_size(inputs, max_bytes=settings.max_run_inputs_bytes)
    async with db.read() as session:
        trigger = await TriggerRepo(session, owner_id=caller.user_id).get(trigger_id=trigger_id)
    if trigger.kind != TriggerType.WEBHOOK:
        raise InputError("only a webhook takes a test call", field="trigger_id")
    if not trigger.enabled:
        raise Conflict("this webhook is switched off: switch it on to test it")
    run_id = await engine.start_run(
        owner_id=caller.user_id,
        workflow_id=trigger.workflow_id,
        inputs=inputs,
        trigger_kind=TriggerKind.WEBHOOK,
        trigger_data={"trigger_id": trigger.id, "test": True},
    )
    response.headers["Location"] = f"/api/v1/runs/{run_id}"
    return WebhookTestStarted(run_id=run_id)


@router.get("/schedule-preview")
async def preview_schedule(
    caller: WorkflowReader,
    cron: Annotated[str, Query(min_length=1, max_length=120)],
    timezone: Annotated[str, Query(min_length=1, max_length=64)] = "UTC",
) -> SchedulePreview:
    """When a schedule would fire, before it is saved: ``cron`` in words and its next five
    fire times. A bad expression or time zone answers 422 naming ``cron`` or ``timezone``."""
    schedule = Schedule(cron, timezone)
    return SchedulePreview(
        cron=schedule.cron,
        timezone=schedule.timezone,
        description=describe_cron(schedule.cron),
        upcoming=upcoming_fires(schedule),
    )


@router.get("/timezones")
async def list_timezones(caller: WorkflowReader) -> TimezoneList:
    """The IANA time zones a schedule may be read in."""
    return TimezoneList(items=_timezone_names())


@cache
def _timezone_names() -> list[str]:
    return sorted(available_timezones() | {"UTC"})
