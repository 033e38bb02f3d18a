"""``flowloom run`` killed by SIGKILL at each failpoint, then ``flowloom resume``: every node
ends SUCCEEDED once in the record, no node whose success was committed runs again, and the
outputs are those of an uninterrupted run.

The side effects are real: each node POSTs to an HTTP server in this test process, which counts
the requests per node and keeps the ``Idempotency-Key`` headers it saw.
On SQLite: the engine's own crash tests (tests/engine) cover PostgreSQL.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from servekit import cli

from flowloom.engine.failpoints import POINTS

CHAIN = 5


class Counting(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.calls: Counter[str] = Counter()
        self.keys: dict[str, set[str]] = {}
        self.lock = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    server: Counting

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            self.server.calls[body["node"]] += 1
            key = self.headers.get("Idempotency-Key", "")
            self.server.keys.setdefault(body["node"], set()).add(key)
        # The answer is the next node's request body: the chain carries it along.
        step = body["step"] + 1
        answer = json.dumps({"node": f"n{step}", "step": step}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def counter() -> Iterator[Counting]:
    server = Counting()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def chain_file(path: Path, port: int) -> Path:
    """n1 -> n2 -> ...: http.request nodes, each sending the body its parent received."""
    nodes, edges = [], []
    for i in range(1, CHAIN + 1):
        nodes.append(
            {
                "id": f"n{i}",
                "type": "http.request",
                "position": {"x": i * 200, "y": 0},
                "data": {
                    "config": {
                        "method": "POST",
                        "url": f"http://127.0.0.1:{port}/effect",
                        "body": {"node": "n1", "step": 1} if i == 1 else None,
                    }
                },
            }
        )
    for i in range(2, CHAIN + 1):
        edges.append(
            {
                "id": f"e{i}",
                "source": f"n{i - 1}",
                "sourceHandle": "body",
                "target": f"n{i}",
                "targetHandle": "body",
            }
        )
    path.write_text(json.dumps({"nodes": nodes, "edges": edges}))
    return path


def flowloom(data_dir: Path, *args: str, failpoint: str = "") -> subprocess.CompletedProcess[str]:
    env = {"FLOWLOOM_ALLOW_PRIVATE_HTTP": "true", "FLOWLOOM_FAILPOINTS": failpoint}
    return cli(data_dir, *args, env=env)


KILLS = [f"{point}@{hit}:kill" for point in sorted(POINTS) for hit in (1, 3)]


@pytest.mark.parametrize("failpoint", KILLS)
def test_a_killed_run_resumes_and_no_succeeded_node_runs_twice(
    failpoint: str, tmp_path: Path, counter: Counting
) -> None:
    data_dir = tmp_path / "data"
    graph = chain_file(tmp_path / "effects.json", counter.server_address[1])

    killed = flowloom(data_dir, "run", str(graph), "--json", failpoint=failpoint)
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr)
    assert killed.stdout == "", "a killed run prints nothing"
    before = Counter(counter.calls)
    assert sum(before.values()) < CHAIN, "the process died before the end of the chain"

    resumed = flowloom(data_dir, "resume", "--json")
    assert resumed.returncode == 0, resumed.stderr
    (line,) = resumed.stdout.splitlines()
    record = json.loads(line)
    assert record["status"] == "COMPLETED"
    assert record["outputs"][f"n{CHAIN}"]["body"] == {"node": f"n{CHAIN + 1}", "step": CHAIN + 1}
    assert {node["status"] for node in record["nodes"].values()} == {"SUCCEEDED"}
    assert set(record["nodes"]) == {f"n{i}" for i in range(1, CHAIN + 1)}

    # Every node's effect happened; only a node that ran but whose result died uncommitted may
    # run again, as attempt 2, and it sends the key the first attempt sent, so a service that
    # deduplicates on it applies the effect once.
    assert set(counter.calls) == {f"n{i}" for i in range(1, CHAIN + 1)}
    twice = {node for node, count in counter.calls.items() if count > 1}
    if failpoint.startswith("after_commit_before_release"):
        assert not twice, f"committed nodes ran again: {twice}"
    else:
        assert len(twice) <= 1, twice
    for node in twice:
        assert counter.calls[node] == 2
        assert record["nodes"][node]["attempts"] == 2
        run_id = record["run_id"]
        assert counter.keys[node] == {f"{run_id}:{node}"}
    for node, count in counter.calls.items():
        assert counter.keys[node] == {f"{record['run_id']}:{node}"}, "one key per node, always"
        if count == 1:
            assert record["nodes"][node]["attempts"] in (1, 2), node

    again = flowloom(data_dir, "resume", "--json")
    assert (again.returncode, again.stdout) == (0, ""), "nothing is left to resume"


def test_an_unknown_failpoint_mode_is_refused(tmp_path: Path) -> None:
    done = flowloom(tmp_path, "resume", failpoint="after_effect_before_commit:explode")
    assert done.returncode != 0
    assert "unknown mode 'explode'" in done.stderr + done.stdout
