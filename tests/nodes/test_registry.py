"""The registry: the public type names, lookups, and complete schemas for the palette."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from pydantic import BaseModel

from flowloom.exceptions import DefinitionError
from flowloom.graph import PortType
from flowloom.nodes import Category, Node, NodeRegistry, NodeResult, RunContext, default_registry
from flowloom.nodes.registry import UnknownNodeType

PUBLIC_NAMES = {
    "trigger.manual",
    "text.value",
    "text.template",
    "text.join",
    "text.split",
    "list.sort",
    "json.extract",
    "flow.condition",
    "flow.switch",
    "flow.merge",
    "flow.delay",
    "human.approval",
    "memory.read",
    "memory.write",
    "image.load",
    "image.crop",
    "image.resize",
    "image.convert",
    "http.request",
    "workflow.call",
    "ai.llm",
    "ai.embed",
    "ai.image",
    "ai.agent",
    "mcp.tool",
}

# The ports of the table are a public contract too.
PORT_CONTRACT = {
    "text.value": ([], ["text"]),
    "list.sort": (["items"], ["items"]),
    "flow.condition": (["value"], ["true", "false"]),
    "flow.merge": (["values"], ["values"]),
    "flow.delay": (["value"], ["value"]),
    "image.load": ([], ["image"]),
    "image.crop": (["image"], ["image"]),
    "image.resize": (["image"], ["image"]),
    "human.approval": (["value"], ["approved", "rejected"]),
}


def test_every_built_in_type_is_registered_under_its_public_name() -> None:
    assert set(default_registry().names()) == PUBLIC_NAMES


def test_ports_match_the_published_contract() -> None:
    schemas = {schema["type"]: schema for schema in default_registry().schemas()}

    for type_name, (inputs, outputs) in PORT_CONTRACT.items():
        schema = schemas[type_name]
        assert [p["name"] for p in schema["inputs"]] == inputs, type_name
        assert [p["name"] for p in schema["outputs"]] == outputs, type_name


def test_unknown_type_is_a_clear_error_with_suggestions() -> None:
    with pytest.raises(UnknownNodeType, match=r"unknown node type 'image\.crap'; did you mean"):
        default_registry().get("image.crap")


class Echo(Node[BaseModel]):
    """Echo: a node defined outside flowloom."""

    type_name = "custom.echo"
    category = Category.TOOL

    async def run(self, ctx: RunContext, config: BaseModel, inputs: dict[str, Any]) -> NodeResult:
        return NodeResult(dict(inputs))


def test_registering_a_taken_name_needs_replace() -> None:
    registry = NodeRegistry([Echo])

    with pytest.raises(DefinitionError, match="already registered"):
        registry.register(Echo)
    registry.register(Echo, replace=True)

    assert registry.names() == ["custom.echo"]
    assert "custom.echo" in registry
    assert len(registry) == 1


def test_malformed_declarations_are_refused() -> None:
    class NoDot(Echo):
        type_name = "echo"

    class NoCategory(Echo):
        category = "TOOL"  # type: ignore[assignment]

    class BadVersion(Echo):
        version = 0

    for node_class, message in [
        (NoDot, "must look like 'family.name'"),
        (NoCategory, "category must be a Category"),
        (BadVersion, "version must be a positive integer"),
    ]:
        with pytest.raises(DefinitionError, match=message):
            NodeRegistry([node_class])


def _resolve(schema: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    found: Any = schema
    for part in ref[2:].split("/"):
        found = found[part]
    return found


JSON_SCHEMA_TYPES = {"object", "array", "string", "number", "integer", "boolean", "null"}


def _check_schema(root: dict[str, Any], schema: Any, path: str) -> None:
    """Every $ref resolves, every type is a JSON Schema type, every required name exists."""
    if isinstance(schema, bool):
        return
    assert isinstance(schema, dict), f"{path}: not a schema"
    if "$ref" in schema:
        _resolve(root, schema["$ref"])
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        assert set(types) <= JSON_SCHEMA_TYPES, f"{path}: type {schema['type']}"
    for name in schema.get("required", []):
        assert name in schema.get("properties", {}), f"{path}: required {name} undeclared"
    for keyword in ("properties", "$defs", "patternProperties"):
        for name, sub in schema.get(keyword, {}).items():
            _check_schema(root, sub, f"{path}/{keyword}/{name}")
    for keyword in ("items", "additionalProperties", "not"):
        if keyword in schema:
            _check_schema(root, schema[keyword], f"{path}/{keyword}")
    for keyword in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for index, sub in enumerate(schema.get(keyword, [])):
            _check_schema(root, sub, f"{path}/{keyword}/{index}")


@pytest.mark.parametrize("schema", default_registry().schemas(), ids=lambda s: s["type"])
def test_every_schema_is_complete_and_valid(schema: dict[str, Any]) -> None:
    assert json.loads(json.dumps(schema)) == schema
    assert Category(schema["category"])
    assert schema["version"] >= 1
    assert isinstance(schema["deterministic"], bool)
    assert schema["description"]
    config = schema["config_schema"]
    assert config["type"] == "object"
    _check_schema(config, config, schema["type"])
    for port in schema["inputs"] + schema["outputs"]:
        assert set(port) >= {"name", "type", "required", "is_list", "description"}
        assert PortType(port["type"])
    # Input names must not shadow settings: a config key of a port's name is that port's literal.
    settings = set(config["properties"])
    shadowed = {port["name"] for port in schema["inputs"]} & settings
    assert shadowed <= {"body"}, shadowed  # http.request's body setting is its input's literal


def test_config_field_docstrings_reach_the_schema() -> None:
    schema = default_registry().schema("image.crop")["config_schema"]

    assert "percent" in schema["properties"]["x"]["description"]


def test_importing_the_nodes_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys, flowloom.nodes, flowloom.graph, flowloom.testing; "
        "print([m for m in ('PIL', 'httpx', 'jinja2', 'jmespath') if m in sys.modules])"
    )

    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "[]"


def test_nodes_do_not_import_the_api_or_storage_layers() -> None:
    code = (
        "import sys, flowloom.nodes, flowloom.graph, flowloom.testing; "
        "print(sorted(m for m in sys.modules "
        "if m.startswith(('flowloom.api', 'flowloom.storage'))))"
    )

    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "[]"
