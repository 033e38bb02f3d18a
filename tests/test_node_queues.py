"""Routing node types to queues of their own: which queue a type goes to, what a worker
consumes, and the settings that refuse a route that cannot work."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from flowloom.exceptions import ConfigurationError
from flowloom.settings import Settings
from flowloom.worker.celery_app import worker_queues
from flowloom.worker.node_queues import NodeRoutes


def test_an_exact_type_wins_over_patterns_and_a_longer_pattern_over_a_shorter() -> None:
    routes = NodeRoutes(
        {"image.*": "heavy", "image.crop": "", "image.re*": "resize", "ai.image": "gpu"},
        namespace="fl",
    )
    assert routes.queue_for("image.convert") == "fl.heavy"
    assert routes.queue_for("image.resize") == "fl.resize"
    assert routes.queue_for("image.crop") is None  # "" keeps it on the driver
    assert routes.queue_for("ai.image") == "fl.gpu"
    assert routes.queue_for("text.split") is None
    assert routes.queues() == ["fl.gpu", "fl.heavy", "fl.resize"]


def test_the_default_routes_send_image_nodes_to_heavy() -> None:
    settings = Settings(worker_queue="fl")
    routes = NodeRoutes(settings.worker_node_queues, namespace=settings.worker_queue)
    assert routes.queue_for("image.resize") == "fl.heavy"
    assert routes.queue_for("ai.llm") is None


def test_a_worker_consumes_every_queue_unless_told_which() -> None:
    settings = Settings(worker_queue="fl", worker_node_queues={"image.*": "heavy"})
    assert worker_queues(settings) == ["fl", "fl.heavy"]
    assert worker_queues(settings, ["heavy"]) == ["fl.heavy"]
    assert worker_queues(settings, ["runs", "heavy", "runs"]) == ["fl", "fl.heavy"]
    with pytest.raises(
        ConfigurationError, match="no queue named 'gpu': the queues are runs, heavy"
    ):
        worker_queues(settings, ["gpu"])


@pytest.mark.parametrize(
    ("routes", "named"),
    [
        ({"image.*": "heavy queue"}, "queue 'heavy queue' for 'image.*'"),
        ({"image.*": "x" * 51}, "must be 1 to 50 letters"),
        ({"": "heavy"}, "node type pattern '' must have 1 to 100 characters"),
        ({"image.*": "héavy"}, "queue 'héavy'"),
    ],
)
def test_a_route_that_cannot_work_is_refused_naming_it(routes: dict[str, str], named: str) -> None:
    with pytest.raises(ValidationError, match=named):
        Settings(worker_node_queues=routes)


def test_routes_come_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWLOOM_WORKER_NODE_QUEUES", '{"ai.image": "gpu", "image.*": ""}')
    assert Settings().worker_node_queues == {"ai.image": "gpu", "image.*": ""}


async def test_a_worker_starts_uncommitted_only_the_pure_nodes_it_runs_itself() -> None:
    from types import SimpleNamespace

    from flowloom.nodes.registry import default_registry
    from flowloom.storage.database import Database
    from flowloom.storage.migrate import upgrade_database
    from flowloom.worker.host import WorkerEngine

    db = Database("sqlite://")
    await upgrade_database(db)
    engine = WorkerEngine(db, default_registry(), batch_window_s=0.01)
    try:
        engine.routes = NodeRoutes({"image.*": "heavy"}, namespace="fl")

        def spec(node_type: str, *, pure: bool) -> Any:
            return SimpleNamespace(pure=pure, definition=SimpleNamespace(type=node_type))

        assert engine.starts_uncommitted(spec("text.split", pure=True))
        assert not engine.starts_uncommitted(spec("http.request", pure=False))
        # Routed to a queue of its own: its job checks its claim in the database first.
        assert not engine.starts_uncommitted(spec("image.crop", pure=True))
        engine.local_queues = frozenset({"fl.heavy"})  # ... unless this worker consumes it
        assert engine.starts_uncommitted(spec("image.crop", pure=True))
        engine.batch_window_s = 0  # batching off
        assert not engine.starts_uncommitted(spec("text.split", pure=True))
    finally:
        await engine.close()
        await db.dispose()
