"""What the app holds for its whole life, made once at start and reached by the dependencies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flowloom.api.external_auth import ExternalVerifier
from flowloom.api.first_password import FirstPassword
from flowloom.api.metrics import Metrics
from flowloom.api.run_feed import RunFeeds
from flowloom.api.security import LoginLimiter
from flowloom.engine import Engine
from flowloom.nodes.registry import NodeRegistry
from flowloom.settings import Settings
from flowloom.storage.database import Database
from flowloom.storage.maintenance.daily import MaintenanceLoop

__all__ = ["AppState"]


@dataclass(slots=True)
class AppState:
    settings: Settings
    db: Database
    registry: NodeRegistry
    secret_key: bytes
    """Signs CSRF tokens (and, later, anything else the server must be able to check)."""
    limiter: LoginLimiter
    verifier: ExternalVerifier
    metrics: Metrics
    _node_types: dict[str, dict[str, Any]] | None = None
    maintenance: MaintenanceLoop | None = None
    """The daily maintenance pass, when the settings run one."""
    engine: Engine | None = None
    """Set once the lifespan has started it; requests never see None."""

    first_password: FirstPassword | None = None
    """The local account's first password, stored once started (``flowloom serve``'s first
    start); sign-ins wait for it."""

    feeds: RunFeeds | None = None
    """The live feeds of the runs followed now (on the engine's bus, made at first use)."""

    def require_engine(self) -> Engine:
        if self.engine is None:
            raise RuntimeError("the engine is not running (the app's lifespan has not started)")
        return self.engine

    def node_types(self) -> dict[str, dict[str, Any]]:
        """The registry's schemas by type name, made at first use and kept: building the JSON
        Schemas is slow, and checking the default configs loads the template engine."""
        if self._node_types is None:
            self._node_types = {schema["type"]: schema for schema in self.registry.schemas()}
        return self._node_types

    def run_feeds(self) -> RunFeeds:
        engine = self.require_engine()
        if self.feeds is None or self.feeds.bus is not engine.bus:
            self.feeds = RunFeeds(engine.bus)
        return self.feeds
