"""The engine's plan cache: a saved workflow version, validated and planned once per scope.

A saved version never changes, so its plan and node specs (parsed configs, ports, retry
policies, templated fields) are kept, most recently used first, and a run start that finds its
plan here needs no definition read at all. Stores reach it as a ``PlanSource``.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

from flowloom.engine.ports import Prepared
from flowloom.engine.retry import node_timeout_s, retry_policy
from flowloom.engine.run_state import NodeSpec
from flowloom.engine.templating import templated_fields
from flowloom.exceptions import Problem, ValidationFailed
from flowloom.graph import Scope, build_plan, parse_definition, validate
from flowloom.graph.ports import Port
from flowloom.graph.validation import config_key
from flowloom.nodes.base import Node
from flowloom.nodes.registry import NodeRegistry

__all__ = [
    "BIG_PLAN",
    "PlanCache",
    "check_breakpoints",
    "collector_paused",
    "full_collections_paused",
]

_Key = tuple[str, int, Scope, str | None, bool]


class PlanCache:
    """Plans of the ``size`` most recently used (workflow, version, scope, target)."""

    def __init__(self, registry: NodeRegistry, size: int = 256) -> None:
        self.registry = registry
        self._size = size
        self._plans: OrderedDict[_Key, Prepared] = OrderedDict()

    def cached(
        self,
        workflow_id: str,
        version: int,
        scope: Scope,
        target: str | None,
        *,
        use_pinned: bool = False,
    ) -> Prepared | None:
        key = (workflow_id, version, scope, target, use_pinned)
        found = self._plans.get(key)
        if found is not None:
            # A run's start may ask from SQLite's writer thread while the event loop's thread
            # prepares another plan: the entry may be evicted between the two steps.
            with contextlib.suppress(KeyError):
                self._plans.move_to_end(key)
        return found

    def prepare(
        self,
        workflow_id: str,
        version: int,
        definition: dict[str, Any],
        scope: Scope,
        target: str | None,
        *,
        use_pinned: bool = False,
    ) -> Prepared:
        """The validated plan and node specs; ValidationFailed naming every problem. With
        ``use_pinned``, pinned outputs stand in for their nodes (``build_plan``)."""
        found = self.cached(workflow_id, version, scope, target, use_pinned=use_pinned)
        if found is not None:
            return found
        with collector_paused():
            prepared = self._prepare(definition, scope, target, use_pinned)
        self._plans[(workflow_id, version, scope, target, use_pinned)] = prepared
        if len(self._plans) > self._size:
            self._plans.popitem(last=False)
        return prepared

    def _prepare(
        self, definition: dict[str, Any], scope: Scope, target: str | None, use_pinned: bool
    ) -> Prepared:
        parsed = parse_definition(definition)
        problems = validate(parsed, self.registry)
        if problems:
            raise ValidationFailed(problems)
        pinned = parsed.pinned_outputs() if use_pinned else None
        plan = build_plan(parsed, scope, target, pinned=None if pinned is None else set(pinned))
        specs: dict[str, NodeSpec] = {}
        nodes = parsed.node_map()
        # Nodes of one type with the same config share its parsed form (a big graph repeats a
        # few configs many times): parsed once, held once.
        shared: dict[tuple[str, str], _Typed] = {}
        for node_id in plan.order:
            node = nodes[node_id]
            raw = node.data.config
            key = config_key(node.type, raw)
            typed = shared.get(key) if key is not None else None
            if typed is None:
                typed = _typed(self.registry.get(node.type), raw)
                if key is not None:
                    shared[key] = typed
            specs[node_id] = NodeSpec(
                definition=node,
                node=typed.node,
                config=typed.config,
                inputs=typed.inputs,
                outputs=typed.outputs,
                retry=retry_policy(node),
                timeout_s=node_timeout_s(node),
                deterministic=typed.deterministic,
                templated=typed.templated,
                pure=typed.pure,
            )
        feeding = {parent for parents in plan.outside_parents.values() for parent in parents}
        pins = {node: outputs for node, outputs in (pinned or {}).items() if node in feeding}
        return Prepared(plan, specs, pins)


@dataclass(frozen=True, slots=True)
class _Typed:
    """What a node's type makes of one config: the part of a ``NodeSpec`` nodes may share."""

    node: Node[Any]
    config: Any
    inputs: tuple[Port, ...]
    outputs: frozenset[str]
    deterministic: bool
    templated: frozenset[str]
    pure: bool


