"""Repositories: the only way the engine and the API touch the database.

Each is a small class bound to one ``AsyncSession``; callers compose several in one transaction::

    async with db.write() as session:
        workflow = await WorkflowRepo(session, owner_id=user_id).create(name=..., definition=...)
        await AuditRepo(session).record(user_id=user_id, action="workflow.create", ...)

Owner-scoped repositories take ``owner_id`` when they are made and filter every query by it:
another user's id behaves exactly like a missing one (NotFound). Methods are async and
keyword-only, return ORM rows, and flush (never commit), so the database's refusals surface as
Conflict, NotFound or InputError inside the call that caused them. Listings are newest first, a
``Page`` at a time, walked with the keyset cursor it returns.
"""

from flowloom.storage.repos.ai_models import AiModelRepo
from flowloom.storage.repos.api_keys import ApiKeyRepo, authenticate_api_key
from flowloom.storage.repos.audit import AuditRepo, scrub_details
from flowloom.storage.repos.memory import MemoryRepo, purge_expired_memory
from flowloom.storage.repos.runs import (
    RunRepo,
    active_runs_by_status,
    average_successful_duration,
)
from flowloom.storage.repos.triggers import TriggerRepo
from flowloom.storage.repos.usage import UsageRepo, instance_usage_by_model
from flowloom.storage.repos.users import UserRepo
from flowloom.storage.repos.workflows import UNSET, WorkflowRepo

__all__ = [
    "UNSET",
    "AiModelRepo",
    "ApiKeyRepo",
    "AuditRepo",
    "MemoryRepo",
    "RunRepo",
    "TriggerRepo",
    "UsageRepo",
    "UserRepo",
    "WorkflowRepo",
    "active_runs_by_status",
    "authenticate_api_key",
    "average_successful_duration",
    "instance_usage_by_model",
    "purge_expired_memory",
    "scrub_details",
]
