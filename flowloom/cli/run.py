"""``flowloom run FILE.json [--input NAME=VALUE ...] [--json]``: run a definition file locally.

The file is validated first (every problem printed, one a line, exit 2, nothing written). It is
then stored as a workflow of the local account (``owner@flowloom.localhost``) in the database
from the settings, reusing the workflow of the same name (a new version when the file changed),
and run by an in-process engine. Without ``--json`` a live table shows each node's state as the
events arrive, then the outputs; with ``--json`` exactly one JSON object goes to stdout.

``flowloom resume`` drives again the runs a killed ``flowloom run`` left unfinished.

Exit codes: 0 the run COMPLETED; 1 it FAILED, was CANCELLED or waits for an answer that the
command line cannot give; 2 the file or an input is invalid.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from flowloom.engine import RUN_FINISHED_EVENTS, Engine, Event, RunResult
from flowloom.exceptions import InputError, Problem, ValidationFailed
from flowloom.graph import WorkflowDefinition, parse_definition_json, validate
from flowloom.graph.ports import PortType, json_type_name, value_matches
from flowloom.local_account import local_owner
from flowloom.nodes.registry import NodeRegistry, default_registry
from flowloom.nodes.workflows import WorkflowCallConfig
from flowloom.settings import Settings
from flowloom.storable import find_unstorable, unstorable_reason
from flowloom.storage.database import Database
from flowloom.storage.enums import RunStatus, TriggerKind
from flowloom.storage.migrate import upgrade_database
from flowloom.storage.repos.runs import RunRepo
from flowloom.storage.repos.workflows import WorkflowRepo
from flowloom.storage.tables import WorkflowRun

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


def coerce_inputs(
    definition: WorkflowDefinition, inputs: dict[str, Any], registry: NodeRegistry
) -> dict[str, Any]:
    """Fit command-line inputs to the manual triggers' field types.

    A text field keeps the text as typed (``--input zip=01234`` stays ``"01234"``); any other
    field must receive a value of its type, else InputError naming the field.
    """
    fields: dict[str, str] = {}
    for node in definition.nodes:
        if node.type == "trigger.manual":
            config = registry.get(node.type).parse_config(node.data.config)
            for field in config.fields:
                fields[field.name] = field.type
    coerced = dict(inputs)
    for name, value in inputs.items():
        kind = fields.get(name)
        if kind is None or kind == "any":
            continue
        if kind == "string":
            coerced[name] = value if isinstance(value, str) else json.dumps(value)
        elif not value_matches(PortType("list" if kind == "list" else kind), value):
            raise InputError(
                f"input {name!r} should be {kind}, got {json_type_name(value)} {value!r}",
                field=name,
            )
    return coerced


async def run_file(
    settings: Settings, path: Path, inputs: dict[str, Any], as_json: bool, console: Console
) -> int:
    """Validate, store and run the definition at ``path``; the process exit code."""
    registry = default_registry()
    try:
        text = await asyncio.to_thread(path.read_bytes)
    except OSError as exc:
        console.print(f"flowloom: error: cannot read {path}: {exc.strerror}", style="red")
        return EXIT_INVALID
    try:
        definition = parse_definition_json(text)
        problems = validate(definition, registry)
        if problems:
            raise ValidationFailed(problems)
        inputs = coerce_inputs(definition, inputs, registry)
    except ValidationFailed as exc:
        _print_problems(console, path, exc.problems)
        return EXIT_INVALID
    except InputError as exc:
        console.print(f"flowloom: error: {exc}", style="red", markup=False)
        return EXIT_INVALID

    try:
        called = _called_files(path, definition, registry)
    except ValidationFailed as exc:
        _print_problems(console, path, exc.problems)
        return EXIT_INVALID
    if (problem := _unstorable(path, {path.stem: definition, **called})) is not None:
        console.print(
            f"flowloom: error: {problem}",
            style="red",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        return EXIT_INVALID

    db = Database.from_settings(settings)
    try:
        await upgrade_database(db)
        for name, called_definition in called.items():
            await _store(db, name, called_definition.to_json())
        owner_id, workflow_id = await _store(db, path.stem, definition.to_json())
        engine = Engine.from_settings(db, settings, registry)
        try:
            return await _run(engine, db, owner_id, workflow_id, inputs, as_json, console)
        finally:
            await engine.close()
    finally:
        await db.dispose()


def _called_files(
    path: Path, definition: WorkflowDefinition, registry: NodeRegistry, depth: int = 0
) -> dict[str, WorkflowDefinition]:
    """The workflows that ``workflow.call`` nodes name and that lie beside ``path`` as
    ``NAME.json``, validated, by name, those they call in turn included. A name with no file
    is left to the database: the run fails on it if the local account has no such workflow."""
    found: dict[str, WorkflowDefinition] = {}
    for node in definition.nodes:
        if node.type != "workflow.call" or depth > 8:
            continue
        config = registry.get(node.type).parse_config(node.data.config)
        name = config.workflow_name if isinstance(config, WorkflowCallConfig) else None
        if name is None or name in found:
            continue
        sibling = path.parent / f"{name}.json"
        if sibling == path or not sibling.is_file():
            continue
        called = parse_definition_json(sibling.read_bytes())
        problems = validate(called, registry)
        if problems:
            raise ValidationFailed(
                [dataclasses.replace(p, message=f"{sibling.name}: {p.message}") for p in problems]
            )
        found[name] = called
        found.update(_called_files(sibling, called, registry, depth + 1))
    return found


def _unstorable(path: Path, definitions: dict[str, WorkflowDefinition]) -> str | None:
    """What in the workflows to store (by name: the file's stem) the database cannot hold,
    as one line naming the file and the field; None when all of it can be stored."""
    for name, definition in definitions.items():
        file = path.with_name(f"{name}.json") if name != path.stem else path
        where = repr(str(file))[1:-1]
        if (reason := unstorable_reason(name)) is not None:
            return f"{where}: the file's name, the workflow's, {reason}"
        if (found := find_unstorable(definition.to_json())) is not None:
            return f"{where}: {found.message()}"
    return None


def _print_problems(console: Console, path: Path, problems: list[Problem]) -> None:
    for problem in problems:
        console.print(f"{path}: {problem}", style="red", markup=False, highlight=False)


async def _store(db: Database, name: str, definition: dict[str, Any]) -> tuple[str, str]:
    async with db.write() as session:
        owner = await local_owner(session)
        workflows = WorkflowRepo(session, owner_id=owner.id)
        workflow = await workflows.find_by_name(name=name)
        if workflow is None:
            workflow = await workflows.create(name=name, definition=definition)
        elif workflow.definition != definition:
            workflow = await workflows.update(workflow_id=workflow.id, definition=definition)
        return owner.id, workflow.id


async def _run(
    engine: Engine,
    db: Database,
    owner_id: str,
    workflow_id: str,
    inputs: dict[str, Any],
    as_json: bool,
    console: Console,
) -> int:
    states: dict[str, str] = {}
    with engine.bus.subscribe() as events:
        run_id = await engine.start_run(
            owner_id=owner_id, workflow_id=workflow_id, inputs=inputs, trigger_kind=TriggerKind.CLI
        )
        if as_json:
            result = await engine.wait(run_id)
        else:
            with Live(
                _table(states), console=console, refresh_per_second=12, transient=False
            ) as live:
                follower = asyncio.create_task(_follow(events, run_id, states, live))
                result = await engine.wait(run_id)
                events.close()
                await follower
                live.update(_table(states))
            if not console.is_terminal:
                # Live leaves its last frame without a line end when the output is not a
                # terminal (a pipe, a file): the report must start on a line of its own.
                console.line()
    return await _report(db, owner_id, result, as_json, console)


async def _report(
    db: Database, owner_id: str, result: RunResult, as_json: bool, console: Console
) -> int:
    """Print a finished (or parked) run, as one JSON object or as text; its exit code."""
    async with db.read() as session:
        _, rows = await RunRepo(session, owner_id=owner_id).get_with_nodes(run_id=result.run_id)
    nodes = {
        row.node_id: {
            "status": row.status,
            "attempts": len(row.attempts),
            "duration_ms": row.duration_ms,
        }
        for row in rows
    }
    if as_json:
        print(
            json.dumps(
                {
                    "run_id": result.run_id,
                    "status": result.status.value,
                    "duration_ms": result.duration_ms,
                    "outputs": result.outputs or {},
                    "nodes": nodes,
                    **({"error": result.error} if result.error else {}),
                }
            )
        )
    else:
        console.print(f"run {result.run_id}", style="bold", markup=False)
        _print_result(console, result.status, result.outputs, result.error, rows)
    return EXIT_COMPLETED if result.status is RunStatus.COMPLETED else EXIT_FAILED


async def resume_runs(settings: Settings, as_json: bool, console: Console) -> int:
    """Drive again every unfinished run of the local database that nobody alive is driving
    (after a crash, say) and report each as ``run`` does: with ``--json`` one object per line.
    Exit 0 when every resumed run COMPLETED (or there was none), else 1."""
    db = Database.from_settings(settings)
    try:
        await upgrade_database(db)
        engine = Engine.from_settings(db, settings, default_registry())
        try:
            run_ids = await engine.resume_unfinished()
            if not run_ids and not as_json:
                console.print("no unfinished runs to resume")
            code = EXIT_COMPLETED
            for run_id in run_ids:
                result = await engine.wait(run_id)
                async with db.read() as session:
                    run = await session.get(WorkflowRun, run_id)
                    assert run is not None
                    owner_id = run.user_id
                code = max(code, await _report(db, owner_id, result, as_json, console))
            return code
        finally:
            await engine.close()
    finally:
        await db.dispose()


async def _follow(events: Any, run_id: str, states: dict[str, str], live: Live) -> None:
    async for event in events:
        assert isinstance(event, Event)
        if event.run_id != run_id:
            continue
        if event.node_id is not None and event.type.startswith("node."):
            states[event.node_id] = event.type.removeprefix("node.").upper()
            live.update(_table(states))
        if event.type in RUN_FINISHED_EVENTS or event.type == "run.waiting":
            return


def _table(states: dict[str, str]) -> Table:
    table = Table("node", "state", title="flowloom run", title_justify="left")
    for node_id, state in states.items():
        table.add_row(node_id, f"[{_STYLE.get(state, '')}]{state.lower()}[/]")
    return table


def _print_result(
    console: Console,
    status: RunStatus,
    outputs: dict[str, Any] | None,
    error: dict[str, Any] | None,
    rows: list[Any],
) -> None:
    style = "green" if status is RunStatus.COMPLETED else "red"
    console.print(f"run {status.value.lower()}", style=f"bold {style}")
    if error:
        console.print(f"error: {error.get('message')}", style="red", markup=False)
    if status is RunStatus.WAITING:
        for row in rows:
            if row.status == "WAITING" and row.wait:
                console.print(
                    f"waiting: {row.node_id} ({row.wait.get('kind')}): {row.wait.get('reason')}",
                    markup=False,
                )
        console.print("the command line cannot answer waits; answer the run through the API")
    for node_id, ports in (outputs or {}).items():
        for port, value in ports.items():
            console.print(
                f"{node_id}.{port} = {json.dumps(value, ensure_ascii=False)}",
                markup=False,
                highlight=False,
            )
