"""User sync from the identity provider: ``POST /auth/webhooks/clerk`` (seeds 000 and 001).

Identities are those of the configured provider (``FLOWLOOM_EXTERNAL_AUTH_PROVIDER``, the
name sign-ins with its tokens use too). Deliveries are Svix-signed with
``FLOWLOOM_CLERK_WEBHOOK_SECRET`` (checked with the ``svix`` library, see svix_signature); an
unsigned, wrongly signed or stale delivery answers 401, one already processed 409, and the
route is 404 while no secret is configured. Events, found by the provider's user id (the identity's
subject, never our own id):

- ``user.created``: an account with the primary email, linked to the identity. If that email
  already belongs to an account, nothing is linked: its owner links the two by signing in with
  the identity and proving the password (``POST /auth/external`` with ``password``).
- ``user.updated``: the linked account takes the new primary email (unless another account
  holds it).
- ``user.deleted``: the linked account is disabled, its sessions and API keys end.

Every delivery answers 200 with what it did (``outcome``), so the sender stops retrying, and
leaves an audit entry named for the event, whose object id is the delivery's id (which is how
a replay is recognised).
"""

import json
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from flowloom.api.deps import AppStateDep
from flowloom.api.svix_signature import MODULE as SVIX_MODULE
from flowloom.api.svix_signature import verify_svix
from flowloom.exceptions import Conflict, InputError, NotFound
from flowloom.heavy_imports import imported
from flowloom.storage.repos.audit import AuditRepo
from flowloom.storage.repos.users import UserRepo, normalize_email
from flowloom.storage.tables import AuditEntry, User

__all__ = ["router"]

router = APIRouter(prefix="/auth/webhooks", tags=["auth"])

_MAX_BODY_BYTES = 256 * 1024


class WebhookOutcome(BaseModel):
    event: str
    outcome: Literal["created", "linked_already", "email_taken", "updated", "disabled", "ignored"]
    user_id: str | None = None
    detail: str | None = None


def _primary_email(data: dict[str, Any]) -> str | None:
    primary = data.get("primary_email_address_id")
    addresses = [a for a in data.get("email_addresses") or [] if isinstance(a, dict)]
    for address in addresses:
        if address.get("id") == primary and isinstance(address.get("email_address"), str):
            return str(address["email_address"])
    for address in addresses:
        if isinstance(address.get("email_address"), str):
            return str(address["email_address"])
    return None


@router.post(
    "/clerk",
    name="receive_identity_webhook",
    responses={
        401: {
            "description": "Unsigned, wrongly signed or stale",
            "content": {"application/problem+json": {}},
        },
        404: {
            "description": "No webhook secret configured",
            "content": {"application/problem+json": {}},
        },
        409: {
            "description": "This delivery was processed already",
            "content": {"application/problem+json": {}},
        },
    },
)
async def receive_identity_webhook(request: Request, state: AppStateDep) -> WebhookOutcome:
    """Apply one user event of the identity provider (see the module docstring)."""
    secret = state.settings.clerk_webhook_secret
    if secret is None:
        raise NotFound("webhook", "clerk")
    body = await request.body()
    if len(body) > _MAX_BODY_BYTES:
        raise InputError(f"the delivery is larger than {_MAX_BODY_BYTES} bytes", field="body")
    await imported(SVIX_MODULE)
    delivery = verify_svix(secret.get_secret_value(), request.headers, body)[:40]
    try:
        payload = json.loads(body)
    except ValueError:
        raise InputError("the delivery is not JSON", field="body") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), dict):
        raise InputError("the delivery has no data object", field="data")
    event = str(payload.get("type", ""))[:60]
    data: dict[str, Any] = payload["data"]
    subject = data.get("id")
    if not isinstance(subject, str) or not subject:
        raise InputError("the delivery's data has no user id", field="data.id")
    async with state.db.write() as session:
        seen = await session.scalar(
            select(AuditEntry.id).where(
                AuditEntry.object_type == "identity_delivery", AuditEntry.object_id == delivery
            )
        )
        if seen is not None:
            raise Conflict(f"delivery {delivery} was processed already")
        provider = state.settings.external_auth_provider
        outcome = await _apply(session, provider, event, subject, data)
        await AuditRepo(session).record(
            user_id=None,
            action=f"identity.{event}"[:64],
            object_type="identity_delivery",
            object_id=delivery,
            details={
                "provider": provider,
                "subject": subject[:255],
                "outcome": outcome.outcome,
                "user_id": outcome.user_id,
            },
        )
    return outcome


async def _apply(
    session: AsyncSession, provider: str, event: str, subject: str, data: dict[str, Any]
) -> WebhookOutcome:
    users = UserRepo(session)
    linked = await users.find_by_identity(provider=provider, subject=subject)
    if event == "user.created":
        if linked is not None:
            return WebhookOutcome(event=event, outcome="linked_already", user_id=linked.id)
        email = _primary_email(data)
        if email is None:
            raise InputError("user.created carries no email address", field="data.email_addresses")
        taken = await session.scalar(select(User.id).where(User.email == normalize_email(email)))
        if taken is not None:
            return WebhookOutcome(
                event=event,
                outcome="email_taken",
                detail="an account already has this email; it is linked when its owner signs in"
                " with the identity provider and proves the account's password",
            )
        user = await users.find_or_create_by_identity(
            provider=provider, subject=subject, email=email
        )
        return WebhookOutcome(event=event, outcome="created", user_id=user.id)
    if linked is None:
        return WebhookOutcome(event=event, outcome="ignored", detail="no account is linked")
    if event == "user.updated":
        email = _primary_email(data)
        if email is None or normalize_email(email) == linked.email:
            return WebhookOutcome(event=event, outcome="updated", user_id=linked.id)
        holder = await session.scalar(select(User.id).where(User.email == normalize_email(email)))
        if holder is not None:
            return WebhookOutcome(
                event=event,
                outcome="email_taken",
                user_id=linked.id,
                detail="another account has the new email; the old one is kept",
            )
        linked.email = normalize_email(email)
        await session.flush()
        return WebhookOutcome(event=event, outcome="updated", user_id=linked.id)
    if event == "user.deleted":
        try:
            await users.disable(user_id=linked.id, by=f"{provider}:{subject}")
        except Conflict as exc:
            return WebhookOutcome(
                event=event, outcome="ignored", user_id=linked.id, detail=str(exc)
            )
        return WebhookOutcome(event=event, outcome="disabled", user_id=linked.id)
    return WebhookOutcome(event=event, outcome="ignored", detail=f"event {event!r} is not synced")
