"""The ``flowloom`` command loads its modules with the garbage collector off, and every command
runs with it on again: ``serve`` once its app has started, the others before they begin."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from flowloom.api import create_app
from flowloom.settings import Settings

EXAMPLE = Path(__file__).parents[2] / "examples" / "hello_template.json"


@pytest.fixture
def collector_off() -> Iterator[None]:
    """As ``flowloom.cli.entry`` leaves it; on again afterwards, whatever the test did."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


def test_a_command_other_than_serve_runs_with_the_collector_on(tmp_path: Path) -> None:
    code = (
        "import gc, sys\n"
        "import flowloom.cli.validate as validate\n"
        "def reporting(*args, **kwargs):\n"
        "    print('collector on:', gc.isenabled())\n"
        "    return 0\n"
        "validate.validate_file = reporting\n"
        "from flowloom.cli.entry import main\n"
        f"sys.argv = ['flowloom', 'validate', {str(EXAMPLE)!r}]\n"
        "main()\n"
    )
    env = {**os.environ, "FLOWLOOM_DATA_DIR": str(tmp_path / "data")}
    env.pop("FLOWLOOM_DATABASE_URL", None)

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "collector on: True"


async def test_the_served_app_freezes_what_the_start_made_and_turns_the_collector_on(
    tmp_path: Path, collector_off: None
) -> None:
    app: FastAPI = create_app(Settings(data_dir=tmp_path / "data"), freeze_gc=True)

    async with app.router.lifespan_context(app):
        assert gc.isenabled()
        assert gc.get_freeze_count() > 0
