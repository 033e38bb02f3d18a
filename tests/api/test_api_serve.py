"""A real ``flowloom serve`` process on a free port: first start prints a one-time password,
the examples are loaded, runs go through HTTP, 25 runs page back, SIGTERM stops it cleanly,
and a second start neither prints a password nor loads the examples twice."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest
from servekit import first_password, serve


@pytest.mark.slow
def test_serve_end_to_end(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    with serve(tmp_path / "data", log) as (process, base):
        password = first_password(log.read_text())
        assert password is not None, log.read_text()
        assert len(password) >= 20
        with httpx.Client(base_url=base, timeout=30) as client:
            signed_in = client.post(
                "/api/v1/auth/login",
                json={"email": "owner@flowloom.localhost", "password": password},
            )
            assert signed_in.status_code == 200, signed_in.text
            csrf = {"X-CSRF-Token": signed_in.json()["csrf_token"]}
            workflows = client.get("/api/v1/workflows").json()["items"]
            assert {w["name"] for w in workflows} >= {"Hello template", "Sort numbers"}
            key = client.post(
                "/api/v1/api-keys",
                json={"name": "e2e", "scopes": ["runs:execute", "workflows:read"]},
                headers=csrf,
            ).json()["key"]

        hello = next(w for w in workflows if w["name"] == "Hello template")
        with httpx.Client(
            base_url=base, timeout=30, headers={"Authorization": f"Bearer {key}"}
        ) as program:
            run_ids = []
            for i in range(25):
                run = program.post(
                    f"/api/v1/workflows/{hello['id']}/runs?wait=true",
                    json={"inputs": {"name": f"run {i}"}},
                )
                assert run.status_code == 200, run.text
                assert run.json()["status"] == "COMPLETED"
                run_ids.append(run.json()["id"])
            assert run.json()["outputs"]["lines"]["text"].startswith("Hello, run 24!")

            seen: list[str] = []
            cursor = None
            while True:
                params = {"limit": 10, **({"cursor": cursor} if cursor else {})}
                page = program.get("/api/v1/runs", params=params).json()
                seen += [r["id"] for r in page["items"]]
                cursor = page["next_cursor"]
                if cursor is None:
                    break
            assert seen == list(reversed(run_ids))

        process.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal it caught: either exit is a
        # clean stop as far as a process supervisor is concerned.
        assert process.wait(timeout=15) in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in log.read_text()

    second_log = tmp_path / "serve-again.log"
    with serve(tmp_path / "data", second_log) as (process, base):
        output = second_log.read_text()
        assert first_password(output) is None
        assert "example workflow" not in output
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in second_log.read_text()
