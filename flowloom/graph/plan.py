"""The plan: which nodes a run covers, in what order, and who waits for whom.

Everything here is O(V + E): Kahn's algorithm for the order, one breadth-first walk for the
ancestors of an UPSTREAM run, Tarjan's algorithm (iterative, so a 10,000-node chain does not
hit the recursion limit) to name the nodes of a cycle.

Adjacency is kept as flat integer arrays (compressed sparse rows) rather than one list per
node: a 10,000-node graph then costs a handful of allocations instead of tens of thousands,
which also keeps Python's cyclic garbage collector from repeatedly scanning the definition
while a plan is built. ``parents``, ``children`` and ``incoming`` build each node's tuple when
asked.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from enum import StrEnum
from typing import TypeVar

from flowloom.exceptions import Problem, ValidationFailed
from flowloom.graph.definition import EdgeDefinition, WorkflowDefinition

__all__ = [
    "Plan",
    "Scope",
    "build_plan",
    "find_cycles",
    "topological_order",
]

V = TypeVar("V")


class Scope(StrEnum):
    """How much of the graph a run covers."""

    FULL = "FULL"
    """Every node."""
    NODE = "NODE"
    """Just the target node; its inputs come from its parents' newest outputs or the request."""
    UPSTREAM = "UPSTREAM"
    """The target node and every node it depends on."""


class _Rows:
    """Compressed sparse rows: the neighbours of ``i`` are ``items[offsets[i]:offsets[i + 1]]``."""

    __slots__ = ("items", "offsets")

    def __init__(self, size: int, keys: Sequence[int], values: Sequence[int]) -> None:
        offsets = [0] * (size + 1)
        for key in keys:
            offsets[key + 1] += 1
        for index in range(size):
            offsets[index + 1] += offsets[index]
        fill = offsets[:-1]
        items = [0] * len(keys)
        for key, value in zip(keys, values, strict=True):
            items[fill[key]] = value
            fill[key] += 1
        self.offsets = offsets
        self.items = items

    def of(self, index: int) -> list[int]:
        return self.items[self.offsets[index] : self.offsets[index + 1]]

    def count(self, index: int) -> int:
        return self.offsets[index + 1] - self.offsets[index]


class _Graph:
    """Nodes numbered in definition order, with distinct edges as parent and child rows."""

    __slots__ = ("children", "ids", "index", "parents")

    def __init__(self, ids: Sequence[str], pairs: Iterable[tuple[str, str]]) -> None:
        size = len(ids)
        index: dict[str, int] = {}
        for number, node in enumerate(ids):
            index.setdefault(node, number)
        seen: set[int] = set()
        sources: list[int] = []
        targets: list[int] = []
        for source, target in pairs:
            s = index.get(source)
            t = index.get(target)
            if s is None or t is None or s * size + t in seen:
                continue
            seen.add(s * size + t)
            sources.append(s)
            targets.append(t)
        self.ids = ids
        self.index = index
        self.children = _Rows(size, sources, targets)
        self.parents = _Rows(size, targets, sources)

    def kahn(self) -> tuple[list[int], list[int]]:
        """Kahn's order (ties by number) and the numbers left over, on or after a cycle."""
        size = len(self.ids)
        indegree = [self.parents.count(node) for node in range(size)]
        queue = deque(node for node in range(size) if indegree[node] == 0)
        order: list[int] = []
        children = self.children
        while queue:
            node = queue.popleft()
            order.append(node)
            for child in children.items[children.offsets[node] : children.offsets[node + 1]]:
                indegree[child] -= 1
                if indegree[child] == 0:
                    queue.append(child)
        leftover = [node for node in range(size) if indegree[node] > 0] if len(order) < size else []
        return order, leftover

    def ancestors_and_self(self, target: int) -> set[int]:
        return self.ancestors_of({target}, frozenset())

    def ancestors_of(self, start: Iterable[int], stop: frozenset[int]) -> set[int]:
        """``start`` and every node they depend on, not walking into or past ``stop``."""
        found = set(start)
        queue = deque(found)
        while queue:
            for parent in self.parents.of(queue.popleft()):
                if parent not in found and parent not in stop:
                    found.add(parent)
                    queue.append(parent)
        return found

    def descendants_of(self, start: Iterable[int]) -> set[int]:
        """Every node that depends on one of ``start`` (``start`` itself not included)."""
        found: set[int] = set()
        queue = deque(start)
        while queue:
            for child in self.children.of(queue.popleft()):
                if child not in found:
                    found.add(child)
                    queue.append(child)
        return found


class _Lazy(Mapping[str, V]):
    """A read-only mapping over the planned nodes whose values are computed on access."""

    __slots__ = ("_compute", "_keys")

    def __init__(self, keys: Mapping[str, int], compute: Callable[[int], V]) -> None:
        self._keys = keys
        self._compute = compute

    def __getitem__(self, node: str) -> V:
        return self._compute(self._keys[node])

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


