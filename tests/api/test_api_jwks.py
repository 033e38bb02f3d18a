"""Sign-in by an identity provider that publishes its keys at a JWKS URL (RS256): a local HTTP
server serves the key set; tokens signed with its key find or create the user by (provider,
subject); another key, a wrong audience or an unknown key id are refused."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from apikit import make_settings
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from flowloom.settings import Settings

ISSUER = "https://id.example.test"
AUDIENCE = "flowloom-jwks-tests"


class KeyServer(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        self.jwks = {"keys": [{**public, "kid": "k1", "use": "sig", "alg": "RS256"}]}
        self.fetches = 0


class _Handler(BaseHTTPRequestHandler):
    server: KeyServer

    def do_GET(self) -> None:
        self.server.fetches += 1
        body = json.dumps(self.server.jwks).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def keys() -> Iterator[KeyServer]:
    server = KeyServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, keys: KeyServer) -> Settings:
    return make_settings(
        tmp_path_factory.mktemp("data"),
        external_auth_issuer=ISSUER,
        external_auth_audience=AUDIENCE,
        external_auth_shared_key=None,
        external_auth_jwks_url=f"http://127.0.0.1:{keys.server_address[1]}/.well-known/jwks.json",
        external_auth_provider="corp-sso",
    )


def token(key: Any, *, kid: str = "k1", **claims: Any) -> str:
    now = int(time.time())
    body = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-42",
        "email": "ada@example.com",
        "iat": now,
        "exp": now + 300,
        **claims,
    }
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": kid})


async def test_a_token_signed_with_the_published_key_signs_in(
    client: httpx.AsyncClient, keys: KeyServer
) -> None:
    first = await client.post("/api/v1/auth/external", json={"token": token(keys.key)})
    assert first.status_code == 200, first.text
    user_id = first.json()["user"]["id"]
    again = await client.post(
        "/api/v1/auth/external",
        json={"token": token(keys.key, email="ada.new@example.com")},
    )
    assert again.status_code == 200
    assert again.json()["user"]["id"] == user_id, "found by (provider, subject), not by email"
    me = await client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {again.json()['access_token']}"}
    )
    assert me.json()["id"] == user_id
    assert keys.fetches >= 1


async def test_other_keys_audiences_and_key_ids_are_refused(
    client: httpx.AsyncClient, keys: KeyServer
) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for bad in (
        token(stranger),
        token(keys.key, aud="someone-else"),
        token(keys.key, iss="https://evil.example"),
        token(keys.key, exp=int(time.time()) - 3600),
        token(keys.key, kid="unknown"),
    ):
        refused = await client.post("/api/v1/auth/external", json={"token": bad})
        assert refused.status_code == 401, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
