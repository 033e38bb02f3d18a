"""The declarative base, the column types every table shares, and the common mixins."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    MetaData,
    Numeric,
    String,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeEngine

__all__ = [
    "ID_LENGTH",
    "Base",
    "CreatedAtMixin",
    "JSONType",
    "Money",
    "PostgresJSONB",
    "SoftDeleteMixin",
    "TimestampMixin",
    "UTCDateTime",
    "check_in",
    "utcnow",
]

ID_LENGTH = 40
"""Room for the longest prefix plus ``_`` plus 26 characters."""

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class PostgresJSONB(TypeDecorator[Any]):
    """PostgreSQL's JSONB, as ``JSONType``'s PostgreSQL variant. SQLAlchemy's PostgreSQL dialect,
    which defines it (some 40 ms and 2 MiB to import), is loaded when a PostgreSQL database first
    uses the type: never by a server on SQLite."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        from sqlalchemy.dialects.postgresql import JSONB

        return dialect.type_descriptor(JSONB())


JSONType = JSON().with_variant(PostgresJSONB(), "postgresql")
"""JSON on SQLite, JSONB (indexable, compact) on PostgreSQL."""


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC going in and coming out, on both databases.

    SQLite has no timestamp type; there it is stored as ISO text, which sorts correctly.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: flowloom stores aware UTC times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_NANO = Decimal("0.000000001")


class Money(TypeDecorator[Decimal]):
    """An exact amount of money with nine decimal places (a nano-unit).

    PostgreSQL stores NUMERIC(20, 9). SQLite has no exact decimal, so there it is a 64-bit count of
    nano-units: sums stay exact (up to 9.2 billion) instead of drifting as floats do.
    """

    impl = Numeric(20, 9)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(20, 9))

    def process_bind_param(self, value: Decimal | int | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        amount = Decimal(value).quantize(_NANO, rounding=ROUND_HALF_EVEN)
        return int(amount.scaleb(9)) if dialect.name == "sqlite" else amount

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return (Decimal(int(value)) * _NANO).quantize(_NANO)
        return Decimal(value).quantize(_NANO)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSONType,
        list[Any]: JSONType,
        Decimal: Money(),
        str: String(),
    }


class CreatedAtMixin:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TimestampMixin(CreatedAtMixin):
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SoftDeleteMixin:
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)


def check_in(column: str, values: type[StrEnum], *, name: str | None = None) -> CheckConstraint:
    """A CHECK that ``column`` holds one of the enum's values."""
    allowed = ", ".join(f"'{member.value}'" for member in values)
    return CheckConstraint(f"{column} IN ({allowed})", name=name or f"{column}_valid")
