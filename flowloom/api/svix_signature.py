"""Checking a Svix-signed webhook delivery (the identity provider's user webhooks), with the
``svix`` library.

A delivery carries ``svix-id``, ``svix-timestamp`` and ``svix-signature``; ``svix`` checks the
HMAC-SHA256 signature over ``{id}.{timestamp}.{raw body}`` with the ``whsec_...`` secret (any of
several ``v1`` entries while a secret is rotated, compared in constant time) and refuses a
timestamp more than five minutes from now either way, so a captured delivery cannot be replayed
later; within that window the caller refuses an id it has already processed.
"""

from __future__ import annotations

from collections.abc import Mapping

from svix.webhooks import Webhook, WebhookVerificationError

from flowloom.api.errors import Unauthenticated
from flowloom.exceptions import InputError

__all__ = ["SignatureInvalid", "verify_svix"]


_HEADERS = ("svix-id", "svix-timestamp", "svix-signature")

# What the library's refusals mean, said to the sender in words of the delivery.
_REASONS = {
    "No matching signature found": "no signature of the delivery matches the webhook secret",
    "Invalid Signature Headers": "svix-timestamp is not a number of seconds",
    "Message timestamp too old": "the delivery was signed more than 300 s ago",
    "Message timestamp too new": "the delivery is signed more than 300 s in the future",
}


class SignatureInvalid(Unauthenticated):
    """The delivery is unsigned, wrongly signed, or signed too long ago (or in the future)."""


def _webhook(secret: str) -> Webhook:
    if not secret.removeprefix("whsec_"):
        raise InputError("the webhook secret is empty")
    try:
        return Webhook(secret)
    except ValueError:  # binascii.Error included
        raise InputError("the webhook secret is not a whsec_ base64 secret") from None


def verify_svix(secret: str, headers: Mapping[str, str], body: bytes) -> str:
    """The delivery's ``svix-id`` if it is genuine and fresh; SignatureInvalid otherwise."""
    wanted = {
        name: headers.get(name, "") for name in ("svix-id", "svix-timestamp", "svix-signature")
    }
    if not all(wanted.values()):
        raise SignatureInvalid("the delivery is not signed (svix-id, -timestamp, -signature)")
    try:
        _webhook(secret).verify(body, wanted)
    except WebhookVerificationError as error:
        reason = _REASONS.get(str(error), f"the signature is refused ({error})")
        raise SignatureInvalid(reason) from None
    return wanted["svix-id"]
