"""Browser-session safety: the session and CSRF cookies, CSRF tokens, the sign-in rate limit.

CSRF uses the signed double-submit pattern: the CSRF token is an HMAC of the session token
under the instance's secret key, set in a cookie the page's script can read (``flowloom_csrf``)
and sent back in the ``X-CSRF-Token`` header on every unsafe request (POST, PUT, PATCH,
DELETE) that authenticates with the session cookie. Another site can make the browser send the
cookies but cannot read them, so it cannot send the header; and because the token is bound to
the session, a token planted from a sibling domain does not fit anybody else's session.
Requests with ``Authorization: Bearer`` carry no ambient credential and are exempt.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from starlette.requests import Request
from starlette.responses import Response

from flowloom.exceptions import LimitExceeded

__all__ = [
    "CSRF_COOKIE",
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "UNSAFE_METHODS",
    "LoginLimiter",
    "clear_session_cookies",
    "csrf_token_for",
    "set_session_cookies",
]

SESSION_COOKIE: Final = "flowloom_session"
CSRF_COOKIE: Final = "flowloom_csrf"
CSRF_HEADER: Final = "X-CSRF-Token"
UNSAFE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def csrf_token_for(secret_key: bytes, session_token: str) -> str:
    """The CSRF token that goes with ``session_token``."""
    digest = hmac.new(secret_key, b"csrf:" + session_token.encode(), hashlib.sha256)
    return digest.hexdigest()


def csrf_matches(secret_key: bytes, session_token: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(
        csrf_token_for(secret_key, session_token), given
    )


def _secure(request: Request, configured: bool | None) -> bool:
    return request.url.scheme == "https" if configured is None else configured


def set_session_cookies(
    response: Response,
    request: Request,
    *,
    token: str,
    csrf_token: str,
    max_age_s: int,
    secure: bool | None,
) -> None:
    """The httpOnly SameSite=Lax session cookie and the readable CSRF cookie."""
    is_secure = _secure(request, secure)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age_s,
        path="/",
        httponly=True,
        samesite="lax",
        secure=is_secure,
    )
    response.set_cookie(
        CSRF_COOKIE,
        csrf_token,
        max_age=max_age_s,
        path="/",
        httponly=False,
        samesite="lax",
        secure=is_secure,
    )


def clear_session_cookies(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")


@dataclass
class _Window:
    failures: deque[float] = field(default_factory=deque)


class LoginLimiter:
    """Failed sign-ins counted per account and per client address over a sliding window.

    In process: each server process counts its own (with several processes behind a balancer
    the effective limit is the per-process limit times the number of processes). ``check``
    before verifying a password; ``failed`` after a wrong one; ``succeeded`` clears the
    account's count. Refusals are LimitExceeded with the seconds until the oldest counted
    failure leaves the window.
    """

    def __init__(
        self,
        *,
        max_per_account: int,
        max_per_address: int,
        window_s: float,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.max_per_account = max_per_account
        self.max_per_address = max_per_address
        self.window_s = window_s
        self._clock = clock or time.monotonic
        self._accounts: dict[str, _Window] = {}
        self._addresses: dict[str, _Window] = {}

    def check(self, *, account: str, address: str | None) -> None:
        """LimitExceeded if either the account or the address used up its failures."""
        now = self._clock()
        for table, key, limit, what in (
            (self._accounts, account, self.max_per_account, "this account"),
            (self._addresses, address, self.max_per_address, "this address"),
        ):
            if key is None:
                continue
            window = self._prune(table, key, now)
            if window is not None and len(window.failures) >= limit:
                retry_after_s = window.failures[0] + self.window_s - now
                raise LimitExceeded(
                    f"too many failed sign-ins for {what}; try again in "
                    f"{max(1, round(retry_after_s))} s",
                    limit="login_failures",
                    retry_after_s=max(1.0, retry_after_s),
                )

    def failed(self, *, account: str, address: str | None) -> None:
        now = self._clock()
        self._accounts.setdefault(account, _Window()).failures.append(now)
        if address is not None:
            self._addresses.setdefault(address, _Window()).failures.append(now)
        if len(self._accounts) + len(self._addresses) > 10_000:
            self._sweep(now)

    def succeeded(self, *, account: str) -> None:
        self._accounts.pop(account, None)

    def _prune(self, table: dict[str, _Window], key: str, now: float) -> _Window | None:
        window = table.get(key)
        if window is None:
            return None
        while window.failures and window.failures[0] <= now - self.window_s:
            window.failures.popleft()
        if not window.failures:
            del table[key]
            return None
        return window

    def _sweep(self, now: float) -> None:
        # Bounded memory under a spray of made-up accounts: drop every window that has emptied.
        for table in (self._accounts, self._addresses):
            for key in list(table):
                self._prune(table, key, now)
