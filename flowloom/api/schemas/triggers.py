"""Triggers: schedules and webhooks that start a workflow's runs, and their events."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field

from flowloom.api.schemas.common import ApiModel, RequestBody
from flowloom.storage.enums import TriggerType
from flowloom.triggers.webhooks import MAX_OUTPUT_TIMEOUT_S

Respond = Literal["run", "output"]


class TriggerCreate(RequestBody):
    """A webhook (``kind: "webhook"``, optionally ``respond``, ``timeout_s``) or a schedule
    (``kind: "schedule"``, ``cron``, optionally ``timezone`` and ``inputs``)."""

    model_config = ConfigDict(extra="forbid")

    kind: TriggerType
    enabled: bool = True
    cron: str | None = Field(default=None, min_length=1, max_length=120)
    """Schedules: minute hour day-of-month month day-of-week, or @hourly, @daily, ..."""
    timezone: str | None = Field(default=None, min_length=1, max_length=64)
    """Schedules: the IANA time zone the cron expression is read in; default UTC."""
    inputs: dict[str, Any] | None = None
    """Schedules: the inputs every scheduled run starts with."""
    respond: Respond | None = None
    """Webhooks: ``run`` answers 202 with the run's id at once (default); ``output`` waits
    for the run and answers with its outputs."""
    timeout_s: float | None = Field(default=None, gt=0, le=MAX_OUTPUT_TIMEOUT_S)
    """Webhooks with ``respond: output``: the longest wait for the run (default 30 s)."""


class TriggerUpdate(RequestBody):
    """Only the fields sent change."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    cron: str | None = Field(default=None, min_length=1, max_length=120)
    timezone: str | None = Field(default=None, min_length=1, max_length=64)
    inputs: dict[str, Any] | None = None
    respond: Respond | None = None
    timeout_s: float | None = Field(default=None, gt=0, le=MAX_OUTPUT_TIMEOUT_S)


class TriggerPublic(ApiModel):
    id: str
    workflow_id: str
    kind: TriggerType
    enabled: bool
    url: str | None
    """Webhooks: where to ``POST`` (with the token in the ``X-Flowloom-Token`` header)."""
    cron: str | None
    timezone: str | None
    next_fire_at: datetime | None
    """Schedules: the next fire time (null while switched off)."""
    description: str | None = None
    """Schedules: when the cron expression fires, in words ("At 09:00, on Monday through
    Friday"), in the schedule's time zone."""
    upcoming: list[datetime] = []
    """Schedules that are on: the next five fire times from now, in UTC."""
    last_fired_at: datetime | None
    inputs: dict[str, Any] | None
    respond: Respond | None
    timeout_s: float | None
    created_at: datetime
    updated_at: datetime


class TriggerCreated(TriggerPublic):
    token: str | None
    """Webhooks: the secret token, shown this once (send it as ``X-Flowloom-Token``)."""


class SchedulePreview(ApiModel):
    """When a cron expression read in a time zone fires: in words, and its next five times."""

    cron: str
    timezone: str
    description: str
    upcoming: list[datetime]
    """The next five fire times from now, in UTC."""


class TimezoneList(ApiModel):
    items: list[str]
    """Every IANA time zone name the server knows, sorted."""


class TriggerEvent(ApiModel):
    """Something that happened to a trigger without starting a run."""

    id: str
    at: datetime
    kind: Literal["missed", "refused"]
    """``missed``: a schedule's fire times passed while the server could not fire them;
    ``refused``: a call to a webhook without the right token, or while it was off."""
    missed: int | None = None
    """Missed: how many fire times passed unseen."""
    count_is_lower_bound: bool | None = None
    first_missed_at: datetime | None = None
    last_missed_at: datetime | None = None
    reason: str | None = None
    """Refused: why."""
    ip: str | None = None
    """Refused: where the call came from."""


class WebhookTestCall(RequestBody):
    model_config = ConfigDict(extra="forbid")

    inputs: dict[str, Any] = {}
    """The run's inputs, as a caller of the webhook would post them."""


class WebhookTestStarted(ApiModel):
    run_id: str
