"""Validation: every problem of a definition at once, each pointing at a node, port or field.

``validate`` never stops at the first problem: the canvas marks all of them in one pass. It
knows node types only through the small :class:`NodeTypes` protocol, which the node registry
implements, so the graph layer does not depend on the nodes layer.
"""

from __future__ import annotations

import difflib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from flowloom.exceptions import Problem, ValidationFailed
from flowloom.graph.definition import EdgeDefinition, NodeDefinition, WorkflowDefinition
from flowloom.graph.plan import find_cycles, topological_order
from flowloom.graph.ports import Port, compatible, json_type_name, value_matches

__all__ = [
    "NodeType",
    "NodeTypes",
    "config_key",
    "config_problems",
    "ensure_valid",
    "node_problems",
    "validate",
]


class NodeType(Protocol):
    """What validation needs to know about one node type."""

    def parse_config(self, raw: Mapping[str, Any]) -> Any:
        """The config as a pydantic model; raises pydantic's ValidationError when it is bad.

        Keys the model keeps as extras (``model_extra``) must be literals for input ports.
        """
        ...

    def inputs(self, config: Any) -> list[Port]: ...

    def outputs(self, config: Any) -> list[Port]: ...


class NodeTypes(Protocol):
    """A catalogue of node types by name (the node registry is one)."""

    def find(self, type_name: str) -> NodeType | None: ...

    def names(self) -> list[str]: ...


@dataclass(slots=True)
class _Ports:
    inputs: dict[str, Port]
    outputs: dict[str, Port]


def validate(definition: WorkflowDefinition, types: NodeTypes) -> list[Problem]:
    """Every problem of ``definition``; an empty list means it can run.

    Checks: duplicate node and edge ids (and annotation ids taken), unknown node types, bad
    configs (with the path of the bad field), edges whose nodes or ports do not exist,
    incompatible port types, several edges into a port that is not a list port, required
    inputs with no edge, no literal and no default, and cycles (naming the nodes on them).
    Ports of a node whose type or config is bad are unknown, so edges touching it are not
    checked further (one problem, not a cascade).
    """
    problems: list[Problem] = []
    nodes: dict[str, NodeDefinition] = {}
    for node in definition.nodes:
        if node.id in nodes:
            problems.append(Problem("duplicate node id", node_id=node.id))
        else:
            nodes[node.id] = node

    problems.extend(_annotation_problems(definition, nodes))

    ports: dict[str, _Ports] = {}
    # A node's own checks depend on its type and config alone: a big graph that repeats a few
    # configs many times checks each once (when it has no problem to name the node in).
    sound: dict[tuple[str, str], _Ports] = {}
    for node in nodes.values():
        key = config_key(node.type, node.config)
        node_ports = sound.get(key) if key is not None else None
        if node_ports is None:
            node_problems, node_ports = _check_node(node, types)
            problems.extend(node_problems)
            if node_ports is not None and not node_problems and key is not None:
                sound[key] = node_ports
        if node_ports is not None:
            ports[node.id] = node_ports
            problems.extend(_pin_problems(node, node_ports))

    edge_ids: set[str] = set()
    feeding: dict[tuple[str, str], list[EdgeDefinition]] = defaultdict(list)
    for edge in definition.edges:
        if edge.id in edge_ids:
            problems.append(Problem(f"duplicate edge id {edge.id!r}", node_id=edge.target))
        edge_ids.add(edge.id)
        problems.extend(_check_edge(edge, nodes, ports))
        feeding[(edge.target, edge.target_handle)].append(edge)

    for (target, port_name), edges in feeding.items():
        port = ports[target].inputs.get(port_name) if target in ports else None
        # An edge from nowhere is reported as dangling already; it does not count as fan-in.
        edges = [e for e in edges if _source_exists(e, nodes, ports)]
        if port is not None and not port.is_list and len(edges) > 1:
            names = ", ".join(repr(edge.id) for edge in edges)
            problems.append(
                Problem(
                    f"{len(edges)} edges ({names}) feed this input, which takes one value; "
                    "join them with flow.merge",
                    node_id=target,
                    port=port_name,
                )
            )

    for node_id, node_ports in ports.items():
        config = nodes[node_id].config
        for port in node_ports.inputs.values():
            if not port.required or port.has_default or (node_id, port.name) in feeding:
                continue
            if config.get(port.name) is None:
                problems.append(
                    Problem(
                        "required input has no edge, no value in the config and no default",
                        node_id=node_id,
                        port=port.name,
                    )
                )

    node_ids = list(nodes)
    pairs = [
        (edge.source, edge.target)
        for edge in definition.edges
        if edge.source in nodes and edge.target in nodes
    ]
    _, leftover = topological_order(node_ids, pairs)
    if leftover:
        for cycle in find_cycles(node_ids, pairs):
            problems.append(Problem(f"cycle: {' -> '.join(cycle)}", node_id=cycle[0]))
    return problems


def config_key(node_type: str, config: Mapping[str, Any]) -> tuple[str, str] | None:
    """A key equal for two nodes exactly when they have the same type and the same config
    (canonical JSON); None for a config that is not JSON (never shared)."""
    if not config:
        return (node_type, "")
    try:
        return (node_type, json.dumps(config, sort_keys=True, allow_nan=False))
    except (TypeError, ValueError):
        return None


