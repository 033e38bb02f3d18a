"""Administration of the instance: settings, the AI model table, packages, users and API keys.

Bodies here are strict (``StrictBody``): a field the route does not know is refused, so a typo
never silently changes nothing.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Final, Literal

from pydantic import ConfigDict, Field, StrictBool

from flowloom.api.schemas.billing import PackageOffer
from flowloom.api.schemas.common import INT32_MAX, ApiModel, StrictBody
from flowloom.storage.repos.system_settings import InstanceSettings
from flowloom.storage.tables import Package, User

_INT64_MAX: Final = 2**63 - 1

Price = Annotated[Decimal, Field(ge=0, max_digits=20, decimal_places=9)]
"""Per million tokens or per interval: exact, non-negative, nine decimals at most. Send it as a
string ("0.15") to keep it exact; it is answered as a string."""

Currency = Annotated[str, Field(pattern=r"^[A-Za-z]{3}$")]

RetentionDays = Annotated[int, Field(ge=1, le=36_500)]


class InstanceSettingsPublic(ApiModel):
    registration_open: bool
    """Whether people may sign up with an email and a password."""
    default_package: str | None
    """The package (by name) of every user without a subscription; null: they have no limits."""
    retain_runs_days: int | None
    """Finished runs older than this many days are deleted daily; null: kept."""
    retain_node_outputs_days: int | None
    """Node inputs and outputs of finished runs older than this are cleared daily; null: kept."""
    retain_usage_days: int | None
    """Usage rows older than this are deleted daily (at least 32); null: kept."""
    retain_audit_days: int | None
    """Audit entries older than this are deleted daily; null: kept."""
    retain_generations_days: int | None
    """Workflow-generation history older than this is deleted daily; null: kept."""
    retain_validation_days: int | None
    """Validation logs older than this are deleted daily; null: kept."""


class InstanceSettingsUpdate(StrictBody):
    """Send only what changes; null restores a setting's default (retention: keep all)."""

    registration_open: StrictBool | None = None
    default_package: str | None = Field(default=None, min_length=1, max_length=100)
    retain_runs_days: RetentionDays | None = None
    retain_node_outputs_days: RetentionDays | None = None
    retain_usage_days: Annotated[int, Field(ge=32, le=36_500)] | None = None
    retain_audit_days: RetentionDays | None = None
    retain_generations_days: RetentionDays | None = None
    retain_validation_days: RetentionDays | None = None


class AiModelPublic(ApiModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    provider: str
    model: str
    display_name: str | None
    input_price_per_mtok: Decimal
    """Per million input tokens, a decimal string."""
    output_price_per_mtok: Decimal
    """Per million output tokens, a decimal string."""
    price_per_image: Decimal | None
    """Per image made, for image models priced so (added to any token price)."""
    currency: str
    context_window: int | None
    supports_images: bool
    supports_json: bool
    enabled: bool
    """A disabled model is refused before any call to it is sent."""
    created_at: datetime
    updated_at: datetime


class AiModelCreate(StrictBody):
    provider: Literal["openai", "gemini", "anthropic"]
    model: str = Field(min_length=1, max_length=200)
    input_price_per_mtok: Price = Decimal(0)
    output_price_per_mtok: Price = Decimal(0)
    price_per_image: Price | None = None
    display_name: str | None = Field(default=None, max_length=200)
    currency: Currency = "usd"
    context_window: int | None = Field(default=None, ge=1, le=INT32_MAX)
    supports_images: bool = False
    supports_json: bool = True
    enabled: bool = True


class AiModelUpdate(StrictBody):
    """Send only what changes. Provider and model name are the entry's identity and stay."""

    input_price_per_mtok: Price | None = None
    output_price_per_mtok: Price | None = None
    price_per_image: Price | None = None
    display_name: str | None = Field(default=None, max_length=200)
    currency: Currency | None = None
    context_window: int | None = Field(default=None, ge=1, le=INT32_MAX)
    supports_images: bool | None = None
    supports_json: bool | None = None
    enabled: bool | None = None


class PackagePublic(PackageOffer):
    active: bool
    """Inactive: nobody new can subscribe; current subscribers keep it."""
    public: bool
    """Offered to every user, who may subscribe on their own."""
    created_at: datetime
    updated_at: datetime
    subscribers: int = 0
    """Subscriptions in force now."""


class PackageCreate(StrictBody):
    name: str = Field(min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=10_000)
    price: Price = Decimal(0)
    currency: Currency = "usd"
    interval: Literal["month", "year"] = "month"
    features: list[Any] = Field(default_factory=list, max_length=100)
    max_runs_per_month: int | None = Field(default=None, ge=0, le=INT32_MAX)
    max_tokens_per_month: int | None = Field(default=None, ge=0, le=_INT64_MAX)
    active: bool = True
    public: bool = False


class PackageUpdate(StrictBody):
    """Send only what changes; null limits mean unlimited."""

    name: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=10_000)
    price: Price | None = None
    currency: Currency | None = None
    interval: Literal["month", "year"] | None = None
    features: list[Any] | None = Field(default=None, max_length=100)
    max_runs_per_month: int | None = Field(default=None, ge=0, le=INT32_MAX)
    max_tokens_per_month: int | None = Field(default=None, ge=0, le=_INT64_MAX)
    active: bool | None = None
    public: bool | None = None


