"""API keys: what creating one takes and what a key shows of itself (never its digest)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from flowloom.api.schemas.common import FromRow, RequestBody
from flowloom.storage.enums import ApiScope
from flowloom.storage.tables import ApiKey


class ApiKeyCreate(RequestBody):
    name: str = Field(min_length=1, max_length=200)
    scopes: list[ApiScope] = Field(min_length=1)
    expires_at: datetime | None = None
    """When the key stops working (with a time zone); never, if null."""


class ApiKeyPublic(FromRow):
    id: str
    name: str
    prefix: str
    scopes: list[ApiScope]
    active: bool
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    key: str
    """The whole key, ``flk_<prefix>_<secret>``: shown this once, stored only as a digest."""


def api_key_public(key: ApiKey) -> ApiKeyPublic:
    return ApiKeyPublic.model_validate(key)


class ApiKeyRotated(ApiKeyCreated):
    previous_valid_until: datetime | None
    """Until when the replaced secret still works (``FLOWLOOM_API_KEY_ROTATION_GRACE_S`` from
    now); null: it stopped at once."""