class Plan:
    """The nodes of one run in topological order, with their in-scope parents and children.

    ``parents`` and ``children`` map each planned node to distinct node ids (two edges between
    the same pair count once), restricted to the scope. ``outside_parents`` holds, for nodes
    that have them, the parents left out of the scope: for a NODE run, the target's parents,
    whose newest outputs feed it. ``incoming`` maps each planned node to every edge into it,
    in definition order, which is the order a list port joins its values in.
    """

    def __init__(
        self,
        *,
        scope: Scope,
        target: str | None,
        pinned: frozenset[str] | None = None,
        graph: _Graph,
        order: list[int],
        planned: set[int] | None,
        incoming: _Rows,
        edges: Sequence[EdgeDefinition],
    ) -> None:
        ids = graph.ids
        self.scope = scope
        self.target = target
        self.pinned = pinned
        """With pinned data: the pinned nodes (their outputs stand in for running them)."""
        self.order: tuple[str, ...] = tuple(ids[node] for node in order)
        keys = {ids[node]: node for node in order}

        name = ids.__getitem__

        def inside(rows: _Rows) -> Callable[[int], tuple[str, ...]]:
            if planned is None:
                return lambda node: tuple(map(name, rows.of(node)))
            return lambda node: tuple(ids[other] for other in rows.of(node) if other in planned)

        self.parents: Mapping[str, tuple[str, ...]] = _Lazy(keys, inside(graph.parents))
        self.children: Mapping[str, tuple[str, ...]] = _Lazy(keys, inside(graph.children))
        self.incoming: Mapping[str, tuple[EdgeDefinition, ...]] = _Lazy(
            keys, lambda node: tuple(edges[edge] for edge in incoming.of(node))
        )
        outside: dict[str, tuple[str, ...]] = {}
        if planned is not None:
            for node in order:
                left_out = tuple(ids[p] for p in graph.parents.of(node) if p not in planned)
                if left_out:
                    outside[ids[node]] = left_out
        self.outside_parents: Mapping[str, tuple[str, ...]] = outside
        if planned is None:
            self._counts = [graph.parents.count(node) for node in order]
        else:
            self._counts = [
                sum(1 for p in graph.parents.of(node) if p in planned) for node in order
            ]

    @functools.cached_property
    def nodes(self) -> frozenset[str]:
        return frozenset(self.order)

    def unfinished_parents(self) -> dict[str, int]:
        """A fresh count of unfinished in-scope parents per node, for the scheduler to decrement."""
        return dict(zip(self.order, self._counts, strict=True))

    def roots(self) -> list[str]:
        """The nodes that are ready at the start of the run, in plan order."""
        return [node for node, count in zip(self.order, self._counts, strict=True) if count == 0]


def topological_order(
    node_ids: Sequence[str], edges: Iterable[tuple[str, str]]
) -> tuple[list[str], list[str]]:
    """Kahn's order of ``node_ids`` and the nodes left over because they sit on or after a cycle.

    Ties are broken by the order of ``node_ids``, so the same graph always plans the same way.
    Edges naming unknown nodes are ignored; duplicate edges count once.
    """
    graph = _Graph(node_ids, edges)
    order, leftover = graph.kahn()
    return [node_ids[n] for n in order], [node_ids[n] for n in leftover]


def find_cycles(node_ids: Sequence[str], edges: Iterable[tuple[str, str]]) -> list[list[str]]:
    """Every cycle's node path (``[a, b, c, a]``), one per strongly connected component.

    A component of several nodes yields one cycle through some of them, enough to point at; a
    node with an edge to itself yields ``[a, a]``. Cycles are listed in ``node_ids`` order.
    """
    known = set(node_ids)
    successors: dict[str, list[str]] = {node: [] for node in node_ids}
    for source, target in edges:
        if source in known and target in known:
            successors[source].append(target)
    cycles = []
    for component in _strong_components(node_ids, successors):
        members = set(component)
        first = component[0]
        if len(component) == 1 and first not in successors[first]:
            continue
        cycles.append(_cycle_within(first, members, successors))
    position = {node: index for index, node in enumerate(node_ids)}
    cycles.sort(key=lambda cycle: position[cycle[0]])
    return cycles


