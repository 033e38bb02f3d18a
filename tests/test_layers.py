"""The package layering contract, checked over flowloom/ with ``ast`` (no import runs).

Layers, lowest first; a module may import its own layer and the layers its row names:

    core        exceptions, ids, settings, storable, rates, passwords, heavy_imports,
                field_docs, native_heap
    graph       the workflow definition and its validation
    providers   LLM provider clients
    clients     pure clients: the vault, MCP, OAuth (no database, no nodes)
    storage     tables, repositories, migrations (no engine, no nodes, no integrations)
    stores      database-backed integration stores (credentials, MCP, OAuth, usage)
    billing     plans and quotas
    nodes       the node contract, the built-in node types, and the agent loop and its
                tools that ``ai.agent`` runs (no storage, no engine)
    engine      scheduling and driving runs
    services    agent threads, generation, triggers, example workflows, the local account
    entry       api, cli, worker, webui, embedding, ``flowloom`` itself

Every import counts, also one under ``TYPE_CHECKING`` or inside a function: a layer must not
know a higher one, even by name. ``KNOWN_EXCEPTIONS`` names each edge that breaks the contract
today and why; it only shrinks: an edge that no longer exists must leave it, and a new one
fails here with the list of offending imports. Module cycles likewise: none at import time,
and the cycles through deferred or type-only imports are exactly ``KNOWN_CYCLES``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "flowloom"

ORDER = [
    "core",
    "graph",
    "providers",
    "clients",
    "storage",
    "stores",
    "billing",
    "nodes",
    "engine",
    "services",
    "entry",
]

LAYER_OF = {
    "flowloom": "entry",
    "flowloom.exceptions": "core",
    "flowloom.ids": "core",
    "flowloom.settings": "core",
    "flowloom.storable": "core",
    "flowloom.rates": "core",
    "flowloom.passwords": "core",
    "flowloom.heavy_imports": "core",
    "flowloom.field_docs": "core",
    "flowloom.native_heap": "core",
    "flowloom.graph": "graph",
    "flowloom.providers": "providers",
    "flowloom.integrations": "clients",
    "flowloom.integrations.credentials": "stores",
    "flowloom.integrations.mcp_store": "stores",
    "flowloom.integrations.oauth_repo": "stores",
    "flowloom.integrations.oauth_store": "stores",
    "flowloom.integrations.usage": "stores",
    "flowloom.storage": "storage",
    "flowloom.billing": "billing",
    "flowloom.nodes": "nodes",
    "flowloom.testing": "nodes",
    "flowloom.engine": "engine",
    "flowloom.agents": "nodes",
    "flowloom.agents.threads": "services",
    "flowloom.generation": "services",
    "flowloom.triggers": "services",
    "flowloom.example_workflows": "services",
    "flowloom.local_account": "services",
    "flowloom.services": "services",
    "flowloom.api": "entry",
    "flowloom.cli": "entry",
    "flowloom.worker": "entry",
    "flowloom.webui": "entry",
    "flowloom.embedding": "entry",
}
"""The layer of each module: the entry with the longest matching prefix."""

MAY_IMPORT = {
    "core": set[str](),
    "graph": {"core"},
    "providers": {"core"},
    "clients": {"core", "providers"},
    "storage": {"core"},
    "stores": {"core", "providers", "clients", "storage"},
    "billing": {"core", "providers", "storage"},
    "nodes": {"core", "graph", "providers", "clients"},
    "engine": {"core", "graph", "providers", "clients", "storage", "stores", "billing", "nodes"},
    "services": set(ORDER[: ORDER.index("services")]),
    "entry": set(ORDER[: ORDER.index("entry")]),
}

KNOWN_EXCEPTIONS: dict[tuple[str, str], str] = {}
"""(importer, imported) -> why it is allowed for now. Empty: keep it so."""

KNOWN_CYCLES: dict[frozenset[str], str] = {}
"""Module cycles through deferred or type-only imports allowed for now. Empty: keep it so
(drivers, leases and sub-runs reach the engine through ``engine/seams.py``)."""


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int
    deferred: bool
    """Under ``TYPE_CHECKING`` or inside a function: not run when the importer is imported."""

    def __str__(self) -> str:
        path = MODULES[self.importer].relative_to(PACKAGE.parent)
        return f"{path}:{self.line}: imports {self.imported}"


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(module: str, path: Path) -> Iterator[Import]:
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]

    def targets(node: ast.Import | ast.ImportFrom) -> Iterator[str]:
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
            return
        base = node.module or ""
        if node.level:
            base = ".".join([*package[: len(package) - node.level + 1], *filter(None, [base])])
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            yield sub if sub in MODULES else base

    def walk(body: list[ast.stmt], deferred: bool) -> Iterator[Import]:
        for node in body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target in targets(node):
                    # ``flowloom`` itself is a lazy facade: importing it runs no submodule.
                    if target.startswith("flowloom.") and target != module:
                        yield Import(module, target, node.lineno, deferred)
            elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                yield from walk(node.body, True)
                yield from walk(node.orelse, deferred)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                yield from walk(node.body, True)
            else:
                for field in ("body", "orelse", "finalbody"):
                    yield from walk(getattr(node, field, None) or [], deferred)
                for part in [*getattr(node, "handlers", []), *getattr(node, "cases", [])]:
                    yield from walk(part.body, deferred)

    yield from walk(ast.parse(path.read_text(encoding="utf-8")).body, False)


IMPORTS = [found for module, path in MODULES.items() for found in _imports(module, path)]


def layer(module: str) -> str:
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        if (prefix := ".".join(parts[:end])) in LAYER_OF:
            return LAYER_OF[prefix]
    raise AssertionError(f"{module} has no layer: add it to LAYER_OF")


def _violations() -> list[Import]:
    return [
        found
        for found in IMPORTS
        if (mine := layer(found.importer)) != (theirs := layer(found.imported))
        and theirs not in MAY_IMPORT[mine]
    ]


def test_the_contract_only_points_down() -> None:
    assert set(MAY_IMPORT) == set(ORDER)
    for name, allowed in MAY_IMPORT.items():
        assert allowed <= set(ORDER[: ORDER.index(name)]), name


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        layer(module)


def test_no_import_breaks_the_layers() -> None:
    violations = _violations()
    new = sorted(
        {v for v in violations if (v.importer, v.imported) not in KNOWN_EXCEPTIONS},
        key=lambda v: (v.importer, v.line, v.imported),
    )
    report = [f"{v} ({layer(v.importer)} may not import {layer(v.imported)})" for v in new]
    assert not new, "imports against the layering contract:\n" + "\n".join(report)


def test_known_exceptions_only_shrink() -> None:
    seen = {(v.importer, v.imported) for v in _violations()}
    gone = sorted(set(KNOWN_EXCEPTIONS) - seen)
    assert not gone, f"fixed, so remove from KNOWN_EXCEPTIONS: {gone}"


def _cycles(edges: list[Import]) -> set[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    graph: dict[str, set[str]] = {module: set() for module in MODULES}
    for edge in edges:
        if edge.imported in graph:
            graph[edge.importer].add(edge.imported)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[frozenset[str]] = set()
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.add(frozenset(component))
    return found


def test_no_module_cycle_at_import_time() -> None:
    cycles = _cycles([edge for edge in IMPORTS if not edge.deferred])
    assert not cycles, [sorted(cycle) for cycle in cycles]


def _split(cycles: set[frozenset[str]]) -> set[frozenset[str]]:
    """Each cycle as the known cycles inside it, when it is exactly their union."""
    out: set[frozenset[str]] = set()
    for cycle in cycles:
        inside = [known for known in KNOWN_CYCLES if known <= cycle]
        if inside and frozenset().union(*inside) == cycle:
            out.update(inside)
        else:
            out.add(cycle)
    return out


def test_the_cycles_through_deferred_imports_are_the_known_ones() -> None:
    cycles = _split(_cycles(IMPORTS))
    new = [sorted(cycle) for cycle in cycles - set(KNOWN_CYCLES)]
    gone = [sorted(cycle) for cycle in set(KNOWN_CYCLES) - cycles]
    assert not new, f"new import cycles: {new}"
    assert not gone, f"broken, so remove from KNOWN_CYCLES: {gone}"


ENGINE_MAY_USE_OF_STORAGE = {
    "flowloom.storage.enums",  # the status vocabulary the tables' CHECKs share
    "flowloom.storage.errors",  # "the database is unavailable", which drivers wait out
    "flowloom.storage.blobs",  # the blob files (bytes, not the database)
}
ENGINE_WIRING = {"flowloom.engine.scheduler"}
"""Builds the default ``SqlRunStore`` from a ``Database`` (and the settings' stores)."""


def test_the_engine_reaches_the_database_only_through_the_run_store() -> None:
    """Outside ``flowloom.engine.sql`` (the SQL ``RunStore``) and the wiring, no engine module
    names a table, a repository or the database: the persistence boundary is ``ports.RunStore``."""
    offending = [
        str(found)
        for found in IMPORTS
        if found.importer.startswith("flowloom.engine")
        and not found.importer.startswith("flowloom.engine.sql")
        and found.importer not in ENGINE_WIRING
        and found.imported.startswith("flowloom.storage")
        and found.imported not in ENGINE_MAY_USE_OF_STORAGE
    ]
    assert not offending, "engine modules past the RunStore seam:\n" + "\n".join(offending)


WORKER_MAY_USE_OF_STORAGE = ENGINE_MAY_USE_OF_STORAGE | {
    "flowloom.storage.database",  # a worker process opens its Database (and disposes of it)
}


def test_the_worker_reaches_runs_only_through_the_shared_run_store() -> None:
    """The distributed worker and the API's remote engine read and write runs through
    ``ports.SharedRunStore``: no worker module names a table, a repository or a session."""
    offending = [
        str(found)
        for found in IMPORTS
        if found.importer.startswith("flowloom.worker")
        and found.imported.startswith("flowloom.storage")
        and found.imported not in WORKER_MAY_USE_OF_STORAGE
    ]
    offending += [
        f"{module} imports sqlalchemy"
        for module, path in MODULES.items()
        if module.startswith("flowloom.worker")
        and any(
            line.lstrip().startswith(("import sqlalchemy", "from sqlalchemy"))
            for line in path.read_text(encoding="utf-8").splitlines()
        )
    ]
    assert not offending, "worker modules past the RunStore seam:\n" + "\n".join(offending)


def test_route_modules_import_no_other_route_module() -> None:
    """Each module under ``flowloom/api/routes`` is one resource's routes: what two of them
    share lives in a module of its own (a schema, a service, an API helper), never in a route
    module another one imports."""
    offending = [
        str(found)
        for found in IMPORTS
        if found.importer.startswith("flowloom.api.routes.")
        and found.imported.startswith("flowloom.api.routes.")
    ]
    assert not offending, "route modules importing each other:\n" + "\n".join(offending)
