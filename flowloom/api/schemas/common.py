"""What every resource's models share: pages, row-backed models, strict bodies, number bounds.

``*Public`` models are all a client ever sees of a row: no password hash, no key digest, no
session token digest. Lists are ``Page[...]``: ``{"items": [...], "next_cursor": ...}``, newest
first; pass ``next_cursor`` back as ``cursor`` for the next page.
"""

from __future__ import annotations

from typing import Annotated, Final, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")

INT32_MAX: Final = 2**31 - 1
"""The largest value of an INTEGER column on PostgreSQL (SQLite's are wider): no integer the API
reads for such a column may be larger, or the database, not the caller, would refuse it."""

VersionNumber = Annotated[int, Field(ge=1, le=INT32_MAX)]
"""A workflow version number in a body or query (422 naming the field outside 1..2**31-1).
In a path, a number out of range is a version that cannot exist: 404 (``version_in_range``)."""


class ApiModel(BaseModel):
    """The base of the API's models but its request bodies (``RequestBody``). Each is built
    (its validator, its serializer) when first used, not when its module is imported: a server
    starts without building the hundred-odd models of routes it may never be asked for, and
    FastAPI's per-route adapters of a model wait for it as well (``defer_build``)."""

    model_config = ConfigDict(defer_build=True)


class RequestBody(BaseModel):
    r"""A request body: built when declared, unlike the other ``ApiModel``\ s. FastAPI builds a
    body's adapter under a guard against the warning pydantic gives about the alias FastAPI
    puts on the body's field; deferred, that adapter would be built at the first request,
    outside the guard, and warn there."""


class FromRow(ApiModel):
    """A model read from a row's attributes (``model_validate(row)``)."""

    model_config = ConfigDict(from_attributes=True)


class StrictBody(RequestBody):
    """A request body that refuses fields it does not know (422 naming them)."""

    model_config = ConfigDict(extra="forbid")


class Page(ApiModel, Generic[T]):
    """One page of a listing, newest first."""

    items: list[T]
    next_cursor: str | None = None
    """Pass back as ``cursor`` to read the next (older) page; null on the last page."""
