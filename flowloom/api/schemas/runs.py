"""Runs: starting one, answering a waiting node, and a run as its history and detail show it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import AliasChoices, ConfigDict, Field
from sqlalchemy import Row

from flowloom.api.schemas.common import FromRow, Page, RequestBody, VersionNumber
from flowloom.api.schemas.usage import NO_USAGE, UsageSums
from flowloom.storage.enums import NodeStatus, RunScope, RunStatus, TriggerKind
from flowloom.storage.pages import Page as RowPage
from flowloom.storage.repos.run_history import HistoryRow
from flowloom.storage.repos.usage import UsageTotals
from flowloom.storage.tables import WorkflowRun


class RunCreate(RequestBody):
    inputs: dict[str, Any] = Field(default_factory=dict)
    scope: RunScope = RunScope.FULL
    target_node_id: str | None = Field(
        default=None,
        max_length=100,
        validation_alias=AliasChoices("target_node_id", "node_id"),
    )
    """The node a NODE or UPSTREAM run is about (also accepted as ``node_id``)."""
    version: VersionNumber | None = None
    """Run this saved version instead of the current one."""
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)
    """Sending the same key again answers with the run made the first time."""
    timeout_s: float | None = Field(default=None, gt=0, le=7 * 24 * 3600)
    wait: bool | None = None
    """Same as ``?wait=true``: answer once the run has finished (or waits for an answer)."""
    use_pinned: bool = False
    """Nodes with pinned outputs (``data.pinned``) are not run: their pinned outputs stand in.
    A FULL run then covers what follows the pinned nodes (422 when no node is pinned); an
    UPSTREAM run stops at pinned ancestors; a NODE run reads pinned parents' outputs."""


class AnswerCreate(RequestBody):
    """The answer to a WAITING node: an approval takes ``{"approved": true}`` and any notes."""

    model_config = ConfigDict(extra="allow")

    approved: bool | None = None
    action: Literal["step", "continue"] | None = None
    """For a breakpoint of a debug run."""


class NodeExecutionPublic(FromRow):
    node_id: str
    type: str = Field(validation_alias=AliasChoices("type", "node_type"))
    status: NodeStatus
    attempt: int
    inputs: dict[str, Any] | None
    outputs: dict[str, Any] | None
    error: dict[str, Any] | None
    attempts: list[Any]
    """Every attempt's status, timings and error."""
    wait: dict[str, Any] | None
    """Why a WAITING node is parked: ``kind``, ``reason``, ``payload``."""
    cached_from_id: str | None
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None
    usage: UsageSums = NO_USAGE
    """The model calls this node made (every attempt), summed."""


class RunPublic(FromRow):
    id: str
    workflow_id: str
    workflow_version: int
    status: RunStatus
    scope: RunScope
    target_node_id: str | None
    trigger_kind: TriggerKind
    inputs: dict[str, Any]
    outputs: dict[str, Any] | None
    error: dict[str, Any] | None
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None
    used_pinned: bool = False
    """Pinned outputs stood in for their nodes (``RunCreate.use_pinned``)."""


class RunDetail(RunPublic):
    nodes: list[NodeExecutionPublic]
    usage: UsageSums = NO_USAGE
    """The model calls the whole run made, summed."""


def _used_pinned(run: WorkflowRun | Row[Any]) -> bool:
    return run.use_pinned


def run_public(run: WorkflowRun) -> RunPublic:
    public = RunPublic.model_validate(run)
    public.used_pinned = _used_pinned(run)
    return public


_LISTED = tuple("used_pinned" if name == "use_pinned" else name for name in HistoryRow._fields)
"""``RunPublic``'s fields, in the order of a ``HistoryRow``'s values."""


def run_page(rows: RowPage[HistoryRow]) -> Page[RunPublic]:
    """A page of run history rows as the API lists it: validated in one call, from plain
    values (no attribute look-ups on ORM objects)."""
    return Page[RunPublic].model_validate(
        {
            "items": [dict(zip(_LISTED, row, strict=True)) for row in rows.items],
            "next_cursor": rows.next_cursor,
        }
    )


def run_detail(
    run: Mapping[str, Any],
    nodes: Sequence[Mapping[str, Any]],
    usage: Mapping[str | None, UsageTotals] | None = None,
) -> RunDetail:
    """The run and its nodes (their tables' columns by name: ``read_run_detail``'s rows);
    ``usage`` is the run's usage by node execution id (None for calls not tied to a node).

    Validated in one call from plain dicts, every field given: attribute look-ups on rows
    cost twice as much, and a field left to its default costs a deep copy of the default
    (pydantic copies a model default at every validation)."""
    by_node = usage or {}
    items: list[dict[str, Any]] = []
    for node in nodes:
        totals = by_node.get(node["id"])
        items.append({**node, "usage": NO_USAGE if totals is None else _sums(totals)})
    total = NO_USAGE
    if by_node:
        total = UsageSums(
            calls=sum(t.calls for t in by_node.values()),
            tokens_in=sum(t.tokens_in for t in by_node.values()),
            tokens_out=sum(t.tokens_out for t in by_node.values()),
            tokens_total=sum(t.tokens_total for t in by_node.values()),
            cost=sum((t.cost for t in by_node.values()), Decimal(0)),
        )
    return RunDetail.model_validate(
        {**run, "used_pinned": run["use_pinned"], "nodes": items, "usage": total}
    )


def _sums(totals: UsageTotals) -> UsageSums:
    return UsageSums(
        calls=totals.calls,
        tokens_in=totals.tokens_in,
        tokens_out=totals.tokens_out,
        tokens_total=totals.tokens_total,
        cost=totals.cost,
    )
