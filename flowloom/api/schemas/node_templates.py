"""Node templates: configured nodes an account saves to place again."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field

Name = Annotated[str, Field(min_length=1, max_length=200)]


class NodeTemplateCreate(BaseModel):
    name: Name
    node_type: str = Field(min_length=1, max_length=100)
    config: dict[str, Any] = Field(default_factory=dict)
    description: str | None = Field(default=None, max_length=2000)


class NodeTemplateUpdate(BaseModel):
    name: Name | None = None
    config: dict[str, Any] | None = None
    description: str | None = Field(default=None, max_length=2000)


class NodeTemplatePublic(BaseModel):
    id: str
    name: str
    node_type: str
    config: dict[str, Any]
    description: str | None
    created_at: datetime
    updated_at: datetime
