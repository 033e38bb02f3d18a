"""A model of distributed mode on many machines, from CPU costs measured on one.

    python -m benchmarks.scaleout --api-ms 10.8 --worker-ms 7.4 --pg-ms 3.0 --redis-ms 0.35 \
        [--bystander-ms 0.4] [--nodes 11] [--commits 6] [--machines 10] [--machine-cores 2] \
        [--pg-cores 8]

``benchmarks/distributed.py`` measures the inputs (CPU-ms per run of the API process, the
workers, an API process serving nothing, the PostgreSQL backends of its database and Redis,
read from /proc; transactions per run from ``pg_stat_database``) and prints this model after
its table.

The model: each part is a CPU budget that a run spends. Worker machines (``machine_cores``
each) and API processes are stateless and scale out: runs/s they carry grow with their count
(API processes behind a balancer, one core each). PostgreSQL (``pg_cores``, one primary: every
run's commits go to it) and Redis (one thread: the broker, claims and the event channel) do
not. So the ceiling of N worker machines is ``min(N * per_machine, postgres, redis)``, and past
``N* = postgres / per_machine`` more machines add nothing. One thing does not scale out
linearly: every API process reads every run's events from the one Redis channel
(``bystander_ms``, measured on an API process that serves nothing), so the API tier needs ever
more processes as the rate nears ``1000 / bystander_ms`` runs/s, and cannot pass it.

The model leaves out what CPU does not show: network round trips (they add latency, not load,
while cores are idle), lock waits on hot rows (runs are independent: none share rows), and WAL
flushes (one per writing commit, grouped by PostgreSQL under load; ``commits`` says how many
transactions a run costs, reads included).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, fields

__all__ = ["Costs", "Level", "api_processes", "levels", "report", "saturation_machines"]


@dataclass(frozen=True)
class Costs:
    """CPU-ms one run costs each part, measured (``distributed.py``), and the shape of a run."""

    api_ms: float
    """What the API process that takes a run spends on it."""
    worker_ms: float
    pg_ms: float
    redis_ms: float
    nodes: int = 11
    commits: float | None = None
    """PostgreSQL transactions committed per run, reads included (None: not measured)."""
    bystander_ms: float = 0.0
    """What every OTHER API process spends per run of the cluster (each reads every run's
    events from the one event channel): measured on an API process that serves nothing."""

    def __post_init__(self) -> None:
        for name in ("api_ms", "worker_ms", "pg_ms"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be a positive CPU cost, not {getattr(self, name)}")
        for name in ("redis_ms", "bystander_ms"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} cannot be negative ({getattr(self, name)})")
        if self.nodes < 1:
            raise ValueError(f"a run has at least one node, not {self.nodes}")


@dataclass(frozen=True)
class Level:
    """What ``machines`` worker machines carry, and what limits them."""

    machines: int
    runs_s: float
    nodes_s: float
    bottleneck: str
    api_processes: float
    """API processes (one core each) needed to feed that rate (``api_processes``)."""
    pg_use: float
    """The share of PostgreSQL's cores busy at that rate (1.0: saturated)."""


def _limits(costs: Costs, machines: int, machine_cores: int, pg_cores: int) -> dict[str, float]:
    limits = {
        "worker machines": machines * machine_cores * 1000 / costs.worker_ms,
        "PostgreSQL": pg_cores * 1000 / costs.pg_ms,
    }
    if costs.redis_ms > 0:
        limits["Redis"] = 1000 / costs.redis_ms
    if costs.bystander_ms > 0:
        limits["API tier (one event channel)"] = 1000 / costs.bystander_ms
    return limits


def api_processes(costs: Costs, runs_s: float) -> float:
    """API processes (one core each) to take ``runs_s``: each spends ``api_ms`` on its own runs
    and ``bystander_ms`` on every run of the cluster, so the count grows without bound as
    ``runs_s`` nears ``1000 / bystander_ms`` (``math.inf`` from there on)."""
    spare_ms = 1000 - runs_s * costs.bystander_ms
    # At the tier's own ceiling the spare time is 0 give or take a rounding error, which must
    # read as "no count is enough", not as 10**16 processes.
    if spare_ms <= 1e-6:
        return math.inf
    return max(1, math.ceil(runs_s * costs.api_ms / spare_ms))


