"""Flow nodes: branch on a condition or a switch, merge branches, wait a while.

A branching node emits on exactly one output; the engine skips the nodes fed only by outputs
that were not emitted, and skipping propagates.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from flowloom.field_docs import describe_fields
from flowloom.graph.ports import json_type_name
from flowloom.nodes._names import refuse_repeated
from flowloom.nodes._paths import MISSING, check_path, lookup
from flowloom.nodes._regex import PatternError, compile_pattern, search
from flowloom.nodes.base import (
    Category,
    Node,
    NodeConfig,
    NodeResult,
    Port,
    PortType,
    RunContext,
    WaitForInput,
)

__all__ = [
    "Condition",
    "ConditionConfig",
    "Delay",
    "DelayConfig",
    "Merge",
    "MergeConfig",
    "Operator",
    "Switch",
    "SwitchCase",
    "SwitchConfig",
    "evaluate",
]

Operator = Literal[
    "eq",
    "ne",
    "gt",
    "gte",
    "lt",
    "lte",
    "contains",
    "not_contains",
    "truthy",
    "falsy",
    "empty",
    "not_empty",
    "matches",
]
_UNARY = frozenset({"truthy", "falsy", "empty", "not_empty"})
_ORDERING = frozenset({"gt", "gte", "lt", "lte"})


class IncomparableError(ValueError):
    """The value and the operand cannot be compared with the operator (a message says why)."""


def _check_operand(operand: Any, info: ValidationInfo) -> Any:
    """Refuse, at config time, an operand the operator can never use (the error names the
    ``operand`` field; an operator that failed its own check is reported by that check)."""
    operator = info.data.get("operator")
    if isinstance(operator, str):
        _check_test(operator, operand)
    return operand


def _check_test(operator: str, operand: Any) -> None:
    if operator in _ORDERING and not (_is_number(operand) or isinstance(operand, str)):
        raise ValueError(f"{operator} needs a number or a text operand, got {operand!r}")
    if operator == "matches":
        if not isinstance(operand, str):
            raise ValueError("matches needs a regular expression (text) as operand")
        try:
            compile_pattern(operand)
        except PatternError as exc:
            raise ValueError(f"not a regular expression RE2 accepts: {exc}") from None


async def evaluate(operator: str, value: Any, operand: Any = None) -> bool:
    """Whether ``value <operator> operand`` holds; IncomparableError when it cannot be judged.

    Equality is strict about kinds (``true`` is not ``1``), ordering compares numbers with
    numbers and text with text, ``contains`` looks for text in text, an item in a list or a key
    in an object, and ``empty`` holds for null, ``""``, ``[]`` and ``{}``. ``matches`` searches
    the text with an RE2 pattern: linear time, and a long text is searched off the event loop.
    """
    match operator:
        case "eq":
            return _equal(value, operand)
        case "ne":
            return not _equal(value, operand)
        case "gt" | "gte" | "lt" | "lte":
            return _order(operator, value, operand)
        case "contains":
            return _contains(value, operand)
        case "not_contains":
            return not _contains(value, operand)
        case "truthy":
            return bool(value)
        case "falsy":
            return not value
        case "empty":
            return value is None or value in ("", [], {})
        case "not_empty":
            return not (value is None or value in ("", [], {}))
        case "matches":
            if not isinstance(value, str):
                raise IncomparableError(f"matches needs text, got {json_type_name(value)}")
            return await search(str(operand), value)
    raise IncomparableError(f"unknown operator {operator!r}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equal(a: Any, b: Any) -> bool:
    # Python says True == 1; JSON users do not expect a boolean to equal a number.
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return bool(a == b)


def _order(operator: str, value: Any, operand: Any) -> bool:
    both_numbers = _is_number(value) and _is_number(operand)
    both_text = isinstance(value, str) and isinstance(operand, str)
    if not (both_numbers or both_text):
        raise IncomparableError(
            f"cannot compare {json_type_name(value)} {value!r} with "
            f"{json_type_name(operand)} {operand!r} using {operator}"
        )
    if operator == "gt":
        return bool(value > operand)
    if operator == "gte":
        return bool(value >= operand)
    if operator == "lt":
        return bool(value < operand)
    return bool(value <= operand)


def _contains(value: Any, operand: Any) -> bool:
    if isinstance(value, str):
        if not isinstance(operand, str):
            raise IncomparableError(f"text cannot contain a {json_type_name(operand)}")
        return operand in value
    if isinstance(value, list):
        return any(_equal(item, operand) for item in value)
    if isinstance(value, dict):
        return operand in value
    raise IncomparableError(
        f"contains needs text, a list or an object, got {json_type_name(value)}"
    )


def _check_key(key: str | None) -> str | None:
    return None if key is None or key == "" else check_path(key)


def _subject(value: Any, key: str | None) -> Any:
    # A missing key reads as null, so "empty" and "eq null" can test for absence.
    found = lookup(value, key)
    return None if found is MISSING else found


class ConditionConfig(NodeConfig):
    operator: Operator = "truthy"
    operand: Any = Field(default=None, validate_default=True)
    """What the value is compared with (unused by truthy, falsy, empty, not_empty)."""
    key: str | None = None
    """Test the value at this dotted path inside the input instead of the input itself."""

    _key = field_validator("key")(_check_key)

    _operand = field_validator("operand")(_check_operand)


class Condition(Node[ConditionConfig]):
    """Route the input to ``true`` or ``false``: only the taken output is emitted."""

    type_name = "flow.condition"
    display_name = "Condition"
    icon = "branch"
    category = Category.FLOW
    pure = True
    Config = ConditionConfig

    def inputs(self, config: ConditionConfig) -> list[Port]:
        return [Port("value", PortType.ANY)]

    def outputs(self, config: ConditionConfig) -> list[Port]:
        return [Port("true", PortType.ANY), Port("false", PortType.ANY)]

    async def run(
        self, ctx: RunContext, config: ConditionConfig, inputs: dict[str, Any]
    ) -> NodeResult:
        value = inputs.get("value")
        try:
            taken = await evaluate(config.operator, _subject(value, config.key), config.operand)
        except IncomparableError as exc:
            raise ctx.fail(str(exc)) from None
        return NodeResult({"true" if taken else "false": value})


class SwitchCase(BaseModel):
    """One branch of a switch: taken when ``value <operator> operand`` holds."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=describe_fields)

    name: str = Field(min_length=1, max_length=100)
    """The output port of this case."""
    operator: Operator = "eq"
    operand: Any = Field(default=None, validate_default=True)

    @field_validator("name")
    @classmethod
    def _check_name(cls, name: str) -> str:
        if name == "default":
            raise ValueError("'default' is the output taken when no case matches")
        return name

    _operand = field_validator("operand")(_check_operand)


