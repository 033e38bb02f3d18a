"""The web UI: the single-page app built from ``web/`` (``make install``), served at ``/``.

``mount_web_ui(app)`` answers every ``GET`` that no route of the app answers: files of the build
(``flowloom/webui/static``, shipped inside the wheel), and ``index.html`` for any other path, so
the app's own client routes (``/workflows/wf_...``) survive a reload. Paths under
``/api/``, ``/healthz`` and ``/metrics`` are never answered here: an unknown API path stays a
problem+json 404 from the API. Without a build, ``/`` says how to make one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from fastapi import FastAPI
from fastapi.responses import FileResponse, PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

__all__ = ["STATIC_DIR", "mount_web_ui"]

STATIC_DIR: Final = Path(__file__).resolve().parent / "static"
"""Where ``npm run build`` in ``web/`` writes the app."""

_RESERVED: Final = ("api", "healthz", "metrics")
_NOT_BUILT: Final = (
    "The flowloom web UI is not built. Run `make install` (it runs `npm ci` and "
    "`npm run build` in web/), then reload. The API is at /api/v1.\n"
)
# Vite names every asset by its content hash, so a browser may keep those forever; index.html
# must be asked for again so a new build is picked up.
_IMMUTABLE: Final = {"Cache-Control": "public, max-age=31536000, immutable"}
_REVALIDATE: Final = {"Cache-Control": "no-cache"}


def _is_reserved(path: str) -> bool:
    first = path.split("/", 1)[0]
    return first in _RESERVED


def _file_in(root: Path, path: str) -> Path | None:
    """The file ``path`` names inside ``root``, or None (also for anything outside ``root``)."""
    if not path:
        return None
    candidate = (root / path).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate


def mount_web_ui(app: FastAPI, *, static_dir: Path = STATIC_DIR) -> None:
    """Serve the built app from ``static_dir`` for every ``GET`` no route of ``app`` answers.

    It hooks the router's fallback rather than adding a catch-all route, so a wrong method on
    an API path stays 405 and an unknown API path stays the API's own 404.
    """
    root = static_dir.resolve()
    fallback = app.router.default

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await fallback(scope, receive, send)
            return
        path = str(scope["path"]).lstrip("/")
        if _is_reserved(path):
            await fallback(scope, receive, send)
            return
        response = _answer(root, path)
        if response is None:
            await fallback(scope, receive, send)
            return
        await response(scope, receive, send)

    app.router.default = serve


def _answer(root: Path, path: str) -> Response | None:
    index = root / "index.html"
    if not index.is_file():
        return PlainTextResponse(_NOT_BUILT, status_code=503)
    found = _file_in(root, path)
    if found is not None:
        headers = _IMMUTABLE if path.startswith("assets/") else _REVALIDATE
        return FileResponse(found, headers=headers)
    if path.startswith("assets/"):
        return None
    return FileResponse(index, headers=_REVALIDATE)
