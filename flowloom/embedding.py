"""Run workflows from Python: ``flowloom.run()`` once, ``flowloom.Flowloom`` for many.

::

    result = flowloom.run("flow.json", inputs={"name": "Ada"})   # an in-memory database
    result.status, result.outputs, result.nodes["greet"].outputs

    async with flowloom.Flowloom(data_dir=".flowloom") as fl:    # runs kept in a database
        result = await fl.run(definition, inputs={"name": "Ada"})

A workflow is a path to a JSON file, the decoded JSON (a dict) or a ``WorkflowDefinition``.
It is checked before anything is written: ValidationFailed lists every problem of the
definition, InputError names the input that does not fit, NotFound names a file that is not
there. It is then stored as a workflow of the local account (by name: the file's stem, else
``name=``; a new version when it changed) and run by an in-process engine, as
``flowloom run`` does (the command is built on this module). A node that fails does not raise:
the result says FAILED, names the node, and ``raise_for_status()`` turns it into an error.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self, TypeAlias

from pydantic import SecretStr, ValidationError
from sqlalchemy.engine import make_url

from flowloom.engine import Engine, Subscription
from flowloom.exceptions import (
    ConfigurationError,
    DefinitionError,
    ExecutionError,
    InputError,
    NodeFailed,
    NotFound,
    ValidationFailed,
)
from flowloom.graph import WorkflowDefinition, parse_definition, parse_definition_json, validate
from flowloom.graph.ports import PortType, json_type_name, value_matches
from flowloom.local_account import local_owner
from flowloom.nodes.registry import NodeRegistry, default_registry
from flowloom.nodes.trigger import ManualTriggerConfig
from flowloom.nodes.workflows import WorkflowCallConfig
from flowloom.settings import Settings
from flowloom.storable import find_unstorable, unstorable_reason
from flowloom.storage.blobs import MemoryBlobStore
from flowloom.storage.database import Database
from flowloom.storage.enums import NodeStatus, RunStatus, TriggerKind
from flowloom.storage.migrate import upgrade_database
from flowloom.storage.repos.runs import RunRepo
from flowloom.storage.repos.workflows import WorkflowRepo
from flowloom.storage.tables import WorkflowRun

__all__ = [
    "Flowloom",
    "LoadedWorkflow",
    "NodeOutcome",
    "RunOutcome",
    "WorkflowSource",
    "check_inputs",
    "load_workflow",
    "run",
]

DEFAULT_NAME: Final = "workflow"
"""The stored name of a workflow given as a dict or a definition without ``name=``."""
_MAX_CALL_DEPTH: Final = 8


@dataclass(frozen=True, slots=True)
class LoadedWorkflow:
    """A definition checked and ready to store: nothing about it can fail validation."""

    name: str
    """The stored workflow's name (the file's stem for a file)."""
    definition: WorkflowDefinition
    called: Mapping[str, WorkflowDefinition] = field(default_factory=dict)
    """The workflows its ``workflow.call`` nodes name that lie beside the file as
    ``NAME.json``, by name, those they call in turn included; stored before it."""
    path: Path | None = None


WorkflowSource: TypeAlias = (
    str | os.PathLike[str] | Mapping[str, Any] | WorkflowDefinition | LoadedWorkflow
)
"""What ``run`` accepts: a path to a JSON file, decoded JSON, or a definition."""


@dataclass(frozen=True, slots=True)
class NodeOutcome:
    """One node of a run, as its checkpoint says."""

    node_id: str
    type: str
    status: NodeStatus
    outputs: dict[str, Any] | None
    """What it produced, by output port; None if it produced nothing (yet)."""
    error: dict[str, Any] | None
    """Why it failed: ``message`` and more; None unless FAILED."""
    attempts: int
    duration_ms: int | None
    wait: dict[str, Any] | None = None
    """What it waits for (``kind``, ``reason``, ``payload``) while WAITING."""


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """Where a run stands once ``run`` returns: finished, or WAITING for an answer."""

    run_id: str
    status: RunStatus
    outputs: dict[str, dict[str, Any]]
    """The outputs of the graph's sink nodes: node id -> port -> value."""
    nodes: dict[str, NodeOutcome]
    """Every node of the run, by node id, in the order the run planned them."""
    error: dict[str, Any] | None
    """Why the run failed (``message``, and ``node_id`` when a node failed it); else None."""
    duration_ms: int | None

    @property
    def ok(self) -> bool:
        """The run COMPLETED."""
        return self.status is RunStatus.COMPLETED

    def raise_for_status(self) -> Self:
        """This outcome if the run COMPLETED; else NodeFailed (a node failed it) or
        ExecutionError (it failed otherwise, was cancelled, or waits for an answer)."""
        if self.ok:
            return self
        message = str((self.error or {}).get("message") or f"run {self.status.value.lower()}")
        node_id = (self.error or {}).get("node_id")
        node = self.nodes.get(node_id) if isinstance(node_id, str) else None
        if node is not None:
            raise NodeFailed(message, node_id=node.node_id, attempt=node.attempts)
        if self.status is RunStatus.WAITING:
            waiting = [n.node_id for n in self.nodes.values() if n.status is NodeStatus.WAITING]
            message = f"run waits for an answer to {', '.join(map(repr, waiting)) or 'a node'}"
        raise ExecutionError(f"run {self.run_id}: {message}")


