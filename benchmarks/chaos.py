"""Chaos in distributed mode: a thousand runs and more through ``flowloom serve`` (celery
executor) and N ``flowloom worker`` processes on PostgreSQL + Redis (events, claims) with Redis
or RabbitMQ as the broker, while whole workers, prefork children and the API server are
SIGKILLed at random (seeded) moments, with a database outage in the middle; then the books.

    python -m benchmarks.chaos [--runs 1000] [--broker redis|rabbitmq|both] [--workers 3]
                               [--concurrency 2] [--clients 6] [--seed N] [--outage 4]

The harness is the tests' (tests/servekill.py for the load, the listener and the books;
tests/workerchaos.py for the workers, the kills, recovery times and stale deliveries), shared
with the CI-sized tests/worker/test_worker_chaos.py. Each node of the workflow POSTs to a
listener in this process with its ``Idempotency-Key``: the table says how many effects there
were, how many repeated (allowed only where a node's success was not committed) and whether any
came under a key other than the node's one key.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the harness lives with the tests it serves

import servekill  # noqa: E402
import workerchaos  # noqa: E402

from benchmarks.report import Measurement, count, print_table  # noqa: E402


def chaos(args: argparse.Namespace, broker: str, folder: Path) -> None:
    rng = random.Random(f"{args.seed}-{broker}")
    data = folder / "data"
    began = time.monotonic()
    with (
        servekill.Listener(delay_s=args.effect_ms / 1000) as listener,
        servekill.database_env("postgresql", data) as database,
    ):
        env = {**workerchaos.distributed_env(broker, database), "FLOWLOOM_DATA_DIR": str(data)}
        with (
            servekill.Server(data, folder / "serve.log", env) as server,
            workerchaos.Workers(
                folder, env, count=args.workers, concurrency=args.concurrency
            ) as workers,
        ):
            workers.wait_ready()
            target = servekill.setup(server, servekill.effects_workflow(listener.url))
            ledger = servekill.Ledger()
            load = servekill.Chaos(
                server,
                target,
                ledger,
                servekill.Keys("chaos"),
                clients=args.clients,
                rng=rng,
                between_s=(1e6, 1e6),  # the server's kills are havoc's
            ).start()
            havoc = workerchaos.Havoc(workers, server, rng, between_s=(0.5, 3.0)).start()
            try:
                half = args.runs // 2
                servekill.until(lambda: len(ledger.answered) >= half, 3600, f"{half} runs")
                with workerchaos.quiet_kills(havoc):
                    with servekill.outage("postgresql", data, database["FLOWLOOM_DATABASE_URL"]):
                        time.sleep(args.outage)
                    time.sleep(2.0)  # back a moment before the kills resume
                servekill.until(
                    lambda: len(ledger.answered) >= args.runs, 3600, f"{args.runs} runs"
                )
            finally:
                havoc.finish()
                load.finish()
            books = servekill.books(server, target, ledger, listener)
            stale = workerchaos.stale_deliveries(workers.logs())
    resumed = workerchaos.recoveries(books.details, havoc.kills)
    with listener.lock:
        keys = {f"{run_id}:{node_id}" for run_id, node_id, _ in listener.hits}
    foreign = [key for key in keys if key.rpartition(":")[2] not in ("n1", "n2", "n3")]
    kills = havoc.count()
    print_table(
        f"Chaos: distributed mode, {broker} broker, {args.workers} workers x "
        f"{args.concurrency} children, PostgreSQL",
        [
            count("runs submitted (answered)", books.submitted, f"kinds: {dict(ledger.kinds)}"),
            count("runs completed", books.statuses["COMPLETED"]),
            count("runs failed", books.statuses["FAILED"] + books.statuses["CANCELLED"]),
            count("runs stuck (not final 60 s after the end)", len(books.stuck)),
            count("runs answered but lost", len(books.lost)),
            count("runs duplicated (one key, two runs)", len(books.duplicated)),
            count("side effects (listener)", books.effects),
            count("side effects repeated", books.repeats, "only where success was uncommitted"),
            count("effects that must not have happened", len(books.violations)),
            count("idempotency keys seen / under a foreign key", len(keys), f"{len(foreign)}"),
            count("submissions refused (4xx, or no answer)", len(books.refused)),
            count("SIGKILLs: whole workers", kills["worker"]),
            count("SIGKILLs: prefork children", kills["child"]),
            count("SIGKILLs: API server", kills["api"]),
            Measurement("node running again after its worker died", resumed or [0.0], unit="s"),
            count("stale deliveries (late task copies)", sum(stale.values()), str(dict(stale))),
        ],
        context=[
            f"seed {args.seed}; {args.clients} clients (runs API, wait=true, webhook; each "
            f"submission with its key); kills every 0.5-3 s; a {args.outage:g} s database "
            f"outage after {args.runs // 2} runs; effects answer after {args.effect_ms:g} ms",
            f"wall time {time.monotonic() - began:.0f} s; recoveries "
            f"{workerchaos.describe(resumed)}",
            *(f"problem: {line}" for line in books.problems().splitlines()[1:]),
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.chaos", description=__doc__)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--broker", choices=("redis", "rabbitmq", "both"), default="both")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--seed", type=int, default=20261205)
    parser.add_argument("--outage", type=float, default=4.0, help="seconds the database is out")
    parser.add_argument("--effect-ms", type=float, default=20.0, help="the listener's delay")
    args = parser.parse_args()
    brokers = workerchaos.BROKERS if args.broker == "both" else (args.broker,)
    for broker in brokers:
        with tempfile.TemporaryDirectory(prefix=f"flowloom-chaos-{broker}-") as folder:
            chaos(args, broker, Path(folder))


if __name__ == "__main__":
    main()
