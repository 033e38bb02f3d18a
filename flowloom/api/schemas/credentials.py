"""Credentials: named secrets an account keeps in the vault (write-only values)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field, SecretStr

from flowloom.api.schemas.common import ApiModel, RequestBody
from flowloom.storage.repos.credentials import CredentialKind


class CredentialCreate(RequestBody):
    name: str = Field(min_length=1, max_length=200)
    value: SecretStr = Field(min_length=1, max_length=64 * 1024)
    kind: CredentialKind = CredentialKind.API_KEY
    provider: str | None = Field(default=None, min_length=1, max_length=64)
    """For provider keys: ``openai``, ``gemini``, ``anthropic`` (the node checks it)."""


class CredentialValue(RequestBody):
    value: SecretStr = Field(min_length=1, max_length=64 * 1024)


class CredentialPublic(ApiModel):
    id: str
    name: str
    kind: CredentialKind
    provider: str | None
    created_at: datetime
    updated_at: datetime
    last_used_at: datetime | None
