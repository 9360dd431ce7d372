"""The console in a real browser against a real `mjgate serve` with a simulator channel.

A user logs in, submits a task with a reference image, watches the live progress bar reach
100% and the image appear, opens the task, presses U1 and watches the upscale finish, filters by
task id, and logs out. An admin sees the channel column, refunds a finished task from its detail
dialog (and sees it in the task's history, the user's balance and the ledger), tests a channel,
tops a user up and finds the entry in the ledger. Screenshots of every main page are saved on the way.
"""

from __future__ import annotations

import io
import re
import time

import httpx
import pytest
from PIL import Image

from tests.e2e.conftest import PHONE, WIDE, PageErrors
from tests.fixtures.live import cli

TIMEOUT_MS = 30_000


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (48, 32), (200, 80, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


def login(page, base_url: str, username: str, password: str) -> None:
    page.goto(base_url + "/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()


def progress_of(row) -> int:
    return int(row.locator("progress").evaluate("el => el.value"))


def watch_until_done(page, row, timeout_s: float = 30, on_running=None) -> list[int]:
    """Sample the row's progress bar until it shows 100%; returns the distinct values seen.

    on_running(value) is called once, at the first value strictly between 0 and 100.
    """
    from playwright.sync_api import expect

    seen: list[int] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            value = progress_of(row)
        except Exception:  # the row was just re-rendered; sample again
            value = None
        if value is not None and (not seen or seen[-1] != value):
            seen.append(value)
            if on_running is not None and 0 < value < 100:
                on_running(value)
                on_running = None
        if value == 100:
            break
        page.wait_for_timeout(100)
    assert seen and seen[-1] == 100, f"the progress bar never reached 100%: {seen}"
    expect(row.locator(".badge")).to_have_text("Success")
    return seen


def image_loaded(locator) -> bool:
    return locator.evaluate("img => img.complete && img.naturalWidth > 0")


@pytest.fixture
def world(live_world):
    # Slow enough to see the progress bar move, quick enough for a test.
    live_world["simulator"].configure(step_seconds=0.6, steps=4, start_delay_seconds=0.2)
    return live_world


def test_user_journey(world, browser, screens):
    from playwright.sync_api import expect

    base = world["base_url"]
    context = browser.new_context(viewport=WIDE)
    context.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    page = context.new_page()
    errors = PageErrors()
    errors.attach(page)

    # A wrong password is an error message on the page, not a blank one.
    login(page, base, "client", "wrong-password")
    expect(page.get_by_role("alert")).to_contain_text("wrong username or password")
    screens.save(page, "login")
    page.get_by_label("Password", exact=True).fill("pw-client")
    page.get_by_role("button", name="Sign in").click()
    # The dashboard is the landing page (issue 14); the task log is one link away.
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tasks").click()
    expect(page.get_by_role("heading", name="My tasks")).to_be_visible()
    # Users see no channel (or user) column.
    headers = page.locator("table.tasks thead th")
    expect(headers.first).to_be_visible()
    assert "Channel" not in headers.all_inner_texts() and "User" not in headers.all_inner_texts()

    # Submit with a reference image.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="New task").click()
    expect(page.get_by_role("heading", name="New task")).to_be_visible()
    page.get_by_label("Prompt").fill("a red fox in the snow, watercolor --ar 3:2")
    page.get_by_role("radio", name=re.compile(r"^Relax")).check()
    page.get_by_role("radio", name=re.compile(r"^Fast")).check()
    page.get_by_label("Reference images (optional)").set_input_files(
        files=[{"name": "reference.png", "mimeType": "image/png", "buffer": png_bytes()}]
    )
    expect(page.locator(".image-preview img")).to_be_visible()
    screens.save(page, "submit")
    page.get_by_role("button", name="Submit task").click()

    row = page.locator("tbody tr.highlight")
    expect(row).to_have_count(1)
    mj_id = row.get_attribute("data-mj-id")
    assert mj_id and mj_id.isdigit()
    row = page.locator(f'tr[data-mj-id="{mj_id}"]')
    seen = watch_until_done(page, row, on_running=lambda _: screens.save(page, "task-log-running"))
    assert any(0 < v < 100 for v in seen), f"no live progress between 0 and 100% was shown: {seen}"
    thumb = row.locator("img.thumb-img")
    expect(thumb).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle())
    expect(row.locator('td[data-label="Cost"]')).to_contain_text("$0.10")
    expect(row.locator('td[data-label="Duration"]')).to_have_text(re.compile(r"^\d+s$"))
    screens.save(page, "task-log")

    # The detail dialog: full-size image and the result buttons; Escape closes it.
    row.get_by_role("button", name=mj_id, exact=True).click()
    dialog = page.get_by_role("dialog", name=f"Task {mj_id}")
    expect(dialog).to_be_visible()
    full = dialog.locator("img.full-image")
    expect(full).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=full.element_handle())
    for label in ("U1", "U2", "U3", "U4", "V1", "V2", "V3", "V4", "Reroll"):
        expect(dialog.get_by_role("button", name=label, exact=True)).to_be_visible()
    expect(dialog.locator("pre.prompt-full")).to_have_text("a red fox in the snow, watercolor --ar 3:2")
    screens.save(page, "task-detail")
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)

    # Keyboard only: focus the task's button, open with Enter, press U1.
    row.get_by_role("button", name=mj_id, exact=True).focus()
    page.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="U1", exact=True).focus()
    page.keyboard.press("Enter")
    expect(dialog).to_have_count(0)
    upscale = page.locator(f'tbody tr.highlight:not([data-mj-id="{mj_id}"])')
    expect(upscale).to_have_count(1)
    upscale_id = upscale.get_attribute("data-mj-id")
    assert upscale_id != mj_id
    upscale = page.locator(f'tr[data-mj-id="{upscale_id}"]')
    expect(upscale.locator('td[data-label="Task"]')).to_contain_text("Upscale")  # actions are shown as words (issue 14)
    watch_until_done(page, upscale)
    expect(upscale.locator("img.thumb-img")).to_be_visible()
    expect(upscale.locator('td[data-label="Cost"]')).to_contain_text("$0.05")
    screens.save(page, "task-log-upscaled")

    # Filter by task id: only that task remains; the filter survives a reload (it is in the URL).
    page.get_by_label("Task ID").fill(mj_id)
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator("tbody tr[data-mj-id]")).to_have_count(1)
    expect(page.locator(f'tbody tr[data-mj-id="{mj_id}"]')).to_be_visible()
    page.reload()
    expect(page.get_by_label("Task ID")).to_have_value(mj_id)
    expect(page.locator("tbody tr[data-mj-id]")).to_have_count(1)
    page.get_by_role("button", name="Reset").click()
    expect(page.locator("tbody tr[data-mj-id]")).to_have_count(2)

    # Own keys: a user sees and creates their own; the admin pages are not offered.
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Channels")).to_have_count(0)
    nav.get_by_role("link", name="API keys").click()
    expect(page.get_by_role("heading", name="My API keys")).to_be_visible()
    expect(page.locator("tbody tr[data-key-id]")).to_have_count(1)
    page.get_by_role("button", name="Create key").click()
    page.get_by_label("Name").fill("from-the-console")
    page.get_by_role("button", name="Create key").last.click()
    secret = page.get_by_role("dialog", name="Your new API key").locator("input.secret")
    expect(secret).to_have_value(re.compile(r"^sk-"))
    new_key = secret.input_value()
    page.keyboard.press("Escape")
    expect(page.locator("tbody tr[data-key-id]")).to_have_count(2)
    screens.save(page, "keys")
    answer = httpx.get(f"{base}/mj/task/{mj_id}/fetch", headers={"Authorization": f"Bearer {new_key}"})
    assert answer.status_code == 200 and answer.json()["status"] == "SUCCESS"

    # Phone width: the log becomes cards and still works.
    page.set_viewport_size(PHONE)
    nav.get_by_role("link", name="Tasks").click()
    expect(page.locator(f'tr[data-mj-id="{mj_id}"] img.thumb-img')).to_be_visible()
    screens.save(page, "phone-task-log")
    page.locator(f'tr[data-mj-id="{mj_id}"]').get_by_role("button", name=mj_id, exact=True).click()
    expect(page.get_by_role("dialog", name=f"Task {mj_id}")).to_be_visible()
    screens.save(page, "phone-task-detail")
    page.keyboard.press("Escape")
    page.set_viewport_size(WIDE)

    # Log out: back to the login form, and the old cookie no longer works.
    cookie = next(c["value"] for c in context.cookies() if c["name"] == "mjgate_session")
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Sign in to mjgate")).to_be_visible()
    assert httpx.get(f"{base}/api/console/me", cookies={"mjgate_session": cookie}).status_code == 401

    # The other way in: the dashboard access token and the user id.
    page.get_by_role("radio", name="With access token").check()
    page.get_by_label("Access token", exact=True).fill(world["user"]["access_token"])
    page.get_by_label("User ID").fill(str(world["user"]["id"]))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Sign in to mjgate")).to_be_visible()
    assert errors.real() == []
    context.close()


