"""The console's moderation and price-rule pages in a real browser against a real `mjgate serve`."""

from __future__ import annotations

import httpx

from tests.e2e.conftest import WIDE, PageErrors
from tests.e2e.test_console import TIMEOUT_MS, login
from tests.fixtures.live import cli


def test_admin_bans_a_word_lifts_a_block_and_adds_a_price_rule(live_world, browser):
    from playwright.sync_api import expect

    base, env, key = live_world["base_url"], live_world["env"], live_world["key"]
    cli(env, "user", "create", "boss", "--role", "admin", "--password", "pw-boss")
    context = browser.new_context(viewport=WIDE)
    context.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    page = context.new_page()
    errors = PageErrors()
    errors.attach(page)
    login(page, base, "boss", "pw-boss")
    expect(page.get_by_role("heading", name="Dashboard (everyone)")).to_be_visible()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Moderation").click()
    expect(page.get_by_role("heading", name="Moderation", exact=True)).to_be_visible()
    page.get_by_label("Group").fill("gore")
    page.get_by_label("Words or phrases (one per line, or comma-separated)").fill("bloodbath\ngory scene")
    page.get_by_role("button", name="Add to the list").click()
    expect(page.get_by_role("button", name="Remove bloodbath from the list")).to_be_visible()

    # The client's banned prompts (5 within a day by default) block them; the admin sees and lifts it.
    for _ in range(5):
        answer = httpx.post(f"{base}/mj/submit/imagine", json={"prompt": "a BLOOD-BATH"},
                            headers={"Authorization": f"Bearer {key}"}).json()
        assert answer["code"] == 24, answer
    page.reload()
    lift = page.get_by_role("button", name="Lift the block of client")
    expect(lift).to_be_visible()
    lift.click()
    expect(page.get_by_text("Nobody is blocked.")).to_be_visible()
    page.get_by_role("button", name="Remove gory scene from the list").click()
    expect(page.get_by_role("button", name="Remove gory scene from the list")).to_have_count(0)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Price rules").click()
    expect(page.get_by_role("heading", name="Price rules", exact=True)).to_be_visible()
    page.get_by_label("Rule name").fill("imagine-v7")
    page.get_by_label("Action").select_option("IMAGINE")
    page.get_by_label("Parameters to match").fill("version=7")
    page.get_by_label("Amount").fill("0.3")
    page.get_by_role("button", name="Save rule").click()
    expect(page.get_by_role("button", name="Remove the rule imagine-v7")).to_be_visible()
    expect(page.get_by_text("IMAGINE · * · version=7")).to_be_visible()
    rules = httpx.get(f"{base}/api/admin/price-rules", headers={"Cookie": "; ".join(
        f"{c['name']}={c['value']}" for c in context.cookies())}).json()["data"]["rules"]
    assert rules["imagine-v7"]["price_usd"] == 0.3 and rules["imagine-v7"]["match"] == {"version": "7"}
    assert not errors.real(), errors
    context.close()
