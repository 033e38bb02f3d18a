"""``Forked``: work run in a forked child process, its answer or its error brought back here;
and the same answers, worked out here, where no child can be forked."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowloom.cli import forked as forked_module
from flowloom.cli.forked import Forked, ForkedFailed, can_fork
from flowloom.exceptions import ConfigurationError


@pytest.fixture(autouse=True)
def _forking(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fork whatever else runs in the test process: tests before these may leave idle worker
    threads behind (the engine's compute pool), with which ``can_fork`` would run the work in
    process without a word. Not for the tests of ``can_fork`` itself."""
    if "can_fork" not in request.node.name:
        monkeypatch.setattr(forked_module, "can_fork", lambda: True)


def _no_child_left() -> bool:
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def test_the_work_runs_in_another_process_and_its_result_comes_back() -> None:
    with Forked.start(lambda: (os.getpid(), {"rows": [1, 2, 3]})) as forked:
        pid, value = forked.result()

    assert forked.forked
    assert pid != os.getpid()
    assert value == {"rows": [1, 2, 3]}
    assert _no_child_left()


def test_an_error_in_the_child_is_raised_here_with_the_childs_traceback() -> None:
    def failing() -> None:
        raise ConfigurationError("the data dir is unusable")

    forked = Forked.start(failing)
    with pytest.raises(ConfigurationError, match="the data dir is unusable") as raised:
        forked.result()

    notes = "\n".join(raised.value.__notes__)
    assert "raised in the child process" in notes
    assert "in failing" in notes
    assert _no_child_left()


def test_a_child_killed_before_it_answers_fails_with_the_signal() -> None:
    forked = Forked.start(lambda: os.kill(os.getpid(), signal.SIGKILL))

    with pytest.raises(ForkedFailed, match=f"killed by signal {int(signal.SIGKILL)}"):
        forked.result()


def test_a_child_that_exits_without_answering_fails_with_its_exit_code() -> None:
    forked = Forked.start(lambda: os._exit(3))

    with pytest.raises(ForkedFailed, match="exited with code 3 before it answered"):
        forked.result()


class _Unpicklable(Exception):
    """An error whose constructor wants more than it keeps: pickle cannot make it again."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(f"{message} ({code})")


def test_an_error_that_cannot_be_sent_back_fails_naming_it() -> None:
    def failing() -> None:
        raise _Unpicklable("migration broke", 7)

    forked = Forked.start(failing)

    with pytest.raises(ForkedFailed, match=r"_Unpicklable: migration broke \(7\)"):
        forked.result()


def test_a_result_that_cannot_be_sent_back_fails() -> None:
    forked = Forked.start(lambda: threading.Lock())

    with pytest.raises(ForkedFailed, match="could not send back the result"):
        forked.result()


def test_leaving_the_block_waits_for_the_child_even_unasked(tmp_path: Path) -> None:
    marker = tmp_path / "done"

    with Forked.start(lambda: marker.write_text("written")):
        pass

    assert marker.read_text() == "written"
    assert _no_child_left()


def test_leaving_the_block_on_an_error_waits_for_the_child_and_keeps_the_error(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "done"

    with pytest.raises(KeyError), Forked.start(lambda: marker.write_text("written")):
        raise KeyError("import failed")

    assert marker.read_text() == "written"
    assert _no_child_left()


def test_can_fork_in_a_process_of_one_thread_on_linux() -> None:
    code = "from flowloom.cli.forked import can_fork\nprint(can_fork())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert done.stdout.strip() == str(sys.platform == "linux")


@pytest.fixture
def another_thread() -> Iterator[None]:
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def test_with_another_thread_running_can_fork_says_no_and_the_work_runs_here(
    another_thread: None,
) -> None:
    def failing() -> None:
        raise ConfigurationError("bad url")

    here = Forked.start(os.getpid)
    failed = Forked.start(failing)

    assert not can_fork()
    assert not here.forked
    assert here.result() == os.getpid()
    with pytest.raises(ConfigurationError, match="bad url"):
        failed.result()


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie waiting for its reaper does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_a_child_dies_with_its_parent(tmp_path: Path) -> None:
    """A parent killed while its child works (``flowloom serve`` killed mid-start) takes the
    child with it, as the work would have died had it run in the parent: the next start never
    finds the last one's child still writing."""
    marker = tmp_path / "written"
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from flowloom.cli.forked import Forked\n"
        "def work():\n"
        "    time.sleep(5)\n"
        f"    Path({str(marker)!r}).write_text('the child outlived its parent')\n"
        "forked = Forked.start(work)\n"
        "print(forked._pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    assert _alive(child)

    parent.kill()
    parent.wait()
    for _ in range(300):
        if not _alive(child):
            break
        time.sleep(0.1)

    assert not _alive(child)
    time.sleep(6)  # past the child's 5 s of work: it would have written by now
    assert not marker.exists()
