"""A workflow's triggers in a real Chromium: a webhook's address and token shown once with copy
buttons, a call to it listed among its last calls, switching it off; a schedule written as cron,
read back in words with its next five fire times in the chosen time zone, switched off."""

from __future__ import annotations

from typing import Any

import pytest
from greeting import GREETING
from uiflows import create_workflow, sign_up
from uikit import Shot

pytestmark = pytest.mark.slow


def test_webhooks_and_schedules_of_a_workflow(page: Any, shot: Shot) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    sign_up(page)
    workflow = create_workflow(page, "Greeter", GREETING)
    page.goto("/")
    page.get_by_role("button", name="Triggers of Greeter").click()
    page.get_by_role("heading", name="Triggers of Greeter").wait_for()

    page.get_by_label("The call is answered with").select_option(
        label="the run's outputs, once it has finished"
    )
    page.get_by_role("button", name="Add a webhook").click()
    url = page.get_by_test_id("hook-url").inner_text()
    token = page.get_by_test_id("hook-token").inner_text()
    assert url.startswith("http")
    assert "/api/v1/hooks/" in url
    assert len(token) > 20
    secret = page.get_by_role("status", name="New webhook secret")
    secret.get_by_role("button", name="Copy the webhook token").click()
    secret.get_by_text("Copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == token
    shot("webhook token shown once")

    called = page.request.post(url, data={"name": "Ada"}, headers={"X-Flowloom-Token": token})
    assert called.status == 200, called.text()
    assert called.json()["outputs"]["greet"]["text"] == "hello Ada"
    page.get_by_role("button", name="I have stored it").click()
    assert page.get_by_test_id("hook-token").count() == 0
    hook = page.locator("article", has=page.get_by_role("heading", name="Webhook"))
    hook_id = hook.get_attribute("data-trigger-id")
    hook.get_by_role("button", name="Refresh").click()
    calls = hook.get_by_role("list", name=f"Last calls of {hook_id}")
    calls.get_by_text("completed").wait_for()
    test_call = hook.get_by_role("form", name=f"Test call of {hook_id}")
    test_call.get_by_label("name").fill("Grace")
    test_call.get_by_role("button", name="Send a test call").click()
    test_call.get_by_role("status").get_by_role("link", name="the run").wait_for()
    calls.locator("li").nth(1).wait_for()
    wrong = page.request.post(url, data={}, headers={"X-Flowloom-Token": "not the token"})
    assert wrong.status == 404
    hook.get_by_role("button", name="Refresh").click()
    hook.get_by_role("list", name=f"Refused calls of {hook_id}").get_by_text(
        "wrong token"
    ).wait_for()
    shot("calls, a test call and a refused one")
    hook.get_by_role("button", name="Switch off").click()
    hook.get_by_text("Off", exact=True).wait_for()
    refused = page.request.post(url, data={"name": "Bob"}, headers={"X-Flowloom-Token": token})
    assert refused.status >= 400

    schedule_form = page.get_by_role("form", name="New schedule")
    schedule_form.get_by_label("Cron expression").fill("0 9 * *")
    schedule_form.get_by_role("alert").filter(has_text="cron").wait_for()
    assert schedule_form.get_by_role("button", name="Add schedule").is_disabled()
    schedule_form.get_by_label("Cron expression").fill("30 9 * * 1-5")
    schedule_form.get_by_label("Time zone").select_option("Asia/Tokyo")
    words = schedule_form.get_by_test_id("cron-words")
    words.filter(has_text="At 09:30, on Monday through Friday").wait_for()
    schedule_form.get_by_text("Next five fire times (Asia/Tokyo)").wait_for()
    shot("schedule preview")
    schedule_form.get_by_role("button", name="Add schedule").click()
    card = page.locator(
        "article", has=page.get_by_role("heading", name="At 09:30, on Monday through Friday")
    )
    card.wait_for()
    fires = card.get_by_role(
        "list", name=f"Next fire times of {card.get_attribute('data-trigger-id')}"
    )
    assert fires.locator("li").count() == 5
    assert "09:30" in fires.locator("li").first.inner_text()
    shot("schedule saved")

    card.get_by_role("button", name="Switch off").click()
    card.get_by_text("Switched off").wait_for()
    page.reload()
    page.get_by_role("heading", name="At 09:30, on Monday through Friday").wait_for()
    page.get_by_text("Switched off: it fires again").wait_for()
    assert page.locator("article[data-trigger-id]").count() == 2
    assert workflow["id"] in page.url
    shot("after a reload")
