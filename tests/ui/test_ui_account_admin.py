"""The Account page (password, sessions, API keys with rotation) and the admin Users page
(search, disable and enable, role, credits), driven in a real browser against a real server."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect
from uiflows import OWNER_EMAIL, PASSWORD, call, sign_in, sign_up
from uikit import VIEWPORT, Shot


def second_browser(browser: Any, ui_server: str) -> Any:
    context = browser.new_context(viewport=VIEWPORT, base_url=ui_server)
    context.set_default_timeout(15_000)
    return context.new_page()


def test_account_password_sessions_and_key_rotation(
    page: Any, browser: Any, ui_server: str, shot: Shot
) -> None:
    email = sign_up(page)
    other = second_browser(browser, ui_server)
    try:
        sign_in(other, email, PASSWORD)

        page.get_by_role("link", name="Account").click()
        page.get_by_role("heading", name="Account", exact=True).wait_for()
        sessions = page.get_by_role("table", name="Sessions")
        sessions.get_by_text("this browser").wait_for()
        expect(sessions.locator("tbody tr")).to_have_count(2)
        shot("account with two sessions")

        # End the other browser's session: its next request is refused.
        assert sessions.locator("tbody tr").first.get_by_text("this browser").count() == 1
        sessions.get_by_role("button", name="End session").click()
        sessions.locator("tbody tr").nth(1).wait_for(state="detached")
        assert other.request.get("/api/v1/auth/me").status == 401

        # An API key, rotated: a new secret shown once; the old one works through the grace.
        page.get_by_label("Name").fill("deploy")
        page.get_by_role("button", name="Create key").click()
        old_secret = page.get_by_test_id("new-key").inner_text()
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Rotate deploy").click()
        rotated = page.get_by_role("status", name="Rotated key")
        rotated.get_by_text("keeps working until").wait_for()
        new_secret = page.get_by_test_id("rotated-key").inner_text()
        assert new_secret.startswith("flk_")
        assert new_secret != old_secret
        assert new_secret.split("_")[1] == old_secret.split("_")[1]  # the same key
        for secret in (old_secret, new_secret):
            answer = page.request.get(
                "/api/v1/workflows", headers={"Authorization": f"Bearer {secret}"}
            )
            assert answer.status == 200
        shot("key rotated")

        # The password: a wrong current one is named; the right one changes it.
        page.get_by_label("Current password").fill("not it")
        page.get_by_label("New password", exact=True).fill("a new long password")
        page.get_by_label("New password again").fill("a new long password")
        page.get_by_role("button", name="Change password").click()
        page.get_by_role("alert").filter(has_text="current password is wrong").wait_for()
        shot("wrong current password")
        page.get_by_label("Current password").fill(PASSWORD)
        page.get_by_role("button", name="Change password").click()
        page.get_by_role("status").filter(has_text="Password changed").wait_for()
        shot("password changed")
        # Still signed in here, with the new password from now on.
        assert page.request.get("/api/v1/auth/me").status == 200
    finally:
        other.context.close()


def test_admin_users_search_disable_enable_role_and_credits(
    page: Any, browser: Any, ui_server: str, owner_password: str, shot: Shot
) -> None:
    user_page = second_browser(browser, ui_server)
    try:
        email = sign_up(user_page)
        key = call(
            user_page,
            "POST",
            "/api/v1/api-keys",
            {"name": "bot", "scopes": ["workflows:read"]},
            expect=201,
        )["key"]

        sign_in(page, OWNER_EMAIL, owner_password)
        page.get_by_role("link", name="Admin").click()
        page.get_by_role("heading", name="Users").wait_for()
        page.get_by_label("Search by email").fill(email.split("@")[0])
        page.get_by_role("button", name="Search").click()
        row = page.get_by_test_id(f"user-{email}")
        row.wait_for()
        expect(page.get_by_role("table", name="Users").locator("tbody tr")).to_have_count(1)
        shot("search finds the user")

        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name=f"Disable {email}").click()
        page.get_by_role("status").filter(has_text="1 session(s) and 1 API key(s) ended").wait_for()
        row.get_by_text("disabled").wait_for()
        shot("user disabled")
        # Their very next requests: the browser session and the key are refused.
        assert user_page.request.get("/api/v1/auth/me").status == 401
        refused = user_page.request.get(
            "/api/v1/workflows", headers={"Authorization": f"Bearer {key}"}
        )
        assert refused.status == 401
        user_page.reload()
        user_page.get_by_role("heading", name="Sign in").wait_for()

        page.get_by_role("button", name=f"Enable {email}").click()
        row.get_by_text("active", exact=True).wait_for()

        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_label(f"Role of {email}").select_option("admin")
        page.get_by_role("status").filter(has_text="is now an admin").wait_for()
        page.get_by_role("button", name=f"Grant credits to {email}").click()
        page.get_by_label("Amount").fill("25")
        page.get_by_label("Reason (optional)").fill("welcome")
        page.get_by_role("button", name="Grant", exact=True).click()
        page.get_by_role("status").filter(has_text="now holds 25 credit(s)").wait_for()
        row.get_by_role("cell", name="25", exact=True).wait_for()
        shot("role and credits")

        # An admin cannot disable themselves: the button says why and stays off.
        page.get_by_label("Search by email").fill(OWNER_EMAIL)
        page.get_by_role("button", name="Search").click()
        own = page.get_by_role("button", name=f"Disable {OWNER_EMAIL}")
        own.wait_for()
        assert own.is_disabled()
        # The signed-in user got their account back: they sign in again.
        sign_in(user_page, email, PASSWORD)
    finally:
        user_page.context.close()
