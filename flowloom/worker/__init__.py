"""Distributed mode: ``flowloom serve`` on PostgreSQL queues runs; ``flowloom worker`` drives them.

The unit of work is a RUN, not a node: a worker drives each run with the engine's own
``Driver`` until the run finishes or waits. Runs reach the workers through the runs' inbox
(``inbox``: a Redis list each worker process's engine pops and claims from itself) when the
broker is the claims' Redis, as by default; else as a Celery task ``flowloom.drive_runs``.
DESIGN §6 sketches a task per READY node; a run was chosen because the driver's strengths all
live in one process's view of one run: the group commit of every node finished in a tick, the
in-memory run state that makes claiming, branch skipping and fan-in cheap, per-key limits, sub-runs
and debug sessions. A task per node would rebuild that state from the database for every
node and commit once per node. Runs still spread over any number of workers, and a run's
independent branches still run at once (as asyncio tasks inside the worker driving it). The
price: one run's nodes never spread over several machines, and a long run keeps one worker slot
busy.

Who drives a run is decided in Redis, not in the database (no schema change): the key
``flowloom:{queue}:run:{run_id}`` holds the driving worker's lease owner token (or ``queued``),
with a TTL that the worker renews every third of ``worker_claim_ttl_s`` from a thread of its
own (``heartbeat``), so that a busy event loop cannot make it miss a renewal. A delivery that
finds the key held by another worker does nothing; a worker that died stops renewing, its key
expires, and the sweep (every ``worker_sweep_interval_s``, in whichever worker takes the sweep
lock) queues the run again. The node leases of the database stay the fence: a driver whose
node rows were taken over cannot commit (``LeaseLost``), so a node result is never written
twice, whatever Redis says.

Node types may be routed to queues of their own (``node_queues``, ``node_jobs``): the driver
sends such a node as a task of its own and applies its outcome when it comes back.

A push onto the inbox, or a task, carries several runs (the API sends the runs made while its
previous send was on its way together): the worker takes their claims in one Redis round trip,
loads them in one statement (``SqlRunStore.load_runs``), and their drivers' cache look-ups,
asked close together, go to the database as one (``lookups``).

Modules: ``claims`` (the Redis keys), ``inbox`` (the runs' Redis list), ``relay`` (run events
over Redis pub/sub), ``runs`` (queueing runs, and the store both sides share), ``remote`` (the
API's engine),
``host`` (the worker's engine on its own event loop), ``lookups`` (its drivers' cache
look-ups made together), ``celery_app`` (the Celery app, the task, and ``run_worker``).
Celery is imported only by ``celery_app``, and only when used.
"""

from __future__ import annotations

__all__ = ["DRIVE_MANY_TASK", "DRIVE_TASK", "NODE_TASK", "RUNS_QUEUE"]

DRIVE_MANY_TASK = "flowloom.drive_runs"
"""The Celery task name that carries a list of run ids to a worker, which drives them all at
once (what the API and the sweep send: runs made while the previous send was on its way share
one message, so a busy API pays the broker, and a worker its consumer, once for several)."""
DRIVE_TASK = "flowloom.drive_run"
"""The task name of one run id (sent by earlier versions; workers still take it)."""
NODE_TASK = "flowloom.run_node"
"""The Celery task name that carries one routed node attempt to a worker (``node_jobs``)."""
RUNS_QUEUE = "runs"
"""What ``flowloom worker --queue`` calls the queue of runs (``settings.worker_queue``)."""
