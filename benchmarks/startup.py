"""The start-up benchmark: a fresh ``flowloom serve`` to its first answer, and its idle memory.

    python -m benchmarks.startup [--repeat 5] [--idle-s 3]

Each round starts ``flowloom serve`` (SQLite) in a new, empty data dir, as ``make run`` does
the first time: migrations, the local account, the example workflows, then uvicorn. Reported per
round: the wall time from process start to the first answered ``/healthz``, the CPU time the
server process spent until then (user + system from ``/proc/PID/stat``: on a shared machine it
moves much less than the wall time does), and the resident memory (VmRSS) after ``--idle-s``
seconds of idling (the warm-up of node modules a second after start-up included).
"""

from __future__ import annotations

import argparse
import os
import signal
import tempfile
import time
from pathlib import Path

from benchmarks.report import Measurement, print_table
from benchmarks.server import cpu_s, start_server


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def _round(idle_s: float) -> tuple[float, float, float]:
    """Wall seconds to the first answer, CPU seconds until then, idle RSS (MiB)."""
    with tempfile.TemporaryDirectory(prefix="flowloom-bench-startup-") as folder:
        server = start_server(Path(folder) / "data", Path(folder) / "serve.log")
        try:
            used_s = cpu_s(server.process.pid)
            time.sleep(idle_s)
            rss = _rss_mib(server.process.pid)
        finally:
            server.process.send_signal(signal.SIGTERM)
            server.process.wait(timeout=30)
        return server.startup_s, used_s, rss


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.startup", description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--idle-s", type=float, default=3.0)
    args = parser.parse_args()
    rounds = [_round(args.idle_s) for _ in range(args.repeat)]
    print_table(
        "Start-up of flowloom serve on a fresh SQLite data dir",
        [
            Measurement("start-up to first /healthz answer", [r[0] * 1000 for r in rounds]),
            Measurement("server CPU time until then", [r[1] * 1000 for r in rounds]),
            Measurement(
                f"resident memory after {args.idle_s:g} s idle",
                [r[2] for r in rounds],
                unit="MiB",
            ),
        ],
        context=[f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}"],
    )


if __name__ == "__main__":
    main()
