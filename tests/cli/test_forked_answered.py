"""``Forked.answered``: whether the child has finished, without waiting for it; and
``serve.import_while``, which imports modules until such a check says stop."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowloom.cli import forked as forked_module
from flowloom.cli.forked import Forked
from flowloom.cli.serve import import_while


@pytest.fixture(autouse=True)
def _forking(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fork even if an earlier test left idle threads behind (see tests/cli/test_forked.py)."""
    monkeypatch.setattr(forked_module, "can_fork", lambda: True)


def test_answered_is_false_while_the_child_works_and_true_once_it_has_finished() -> None:
    with Forked.start(lambda: time.sleep(0.5) or "done") as forked:
        assert forked.forked
        assert not forked.answered()
        deadline = time.monotonic() + 30
        while not forked.answered() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert forked.answered()
        assert forked.result() == "done"
        assert forked.answered()  # and stays so once the answer is read


def test_a_child_that_failed_has_answered_too() -> None:
    def fail() -> None:
        time.sleep(0.1)
        raise ValueError("no")

    with Forked.start(fail) as forked:
        deadline = time.monotonic() + 30
        while not forked.answered() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert forked.answered()
        with pytest.raises(ValueError, match="no"):
            forked.result()


def test_work_done_here_has_always_answered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(forked_module, "can_fork", lambda: False)
    with Forked.start(lambda: 7) as forked:
        assert not forked.forked
        assert forked.answered()
        assert forked.result() == 7


@pytest.fixture
def modules(tmp_path: Path) -> Iterator[list[str]]:
    names = [f"import_while_module_{index}" for index in range(4)]
    for name in names:
        (tmp_path / f"{name}.py").write_text("LOADED = True\n")
    sys.path.insert(0, str(tmp_path))
    try:
        yield names
    finally:
        sys.path.remove(str(tmp_path))
        for name in names:
            sys.modules.pop(name, None)


def test_import_while_imports_in_order_until_done(modules: list[str]) -> None:
    checks = iter([False, False, True])

    imported = import_while(modules, done=lambda: next(checks))

    assert imported == modules[:2]
    assert [name in sys.modules for name in modules] == [True, True, False, False]


def test_import_while_imports_everything_if_never_done(modules: list[str]) -> None:
    assert import_while(modules, done=lambda: False) == modules
    assert all(name in sys.modules for name in modules)


def test_import_while_imports_nothing_once_done(modules: list[str]) -> None:
    assert import_while(modules, done=lambda: True) == []
    assert not any(name in sys.modules for name in modules)
