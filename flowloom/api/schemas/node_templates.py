"""Node templates: configured nodes an account saves to place again."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field

from flowloom.api.schemas.common import ApiModel, RequestBody

Name = Annotated[str, Field(min_length=1, max_length=200)]


class NodeTemplateCreate(RequestBody):
    name: Name
    node_type: str = Field(min_length=1, max_length=100)
    config: dict[str, Any] = Field(default_factory=dict)
    description: str | None = Field(default=None, max_length=2000)


class NodeTemplateUpdate(RequestBody):
    name: Name | None = None
    config: dict[str, Any] | None = None
    description: str | None = Field(default=None, max_length=2000)


class NodeTemplatePublic(ApiModel):
    id: str
    name: str
    node_type: str
    config: dict[str, Any]
    description: str | None
    created_at: datetime
    updated_at: datetime
