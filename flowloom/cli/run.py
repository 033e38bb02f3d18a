"""``flowloom run FILE.json [--input NAME=VALUE ...] [--json]``: run a definition file locally.

The file is validated first (every problem printed, one a line, exit 2, nothing written). It is
then stored as a workflow of the local account (``owner@flowloom.localhost``) in the database
from the settings, reusing the workflow of the same name (a new version when the file changed),
and run by an in-process engine: all of it through ``flowloom.Flowloom`` (``embedding.py``).
Without ``--json`` a live table shows each node's state as the events arrive, then the
outputs; with ``--json`` exactly one JSON object goes to stdout.

``flowloom resume`` drives again the runs a killed ``flowloom run`` left unfinished.

Exit codes: 0 the run COMPLETED; 1 it FAILED, was CANCELLED or waits for an answer that the
command line cannot give; 2 the file or an input is invalid.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from flowloom.embedding import Flowloom, RunOutcome, check_inputs, load_workflow
from flowloom.engine import RUN_FINISHED_EVENTS, Event
from flowloom.engine.events import DELTA
from flowloom.exceptions import DefinitionError, InputError, NotFound, Problem, ValidationFailed
from flowloom.nodes.registry import default_registry
from flowloom.settings import Settings
from flowloom.storable import find_unstorable, unstorable_reason
from flowloom.storage.enums import NodeStatus, RunStatus, TriggerKind

__all__ = ["coerce_inputs", "parse_inputs", "resume_runs", "run_file"]
EXIT_COMPLETED, EXIT_FAILED, EXIT_INVALID = 0, 1, 2

_STYLE = {
    "PENDING": "dim",
    "READY": "cyan",
    "RUNNING": "yellow",
    "SUCCEEDED": "green",
    "CACHED": "green",
    "SKIPPED": "dim",
    "FAILED": "bold red",
    "CANCELLED": "red",
    "WAITING": "magenta",
    "RETRYING": "yellow",
}


def parse_inputs(items: list[str]) -> dict[str, Any]:
    """``["k=v", ...]`` as a dict: values that parse as JSON are decoded (``k=3`` gives 3),
    others stay text (``NaN`` and ``Infinity`` too: they are not JSON). InputError naming the
    input for an item without ``=``, with an empty name, or with a name or value that cannot
    be stored (a NUL, a lone surrogate: the shell passes bytes that are not UTF-8 as those;
    a number too large for a float)."""
    inputs: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise InputError(f"--input {item!r} is not NAME=VALUE", field=item)
        name = name.strip()
        if (reason := unstorable_reason(name)) is not None:
            raise InputError(f"--input {name!r}: its name {reason}", field=repr(name)[1:-1])
        try:
            value = json.loads(text, parse_constant=_not_json)
        except ValueError:
            value = text
        if (found := find_unstorable(value)) is not None:
            raise InputError(f"--input {found.message(name)}", field=_join(name, found.field))
        inputs[name] = value
    return inputs


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def _join(name: str, field: str) -> str:
    return f"{name}.{field}" if field else name


coerce_inputs = check_inputs
"""Fit inputs to the manual triggers' fields (``flowloom.embedding.check_inputs``)."""


async def run_file(
    settings: Settings, path: Path, inputs: dict[str, Any], as_json: bool, console: Console
) -> int:
    """Validate, store and run the definition at ``path``; the process exit code."""
    registry = default_registry()
    try:
        workflow = await asyncio.to_thread(load_workflow, path, registry=registry)
        inputs = check_inputs(workflow.definition, inputs, registry)
    except ValidationFailed as exc:
        _print_problems(console, path, exc.problems)
        return EXIT_INVALID
    except NotFound:
        console.print(
            f"flowloom: error: cannot read {path}: No such file or directory", style="red"
        )
        return EXIT_INVALID
    except (DefinitionError, InputError) as exc:
        console.print(
            f"flowloom: error: {exc}", style="red", markup=False, highlight=False, soft_wrap=True
        )
        return EXIT_INVALID

    async with Flowloom(settings=settings, registry=registry) as instance:
        states: dict[str, str] = {}
        texts: dict[str, str] = {}
        with instance.events() as events:
            run_id = await instance.start(workflow, inputs, trigger_kind=TriggerKind.CLI)
            if not as_json:
                with Live(
                    _table(states, texts), console=console, refresh_per_second=12, transient=False
                ) as live:
                    follower = asyncio.create_task(_follow(events, run_id, states, texts, live))
                    await instance.engine.wait(run_id)
                    events.close()
                    await follower
                    live.update(_table(states, texts))
                if not console.is_terminal:
                    # Live leaves its last frame without a line end when the output is not a
                    # terminal (a pipe, a file): the report must start on a line of its own.
                    console.line()
            outcome = await instance.wait(run_id)
        return _report(outcome, as_json, console)


