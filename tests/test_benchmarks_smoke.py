"""The storage benchmark still runs end to end: a tiny fill on SQLite prints its table and plans.

SQLite only, on purpose: the benchmark manages its own database (a temporary file here), and the
point is that the script works, not what it measures.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _bench(*args: str, timeout_s: float = 180) -> str:
    done = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_storage_benchmark_prints_its_table_on_sqlite(tmp_path: Path) -> None:
    out = _bench(
        "benchmarks.storage",
        "--db",
        "sqlite",
        "--runs",
        "2000",
        "--repeat",
        "2",
        "--path",
        str(tmp_path / "bench.db"),
        timeout_s=120,
    )
    assert "| measurement" in out
    for row in (
        "bulk insert (runs + node executions + usage)",
        "history page 1, heavy user",
        "history page 4, heavy user",  # 2% of 2,000 runs is 40: four pages of ten
        "usage by model, 30 days, whole instance",
        "active runs by status",
    ):
        line = next((x for x in out.splitlines() if x.startswith(f"| {row}")), None)
        assert line is not None, f"missing row {row!r} in:\n{out}"
        median = float(line.split("|")[2])
        assert median > 0
    # The history page is read through the (user_id, id) index, in index order: no sort step.
    plan = out.split("### plan: history page 1", 1)[1].split("###", 1)[0]
    assert re.search(r"SEARCH workflow_runs USING (COVERING )?INDEX ix_workflow_runs_user_id", plan)
    assert "TEMP B-TREE" not in plan


def test_prune_wait_benchmark_prints_the_writers_waits(tmp_path: Path) -> None:
    out = _bench(
        "benchmarks.prune_wait",
        "--runs",
        "600",
        "--baseline-s",
        "0.3",
        "--path",
        str(tmp_path / "prune.db"),
        timeout_s=120,
    )
    rows = {
        line.split("|")[1].strip(): line.split("|")
        for line in out.splitlines()
        if line.startswith("| ")
    }
    assert "prune 10% of runs" in rows
    assert re.search(r"\d+ runs", rows["prune 10% of runs"][7])
    assert float(rows["run starts, during the prune"][2]) > 0
    assert float(rows["run start during the prune, worst"][2]) > 0


def test_the_time_to_first_token_benchmark_prints_a_row_per_provider() -> None:
    out = _bench("benchmarks.ai.ttft", "--calls", "3")

    for provider in ("openai", "anthropic", "gemini"):
        line = next(x for x in out.splitlines() if x.startswith(provider))
        bare_ms, node_ms, _, agent_ms, _ = (float(v.removesuffix("ms")) for v in line.split()[1:])
        assert bare_ms > 0
        assert node_ms > 0
        assert agent_ms > 0


def test_the_fan_out_benchmark_follows_runs_with_its_clients() -> None:
    out = _bench(
        "benchmarks.ai.fanout",
        *("--runs", "1", "--pieces", "40", "--delays-ms", "0", "--clients", "2"),
    )

    row = out.strip().splitlines()[-1].split()
    assert row[0] == "0ms"
    assert row[-1] == "1/1", out  # the checking client put the whole text together


def test_ticks_benchmark_compares_both_ways_on_sqlite() -> None:
    out = _bench("benchmarks.ticks", "--db", "sqlite", "--ticks", "200", timeout_s=120)
    lines = {x.split("|")[1].strip(): x for x in out.splitlines() if x.startswith("| tick")}
    assert set(lines) == {"tick, tuned (SQLite)", "tick, portable (SQLite)"}
    assert "tuned saves" in lines["tick, portable (SQLite)"]


def test_run_start_benchmark_prints_a_row_per_chain_with_plan_limits_on() -> None:
    out = _bench(
        "benchmarks.run_start", "--db", "sqlite", "--nodes", "1,3", "--starts", "5", "--quota"
    )
    names = [x.split("|")[1].strip() for x in out.splitlines() if x.startswith("| CPU")]
    assert names == [
        "CPU of start_run, cached chain 1 (SQLite)",
        "CPU of start_run, cached chain 3 (SQLite)",
    ]
    assert "plan limits on (PlanQuota)" in out


def test_the_paired_benchmark_loads_two_checkouts_at_once_and_compares_them() -> None:
    out = _bench(
        "benchmarks.paired",
        *("--before", str(ROOT), "--db", "sqlite", "--rounds", "1", "--seconds", "1"),
        *("--clients", "2"),
    )

    sides = [x.split()[0] for x in out.splitlines() if re.match(r"  (before|after) ", x)]
    assert sides == ["before", "after"], out
    assert "FAILED" not in out
    assert re.search(r"server ms/run +before +[\d.]+ +after +[\d.]+", out), out


def test_the_paired_benchmark_names_a_folder_that_is_no_checkout(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.paired", "--before", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 1
    assert f"{tmp_path} is not a flowloom checkout" in done.stderr
