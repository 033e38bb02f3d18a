"""Stored secrets as HTTP authentication, for nodes: the :class:`HttpSecrets` protocol the
engine hands to ``http.request`` (``ctx.secrets``), the header shapes of each credential kind,
and :func:`redact`, which takes every secret back out of what a node outputs or says.

A node names a secret, never holds one in its config: ``{"credential": "github-token"}`` (a
stored credential) or ``{"oauth": "intg_..."}`` (a stored OAuth 2 connection). What comes back
is one header (:class:`HttpAuthHeader`) plus every string derived from the secret that must not
leave the node (the raw value, its base64 form, the whole header value).

Nothing here imports storage: the database implementation is
:class:`flowloom.integrations.oauth_store.DatabaseHttpSecrets`; :class:`StaticHttpSecrets` is the
in-memory one for tests and for running nodes by hand.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from flowloom.exceptions import ExecutionError

__all__ = [
    "REDACTED",
    "HttpAuthError",
    "HttpAuthHeader",
    "HttpAuthRef",
    "HttpSecrets",
    "StaticHttpSecrets",
    "check_header_name",
    "credential_header",
    "redact",
]

REDACTED: Final = "********"
"""What a secret is replaced with wherever it would have been shown."""

_MIN_REDACTED_CHARS: Final = 4
"""Shorter fragments (a three-letter password) are not searched for: they would blank out
ordinary words. Whole header values and tokens are always redacted."""

_TOKEN_CHARS: Final = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_FORBIDDEN_HEADERS: Final = frozenset(
    {
        "host",
        "content-length",
        "content-type",
        "transfer-encoding",
        "connection",
        "te",
        "upgrade",
        "idempotency-key",
    }
)


def check_header_name(name: str) -> str:
    """``name`` if it may carry a secret; ValueError for a malformed or framing header."""
    if not _TOKEN_CHARS.match(name) or len(name) > 100:
        raise ValueError(f"{name!r} is not a valid header name")
    if name.lower() in _FORBIDDEN_HEADERS:
        raise ValueError(f"the {name} header cannot carry a credential")
    return name


@dataclass(frozen=True, slots=True)
class HttpAuthRef:
    """Which stored secret authenticates a request: exactly one of ``credential`` (a stored
    credential's name) and ``oauth`` (an OAuth connection's id). ``header`` names the header a
    ``header`` or ``api_key`` credential goes in (``X-Api-Key``)."""

    credential: str | None = None
    oauth: str | None = None
    header: str | None = None

    def __post_init__(self) -> None:
        if (self.credential is None) == (self.oauth is None):
            raise ValueError("give exactly one of credential and oauth")

    def describe(self) -> str:
        if self.oauth is not None:
            return f"OAuth connection {self.oauth!r}"
        return f"credential {self.credential!r}"


@dataclass(frozen=True, slots=True)
class HttpAuthHeader:
    """One header to send, and every string that must be redacted from what comes back."""

    name: str
    value: str = field(repr=False)
    secrets: tuple[str, ...] = field(default=(), repr=False)
    """The header value and the secret parts it is made of (never shown, never logged)."""

    def __repr__(self) -> str:
        return f"HttpAuthHeader(name={self.name!r}, value={REDACTED!r})"

    @property
    def redacted(self) -> tuple[str, ...]:
        """Every string to take out of outputs and errors, longest first."""
        found = {self.value, *self.secrets}
        return tuple(sorted((s for s in found if s), key=len, reverse=True))


class HttpAuthError(ExecutionError):
    """A stored secret cannot authenticate the request: missing, of the wrong kind, or (for an
    OAuth connection) not authorized yet or refused by its provider. The message names the
    credential or connection, never any part of the secret. ``retryable`` when trying again
    later may help (the provider's token endpoint could not be reached)."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        self.retryable = retryable
        super().__init__(message)


class HttpSecrets(Protocol):
    """An owner's stored secrets as HTTP authentication (``RunContext.secrets``)."""

    async def http_auth(
        self,
        ref: HttpAuthRef,
        *,
        owner_id: str | None,
        rejected: HttpAuthHeader | None = None,
    ) -> HttpAuthHeader:
        """The header ``ref`` authenticates with.

        An OAuth connection's access token is refreshed first when it expires within a minute.
        ``rejected`` is a header the server answered 401 to: the connection's token is then
        refreshed, unless another caller already replaced it (that newer token is returned),
        so concurrent callers refresh once. Raises HttpAuthError naming ``ref``.
        """
        ...


def credential_header(ref: HttpAuthRef, *, kind: str, value: str) -> HttpAuthHeader:
    """The header a credential of ``kind`` makes: ``bearer_token`` as ``Authorization: Bearer``,
    ``basic_auth`` (``user:password``) as ``Authorization: Basic``, ``header`` and ``api_key``
    as the header ``ref.header`` names. HttpAuthError for any other kind."""
    name = ref.credential
    if kind == "bearer_token":
        if ref.header is not None:
            raise HttpAuthError(f"credential {name!r} is a bearer token: it takes no header name")
        return HttpAuthHeader("Authorization", f"Bearer {value}", (value,))
    if kind == "basic_auth":
        if ref.header is not None:
            raise HttpAuthError(f"credential {name!r} is basic auth: it takes no header name")
        _user, colon, password = value.partition(":")
        if not colon:
            raise HttpAuthError(f"credential {name!r} must hold 'user:password' for basic auth")
        encoded = base64.b64encode(value.encode()).decode("ascii")
        parts = (
            (value, encoded, password) if len(password) >= _MIN_REDACTED_CHARS else (value, encoded)
        )
        return HttpAuthHeader("Authorization", f"Basic {encoded}", parts)
    if kind in ("header", "api_key"):
        if ref.header is None:
            raise HttpAuthError(
                f"credential {name!r} is a {kind}: say which header it goes in "
                '({"credential": ..., "header": "X-Api-Key"})'
            )
        if any(c in value for c in "\r\n\0"):
            raise HttpAuthError(f"credential {name!r} cannot be sent as a header value")
        return HttpAuthHeader(ref.header, value, (value,))
    raise HttpAuthError(
        f"credential {name!r} is a {kind}; http.request takes bearer_token, basic_auth, "
        "header and api_key credentials"
    )


def redact(value: Any, secrets: Sequence[str]) -> Any:
    """``value`` (text, or JSON-like data) with every occurrence of every secret replaced by
    ``********``, in strings, mapping keys and list items alike."""
    if not secrets:
        return value
    if isinstance(value, str):
        for secret in secrets:
            if len(secret) >= _MIN_REDACTED_CHARS or secret == value:
                value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, Mapping):
        return {redact(k, secrets): redact(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(item, secrets) for item in value]
    return value


class StaticHttpSecrets:
    """HttpSecrets from memory: credentials by name as ``(kind, value)``, and OAuth connections
    as the list of access tokens they will hand out, in order (a refresh moves to the next).

    ``refreshes`` counts the refreshes by connection id.
    """

    def __init__(
        self,
        credentials: Mapping[str, tuple[str, str]] | None = None,
        oauth: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self._credentials = dict(credentials or {})
        self._oauth = {key: list(tokens) for key, tokens in (oauth or {}).items()}
        self.refreshes: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"StaticHttpSecrets(credentials={sorted(self._credentials)!r})"

    async def http_auth(
        self,
        ref: HttpAuthRef,
        *,
        owner_id: str | None,
        rejected: HttpAuthHeader | None = None,
    ) -> HttpAuthHeader:
        if ref.oauth is not None:
            tokens = self._oauth.get(ref.oauth)
            if not tokens:
                raise HttpAuthError(f"no OAuth connection {ref.oauth!r}")
            if rejected is not None and rejected.value == f"Bearer {tokens[0]}":
                if len(tokens) == 1:
                    raise HttpAuthError(
                        f"OAuth connection {ref.oauth!r}: the provider refused the refresh"
                    )
                tokens.pop(0)
                self.refreshes[ref.oauth] = self.refreshes.get(ref.oauth, 0) + 1
            return HttpAuthHeader("Authorization", f"Bearer {tokens[0]}", (tokens[0],))
        assert ref.credential is not None
        found = self._credentials.get(ref.credential)
        if found is None:
            raise HttpAuthError(f"no stored credential named {ref.credential!r}")
        kind, value = found
        return credential_header(ref, kind=kind, value=value)
