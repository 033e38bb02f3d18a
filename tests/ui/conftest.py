"""Fixtures of the browser tests: one server and one Chromium per session, a page per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from servekit import first_password, serve
from uikit import VIEWPORT, Shot, Shots, artifacts_dir, require_browser


@pytest.fixture(scope="session")
def ui_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The session's server: its base URL and its log."""
    require_browser()
    root = tmp_path_factory.mktemp("ui-server")
    with serve(root / "data", root / "serve.log") as (_process, base):
        yield base, root / "serve.log"


@pytest.fixture(scope="session")
def ui_server(ui_served: tuple[str, Path]) -> str:
    return ui_served[0]


@pytest.fixture(scope="session")
def owner_password(ui_served: tuple[str, Path]) -> str:
    """The local owner's one-time password (an admin, holding the example workflows)."""
    password = first_password(ui_served[1].read_text())
    assert password, ui_served[1].read_text()
    return password


# Per module, not per session: Playwright's sync API keeps an event loop running in this thread
# while it is open, and the async tests of other modules need the thread to themselves.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any, ui_server: str) -> Iterator[Any]:
    context = browser.new_context(viewport=VIEWPORT, base_url=ui_server)
    context.set_default_timeout(15_000)
    opened = context.new_page()
    try:
        yield opened
    finally:
        context.close()


@pytest.fixture
def shot(page: Any, request: pytest.FixtureRequest) -> Shot:
    """``shot("step")`` saves a screenshot of the page as the test's next numbered step."""
    shots = Shots(artifacts_dir() / request.node.name)

    def take(step: str) -> None:
        page.screenshot(path=str(shots.path(step)))

    return take


@pytest.fixture
def artifacts() -> Path:
    return artifacts_dir()
