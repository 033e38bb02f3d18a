"""Node plugins: the example package installed for real, and plugins that are broken."""

from __future__ import annotations

import importlib
import json
import logging
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import entry_points
from pathlib import Path
from textwrap import dedent
from typing import Any

import httpx
import pytest

import flowloom
from flowloom.api import create_app
from flowloom.nodes.registry import (
    BUILTIN_NODES,
    Plugins,
    default_registry,
    discover_plugins,
    installed_plugins,
)
from flowloom.settings import Settings
from flowloom.testing import run_node

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_PLUGIN = ROOT / "examples" / "flowloom-plugin-example"


@contextmanager
def on_path(folder: Path) -> Iterator[None]:
    """Distributions and modules in ``folder`` are installed for the duration: importable,
    and their entry points seen by a fresh plugin discovery."""
    before = set(sys.modules)
    sys.path.insert(0, str(folder))
    importlib.invalidate_caches()
    installed_plugins.cache_clear()
    try:
        yield
    finally:
        sys.path.remove(str(folder))
        for name in set(sys.modules) - before:
            if (getattr(sys.modules[name], "__file__", None) or "").startswith(str(folder)):
                del sys.modules[name]
        importlib.invalidate_caches()
        installed_plugins.cache_clear()


@pytest.fixture(scope="module")
def example_installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plugin built and installed (as ``pip install`` does) into a folder."""
    target = tmp_path_factory.mktemp("site-packages")
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"),
            *("--no-build-isolation", "--no-index", "--target", str(target)),
            str(EXAMPLE_PLUGIN),
        ],
        check=True,
        capture_output=True,
    )
    return target


def counting_workflow(top: int = 2) -> dict[str, Any]:
    return {
        "nodes": [
            {
                "id": "start",
                "type": "trigger.manual",
                "data": {"config": {"fields": [{"name": "text", "type": "string"}]}},
            },
            {"id": "count", "type": "text.word_count", "data": {"config": {"top": top}}},
        ],
        "edges": [
            {
                "id": "e",
                "source": "start",
                "sourceHandle": "text",
                "target": "count",
                "targetHandle": "text",
            }
        ],
    }


def test_the_installed_example_is_listed_and_runs(example_installed: Path) -> None:
    with on_path(example_installed):
        registry = default_registry()
        assert "text.word_count" in registry
        (schema,) = [s for s in registry.schemas() if s["type"] == "text.word_count"]
        assert schema["category"] == "ACTION"
        assert [port["name"] for port in schema["inputs"]] == ["text"]
        assert {"words", "characters", "lines", "top_words"} == {
            port["name"] for port in schema["outputs"]
        }
        assert "top" in schema["config_schema"]["properties"]

        result = flowloom.run(counting_workflow(), inputs={"text": "The cat saw the other cat."})

    assert result.ok, result.error
    assert result.outputs["count"] == {
        "words": 6,
        "characters": 26,
        "lines": 1,
        "top_words": [{"word": "cat", "count": 2}, {"word": "the", "count": 2}],
    }
    assert "text.word_count" not in default_registry(), "gone once uninstalled"


async def test_the_example_runs_alone_with_the_shipped_fakes(example_installed: Path) -> None:
    with on_path(example_installed):
        result = await run_node(
            "text.word_count", {"top": 1, "min_length": 4}, {"text": "a b c dddd"}
        )
    assert result.outputs["top_words"] == [{"word": "dddd", "count": 1}]


def test_flowloom_run_in_a_new_process_finds_the_plugin(
    example_installed: Path, tmp_path: Path
) -> None:
    path = tmp_path / "count.json"
    path.write_text(json.dumps(counting_workflow(top=1)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(example_installed), str(ROOT)])}
    command = [sys.executable, "-m", "flowloom.cli.main", "--data-dir", str(tmp_path / "d")]
    done = subprocess.run(
        [*command, "run", str(path), "--input", "text=to be or not to be", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert printed["outputs"]["count"]["words"] == 6
    assert printed["outputs"]["count"]["top_words"] == [{"word": "be", "count": 2}]


async def test_the_api_lists_the_plugin_beside_the_built_ins(
    example_installed: Path, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path, secret_key=secrets.token_urlsafe(32))
    with on_path(example_installed):
        app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://flowloom.test") as client,
    ):
        account = {"email": "plugins@example.com", "password": "a long pass phrase 1"}
        assert (await client.post("/api/v1/auth/register", json=account)).status_code == 201
        assert (await client.post("/api/v1/auth/login", json=account)).status_code == 200
        listed = await client.get("/api/v1/node-types")
        one = await client.get("/api/v1/node-types/text.word_count")
    assert listed.status_code == 200, listed.text
    types = {item["type"] for item in listed.json()["items"]}
    assert {"text.word_count", "text.join", "trigger.manual"} <= types
    assert one.status_code == 200, one.text
    # Its own name, icon (SVG path data) and colour, as the palette and the canvas show them.
    assert one.json()["display_name"] == "Count words"
    assert one.json()["icon"].startswith("M4 6h10")
    assert one.json()["color"] == "#0f766e"


BROKEN_PLUGINS = '''
    import flowloom


    class Counter(flowloom.Node[flowloom.NodeConfig]):
        """Emit one."""

        type_name = "demo.counter"
        category = flowloom.Category.ACTION

        def outputs(self, config):
            return [flowloom.Port("one", flowloom.PortType.INTEGER)]

        async def run(self, ctx, config, inputs):
            return flowloom.NodeResult({"one": 1})


    class Shadow(Counter):
        type_name = "text.join"


    class BadName(Counter):
        type_name = "Not A Name"


    class Unfinished(flowloom.Node[flowloom.NodeConfig]):
        type_name = "demo.unfinished"
        category = flowloom.Category.ACTION


    NOT_A_NODE = "just text"
    SEVERAL = [Counter, Shadow]
'''

ENTRY_POINTS = """
    [flowloom.nodes]
    counter = demo_plugins:Counter
    shadow = demo_plugins:Shadow
    missing = demo_plugins_gone:Node
    raising = demo_plugins_raising:Node
    exiting = demo_plugins_exiting:Node
    text = demo_plugins:NOT_A_NODE
    bad_name = demo_plugins:BadName
    unfinished = demo_plugins:Unfinished
    several = demo_plugins:SEVERAL
