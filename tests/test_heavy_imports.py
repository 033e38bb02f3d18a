"""Two threads importing parts of one package at once, as the start-up warm-up and a first
request do: through ``ensure_imported`` both get whole modules.

The package is made for the test: its ``__init__`` pauses (as a big SDK's takes hundreds of
milliseconds) and then imports a submodule that itself needs a name the ``__init__`` defined.
A second thread importing that submodule by its dotted name while the first is inside the
``__init__`` is the race; bare ``import`` loses it (one thread gets a partially initialized
module), ``ensure_imported`` does not.
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from loopticks import LoopTicks

from flowloom.heavy_imports import ensure_imported, imported, is_imported

_count = 0


@pytest.fixture
def package(tmp_path: Path) -> Iterator[str]:
    """The name of a fresh package whose ``__init__`` signals ``started`` and then pauses."""
    global _count
    _count += 1
    name = f"slow_sdk_{_count}"
    root = tmp_path / name
    root.mkdir()
    (root / "__init__.py").write_text(
        "import time\n"
        "VERSION = '1.0'\n"
        f"import {name}_gate\n"
        f"{name}_gate.started.set()\n"
        "time.sleep(0.3)\n"
        f"from {name}.client import Client\n"
    )
    (root / "client.py").write_text(f"from {name} import VERSION\nClient = ('client', VERSION)\n")
    (tmp_path / f"{name}_gate.py").write_text("import threading\nstarted = threading.Event()\n")
    sys.path.insert(0, str(tmp_path))
    importlib.import_module(f"{name}_gate")  # loaded before the race begins
    try:
        yield name
    finally:
        sys.path.remove(str(tmp_path))
        for module in [m for m in sys.modules if m.startswith(name)]:
            del sys.modules[module]


def _in_thread(name: str, errors: list[BaseException]) -> threading.Thread:
    def work() -> None:
        try:
            ensure_imported(name)
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    return thread


def _wait_until_inside(package: str) -> None:
    assert sys.modules[f"{package}_gate"].started.wait(5)


def test_a_submodule_imported_while_its_package_is_being_imported_comes_whole(
    package: str,
) -> None:
    errors: list[BaseException] = []
    warming = _in_thread(package, errors)
    _wait_until_inside(package)

    ensure_imported(f"{package}.client")
    warming.join(5)

    assert errors == []
    assert sys.modules[f"{package}.client"].Client == ("client", "1.0")
    assert sys.modules[package].Client == ("client", "1.0")
    assert is_imported(package)
    assert is_imported(f"{package}.client")


async def test_imported_waits_off_the_loop_for_an_import_under_way(package: str) -> None:
    errors: list[BaseException] = []
    warming = _in_thread(package, errors)
    _wait_until_inside(package)
    assert not is_imported(package)
    async with LoopTicks() as ticks:
        await imported(f"{package}.client")
    warming.join(5)

    assert errors == []
    assert sys.modules[f"{package}.client"].Client == ("client", "1.0")
    assert ticks.count >= 5, "the loop went on while the import finished on a thread"


def test_a_missing_module_raises_import_error() -> None:
    with pytest.raises(ImportError, match="no_such_module_anywhere"):
        ensure_imported("no_such_module_anywhere")
    assert not is_imported("no_such_module_anywhere")
