"""Schemathesis against the OpenAPI document of a real ``flowloom serve``, on SQLite and on
PostgreSQL: whatever request the document allows (and many it does not), the server never
answers 5xx.

Requests are made as the signed-in local owner (an admin), so they reach the routes' own
validation and ownership checks rather than stopping at authentication. Signing out and
changing the password are left out: they would end the session the rest of the requests use.

Nothing a generated request sets off may leave 127.0.0.1: every LLM provider points at the local
fake (tests/providers/fake_servers.py), and the server runs under tests/egress_guard, which
refuses (and logs) any connection or DNS lookup past loopback and any child process (an admin
may register a stdio MCP server: a generated command is never run). HTTP nodes keep their
default refusal of private addresses. The first test shows the guard holds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from pgkit import require_postgres
from providers.fake_servers import API_KEY, FakeServer
from schemathesis.checks import response_schema_conformance
from schemathesis.core.failures import Failure, FailureGroup
from servekit import egress_guard_env, postgres_database, provider_env, serve, sign_in

pytestmark = pytest.mark.slow

EXAMPLES_PER_OPERATION = 25
EXCLUDED = re.compile(r"/auth/(logout|password)$")


@dataclass(frozen=True)
class Served:
    base: str
    auth: dict[str, str]
    egress: Path
    """What the egress guard refused, one line each."""
    log: Path
    """The server's output."""

    def refused(self) -> list[str]:
        return [line for line in self.egress.read_text().splitlines() if " refused " in line]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, fake: FakeServer
) -> Iterator[Served]:
    root = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    log, egress = root / "serve.log", root / "egress.log"
    env = {
        **provider_env(fake.base_url, fake.openai_base_url, API_KEY),
        **egress_guard_env(egress),
    }
    with ExitStack() as stack:
        if request.param == "postgresql":
            require_postgres()
            env["FLOWLOOM_DATABASE_URL"] = stack.enter_context(postgres_database(root / "data"))
        _, base = stack.enter_context(serve(root / "data", log, env))
        assert "guard in place" in egress.read_text(), "the server ran without the egress guard"
        yield Served(base, sign_in(base, log), egress, log)


def _workflow(*nodes: dict[str, Any]) -> dict[str, Any]:
    return {"schema_version": 1, "nodes": list(nodes), "edges": []}


def _run(served: Served, name: str, definition: dict[str, Any]) -> dict[str, Any]:
    with httpx.Client(base_url=served.base, headers=served.auth, timeout=60) as client:
        made = client.post("/api/v1/workflows", json={"name": name, "definition": definition})
        assert made.status_code == 201, made.text
        ran = client.post(f"/api/v1/workflows/{made.json()['id']}/runs?wait=true", json={})
        assert ran.status_code == 200, ran.text
        return dict(ran.json())


def test_a_run_reaches_the_fake_provider_and_nothing_past_127_0_0_1(
    served: Served, fake: FakeServer
) -> None:
    fake.reset()
    asked = _run(
        served,
        "asks the fake",
        _workflow(
            {
                "id": "llm",
                "type": "ai.llm",
                "data": {"config": {"provider": "anthropic", "model": "m", "user_message": "hi"}},
            }
        ),
    )
    assert asked["status"] == "COMPLETED", asked
    assert [r.provider for r in fake.requests] == ["anthropic"]

    # One run per address: two nodes in one run race, and the first to fail cancels the other
    # before it may have tried.
    for name, url in (("by name", "http://example.com/"), ("by address", "http://93.184.215.14/")):
        outside = _run(
            served,
            f"reaches out {name}",
            _workflow({"id": "get", "type": "http.request", "data": {"config": {"url": url}}}),
        )
        assert outside["status"] == "FAILED", outside
    refused = "\n".join(served.refused())
    assert "refused resolve 'example.com'" in refused, refused
    assert "refused connect ('93.184.215.14'" in refused, refused


def _conformance(case: Any, response: Any) -> list[str]:
    """Where the answer does not match the schema the document declares for it."""
    try:
        case.validate_response(response, checks=[response_schema_conformance])
    except (Failure, FailureGroup) as failed:
        return [str(failed).splitlines()[0] if str(failed) else type(failed).__name__]
    return []


def test_no_generated_request_makes_the_server_fail(served: Served) -> None:
    schema = schemathesis.openapi.from_url(f"{served.base}/api/v1/openapi.json")
    failures: list[str] = []
    mismatches: dict[str, set[str]] = {}
    tried: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if EXCLUDED.search(operation.path):
            continue
        tried.append(operation.label)

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case: Any) -> None:
            response = case.call(headers=served.auth, timeout=30)
            if response.status_code >= 500:
                body = case.body if not isinstance(case.body, bytes) else case.body[:200]
                failures.append(
                    f"{case.method} {case.formatted_path} query={case.query} "
                    f"body={json.dumps(body, default=repr)[:300]}: {response.status_code}"
                    f" {response.text[:300]}"
                )
            elif problems := _conformance(case, response):
                mismatches.setdefault(case.operation.label, set()).update(problems)

        check()
    assert len(tried) > 40, tried
    logged = served.log.read_text(errors="replace")
    # The last line of each traceback: the exception that escaped.
    escaped = re.findall(r"^Traceback[^\n]*\n(?:[ \t].*\n)*(.*)$", logged, re.MULTILINE)
    report = [f"{len(failures)} answers >= 500:", *failures[:30]]
    report += [f"{len(escaped)} tracebacks in the server's log:", *escaped[:30]]
    report += ["answers not matching the documented schema:"]
    report += [f"{label}: {sorted(problems)}" for label, problems in sorted(mismatches.items())]
    assert not failures, "\n".join(report)
    assert not escaped, "\n".join(report)
    assert not mismatches, "\n".join(report)
