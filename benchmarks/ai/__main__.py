"""``python -m benchmarks.ai``: the three AI benchmarks, each with its defaults, one after the
other (run one alone with ``python -m benchmarks.ai.<name> --help``)."""

from __future__ import annotations

import subprocess
import sys

for name in ("calls", "ttft", "fanout"):
    print(f"\n## benchmarks.ai.{name}\n", flush=True)
    subprocess.run([sys.executable, "-m", f"benchmarks.ai.{name}"], check=True)
