"""One TLS context per process for the HTTP clients flowloom makes (nodes, OAuth).

Building a verifying context loads the whole CA bundle: 20 ms on a quiet machine, 0.1-0.4 s on
a busy one, and every ``http.request`` node made a new client, so it paid that on the event
loop, stalling every other request and run (the loop-lag watchdog caught it there). A context
is safe to share between clients and threads once built. The callers that make a client await
:func:`ssl_context_ready` first, which builds it on a worker thread the first time, so the loop
never pays for it. It is not built at start-up: with the CA bundle's certificates parsed it
stays resident (some 1.7 MiB), and a server whose nodes never fetch over HTTPS never needs it.
"""

from __future__ import annotations

import asyncio
import ssl
import threading

from flowloom.heavy_imports import ensure_imported

__all__ = ["shared_ssl_context", "ssl_context_ready"]

_lock = threading.Lock()
_context: ssl.SSLContext | None = None


def shared_ssl_context() -> ssl.SSLContext:
    """The process's verifying TLS context (the CA bundle httpx would load), built once."""
    global _context
    if _context is None:
        with _lock:
            if _context is None:
                ensure_imported("httpx")  # any thread may be first (flowloom.heavy_imports)
                import httpx

                _context = httpx.create_ssl_context()
    return _context


async def ssl_context_ready() -> None:
    """Build the shared context on a worker thread unless it is built already: awaited before
    a client is made, so its first build (20 ms to 0.4 s) never holds the event loop."""
    if _context is None:
        await asyncio.to_thread(shared_ssl_context)
