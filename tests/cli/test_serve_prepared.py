"""``flowloom.cli.serve.prepared``: the server makes its app and its uvicorn server while the
database is prepared in a child process; an error on the server's side is raised only once
the child has answered, and the child's own error, when it has one, is the one raised."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

_CODE = """
import json, os, sys
import flowloom.cli.serve as serve
from flowloom.settings import Settings
child_fails, server_fails = sys.argv[1] == "1", sys.argv[2] == "1"
real = serve.prepare
async def prepare(settings):
    if child_fails:
        raise OSError("examples unreadable")
    first = await real(settings)
    (settings.data_dir / "prepared-in").write_text(str(os.getpid()))
    return first
serve.prepare = prepare
def then(app):
    if server_fails:
        raise ValueError("no server")
    return type(app).__name__
try:
    first, made = serve.prepared(Settings(), then)
    outcome = ["made", made, first.password is not None]
except Exception as exc:
    notes = getattr(exc, "__notes__", [])
    outcome = ["raised", type(exc).__name__, any("child process" in n for n in notes)]
marker = Settings().data_dir / "prepared-in"
outcome.append(marker.exists() and int(marker.read_text()) != os.getpid())
print(json.dumps(outcome))
"""


def _prepared(tmp_path: Path, *, child_fails: bool, server_fails: bool) -> list[object]:
    env = {**os.environ, "FLOWLOOM_DATA_DIR": str(tmp_path / "data")}
    env.pop("FLOWLOOM_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", _CODE, str(int(child_fails)), str(int(server_fails))],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
    )
    outcome: list[object] = json.loads(done.stdout)
    return outcome


def test_the_server_is_made_while_the_child_prepares_the_database(tmp_path: Path) -> None:
    # what ``then`` made, a first start's password, the child's work done in the child
    assert _prepared(tmp_path, child_fails=False, server_fails=False) == [
        "made",
        "FastAPI",
        True,
        True,
    ]


def test_an_error_making_the_server_is_raised_once_the_child_has_finished(
    tmp_path: Path,
) -> None:
    assert _prepared(tmp_path, child_fails=False, server_fails=True) == [
        "raised",
        "ValueError",
        False,
        True,
    ]


def test_the_childs_error_wins_over_the_servers(tmp_path: Path) -> None:
    assert _prepared(tmp_path, child_fails=True, server_fails=True) == [
        "raised",
        "OSError",
        True,
        False,
    ]
