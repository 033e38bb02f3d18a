"""Soak: minutes of mixed load on a real ``flowloom serve``, killed with SIGKILL at random
moments, with a database outage in the middle; then the books.

    python -m benchmarks.soak [--minutes 3] [--db sqlite|postgresql] [--clients 6] [--seed N]

The load (tests/servekill.py, shared with the CI-sized test tests/test_serve_killed.py):
``--clients`` threads submit runs, each with its own idempotency key, as webhook calls and as
runs API calls with ``wait=true``, sent again with the same key until answered. The workflow's
three nodes POST to a listener in this process, which counts the side effects. Beside them a
reader pages the history (``GET /api/v1/runs?limit=10``) and a prober times ``/healthz``.

The chaos: SIGKILL of the server after a random 2-8 s of being up (seeded), started again at
once. Halfway through, kills pause and the database goes away for ``--outage`` seconds
(SQLite: another connection holds ``BEGIN EXCLUSIVE``; PostgreSQL: ``ALLOW_CONNECTIONS false``
and its connections terminated), then comes back; the runs known by then must all finish
within ``--recovery`` seconds without a restart (they are counted as stuck after the outage
if not), then kills resume.

At the end the server is left up until every run is final (or 60 s), and the table says:
runs submitted / completed / failed / stuck / duplicated, side effects and repeats (a repeat
is allowed only where a node's success was not committed; one that was is a violation), how
answers looked during the outage, and the event loop's worst lag: the server's own
``flowloom_event_loop_lag_seconds`` metric from /metrics when it has one (its highest reading
in any process lifetime), else the client-side /healthz latency (which includes the HTTP
round trip: an upper bound).
"""

from __future__ import annotations

import argparse
import contextlib
import random
import re
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the harness lives with the tests it serves

import servekill  # noqa: E402
from servekill import FINAL, Target, outage, settle  # noqa: E402

from benchmarks.report import Measurement, count, print_table  # noqa: E402

LAG_METRIC = "flowloom_event_loop_lag_seconds"
LAG_LOGGED = re.compile(r"the event loop was blocked for ([0-9.]+) s")


@dataclass
class Watch:
    """What the side threads saw: /healthz latencies, history reads, the lag metric, and the
    status codes answered while the database was out."""

    healthz_ms: list[float] = field(default_factory=list)
    history_ms: list[float] = field(default_factory=list)
    history_errors: Counter[int] = field(default_factory=Counter)
    lag_max_s: float | None = None
    during_outage: Counter[int] = field(default_factory=Counter)
    outage: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)


def _lag_reading(text: str) -> float | None:
    """The largest loop-lag reading in a /metrics page: a gauge's value (``..._max`` or the
    bare name), or for a histogram the smallest bucket bound holding every observation."""
    values: list[float] = []
    buckets: list[tuple[float, float]] = []
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(LAG_METRIC):
            continue
        name, _, value = line.rpartition(" ")
        metric = name.split("{", 1)[0]
        if metric.endswith("_bucket"):
            bound = re.search(r'le="([^"]+)"', name)
            if bound and bound.group(1) != "+Inf":
                buckets.append((float(bound.group(1)), float(value)))
        elif metric.endswith("_count"):
            total = float(value)
        elif not metric.endswith(("_sum", "_created")):
            values.append(float(value))
    if values:
        return max(values)
    if buckets and total:
        return min((bound for bound, seen in buckets if seen >= total), default=None)
    return None


def _probe(base: str, target: Target, watch: Watch) -> None:
    """Every 0.1 s: /healthz timed; every 1 s: /metrics read; every 0.25 s: a history page."""
    headers = {"Authorization": f"Bearer {target.key}"}
    with httpx.Client(base_url=base, timeout=30) as client:
        tick = 0
        while not watch.stop.wait(0.1):
            tick += 1
            with contextlib.suppress(httpx.TransportError):
                sent = time.perf_counter()
                if client.get("/healthz").status_code == 200:
                    watch.healthz_ms.append((time.perf_counter() - sent) * 1000)
                if tick % 10 == 0:
                    reading = _lag_reading(client.get("/metrics").text)
                    if reading is not None:
                        watch.lag_max_s = max(watch.lag_max_s or 0.0, reading)
                if tick % 3 == 0:
                    sent = time.perf_counter()
                    page = client.get("/api/v1/runs", params={"limit": 10}, headers=headers)
                    if watch.outage.is_set():
                        watch.during_outage[page.status_code] += 1
                    if page.status_code == 200:
                        watch.history_ms.append((time.perf_counter() - sent) * 1000)
                    else:
                        watch.history_errors[page.status_code] += 1