def load_workflow(
    source: WorkflowSource, *, registry: NodeRegistry | None = None, name: str | None = None
) -> LoadedWorkflow:
    """Read, parse and validate ``source`` without touching any database.

    NotFound for a file that is not there; DefinitionError for one that cannot be read or
    holds text no database can store; ValidationFailed with every problem of the definition
    (or of a called workflow beside the file, each message starting with its file name);
    TypeError for a source of another type.
    """
    if isinstance(source, LoadedWorkflow):
        return source if name is None else dataclasses.replace(source, name=name)
    registry = registry or default_registry()
    path: Path | None = None
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        definition = parse_definition_json(_read(path))
    elif isinstance(source, WorkflowDefinition):
        definition = source
    elif isinstance(source, Mapping):
        definition = parse_definition(dict(source))
    else:
        raise TypeError(
            "a workflow is a path to a JSON file, a dict or a WorkflowDefinition, "
            f"not {type(source).__name__}"
        )
    problems = validate(definition, registry)
    if problems:
        raise ValidationFailed(problems)
    called = _called_files(path, definition, registry) if path is not None else {}
    workflow = LoadedWorkflow(
        name=name or (path.stem if path is not None else DEFAULT_NAME),
        definition=definition,
        called=called,
        path=path,
    )
    if (problem := _unstorable(workflow)) is not None:
        raise DefinitionError(problem)
    return workflow


def check_inputs(
    definition: WorkflowDefinition, inputs: Mapping[str, Any], registry: NodeRegistry
) -> dict[str, Any]:
    """The run's inputs fitted to the manual triggers' fields, or InputError naming the input.

    An input no trigger declares is refused (a misspelt name would otherwise be ignored); a
    text field keeps text as given and receives any other value as its JSON text (a command
    line's ``zip=01234`` stays ``"01234"``); any other field must receive a value of its type.
    A required input that is missing fails the run itself, so that the run records why.
    """
    if not isinstance(inputs, Mapping):
        raise InputError(f"inputs are a mapping of names to values, not {type(inputs).__name__}")
    fields: dict[str, str] = {}
    for node in definition.nodes:
        if node.type == "trigger.manual":
            config = registry.get(node.type).parse_config(node.data.config)
            assert isinstance(config, ManualTriggerConfig)
            fields.update((item.name, item.type) for item in config.fields)
    checked: dict[str, Any] = {}
    for name, value in inputs.items():
        if not isinstance(name, str):
            raise InputError(f"input names are text, not {name!r}", field=repr(name))
        kind = fields.get(name)
        if kind is None:
            takes = ", ".join(map(repr, sorted(fields))) if fields else "no inputs"
            raise InputError(f"unknown input {name!r}: this workflow takes {takes}", field=name)
        if kind == "string":
            checked[name] = value if isinstance(value, str) else json.dumps(value)
        elif kind == "any" or value_matches(PortType(kind), value):
            checked[name] = value
        else:
            raise InputError(
                f"input {name!r} should be {kind}, got {json_type_name(value)} {value!r}",
                field=name,
            )
    return checked


