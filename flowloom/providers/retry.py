"""When to try a provider call again and how long to wait first.

Every SDK is built with its own retries off; this one policy applies to all of them, so the
behaviour is the same whichever provider a node calls, and tests can measure it.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

__all__ = ["RetryPolicy", "parse_retry_after"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter; a server's Retry-After overrides the computed delay."""

    attempts: int = 4
    """Tries in all, the first included."""
    base_delay_s: float = 0.5
    """The wait before the second try; it doubles for each try after."""
    max_delay_s: float = 20.0
    """The longest computed wait."""
    max_retry_after_s: float = 60.0
    """The longest Retry-After honoured in place; a longer one ends the call at once (as
    ProviderUnavailable carrying ``retry_after_s``) so the engine can park the node instead."""
    jitter: float = 0.2
    """Each computed wait is scaled by a random factor in [1 - jitter, 1]."""
    random: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def delay_s(self, attempt: int, retry_after_s: float | None = None) -> float:
        """The wait after failed try number ``attempt`` (1-based)."""
        if retry_after_s is not None:
            return max(0.0, retry_after_s)
        computed = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return float(computed * (1 - self.jitter * self.random()))


def parse_retry_after(
    headers: Mapping[str, str] | None, *, now: Callable[[], float] = time.time
) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    millis = lowered.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now())
