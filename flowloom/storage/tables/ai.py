"""AI: the model table with prices, generation history, agents, threads, messages, usage."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from flowloom.storage.enums import MessageRole, UsageType
from flowloom.storage.tables.base import (
    ID_LENGTH,
    Base,
    CreatedAtMixin,
    SoftDeleteMixin,
    TimestampMixin,
    check_in,
)
from flowloom.storage.tables.partial_indexes import partial_index

__all__ = ["Agent", "AiGeneration", "AiModel", "Message", "Thread", "Usage"]


class AiModel(TimestampMixin, Base):
    """A model a provider offers, with its prices per million tokens (used to cost usage)."""

    __tablename__ = "ai_models"
    __table_args__ = (
        UniqueConstraint("provider", "model"),
        CheckConstraint(
            "input_price_per_mtok >= 0 AND output_price_per_mtok >= 0", name="prices_not_negative"
        ),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(200))
    display_name: Mapped[str | None] = mapped_column(String(200))
    input_price_per_mtok: Mapped[Decimal] = mapped_column(default=Decimal(0))
    output_price_per_mtok: Mapped[Decimal] = mapped_column(default=Decimal(0))
    price_per_image: Mapped[Decimal | None]
    """For image models priced per image made (added to any token price); None: none."""
    currency: Mapped[str] = mapped_column(String(3), default="usd")
    context_window: Mapped[int | None]
    supports_images: Mapped[bool] = mapped_column(default=False)
    supports_json: Mapped[bool] = mapped_column(default=True)
    enabled: Mapped[bool] = mapped_column(default=True)


class AiGeneration(CreatedAtMixin, Base):
    """One attempt at turning a plain-language request into a workflow (seeds 002, 003)."""

    __tablename__ = "ai_generation_history"
    __table_args__ = (
        CheckConstraint("outcome IN ('valid', 'invalid', 'error')", name="outcome_valid"),
        Index(None, "user_id", "id"),
        Index(None, "workflow_id"),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    workflow_id: Mapped[str | None] = mapped_column(ForeignKey("workflows.id", ondelete="SET NULL"))
    prompt: Mapped[str] = mapped_column(Text)
    provider: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(200))
    attempt: Mapped[int] = mapped_column(default=1)
    definition: Mapped[dict[str, Any] | None]
    problems: Mapped[list[Any]] = mapped_column(default=list)
    outcome: Mapped[str] = mapped_column(String(16))
    tokens_in: Mapped[int] = mapped_column(default=0)
    tokens_out: Mapped[int] = mapped_column(default=0)


class Agent(TimestampMixin, SoftDeleteMixin, Base):
    """An AI agent: instructions, tools, context and model (seed 004)."""

    __tablename__ = "agents"
    __table_args__ = (Index(None, "user_id", "id"), Index(None, "name"))

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    instructions: Mapped[str] = mapped_column(Text)
    tools: Mapped[list[Any]] = mapped_column(default=list)
    context: Mapped[str | None] = mapped_column(Text)
    provider: Mapped[str | None] = mapped_column(String(32))
    model: Mapped[str | None] = mapped_column(String(200))


class Thread(TimestampMixin, SoftDeleteMixin, Base):
    """A conversation, optionally with an agent (seed 004)."""

    __tablename__ = "threads"
    __table_args__ = (Index(None, "user_id", "id"),)

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    agent_id: Mapped[str | None] = mapped_column(
        ForeignKey("agents.id", ondelete="SET NULL"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    storage_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    instructions: Mapped[str | None] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(String(200))


class Message(CreatedAtMixin, Base):
    """One message of a thread."""

    __tablename__ = "messages"
    __table_args__ = (check_in("role", MessageRole), Index(None, "thread_id", "id"))

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    thread_id: Mapped[str] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    tool_calls: Mapped[list[Any] | None]
    tokens_in: Mapped[int] = mapped_column(default=0)
    tokens_out: Mapped[int] = mapped_column(default=0)


class Usage(CreatedAtMixin, Base):
    """One billable call: who, through which key, in which run, which model, tokens and cost.

    Usage outlives pruned runs (``run_id`` becomes NULL): it is billing history.
    """

    __tablename__ = "usage"
    __table_args__ = (
        check_in("type", UsageType),
        CheckConstraint(
            "tokens_in >= 0 AND tokens_out >= 0 AND tokens_total = tokens_in + tokens_out",
            name="tokens_consistent",
        ),
        CheckConstraint("cost >= 0", name="cost_not_negative"),
        Index(None, "user_id", "created_at"),
        Index(None, "api_key_id", "created_at"),
        Index(None, "provider", "model"),
        Index(None, "run_id"),
        # Deleting a node execution (pruning) sets its usage rows' reference to NULL.
        partial_index("node_execution_id", "node_execution_id IS NOT NULL"),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    api_key_id: Mapped[str | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"))
    run_id: Mapped[str | None] = mapped_column(ForeignKey("workflow_runs.id", ondelete="SET NULL"))
    node_execution_id: Mapped[str | None] = mapped_column(
        ForeignKey("node_executions.id", ondelete="SET NULL")
    )
    provider: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(16), default=UsageType.CHAT)
    tokens_in: Mapped[int] = mapped_column(default=0)
    tokens_out: Mapped[int] = mapped_column(default=0)
    tokens_total: Mapped[int] = mapped_column(default=0)
    cost: Mapped[Decimal] = mapped_column(default=Decimal(0))
    currency: Mapped[str] = mapped_column(String(3), default="usd")
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata")
