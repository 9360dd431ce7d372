"""The console's view of the channel scheduler (issues 11 and 14), in a real Chromium against
`mjgate serve` and the simulator: a channel's capacity, daily cap, active hours and mode fallback
edited from the channels page and shown there; users' and keys' in-flight counts and limits set
by an admin (and enforced by the gateway); the dashboard's queue depth and channel health; the
live alert banner when the breaker puts a failing channel in cooldown. axe-core on each page.
"""

from __future__ import annotations

import re
import time

import httpx
import pytest

from tests.e2e.conftest import PageErrors, WIDE, axe_violations
from tests.fixtures.live import _env, cli, start_gateway
from tests.fixtures.simulator import start_simulator_process

TIMEOUT_MS = 30_000


@pytest.fixture
def world(tmp_path):
    """A simulator, a gateway whose breaker opens on the first failure (and stays open for minutes,
    long enough to look at it), a user with a key, and an administrator."""
    sim = start_simulator_process(step_seconds=0.3, steps=3, start_delay_seconds=0.1)
    data_dir = tmp_path / "live"
    data_dir.mkdir(parents=True, exist_ok=True)
    database_url = f"sqlite+aiosqlite:///{data_dir}/mjgate.db"
    env = _env(database_url, data_dir)
    user = cli(env, "user", "create", "client", "--quota", "100000000", "--password", "pw-client")
    key = cli(env, "token", "create", "--user", "client")
    cli(env, "user", "create", "boss", "--role", "admin", "--password", "pw-boss")
    cli(env, "channel", "create", "sim", "--base-url", sim.base_url, "--secret", sim.secret)
    gateway = start_gateway(database_url, data_dir, MJGATE_BREAKER_FAILURES="1", MJGATE_BREAKER_COOLDOWN_S="300")
    try:
        yield {"gateway": gateway, "simulator": sim, "key": key, "user": user, "base_url": gateway.base_url, "env": env}
    finally:
        gateway.stop()
        sim.stop()


def new_page(browser, *, locale="en-US"):
    from playwright.sync_api import expect

    context = browser.new_context(viewport=WIDE, locale=locale, timezone_id="UTC", bypass_csp=True)
    context.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    page = context.new_page()
    errors = PageErrors()
    errors.attach(page)
    return context, page, errors


def sign_in_admin(page, base: str) -> None:
    from playwright.sync_api import expect

    page.goto(base + "/")
    page.locator("input[name=username]").fill("boss")
    page.locator("input[name=password]").fill("pw-boss")
    page.locator("form.login-card button[type=submit]").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard (everyone)")


def submit(base: str, key: str, prompt: str) -> dict:
    return httpx.post(f"{base}/mj/submit/imagine", json={"prompt": prompt},
                      headers={"Authorization": f"Bearer {key}"}, timeout=30).json()


def assert_accessible(page, name: str, failures: list[str]) -> None:
    page.wait_for_timeout(300)  # charts draw on the next frame
    for v in axe_violations(page):
        failures.append(f"{name}: axe {v['impact']} {v['id']} ({v['help']}): {v['nodes']}")


