"""Debug sessions: starting a run with breakpoints and a session as it stands."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from flowloom.api.schemas.common import ApiModel, RequestBody, VersionNumber
from flowloom.api.schemas.runs import RunDetail
from flowloom.storage.enums import RunScope


class DebugStart(RequestBody):
    breakpoints: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=1000
    )
    """Node ids to pause before; empty pauses nowhere until ``step`` is used."""
    inputs: dict[str, Any] = Field(default_factory=dict)
    scope: RunScope = RunScope.FULL
    target_node_id: str | None = Field(default=None, max_length=100)
    version: VersionNumber | None = None


class DebugSessionPublic(ApiModel):
    id: str
    run_id: str
    breakpoints: list[str]
    mode: Literal["step", "continue"]
    paused_node_id: str | None
    """The node the run waits before, or null while it runs or after it ended."""
    status: Literal["active", "finished", "stopped"]
    created_at: datetime
    updated_at: datetime


class DebugSessionDetail(DebugSessionPublic):
    run: RunDetail
