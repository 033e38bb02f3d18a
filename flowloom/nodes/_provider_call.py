"""What every AI node does around a provider call: its failures as the node's, and its usage.

``provider_call`` turns what resolving a provider and calling it can raise into the node's
failure with a readable message: a missing key or setting, a stored credential the owner does
not have, a provider that asks for a long pause (the attempt is parked with RetryNode instead
of holding a slot), or any other provider error (retryable as the provider says).

``record_usage`` stores one call's usage and returns its exact cost. A call that succeeded was
paid for: losing its answer over bookkeeping would make the user pay twice on a retry, so a
failure to record is logged with enough to reconcile by hand, and the cost is None.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import TYPE_CHECKING

from flowloom.exceptions import ConfigurationError, NotFound, RetryNode
from flowloom.nodes.base import RunContext

if TYPE_CHECKING:
    from flowloom.providers import UsageEvent

__all__ = ["provider_call", "record_usage"]


@contextmanager
def provider_call(ctx: RunContext, credential: str | None) -> Iterator[None]:
    """Inside: resolving a provider and calling it (see the module docstring)."""
    from flowloom.providers import ProviderError, ProviderUnavailable

    try:
        yield
    except ConfigurationError as exc:
        raise ctx.fail(str(exc)) from None
    except NotFound:
        raise ctx.fail(f"you have no stored credential named {credential!r}") from None
    except ProviderUnavailable as exc:
        if exc.retry_after_s is not None:
            raise RetryNode(after_s=exc.retry_after_s, reason=str(exc)) from None
        raise ctx.fail(str(exc), retryable=True) from None
    except ProviderError as exc:
        raise ctx.fail(str(exc), retryable=exc.retryable) from None


async def record_usage(ctx: RunContext, event: UsageEvent) -> Decimal | None:
    """The exact cost of ``event`` once stored (0 where nothing records usage; None when
    storing it failed: see the module docstring)."""
    if ctx.usage is None:
        return Decimal(0)
    try:
        return await ctx.usage.record(event)
    except Exception:
        ctx.logger.exception(
            "usage of %s/%s (%d in, %d out, %d images, %s) by node %s of run %s was not recorded",
            event.provider,
            event.model,
            event.tokens_in,
            event.tokens_out,
            event.images,
            event.type,
            ctx.node_id,
            ctx.run_id,
        )
        return None
