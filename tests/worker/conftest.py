"""The worker tests reuse the engine tests' node types and helpers (tests/engine/enginekit.py),
and share their fixtures: one PostgreSQL schema per module, a Redis namespace and worker
processes per test (``cluster``), and the API's engine (``api``)."""

from __future__ import annotations

import secrets
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))

from pgkit import drop_postgres_schema, make_postgres_database, require_postgres
from workerkit import Cluster, require_rabbitmq, require_redis, worker_registry

from flowloom.engine import Engine
from flowloom.storage.database import Database
from flowloom.storage.migrate import upgrade_database
from flowloom.worker.remote import RemoteEngine


@pytest.fixture(scope="module")
def services() -> None:
    # Synchronous: the PostgreSQL probe runs an event loop of its own.
    require_postgres()
    require_redis()


@pytest.fixture(scope="module")
async def pg(services: None) -> AsyncIterator[tuple[Database, str]]:
    schema = f"t_{secrets.token_hex(6)}"
    db = await make_postgres_database(schema)
    await upgrade_database(db)
    yield db, schema
    await db.dispose()
    await drop_postgres_schema(schema)


@pytest.fixture
def broker(request: pytest.FixtureRequest) -> str:
    """Redis unless a test asks for brokers by ``parametrize("broker", BROKERS, indirect=True)``."""
    name = str(getattr(request, "param", "redis"))
    if name == "rabbitmq":
        require_rabbitmq()
    return name


@pytest.fixture
async def cluster(
    pg: tuple[Database, str], tmp_path: Path, broker: str, request: pytest.FixtureRequest
) -> AsyncIterator[Cluster]:
    """A test marked ``node_queues({...})`` gets those routes (else the defaults)."""
    marker = request.node.get_closest_marker("node_queues")
    found = Cluster(pg[1], tmp_path, broker, node_queues=marker.args[0] if marker else None)
    yield found
    found.stop_all()


@pytest.fixture
async def api(pg: tuple[Database, str], cluster: Cluster) -> AsyncIterator[Engine]:
    engine = RemoteEngine.from_settings(pg[0], cluster.settings(), worker_registry())
    await engine.resume_unfinished()
    yield engine
    await engine.close()