def build_plan(
    definition: WorkflowDefinition,
    scope: Scope = Scope.FULL,
    target: str | None = None,
    *,
    pinned: Collection[str] | None = None,
) -> Plan:
    """The plan of a run over ``definition``, or ValidationFailed if the graph cannot be planned.

    NODE and UPSTREAM need ``target``; FULL ignores it. The graph must have unique node ids,
    edges between existing nodes, and no cycle (``validate`` reports these with the rest).

    With ``pinned`` (the nodes whose pinned outputs stand in for running them), pinned nodes
    are left out, and so is whatever only they needed: a FULL run covers what follows the
    pinned nodes (and the unpinned nodes that feeds on), an UPSTREAM run stops at pinned
    ancestors, a NODE run is the target alone as ever. Their outputs reach the plan as
    ``outside_parents``.
    """
    node_ids = [node.id for node in definition.nodes]
    edges = definition.edges
    # A generator, not a list: 10,000 pair tuples would be 10,000 objects for the GC to track.
    graph = _Graph(node_ids, ((edge.source, edge.target) for edge in edges))
    problems = _structure_problems(graph, edges)
    if scope is not Scope.FULL:
        if target is None:
            problems.append(Problem(f"a {scope.value} run needs a target node"))
        elif target not in graph.index:
            problems.append(Problem(f"target node {target!r} does not exist", node_id=target))
    if problems:
        raise ValidationFailed(problems)

    order, leftover = graph.kahn()
    if leftover:
        pairs = [(edge.source, edge.target) for edge in edges]
        raise ValidationFailed(_cycle_problems(node_ids, pairs))

    planned: set[int] | None = None
    pins: frozenset[int] | None = None
    if pinned is not None:
        pins = frozenset(graph.index[node] for node in pinned if node in graph.index)
    if scope is not Scope.FULL:
        assert target is not None
        number = graph.index[target]
        if scope is Scope.NODE:
            planned = {number}
        else:
            planned = graph.ancestors_of({number}, (pins or frozenset()) - {number})
    elif pins is not None:
        planned = _following(graph, pins)
    if planned is not None:
        order = [node for node in order if node in planned]
    incoming = _Rows(
        len(node_ids), [graph.index[edge.target] for edge in edges], list(range(len(edges)))
    )
    return Plan(
        scope=scope,
        target=target if scope is not Scope.FULL else None,
        pinned=None if pins is None else frozenset(node_ids[n] for n in pins),
        graph=graph,
        order=order,
        planned=planned,
        incoming=incoming,
        edges=edges,
    )


def _following(graph: _Graph, pins: frozenset[int]) -> set[int]:
    """What a FULL run with pinned data covers: what follows the pinned nodes, and the
    unpinned nodes that needs; ValidationFailed when nothing is pinned or nothing follows."""
    if not pins:
        raise ValidationFailed([Problem("no node of this version has pinned outputs")])
    following = graph.descendants_of(pins) - pins
    if not following:
        raise ValidationFailed(
            [
                Problem("nothing follows the pinned nodes: no node takes their outputs", node_id=n)
                for n in sorted(graph.ids[p] for p in pins)
            ]
        )
    return graph.ancestors_of(following, pins)


def _structure_problems(graph: _Graph, edges: Sequence[EdgeDefinition]) -> list[Problem]:
    problems = []
    if len(graph.index) < len(graph.ids):
        seen: set[str] = set()
        for node_id in graph.ids:
            if node_id in seen:
                problems.append(Problem("duplicate node id", node_id=node_id))
            seen.add(node_id)
    for edge in edges:
        for end, node_id in (("source", edge.source), ("target", edge.target)):
            if node_id not in graph.index:
                problems.append(Problem(f"edge {edge.id!r}: {end} node {node_id!r} does not exist"))
    return problems


def _cycle_problems(node_ids: Sequence[str], pairs: Iterable[tuple[str, str]]) -> list[Problem]:
    return [
        Problem(f"cycle: {' -> '.join(cycle)}", node_id=cycle[0])
        for cycle in find_cycles(node_ids, pairs)
    ]


def _strong_components(
    node_ids: Sequence[str], successors: Mapping[str, Sequence[str]]
) -> list[list[str]]:
    """Tarjan's strongly connected components, with an explicit stack instead of recursion."""
    index_of: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in node_ids:
        if root in index_of:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, next_child = work[-1]
            if next_child == 0:
                index_of[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            kids = successors[node]
            if next_child < len(kids):
                work[-1] = (node, next_child + 1)
                child = kids[next_child]
                if child not in index_of:
                    work.append((child, 0))
                elif child in on_stack:
                    low[node] = min(low[node], index_of[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index_of[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
    position = {node: index for index, node in enumerate(node_ids)}
    for component in components:
        component.sort(key=position.__getitem__)
    return components


def _cycle_within(
    start: str, members: set[str], successors: Mapping[str, Sequence[str]]
) -> list[str]:
    """A cycle inside the strongly connected component of ``start`` (any walk in it must close)."""
    path = [start]
    seen_at = {start: 0}
    node = start
    while True:
        node = next(child for child in successors[node] if child in members)
        if node in seen_at:
            # The walk closed on an earlier node; rotate so the cycle reads from that node.
            return [*path[seen_at[node] :], node]
        seen_at[node] = len(path)
        path.append(node)
