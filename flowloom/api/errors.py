"""flowloom's error tree as RFC 9457 problem+json: the one place the API maps errors to HTTP.

::

    Unauthenticated               401  no valid session or key (WWW-Authenticate: Bearer)
    PermissionDenied              403  known caller, not allowed (a missing API key scope, CSRF)
    NotFound                      404  missing, or somebody else's (the two look the same)
    Conflict                      409  duplicate, stale version, finished run
    RequestTooLarge               413  the body is bigger than max_request_body_bytes (or
                                       an upload's file or image is bigger than allowed)
    UnsupportedMediaType          415  an upload that is not of a kind the route takes
    InputError                    422  ``errors: [{field, message}]`` names the field
    RequestValidationError        422  the same shape, the field path from pydantic
    DefinitionError               422  ``problems: [{node_id, port, field, message}]``
    LimitExceeded                 429  with ``Retry-After`` when it passes with time,
                                  402  when a plan limit needs a bigger plan
    QuotaExceeded                 402  ``limit``, ``used``, ``allowed``, ``package``, ``resets_at``
    StorageError                  503  the database refused or could not be reached (and any
                                       error a driver raised saying it is unreachable or
                                       locked, however it got here: ``is_unavailable``)
    ProviderError                 502  a model provider failed or refused (``provider``,
                                       ``retryable``); its message is already redacted
    anything else                 500  logged here; the body says nothing about internals

Every body has ``type``, ``title``, ``status`` and ``detail``; the media type is
``application/problem+json``. Bad input never reaches the 500 branch: each kind of bad input
has its own class above.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from flowloom.exceptions import (
    Conflict,
    DefinitionError,
    FlowloomError,
    InputError,
    LimitExceeded,
    NotFound,
    PermissionDenied,
    Problem,
    QuotaExceeded,
    StorageError,
    ValidationFailed,
)
from flowloom.providers.errors import ProviderError
from flowloom.storage.errors import DatabaseUnavailable, is_unavailable

__all__ = [
    "PROBLEM_JSON",
    "RequestTooLarge",
    "Unauthenticated",
    "UnsupportedMediaType",
    "install_error_handlers",
    "problem_json",
    "problem_response",
    "problem_responses",
]

PROBLEM_JSON: Final = "application/problem+json"

_log = logging.getLogger("flowloom.api")

_UNAVAILABLE_RETRY_AFTER_S: Final = 1
"""What a 503 for an unreachable database tells clients to wait: outages we see are seconds."""

_TITLES: Final = {
    400: "Bad request",
    401: "Not signed in",
    402: "Plan limit reached",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
    500: "Internal error",
    503: "Service unavailable",
}


class Unauthenticated(FlowloomError):
    """The request carries no valid session or API key (401)."""


class RequestTooLarge(FlowloomError):
    """The request body is larger than the server accepts (413)."""

    def __init__(self, limit_bytes: int | None, message: str | None = None) -> None:
        self.limit_bytes = limit_bytes
        super().__init__(message or f"the request body is larger than {limit_bytes} bytes")


class UnsupportedMediaType(FlowloomError):
    """An upload of a kind the route does not take (415)."""


def _type_uri(status: int) -> str:
    slug = _TITLES.get(status, "error").lower().replace(" ", "-")
    return f"urn:flowloom:problem:{slug}"


def problem_json(status: int, detail: str, **extra: Any) -> dict[str, Any]:
    """The problem document for ``status`` with ``detail`` and extension members."""
    return {
        "type": _type_uri(status),
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        **extra,
    }


def problem_response(
    status: int,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    instance: str | None = None,
    **extra: Any,
) -> JSONResponse:
    body = problem_json(status, detail, **extra)
    if instance is not None:
        body["instance"] = instance
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def problem_responses(described: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problem+json answers a route gives, with what each means."""
    return {
        code: {"description": text, "content": {"application/problem+json": {}}}
        for code, text in described.items()
    }


def _problem_items(problems: Sequence[Problem]) -> list[dict[str, Any]]:
    return [
        {"message": p.message, "node_id": p.node_id, "port": p.port, "field": p.field}
        for p in problems
    ]


