"""Data nodes: reading parts of JSON values with JMESPath.

A JMESPath expression can cost far more than the size of its data (each ``[@, @][]`` doubles a
list), so searching runs in the compute pool under ``SEARCH_TIME_LIMIT_S``, off the event loop.
"""

from __future__ import annotations

import functools
from typing import Any, Final

from pydantic import field_validator

from flowloom.nodes._compute import ComputeTimedOut, run_bounded
from flowloom.nodes.base import Category, Node, NodeConfig, NodeResult, Port, PortType, RunContext

__all__ = ["SEARCH_TIME_LIMIT_S", "JsonExtract", "JsonExtractConfig"]

SEARCH_TIME_LIMIT_S: Final = 2.0
"""Seconds one JMESPath search may take; it stops itself then and the node fails."""


@functools.lru_cache(maxsize=256)
def _compile(expression: str) -> Any:
    # JMESPath is imported here, not at the top: start-up must not pay for it.
    import jmespath

    return jmespath.compile(expression)


class JsonExtractConfig(NodeConfig):
    expression: str
    """A JMESPath expression such as ``people[?age > `30`].name``."""

    @field_validator("expression")
    @classmethod
    def _check_expression(cls, expression: str) -> str:
        from jmespath.exceptions import JMESPathError

        if not expression.strip():
            raise ValueError("the expression is empty")
        try:
            _compile(expression)
        except JMESPathError as exc:
            # JMESPath's message spans lines and points with a caret; the first line says it.
            raise ValueError(f"not a JMESPath expression: {str(exc).splitlines()[0]}") from None
        return expression


class JsonExtract(Node[JsonExtractConfig]):
    """The part of a JSON value a JMESPath expression selects (null when nothing matches)."""

    type_name = "json.extract"
    display_name = "Extract from JSON"
    icon = "braces"
    category = Category.ACTION
    pure = True
    Config = JsonExtractConfig

    def inputs(self, config: JsonExtractConfig) -> list[Port]:
        return [Port("data", PortType.ANY, description="The JSON value to search.")]

    def outputs(self, config: JsonExtractConfig) -> list[Port]:
        return [Port("result", PortType.ANY)]

    async def run(
        self, ctx: RunContext, config: JsonExtractConfig, inputs: dict[str, Any]
    ) -> NodeResult:
        from jmespath.exceptions import JMESPathError

        search = _compile(config.expression).search
        try:
            result = await run_bounded(search, inputs["data"], limit_s=SEARCH_TIME_LIMIT_S)
        except ComputeTimedOut as exc:
            raise ctx.fail(f"JMESPath: the search {exc}") from None
        except JMESPathError as exc:
            # A function applied to the wrong type fails only now, against real data.
            raise ctx.fail(f"JMESPath: {exc}") from None
        return NodeResult({"result": result})