def soak(args: argparse.Namespace, folder: Path) -> None:
    rng = random.Random(args.seed)
    data_dir, log = folder / "data", folder / "serve.log"
    total_s = args.minutes * 60
    watch = Watch()
    with (
        servekill.Listener() as listener,
        servekill.database_env(args.db, data_dir) as env,
        servekill.Server(data_dir, log, env) as server,
    ):
        target = servekill.setup(server, servekill.effects_workflow(listener.url))
        ledger = servekill.Ledger()
        chaos = servekill.Chaos(
            server,
            target,
            ledger,
            servekill.Keys("soak"),
            clients=args.clients,
            rng=rng,
            between_s=(2.0, 8.0),
            kinds=("webhook", "api-wait"),
        ).start()
        prober = threading.Thread(target=_probe, args=(server.base, target, watch), daemon=True)
        prober.start()
        began = time.monotonic()
        outage_at = began + total_s / 2 - (args.outage + args.recovery) / 2
        time.sleep(max(0.0, outage_at - time.monotonic()))  # the first half of the load
        chaos.pause()
        with outage(args.db, data_dir, env.get("FLOWLOOM_DATABASE_URL")):
            watch.outage.set()
            out_from = time.strftime("%H:%M:%S")
            time.sleep(args.outage)
        watch.outage.clear()
        out_until = time.strftime("%H:%M:%S")
        known = ledger.run_ids()
        after = settle(server.base, target, known, timeout_s=args.recovery)
        stuck_after_outage = sorted(
            f"{run_id} {after[run_id]['status'] if run_id in after else 'unread'}"
            for run_id in known
            if after.get(run_id, {}).get("status") not in FINAL
        )
        chaos.resume()
        time.sleep(max(0.0, began + total_s - time.monotonic()))  # the second half
        chaos.finish()
        watch.stop.set()
        prober.join()
        books = servekill.books(server, target, ledger, listener)

        logged = [float(x) for x in LAG_LOGGED.findall(log.read_text(errors="replace"))]

    outage_answers = ", ".join(f"{code}: {n}" for code, n in sorted(watch.during_outage.items()))
    if watch.lag_max_s is not None:
        lag = (
            f"{max(logged, default=0) * 1000:.0f} ms (the server's watchdog warnings in its log, "
            f"{len(logged)} of them > 100 ms); {LAG_METRIC} histogram: every reading "
            f"<= {watch.lag_max_s * 1000:.0f} ms"
        )
    else:
        lag = "not in /metrics; see the /healthz latency row (client-side, an upper bound)"
    rows = [
        count("runs submitted (answered)", books.submitted, f"keys sent: {dict(ledger.kinds)}"),
        count("runs completed", books.statuses["COMPLETED"]),
        count("runs failed", books.statuses["FAILED"] + books.statuses["CANCELLED"]),
        count("runs stuck (not final 60 s after the end)", len(books.stuck)),
        count("runs answered but lost (unknown afterwards)", len(books.lost)),
        count("runs duplicated (one key, two runs)", len(books.duplicated)),
        count("runs made for a submission answered 5xx", len(books.orphans)),
        count("side effects (listener)", books.effects),
        count("side effects repeated", books.repeats, "only where success was uncommitted"),
        count("effects that must not have happened", len(books.violations)),
        count("submissions refused (4xx, or no answer)", len(books.refused)),
        count("submissions sent again (no answer / 503)", ledger.retries),
        count("SIGKILLs", server.kills),
        Measurement("server start to first /healthz", server.start_s, unit="s"),
        count("runs stuck after the outage, no restart", len(stuck_after_outage)),
        Measurement(
            "/healthz latency, client-side", watch.healthz_ms or [0.0], note="server up only"
        ),
        Measurement(
            "history page (GET /runs?limit=10)",
            watch.history_ms or [0.0],
            note=f"errors by status: {dict(watch.history_errors)}",
        ),
    ]
    if logged:
        rows.append(Measurement("event loop lag > 100 ms (server log)", logged, unit="s"))
    print_table(
        f"Soak: {args.minutes:g} min of load with SIGKILLs and a database outage, {args.db}",
        rows,
        context=[
            f"seed {args.seed}; {args.clients} clients (webhook and runs API with wait=true, "
            "each with an idempotency key) + 1 history reader + 1 /healthz prober; "
            f"kills after 2-8 s up; outage {args.outage:g} s at mid-time, then "
            f"{args.recovery:g} s without kills",
            f"outage {out_from}-{out_until} UTC; answers to history reads during it: "
            f"{outage_answers or 'none'}",
            f"loop lag max: {lag}; /healthz max {max(watch.healthz_ms, default=0):.1f} ms",
            *(f"problem: {line}" for line in books.problems().splitlines()[1:]),
            *(f"stuck after the outage: {run_id}" for run_id in stuck_after_outage[:10]),
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--seed", type=int, default=20261204)
    parser.add_argument("--outage", type=float, default=5.0, help="seconds the database is out")
    parser.add_argument(
        "--recovery", type=float, default=20.0, help="seconds for runs to finish after it"
    )
    parser.add_argument(
        "--keep", type=Path, help="keep the data dir and server log here (default: a temp dir)"
    )
    args = parser.parse_args()
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        soak(args, args.keep)
        return
    with tempfile.TemporaryDirectory(prefix="flowloom-soak-") as folder:
        soak(args, Path(folder))


if __name__ == "__main__":
    main()
