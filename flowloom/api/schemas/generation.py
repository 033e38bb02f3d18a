"""Workflow generation: asking for a workflow in words and the attempts that answer."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from flowloom.api.schemas.common import ApiModel, RequestBody
from flowloom.providers.model_names import ModelName


class GenerateCreate(RequestBody):
    prompt: str = Field(min_length=1, max_length=8000)
    """What the workflow should do, in plain language."""
    provider: Literal["openai", "gemini", "anthropic"]
    model: ModelName
    credential: str | None = Field(default=None, min_length=1, max_length=200)
    """A stored credential to call the provider with, instead of the instance's key."""
    max_repairs: int = Field(default=2, ge=0, le=5)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    temperature: float | None = Field(default=None, ge=0, le=2)


class AttemptPublic(ApiModel):
    id: str
    attempt: int
    outcome: Literal["valid", "invalid", "error"]
    problems: list[dict[str, Any]]
    tokens_in: int
    tokens_out: int


class GenerationPublic(ApiModel):
    workflow_id: str
    name: str
    definition: dict[str, Any]
    attempts: list[AttemptPublic]


class GenerationEntry(AttemptPublic):
    prompt: str
    provider: str
    model: str
    workflow_id: str | None
    definition: dict[str, Any] | None
    created_at: datetime
