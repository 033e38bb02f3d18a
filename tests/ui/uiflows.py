"""Steps the newer browser tests share: signing in, and calling the API as the signed-in page
(its session cookie, and the CSRF token the UI itself sends)."""

from __future__ import annotations

import secrets
from typing import Any

OWNER_EMAIL = "owner@flowloom.localhost"
PASSWORD = "correct horse battery staple"


def sign_in(page: Any, email: str, password: str) -> None:
    page.goto("/signin")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Workflows").wait_for()


def sign_up(page: Any) -> str:
    email = f"ui-{secrets.token_hex(4)}@example.com"
    page.goto("/signup")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create an account").click()
    page.get_by_role("heading", name="Workflows").wait_for()
    return email


def call(page: Any, method: str, path: str, body: Any = None, *, expect: int = 200) -> Any:
    """``method path`` as the signed-in page; the JSON answer (None when empty)."""
    csrf = next((c["value"] for c in page.context.cookies() if c["name"] == "flowloom_csrf"), None)
    headers = {"X-CSRF-Token": csrf} if csrf else {}
    response = page.request.fetch(path, method=method, data=body, headers=headers)
    assert response.status == expect, f"{method} {path}: {response.status} {response.text()}"
    return response.json() if response.text() else None


def create_workflow(page: Any, name: str, definition: dict[str, Any]) -> dict[str, Any]:
    made: dict[str, Any] = call(
        page, "POST", "/api/v1/workflows", {"name": name, "definition": definition}, expect=201
    )
    return made


def open_editor(page: Any, workflow_id: str) -> None:
    page.goto(f"/workflows/{workflow_id}")
    page.get_by_role("toolbar", name="Workflow").wait_for()


def select_node(page: Any, node_id: str) -> None:
    """Select a node on the canvas and show its settings. The click is tried again if the
    settings panel does not name the node: a click that lands while an auto-layout or a fit
    is still moving the node can miss it."""
    panel = page.get_by_label(f"Settings of {node_id}", exact=True)
    for _ in range(3):
        page.locator(f'[data-testid="node-{node_id}"] .node-head').click()
        page.get_by_role("tab", name="Node").click()
        try:
            panel.wait_for(timeout=3_000)
            return
        except Exception:  # playwright's TimeoutError; try the click again
            continue
    panel.wait_for()