class Flowloom:
    """flowloom in this process: a database, an engine, and the local account's workflows.

    ``Flowloom()`` keeps everything in memory, gone when it closes;
    ``Flowloom(data_dir=...)`` keeps runs in the SQLite file there (as ``flowloom serve``
    and ``flowloom run`` with the same data dir do); ``Flowloom(database_url=...)`` uses that
    database (``sqlite:///PATH`` or ``postgresql://...``), with blobs and the secret key still
    in the data dir (``./.flowloom`` unless given); ``settings=`` gives every setting at once.
    Other settings (provider keys, limits) come from ``FLOWLOOM_*`` variables. ``registry``
    holds the node types to run (the built-ins and the installed plugins by default).

    Use it as ``async with``, or ``await open()`` and ``await close()``.
    """

    def __init__(
        self,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        database_url: str | None = None,
        settings: Settings | None = None,
        registry: NodeRegistry | None = None,
    ) -> None:
        if settings is not None and (data_dir is not None or database_url is not None):
            raise ConfigurationError("give settings, or data_dir and database_url: not both")
        self.settings = settings or _settings(data_dir, database_url)
        self.registry = registry or default_registry()
        self._db: Database | None = None
        self._engine: Engine | None = None
        self._owner_id = ""

    @property
    def engine(self) -> Engine:
        """The engine running this instance's runs (open first)."""
        if self._engine is None:
            raise RuntimeError("this Flowloom is not open: use `async with` or `await open()`")
        return self._engine

    @property
    def in_memory(self) -> bool:
        """Runs live only as long as this instance is open."""
        return self._db.in_memory if self._db is not None else _is_memory(self.settings)

    async def open(self) -> Self:
        """Connect, migrate the database if it is behind, start the engine."""
        if self._engine is not None:
            return self
        if _is_memory(self.settings):
            # from_settings would create the data dir, which a database in memory never uses.
            db = Database(
                self.settings.resolved_database_url,
                sqlite_busy_timeout_ms=self.settings.sqlite_busy_timeout_ms,
                pool_size=self.settings.database_pool_size,
            )
        else:
            db = Database.from_settings(self.settings)
        try:
            await upgrade_database(db)
            async with db.write() as session:
                self._owner_id = (await local_owner(session)).id
            extra: dict[str, Any] = {"blobs": MemoryBlobStore()} if db.in_memory else {}
            self._engine = Engine.from_settings(db, self.settings, self.registry, **extra)
        except BaseException:
            await db.dispose()
            raise
        self._db = db
        return self

    async def close(self) -> None:
        """Stop the engine (runs still going are resumed by the next one) and disconnect."""
        engine, db, self._engine, self._db = self._engine, self._db, None, None
        try:
            if engine is not None:
                await engine.close()
        finally:
            if db is not None:
                await db.dispose()

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def run(
        self,
        workflow: WorkflowSource,
        inputs: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        timeout_s: float | None = None,
    ) -> RunOutcome:
        """Check, store and run ``workflow`` with ``inputs``; the outcome once it finished or
        waits for an answer. Errors as ``load_workflow`` and ``check_inputs`` (nothing is
        written then); a failing node gives a FAILED outcome, not an exception."""
        run_id = await self.start(workflow, inputs, name=name, timeout_s=timeout_s)
        return await self.wait(run_id)

    async def start(
        self,
        workflow: WorkflowSource,
        inputs: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        timeout_s: float | None = None,
        trigger_kind: TriggerKind = TriggerKind.MANUAL,
    ) -> str:
        """As ``run``, but return the run's id once it started (``wait`` for its outcome)."""
        engine = self.engine
        loaded = load_workflow(workflow, registry=self.registry, name=name)
        checked = check_inputs(loaded.definition, inputs or {}, self.registry)
        for called_name, called in loaded.called.items():
            await self._store(called_name, called)
        workflow_id = await self._store(loaded.name, loaded.definition)
        return await engine.start_run(
            owner_id=self._owner_id,
            workflow_id=workflow_id,
            inputs=checked,
            trigger_kind=trigger_kind,
            timeout_s=timeout_s,
        )

    async def wait(self, run_id: str) -> RunOutcome:
        """The run's outcome once it finished or waits for an answer."""
        result = await self.engine.wait(run_id)
        assert self._db is not None
        async with self._db.read() as session:
            # Resumed runs may be anybody's, not only the local account's.
            run = await session.get(WorkflowRun, run_id)
            if run is None:
                raise NotFound("run", run_id)
            _, rows = await RunRepo(session, owner_id=run.user_id).get_with_nodes(run_id=run_id)
        return RunOutcome(
            run_id=result.run_id,
            status=result.status,
            outputs=result.outputs or {},
            nodes={
                row.node_id: NodeOutcome(
                    node_id=row.node_id,
                    type=row.node_type,
                    status=NodeStatus(row.status),
                    outputs=row.outputs,
                    error=row.error,
                    attempts=len(row.attempts),
                    duration_ms=row.duration_ms,
                    wait=row.wait,
                )
                for row in rows
            },
            error=result.error,
            duration_ms=result.duration_ms,
        )

    async def answer(self, run_id: str, node_id: str, answer: Mapping[str, Any]) -> RunOutcome:
        """Answer a WAITING node (``{"approved": true}`` for an approval); the run goes on,
        and this returns its next outcome. Conflict if the node is not waiting."""
        await self.engine.answer(run_id, node_id, answer)
        return await self.wait(run_id)

    async def resume_unfinished(self) -> list[str]:
        """Drive again the runs a killed process left unfinished; their ids (``wait`` each)."""
        return await self.engine.resume_unfinished()

    def events(self) -> Subscription:
        """Every run's events from now on, read with ``async for`` (``close()`` to stop);
        subscribe before ``start`` to see a run's first ones."""
        return self.engine.bus.subscribe()

    async def _store(self, name: str, definition: WorkflowDefinition) -> str:
        assert self._db is not None
        data = definition.to_json()
        async with self._db.write() as session:
            workflows = WorkflowRepo(session, owner_id=self._owner_id)
            stored = await workflows.find_by_name(name=name)
            if stored is None:
                stored = await workflows.create(name=name, definition=data)
            elif stored.definition != data:
                stored = await workflows.update(workflow_id=stored.id, definition=data)
            return stored.id


