"""The HTTP clients flowloom makes for outbound calls (nodes, the OAuth client), and how to
swap them: every caller takes an ``HttpClientFactory`` (tests pass one with
``httpx.MockTransport``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

__all__ = ["HttpClientFactory", "default_http_client"]

HttpClientFactory = Callable[[], "httpx.AsyncClient"]
"""Makes the HTTP client a node uses (tests pass one with ``httpx.MockTransport``)."""


def default_http_client() -> httpx.AsyncClient:
    """A client that ignores proxy variables (a proxy would bypass the address checks)."""
    import httpx  # httpx costs ~0.2 s to import and only HTTP nodes need it

    from flowloom.integrations.tls import shared_ssl_context

    return httpx.AsyncClient(trust_env=False, follow_redirects=False, verify=shared_ssl_context())
