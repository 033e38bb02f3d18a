"""One user's hostile workflow cannot stall the server: a real ``flowloom serve`` runs a
catastrophic regular expression and two template loop bombs (one in ``text.template``, one in
a templated config field) while a second client polls ``/healthz``; every answer comes in
under 200 ms (a correctness bound with a wide margin, not a benchmark), the regex gives the
right answer at once, and the run ends FAILED with the time limit named."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphkit import edge
from servekit import serve, sign_in

HEALTHZ_BOUND_S = 0.2
LOOP_BOMB = "{% for a in s %}{% for b in s %}{{ '' }}{% endfor %}{% endfor %}"
"""Iterates over text, so no range() budget stops it: only the time limit does."""


def node(node_id: str, type_name: str, config: dict[str, Any]) -> dict[str, Any]:
    data = {"label": node_id, "config": config}
    return {"id": node_id, "type": type_name, "position": {"x": 0, "y": 0}, "data": data}


def hostile(bomb: dict[str, Any]) -> dict[str, Any]:
    """A catastrophic regex whose ``false`` output feeds ``bomb`` (node id ``bomb``, port ``x``
    or ``items``): the bomb runs once the regex has answered."""
    port = "items" if bomb["type"] == "text.join" else "x"
    return {
        "schema_version": 1,
        "nodes": [
            node("start", "trigger.manual", {"fields": [{"name": "text", "type": "string"}]}),
            node("regex", "flow.condition", {"operator": "matches", "operand": r"^(a+)+$"}),
            bomb,
        ],
        "edges": [edge("start", "text", "regex", "value"), edge("regex", "false", "bomb", port)],
    }


TEMPLATE_BOMB = node(
    "bomb", "text.template", {"template": "{% set s = x * 20000 %}" + LOOP_BOMB, "variables": ["x"]}
)
FIELD_BOMB = node("bomb", "text.join", {"separator": "{% set s = 'y' * 20000 %}" + LOOP_BOMB})
"""A loop bomb in a templated config field, rendered by the engine before the node runs."""


@pytest.mark.slow
def test_a_hostile_run_does_not_stall_healthz_and_ends_failed(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    with serve(tmp_path / "data", log) as (_process, base):
        owner = httpx.Client(base_url=base, headers=sign_in(base, log), timeout=30)
        prober = httpx.Client(base_url=base, timeout=30)
        with owner, prober:
            prober.get("/healthz").raise_for_status()
            text = "a" * 29 + "!"
            run_urls = []
            for bomb in (TEMPLATE_BOMB, FIELD_BOMB):
                definition = hostile(bomb)
                created = owner.post(
                    "/api/v1/workflows", json={"name": "x", "definition": definition}
                )
                assert created.status_code == 201, created.text
                started = owner.post(
                    f"/api/v1/workflows/{created.json()['id']}/runs",
                    json={"inputs": {"text": text}},
                )
                assert started.status_code in (200, 201, 202), started.text
                run_urls.append(f"/api/v1/runs/{started.json()['id']}")

            slowest_s = 0.0
            probes = 0
            deadline = time.monotonic() + 60
            while True:
                before = time.perf_counter()
                assert prober.get("/healthz").status_code == 200
                slowest_s = max(slowest_s, time.perf_counter() - before)
                probes += 1
                runs = [owner.get(url).json() for url in run_urls]
                if all(run["status"] not in ("PENDING", "RUNNING") for run in runs):
                    break
                assert time.monotonic() < deadline, runs
                time.sleep(0.02)

    assert slowest_s < HEALTHZ_BOUND_S, (slowest_s, probes)
    assert probes >= 10, probes
    for run, field in zip(runs, ("template", "separator"), strict=True):
        nodes = {n["node_id"]: n for n in run["nodes"]}
        assert run["status"] == "FAILED", run
        assert nodes["regex"]["status"] in ("SUCCEEDED", "CACHED")
        assert nodes["regex"]["outputs"] == {"false": text}
        error = nodes["bomb"]["error"]["message"]
        assert "time limit of 2 s" in error, error
        if field == "separator":
            assert "'separator'" in error, error