def _print_problems(console: Console, path: Path, problems: list[Problem]) -> None:
    for problem in problems:
        console.print(f"{path}: {problem}", style="red", markup=False, highlight=False)


def _report(outcome: RunOutcome, as_json: bool, console: Console) -> int:
    """Print a finished (or parked) run, as one JSON object or as text; its exit code."""
    if as_json:
        nodes = {
            node.node_id: {
                "status": node.status.value,
                "attempts": node.attempts,
                "duration_ms": node.duration_ms,
            }
            for node in outcome.nodes.values()
        }
        print(
            json.dumps(
                {
                    "run_id": outcome.run_id,
                    "status": outcome.status.value,
                    "duration_ms": outcome.duration_ms,
                    "outputs": outcome.outputs,
                    "nodes": nodes,
                    **({"error": outcome.error} if outcome.error else {}),
                }
            )
        )
    else:
        console.print(f"run {outcome.run_id}", style="bold", markup=False)
        _print_result(console, outcome)
    return EXIT_COMPLETED if outcome.ok else EXIT_FAILED


async def resume_runs(settings: Settings, as_json: bool, console: Console) -> int:
    """Drive again every unfinished run of the local database that nobody alive is driving
    (after a crash, say) and report each as ``run`` does: with ``--json`` one object per line.
    Exit 0 when every resumed run COMPLETED (or there was none), else 1."""
    async with Flowloom(settings=settings) as instance:
        run_ids = await instance.resume_unfinished()
        if not run_ids and not as_json:
            console.print("no unfinished runs to resume")
        code = EXIT_COMPLETED
        for run_id in run_ids:
            code = max(code, _report(await instance.wait(run_id), as_json, console))
        return code


async def _follow(
    events: Any, run_id: str, states: dict[str, str], texts: dict[str, str], live: Live
) -> None:
    async for event in events:
        assert isinstance(event, Event)
        if event.run_id != run_id:
            continue
        if event.type == DELTA and event.node_id is not None:
            # Streamed text as it comes (the table shows its end); a new attempt starts over.
            so_far = texts.get(event.node_id, "")[: int(event.data.get("offset", 0))]
            texts[event.node_id] = so_far + str(event.data.get("text", ""))
            live.update(_table(states, texts))
        elif event.node_id is not None and event.type.startswith("node."):
            state = event.type.removeprefix("node.").upper()
            states[event.node_id] = "RUNNING" if state == "STARTED" else state
            live.update(_table(states, texts))
        if event.type in RUN_FINISHED_EVENTS or event.type == "run.waiting":
            return


_LIVE_TEXT_CHARS = 60
"""How much of a node's streamed text the live table shows: its end."""


def _table(states: dict[str, str], texts: dict[str, str]) -> Table:
    table = Table("node", "state", title="flowloom run", title_justify="left")
    if texts:
        table.add_column("text", overflow="ellipsis", no_wrap=True)
    for node_id, state in states.items():
        style = _STYLE.get(state)
        label = escape(state.lower())
        cells = [node_id, f"[{style}]{label}[/]" if style else label]
        if texts:
            tail = " ".join(texts.get(node_id, "").split())[-_LIVE_TEXT_CHARS:]
            cells.append(escape(tail))
        table.add_row(*cells)
    return table


def _print_result(console: Console, outcome: RunOutcome) -> None:
    style = "green" if outcome.ok else "red"
    console.print(f"run {outcome.status.value.lower()}", style=f"bold {style}")
    if outcome.error:
        console.print(f"error: {outcome.error.get('message')}", style="red", markup=False)
    if outcome.status is RunStatus.WAITING:
        for node in outcome.nodes.values():
            if node.status is NodeStatus.WAITING and node.wait:
                console.print(
                    f"waiting: {node.node_id} ({node.wait.get('kind')}): {node.wait.get('reason')}",
                    markup=False,
                )
        console.print("the command line cannot answer waits; answer the run through the API")
    for node_id, ports in outcome.outputs.items():
        for port, value in ports.items():
            console.print(
                f"{node_id}.{port} = {json.dumps(value, ensure_ascii=False)}",
                markup=False,
                highlight=False,
            )