def levels(
    costs: Costs, machines: list[int], *, machine_cores: int = 2, pg_cores: int = 8
) -> list[Level]:
    """The ceiling at each count of worker machines (API processes added as needed)."""
    if machine_cores < 1 or pg_cores < 1 or any(n < 1 for n in machines):
        raise ValueError("machines, machine_cores and pg_cores must be at least 1")
    found = []
    for count in machines:
        limits = _limits(costs, count, machine_cores, pg_cores)
        bottleneck = min(limits, key=limits.__getitem__)
        runs_s = limits[bottleneck]
        found.append(
            Level(
                machines=count,
                runs_s=runs_s,
                nodes_s=runs_s * costs.nodes,
                bottleneck=bottleneck,
                api_processes=api_processes(costs, runs_s),
                pg_use=runs_s * costs.pg_ms / (pg_cores * 1000),
            )
        )
    return found


def saturation_machines(costs: Costs, *, machine_cores: int = 2, pg_cores: int = 8) -> float:
    """How many worker machines PostgreSQL can feed before it is the limit (fractional)."""
    per_machine = machine_cores * 1000 / costs.worker_ms
    return pg_cores * 1000 / costs.pg_ms / per_machine


def report(
    costs: Costs, *, machines: int = 10, machine_cores: int = 2, pg_cores: int = 8
) -> list[str]:
    """The model as lines of text: a row per machine count up to ``machines``, then why."""
    counts = sorted({1, 2, *range(5, machines + 1, 5), machines})
    lines = [
        f"model: worker machines of {machine_cores} cores, API processes of 1 core as needed, "
        f"one PostgreSQL of {pg_cores} cores, one Redis thread",
        f"  per run: worker {costs.worker_ms:.2f} ms, API {costs.api_ms:.2f} ms, PostgreSQL "
        f"{costs.pg_ms:.2f} ms, Redis {costs.redis_ms:.2f} ms of CPU; {costs.nodes} nodes"
        + (f"; {costs.commits:.1f} transactions" if costs.commits is not None else ""),
        f"  {'machines':>8} {'runs/s':>8} {'nodes/s':>9} {'API procs':>9} {'PG busy':>8}  limit",
    ]
    for level in levels(costs, counts, machine_cores=machine_cores, pg_cores=pg_cores):
        procs = "inf" if math.isinf(level.api_processes) else f"{level.api_processes:.0f}"
        lines.append(
            f"  {level.machines:>8} {level.runs_s:>8.0f} {level.nodes_s:>9.0f} "
            f"{procs:>9} {level.pg_use:>7.0%}  {level.bottleneck}"
        )
    knee = saturation_machines(costs, machine_cores=machine_cores, pg_cores=pg_cores)
    pg_runs_s = pg_cores * 1000 / costs.pg_ms
    why = (
        f"  PostgreSQL saturates at {pg_runs_s:.0f} runs/s ({pg_runs_s * costs.nodes:.0f} "
        f"nodes/s), reached with {knee:.1f} worker machines: each run costs it "
        f"{costs.pg_ms:.2f} ms of CPU"
    )
    if costs.commits is not None and costs.commits > 0:
        why += (
            f" over {costs.commits:.1f} transactions ({costs.pg_ms / costs.commits:.2f} ms each; "
            f"{pg_runs_s * costs.commits:.0f}/s at the ceiling; the writes among them flush the "
            "WAL, grouped under load)"
        )
    lines.append(why)
    if costs.redis_ms > 0 and 1000 / costs.redis_ms < pg_runs_s:
        lines.append(f"  Redis (one thread) saturates first, at {1000 / costs.redis_ms:.0f} runs/s")
    if costs.bystander_ms > 0:
        lines.append(
            f"  every API process reads every run's events ({costs.bystander_ms:.2f} ms of CPU "
            f"per run of the cluster): the API tier cannot pass "
            f"{1000 / costs.bystander_ms:.0f} runs/s however many processes it has"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scaleout", description=__doc__)
    parser.add_argument("--api-ms", type=float, required=True)
    parser.add_argument("--worker-ms", type=float, required=True)
    parser.add_argument("--pg-ms", type=float, required=True)
    parser.add_argument("--redis-ms", type=float, default=0.0)
    parser.add_argument("--nodes", type=int, default=11)
    parser.add_argument("--commits", type=float, default=None)
    parser.add_argument("--bystander-ms", type=float, default=0.0)
    parser.add_argument("--machines", type=int, default=10)
    parser.add_argument("--machine-cores", type=int, default=2)
    parser.add_argument("--pg-cores", type=int, default=8)
    args = parser.parse_args()
    costs = Costs(**{f.name: getattr(args, f.name) for f in fields(Costs)})
    lines = report(
        costs, machines=args.machines, machine_cores=args.machine_cores, pg_cores=args.pg_cores
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
