"""Schemathesis against the OpenAPI document of a real ``flowloom serve``: whatever request the
document allows (and many it does not), the server never answers 5xx.

Requests are made as the signed-in local owner, so they reach the routes' own validation and
ownership checks rather than stopping at authentication. Signing out is left out: it would end
the session the rest of the requests use.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from servekit import first_password, serve

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    root = tmp_path_factory.mktemp("fuzz")
    log = root / "serve.log"
    with serve(root / "data", log) as (_, base):
        password = first_password(log.read_text())
        assert password is not None, log.read_text()
        signed_in = httpx.post(
            f"{base}/api/v1/auth/login",
            json={"email": "owner@flowloom.localhost", "password": password},
        )
        token = signed_in.json()["access_token"]
        yield base, {"Authorization": f"Bearer {token}"}
        _check_log(log)


def _check_log(log: Path) -> None:
    text = log.read_text()
    assert "Traceback" not in text, text[-4000:]


EXCLUDED = re.compile(r"/auth/(logout|password)$")


def test_no_generated_request_makes_the_server_fail(served: tuple[str, dict[str, str]]) -> None:
    base, auth = served
    schema = schemathesis.openapi.from_url(f"{base}/api/v1/openapi.json")
    failures: list[str] = []
    tried: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if EXCLUDED.search(operation.path):
            continue
        tried.append(operation.label)

        @given(case=operation.as_strategy())
        @settings(
            max_examples=12,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case: Any) -> None:
            response = case.call(headers=auth, timeout=30)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path}: {response.status_code}"
                    f" {response.text[:300]}"
                )

        check()
    assert len(tried) > 40, tried
    assert not failures, "\n".join(failures[:20])