def _pin_problems(node: NodeDefinition, node_ports: _Ports) -> list[Problem]:
    """Pinned outputs must be outputs the node has."""
    pinned = node.data.pinned
    if pinned is None:
        return []
    return [
        Problem(f"pinned output {name!r} is not an output of this node", node_id=node.id)
        for name in pinned
        if name not in node_ports.outputs
    ]


def _annotation_problems(
    definition: WorkflowDefinition, nodes: Mapping[str, NodeDefinition]
) -> list[Problem]:
    """A note or group must have an id of its own: the canvas holds them beside the nodes."""
    problems = []
    seen: set[str] = set()
    for index, annotation in enumerate(definition.annotations):
        if annotation.id in nodes or annotation.id in seen:
            problems.append(
                Problem(
                    f"annotation id {annotation.id!r} is taken (by a node or another annotation)",
                    field=f"annotations.{index}.id",
                )
            )
        seen.add(annotation.id)
    return problems


def ensure_valid(definition: WorkflowDefinition, types: NodeTypes) -> None:
    """Raise ValidationFailed carrying every problem, if there is any."""
    problems = validate(definition, types)
    if problems:
        raise ValidationFailed(problems)


def config_problems(node_id: str | None, error: ValidationError) -> list[Problem]:
    """pydantic's errors about a config, each with its field path (``fields.0.name``)."""
    problems = []
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"]) or None
        message = item["msg"]
        # pydantic prefixes messages of errors raised in validators; the prefix is noise here.
        for prefix in ("Value error, ", "Assertion failed, "):
            message = message.removeprefix(prefix)
        problems.append(Problem(message, node_id=node_id, field=path))
    return problems


def node_problems(node: NodeDefinition, types: NodeTypes) -> list[Problem]:
    """What is wrong with one node on its own (type, config, literal inputs); edges aside."""
    return _check_node(node, types)[0]


def _check_node(node: NodeDefinition, types: NodeTypes) -> tuple[list[Problem], _Ports | None]:
    node_type = types.find(node.type)
    if node_type is None:
        message = f"unknown node type {node.type!r}"
        close = difflib.get_close_matches(node.type, types.names(), n=3)
        if close:
            message += f"; did you mean {', '.join(repr(name) for name in close)}?"
        return [Problem(message, node_id=node.id, field="type")], None
    try:
        config = node_type.parse_config(node.config)
    except ValidationError as exc:
        return config_problems(node.id, exc), None
    inputs = {port.name: port for port in node_type.inputs(config)}
    outputs = {port.name: port for port in node_type.outputs(config)}
    problems = []
    extras = config.model_extra if isinstance(config, BaseModel) else None
    for key, value in (extras or {}).items():
        port = inputs.get(key)
        if port is None:
            problems.append(
                Problem(
                    f"unknown config field {key!r} (neither a setting nor an input port)",
                    node_id=node.id,
                    field=key,
                )
            )
        elif value is not None and not _literal_fits(port, value):
            problems.append(
                Problem(
                    f"value is {json_type_name(value)}, but the input takes {_port_kind(port)}",
                    node_id=node.id,
                    port=key,
                )
            )
    return problems, _Ports(inputs, outputs)


def _literal_fits(port: Port, value: Any) -> bool:
    if port.is_list:
        return isinstance(value, list) and all(value_matches(port.type, item) for item in value)
    return value_matches(port.type, value)


def _port_kind(port: Port) -> str:
    return f"a list of {port.type.value}" if port.is_list else port.type.value


def _check_edge(
    edge: EdgeDefinition, nodes: Mapping[str, NodeDefinition], ports: Mapping[str, _Ports]
) -> Iterable[Problem]:
    source_ok = edge.source in nodes
    target_ok = edge.target in nodes
    if not source_ok:
        yield Problem(
            f"edge {edge.id!r} comes from node {edge.source!r}, which does not exist",
            node_id=edge.target if target_ok else None,
            port=edge.target_handle if target_ok else None,
        )
    if not target_ok:
        yield Problem(
            f"edge {edge.id!r} goes to node {edge.target!r}, which does not exist",
            node_id=edge.source if source_ok else None,
            port=edge.source_handle if source_ok else None,
        )
    out_port = in_port = None
    if edge.source in ports:
        outputs = ports[edge.source].outputs
        out_port = outputs.get(edge.source_handle)
        if out_port is None:
            yield Problem(
                f"edge {edge.id!r}: no output port {edge.source_handle!r}"
                f"; outputs are {_names(outputs)}",
                node_id=edge.source,
                port=edge.source_handle,
            )
    if edge.target in ports:
        inputs = ports[edge.target].inputs
        in_port = inputs.get(edge.target_handle)
        if in_port is None:
            yield Problem(
                f"edge {edge.id!r}: no input port {edge.target_handle!r}"
                f"; inputs are {_names(inputs)}",
                node_id=edge.target,
                port=edge.target_handle,
            )
    if out_port is not None and in_port is not None and not compatible(out_port.type, in_port.type):
        yield Problem(
            f"edge {edge.id!r}: incompatible port types: {edge.source}.{out_port.name} gives "
            f"{out_port.type.value}, this input takes {in_port.type.value}",
            node_id=edge.target,
            port=in_port.name,
        )


def _source_exists(
    edge: EdgeDefinition, nodes: Mapping[str, NodeDefinition], ports: Mapping[str, _Ports]
) -> bool:
    if edge.source not in nodes:
        return False
    return edge.source not in ports or edge.source_handle in ports[edge.source].outputs


def _names(ports: Mapping[str, Port]) -> str:
    return ", ".join(repr(name) for name in ports) if ports else "none"
