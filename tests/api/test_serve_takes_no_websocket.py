"""``flowloom serve`` takes no WebSocket (no route has one), so uvicorn loads no WebSocket
library for it: a request asking to upgrade is answered as plain HTTP."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import httpx
import pytest
from servekit import serve

pytestmark = pytest.mark.slow


def test_a_request_asking_to_upgrade_is_answered_as_plain_http(tmp_path: Path) -> None:
    upgrade = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": base64.b64encode(secrets.token_bytes(16)).decode(),
    }
    with serve(tmp_path / "data", tmp_path / "serve.log") as (_, base):
        answer = httpx.get(f"{base}/healthz", headers=upgrade, timeout=30)

    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "ok"
