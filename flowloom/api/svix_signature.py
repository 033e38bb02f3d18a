"""Checking a Svix-signed webhook delivery (the scheme the identity provider's user webhooks use).

A delivery carries ``svix-id``, ``svix-timestamp`` (Unix seconds) and ``svix-signature``
(space-separated ``v1,<base64>`` entries, several while a secret is rotated). The signature is
HMAC-SHA256, keyed with the base64 part of the ``whsec_...`` secret, over
``{svix-id}.{svix-timestamp}.{raw body}``. A delivery is genuine if any ``v1`` entry matches
(compared in constant time) and its timestamp is within ``TOLERANCE_S`` of now either way, so a
captured delivery cannot be replayed later; within that window the caller refuses an id it has
already processed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from typing import Final

from flowloom.api.errors import Unauthenticated
from flowloom.exceptions import InputError

__all__ = ["TOLERANCE_S", "SignatureInvalid", "svix_signature", "verify_svix"]

TOLERANCE_S: Final = 300
_PREFIX: Final = "whsec_"


class SignatureInvalid(Unauthenticated):
    """The delivery is unsigned, wrongly signed, or signed too long ago (or in the future)."""


def _key(secret: str) -> bytes:
    try:
        return base64.b64decode(secret.removeprefix(_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise InputError("the webhook secret is not a whsec_ base64 secret") from None


def svix_signature(secret: str, *, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1,<base64>`` signature of a delivery (what the sender puts in svix-signature)."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def verify_svix(secret: str, headers: Mapping[str, str], body: bytes, *, now_s: float) -> str:
    """The delivery's ``svix-id`` if it is genuine and fresh; SignatureInvalid otherwise."""
    message_id = headers.get("svix-id", "")
    stamp = headers.get("svix-timestamp", "")
    signatures = headers.get("svix-signature", "")
    if not message_id or not stamp or not signatures:
        raise SignatureInvalid("the delivery is not signed (svix-id, -timestamp, -signature)")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise SignatureInvalid("svix-timestamp is not a number of seconds") from None
    if abs(now_s - timestamp) > TOLERANCE_S:
        raise SignatureInvalid(
            f"the delivery was signed {int(now_s - timestamp)} s ago; at most {TOLERANCE_S} s"
            " either way is accepted"
        )
    expected = svix_signature(secret, message_id=message_id, timestamp=timestamp, body=body)
    for entry in signatures.split():
        if entry.startswith("v1,") and hmac.compare_digest(entry, expected):
            return message_id
    raise SignatureInvalid("no signature of the delivery matches the webhook secret")
