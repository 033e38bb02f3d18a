"""Timing helpers and the results table every flowloom benchmark prints."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = ["Measurement", "count", "machine", "print_table", "time_async"]


@dataclass(frozen=True)
class Measurement:
    name: str
    samples: list[float]
    """Milliseconds, or another unit named by ``unit``."""
    unit: str = "ms"
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


def count(name: str, value: float, note: str = "") -> Measurement:
    """A row that is one number (runs, kills, ...), not a timing: median = min = max."""
    return Measurement(name, [float(value)], unit="count", note=note)


async def time_async(
    name: str,
    action: Callable[[], Awaitable[object]],
    *,
    repeat: int,
    warmup: int = 1,
    note: str = "",
) -> Measurement:
    """Run ``action`` ``warmup`` times untimed, then ``repeat`` times timed (milliseconds)."""
    for _ in range(warmup):
        await action()
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        await action()
        samples.append((time.perf_counter() - began) * 1000)
    return Measurement(name, samples, note=note)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def print_table(title: str, rows: list[Measurement], *, context: list[str]) -> None:
    """A plain-text table: name, median, min, max, samples, unit, note."""
    print(f"\n## {title}")
    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M UTC}; machine: {machine()}")
    for line in context:
        print(line)
    width = max(len(r.name) for r in rows)
    print(
        f"| {'measurement':<{width}} | {'median':>10} | {'min':>10} | {'max':>10}"
        f" | {'n':>4} | unit   | note"
    )
    print("|" + "-" * (width + 2) + "|" + "------------|" * 3 + "------|--------|------")
    for r in rows:
        print(
            f"| {r.name:<{width}} | {r.median:>10.3f} | {min(r.samples):>10.3f}"
            f" | {max(r.samples):>10.3f} | {len(r.samples):>4} | {r.unit:<6} | {r.note}"
        )
