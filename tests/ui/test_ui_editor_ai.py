"""The editor's AI defects in a real Chromium against a real ``flowloom serve`` whose OpenAI is
a local fake (tests/providers/fake_servers.py): a model call's cost reads as dollars, not as
``0E-9``, on the node and on the usage page, and a provider's error is said once."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from providers.fake_servers import API_KEY, FakeServer
from servekit import serve
from uiflows import create_workflow, open_editor, sign_up
from uikit import Shot, require_browser

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory, fake: FakeServer) -> Iterator[str]:
    """A server of this module's own, whose OpenAI is the fake one."""
    require_browser()
    root: Path = tmp_path_factory.mktemp("ui-editor-ai-server")
    env = {"FLOWLOOM_OPENAI_API_KEY": API_KEY, "FLOWLOOM_OPENAI_BASE_URL": fake.openai_base_url}
    with serve(root / "data", root / "serve.log", env=env) as (_process, base):
        yield base


def ask(model: str) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "nodes": [
            {
                "id": "ask",
                "type": "ai.llm",
                "position": {"x": 0, "y": 0},
                "data": {
                    "label": "ask",
                    "config": {"provider": "openai", "model": model, "user_message": "Hi"},
                },
            }
        ],
        "edges": [],
    }


def test_cost_reads_as_dollars(page: Any, shot: Shot, fake: FakeServer) -> None:
    fake.reset()
    fake.reply_text = "Hello from the fake model."
    sign_up(page)
    made = create_workflow(page, "Ask", ask("gpt-test"))
    open_editor(page, made["id"])
    page.get_by_role("button", name="Run", exact=True).click()
    page.locator('[data-testid="run-status"][data-status="COMPLETED"]').wait_for()
    usage = page.locator('[data-testid="node-ask"] .usage')
    usage.wait_for()
    shot("usage on the node")
    assert re.search(r"\d+ tokens · \$\d+\.\d\d", usage.inner_text()), usage.inner_text()
    assert "E-" not in usage.inner_text()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Usage").click()
    page.get_by_role("heading", name="Usage").wait_for()
    page.get_by_text("Cost this month").wait_for()
    body = page.locator("main").inner_text()
    shot("usage page")
    assert "E-" not in body
    assert re.search(r"Cost this month\s+\$\d+\.\d\d", body), body


def test_a_provider_error_is_said_once(page: Any, shot: Shot, fake: FakeServer) -> None:
    fake.reset()
    fake.fail_next("400")
    sign_up(page)
    made = create_workflow(page, "Fails", ask("gpt-test"))
    open_editor(page, made["id"])
    page.get_by_role("button", name="Run", exact=True).click()
    page.locator('[data-testid="run-status"][data-status="FAILED"]').wait_for()
    error = page.locator('[data-testid="node-ask"] .node-error')
    error.wait_for()
    shot("failed node")
    assert_said_once(error.inner_text())

    # The same refusal in a banner, from the API's problem document.
    fake.fail_next("400")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Threads").click()
    new = page.get_by_role("form", name="New thread")
    new.get_by_label("Name", exact=True).fill("Refused")
    new.get_by_label("Model", exact=True).fill("gpt-test")
    new.get_by_role("button", name="Start the thread").click()
    page.get_by_role("heading", name="Refused").wait_for()
    page.get_by_label("Message", exact=True).fill("This one fails")
    page.get_by_role("button", name="Send").click()
    alert = page.get_by_role("alert").filter(has_text="Not sent")
    alert.wait_for()
    shot("refusal in a banner")
    assert_said_once(alert.inner_text())


def assert_said_once(text: str) -> None:
    """No sentence of ``text`` comes twice ("X — provider: X")."""
    parts = [p.strip(" .") for p in re.split(r" — |: ", text) if p.strip(" .")]
    assert len(parts) == len(set(parts)), text


def test_an_error_naming_its_field_says_it_once(page: Any, shot: Shot) -> None:
    sign_up(page)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Usage").click()
    page.get_by_label("From").fill("2030-02-01")
    page.get_by_label("To").fill("2030-01-01")
    page.get_by_role("button", name="Show").click()
    alert = page.get_by_role("alert").filter(has_text="from must be on or before to")
    alert.wait_for()
    shot("refused range")
    assert_said_once(alert.inner_text())