def flowloom_problem(exc: FlowloomError) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Status, extension members and headers for one of flowloom's errors."""
    detail_extra: dict[str, Any] = {}
    headers: dict[str, str] = {}
    if isinstance(exc, Unauthenticated):
        return 401, {}, {"WWW-Authenticate": "Bearer"}
    if isinstance(exc, PermissionDenied):
        return 403, {}, {}
    if isinstance(exc, NotFound):
        return 404, {"kind": exc.kind}, {}
    if isinstance(exc, Conflict):
        return 409, {}, {}
    if isinstance(exc, RequestTooLarge):
        return 413, {"limit_bytes": exc.limit_bytes}, {}
    if isinstance(exc, UnsupportedMediaType):
        return 415, {}, {}
    if isinstance(exc, InputError):
        field = exc.field
        return 422, {"errors": [{"field": field, "message": str(exc)}]}, {}
    if isinstance(exc, ValidationFailed):
        return 422, {"problems": _problem_items(exc.problems)}, {}
    if isinstance(exc, DefinitionError):
        return 422, {"problems": _problem_items([Problem(str(exc))])}, {}
    if isinstance(exc, LimitExceeded):
        detail_extra["limit"] = exc.limit
        if isinstance(exc, QuotaExceeded):
            detail_extra.update(
                used=exc.used,
                allowed=exc.allowed,
                package=exc.package,
                resets_at=exc.resets_at.isoformat(),
            )
        if exc.retry_after_s is None:
            return 402, detail_extra, {}
        headers["Retry-After"] = str(max(1, round(exc.retry_after_s)))
        return 429, detail_extra, headers
    if isinstance(exc, DatabaseUnavailable):
        return 503, {}, {"Retry-After": str(_UNAVAILABLE_RETRY_AFTER_S)}
    if isinstance(exc, StorageError):
        return 503, {}, {}
    if isinstance(exc, ProviderError):
        return 502, {"provider": exc.provider, "retryable": exc.retryable}, {}
    return 500, {}, {}


async def _on_flowloom_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, FlowloomError)
    status, extra, headers = flowloom_problem(exc)
    if status == 502 or isinstance(exc, DatabaseUnavailable):
        # Somebody else's failure (a model provider's, the database server's): worth a line,
        # not a traceback.
        _log.warning("%s %s: %s", request.method, request.url.path, exc)
    elif status >= 500:
        _log.error("%s %s failed: %s", request.method, request.url.path, exc, exc_info=exc)
    detail = str(exc) if status != 500 else "the server failed to answer; it has been logged"
    if status == 503:
        detail = "the database is unavailable; try again shortly"
    return problem_response(
        status, detail, headers=headers or None, instance=request.url.path, **extra
    )


def _field_path(loc: Sequence[Any]) -> str:
    # ("body", "definition", "nodes", 0, "id") -> "definition.nodes.0.id"; the first part says
    # where the value was (body, query, path, header), which the client already knows.
    parts = [str(part) for part in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        where, parts = parts[0], parts[1:]
        if not parts:
            return where
        if where != "body":
            return ".".join(parts)
    return ".".join(parts)


async def _on_request_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": _field_path(error.get("loc", ())), "message": error.get("msg", "invalid")}
        for error in exc.errors()
    ]
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return problem_response(422, summary, errors=errors, instance=request.url.path)


async def _on_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "Error")
    return problem_response(
        exc.status_code, detail, headers=dict(exc.headers or {}), instance=request.url.path
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # A driver's connection error that escaped the Database's own translation (raised
    # through a session the route kept, a middleware, a stream): the database is out of reach,
    # which is a 503 however it arrives. A bare OSError is not taken for one: it may be
    # anything's.
    if is_unavailable(exc, network_errors=False):
        return await _on_flowloom_error(request, DatabaseUnavailable.from_error(exc))
    _log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return problem_response(
        500, "the server failed to answer; it has been logged", instance=request.url.path
    )


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error the app raises as problem+json (see the module docstring)."""
    app.add_exception_handler(FlowloomError, _on_flowloom_error)
    app.add_exception_handler(RequestValidationError, _on_request_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(Exception, _on_unexpected)
