"""Plans and quotas: which package a user is on, what the month has used, and the checks that
refuse a run or a provider call before it starts when a limit is used up (``PlanQuota``)."""

from flowloom.billing.guard import GuardedProvider, QuotaGuardedResolver
from flowloom.billing.plans import MonthStatus, Plan, month_status, month_window, plan_of
from flowloom.billing.quotas import CREDIT_SPENT, PlanQuota

__all__ = [
    "CREDIT_SPENT",
    "GuardedProvider",
    "MonthStatus",
    "Plan",
    "PlanQuota",
    "QuotaGuardedResolver",
    "month_status",
    "month_window",
    "plan_of",
]
