"""Every table of flowloom, as typed SQLAlchemy 2 models on one metadata."""

from flowloom.storage.tables.accounts import ApiKey, User, UserIdentity, UserSettings
from flowloom.storage.tables.ai import Agent, AiGeneration, AiModel, Message, Thread, Usage
from flowloom.storage.tables.base import Base
from flowloom.storage.tables.billing import Package, UserSubscription
from flowloom.storage.tables.integrations import Credential, Integration, OAuthToken
from flowloom.storage.tables.runs import Artifact, DebugSession, NodeExecution, WorkflowRun
from flowloom.storage.tables.system import AuditEntry, SystemSetting
from flowloom.storage.tables.workflows import (
    NodeTemplate,
    ValidationLog,
    Workflow,
    WorkflowMemory,
    WorkflowTrigger,
    WorkflowVersion,
)

__all__ = [
    "Agent",
    "AiGeneration",
    "AiModel",
    "ApiKey",
    "Artifact",
    "AuditEntry",
    "Base",
    "Credential",
    "DebugSession",
    "Integration",
    "Message",
    "NodeExecution",
    "NodeTemplate",
    "OAuthToken",
    "Package",
    "SystemSetting",
    "Thread",
    "Usage",
    "User",
    "UserIdentity",
    "UserSettings",
    "UserSubscription",
    "ValidationLog",
    "Workflow",
    "WorkflowMemory",
    "WorkflowRun",
    "WorkflowTrigger",
    "WorkflowVersion",
]

metadata = Base.metadata
