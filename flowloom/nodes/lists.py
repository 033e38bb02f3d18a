"""List nodes: sorting (the sorting step of seed 000)."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import field_validator

from flowloom.exceptions import NodeFailed
from flowloom.graph.ports import json_type_name
from flowloom.nodes._paths import MISSING, check_path, lookup
from flowloom.nodes.base import Category, Node, NodeConfig, NodeResult, Port, PortType, RunContext

__all__ = ["ListSort", "ListSortConfig"]


class ListSortConfig(NodeConfig):
    key: str | None = None
    """Sort by the value at this dotted path in each item (``user.age``); None sorts by items."""
    order: Literal["asc", "desc"] = "asc"
    numeric: bool = False
    """Compare keys as numbers, reading numeric text such as ``"10"`` as a number."""

    @field_validator("key")
    @classmethod
    def _check_key(cls, key: str | None) -> str | None:
        return None if key is None or key == "" else check_path(key)


class ListSort(Node[ListSortConfig]):
    """The items in order, by themselves or by a key inside each.

    The sort is stable. Without ``numeric``, keys must all be of one kind (all text, all
    numbers, or all booleans): mixed kinds are refused with the positions of the first two that
    differ, rather than guessing an order. With ``numeric``, every key must be a number or
    numeric text.
    """

    type_name = "list.sort"
    category = Category.ACTION
    Config = ListSortConfig

    def inputs(self, config: ListSortConfig) -> list[Port]:
        return [Port("items", PortType.LIST)]

    def outputs(self, config: ListSortConfig) -> list[Port]:
        return [Port("items", PortType.LIST)]

    async def run(
        self, ctx: RunContext, config: ListSortConfig, inputs: dict[str, Any]
    ) -> NodeResult:
        items = inputs["items"]
        if not isinstance(items, list):
            raise ctx.fail(f"items must be a list, got {json_type_name(items)}")
        keys = [_key_of(ctx, config, index, item) for index, item in enumerate(items)]
        if not config.numeric:
            _refuse_mixed(ctx, keys)
        order = sorted(range(len(items)), key=keys.__getitem__, reverse=config.order == "desc")
        return NodeResult({"items": [items[index] for index in order]})


def _key_of(ctx: RunContext, config: ListSortConfig, index: int, item: Any) -> Any:
    key = lookup(item, config.key)
    if key is MISSING or key is None:
        where = f" at {config.key!r}" if config.key else ""
        raise ctx.fail(f"item {index} has no value{where} to sort by")
    if config.numeric:
        return _as_number(ctx, index, key)
    if isinstance(key, dict | list):
        raise ctx.fail(f"item {index}: cannot sort by a {json_type_name(key)}; set a key path")
    return key


def _as_number(ctx: RunContext, index: int, key: Any) -> float:
    if isinstance(key, bool):
        raise _not_numeric(ctx, index, key)
    if isinstance(key, int | float):
        number = float(key)
    elif isinstance(key, str):
        try:
            number = float(key.strip())
        except ValueError:
            raise _not_numeric(ctx, index, key) from None
    else:
        raise _not_numeric(ctx, index, key)
    if math.isnan(number):
        raise _not_numeric(ctx, index, key)
    return number


def _not_numeric(ctx: RunContext, index: int, key: Any) -> NodeFailed:
    return ctx.fail(f"item {index}: {key!r} is not a number (numeric sorting is on)")


def _kind(key: Any) -> str:
    # Numbers sort together whether int or float; booleans are their own kind, not numbers.
    return json_type_name(key)


def _refuse_mixed(ctx: RunContext, keys: list[Any]) -> None:
    if not keys:
        return
    first_kind = _kind(keys[0])
    for index, key in enumerate(keys):
        kind = _kind(key)
        if kind != first_kind:
            raise ctx.fail(
                f"cannot compare {first_kind} (item 0: {keys[0]!r}) with {kind} "
                f"(item {index}: {key!r}); make the items one kind, or turn on numeric sorting"
            )
