"""HTTP clients made for nodes share one TLS context: building one loads the CA bundle, which
held the event loop for up to 0.4 s per ``http.request`` node on a busy server."""

from __future__ import annotations

import ssl

import pytest

from flowloom.integrations.tls import shared_ssl_context
from flowloom.nodes.base import default_http_client
from flowloom.nodes.warm import warm_up


async def test_node_clients_do_not_build_a_tls_context_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    warm_up()  # what the server starts on a thread at start-up

    def built(*args: object, **kwargs: object) -> ssl.SSLContext:
        raise AssertionError("a TLS context was built for a node's client")

    monkeypatch.setattr(ssl, "create_default_context", built)
    monkeypatch.setattr(ssl, "SSLContext", built)
    for _ in range(3):
        async with default_http_client():
            pass


def test_the_shared_context_verifies_certificates() -> None:
    context = shared_ssl_context()
    assert context is shared_ssl_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
