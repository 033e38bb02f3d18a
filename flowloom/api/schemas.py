"""What the API reads and writes: pydantic ``*Create / *Update / *Public`` families.

``*Public`` models are all a client ever sees of a row: no password hash, no key digest, no
session token digest. Lists are ``Page[...]``: ``{"items": [...], "next_cursor": ...}``, newest
first; pass ``next_cursor`` back as ``cursor`` for the next page.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Final, Generic, Literal, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from flowloom.exceptions import Problem
from flowloom.storage.enums import (
    ApiScope,
    NodeStatus,
    RunScope,
    RunStatus,
    TriggerKind,
    UserRole,
)
from flowloom.storage.repos.usage import UsageTotals
from flowloom.storage.tables import (
    ApiKey,
    AuditEntry,
    NodeExecution,
    User,
    ValidationLog,
    Workflow,
    WorkflowRun,
    WorkflowVersion,
)

__all__ = [
    "EXPORT_FORMAT",
    "INT32_MAX",
    "AnswerCreate",
    "ApiKeyCreate",
    "ApiKeyCreated",
    "ApiKeyPublic",
    "AuditEntryPublic",
    "ExternalLogin",
    "LoginRequest",
    "NodeExecutionPublic",
    "Page",
    "ProblemPublic",
    "RunCreate",
    "RunDetail",
    "RunPublic",
    "TokenPublic",
    "UsageSums",
    "UserPublic",
    "UserRegister",
    "ValidationLogPublic",
    "ValidationPublic",
    "VersionNumber",
    "VersionPublic",
    "VersionSummary",
    "WorkflowCreate",
    "WorkflowExport",
    "WorkflowPublic",
    "WorkflowSummary",
    "WorkflowUpdate",
    "WorkflowValidate",
]

T = TypeVar("T")

EXPORT_FORMAT: Final = "flowloom.workflow"

INT32_MAX: Final = 2**31 - 1
"""The largest value of an INTEGER column on PostgreSQL (SQLite's are wider): no integer the API
reads for such a column may be larger, or the database, not the caller, would refuse it."""

VersionNumber = Annotated[int, Field(ge=1, le=INT32_MAX)]
"""A workflow version number in a body or query (422 naming the field outside 1..2**31-1).
In a path, a number out of range is a version that cannot exist: 404 (``version_in_range``)."""


def version_in_range(version: int) -> bool:
    """Whether ``version`` could number a stored version at all."""
    return 1 <= version <= INT32_MAX


class _Public(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Page(BaseModel, Generic[T]):
    """One page of a listing, newest first."""

    items: list[T]
    next_cursor: str | None = None
    """Pass back as ``cursor`` to read the next (older) page; null on the last page."""


# ---- accounts


class UserRegister(BaseModel):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=8, max_length=256)
    username: str | None = Field(default=None, min_length=1, max_length=64)


class LoginRequest(BaseModel):
    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=256)


class ExternalLogin(BaseModel):
    token: str = Field(min_length=1, max_length=16_384)
    """A JWT signed by the configured identity provider."""
    password: str | None = Field(default=None, min_length=1, max_length=256)
    """To link the identity to an existing password account with the same email: that
    account's password (the token proves the identity, the password the account)."""


class UserPublic(_Public):
    id: str
    email: str
    username: str | None
    role: UserRole
    created_at: datetime
    last_login_at: datetime | None


class TokenPublic(BaseModel):
    access_token: str
    """The session token: send it as ``Authorization: Bearer``, or rely on the cookie."""
    token_type: Literal["bearer"] = "bearer"
    expires_at: datetime
    csrf_token: str
    """Send as ``X-CSRF-Token`` on unsafe requests that use the session cookie."""
    user: UserPublic


def user_public(user: User) -> UserPublic:
    return UserPublic.model_validate(user)


# ---- API keys


class ApiKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    scopes: list[ApiScope] = Field(min_length=1)
    expires_at: datetime | None = None
    """When the key stops working (with a time zone); never, if null."""


class ApiKeyPublic(_Public):
    id: str
    name: str
    prefix: str
    scopes: list[ApiScope]
    active: bool
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    key: str
    """The whole key, ``flk_<prefix>_<secret>``: shown this once, stored only as a digest."""


def api_key_public(key: ApiKey) -> ApiKeyPublic:
    return ApiKeyPublic.model_validate(key)


# ---- workflows


class ProblemPublic(BaseModel):
    message: str
    node_id: str | None = None
    port: str | None = None
    field: str | None = None


def problems_public(problems: list[Problem]) -> list[ProblemPublic]:
    return [
        ProblemPublic(message=p.message, node_id=p.node_id, port=p.port, field=p.field)
        for p in problems
    ]


class WorkflowCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    definition: dict[str, Any]
    """React Flow's document: ``{"schema_version": 1, "nodes": [...], "edges": [...]}``."""
    description: str | None = Field(default=None, max_length=10_000)
    nl_description: str | None = Field(default=None, max_length=10_000)


class WorkflowUpdate(BaseModel):
    """Only the fields sent change; ``description: null`` clears it."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    definition: dict[str, Any] | None = None
    description: str | None = Field(default=None, max_length=10_000)
    nl_description: str | None = Field(default=None, max_length=10_000)
    active: bool | None = None
    expected_version: VersionNumber | None = None
    """Refuse (409) unless the workflow is still at this version: no lost updates."""
    note: str | None = Field(default=None, max_length=500)
    """Saved with the new version, when the definition changes."""


class WorkflowValidate(BaseModel):
    definition: dict[str, Any]


class ValidationPublic(BaseModel):
    valid: bool
    problems: list[ProblemPublic]
    version: int | None = None


class WorkflowSummary(_Public):
    id: str
    name: str
    description: str | None
    version: int
    valid: bool = Field(validation_alias=AliasChoices("valid", "is_valid"))
    active: bool
    created_at: datetime
    updated_at: datetime


class WorkflowPublic(WorkflowSummary):
    nl_description: str | None
    definition: dict[str, Any]
    problems: list[ProblemPublic] = Field(default_factory=list)
    """What is wrong with the current version, when ``valid`` is false."""


def workflow_public(workflow: Workflow, problems: list[ProblemPublic]) -> WorkflowPublic:
    public = WorkflowPublic.model_validate(workflow)
    public.problems = problems
    return public


class WorkflowExport(BaseModel):
    """A workflow as a portable file: what ``export`` writes and ``import`` reads."""

    format: Literal["flowloom.workflow"] = EXPORT_FORMAT
    format_version: Literal[1] = 1
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)
    nl_description: str | None = Field(default=None, max_length=10_000)
    definition: dict[str, Any]


class VersionSummary(_Public):
    version: int
    note: str | None
    created_by: str | None
    created_at: datetime


class VersionPublic(VersionSummary):
    definition: dict[str, Any]


def version_public(row: WorkflowVersion) -> VersionPublic:
    return VersionPublic.model_validate(row)


class ValidationLogPublic(_Public):
    id: str
    version: int
    valid: bool
    problems: list[dict[str, Any]]
    created_at: datetime


def validation_log_public(row: ValidationLog) -> ValidationLogPublic:
    return ValidationLogPublic.model_validate(row)


# ---- runs


class RunCreate(BaseModel):
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


class AnswerCreate(BaseModel):
    """The answer to a WAITING node: an approval takes ``{"approved": true}`` and any notes."""

    model_config = ConfigDict(extra="allow")

    approved: bool | None = None
    action: Literal["step", "continue"] | None = None
    """For a breakpoint of a debug run."""


class UsageSums(BaseModel):
    calls: int
    tokens_in: int
    tokens_out: int
    tokens_total: int
    cost: Decimal
    """A decimal string, exact to the nano-unit."""


NO_USAGE: Final = UsageSums(calls=0, tokens_in=0, tokens_out=0, tokens_total=0, cost=Decimal(0))


class NodeExecutionPublic(_Public):
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


class RunPublic(_Public):
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


def _used_pinned(run: WorkflowRun) -> bool:
    return run.use_pinned


def run_public(run: WorkflowRun) -> RunPublic:
    public = RunPublic.model_validate(run)
    public.used_pinned = _used_pinned(run)
    return public


def run_detail(
    run: WorkflowRun,
    nodes: list[NodeExecution],
    usage: Mapping[str | None, UsageTotals] | None = None,
) -> RunDetail:
    """The run and its nodes; ``usage`` is the run's usage by node execution id (None for
    calls not tied to a node)."""
    public = RunPublic.model_validate(run)
    public.used_pinned = _used_pinned(run)
    by_node = usage or {}
    items = []
    for node in nodes:
        item = NodeExecutionPublic.model_validate(node)
        if (totals := by_node.get(node.id)) is not None:
            item.usage = _sums(totals)
        items.append(item)
    total = NO_USAGE
    if by_node:
        total = UsageSums(
            calls=sum(t.calls for t in by_node.values()),
            tokens_in=sum(t.tokens_in for t in by_node.values()),
            tokens_out=sum(t.tokens_out for t in by_node.values()),
            tokens_total=sum(t.tokens_total for t in by_node.values()),
            cost=sum((t.cost for t in by_node.values()), Decimal(0)),
        )
    return RunDetail(**public.model_dump(), nodes=items, usage=total)


def _sums(totals: UsageTotals) -> UsageSums:
    return UsageSums(
        calls=totals.calls,
        tokens_in=totals.tokens_in,
        tokens_out=totals.tokens_out,
        tokens_total=totals.tokens_total,
        cost=totals.cost,
    )


# ---- the rest


class AuditEntryPublic(_Public):
    id: str
    action: str
    object_type: str | None
    object_id: str | None
    ip: str | None
    user_agent: str | None
    details: dict[str, Any]
    created_at: datetime


def audit_public(entry: AuditEntry) -> AuditEntryPublic:
    return AuditEntryPublic.model_validate(entry)