class SwitchConfig(NodeConfig):
    cases: list[SwitchCase] = Field(default_factory=list)
    """Tried in order; the first that holds takes the value."""
    key: str | None = None
    """Test the value at this dotted path inside the input instead of the input itself."""

    _key = field_validator("key")(_check_key)

    @field_validator("cases")
    @classmethod
    def _unique_names(cls, cases: list[SwitchCase]) -> list[SwitchCase]:
        refuse_repeated((case.name for case in cases), what="case")
        return cases


class Switch(Node[SwitchConfig]):
    """Route the input to the first case that holds, else to ``default``: one output per case."""

    type_name = "flow.switch"
    display_name = "Switch"
    icon = "switch"
    category = Category.FLOW
    pure = True
    dynamic_ports = True
    Config = SwitchConfig

    def inputs(self, config: SwitchConfig) -> list[Port]:
        return [Port("value", PortType.ANY)]

    def outputs(self, config: SwitchConfig) -> list[Port]:
        return [*(Port(case.name, PortType.ANY) for case in config.cases), Port("default")]

    async def run(
        self, ctx: RunContext, config: SwitchConfig, inputs: dict[str, Any]
    ) -> NodeResult:
        value = inputs.get("value")
        subject = _subject(value, config.key)
        for case in config.cases:
            try:
                if await evaluate(case.operator, subject, case.operand):
                    return NodeResult({case.name: value})
            except IncomparableError as exc:
                raise ctx.fail(f"case {case.name!r}: {exc}") from None
        return NodeResult({"default": value})


class MergeConfig(NodeConfig):
    mode: Literal["all", "first"] = "all"
    """``all``: the list of every value that arrived; ``first``: the first of them."""


class Merge(Node[MergeConfig]):
    """Join branches: the values of several edges, in edge order.

    Edges from branches that were not taken bring nothing, so after a condition ``first``
    passes on whichever branch ran. The output ``values`` is a list in mode ``all`` and the
    single first value in mode ``first`` (absent when nothing arrived).
    """

    type_name = "flow.merge"
    display_name = "Merge"
    icon = "merge"
    category = Category.FLOW
    pure = True
    dynamic_ports = True
    Config = MergeConfig

    def inputs(self, config: MergeConfig) -> list[Port]:
        return [Port("values", PortType.ANY, is_list=True)]

    def outputs(self, config: MergeConfig) -> list[Port]:
        return [Port("values", PortType.LIST if config.mode == "all" else PortType.ANY)]

    async def run(self, ctx: RunContext, config: MergeConfig, inputs: dict[str, Any]) -> NodeResult:
        values = inputs.get("values", [])
        if not isinstance(values, list):
            raise ctx.fail(f"values must arrive as a list, got {json_type_name(values)}")
        if config.mode == "all":
            return NodeResult({"values": values})
        return NodeResult({"values": values[0]} if values else {})


class DelayConfig(NodeConfig):
    seconds: float = Field(default=1.0, ge=0, le=30 * 24 * 3600)
    """How long to wait before passing the value on (at most 30 days)."""


class Delay(Node[DelayConfig]):
    """Wait, then pass ``value`` through unchanged.

    Short delays (up to ``settings.inline_delay_max_s``) sleep in place through ``ctx.sleep``.
    Longer ones raise WaitForInput with ``resume_after_s``, so the engine parks the node as
    WAITING, frees its slot, and runs it again when the time is up; that second run finds
    ``ctx.answer`` set and passes the value on at once.
    """

    type_name = "flow.delay"
    display_name = "Delay"
    icon = "clock"
    category = Category.FLOW
    deterministic = False
    Config = DelayConfig

    def inputs(self, config: DelayConfig) -> list[Port]:
        return [Port("value", PortType.ANY, required=False, default=None)]

    def outputs(self, config: DelayConfig) -> list[Port]:
        return [Port("value", PortType.ANY)]

    async def run(self, ctx: RunContext, config: DelayConfig, inputs: dict[str, Any]) -> NodeResult:
        if ctx.answer is None:
            if config.seconds > ctx.settings.inline_delay_max_s:
                raise WaitForInput(
                    f"delay of {config.seconds:g} s",
                    kind="delay",
                    resume_after_s=config.seconds,
                )
            await ctx.sleep(config.seconds)
        return NodeResult({"value": inputs.get("value")})
