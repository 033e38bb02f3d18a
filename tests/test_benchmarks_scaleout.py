"""The scale-out model of benchmarks/scaleout.py: worker machines scale until PostgreSQL (or
Redis) is the limit, and the API processes needed follow the rate."""

from __future__ import annotations

import math

import pytest

from benchmarks.scaleout import Costs, api_processes, levels, report, saturation_machines

# Round numbers: a worker machine of 2 cores carries 2 * 1000 / 8 = 250 runs/s; PostgreSQL of
# 8 cores 8 * 1000 / 4 = 2,000 runs/s; Redis 1000 / 0.25 = 4,000 runs/s.
COSTS = Costs(api_ms=10.0, worker_ms=8.0, pg_ms=4.0, redis_ms=0.25, nodes=11, commits=5.0)


def test_workers_scale_until_postgres_is_the_limit() -> None:
    found = {level.machines: level for level in levels(COSTS, [1, 4, 8, 10])}

    assert found[1].runs_s == pytest.approx(250)
    assert found[1].bottleneck == "worker machines"
    assert found[4].runs_s == pytest.approx(1000)
    assert found[8].runs_s == pytest.approx(2000)  # the knee: both limits meet
    assert found[10].runs_s == pytest.approx(2000)
    assert found[10].bottleneck == "PostgreSQL"
    assert found[10].pg_use == pytest.approx(1.0)
    assert found[10].nodes_s == pytest.approx(22_000)
    # 2,000 runs/s at 10 ms of API CPU each: 20 cores of API processes.
    assert found[10].api_processes == 20
    assert saturation_machines(COSTS) == pytest.approx(8.0)


def test_a_single_threaded_redis_can_be_the_limit() -> None:
    costs = Costs(api_ms=1.0, worker_ms=1.0, pg_ms=1.0, redis_ms=1.0)

    [level] = levels(costs, [10], pg_cores=8)

    assert level.bottleneck == "Redis"
    assert level.runs_s == pytest.approx(1000)
    assert any("Redis (one thread) saturates first" in line for line in report(costs))


def test_the_report_says_where_and_why_postgres_saturates() -> None:
    lines = report(COSTS, machines=10)

    assert any("saturates at 2000 runs/s (22000 nodes/s)" in line for line in lines)
    assert any("8.0 worker machines" in line for line in lines)
    assert any("5.0 transactions (0.80 ms each; 10000/s" in line for line in lines)
    rows = [line.split() for line in lines if line.strip()[:1].isdigit()]
    assert [int(row[0]) for row in rows] == [1, 2, 5, 10]


@pytest.mark.parametrize(
    ("bad", "said"),
    [
        ({"worker_ms": 0.0}, "worker_ms must be a positive CPU cost"),
        ({"api_ms": -1.0}, "api_ms must be a positive CPU cost"),
        ({"pg_ms": float("nan")}, "pg_ms must be a positive CPU cost"),
        ({"redis_ms": -0.1}, "redis_ms cannot be negative"),
        ({"bystander_ms": -1.0}, "bystander_ms cannot be negative"),
        ({"nodes": 0}, "at least one node"),
    ],
)
def test_costs_that_cannot_be_measured_are_refused(bad: dict[str, float], said: str) -> None:
    given: dict[str, float] = {"api_ms": 1.0, "worker_ms": 1.0, "pg_ms": 1.0, "redis_ms": 0.0}
    with pytest.raises(ValueError, match=said):
        Costs(**{**given, **bad})  # type: ignore[arg-type]


def test_every_api_process_reading_every_event_caps_the_api_tier() -> None:
    costs = Costs(api_ms=10.0, worker_ms=8.0, pg_ms=2.0, redis_ms=0.0, bystander_ms=0.5)

    # Each process spends 0.5 ms on each of the cluster's runs: at 1,000 runs/s that is half
    # its core, so a process takes 50 runs/s of its own: 20 processes.
    assert api_processes(costs, 1000) == 20
    assert api_processes(costs, 1999) > 1000
    assert math.isinf(api_processes(costs, 2000))
    [level] = levels(costs, [10])
    assert level.bottleneck == "API tier (one event channel)"
    assert level.runs_s == pytest.approx(2000)
    assert any("cannot pass 2000 runs/s" in line for line in report(costs))


def test_the_api_tier_at_its_ceiling_needs_no_finite_count_whatever_the_rounding() -> None:
    # 1000 / 0.77 * 0.77 is 1000 less a rounding error: it once printed 10**16 processes.
    costs = Costs(api_ms=12.0, worker_ms=5.0, pg_ms=3.0, redis_ms=0.3, bystander_ms=0.77)

    [level] = levels(costs, [10])

    assert level.bottleneck == "API tier (one event channel)"
    assert math.isinf(level.api_processes)
    assert any(line.split()[:4] == ["10", "1299", "14286", "inf"] for line in report(costs))


def test_machine_counts_below_one_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        levels(COSTS, [0])
    with pytest.raises(ValueError, match="at least 1"):
        levels(COSTS, [1], pg_cores=0)
