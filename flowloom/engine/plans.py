"""The engine's plan cache: a saved workflow version, validated and planned once per scope.

A saved version never changes, so its plan and node specs (parsed configs, ports, retry
policies, templated fields) are kept, most recently used first, and a run start that finds its
plan here needs no definition read at all. Stores reach it as a ``PlanSource``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from flowloom.engine.ports import Prepared
from flowloom.engine.retry import node_timeout_s, retry_policy
from flowloom.engine.run_state import NodeSpec
from flowloom.engine.templating import templated_fields
from flowloom.exceptions import Problem, ValidationFailed
from flowloom.graph import Scope, build_plan, parse_definition, validate
from flowloom.nodes.registry import NodeRegistry

__all__ = ["PlanCache", "check_breakpoints"]

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
        parsed = parse_definition(definition)
        problems = validate(parsed, self.registry)
        if problems:
            raise ValidationFailed(problems)
        pinned = parsed.pinned_outputs() if use_pinned else None
        plan = build_plan(parsed, scope, target, pinned=None if pinned is None else set(pinned))
        specs: dict[str, NodeSpec] = {}
        nodes = parsed.node_map()
        for node_id in plan.order:
            node = nodes[node_id]
            impl = self.registry.get(node.type)
            config = impl.parse_config(node.data.config)
            deterministic = impl.is_deterministic(config)
            specs[node_id] = NodeSpec(
                definition=node,
                node=impl,
                config=config,
                inputs=tuple(impl.inputs(config)),
                outputs=frozenset(port.name for port in impl.outputs(config)),
                retry=retry_policy(node),
                timeout_s=node_timeout_s(node),
                deterministic=deterministic,
                templated=templated_fields(impl, node.data.config),
                pure=impl.pure and deterministic,
            )
        feeding = {parent for parents in plan.outside_parents.values() for parent in parents}
        pins = {node: outputs for node, outputs in (pinned or {}).items() if node in feeding}
        prepared = Prepared(plan, specs, pins)
        self._plans[(workflow_id, version, scope, target, use_pinned)] = prepared
        if len(self._plans) > self._size:
            self._plans.popitem(last=False)
        return prepared


def check_breakpoints(breakpoints: Sequence[str] | None, prepared: Prepared) -> None:
    """ValidationFailed naming every breakpoint on a node the run does not plan."""
    if breakpoints is None:
        return
    unknown = [node for node in breakpoints if node not in prepared.specs]
    if unknown:
        raise ValidationFailed(
            [Problem("breakpoint on a node not in the run", node_id=n) for n in unknown]
        )
