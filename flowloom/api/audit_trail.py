"""The audit trail: every request that changes data leaves an entry of who, what, which object,
when and with what outcome.

Routes that record their own, richer entry (``admin.*``, API keys, sign-ins...) do so in the
transaction of their change; for every other changing request (POST, PUT, PATCH, DELETE) this
middleware records ``api.<route name>`` once the route has answered, and before the answer
leaves, so a client that reads the log next finds it. A refused or failed change is recorded
too (the route's own entry rolled back with its transaction), with the status it got.

An entry holds the caller, the route's path template, the object named by the path's first
parameter, the status and the outcome; never a body, a query string or a header value but the
user agent, so no secret reaches the log. Requests without a known caller (401, webhooks) are
left out, and so are the frequent ones that change no setting worth auditing: run starts and
answers, webhook calls, chat messages, uploads, moving nodes on the canvas, validations.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flowloom.storage.repos.audit import AuditRepo, noting_audit_entries

__all__ = ["AUDIT_EXEMPT_ROUTES", "CALLER_STATE_KEY", "AuditTrail"]

_log = logging.getLogger(__name__)

CALLER_STATE_KEY: Final = "flowloom_caller"
"""Where the authenticated caller is left in the request state for this middleware."""

_CHANGING: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})

AUDIT_EXEMPT_ROUTES: Final = frozenset(
    {
        "call_webhook",
        "start_run",
        "cancel_run",
        "answer_node",
        "log_in",
        "log_in_with_external_identity",
        "log_out",
        "register_user",
        "upload_blob",
        "post_message",
        "check_import",
        "validate_definition",
        "validate_workflow",
        "move_nodes",
        "generate_workflow",
        "step_debug_session",
        "continue_debug_session",
        "test_integration",
        "send_test_call",
        "receive_identity_webhook",
    }
)
"""Changing routes left out of the trail: frequent, or changing nothing an admin audits."""


def _outcome(status: int) -> str:
    if status < 400:
        return "done"
    if status < 500:
        return "refused"
    return "failed"


class AuditTrail:
    """Pure ASGI middleware (so the route runs in this context and its own entries are seen)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _CHANGING:
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})
        recorded = False

        async def send_after_recording(message: Message) -> None:
            nonlocal recorded
            if message["type"] == "http.response.start" and not recorded:
                recorded = True
                await self._record(scope, int(message["status"]), own_entries)
            await send(message)

        with noting_audit_entries() as own_entries:
            await self.app(scope, receive, send_after_recording)

    async def _record(self, scope: Scope, status: int, own_entries: list[str]) -> None:
        route = scope.get("route")
        caller = (scope.get("state") or {}).get(CALLER_STATE_KEY)
        name = getattr(route, "name", None)
        if route is None or caller is None or name is None or name in AUDIT_EXEMPT_ROUTES:
            return
        if own_entries and status < 400:
            return  # the route recorded its own entry with the change
        params: dict[str, Any] = scope.get("path_params") or {}
        object_type = object_id = None
        if params:
            key, value = next(iter(params.items()))
            object_type = key.removesuffix("_id").removesuffix("_name")
            object_id = str(value)[:40]
        headers = dict(scope.get("headers") or [])
        client = scope.get("client")
        try:
            db = scope["app"].state.flowloom.db
            async with db.write() as session:
                await AuditRepo(session).record(
                    user_id=caller.user_id,
                    action=f"api.{name}"[:64],
                    object_type=object_type,
                    object_id=object_id,
                    ip=client[0] if client else None,
                    user_agent=headers.get(b"user-agent", b"").decode("latin-1")[:400] or None,
                    details={
                        "method": scope["method"],
                        "route": getattr(route, "path", None),  # under /api/v1
                        "status": status,
                        "outcome": _outcome(status),
                        "via": caller.via,
                    },
                )
        except Exception:
            _log.exception("could not record the audit entry of %s", name)
