"""The UI benchmark: the canvas editor with a 500-node workflow in a real Chromium.

A ``flowloom serve`` process (SQLite in a temporary data dir) serves the built UI; a workflow
of 500 nodes (20 chains of 25: a ``text.value`` feeding 24 ``text.template`` nodes, 480 edges,
the largest graph the server accepts by default, with a group around every two chains and a
sticky note beside each group) is created through the API, and one of 200 nodes (the first 8
chains); headless Debian Chromium (``/usr/bin/chromium``) at 1280x800 opens them, once with
the system in light mode and once in dark mode (the editor follows it). Reported per mode:

- time to interactive: from navigation start to the first frame painted after the canvas shows
  its nodes, median of several page loads (a graph this big opens at a readable zoom, 0.5, on
  its top-left corner, so only the nodes on screen are rendered);
- frame time while panning by mouse drag at that zoom, from ``requestAnimationFrame`` deltas;
- the time to "fit the whole graph" (all 500 nodes rendered), and the frame time while panning
  with all of them on screen;
- the frame time while panning the 200-node workflow, all of it on screen.

Aim: under 1 s to interactive, 60 fps (16.7 ms frames) while panning. Needs ``make install``
(the built UI) and Chromium; the machine's cores are shared with the server process.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.report import Measurement, print_table
from benchmarks.server import start_server

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1280, "height": 800}
ROWS, COLUMNS = 20, 25

_TIME_TO_INTERACTIVE_JS = """
() => new Promise((resolve) => {
  const check = () => {
    if (document.querySelectorAll('.react-flow__node').length > 0) {
      requestAnimationFrame(() => requestAnimationFrame(() => resolve({
        at: performance.now(),
        rendered: document.querySelectorAll('.react-flow__node').length,
      })));
    } else {
      setTimeout(check, 2);
    }
  };
  check();
})
"""

# A point of the canvas where a press lands on the empty pane (so a drag pans, not moves a node).
_EMPTY_SPOT_JS = """
() => {
  const box = document.querySelector('.canvas').getBoundingClientRect();
  for (let y = box.top + 100; y < box.bottom - 200; y += 7) {
    for (let x = box.left + 100; x < box.right - 250; x += 7) {
      const hit = document.elementFromPoint(x, y);
      if (hit && hit.classList.contains('react-flow__pane')) return { x, y };
    }
  }
  return null;
}
"""

_FIT_ALL_JS = """
(total) => new Promise((resolve) => {
  const began = performance.now();
  document.querySelector('.fit-all').click();
  const check = () => {
    if (document.querySelectorAll('.react-flow__node').length >= total) {
      requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.now() - began)));
    } else {
      requestAnimationFrame(check);
    }
  };
  check();
})
"""

_START_FRAMES_JS = """
() => {
  window.__frames = [];
  window.__recording = true;
  let last = performance.now();
  const tick = (now) => {
    if (!window.__recording) return;
    window.__frames.push(now - last);
    last = now;
    requestAnimationFrame(tick);
  };
  requestAnimationFrame((now) => { last = now; requestAnimationFrame(tick); });
}
"""

_STOP_FRAMES_JS = """
() => { window.__recording = false; return window.__frames; }
"""


def definition(rows: int = ROWS, *, notes: bool = True) -> dict[str, Any]:
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    for row in range(rows):
        previous = None
        for column in range(COLUMNS):
            node_id = f"n{row}_{column}"
            position = {"x": column * 300, "y": row * 160}
            if column == 0:
                data = {"label": node_id, "config": {"text": f"row {row}"}}
                nodes.append(
                    {"id": node_id, "type": "text.value", "position": position, "data": data}
                )
                out = "text"
            else:
                config = {"template": "{{ x }}.", "variables": ["x"]}
                data = {"label": node_id, "config": config}
                nodes.append(
                    {"id": node_id, "type": "text.template", "position": position, "data": data}
                )
                edges.append(
                    {
                        "id": f"e_{previous}_{node_id}",
                        "source": previous,
                        "sourceHandle": out,
                        "target": node_id,
                        "targetHandle": "x",
                    }
                )
                out = "text"
            previous = node_id
    return {
        "schema_version": 1,
        "nodes": nodes,
        "edges": edges,
        "annotations": annotations(rows) if notes else [],
    }


def annotations(rows: int) -> list[dict[str, Any]]:
    """A group around every two chains and a note beside it, as a tidy workflow has."""
    found: list[dict[str, Any]] = []
    for pair in range(rows // 2):
        top = pair * 2 * 160 - 50
        found.append(
            {
                "id": f"group_{pair}",
                "type": "group",
                "position": {"x": -30, "y": top},
                "width": COLUMNS * 300 + 20,
                "height": 2 * 160 + 20,
                "data": {"label": f"Chains {2 * pair} and {2 * pair + 1}", "color": "blue"},
            }
        )
        found.append(
            {
                "id": f"note_{pair}",
                "type": "note",
                "position": {"x": -300, "y": top},
                "width": 240,
                "height": 140,
                "data": {"text": f"Rows {2 * pair} and {2 * pair + 1}: a value, then templates."},
            }
        )
    return found


def _frames(page: Any, drag: list[tuple[float, float]]) -> list[float]:
    """Frame deltas (ms) while the mouse drags the pane along ``drag``."""
    page.evaluate(_START_FRAMES_JS)
    page.mouse.move(*drag[0])
    page.mouse.down()
    for x, y in drag[1:]:
        page.mouse.move(x, y, steps=30)
    page.mouse.up()
    frames: list[float] = page.evaluate(_STOP_FRAMES_JS)
    # The first delta spans the set-up, not a frame of the pan.
    return frames[1:]


def _pan_path(x: float, y: float, rounds: int) -> list[tuple[float, float]]:
    points = [(x, y)]
    for _ in range(rounds):
        points += [(x + 300, y + 200), (x - 200, y + 300), (x + 100, y - 100), (x, y)]
    return points


def _summary(name: str, frames: list[float], note: str) -> list[Measurement]:
    fps = 1000 / statistics.mean(frames)
    slow = sum(1 for f in frames if f > 20)
    return [
        Measurement(f"{name}: frame time", frames, note=note),
        Measurement(
            f"{name}: frames per second",
            [fps],
            unit="fps",
            note=f"{len(frames)} frames, {slow} over 20 ms, p95 "
            f"{sorted(frames)[int(0.95 * (len(frames) - 1))]:.1f} ms",
        ),
    ]


SMALL_ROWS = 8
"""The second workflow: 8 chains of 25, 200 nodes."""


def _sign_in(context: Any, account: dict[str, str]) -> str:
    """Sign ``context`` in (its pages share the cookie); the CSRF token."""
    answer = context.request.post("/api/v1/auth/login", data=account)
    assert answer.ok, answer.text()
    return str(answer.json()["csrf_token"])


def _measure(
    browser: Any,
    base: str,
    account: dict[str, str],
    urls: tuple[str, str],
    scheme: str,
    loads: int,
    rounds: int,
) -> list[Measurement]:
    """Every measurement of one colour scheme."""
    context = browser.new_context(viewport=VIEWPORT, base_url=base, color_scheme=scheme)
    _sign_in(context, account)
    big, small = urls
    page = context.new_page()
    tti: list[float] = []
    rendered = 0
    for _ in range(loads + 1):
        page.goto(big, wait_until="commit")
        found = page.evaluate(_TIME_TO_INTERACTIVE_JS)
        tti.append(found["at"])
        rendered = found["rendered"]
        page.wait_for_load_state("networkidle")
    tti = tti[1:]  # the first load also fills the browser's caches
    theme = page.evaluate("document.documentElement.dataset.theme")
    assert theme == scheme, f"the editor shows {theme!r} for a system in {scheme} mode"

    canvas = page.locator(".canvas").bounding_box()
    assert canvas is not None
    gap = page.evaluate(_EMPTY_SPOT_JS)
    assert gap is not None, "no empty spot of the pane to drag from"
    opened = _frames(page, _pan_path(gap["x"], gap["y"], rounds))
    visible = page.locator(".react-flow__node").count()

    fit: list[float] = []
    for _ in range(3):
        page.goto(big)
        page.locator(".react-flow__node").first.wait_for()
        page.wait_for_load_state("networkidle")
        fit.append(page.evaluate(_FIT_ALL_JS, ROWS * COLUMNS))
    # Above the fitted graph the pane is empty, so a drag there pans.
    x, y = canvas["x"] + canvas["width"] / 2, canvas["y"] + 25
    whole = _frames(page, _pan_path(x, y, rounds))

    page.goto(small)
    page.locator(".react-flow__node").first.wait_for()
    page.wait_for_load_state("networkidle")
    page.evaluate(_FIT_ALL_JS, SMALL_ROWS * COLUMNS)
    small_frames = _frames(page, _pan_path(x, y, rounds))
    context.close()
    return [
        Measurement(
            f"{scheme}: time to interactive, 500 nodes",
            tti,
            note=f"navigation start to first frame with the graph; {rendered} nodes on screen",
        ),
        *_summary(f"{scheme}: pan at the opening zoom", opened, f"{visible} nodes rendered"),
        Measurement(
            f"{scheme}: fit the whole graph",
            fit,
            note="click to first frame with all 500 rendered (incl. a 200 ms animation)",
        ),
        *_summary(f"{scheme}: pan, 500 nodes on screen", whole, "all rendered"),
        *_summary(f"{scheme}: pan, 200 nodes on screen", small_frames, "all rendered"),
    ]


def run(
    loads: int, rounds: int, schemes: tuple[str, ...] = ("light", "dark"), *, notes: bool = True
) -> None:
    from playwright.sync_api import sync_playwright

    if not (ROOT / "flowloom" / "webui" / "static" / "index.html").exists():
        raise SystemExit("the web UI is not built: run `make install` first")
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install -y chromium")
    rows: list[Measurement] = []
    with tempfile.TemporaryDirectory() as folder:
        server = start_server(Path(folder) / "data", Path(folder) / "serve.log")
        process, base = server.process, server.base
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
                setup = browser.new_context(base_url=base)
                email = f"bench-{secrets.token_hex(4)}@example.com"
                account = {"email": email, "password": "benchmark password 1234"}
                setup.request.post("/api/v1/auth/register", data=account)
                csrf = _sign_in(setup, account)
                urls = []
                for name, chains in (("500 nodes", ROWS), ("200 nodes", SMALL_ROWS)):
                    created = setup.request.post(
                        "/api/v1/workflows",
                        data={"name": name, "definition": definition(chains, notes=notes)},
                        headers={"X-CSRF-Token": csrf},
                    )
                    assert created.ok, created.text()
                    urls.append(f"/workflows/{created.json()['id']}")
                for scheme in schemes:
                    rows += _measure(
                        browser, base, account, (urls[0], urls[1]), scheme, loads, rounds
                    )
                browser.close()
        finally:
            process.terminate()
            process.wait(timeout=15)

    print_table(
        "UI: the canvas editor with 500 and 200 nodes (headless Chromium, 1280x800)",
        rows,
        context=[
            f"workflow: {ROWS} chains of {COLUMNS} nodes, {ROWS * (COLUMNS - 1)} edges, "
            + (f"{ROWS // 2} groups and {ROWS // 2} notes" if notes else "no groups or notes")
            + f"; the second the first {SMALL_ROWS} chains; load average "
            + f"{os.getloadavg()[0]:.1f} at the end; "
            "aim: time to interactive < 1000 ms, 60 fps (16.7 ms frames) while panning"
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ui", description=__doc__)
    parser.add_argument("--loads", type=int, default=5, help="page loads timed")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the pan path")
    parser.add_argument(
        "--scheme", choices=["light", "dark", "both"], default="both", help="system colour mode"
    )
    parser.add_argument(
        "--bare", action="store_true", help="no groups or notes (to compare with an older UI)"
    )
    args = parser.parse_args()
    schemes = ("light", "dark") if args.scheme == "both" else (args.scheme,)
    run(args.loads, args.rounds, schemes, notes=not args.bare)


if __name__ == "__main__":
    main()