"""


@pytest.fixture
def broken_installed(tmp_path: Path) -> Path:
    """A distribution, as installers lay it out, whose entry points are mostly broken."""
    (tmp_path / "demo_plugins.py").write_text(dedent(BROKEN_PLUGINS))
    (tmp_path / "demo_plugins_raising.py").write_text("raise RuntimeError('boom at import')\n")
    (tmp_path / "demo_plugins_exiting.py").write_text("raise SystemExit(3)\n")
    info = tmp_path / "demo_plugins-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: demo-plugins\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(dedent(ENTRY_POINTS))
    return tmp_path


def test_broken_plugins_are_logged_and_skipped_and_the_rest_kept(
    broken_installed: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with on_path(broken_installed), caplog.at_level(logging.WARNING, "flowloom.plugins"):
        registry = default_registry()
        result = flowloom.run(
            {"nodes": [{"id": "c", "type": "demo.counter", "data": {"config": {}}}], "edges": []}
        )

    assert "demo.counter" in registry
    assert registry.get("text.join").__class__.__module__ == "flowloom.nodes.text"
    assert result.outputs == {"c": {"one": 1}}
    warnings = [r.getMessage() for r in caplog.records if r.name == "flowloom.plugins"]
    source = "(from demo-plugins 1.0) skipped: "
    expected = [
        f"'shadow = demo_plugins:Shadow' {source}Shadow: node type 'text.join' is taken by "
        "a built-in",
        f"'missing = demo_plugins_gone:Node' {source}cannot import it: ModuleNotFoundError: "
        "No module named 'demo_plugins_gone'",
        f"'raising = demo_plugins_raising:Node' {source}cannot import it: RuntimeError: "
        "boom at import",
        f"'exiting = demo_plugins_exiting:Node' {source}cannot import it: SystemExit: 3",
        f"'text = demo_plugins:NOT_A_NODE' {source}'just text' is not a Node subclass",
        f"'bad_name = demo_plugins:BadName' {source}BadName.type_name must look like "
        "'family.name', got 'Not A Name'",
        f"'unfinished = demo_plugins:Unfinished' {source}Unfinished: TypeError: Can't "
        "instantiate abstract class Unfinished",
        f"'several = demo_plugins:SEVERAL' {source}Counter: node type 'demo.counter' is taken "
        "by the plugin 'counter = demo_plugins:Counter'",
        f"'several = demo_plugins:SEVERAL' {source}Shadow: node type 'text.join' is taken by "
        "a built-in",
    ]
    assert len(warnings) == len(expected), warnings
    for message, start in zip(sorted(warnings), sorted(expected), strict=True):
        assert message.startswith(f"node plugin {start}"), message


def test_discovery_is_once_per_process_and_reads_given_entry_points(
    broken_installed: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with on_path(broken_installed), caplog.at_level(logging.WARNING, "flowloom.plugins"):
        default_registry()
        default_registry()
        assert default_registry(plugins=False).names() == sorted(
            node.type_name for node in BUILTIN_NODES
        )
        (counter,) = entry_points(group="flowloom.nodes", name="counter")
        assert [node.type_name for node in discover_plugins([counter]).nodes] == ["demo.counter"]
    assert sum("'shadow = " in r.getMessage() for r in caplog.records) == 1, "logged once"
    assert discover_plugins([]) == Plugins()
