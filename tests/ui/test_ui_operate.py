"""Operating an instance in a real browser against a server of its own (private addresses
allowed for the fake OAuth provider, an identity provider configured): the admin tabs (plans,
settings with retention, audit log, health, usage, models, deleting a user), a user's plan and
memory, connecting and disconnecting an OAuth service from the Account page, and signing in
with the identity provider, linking a password account."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from integrations.fake_oauth import CLIENT_ID, CLIENT_SECRET, FakeOAuthProvider, running_provider
from playwright.sync_api import expect
from servekit import first_password, serve
from uiflows import OWNER_EMAIL, PASSWORD, call, create_workflow, sign_in, sign_up
from uikit import VIEWPORT, Shot, require_browser

ISSUER = "https://id.example.test"
AUDIENCE = "flowloom-ui-tests"
SHARED_KEY = "ui-shared-key-" + "k" * 40
SIGN_IN_URL = "https://id.example.test/sign-in?redirect_url=/signin"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """This module's server: its base URL and the owner's password."""
    require_browser()
    root = tmp_path_factory.mktemp("ops-ui")
    env = {
        "FLOWLOOM_ALLOW_PRIVATE_HTTP": "true",
        "FLOWLOOM_EXTERNAL_AUTH_ISSUER": ISSUER,
        "FLOWLOOM_EXTERNAL_AUTH_AUDIENCE": AUDIENCE,
        "FLOWLOOM_EXTERNAL_AUTH_SHARED_KEY": SHARED_KEY,
        "FLOWLOOM_EXTERNAL_AUTH_PROVIDER": "acme",
        "FLOWLOOM_EXTERNAL_AUTH_SIGN_IN_URL": SIGN_IN_URL,
    }
    with serve(root / "data", root / "serve.log", env) as (_process, base):
        password = first_password((root / "serve.log").read_text())
        assert password
        yield base, password


@pytest.fixture
def ui_server(served: tuple[str, str]) -> str:
    return served[0]


@pytest.fixture
def owner_password(served: tuple[str, str]) -> str:
    return served[1]


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeOAuthProvider]:
    with running_provider() as running:
        yield running


def another_page(browser: Any, ui_server: str) -> Any:
    context = browser.new_context(viewport=VIEWPORT, base_url=ui_server)
    context.set_default_timeout(15_000)
    return context.new_page()


def identity_token(subject: str, email: str) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 300, "sub": subject}
    return jwt.encode({**claims, "email": email}, SHARED_KEY, "HS256")


def test_admin_tabs_plans_settings_audit_health_usage_models_and_deleting_a_user(
    page: Any, browser: Any, ui_server: str, owner_password: str, shot: Shot
) -> None:
    leaver = another_page(browser, ui_server)
    try:
        leaving = sign_up(leaver)
        create_workflow(leaver, "leaver's flow", {"schema_version": 1, "nodes": [], "edges": []})
    finally:
        leaver.context.close()
    sign_in(page, OWNER_EMAIL, owner_password)
    page.get_by_role("link", name="Admin").click()
    tabs = page.get_by_role("navigation", name="Administration")

    # Plans: a new plan offered to every user.
    tabs.get_by_role("link", name="Plans").click()
    page.get_by_role("heading", name="Plans", exact=True).wait_for()
    form = page.get_by_role("form", name="New plan")
    form.get_by_label("Name").fill("Team")
    form.get_by_label("Price").fill("12")
    form.get_by_label("Runs a month").fill("500")
    form.get_by_label("Description (optional)").fill("For small teams")
    form.get_by_role("button", name="Create plan").click()
    page.get_by_role("status").filter(has_text="Team was created").wait_for()
    row = page.get_by_test_id("plan-Team")
    expect(row.get_by_label("Offer Team to every user")).to_be_checked()
    shot("plans")

    # Settings: retention, a refused value named, then saved.
    tabs.get_by_role("link", name="Settings").click()
    page.get_by_role("heading", name="Retention").wait_for()
    page.get_by_label("Days to keep: Finished runs").fill("90")
    page.get_by_label("Days to keep: Usage records").fill("10")
    page.get_by_role("button", name="Save retention").click()
    page.get_by_role("alert").filter(has_text="Usage records").wait_for()
    page.get_by_label("Days to keep: Usage records").fill("400")
    page.get_by_role("button", name="Save retention").click()
    page.get_by_role("status").filter(has_text="Retention saved").wait_for()
    page.get_by_text("deleted after 90 day(s)").wait_for()
    settings = call(page, "GET", "/api/v1/admin/settings")
    assert (settings["retain_runs_days"], settings["retain_usage_days"]) == (90, 400)
    shot("settings with retention")

    # Users: delete the leaving account, typing its email to confirm.
    tabs.get_by_role("link", name="Users").click()
    page.get_by_label("Search by email").fill(leaving)
    page.get_by_role("button", name="Search").click()
    page.get_by_test_id(f"user-{leaving}").wait_for()
    page.once("dialog", lambda dialog: dialog.accept(leaving))
    page.get_by_role("button", name=f"Delete {leaving}").click()
    page.get_by_role("status").filter(has_text=f"{leaving} was deleted").wait_for()
    expect(page.get_by_test_id(f"user-{leaving}")).to_have_count(0)

    # The audit log: the admin changes just made, filtered to admin changes.
    tabs.get_by_role("link", name="Audit log").click()
    page.get_by_label("Kind").select_option("admin.")
    entries = page.get_by_role("table", name="Audit entries")
    entries.get_by_text("admin.user.delete").wait_for()
    entries.get_by_text("admin.settings.update").first.wait_for()
    entries.get_by_text("admin.package.create").wait_for()
    expect(entries.get_by_text("auth.login")).to_have_count(0)
    assert "action=admin." in page.url
    shot("audit log of admin changes")

    # Health: the instance's numbers.
    tabs.get_by_role("link", name="Health").click()
    expect(page.get_by_test_id("stat-running").locator(".value")).to_have_text(re.compile(r"^\d+$"))
    page.get_by_role("img", name=re.compile("Failed runs per hour")).wait_for()
    page.get_by_text("runs its maintenance pass daily").wait_for()
    page.get_by_role("heading", name="Durations and failures, last 24 h").wait_for()
    shot("health")

    tabs.get_by_role("link", name="Usage").click()
    page.get_by_role("table", name="Usage by day").wait_for()
    shot("usage")

    # Models: a price changed in place.
    tabs.get_by_role("link", name="Models").click()
    page.get_by_label("Filter models").fill("gpt-4o-mini")
    price = page.get_by_label("Input price of gpt-4o-mini", exact=True)
    price.fill("0.2")
    price.blur()
    page.get_by_role("status").filter(has_text="price saved").wait_for()
    models = call(page, "GET", "/api/v1/admin/ai-models")["items"]
    mini = next(m for m in models if m["model"] == "gpt-4o-mini")
    assert float(mini["input_price_per_mtok"]) == 0.2
    shot("models")


def test_a_user_chooses_a_plan_sees_usage_and_forgets_memory(
    page: Any, browser: Any, ui_server: str, owner_password: str, shot: Shot
) -> None:
    admin = another_page(browser, ui_server)
    try:
        sign_in(admin, OWNER_EMAIL, owner_password)
        name = f"Starter {secrets.token_hex(2)}"
        call(
            admin,
            "POST",
            "/api/v1/admin/packages",
            {"name": name, "max_runs_per_month": 20, "max_tokens_per_month": 50000, "public": True},
            expect=201,
        )
    finally:
        admin.context.close()
    sign_up(page)
    flow = create_workflow(
        page,
        "remembers colours",
        {
            "schema_version": 1,
            "nodes": [
                {
                    "id": "remember",
                    "type": "memory.write",
                    "position": {"x": 0, "y": 0},
                    "data": {"config": {"key": "favourite colour", "value": "teal"}},
                }
            ],
            "edges": [],
        },
    )
    ran = call(page, "POST", f"/api/v1/workflows/{flow['id']}/runs?wait=true", {}, expect=200)
    assert ran["status"] == "COMPLETED", ran

    page.get_by_role("link", name="Account").click()
    page.get_by_role("link", name="See your plan").click()
    page.get_by_role("heading", name="Your plan").wait_for()
    card = page.get_by_role("article", name=name)
    card.get_by_role("button", name=f"Choose {name}").click()
    page.get_by_role("status").filter(has_text=f"You are on {name}").wait_for()
    card.get_by_text("your plan").wait_for()
    runs = page.get_by_label("Runs used")
    expect(runs).to_have_attribute("aria-valuemax", "20")
    expect(runs).to_have_attribute("aria-valuenow", "1")
    shot("plan chosen with usage against limits")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel subscription").click()
    page.get_by_role("status").filter(has_text=f"{name} is cancelled").wait_for()
    card.get_by_role("button", name=f"Choose {name}").wait_for()

    page.goto("/memory")
    page.get_by_role("heading", name="Memory").wait_for()
    page.get_by_role("list", name="Workflows with memory").get_by_text(
        "remembers colours"
    ).wait_for()
    entry = page.get_by_test_id("memory--favourite colour")
    entry.get_by_text("teal").wait_for()
    shot("memory of a workflow")
    entry.get_by_role("button", name="Forget favourite colour (whole workflow)").click()
    page.get_by_role("status").filter(has_text='Forgot "favourite colour"').wait_for()
    page.get_by_text("No workflow remembers anything yet").wait_for()


def test_connect_an_oauth_service_from_the_account_page_and_disconnect_it(
    page: Any, provider: FakeOAuthProvider, shot: Shot
) -> None:
    sign_up(page)
    call(
        page,
        "POST",
        "/api/v1/oauth/connections",
        {
            "name": "fake crm",
            "provider": "fakecrm",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "authorization_url": f"{provider.base_url}/authorize",
            "token_url": f"{provider.base_url}/token",
            "revocation_url": f"{provider.base_url}/revoke",
            "scopes": ["read"],
        },
        expect=201,
    )
    page.get_by_role("link", name="Account").click()
    services = page.get_by_role("table", name="Connected services")
    services.get_by_text("not connected").wait_for()
    services.get_by_role("button", name="Connect fake crm", exact=True).click()
    # Off to the provider, which consents at once, and back on the Account page.
    page.get_by_role("status").filter(has_text="Connected fake crm").wait_for()
    assert page.url.endswith("/account")
    services.get_by_text("connected", exact=False).first.wait_for()
    expect(services.get_by_text("not connected")).to_have_count(0)
    shot("connected and back on the account page")

    before = len(provider.revocations)
    page.once("dialog", lambda dialog: dialog.accept())
    services.get_by_role("button", name="Disconnect fake crm").click()
    page.get_by_role("status").filter(has_text="revoked at the provider").wait_for()
    assert len(provider.revocations) - before == 2
    shot("disconnected with revocation")

    # A refused authorization comes back to the same page, saying why.
    page.goto("/account?oauth=error&message=access_denied")
    page.get_by_role("alert").filter(has_text="access_denied").wait_for()


def test_sign_in_with_the_identity_provider_and_link_a_password_account(
    page: Any, browser: Any, ui_server: str, shot: Shot, artifacts: Path
) -> None:
    page.goto("/signin")
    button = page.get_by_role("link", name="Sign in with Acme")
    expect(button).to_have_attribute("href", SIGN_IN_URL)
    shot("sign in offers the identity provider")

    # The provider sends the browser back with its token in the fragment.
    newcomer = f"acme-{secrets.token_hex(3)}@example.com"
    page.goto(f"/signin#token={identity_token(f'user_{secrets.token_hex(4)}', newcomer)}")
    page.get_by_role("heading", name="Workflows").wait_for()
    assert call(page, "GET", "/api/v1/auth/me")["email"] == newcomer

    # An identity whose email has a password account: its password links the two.
    other = another_page(browser, ui_server)
    try:
        email = sign_up(other)
        other.context.clear_cookies()
        other.goto(f"/signin#token={identity_token(f'user_{secrets.token_hex(4)}', email)}")
        prompt = other.get_by_role("status").filter(has_text="You already have an account with")
        prompt.wait_for()
        other.get_by_label("Password of that account").fill(PASSWORD)
        folder = artifacts / "test_sign_in_with_the_identity_provider_and_link_a_password_account"
        other.screenshot(path=str(folder / "02-link-a-password-account.png"))
        other.get_by_role("button", name="Link and sign in").click()
        other.get_by_role("heading", name="Workflows").wait_for()
        assert call(other, "GET", "/api/v1/auth/me")["email"] == email
    finally:
        other.context.close()


def test_an_image_load_node_takes_a_dropped_or_picked_file(page: Any, shot: Shot) -> None:
    import base64
    import io

    from PIL import Image
    from uiflows import open_editor, select_node

    sign_up(page)
    flow = create_workflow(
        page,
        "picture",
        {
            "schema_version": 1,
            "nodes": [
                {
                    "id": "load",
                    "type": "image.load",
                    "position": {"x": 0, "y": 0},
                    "data": {"label": "Load image", "config": {}},
                }
            ],
            "edges": [],
        },
    )
    picture = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 120, 200)).save(picture, "PNG")
    open_editor(page, flow["id"])
    select_node(page, "load")
    panel = page.get_by_label("Settings of load", exact=True)

    # Not an image: refused, the reason shown.
    panel.get_by_label("Choose an image file").set_input_files(
        {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"just words"}
    )
    panel.get_by_role("alert").filter(has_text="415").or_(
        panel.get_by_role("alert").filter(has_text="image")
    ).first.wait_for()

    # Dropped on the zone, as a file dragged from the desktop.
    data = base64.b64encode(picture.getvalue()).decode()
    drop = page.evaluate_handle(
        """data => {
            const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], "blue.png", { type: "image/png" }));
            return transfer;
        }""",
        data,
    )
    panel.get_by_test_id("image-drop-zone").dispatch_event("drop", {"dataTransfer": drop})
    panel.get_by_text("blue.png \u00b7 64\u00d748").wait_for()
    panel.get_by_test_id("image-thumb").wait_for()
    shot("image dropped on the node's settings")

    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_role("status").filter(has_text="Saved as version").wait_for()
    saved = call(page, "GET", f"/api/v1/workflows/{flow['id']}")
    config = saved["definition"]["nodes"][0]["data"]["config"]
    assert len(config["sha256"]) == 64
    page.get_by_role("button", name="Run", exact=True).click()
    page.locator('[data-testid="run-status"][data-status="COMPLETED"]').wait_for()
    page.locator('[data-testid="node-load"] [data-testid="image-thumb"]').wait_for()
    shot("the uploaded image loaded by a run")
