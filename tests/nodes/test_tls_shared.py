"""HTTP clients made for nodes share one TLS context: building one loads the CA bundle, which
held the event loop for up to 0.4 s per ``http.request`` node on a busy server. It is built on a
worker thread when the first client is about to be made, not at start-up."""

from __future__ import annotations

import ssl
import threading

import pytest

from flowloom.integrations import tls
from flowloom.integrations.tls import shared_ssl_context, ssl_context_ready
from flowloom.nodes.base import default_http_client
from flowloom.nodes.warm import warm_up


async def test_node_clients_do_not_build_a_tls_context_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await ssl_context_ready()  # what a node awaits before it makes its client

    def built(*args: object, **kwargs: object) -> ssl.SSLContext:
        raise AssertionError("a TLS context was built for a node's client")

    monkeypatch.setattr(ssl, "create_default_context", built)
    monkeypatch.setattr(ssl, "SSLContext", built)
    for _ in range(3):
        await ssl_context_ready()
        async with default_http_client():
            pass


async def test_the_first_build_runs_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    monkeypatch.setattr(tls, "_context", None)
    build = httpx.create_ssl_context
    threads: list[int] = []

    def recorded(*args: object, **kwargs: object) -> ssl.SSLContext:
        threads.append(threading.get_ident())
        return build()

    monkeypatch.setattr(httpx, "create_ssl_context", recorded)
    await ssl_context_ready()
    await ssl_context_ready()

    assert len(threads) == 1
    assert threads[0] != threading.get_ident()


def test_the_warm_up_leaves_the_tls_context_to_the_first_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tls, "_context", None)
    warm_up()

    assert tls._context is None


def test_the_shared_context_verifies_certificates() -> None:
    context = shared_ssl_context()
    assert context is shared_ssl_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
