"""Plans: packages with limits and prices, and who is subscribed to which (seed 004)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from flowloom.storage.enums import SubscriptionStatus
from flowloom.storage.tables.base import ID_LENGTH, Base, TimestampMixin, check_in, utcnow

__all__ = ["Package", "UserSubscription"]


class Package(TimestampMixin, Base):
    """A plan. A NULL limit means unlimited."""

    __tablename__ = "packages"
    __table_args__ = (
        CheckConstraint("interval IN ('month', 'year')", name="interval_valid"),
        CheckConstraint("price >= 0", name="price_not_negative"),
        CheckConstraint(
            "(max_runs_per_month IS NULL OR max_runs_per_month >= 0)"
            " AND (max_tokens_per_month IS NULL OR max_tokens_per_month >= 0)",
            name="limits_not_negative",
        ),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    price: Mapped[Decimal] = mapped_column(default=Decimal(0))
    currency: Mapped[str] = mapped_column(String(3), default="usd")
    interval: Mapped[str] = mapped_column(String(8), default="month")
    features: Mapped[list[Any]] = mapped_column(default=list)
    max_runs_per_month: Mapped[int | None]
    max_tokens_per_month: Mapped[int | None] = mapped_column(BigInteger)
    active: Mapped[bool] = mapped_column(default=True)
    public: Mapped[bool] = mapped_column(default=False, server_default=false())
    """Offered to every user, who may subscribe to it (and cancel) on their own; others are
    given by an administrator."""


class UserSubscription(TimestampMixin, Base):
    __tablename__ = "user_subscriptions"
    __table_args__ = (
        check_in("status", SubscriptionStatus),
        CheckConstraint("end_date IS NULL OR end_date >= start_date", name="dates_ordered"),
        Index(None, "user_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    package_id: Mapped[str] = mapped_column(
        ForeignKey("packages.id", ondelete="RESTRICT"), index=True
    )
    """A package with subscribers cannot be deleted, only deactivated."""
    status: Mapped[str] = mapped_column(String(16), default=SubscriptionStatus.ACTIVE)
    start_date: Mapped[datetime] = mapped_column(default=utcnow)
    end_date: Mapped[datetime | None]
