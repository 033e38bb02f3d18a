"""http.request against a real server on 127.0.0.1, and refusal of private targets.

No test sends traffic beyond loopback: requests to other addresses either are refused before
any connection (that is the point) or go to an in-process ``httpx.MockTransport``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from flowloom.exceptions import NodeFailed, RetryNode
from flowloom.nodes import NodeSettings
from flowloom.nodes._net import resolve_checked, retry_delay_s
from flowloom.testing import InMemoryBlobStore, make_context, run_node

PNG_BYTES = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


class Handler(BaseHTTPRequestHandler):
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output quiet

    def do_GET(self) -> None:
        self.route()

    def do_POST(self) -> None:
        self.route()

    def do_PUT(self) -> None:
        self.route()

    def route(self) -> None:
        self.server.requests.append(self.path)
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        path, _, query = self.path.partition("?")
        if path == "/json":
            self.reply(200, b'{"hello": "world"}', "application/json")
        elif path == "/echo":
            echo = {
                "method": self.command,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode(),
            }
            self.reply(200, json.dumps(echo).encode(), "application/json")
        elif path.startswith("/status/"):
            extra = (
                {"Retry-After": query.split("=", 1)[1]} if query.startswith("retry_after=") else {}
            )
            self.reply(int(path.rsplit("/", 1)[1]), b"status body", "text/plain", extra)
        elif path == "/slow":
            time.sleep(1.0)
            self.reply(200, b"late", "text/plain")
        elif path == "/redirect":
            self.reply(302, b"", "text/plain", {"Location": "/json"})
        elif path == "/see-other":
            self.reply(303, b"", "text/plain", {"Location": "/echo"})
        elif path == "/loop":
            self.reply(302, b"", "text/plain", {"Location": "/loop"})
        elif path == "/binary":
            self.reply(200, PNG_BYTES, "image/png")
        elif path == "/latin1":
            self.reply(200, "café".encode("latin-1"), "text/plain; charset=latin-1")
        elif path == "/big":
            self.reply(200, b"x" * 5000, "text/plain")
        elif path == "/big-json":
            self.reply(200, json.dumps({"items": list(range(50_000))}).encode(), "application/json")
        elif path == "/deep-json":
            self.reply(200, b"[" * 200_000 + b"]" * 200_000, "application/json")
        else:
            self.reply(404, b"no such page", "text/plain")

    def reply(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    requests: list[str]

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the timeout test hangs up on purpose; the late reply's broken pipe is expected


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    httpd = Server(("127.0.0.1", 0), Handler)
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def base(server: Server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


async def request(server: Server, path: str, **config: Any) -> dict[str, Any]:
    ctx = config.pop("ctx", None) or make_context(allow_private_http=True)
    inputs = config.pop("inputs", None)
    result = await run_node("http.request", {"url": base(server) + path, **config}, inputs, ctx=ctx)
    return dict(result.outputs)


async def test_a_large_json_body_is_parsed_and_one_nested_too_deep_is_kept_as_text(
    server: Server,
) -> None:
    big = await request(server, "/big-json")
    deep = await request(server, "/deep-json")

    assert big["body"] == {"items": list(range(50_000))}
    assert isinstance(deep["body"], str)
    assert deep["body"].startswith("[[[")


async def test_get_parses_a_json_body(server: Server) -> None:
    outputs = await request(server, "/json")

    assert outputs["status"] == 200
    assert outputs["body"] == {"hello": "world"}
    assert outputs["headers"]["content-type"] == "application/json"


async def test_post_sends_json_and_one_idempotency_key_for_every_attempt(server: Server) -> None:
    ctx = make_context(allow_private_http=True, run_id="run_1", node_id="notify", attempt=2)

    outputs = await request(server, "/echo", method="POST", body={"a": 1}, ctx=ctx)

    echo = outputs["body"]
    assert echo["method"] == "POST"
    assert json.loads(echo["body"]) == {"a": 1}
    assert echo["headers"]["idempotency-key"] == "run_1:notify"


async def test_wired_body_replaces_the_config_body_and_text_is_sent_as_is(server: Server) -> None:
    outputs = await request(
        server, "/echo", method="PUT", body="from config", inputs={"body": "from the edge"}
    )

    assert outputs["body"]["body"] == "from the edge"


async def test_redirects_are_followed_and_303_turns_into_get(server: Server) -> None:
    redirected = await request(server, "/redirect")
    see_other = await request(server, "/see-other", method="POST", body={"a": 1})

    assert redirected["body"] == {"hello": "world"}
    assert see_other["body"]["method"] == "GET"
    assert see_other["body"]["body"] == ""


async def test_endless_redirects_fail(server: Server) -> None:
    with pytest.raises(NodeFailed, match="more than 5 redirects"):
        await request(server, "/loop")


async def test_text_is_decoded_with_its_charset_and_binary_goes_to_the_blob_store(
    server: Server,
) -> None:
    blobs = InMemoryBlobStore()
    ctx = make_context(allow_private_http=True, blobs=blobs)

    text = await request(server, "/latin1", ctx=ctx)
    binary = await request(server, "/binary", ctx=ctx)

    assert text["body"] == "café"
    ref = binary["body"]
    assert ref["content_type"] == "image/png"
    assert ref["size"] == len(PNG_BYTES)
    assert blobs.blobs[ref["sha256"]] == PNG_BYTES


async def test_client_errors_fail_unless_told_otherwise(server: Server) -> None:
    with pytest.raises(NodeFailed, match="answered 404: no such page"):
        await request(server, "/missing")

    outputs = await request(server, "/missing", fail_on_status=False)

    assert (outputs["status"], outputs["body"]) == (404, "no such page")


async def test_429_retries_after_the_servers_retry_after(server: Server) -> None:
    with pytest.raises(RetryNode) as caught:
        await request(server, "/status/429?retry_after=7")

    assert caught.value.after_s == 7


async def test_5xx_retries_with_exponential_backoff(server: Server) -> None:
    with pytest.raises(RetryNode) as first:
        await request(server, "/status/503")
    with pytest.raises(RetryNode) as third:
        await request(server, "/status/503", ctx=make_context(allow_private_http=True, attempt=3))

    assert (first.value.after_s, third.value.after_s) == (1, 4)


async def test_a_timeout_asks_for_a_retry(server: Server) -> None:
    with pytest.raises(RetryNode, match="timed out"):
        await request(server, "/slow", timeout_s=0.2)


async def test_responses_over_the_size_limit_fail(server: Server) -> None:
    ctx = make_context(settings=NodeSettings(allow_private_http=True, http_max_response_bytes=1000))

    with pytest.raises(NodeFailed, match="5000 bytes; the limit is 1000"):
        await request(server, "/big", ctx=ctx)


def test_retry_after_as_an_http_date() -> None:
    when = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))

    assert 28 <= retry_delay_s({"retry-after": when}, attempt=1) <= 30


class Recorder:
    """An httpx transport that records what reaches it and answers 200."""

    def __init__(self, answer: httpx.Response | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.answer = answer

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer or httpx.Response(200, json={"ok": True})

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self))


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:{port}/json", "loopback"),
        ("http://localhost:{port}/json", "loopback"),
        ("http://[::1]:{port}/json", "loopback"),
        ("http://[::ffff:127.0.0.1]:{port}/json", "loopback"),
        ("http://10.0.0.1/", "private"),
        ("http://192.168.1.20/", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://0.0.0.0:{port}/", "unspecified"),
        ("http://100.64.0.1/", "not a public address"),
    ],
)
async def test_private_targets_are_refused_before_connecting(
    server: Server, url: str, reason: str
) -> None:
    recorder = Recorder()
    seen = len(server.requests)
    ctx = make_context(http_client=recorder.client)

    with pytest.raises(NodeFailed, match=f"refusing to connect .*{reason}"):
        await run_node("http.request", {"url": url.format(port=server.server_address[1])}, ctx=ctx)

    assert recorder.requests == []
    assert len(server.requests) == seen


async def test_the_local_server_is_reachable_only_when_private_targets_are_allowed(
    server: Server,
) -> None:
    seen = len(server.requests)

    with pytest.raises(NodeFailed, match="refusing"):
        await request(server, "/json", ctx=make_context())
    allowed = await request(server, "/json", ctx=make_context(allow_private_http=True))

    assert allowed["status"] == 200
    assert server.requests[seen:] == ["/json"]


async def test_a_host_is_checked_on_every_address_and_pinned_to_the_checked_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = {
        "api.example.test": ["93.184.216.34"],
        "split.example.test": ["93.184.216.34", "10.1.2.3"],
    }

    async def getaddrinfo(host: str, port: int, **_: Any) -> list[Any]:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))
            for address in answers[host]
        ]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", getaddrinfo)
    recorder = Recorder()
    ctx = make_context(http_client=recorder.client)

    await run_node("http.request", {"url": "https://api.example.test/v1?q=1"}, ctx=ctx)
    with pytest.raises(NodeFailed, match=r"split.example.test \(10.1.2.3\): private"):
        await run_node("http.request", {"url": "https://split.example.test/"}, ctx=ctx)

    [sent] = recorder.requests
    assert str(sent.url) == "https://93.184.216.34/v1?q=1"
    assert sent.headers["host"] == "api.example.test"
    assert sent.extensions["sni_hostname"] == "api.example.test"


async def test_a_redirect_to_a_private_address_is_refused() -> None:
    recorder = Recorder(httpx.Response(302, headers={"Location": "http://127.0.0.1/admin"}))
    ctx = make_context(http_client=recorder.client)

    with pytest.raises(NodeFailed, match=r"refusing to connect to 127\.0\.0\.1"):
        await run_node("http.request", {"url": "http://93.184.216.34/start"}, ctx=ctx)

    assert [str(r.url) for r in recorder.requests] == ["http://93.184.216.34/start"]


async def test_resolving_localhost_is_refused() -> None:
    with pytest.raises(ValueError, match="loopback"):
        await resolve_checked("localhost", 80)


@pytest.mark.parametrize("url", ["ftp://example.com/", "example.com", "http://"])
async def test_only_http_urls_are_accepted(url: str) -> None:
    from flowloom.exceptions import ValidationFailed

    with pytest.raises(ValidationFailed) as caught:
        await run_node("http.request", {"url": url})

    assert [p.field for p in caught.value.problems] == ["url"]
