"""List nodes: sorting (the sorting step of seed 000).

A short list is sorted in place; a long one (past ``OFF_LOOP_ITEMS``) in the compute pool, so
reading its keys and sorting them never holds the event loop. The work is bounded by the list
itself (n log n), so it needs no deadline of its own. Sorting runs in C and holds the GIL (and
so the event loop) until it returns, so a long list is sorted in runs of ``_RUN_ITEMS`` that
are then merged in Python, which lets the loop in between.
"""

from __future__ import annotations

import heapq
import math
from typing import Any, Final, Literal

from pydantic import field_validator

from flowloom.exceptions import NodeFailed
from flowloom.graph.ports import json_type_name
from flowloom.nodes._compute import run_off_loop
from flowloom.nodes._paths import MISSING, check_path, lookup
from flowloom.nodes.base import Category, Node, NodeConfig, NodeResult, Port, PortType, RunContext

__all__ = ["OFF_LOOP_ITEMS", "ListSort", "ListSortConfig"]

OFF_LOOP_ITEMS: Final = 5_000
"""Lists longer than this are sorted in the compute pool (a few milliseconds of work here)."""
_RUN_ITEMS: Final = 20_000
"""Items sorted in one C call (a few milliseconds holding the GIL)."""


class ListSortConfig(NodeConfig):
    key: str | None = None
    """Sort by the value at this dotted path in each item (``user.age``); empty sorts the items
    themselves."""
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
    display_name = "Sort list"
    icon = "sort"
    category = Category.ACTION
    pure = True
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
        if len(items) <= OFF_LOOP_ITEMS:
            return NodeResult({"items": _sorted(ctx, config, items)})
        return NodeResult({"items": await run_off_loop(_sorted, ctx, config, items)})


def _sorted(ctx: RunContext, config: ListSortConfig, items: list[Any]) -> list[Any]:
    keys = [_key_of(ctx, config, index, item) for index, item in enumerate(items)]
    if not config.numeric:
        _refuse_mixed(ctx, keys)
    reverse = config.order == "desc"
    runs = [
        sorted(
            range(start, min(start + _RUN_ITEMS, len(items))), key=keys.__getitem__, reverse=reverse
        )
        for start in range(0, len(items), _RUN_ITEMS)
    ]
    # Stable: heapq.merge takes equal keys from earlier runs first, in either direction.
    order = runs[0] if len(runs) == 1 else heapq.merge(*runs, key=keys.__getitem__, reverse=reverse)
    return [items[index] for index in order]


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