class PackageRef(ApiModel):
    id: str
    name: str


class AdminUserPublic(ApiModel):
    id: str
    email: str
    username: str | None
    role: str
    credits: int
    is_active: bool
    created_at: datetime
    last_login_at: datetime | None
    package: PackageRef | None
    """The package of the subscription in force; null: none (the default package applies)."""


class AdminUserDetail(AdminUserPublic):
    runs_this_month: int
    tokens_this_month: int
    plan: PackageRef | None
    """The package whose limits apply now: the subscription's, or the default one."""


class RoleUpdate(StrictBody):
    role: Literal["user", "admin"]


class SubscriptionSet(StrictBody):
    package_id: str = Field(min_length=1, max_length=40)
    end_date: datetime | None = None
    """When the subscription ends; null: it runs until changed."""


class SubscriptionPublic(ApiModel):
    id: str
    user_id: str
    package: PackageRef
    status: str
    start_date: datetime
    end_date: datetime | None


class CreditGrant(StrictBody):
    amount: int = Field(ge=-1_000_000_000, le=1_000_000_000)
    """Credits to add; negative takes them back (never below zero). Each buys one run past the
    plan's monthly run limit."""
    reason: str | None = Field(default=None, max_length=500)


class CreditsPublic(ApiModel):
    user_id: str
    credits: int


class UserDisabled(AdminUserPublic):
    sessions_ended: int
    api_keys_revoked: int


class ApiKeyRateLimitSet(StrictBody):
    rate_limit: str | None = Field(max_length=32, examples=["100/s"])
    """``<count>/<s|m|h>``: this key's own rate limit; null: the instance default applies."""


class AdminApiKeyPublic(ApiModel):
    id: str
    user_id: str
    name: str
    prefix: str
    rate_limit: str | None


class ModelUsage(ApiModel):
    provider: str
    model: str
    calls: int
    tokens_in: int
    tokens_out: int
    tokens_total: int
    cost: Decimal


def settings_public(current: InstanceSettings) -> InstanceSettingsPublic:
    return InstanceSettingsPublic(**asdict(current))


def package_public(package: Package, subscribers: int) -> PackagePublic:
    public = PackagePublic.model_validate(package)
    public.subscribers = subscribers
    return public


def admin_user_public(user: User, package: Package | None) -> AdminUserPublic:
    return AdminUserPublic(
        id=user.id,
        email=user.email,
        username=user.username,
        role=user.role,
        credits=user.credits,
        is_active=user.is_active,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
        package=None if package is None else PackageRef(id=package.id, name=package.name),
    )
