"""``flowloom serve`` with the default provider settings and no LLM key anywhere in its
environment: it starts, answers /healthz, runs a workflow without AI; an ``ai.llm`` node of
each provider fails its run with a readable error naming the setting to set, and asking for
a generated workflow is refused with 4xx, never 500. Nothing tries to leave 127.0.0.1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from servekit import PROVIDER_KEYS, egress_guard_env, serve, sign_in

pytestmark = pytest.mark.slow

PROVIDER_SETTINGS = (
    *PROVIDER_KEYS,
    "FLOWLOOM_OPENAI_BASE_URL",
    "FLOWLOOM_GEMINI_BASE_URL",
    "FLOWLOOM_ANTHROPIC_BASE_URL",
)


def _llm(provider: str) -> dict[str, Any]:
    config = {"provider": provider, "model": "any-model", "user_message": "Say hi."}
    return {"id": provider, "type": "ai.llm", "data": {"config": config}}


def test_serve_without_provider_keys_runs_and_explains_the_missing_key(tmp_path: Path) -> None:
    log, egress = tmp_path / "serve.log", tmp_path / "egress.log"
    guarded = egress_guard_env(egress)
    with (
        serve(tmp_path / "data", log, guarded, unset=PROVIDER_SETTINGS) as (_, base),
        httpx.Client(base_url=base, headers=sign_in(base, log), timeout=60) as client,
    ):
        assert client.get("/healthz").json()["status"] == "ok"

        workflows = client.get("/api/v1/workflows").json()["items"]
        hello = next(w for w in workflows if w["name"] == "Hello template")
        ran = client.post(
            f"/api/v1/workflows/{hello['id']}/runs?wait=true", json={"inputs": {"name": "Ada"}}
        )
        assert ran.status_code == 200, ran.text
        assert ran.json()["status"] == "COMPLETED", ran.json()

        definition = {"nodes": [_llm(p) for p in ("openai", "gemini", "anthropic")], "edges": []}
        made = client.post("/api/v1/workflows", json={"name": "asks", "definition": definition})
        assert made.status_code == 201, made.text
        asked = client.post(f"/api/v1/workflows/{made.json()['id']}/runs?wait=true", json={})
        assert asked.status_code == 200, asked.text
        run = asked.json()
        assert run["status"] == "FAILED", run
        errors = {node["node_id"]: str(node["error"]) for node in run["nodes"]}
        for provider, setting in zip(("openai", "gemini", "anthropic"), PROVIDER_KEYS, strict=True):
            assert setting in errors[provider], errors

        generated = client.post(
            "/api/v1/workflows/generate",
            json={"prompt": "Sort three numbers", "provider": "openai", "model": "m"},
        )
        assert 400 <= generated.status_code < 500, generated.text
        assert "FLOWLOOM_OPENAI_API_KEY" in generated.text, generated.text

    assert "Traceback" not in log.read_text(errors="replace")
    assert egress.read_text().splitlines()[1:] == [], "nothing may try to leave 127.0.0.1"
