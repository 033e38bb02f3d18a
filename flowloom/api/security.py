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
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

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


@dataclass
class _Streak:
    """Consecutive failures and when the last one was (forgotten a window after it)."""

    count: int = 0
    last: float = 0.0


class LoginLimiter:
    """Failed sign-ins slowed down per (account, client address), with a ceiling per address.

    Why not per account alone: anyone could then lock the real owner out by failing on
    purpose. Instead each (account, address) pair has its own streak: the first
    ``max_per_account`` failures cost nothing, then each further attempt from that pair waits
    ``1 s, 2 s, 4 s, ...`` (doubling, at most ``max_delay_s``) after the last failure. The
    owner, signing in from their own address, is not slowed by failures from others.

    Two limits keep guessing slow all the same:

    - per address: ``max_per_address`` failures within ``window_s`` (over any accounts) and
      that address is refused until the oldest leaves the window (stops spraying);
    - per account, across addresses the caller does not vouch for (``trusted=False``):
      past ``max_per_account_untrusted`` failures, attempts from such addresses wait growing
      delays too (at most ``max_untrusted_delay_s``), so many addresses cannot guess one
      password fast. The route passes ``trusted=True`` for an address the account has signed
      in from before, so its owner is not slowed by this either.

    A streak is forgotten ``window_s`` after its last failure, and a success clears the pair's.
    In process: each server process counts its own. Refusals are LimitExceeded (429) with the
    seconds to wait.
    """

    def __init__(
        self,
        *,
        max_per_account: int,
        max_per_address: int,
        window_s: float,
        max_delay_s: float = 300.0,
        max_per_account_untrusted: int | None = None,
        max_untrusted_delay_s: float = 30.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.max_per_account = max_per_account
        self.max_per_address = max_per_address
        self.window_s = window_s
        self.max_delay_s = max_delay_s
        self.max_per_account_untrusted = (
            max_per_account_untrusted
            if max_per_account_untrusted is not None
            else 4 * max_per_account
        )
        self.max_untrusted_delay_s = max_untrusted_delay_s
        self._clock = clock or time.monotonic
        self._pairs: dict[tuple[str, str], _Streak] = {}
        self._untrusted: dict[str, _Streak] = {}
        self._addresses: dict[str, _Window] = {}

    def check(self, *, account: str | None, address: str | None, trusted: bool = False) -> None:
        """LimitExceeded if the address used up its failures, or if this attempt comes before
        the pair's (or, untrusted, the account's) delay has passed. ``account`` None checks
        only the address (registration)."""
        now = self._clock()
        if address is not None:
            window = self._prune_window(address, now)
            if window is not None and len(window.failures) >= self.max_per_address:
                self._refuse("this address", window.failures[0] + self.window_s - now)
        if account is None:
            return
        pair = self._live(self._pairs, (account, address or ""), now)
        if pair is not None:
            wait = _delay(pair.count, self.max_per_account, self.max_delay_s)
            self._refuse_before(pair.last + wait, now, "this account from this address")
        if not trusted:
            streak = self._live(self._untrusted, account, now)
            if streak is not None:
                wait = _delay(
                    streak.count, self.max_per_account_untrusted, self.max_untrusted_delay_s
                )
                self._refuse_before(streak.last + wait, now, "this account")

    def account_slowed(self, *, account: str) -> bool:
        """Whether attempts on ``account`` from untrusted addresses are being slowed (the route
        then finds out whether the address is trusted, which costs a query)."""
        streak = self._live(self._untrusted, account, self._clock())
        return streak is not None and streak.count >= self.max_per_account_untrusted

    def failed(self, *, account: str | None, address: str | None, trusted: bool = False) -> None:
        """Count a failure: for the address, the pair and (untrusted) the account."""
        now = self._clock()
        if address is not None:
            self._addresses.setdefault(address, _Window()).failures.append(now)
        if account is not None:
            self._bump(self._pairs, (account, address or ""), now)
            if not trusted:
                self._bump(self._untrusted, account, now)
        if len(self._pairs) + len(self._untrusted) + len(self._addresses) > 10_000:
            self._sweep(now)

    def succeeded(self, *, account: str, address: str | None = None) -> None:
        """A right password: the pair's streak ends (every pair of the account's when
        ``address`` is None, as an administrator's reset)."""
        if address is not None:
            self._pairs.pop((account, address), None)
            return
        for key in [key for key in self._pairs if key[0] == account]:
            del self._pairs[key]
        self._untrusted.pop(account, None)

    def _refuse_before(self, until: float, now: float, what: str) -> None:
        if until > now:
            self._refuse(what, until - now)

    @staticmethod
    def _refuse(what: str, retry_after_s: float) -> None:
        seconds = max(1, math.ceil(retry_after_s))
        raise LimitExceeded(
            f"too many failed sign-ins for {what}; try again in {seconds} s",
            limit="login_failures",
            retry_after_s=max(1.0, retry_after_s),
        )

    def _bump(self, table: dict[Any, _Streak], key: Any, now: float) -> None:
        streak = self._live(table, key, now)
        if streak is None:
            streak = table[key] = _Streak()
        streak.count += 1
        streak.last = now

    def _live(self, table: dict[Any, _Streak], key: Any, now: float) -> _Streak | None:
        streak = table.get(key)
        if streak is not None and streak.last <= now - self.window_s:
            del table[key]
            return None
        return streak

    def _prune_window(self, address: str, now: float) -> _Window | None:
        window = self._addresses.get(address)
        if window is None:
            return None
        while window.failures and window.failures[0] <= now - self.window_s:
            window.failures.popleft()
        if not window.failures:
            del self._addresses[address]
            return None
        return window

    def _sweep(self, now: float) -> None:
        # Bounded memory under a spray of made-up accounts: drop everything that has expired.
        tables: tuple[dict[Any, _Streak], ...] = (self._pairs, self._untrusted)
        for table in tables:
            for key in list(table):
                self._live(table, key, now)
        for address in list(self._addresses):
            self._prune_window(address, now)


def _delay(failures: int, free: int, cap_s: float) -> float:
    """Seconds to wait after the last of ``failures``: none while within ``free``, then 1 s,
    doubling with each further failure, at most ``cap_s``."""
    if failures < free:
        return 0.0
    return float(min(cap_s, 2.0 ** min(failures - free, 30)))