def test_admin_journey(world, browser, screens):
    from playwright.sync_api import expect

    base, env = world["base_url"], world["env"]
    boss = cli(env, "user", "create", "boss", "--role", "admin", "--password", "pw-boss")
    # A finished task of the client, so the admin's log has something to show.
    key = world["key"]
    answer = httpx.post(f"{base}/mj/submit/imagine", json={"prompt": "a lighthouse at dusk"},
                        headers={"Authorization": f"Bearer {key}"}).json()
    assert answer["code"] == 1, answer

    context = browser.new_context(viewport=WIDE)
    context.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    page = context.new_page()
    errors = PageErrors()
    errors.attach(page)
    login(page, base, "boss", "pw-boss")
    expect(page.get_by_role("heading", name="Dashboard (everyone)")).to_be_visible()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tasks").click()
    expect(page.get_by_role("heading", name="Tasks (all users)")).to_be_visible()
    headers = page.locator("table.tasks thead th")
    expect(headers.filter(has_text="Channel")).to_have_count(1)
    expect(headers.filter(has_text="User")).to_have_count(1)
    row = page.locator(f'tr[data-mj-id="{answer["result"]}"]')
    watch_until_done(page, row)
    expect(row.locator('td[data-label="Channel"]')).to_contain_text("sim")
    screens.save(page, "admin-task-log")

    # Admin actions on the finished task: refund it (with a reason, confirmed in a form inside the
    # dialog); the result and the history show it, and a second refund is not offered.
    mj_id = answer["result"]
    cost = row.locator('td[data-label="Cost"]').inner_text()
    assert cost.startswith("50,000 "), cost
    row.get_by_role("button", name=mj_id, exact=True).click()
    dialog = page.get_by_role("dialog", name=f"Task {mj_id}")
    admin = dialog.get_by_role("region", name="Admin")
    expect(admin).to_contain_text("No administrator has acted on this task.")
    expect(admin.get_by_role("button", name="Force fail")).to_be_disabled()
    expect(admin.get_by_role("button", name="Re-poll")).to_be_disabled()
    expect(admin).to_contain_text("Force fail and re-poll are for unfinished tasks only.")
    refund = admin.get_by_role("button", name="Refund", exact=True)
    expect(refund).to_be_enabled()
    # Keyboard: Enter opens the confirmation, focus goes to the reason, Escape closes only the form.
    refund.focus()
    page.keyboard.press("Enter")
    confirm = admin.get_by_role("form", name="Refund this task?")
    expect(confirm.get_by_label("Reason")).to_be_focused()
    expect(refund).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("Escape")
    expect(confirm).to_have_count(0)
    expect(dialog).to_be_visible()
    expect(refund).to_be_focused()
    # An empty reason is refused by the form; then a real one.
    refund.click()
    confirm.get_by_role("button", name="Confirm refund").click()
    expect(confirm).to_be_visible()
    assert confirm.get_by_label("Reason").evaluate("el => !el.validity.valid")
    confirm.get_by_label("Reason").fill("e2e: the image was unusable")
    confirm.get_by_role("button", name="Confirm refund").click()
    result = admin.get_by_role("status")
    expect(result).to_have_text(f"Refunded {cost} to user #{world['user']['id']}.")
    expect(result).to_be_focused()
    expect(confirm).to_have_count(0)
    expect(refund).to_be_disabled()
    expect(admin).to_contain_text("The charge has been refunded.")
    history = admin.get_by_role("list", name="History").get_by_role("listitem")
    expect(history).to_have_count(1)
    expect(history).to_contain_text("Refund")
    expect(history).to_contain_text(f"by #{boss['id']} (you)")
    expect(history).to_contain_text("Reason: e2e: the image was unusable")
    expect(history).to_contain_text(f"{cost} given back")
    expect(dialog.locator(".meta")).to_contain_text(f"{cost} refunded")
    page.set_viewport_size({"width": WIDE["width"], "height": 1100})
    screens.save(page, "admin-task-detail")
    page.set_viewport_size(WIDE)
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    # The row was refreshed; opened again, the dialog still offers no second refund.
    expect(row.locator('td[data-label="Cost"]')).to_contain_text("refunded")
    row.get_by_role("button", name=mj_id, exact=True).click()
    expect(dialog.get_by_role("region", name="Admin").get_by_role("button", name="Refund", exact=True)).to_be_disabled()
    expect(dialog.get_by_role("list", name="History").get_by_role("listitem")).to_have_count(1)
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)

    nav = page.get_by_role("navigation", name="Main")
    # Channels: test one (a real upstream call), its health shows it.
    nav.get_by_role("link", name="Channels").click()
    expect(page.get_by_role("heading", name="Channels")).to_be_visible()
    page.get_by_role("button", name="Test channel sim").click()
    expect(page.locator(".toast-ok").filter(has_text="answered in")).to_be_visible()
    expect(page.locator("tr[data-channel-id]").first.locator('td[data-label="Health"]')).to_contain_text("healthy")
    page.get_by_role("button", name="Edit channel sim").click()
    edit = page.get_by_role("dialog", name="Edit channel sim")
    edit.get_by_label("Priority").fill("5")
    edit.get_by_role("button", name="Save").click()
    expect(edit).to_have_count(0)
    expect(page.locator("tr[data-channel-id]").first.locator('td[data-label="Priority / weight"]')).to_have_text("5 / 1")
    screens.save(page, "admin-channels")

    # Users: top the client up by $2; the balance and the ledger agree.
    nav.get_by_role("link", name="Users").click()
    client_row = page.locator("tr[data-user-id]").filter(has_text="client")
    # The refund gave the imagine's charge back: the client is at the initial 100,000,000 units again.
    expect(client_row.locator('td[data-label="Balance"]')).to_have_text("100,000,000 ($200.00)")
    before = client_row.locator('td[data-label="Balance"]').inner_text()
    page.get_by_role("button", name="Top up client").click()
    top = page.get_by_role("dialog", name="Top up client")
    top.get_by_label("Amount (USD)").fill("2")
    top.get_by_label("Memo").fill("e2e top-up")
    top.get_by_role("button", name="Record").click()
    expect(page.locator(".toast-ok").filter(has_text="$2.00 recorded")).to_be_visible()
    expect(client_row.locator('td[data-label="Balance"]')).not_to_have_text(before)
    screens.save(page, "admin-users")

    nav.get_by_role("link", name="Prices").click()
    expect(page.get_by_role("heading", name="Prices and ratios")).to_be_visible()
    page.get_by_label("Ratio of relax").fill("0.4")
    page.get_by_role("button", name="Save mode ratios").click()
    expect(page.locator(".toast-ok").filter(has_text="Prices saved")).to_be_visible()
    expect(page.get_by_label("Ratio of relax")).to_have_value("0.4")
    page.set_viewport_size({"width": WIDE["width"], "height": 1180})
    screens.save(page, "admin-prices")
    page.set_viewport_size(WIDE)

    nav.get_by_role("link", name="Ledger").click()
    expect(page.get_by_role("heading", name="Quota ledger")).to_be_visible()
    first = page.locator("tbody tr[data-entry-id]").first
    expect(first).to_contain_text("e2e top-up")
    expect(first.locator('td[data-label="Amount"]')).to_contain_text("+1,000,000")
    page.get_by_label("Kind").select_option("charge")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("tbody tr[data-entry-id]").first.locator('td[data-label="Kind"]')).to_have_text("charge")
    # The refund is in the ledger: the client's +50,000, the reason in the memo, the admin as author.
    page.get_by_label("Kind").select_option("refund")
    page.get_by_role("button", name="Apply").click()
    refund_entry = page.locator("tbody tr[data-entry-id]")
    expect(refund_entry).to_have_count(1)
    expect(refund_entry.locator('td[data-label="Kind"]')).to_have_text("refund")
    expect(refund_entry.locator('td[data-label="User"]')).to_have_text(f"client (#{world['user']['id']})")
    expect(refund_entry.locator('td[data-label="Amount"]')).to_contain_text("+50,000")
    expect(refund_entry.locator('td[data-label="Task"]')).to_have_text(mj_id)
    expect(refund_entry.locator('td[data-label="Memo"]')).to_have_text("admin: e2e: the image was unusable")
    expect(refund_entry.locator('td[data-label="By"]')).to_have_text(f"#{boss['id']}")
    page.get_by_label("Kind").select_option("")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("tbody tr[data-entry-id]").first).to_contain_text("e2e top-up")
    screens.save(page, "admin-ledger")

    # Create a user through the dialog: the access token is shown once.
    nav.get_by_role("link", name="Users").click()
    page.get_by_role("button", name="Create user").click()
    create = page.get_by_role("dialog", name="Create a user")
    create.get_by_label("Username").fill("dora")
    create.get_by_label("Console password").fill("pw-dora")
    create.get_by_label("Initial balance (USD)").fill("3")
    create.get_by_role("button", name="Create user").click()
    token = page.get_by_role("dialog", name="User dora created").locator("input.secret")
    expect(token).to_have_value(re.compile(r"^[0-9a-f]{32}$"))
    page.keyboard.press("Escape")
    expect(page.locator("tr[data-user-id]").filter(has_text="dora").locator('td[data-label="Balance"]')).to_contain_text("$3.00")

    # Add a second channel through the dialog.
    nav.get_by_role("link", name="Channels").click()
    page.get_by_role("button", name="Add channel").click()
    add = page.get_by_role("dialog", name="Add a channel")
    add.get_by_label("Name").fill("backup")
    add.get_by_label("Base URL").fill(world["simulator"].base_url)
    add.get_by_label("Secret (mj-api-secret)").fill(world["simulator"].secret)
    add.get_by_label("turbo").uncheck()
    add.get_by_role("button", name="Add channel").click()
    expect(page.locator("tr[data-channel-id]")).to_have_count(2)
    expect(page.locator("tr[data-channel-id]").filter(has_text="backup").locator('td[data-label="Modes"]')).to_have_text("fast, relax")

    page.set_viewport_size(PHONE)
    nav.get_by_role("link", name="Tasks").click()
    nav.get_by_role("link", name="Channels").click()
    expect(page.locator("tr[data-channel-id]")).to_have_count(2)
    screens.save(page, "phone-admin-channels")
    page.set_viewport_size(WIDE)

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Sign in to mjgate")).to_be_visible()
    assert errors.real() == []
    context.close()
