"""Trigger nodes: where a run's inputs enter the graph."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from flowloom.field_docs import describe_fields
from flowloom.graph.ports import PortType, json_type_name, value_matches
from flowloom.nodes._names import refuse_repeated
from flowloom.nodes.base import Category, Node, NodeConfig, NodeResult, Port, RunContext

__all__ = ["ManualTrigger", "ManualTriggerConfig", "TriggerField"]

FieldType = Literal["any", "string", "number", "integer", "boolean", "object", "list"]


class TriggerField(BaseModel):
    """One input of the run, and the output port that carries it."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=describe_fields)

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$")
    type: FieldType = "string"
    default: Any = None
    """Used when the run is started without this input."""
    required: bool = False
    """Refuse to run without this input (the default is then ignored)."""
    description: str = ""

    @model_validator(mode="after")
    def _default_fits(self) -> TriggerField:
        if self.default is not None and not value_matches(PortType(self.type), self.default):
            raise ValueError(
                f"the default of {self.name!r} is {json_type_name(self.default)}, not {self.type}"
            )
        return self


class ManualTriggerConfig(NodeConfig):
    fields: list[TriggerField] = Field(default_factory=list)
    """The run's inputs; each becomes an output port of the same name."""

    @field_validator("fields")
    @classmethod
    def _unique(cls, fields: list[TriggerField]) -> list[TriggerField]:
        refuse_repeated((item.name for item in fields), what="field")
        return fields


class ManualTrigger(Node[ManualTriggerConfig]):
    """Start a run by hand (canvas, CLI or API) with typed inputs, one output per field."""

    type_name = "trigger.manual"
    display_name = "Manual trigger"
    icon = "play"
    category = Category.TRIGGER
    # Outputs come from the run's inputs, which a cache signature over the config cannot see.
    deterministic = False
    dynamic_ports = True
    Config = ManualTriggerConfig

    def outputs(self, config: ManualTriggerConfig) -> list[Port]:
        return [
            Port(item.name, PortType(item.type), description=item.description)
            for item in config.fields
        ]

    async def run(
        self, ctx: RunContext, config: ManualTriggerConfig, inputs: dict[str, Any]
    ) -> NodeResult:
        outputs: dict[str, Any] = {}
        for item in config.fields:
            if item.name not in ctx.run_inputs:
                if item.required:
                    raise ctx.fail(f"the run needs the input {item.name!r} ({item.type})")
                outputs[item.name] = item.default
                continue
            value = ctx.run_inputs[item.name]
            if not value_matches(PortType(item.type), value):
                raise ctx.fail(
                    f"input {item.name!r} should be {item.type}, got {json_type_name(value)}"
                )
            outputs[item.name] = value
        return NodeResult(outputs)