def test_capacity_and_in_flight_limits_from_the_console(world, browser, screens):
    from playwright.sync_api import expect

    base, sim, key = world["base_url"], world["simulator"], world["key"]["key"]
    context, page, errors = new_page(browser)
    failures: list[str] = []
    sign_in_admin(page, base)

    # The channel's form takes capacity, a daily cap, active hours and mode fallback.
    page.goto(base + "/#/admin/channels")
    row = page.locator("tr[data-channel-id]").first
    expect(row.locator('[data-capacity="in_flight"]')).to_have_text("No capacity limit")
    expect(row.locator('[data-capacity="today"]')).to_have_text("No daily cap")
    expect(row.locator(".health-badge")).to_have_text("In service")
    row.get_by_role("button", name="Edit channel sim").click()
    dialog = page.get_by_role("dialog", name="Edit channel sim")
    dialog.get_by_label("Max running").fill("2")
    dialog.get_by_label("Max queued upstream").fill("1")
    dialog.get_by_label("Daily cap").fill("50")
    dialog.get_by_label("Active hours (UTC)").fill("nonsense")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_visible()  # the pattern refuses it before anything is sent
    dialog.get_by_label("Active hours (UTC)").fill("00:00-23:59")
    dialog.get_by_label("Fall back from fast to relax").check()
    dialog.get_by_label("Fall back from fast to relax").scroll_into_view_if_needed()
    assert_accessible(page, "channel form", failures)
    screens.save(page, "admin-channel-capacity-form")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_have_count(0)
    expect(row.locator('[data-capacity="in_flight"]')).to_have_text("0 / 3 in flight (2 running + 1 queued)")
    expect(row.locator('[data-capacity="today"]')).to_have_text("0 / 50 sent today")
    expect(row).to_contain_text("Active 00:00-23:59 UTC")
    expect(row).to_contain_text("Fast falls back to relax")
    saved = page.request.get(base + "/api/admin/channels").json()["data"]["items"][0]
    assert (saved["max_running"], saved["max_queued"], saved["daily_cap"], saved["active_hours"], saved["mode_fallback"]) \
        == (2, 1, 50, "00:00-23:59", True)
    # The form shows what is stored; emptying a field removes that limit.
    row.get_by_role("button", name="Edit channel sim").click()
    expect(dialog.get_by_label("Max running")).to_have_value("2")
    expect(dialog.get_by_label("Fall back from fast to relax")).to_be_checked()
    dialog.get_by_label("Max queued upstream").fill("")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_have_count(0)
    expect(row.locator('[data-capacity="in_flight"]')).to_have_text("0 / 2 in flight (2 running + 0 queued)")
    assert page.request.get(base + "/api/admin/channels").json()["data"]["items"][0]["max_queued"] is None

    # A task that stays running holds one slot of the channel, of its user and of its key.
    sim.configure(step_seconds=30)
    running = submit(base, key, "a long exposure")
    assert running["code"] == 1, running
    page.reload()
    expect(row.locator('[data-capacity="in_flight"]')).to_have_text("1 / 2 in flight (2 running + 0 queued)")
    expect(row.locator('[data-capacity="today"]')).to_have_text("1 / 50 sent today")
    assert_accessible(page, "channels", failures)
    screens.save(page, "admin-channels-capacity", full_page=True)

    # The users page: in flight / limit, and the limit set from the row.
    page.goto(base + "/#/admin/users")
    client = page.locator(f'tr[data-user-id="{world["user"]["id"]}"]')
    expect(client.locator("[data-in-flight]")).to_have_text("1 (no limit)")
    client.get_by_role("button", name="Set the in-flight limit of client").click()
    limit = page.get_by_role("dialog", name="Set the in-flight limit of client")
    expect(limit).to_contain_text("1 unfinished now.")
    limit.get_by_label("Most unfinished tasks at once").fill("1")
    assert_accessible(page, "user limit form", failures)
    limit.get_by_role("button", name="Save").click()
    expect(limit).to_have_count(0)
    expect(client.locator("[data-in-flight]")).to_have_text("1 / 1")
    # The gateway enforces it: the user's next task is refused, the running one goes on.
    refused = submit(base, key, "one too many")
    assert refused["code"] == 4, refused
    assert_accessible(page, "users", failures)
    # The user's own page says the same and sets it too.
    page.goto(f"{base}/#/admin/users/{world['user']['id']}")
    expect(page.locator(".meta [data-in-flight]")).to_have_text("1 / 1")
    page.locator(".meta").get_by_role("button", name="Set the in-flight limit of client").click()
    limit = page.get_by_role("dialog", name="Set the in-flight limit of client")
    expect(limit.get_by_label("Most unfinished tasks at once")).to_have_value("1")
    limit.get_by_label("Most unfinished tasks at once").fill("")
    limit.get_by_role("button", name="Save").click()
    expect(limit).to_have_count(0)
    expect(page.locator(".meta [data-in-flight]")).to_have_text("1 (no limit)")

    # Keys: the same for the key the task was submitted with.
    page.goto(base + "/#/keys")
    key_row = page.locator(f'tr[data-key-id="{world["key"]["id"]}"]')
    expect(key_row.locator("[data-in-flight]")).to_have_text("1 (no limit)")
    key_row.get_by_role("button", name=re.compile(r"^Set the in-flight limit of key ")).click()
    limit = page.get_by_role("dialog", name=re.compile(r"^Set the in-flight limit of key "))
    limit.get_by_label("Most unfinished tasks at once").fill("5")
    limit.get_by_role("button", name="Save").click()
    expect(limit).to_have_count(0)
    expect(key_row.locator("[data-in-flight]")).to_have_text("1 / 5")
    assert_accessible(page, "keys", failures)
    keys = page.request.get(base + "/api/admin/keys").json()["data"]["items"]
    assert [k["max_in_flight"] for k in keys] == [5]

    assert failures == [], "\n".join(failures)
    assert errors.real() == []
    context.close()


