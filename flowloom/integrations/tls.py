"""One TLS context per process for the HTTP clients flowloom makes (nodes, OAuth).

Building a verifying context loads the whole CA bundle: 20 ms on a quiet machine, 0.1-0.4 s on
a busy one, and every ``http.request`` node made a new client, so it paid that on the event
loop, stalling every other request and run (the loop-lag watchdog caught it there). A context
is safe to share between clients and threads once built; ``warm_up`` builds it on a thread at
start-up, so the first node does not pay either.
"""

from __future__ import annotations

import ssl
import threading

__all__ = ["shared_ssl_context"]

_lock = threading.Lock()
_context: ssl.SSLContext | None = None


def shared_ssl_context() -> ssl.SSLContext:
    """The process's verifying TLS context (the CA bundle httpx would load), built once."""
    global _context
    if _context is None:
        with _lock:
            if _context is None:
                import httpx

                _context = httpx.create_ssl_context()
    return _context
