"""Distributed mode end to end: an executor=celery engine (the API's) on PostgreSQL, real Redis,
and real ``celery worker`` processes driving the runs."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from enginekit import definition, edge, make_owner, node, node_rows, save_workflow
from sqlalchemy import update
from workerkit import BROKERS, Cluster, settled_reads, worker_registry

from flowloom.engine import Engine
from flowloom.storage.database import Database
from flowloom.storage.enums import NodeStatus, RunStatus
from flowloom.storage.tables import NodeExecution, WorkflowRun

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def fan_out() -> dict[str, Any]:
    """a -> (b, c, d) -> total: a fan-out and a join."""
    return definition(
        [
            node("a", "test.add", {"amount": 1}),
            node("b", "test.add", {"amount": 10}),
            node("c", "test.add", {"amount": 100}),
            node("d", "test.sleep", {"seconds": 0.2}),
            node("total", "test.sum"),
        ],
        [
            edge("a", "b"),
            edge("a", "c"),
            edge("a", "d"),
            edge("b", "total", target_handle="values"),
            edge("c", "total", target_handle="values"),
            edge("d", "total", target_handle="values"),
        ],
    )


async def wait_for_node(db: Database, run_id: str, node_id: str, status: NodeStatus) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rows = await node_rows(db, run_id)
        if rows[node_id].status == status:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{node_id} never became {status}")


@pytest.mark.parametrize("broker", BROKERS, indirect=True)
async def test_fan_out_and_join_gives_the_embedded_results(
    pg: tuple[Database, str], cluster: Cluster, api: Engine
) -> None:
    db = pg[0]
    cluster.start_worker()
    owner = await make_owner(db)
    workflow_id = await save_workflow(db, owner, fan_out())

    embedded = Engine(db, worker_registry())
    try:
        local = await embedded.run_to_end(owner_id=owner, workflow_id=workflow_id, use_cache=False)
    finally:
        await embedded.close()

    events = api.bus.subscribe()
    started = time.monotonic()
    remote = await asyncio.wait_for(
        api.run_to_end(owner_id=owner, workflow_id=workflow_id, use_cache=False), 60
    )
    print(f"distributed fan-out run: {time.monotonic() - started:.2f} s")
    assert local.status is RunStatus.COMPLETED
    assert remote.status is RunStatus.COMPLETED, cluster.logs()
    assert remote.outputs == local.outputs
    assert remote.outputs == {"total": {"value": 11 + 101 + 1, "count": 3}}
    rows = await node_rows(db, remote.run_id)
    assert {n: r.status for n, r in rows.items()} == dict.fromkeys(rows, NodeStatus.SUCCEEDED)
    # The workers' events reached this process's bus, in order, ending with run.completed.
    seen: list[str] = []
    while True:
        event = await asyncio.wait_for(anext(aiter(events)), 10)
        if event.run_id == remote.run_id:
            seen.append(event.type if event.node_id is None else f"{event.type}:{event.node_id}")
        if event.type == "run.completed" and event.run_id == remote.run_id:
            break
    events.close()
    assert seen[0] == "run.started"
    assert seen.index("node.succeeded:a") < seen.index("node.started:b")
    assert seen.count("node.succeeded:total") == 1
    # One round per delivery: a run driven to its end is not claimed and looked up again
    # (which would log "nothing to do" right after its end; its end itself is not logged).
    await asyncio.sleep(1.0)
    assert f"run {remote.run_id}: nothing to do" not in cluster.logs()
    assert f"run {remote.run_id}: driven to the end" not in cluster.logs(), "only at DEBUG"


async def test_two_workers_share_many_runs(
    pg: tuple[Database, str], cluster: Cluster, api: Engine
) -> None:
    db = pg[0]
    cluster.start_worker()
    cluster.start_worker()
    owner = await make_owner(db)
    graph = definition(
        [
            node("a", "test.add"),
            node("w1", "test.whoami", {"seconds": 0.3}),
            node("w2", "test.whoami", {"seconds": 0.3}),
        ],
        [edge("a", "w1"), edge("a", "w2")],
    )
    workflow_id = await save_workflow(db, owner, graph)
    started = time.monotonic()
    run_ids = [
        await api.start_run(owner_id=owner, workflow_id=workflow_id, use_cache=False)
        for _ in range(12)
    ]
    results = await asyncio.wait_for(asyncio.gather(*(api.wait(r) for r in run_ids)), 90)
    print(f"12 runs on two workers: {time.monotonic() - started:.2f} s")
    assert [r.status for r in results] == [RunStatus.COMPLETED] * 12, cluster.logs()
    pids: set[int] = set()
    for result in results:
        rows = await node_rows(db, result.run_id)
        for row in rows.values():
            assert row.status == NodeStatus.SUCCEEDED
            assert row.attempt == 1
            assert [a["status"] for a in row.attempts] == ["SUCCEEDED"]
        outputs = result.outputs or {}
        assert outputs["w1"]["pid"] == outputs["w2"]["pid"]  # one run, one worker
        pids.add(outputs["w1"]["pid"])
    assert pids == {w.pid for w in cluster.workers}


@pytest.mark.parametrize("broker", BROKERS, indirect=True)
async def test_an_approval_answered_from_the_api_resumes_on_a_worker(
    pg: tuple[Database, str], cluster: Cluster, api: Engine
) -> None:
    db = pg[0]
    cluster.start_worker()
    owner = await make_owner(db)
    graph = definition(
        [
            node("ask", "human.approval", {"prompt": "ship it?"}),
            node("yes", "test.whoami", {"seconds": 0.01}),
        ],
        [edge("ask", "yes", source_handle="approved")],
    )
    workflow_id = await save_workflow(db, owner, graph)
    parked = await asyncio.wait_for(api.run_to_end(owner_id=owner, workflow_id=workflow_id), 60)
    assert parked.status is RunStatus.WAITING, cluster.logs()
    # Its delivery ends after two looks at most (one more for an answer that raced the end),
    # not in a loop that loads a parked run again and again.
    await asyncio.to_thread(_logged, cluster, f"run {parked.run_id}: waiting")

    await api.answer(parked.run_id, "ask", {"approved": True, "comment": "go"})
    done = await asyncio.wait_for(api.wait(parked.run_id), 60)
    assert done.status is RunStatus.COMPLETED, cluster.logs()
    assert (done.outputs or {})["yes"]["pid"] == cluster.workers[0].pid
    rows = await node_rows(db, parked.run_id)
    assert rows["ask"].status == NodeStatus.SUCCEEDED
    assert rows["ask"].outputs["approved"]["comment"] == "go"


async def test_settling_reads_a_run_that_waits_but_not_one_whose_end_came_as_an_event(
    pg: tuple[Database, str], cluster: Cluster, api: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = pg[0]
    cluster.start_worker()
    owner = await make_owner(db)
    reads = settled_reads(api, monkeypatch)
    finishing = await api.start_run(
        owner_id=owner, workflow_id=await save_workflow(db, owner, fan_out())
    )
    await asyncio.wait_for(api.settle(finishing), 60)
    assert reads == [], "the run's end came as an event: nothing to read"
    assert (await api.wait(finishing)).status is RunStatus.COMPLETED, cluster.logs()

    approval = definition([node("ask", "human.approval", {"prompt": "ship it?"})], [])
    parking = await api.start_run(
        owner_id=owner, workflow_id=await save_workflow(db, owner, approval)
    )
    reads.clear()
    await asyncio.wait_for(api.settle(parking), 60)
    assert reads[-1:] == [parking], "only the rows say a WAITING run has nothing left to do"
    rows = await node_rows(db, parking)
    assert rows["ask"].status == NodeStatus.WAITING


def _logged(cluster: Cluster, line: str, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while line not in cluster.logs():
        assert time.monotonic() < deadline, f"never logged {line!r}:\n{cluster.logs()[-3000:]}"
        time.sleep(0.05)


async def test_cancel_from_the_api_stops_a_running_run(
    pg: tuple[Database, str], cluster: Cluster, api: Engine
) -> None:
    db = pg[0]
    cluster.start_worker()
    owner = await make_owner(db)
    graph = definition(
        [node("slow", "test.sleep", {"seconds": 60}), node("after", "test.add")],
        [edge("slow", "after")],
    )
    workflow_id = await save_workflow(db, owner, graph)
    run_id = await api.start_run(owner_id=owner, workflow_id=workflow_id)
    await wait_for_node(db, run_id, "slow", NodeStatus.RUNNING)

    started = time.monotonic()
    await api.cancel(run_id)
    took_s = time.monotonic() - started
    result = await api.wait(run_id)
    assert result.status is RunStatus.CANCELLED, cluster.logs()
    assert took_s < 5
    rows = await node_rows(db, run_id)
    assert rows["slow"].status == NodeStatus.CANCELLED
    assert rows["after"].status == NodeStatus.CANCELLED
    # Cancelling again changes nothing.
    await api.cancel(run_id)


@pytest.mark.parametrize("broker", BROKERS, indirect=True)
async def test_a_killed_worker_s_run_is_finished_by_another(
    pg: tuple[Database, str], cluster: Cluster, api: Engine, tmp_path: Path
) -> None:
    db = pg[0]
    first = cluster.start_worker()
    owner = await make_owner(db)
    graph = definition(
        [
            node("a", "test.add"),
            node("slow", "test.sleep", {"seconds": 3}),
            node("b", "test.add", {"amount": 5}),
        ],
        [edge("a", "slow"), edge("slow", "b")],
    )
    workflow_id = await save_workflow(db, owner, graph)
    count_file = tmp_path / "calls.txt"
    run_id = await api.start_run(
        owner_id=owner,
        workflow_id=workflow_id,
        inputs={"count_file": str(count_file)},
        use_cache=False,
    )
    await wait_for_node(db, run_id, "slow", NodeStatus.RUNNING)
    cluster.kill(first)
    killed_at = time.monotonic()
    second = cluster.start_worker()

    result = await asyncio.wait_for(api.wait(run_id), 60)
    print(f"resumed and finished {time.monotonic() - killed_at:.2f} s after the kill")
    assert result.status is RunStatus.COMPLETED, cluster.logs()
    assert second.poll() is None
    assert result.outputs == {"b": {"value": 6}}
    rows = await node_rows(db, run_id)
    assert {n: r.status for n, r in rows.items()} == dict.fromkeys(rows, NodeStatus.SUCCEEDED)
    # a succeeded before the kill and never ran again; slow ran again as attempt 2; b once.
    calls = sorted(line.split() for line in count_file.read_text().splitlines())
    assert [(node, attempt) for node, attempt, _ in calls] == [
        ("a", "1"),
        ("b", "1"),
        ("slow", "1"),
        ("slow", "2"),
    ]
    # The attempt on the second worker sent the key the first one sent.
    assert {key for node, _, key in calls if node == "slow"} == {f"{run_id}:slow"}
    assert [a["status"] for a in rows["slow"].attempts] == ["INTERRUPTED", "SUCCEEDED"]
    for node_id in ("a", "b"):
        assert [a["status"] for a in rows[node_id].attempts] == ["SUCCEEDED"]


async def test_the_sweep_finds_the_runs_with_work_for_a_driver_and_the_watch_their_signals(
    pg: tuple[Database, str], api: Engine
) -> None:
    db = pg[0]
    owner = await make_owner(db)
    workflow_id = await save_workflow(db, owner, definition([node("a", "test.add")], []))
    names = ("pending", "ready", "parked", "cancelling", "done", "due", "answered")
    # No worker runs: every run stays as written, then each is set as its name says.
    runs = {name: await api.start_run(owner_id=owner, workflow_id=workflow_id) for name in names}
    now = datetime.now(UTC)
    past, future = (now - timedelta(seconds=5)).isoformat(), (now + timedelta(hours=1)).isoformat()
    node_state = {
        "ready": (NodeStatus.READY, None),
        "parked": (NodeStatus.WAITING, {"kind": "timer", "resume_at": future}),
        "cancelling": (NodeStatus.WAITING, None),
        "due": (NodeStatus.WAITING, {"kind": "timer", "resume_at": past}),
        "answered": (NodeStatus.READY, {"kind": "approval", "answer": {"approved": True}}),
    }
    async with db.write() as session:
        for name, (status, wait) in node_state.items():
            await session.execute(
                update(WorkflowRun)
                .where(WorkflowRun.id == runs[name])
                .values(status=RunStatus.WAITING, cancel_requested=name == "cancelling")
            )
            await session.execute(
                update(NodeExecution)
                .where(NodeExecution.run_id == runs[name])
                .values(status=status, wait=wait)
            )
        await session.execute(
            update(WorkflowRun)
            .where(WorkflowRun.id == runs["done"])
            .values(status=RunStatus.COMPLETED)
        )
    shared: Any = api.store

    every = await shared.runs_needing_a_driver(now=now, run_ids=list(runs.values()))
    young = await shared.runs_needing_a_driver(now=now, older_than_s=60)
    later = now + timedelta(seconds=120)
    aged = await shared.runs_needing_a_driver(now=later, older_than_s=60)
    some = [runs["pending"], runs["parked"], runs["done"]]
    aged_of = await shared.runs_needing_a_driver(now=later, run_ids=some, older_than_s=60)
    found = await shared.signals([runs[name] for name in ("answered", "cancelling", "done")])

    wanted = {"pending", "ready", "cancelling", "due", "answered"}
    assert sorted(every) == sorted(runs[name] for name in wanted)
    assert young == [], "runs made a moment ago are their creator's"
    assert sorted(aged) == sorted(every)
    assert aged_of == [runs["pending"]]
    assert found.cancelled == (runs["cancelling"],)
    assert found.answers == ((runs["answered"], "a", {"approved": True}),)