def test_queue_health_and_alert_banner(world, browser, screens):
    from playwright.sync_api import expect

    base, sim, key = world["base_url"], world["simulator"], world["key"]["key"]
    context, page, errors = new_page(browser)
    failures: list[str] = []
    sign_in_admin(page, base)
    # The task log shows when the live stream is connected; the dashboard shares the same stream.
    page.goto(base + "/#/tasks")
    expect(page.locator(".live-badge")).to_have_attribute("data-state", "live")
    page.goto(base + "/#/dashboard")
    expect(page.locator('.kpi[data-kpi="queue"] .kpi-value')).to_have_text("0")
    expect(page.locator('.kpi[data-kpi="queue"] .kpi-note')).to_have_text("Nothing is waiting.")
    channel_row = page.locator('section[aria-labelledby="dash-channels"] tr[data-channel-id="1"]')
    expect(channel_row.locator(".health-badge")).to_have_text("In service")
    expect(page.locator("#alerts .alert-banner")).to_have_count(0)

    # The upstream fails: with MJGATE_BREAKER_FAILURES=1 the first failure opens the breaker.
    sim.configure(error_rate=1.0)
    first = submit(base, key, "a failing submit")
    assert first["code"] != 1, first
    banner = page.locator('#alerts .alert-banner[data-alert="cooldown"]')
    expect(banner).to_have_count(1)
    expect(banner).to_contain_text("Channel sim is cooling down after repeated failures.")
    assert page.locator("#alerts").get_attribute("aria-live") in ("polite", "assertive")
    # With its only channel cooling down, the next task waits in the gateway queue.
    queued = submit(base, key, "a patient prompt")
    assert queued["code"] in (1, 22), queued
    page.get_by_role("button", name="Refresh").click()
    expect(page.locator('.kpi[data-kpi="queue"] .kpi-value')).to_have_text("1")
    expect(page.locator('.kpi[data-kpi="queue"] .kpi-note')).to_contain_text("The oldest has waited")
    expect(channel_row.locator(".health-badge")).to_have_attribute("data-health", "cooldown")
    expect(channel_row.locator(".health-badge")).to_have_text(re.compile(r"^Cooling down until \d\d:\d\d:\d\d"))
    expect(banner).to_be_visible()  # the banner outlives a re-render of the page
    assert_accessible(page, "dashboard with an alert", failures)
    screens.save(page, "dashboard-alert")
    page.emulate_media(color_scheme="dark")  # the banner keeps its contrast in dark mode too
    assert_accessible(page, "dashboard with an alert (dark)", failures)
    page.emulate_media(color_scheme="light")

    # The channels page: the badge says until when; the banner links to the channel.
    page.goto(base + "/#/admin/channels")
    badge = page.locator("tr[data-channel-id] .health-badge").first
    expect(badge).to_have_text(re.compile(r"^Cooling down until \d\d:\d\d:\d\d"))
    until = page.request.get(base + "/api/admin/channels").json()["data"]["items"][0]["health"]["cooldown_until"]
    assert until and page.evaluate(
        "(ms) => new Date(ms).toLocaleTimeString('en', {hour: '2-digit', minute: '2-digit', second: '2-digit'})", until
    ) in badge.inner_text()
    assert_accessible(page, "channels in cooldown", failures)
    banner.get_by_role("link", name="View channels").click()
    expect(page.get_by_role("heading", name="Channel sim")).to_be_visible()
    expect(page.locator(".meta .health-badge")).to_have_attribute("data-health", "cooldown")

    # Dismissed, it is gone and the focus is back on the page.
    banner.get_by_role("button", name="Dismiss alert").click()
    expect(page.locator("#alerts .alert-banner")).to_have_count(0)
    assert page.evaluate("document.activeElement.id") == "main"

    # An operator's enable closes the breaker: the queued task is dispatched once the upstream answers.
    sim.configure(error_rate=0.0)
    page.goto(base + "/#/admin/channels")
    page.get_by_role("button", name="Disable channel sim").click()
    expect(page.locator("tr[data-channel-id] .health-badge").first).to_have_text("Disabled by hand")
    page.get_by_role("button", name="Enable channel sim").click()
    expect(page.locator("tr[data-channel-id] .health-badge").first).to_have_text("In service")
    deadline = time.monotonic() + 30
    while page.request.get(base + "/api/admin/dashboard").json()["data"]["queue"]["depth"] and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    page.goto(base + "/#/dashboard")
    expect(page.locator('.kpi[data-kpi="queue"] .kpi-value')).to_have_text("0")
    assert failures == [], "\n".join(failures)
    assert errors.real() == []
    context.close()


def test_alert_banner_in_chinese(world, browser):
    """The banner's text comes from the string table, so a Chinese console shows it in Chinese."""
    from playwright.sync_api import expect

    from tests.e2e.conftest import english_leftovers

    base, sim, key = world["base_url"], world["simulator"], world["key"]["key"]
    context, page, errors = new_page(browser, locale="zh-CN")
    page.goto(base + "/")
    page.locator("input[name=username]").fill("boss")
    page.locator("input[name=password]").fill("pw-boss")
    page.locator("form.login-card button[type=submit]").click()
    page.goto(base + "/#/tasks")
    expect(page.locator(".live-badge")).to_have_attribute("data-state", "live")
    page.goto(base + "/#/admin/channels")
    sim.configure(error_rate=1.0)
    submit(base, key, "a failing submit")
    banner = page.locator('#alerts .alert-banner[data-alert="cooldown"]')
    expect(banner).to_contain_text("渠道 sim 多次失败，正在冷却。")
    expect(page.locator("tr[data-channel-id] .health-badge").first).to_have_text(re.compile(r"^冷却至 "))
    assert page.locator("#alerts").get_attribute("aria-label") == "渠道告警"
    assert english_leftovers(page) == []
    failures: list[str] = []
    assert_accessible(page, "channels in cooldown (zh)", failures)
    assert failures == [], "\n".join(failures)
    assert errors.real() == []
    context.close()
