"""Integrations: MCP servers an account registers, their tools and connection tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field

from flowloom.api.schemas.common import ApiModel, RequestBody
from flowloom.storage.enums import IntegrationKind

Transport = Literal["stdio", "http"]


class IntegrationCreate(RequestBody):
    """An MCP server: ``command`` (+ ``args``, ``env``) for stdio, ``url`` (+ ``headers``) for
    http. ``env`` and ``headers`` values are stored encrypted and never shown again."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    transport: Transport
    command: str | None = Field(default=None, max_length=1000)
    args: list[str] = Field(default_factory=list)
    cwd: str | None = Field(default=None, max_length=1000)
    env: dict[str, str] = Field(default_factory=dict)
    url: str | None = Field(default=None, max_length=2000)
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_s: float = Field(default=30.0, gt=0, le=600)
    enabled: bool = True


class IntegrationUpdate(RequestBody):
    """What to change. ``env`` or ``headers``, when sent, replace the stored values whole."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    command: str | None = Field(default=None, max_length=1000)
    args: list[str] | None = None
    cwd: str | None = Field(default=None, max_length=1000)
    env: dict[str, str] | None = None
    url: str | None = Field(default=None, max_length=2000)
    headers: dict[str, str] | None = None
    timeout_s: float | None = Field(default=None, gt=0, le=600)
    enabled: bool | None = None


class IntegrationPublic(ApiModel):
    id: str
    name: str
    kind: IntegrationKind
    transport: Transport
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    cwd: str | None = None
    url: str | None = None
    env_names: list[str] = Field(default_factory=list)
    """The environment variables set for the server (values are never shown)."""
    header_names: list[str] = Field(default_factory=list)
    """The headers sent to the server (values are never shown)."""
    timeout_s: float
    enabled: bool
    created_at: datetime
    updated_at: datetime


class ToolPublic(ApiModel):
    name: str
    description: str
    input_schema: dict[str, Any]


class ToolList(ApiModel):
    items: list[ToolPublic]


class ConnectionTest(ApiModel):
    ok: bool
    message: str
    tools: int | None = None
    """How many tools the server lists, when it answered."""
    duration_ms: int