def _typed(impl: Node[Any], raw: dict[str, Any]) -> _Typed:
    config = impl.parse_config(raw)
    deterministic = impl.is_deterministic(config)
    return _Typed(
        node=impl,
        config=config,
        inputs=tuple(impl.inputs(config)),
        outputs=frozenset(port.name for port in impl.outputs(config)),
        deterministic=deterministic,
        templated=templated_fields(impl, raw),
        pure=impl.pure and deterministic,
    )


BIG_PLAN = 10_000
"""From this many nodes, a run is started with the cyclic collector paused and driven with its
full collections paused (``collector_paused``, ``full_collections_paused``): for small runs,
switching it off and on costs more than it saves."""

_paused = 0
"""How many ``collector_paused`` blocks are open (they may overlap across tasks)."""
_paused_lock = threading.Lock()
"""``_paused`` moves under it: a run's start may write on SQLite's writer thread."""


@contextmanager
def collector_paused() -> Iterator[None]:
    """Run a block without Python's cyclic garbage collector.

    Planning a big graph and writing its node rows make hundreds of thousands of objects that
    all live on (the parsed definition, the plan, the specs, the slots); the collector,
    triggered by their sheer number, scanned them over and over while they were made: two
    thirds of starting a 100,000-node run. Nothing made there is cyclic garbage. Blocks may
    await and overlap (two big runs starting at once): the collector runs again when the last
    one ends, unless it was off before the first began; cycles other tasks drop meanwhile are
    collected then.
    """
    global _paused
    with _paused_lock:
        if _paused == 0 and not gc.isenabled():
            paused = False
        else:
            paused = True
            _paused += 1
            gc.disable()
    if not paused:
        yield
        return
    try:
        yield
    finally:
        with _paused_lock:
            _paused -= 1
            if _paused == 0:
                gc.enable()


_full_paused = 0
"""How many ``full_collections_paused`` blocks are open (they may overlap across runs)."""
_thresholds = gc.get_threshold()
"""The collector's thresholds before the first open ``full_collections_paused`` block."""
_NEVER: Final = 1 << 30
"""A threshold of young collections the oldest generation never reaches."""


@contextmanager
def full_collections_paused() -> Iterator[None]:
    """Run a block with Python's collector making young collections only.

    A big run's state (its plan, specs and slots: millions of objects) lives as long as the
    run, and every node it finishes adds a few objects that live on too (its outputs, its
    attempts). The collector counts those, and every quarter more of them it walks the whole
    heap, the run's state included, finding nothing: 3 full passes, a quarter of driving a
    100,000-node run. Young collections go on as ever (a cycle a node drops is freed as soon
    as before); cycles that outlive two of them wait until the last open block ends, when the
    thresholds are back and the next full collection runs as due.
    """
    global _full_paused, _thresholds
    if _full_paused == 0:
        _thresholds = gc.get_threshold()
        gc.set_threshold(_thresholds[0], _thresholds[1], _NEVER)
    _full_paused += 1
    try:
        yield
    finally:
        _full_paused -= 1
        if _full_paused == 0:
            gc.set_threshold(*_thresholds)


def check_breakpoints(breakpoints: Sequence[str] | None, prepared: Prepared) -> None:
    """ValidationFailed naming every breakpoint on a node the run does not plan."""
    if breakpoints is None:
        return
    unknown = [node for node in breakpoints if node not in prepared.specs]
    if unknown:
        raise ValidationFailed(
            [Problem("breakpoint on a node not in the run", node_id=n) for n in unknown]
        )
