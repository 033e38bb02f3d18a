"""A function run in a forked child process while this one goes on: ``Forked.start(work)``.

``flowloom serve`` prepares its database this way (migrations, the local account, the example
workflows) on the machine's second core while the server process imports the API. The child is
a copy of this process made by ``os.fork``: what is imported already is there, nothing is
imported twice. It runs ``work`` and sends back what it returned or what it raised, pickled,
through a pipe, then ends with ``os._exit`` (no atexit handlers; standard output and error are
flushed before the fork and again before the child ends, so nothing is written twice).

:meth:`Forked.answered` says whether the child has finished, without waiting for it;
:meth:`Forked.result` waits for the child and returns or raises its answer here: an exception
with the child's traceback as a note, or :class:`ForkedFailed` if the child ended without an
answer (killed by a signal, say) or its exception could not be sent back. Leaving the ``with``
block waits for the child too, so none outlives the command; and a child dies with its parent
(``PR_SET_PDEATHSIG``), so a command killed while its child works stops that work too.

A child is forked only on Linux and while this process has a single thread: a thread holding a
lock at the fork would leave that lock held for good in the child. Otherwise ``work`` runs
here, at once, and :meth:`Forked.result` gives the same answers.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pickle
import select
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from types import TracebackType
from typing import Generic, NoReturn, TypeVar

__all__ = ["Forked", "ForkedFailed", "can_fork"]

T = TypeVar("T")

_PR_SET_PDEATHSIG = 1
"""prctl's option number for the signal a child gets when its parent dies (``<linux/prctl.h>``)."""

_Outcome = tuple[bool, object, str]
"""(returned, the value or the exception, the exception's traceback text)."""


class ForkedFailed(RuntimeError):
    """The child ended without an answer, or its error could not be sent back as it was."""


def can_fork() -> bool:
    """Whether :meth:`Forked.start` forks (see the module docstring)."""
    return sys.platform == "linux" and threading.active_count() == 1


class Forked(Generic[T]):
    """``work`` running in a child process (or done already, here); see the module docstring."""

    def __init__(self, pid: int | None, reader: int | None, outcome: _Outcome | None) -> None:
        self._pid = pid
        self._reader = reader
        self._outcome = outcome

    @classmethod
    def start(cls, work: Callable[[], T]) -> Forked[T]:
        if not can_fork():
            return cls(None, None, _outcome_of(work))
        _flush_output()
        reader, writer = os.pipe()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            os.close(reader)
            _die_with(parent)
            _answer_and_exit(work, writer)
        os.close(writer)
        return cls(pid, reader, None)

    @property
    def forked(self) -> bool:
        """Whether ``work`` runs in a child process."""
        return self._pid is not None

    def answered(self) -> bool:
        """Whether the child has finished (answered or ended), without waiting: ``result``
        would not block. Always True when ``work`` ran here."""
        if self._outcome is not None or self._reader is None:
            return True
        readable, _, _ = select.select([self._reader], [], [], 0)
        return bool(readable)

    def result(self) -> T:
        """What ``work`` returned; what it raised is raised here. Waits for the child."""
        returned, value, trace = self._wait()
        if returned:
            return value  # type: ignore[return-value]
        assert isinstance(value, BaseException)
        if trace and self._pid is not None:
            value.add_note(f"raised in the child process {self._pid}:\n{trace.rstrip()}")
        raise value

    def _wait(self) -> _Outcome:
        if self._outcome is not None:
            return self._outcome
        assert self._pid is not None
        assert self._reader is not None
        with os.fdopen(self._reader, "rb") as pipe:
            data = pipe.read()
        _, status = os.waitpid(self._pid, 0)
        if data:
            self._outcome = pickle.loads(data)  # this program's own child
        else:
            self._outcome = (False, ForkedFailed(_ended_without_answer(self._pid, status)), "")
        return self._outcome

    def __enter__(self) -> Forked[T]:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._wait()


def _outcome_of(work: Callable[[], T]) -> _Outcome:
    """What ``work`` returned or raised, for ``result()`` to hand over. KeyboardInterrupt and
    SystemExit are not kept: here they go on at once; in a child, it ends without an answer."""
    try:
        return (True, work(), "")
    except Exception as exc:
        return (False, exc, traceback.format_exc())


def _answer_and_exit(work: Callable[[], object], writer: int) -> NoReturn:
    """In the child: run ``work``, write its outcome to ``writer``, end the process (never
    returns into the parent's code, whatever happens)."""
    code = 1
    try:
        outcome = _outcome_of(work)
        data = _pickled(outcome)
        with os.fdopen(writer, "wb") as pipe:
            pipe.write(data)
        code = 0 if outcome[0] else 1
    finally:
        _flush_output()
        os._exit(code)


def _die_with(parent: int) -> None:
    """In the child: have the kernel kill it when ``parent`` dies (``PR_SET_PDEATHSIG``), as
    the work would have died with the parent had it run there; a parent killed mid-start and
    started again must not find its last child still writing. Ends at once if the parent is
    gone already."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) != 0 or os.getppid() != parent:
        os._exit(1)


def _flush_output() -> None:
    for stream in (sys.stdout, sys.stderr):
        # A closed stream, or None: nothing of ours waits in it.
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()


def _pickled(outcome: _Outcome) -> bytes:
    """``outcome`` pickled, checked to load again; an exception that does not (one whose
    constructor wants other arguments than it keeps, say) goes back as ForkedFailed."""
    returned, value, trace = outcome
    try:
        data = pickle.dumps(outcome)
        pickle.loads(data)
        return data
    except Exception as exc:
        what = "the result" if returned else f"{type(value).__name__}: {value}"
        failed = ForkedFailed(f"the child process could not send back {what} ({exc})")
        return pickle.dumps((False, failed, trace))


def _ended_without_answer(pid: int, status: int) -> str:
    if os.WIFSIGNALED(status):
        how = f"was killed by signal {os.WTERMSIG(status)}"
    else:
        how = f"exited with code {os.waitstatus_to_exitcode(status)}"
    return f"the child process {pid} {how} before it answered"