def run(
    workflow: WorkflowSource,
    inputs: Mapping[str, Any] | None = None,
    *,
    name: str | None = None,
    timeout_s: float | None = None,
    registry: NodeRegistry | None = None,
) -> RunOutcome:
    """Run ``workflow`` once on an in-memory database and return its outcome (blocking).

    As ``Flowloom().run(...)``, which async code uses instead (this starts an event loop).
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError(
            "flowloom.run() blocks and cannot be called from async code; "
            "use `async with flowloom.Flowloom() as fl: await fl.run(...)`"
        )
    loaded = load_workflow(workflow, registry=registry, name=name)

    async def run_once() -> RunOutcome:
        async with Flowloom(registry=registry) as instance:
            return await instance.run(loaded, inputs, timeout_s=timeout_s)

    return asyncio.run(run_once())


def _settings(data_dir: str | os.PathLike[str] | None, database_url: str | None) -> Settings:
    given: dict[str, Any] = {}
    if data_dir is not None:
        given["data_dir"] = Path(data_dir)
    given["database_url"] = database_url or ("sqlite://" if data_dir is None else None)
    try:
        settings = Settings(**given)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "settings"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigurationError(f"{where}: {message}") from None
    if _is_memory(settings) and settings.secret_key is None and settings.credentials_key is None:
        # Credentials stored in memory die with it: a key of its own spares creating a data
        # dir only to keep a key file in it.
        key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
        settings = settings.model_copy(update={"secret_key": SecretStr(key)})
    return settings


def _is_memory(settings: Settings) -> bool:
    url = make_url(settings.resolved_database_url)
    return url.drivername.startswith("sqlite") and url.database in (None, "", ":memory:")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise NotFound("workflow file", str(path)) from None
    except OSError as exc:
        raise DefinitionError(f"cannot read {path}: {exc.strerror}") from None


def _called_files(
    path: Path, definition: WorkflowDefinition, registry: NodeRegistry, depth: int = 0
) -> dict[str, WorkflowDefinition]:
    """The workflows that ``workflow.call`` nodes name and that lie beside ``path`` as
    ``NAME.json``, validated, by name, those they call in turn included. A name with no file
    is left to the database: the run fails on it if the local account has no such workflow."""
    found: dict[str, WorkflowDefinition] = {}
    for node in definition.nodes:
        if node.type != "workflow.call" or depth > _MAX_CALL_DEPTH:
            continue
        config = registry.get(node.type).parse_config(node.data.config)
        name = config.workflow_name if isinstance(config, WorkflowCallConfig) else None
        if name is None or name in found:
            continue
        sibling = path.parent / f"{name}.json"
        if sibling == path or not sibling.is_file():
            continue
        called = parse_definition_json(_read(sibling))
        problems = validate(called, registry)
        if problems:
            raise ValidationFailed(
                [dataclasses.replace(p, message=f"{sibling.name}: {p.message}") for p in problems]
            )
        found[name] = called
        found.update(_called_files(sibling, called, registry, depth + 1))
    return found


def _unstorable(workflow: LoadedWorkflow) -> str | None:
    """What in the workflow (or the ones it calls) no database can hold, as one line naming
    the file (or the workflow) and the field; None when all of it can be stored."""
    every = {workflow.name: workflow.definition, **workflow.called}
    for name, definition in every.items():
        if workflow.path is None:
            where, what = f"workflow {name!r}", "its name"
        else:
            main = name == workflow.name
            file = workflow.path if main else workflow.path.with_name(f"{name}.json")
            where, what = repr(str(file))[1:-1], "the file's name, the workflow's,"
        if (reason := unstorable_reason(name)) is not None:
            return f"{where}: {what} {reason}"
        if (found := find_unstorable(definition.to_json())) is not None:
            return f"{where}: {found.message()}"
    return None
