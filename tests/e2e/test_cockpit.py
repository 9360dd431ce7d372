"""The console as the operator's cockpit (issue 14), in a real Chromium against `mjgate serve` and
the simulator: every kind of task submitted from the console (the masks checked where they reach
the upstream, in the simulator's request log), deep links, Back and Forward, filters in the address,
CSV export, the dashboard's figures against the ledger and the tasks, and a tour of every page in
English and Chinese with axe-core and a scan for untranslated text, saving screenshots.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import re
import time
import urllib.parse

import httpx
import pytest
from PIL import Image
from sqlalchemy import insert, select

from mjgate.db import Database
from mjgate.models import LedgerEntry, Task
from tests.e2e.conftest import PHONE, WIDE, PageErrors, axe_violations, english_leftovers, table_keys_match
from tests.factories import task_row
from tests.fixtures.live import cli

TIMEOUT_MS = 30_000
DAY_MS = 86_400_000


def png(color=(200, 80, 40), size=(64, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def upload(name: str, color=(200, 80, 40), size=(64, 40)) -> dict:
    return {"name": name, "mimeType": "image/png", "buffer": png(color, size)}


def decode_image(value: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(value.split(",", 1)[1]))).convert("L")


@pytest.fixture
def world(live_world):
    live_world["simulator"].configure(step_seconds=0.3, steps=3, start_delay_seconds=0.1)
    return live_world


def new_page(browser, *, locale="en-US", viewport=WIDE, **options):
    from playwright.sync_api import expect

    context = browser.new_context(viewport=viewport, locale=locale, timezone_id="UTC", **options)
    context.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    page = context.new_page()
    errors = PageErrors()
    errors.attach(page)
    return context, page, errors


def sign_in(page, base: str, username: str, password: str, *, heading: str = "Dashboard") -> None:
    from playwright.sync_api import expect

    page.goto(base + "/")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(password)
    page.locator("form.login-card button[type=submit]").click()
    expect(page.locator("#topbar")).to_be_visible()
    if heading:
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)


def wait_row_done(page, mj_id: str, status: str = "Success"):
    from playwright.sync_api import expect

    row = page.locator(f'tr[data-mj-id="{mj_id}"]')
    expect(row.locator(".badge").first).to_have_text(status, timeout=TIMEOUT_MS)
    return row


def submitted_id(page, previous: str | None = None) -> str:
    """The highlighted (just submitted) row's task id; after a dialog action, one other than `previous`."""
    from playwright.sync_api import expect

    row = page.locator("tbody tr.highlight" + (f':not([data-mj-id="{previous}"])' if previous else ""))
    expect(row).to_have_count(1)
    return row.get_attribute("data-mj-id")


def sim_requests(world, route: str) -> list[dict]:
    return [r["json"] for r in world["simulator"].requests() if r["path"].endswith(route)]


def paint_stroke(page, canvas) -> None:
    """A horizontal mouse stroke across the middle of the canvas."""
    box = canvas.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.25, y)
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(box["x"] + box["width"] * (0.25 + 0.05 * step), y)
    page.mouse.up()


def check_mask(value: str) -> None:
    """White where the stroke went (the middle), black in the corners."""
    mask = decode_image(value)
    w, h = mask.size
    assert mask.getpixel((w // 2, h // 2)) > 200, "the painted middle is not white"
    assert mask.getpixel((2, 2)) < 30 and mask.getpixel((w - 3, h - 3)) < 30, "an unpainted corner is not black"


def open_task(page, mj_id: str):
    from playwright.sync_api import expect

    page.locator(f'tr[data-mj-id="{mj_id}"]').get_by_role("button", name=mj_id, exact=True).click()
    dialog = page.get_by_role("dialog", name=f"Task {mj_id}")
    expect(dialog).to_be_visible()
    expect(dialog.locator(".detail-status .badge")).to_be_visible()
    return dialog


# ------------------------------------------------------------------ every kind of task


def test_every_kind_of_task_from_the_console(world, browser, screens):
    from playwright.sync_api import expect

    base = world["base_url"]
    context, page, errors = new_page(browser)
    sign_in(page, base, "client", "pw-client")
    nav = page.get_by_role("navigation", name="Main")

    # Blend: three images, landscape.
    page.goto(base + "/#/submit/blend")
    expect(page.get_by_role("heading", name="New task · Blend")).to_be_visible()
    page.get_by_label("Images to blend").set_input_files(files=[upload("a.png"), upload("b.png", (20, 90, 200)), upload("c.png", (10, 160, 60))])
    expect(page.locator(".image-preview li")).to_have_count(3)
    page.get_by_role("radio", name="Landscape").check()
    screens.save(page, "submit-blend")
    page.get_by_role("button", name="Submit task").click()
    blend_id = submitted_id(page)
    wait_row_done(page, blend_id)
    sent = sim_requests(world, "/submit/blend")[-1]
    assert sent["dimensions"] == "LANDSCAPE" and len(sent["base64Array"]) == 3

    # Describe an upload, then "Imagine this" from one of its four prompts.
    page.goto(base + "/#/submit/describe")
    page.get_by_label("Image to describe").set_input_files(files=[upload("photo.png", (90, 90, 30))])
    screens.save(page, "submit-describe")
    page.get_by_role("button", name="Submit task").click()
    describe_id = submitted_id(page)
    wait_row_done(page, describe_id)
    dialog = open_task(page, describe_id)
    prompts = dialog.locator(".describe-list li")
    expect(prompts).to_have_count(4)
    first = prompts.first.locator("p").inner_text()
    assert "1️⃣" not in first and len(first) > 10
    screens.save(page, "describe-result")
    prompts.first.get_by_role("link", name="Imagine this").click()
    expect(page.get_by_role("heading", name="New task · Imagine")).to_be_visible()
    expect(dialog).to_have_count(0)
    expect(page.get_by_label("Prompt")).to_have_value(first)
    page.get_by_role("button", name="Submit task").click()
    imagine_id = submitted_id(page)
    assert sim_requests(world, "/submit/imagine")[-1]["prompt"] == first

    # A video from a first and a last frame.
    page.goto(base + "/#/submit/video")
    page.get_by_label("Prompt").fill("waves rolling in")
    page.get_by_label("First frame (optional)").set_input_files(files=[upload("first.png")])
    page.get_by_label("Last frame (optional)").set_input_files(files=[upload("last.png", (0, 0, 120))])
    page.get_by_role("radio", name="High motion").check()
    screens.save(page, "submit-video")
    page.get_by_role("button", name="Submit task").click()
    video_id = submitted_id(page)
    sent = sim_requests(world, "/submit/video")[-1]
    assert sent["motion"] == "high" and sent["image"].startswith("data:image/png") and sent["endImage"].startswith("data:image/png")
    wait_row_done(page, video_id)
    # ...and extend it from its dialog.
    dialog = open_task(page, video_id)
    expect(dialog.locator("video")).to_have_count(1)
    dialog.get_by_role("button", name="Extend video").click()
    expect(dialog).to_have_count(0)
    extend_id = submitted_id(page, video_id)
    assert extend_id != video_id and sim_requests(world, "/submit/video")[-1]["action"] == "extend"
    wait_row_done(page, extend_id)

    # Edits with a mask painted on the uploaded image.
    page.goto(base + "/#/submit/edits")
    page.get_by_label("Image to edit").set_input_files(files=[upload("room.png", (120, 120, 120), (320, 200))])
    canvas = page.locator(".mask-canvas")
    expect(canvas).to_be_visible()
    expect(page.get_by_role("button", name="Undo")).to_be_disabled()
    paint_stroke(page, canvas)
    expect(page.get_by_text("A region is painted.")).to_be_visible()
    # Undo takes the stroke away; paint again with a bigger brush.
    page.get_by_role("button", name="Undo").click()
    expect(page.get_by_text("Nothing painted yet.")).to_be_visible()
    page.get_by_label("Brush size").fill("60")
    paint_stroke(page, canvas)
    page.get_by_label("Prompt").fill("make it night")
    screens.save(page, "submit-edits")
    page.get_by_role("button", name="Submit task").click()
    edits_id = submitted_id(page)
    sent = sim_requests(world, "/submit/edits")[-1]
    assert sent["prompt"] == "make it night" and sent["image"].startswith("data:image/png")
    check_mask(sent["maskBase64"])
    assert decode_image(sent["maskBase64"]).size == (320, 200)  # the mask has the image's own size
    wait_row_done(page, edits_id)

    # The imagine from the description: U1, then every modal button of the upscale.
    wait_row_done(page, imagine_id)
    before = page.locator("tbody tr.highlight").get_attribute("data-mj-id")
    dialog = open_task(page, imagine_id)
    dialog.get_by_role("button", name="U1", exact=True).click()
    upscale_id = submitted_id(page, before)
    wait_row_done(page, upscale_id)
    dialog = open_task(page, upscale_id)
    for name in ("Vary (Subtle)", "Vary (Strong)", "Vary (Region)", "Zoom Out 2x", "Custom Zoom", "Pan left",
                 "Pan right", "Pan up", "Pan down", "Animate (Low motion)", "Upscale (Subtle)"):
        expect(dialog.get_by_role("button", name=name, exact=True)).to_be_visible()
    assert dialog.locator(".task-buttons svg.icon").count() >= 8  # icons, not emoji
    screens.save(page, "task-detail-upscale")

    # Vary (Region): the mask is painted over the task's image and reaches the upstream's /submit/modal.
    dialog.get_by_role("button", name="Vary (Region)", exact=True).click()
    region = page.get_by_role("dialog", name="Vary (Region)")
    expect(region).to_be_visible()
    canvas = region.locator(".mask-canvas")
    expect(canvas).to_be_visible()
    region.get_by_role("button", name="Continue").click()
    expect(region.get_by_role("alert")).to_have_text("Paint the region to change first.")
    paint_stroke(page, canvas)
    region.get_by_label("Prompt for the region").fill("a golden lighthouse")
    screens.save(page, "vary-region")
    region.get_by_role("button", name="Continue").click()
    expect(region).to_have_count(0)
    modal = sim_requests(world, "/submit/modal")[-1]
    assert modal["prompt"] == "a golden lighthouse"
    check_mask(modal["maskBase64"])
    region_id = submitted_id(page, upscale_id)
    wait_row_done(page, region_id)

    # Custom Zoom: a prompt with --zoom, sent through the modal step.
    dialog = open_task(page, upscale_id)
    dialog.get_by_role("button", name="Custom Zoom", exact=True).click()
    zoom = page.get_by_role("dialog", name="Custom Zoom")
    expect(zoom.get_by_label("Prompt")).to_have_value(re.compile(r"--zoom 2$"))
    zoom.get_by_label("Prompt").fill("a lighthouse --zoom 1.5")
    zoom.get_by_role("button", name="Continue").click()
    expect(zoom).to_have_count(0)
    assert sim_requests(world, "/submit/modal")[-1]["prompt"] == "a lighthouse --zoom 1.5"
    zoom_id = submitted_id(page, region_id)
    wait_row_done(page, zoom_id)

    # Animate the upscale (a button of the upstream's own).
    dialog = open_task(page, upscale_id)
    dialog.get_by_role("button", name="Animate (Low motion)", exact=True).click()
    animate_id = submitted_id(page, zoom_id)
    row = wait_row_done(page, animate_id)
    expect(row.locator('td[data-col="task"]')).to_contain_text("Video")

    # Everything was charged, and the balance equals the ledger.
    answer = httpx.get(f"{base}/api/console/me", cookies={c["name"]: c["value"] for c in context.cookies()}).json()
    quota = answer["data"]["user"]["quota"]
    assert quota < 100_000_000
    assert nav.get_by_role("link", name="Tasks").is_visible()
    assert errors.real() == []
    context.close()


# ------------------------------------------------------------------ links, Back and Forward, filters, CSV


def test_links_back_forward_filters_and_csv(world, browser):
    from playwright.sync_api import expect

    base, key, sim = world["base_url"], world["key"], world["simulator"]
    cli(world["env"], "user", "create", "boss", "--role", "admin", "--password", "pw-boss")
    headers = {"Authorization": f"Bearer {key}"}
    ok_id = httpx.post(f"{base}/mj/submit/imagine", json={"prompt": "a quiet harbour"}, headers=headers).json()["result"]
    sim.configure(failure_rate=1.0)
    failed_id = httpx.post(f"{base}/mj/submit/imagine", json={"prompt": "a stormy sea"}, headers=headers).json()["result"]
    relax_id = httpx.post(f"{base}/mj-relax/mj/submit/imagine", json={"prompt": "a stormy sky"}, headers=headers).json()["result"]
    sim.configure(failure_rate=0.0)

    context, page, errors = new_page(browser)
    sign_in(page, base, "boss", "pw-boss", heading="Dashboard (everyone)")
    page.goto(base + "/#/tasks")
    wait_row_done(page, ok_id)
    failed = wait_row_done(page, failed_id, "Failed")
    wait_row_done(page, relax_id, "Failed")
    # The user column names the user; the failure shows the real reason, not "Submit success".
    expect(failed.locator('td[data-col="user"]')).to_have_text("client")
    reason = failed.locator(".fail").inner_text()
    assert reason and "Submit success" not in reason

    # A task's own address; Back closes the dialog, Forward opens it again.
    dialog = open_task(page, failed_id)
    assert page.evaluate("location.hash") == f"#/tasks/{failed_id}"
    expect(dialog.locator(".fail")).to_contain_text(reason)
    expect(dialog).not_to_contain_text("Submit success")
    page.go_back()
    expect(dialog).to_have_count(0)
    assert page.evaluate("location.hash") == "#/tasks"
    page.go_forward()
    expect(page.get_by_role("dialog", name=f"Task {failed_id}")).to_be_visible()
    # A reload of the deep link opens the same task; closing it leaves the log's address.
    page.reload()
    dialog = page.get_by_role("dialog", name=f"Task {failed_id}")
    expect(dialog).to_be_visible()
    expect(dialog.locator("pre.prompt-full")).to_have_text("a stormy sea")
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(page).to_have_url(re.compile(r"#/tasks$"))
    # A link opened in a fresh tab (as shared) shows the task too.
    other = context.new_page()
    other.goto(f"{base}/#/tasks/{ok_id}")
    expect(other.get_by_role("dialog", name=f"Task {ok_id}")).to_be_visible()
    other.close()

    # Filters live in the address: status, mode, prompt text, user.
    page.get_by_label("Status").select_option("FAILURE")
    page.get_by_label("Mode").select_option("relax")
    page.get_by_label("Prompt contains").fill("STORMY")
    page.get_by_label("User").fill("client")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator("tbody tr[data-mj-id]")).to_have_count(1)
    expect(page.locator(f'tbody tr[data-mj-id="{relax_id}"]')).to_be_visible()
    query = urllib.parse.parse_qs(page.evaluate("location.hash").split("?", 1)[1])
    assert query == {"status": ["FAILURE"], "mode": ["relax"], "prompt": ["STORMY"], "username": ["client"]}
    page.reload()
    expect(page.get_by_label("Prompt contains")).to_have_value("STORMY")
    expect(page.locator("tbody tr[data-mj-id]")).to_have_count(1)
    # The CSV export is the filtered view.
    href = page.get_by_role("link", name="Export CSV").get_attribute("href")
    answer = page.request.get(base + href)
    assert answer.ok and answer.headers["content-type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(answer.body().decode("utf-8-sig"))))
    assert [r[0] for r in table[1:]] == [relax_id]
    assert dict(zip(table[0], table[1]))["username"] == "client"
    page.get_by_role("button", name="Reset").click()
    expect(page.locator("tbody tr[data-mj-id]")).to_have_count(3)

    # Users and channels have their own pages.
    page.locator('td[data-col="user"]').first.get_by_role("link", name="client").click()
    expect(page.get_by_role("heading", name="User client")).to_be_visible()
    assert re.fullmatch(r"#/admin/users/\d+", page.evaluate("location.hash"))
    expect(page.locator(".meta")).to_contain_text("3")  # requests: the three submitted tasks
    page.get_by_role("link", name="Their tasks").click()
    expect(page.locator("tbody tr[data-mj-id]")).to_have_count(3)
    page.go_back()
    expect(page.get_by_role("heading", name="User client")).to_be_visible()
    page.goto(base + "/#/admin/channels")
    page.get_by_role("link", name="sim").click()
    expect(page.get_by_role("heading", name="Channel sim")).to_be_visible()
    expect(page.locator('.kpi[data-kpi="tasks"] .kpi-value')).to_have_text("3")
    # Channel URLs break only at their separators (no mid-word wrapping).
    expect(page.locator(".meta .url wbr").first).to_be_attached()
    assert errors.real() == []
    context.close()


# ------------------------------------------------------------------ the dashboard against the ledger


async def _seed(url: str, user_ids: list[int], channel_id: int) -> None:
    """Seven days of known tasks with their ledger entries (as billing writes them)."""
    db = Database(url)
    now = int(time.time() * 1000)
    rows = []
    for day in range(7):
        for n in range(day + 2):
            status = "FAILURE" if n == 0 else "SUCCESS"
            submit = now - day * DAY_MS - 3_600_000 - n * 60_000
            rows.append(task_row(user_ids[n % len(user_ids)], submit_time=submit, channel_id=channel_id,
                                 mj_id=f"seed{day}{n:03d}", status=status, quota=50_000 * (1 + n % 2),
                                 finish_time=submit + 20_000 + 1000 * n,
                                 refunded_at=submit + 30_000 if status == "FAILURE" else None,
                                 fail_reason="seeded failure" if status == "FAILURE" else ""))
    async with db.write() as session:
        await session.execute(insert(Task), rows)
    async with db.write() as session:
        ids = dict((await session.execute(select(Task.mj_id, Task.id).where(Task.mj_id.like("seed%")))).all())
        for row in rows:
            session.add(LedgerEntry(user_id=row["user_id"], task_id=ids[row["mj_id"]], kind="charge",
                                    amount=-row["quota"], created_at=row["submit_time"], memo=""))
            if row["refunded_at"]:
                session.add(LedgerEntry(user_id=row["user_id"], task_id=ids[row["mj_id"]], kind="refund",
                                        amount=row["quota"], created_at=row["refunded_at"], memo=""))
    await db.dispose()


async def _expected(url: str, start_ms: int) -> dict:
    """Per UTC day since start_ms: tasks, successes and the spend the ledger holds for them."""
    db = Database(url)
    async with db.read() as session:
        tasks = (await session.execute(select(Task.id, Task.status, Task.submit_time)
                                       .where(Task.submit_time >= start_ms))).all()
        entries = (await session.execute(select(LedgerEntry.task_id, LedgerEntry.amount))).all()
    await db.dispose()
    spend_of: dict[int, int] = {}
    for task_id, amount in entries:
        spend_of[task_id] = spend_of.get(task_id, 0) - amount
    days: dict[int, dict] = {}
    for task_id, status, submit in tasks:
        day = days.setdefault((submit - start_ms) // DAY_MS, {"tasks": 0, "success": 0, "spend": 0})
        day["tasks"] += 1
        day["success"] += status == "SUCCESS"
        day["spend"] += spend_of.get(task_id, 0)
    return days


def in_thread(coro):
    """Run a coroutine to completion on a thread of its own: Playwright's sync API holds this thread's loop."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _usd(units: int) -> str:
    return f"${units / 500_000:,.2f}"


def test_dashboard_figures_equal_the_ledger_and_the_tasks(world, browser, screens):
    from playwright.sync_api import expect

    env, base = world["env"], world["base_url"]
    boss = cli(env, "user", "create", "boss", "--role", "admin", "--password", "pw-boss")
    in_thread(_seed(env["MJGATE_DATABASE_URL"], [world["user"]["id"], boss["id"]], 1))

    context, page, errors = new_page(browser)
    sign_in(page, base, "boss", "pw-boss", heading="Dashboard (everyone)")
    page.get_by_role("link", name="7 days").click()
    expect(page.get_by_role("link", name="7 days")).to_have_attribute("aria-current", "true")
    start_ms = page.evaluate("Date.now()") // DAY_MS * DAY_MS - 6 * DAY_MS  # UTC days (the context's zone)
    days = in_thread(_expected(env["MJGATE_DATABASE_URL"], start_ms))
    total = {k: sum(d[k] for d in days.values()) for k in ("tasks", "success", "spend")}
    assert total["tasks"] == sum(d + 2 for d in range(7)) == 35

    kpi = lambda name: page.locator(f'.kpi[data-kpi="{name}"] .kpi-value')  # noqa: E731
    expect(kpi("tasks")).to_have_text(str(total["tasks"]))
    expect(kpi("spend")).to_have_text(_usd(total["spend"]))
    expect(kpi("success_rate")).to_have_text(f"{total['success'] / total['tasks'] * 100:.1f}%".replace(".0%", "%"))
    # The spend chart's own numbers, day by day ("Show the data").
    spend_chart = page.get_by_role("figure", name="Spend, per day")
    spend_chart.get_by_text("Show the data").click()
    cells = spend_chart.locator(".chart-table tbody tr td")
    expect(cells).to_have_count(7)
    assert cells.all_inner_texts() == [_usd(days.get(i, {"spend": 0})["spend"]) for i in range(7)]
    tasks_chart = page.get_by_role("figure", name="Tasks, per day")
    tasks_chart.get_by_text("Show the data").click()
    rows = tasks_chart.locator(".chart-table tbody tr")
    for i in range(7):
        succeeded, _failed, all_tasks = rows.nth(i).locator("td").all_inner_texts()
        assert (int(succeeded), int(all_tasks)) == (days.get(i, {}).get("success", 0), days.get(i, {}).get("tasks", 0))
    # Top users and spend by action add up to the same total.
    top = page.get_by_role("region", name="Top users").locator("tbody tr")
    expect(top).to_have_count(2)
    action_rows = page.get_by_role("region", name="Spend by action").locator("tbody tr")
    expect(action_rows).to_have_count(1)
    expect(action_rows.first).to_contain_text(_usd(total["spend"]))
    page.locator(".chart-data[open] summary").first.click()
    screens.save(page, "dashboard-admin", full_page=True)

    # The user's own view agrees with the user's own rows.
    context2, user_page, user_errors = new_page(browser)
    sign_in(user_page, base, "client", "pw-client")
    user_page.get_by_role("link", name="30 days").click()
    async def own() -> tuple[int, int]:
        db = Database(env["MJGATE_DATABASE_URL"])
        async with db.read() as session:
            tasks = (await session.execute(select(Task.id).where(Task.user_id == world["user"]["id"]))).scalars().all()
            amounts = (await session.execute(select(LedgerEntry.amount).where(LedgerEntry.task_id.in_(tasks)))).scalars().all()
        await db.dispose()
        return len(tasks), -sum(amounts)
    count, spend = in_thread(own())
    expect(user_page.locator('.kpi[data-kpi="tasks"] .kpi-value')).to_have_text(str(count))
    expect(user_page.locator('.kpi[data-kpi="spend"] .kpi-value')).to_have_text(_usd(spend))
    expect(user_page.locator('.kpi[data-kpi="balance"] .kpi-value')).to_have_text("$200.00")
    screens.save(user_page, "dashboard", full_page=True)
    assert errors.real() == [] and user_errors.real() == []
    context2.close()
    context.close()


# ------------------------------------------------------------------ every page, both languages


def relay_wait(base: str, headers: dict, mj_id: str, timeout_s: float = 30) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        task = httpx.get(f"{base}/mj/task/{mj_id}/fetch", headers=headers).json()
        if task["status"] in ("SUCCESS", "FAILURE") or time.monotonic() > deadline:
            return task
        time.sleep(0.2)


SEEN_BY_THE_JOURNEYS = {"login", "submit", "task-log", "task-detail", "keys", "admin-channels", "admin-users",
                        "admin-prices", "admin-ledger"}


def _tour(page, base: str, *, admin_id: int, user_id: int, task_id: str) -> list[tuple[str, str]]:
    """(screenshot name, address) of every page an administrator can open."""
    return [
        ("dashboard-admin", "#/dashboard"),
        ("dashboard", "#/dashboard?scope=me&range=24h"),
        ("task-log", "#/tasks"),
        ("task-detail", f"#/tasks/{task_id}"),
        ("submit", "#/submit"),
        ("submit-blend", "#/submit/blend"),
        ("submit-describe", "#/submit/describe"),
        ("submit-video", "#/submit/video"),
        ("submit-edits", f"#/submit/edits?from={task_id}"),
        ("keys", "#/keys"),
        ("admin-channels", "#/admin/channels"),
        ("admin-channel", "#/admin/channels/1"),
        ("admin-users", "#/admin/users"),
        ("admin-user", f"#/admin/users/{user_id}"),
        ("admin-prices", "#/admin/prices"),
        ("admin-ledger", "#/admin/ledger"),
        ("admin-price-rules", "#/admin/price-rules"),
        ("admin-moderation", "#/admin/moderation"),
    ]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_page_is_accessible_and_translated(world, browser, screens, lang):
    from playwright.sync_api import expect

    base, key = world["base_url"], world["key"]
    boss = cli(world["env"], "user", "create", "boss", "--role", "admin", "--password", "pw-boss")
    headers = {"Authorization": f"Bearer {key}"}
    task_id = httpx.post(f"{base}/mj/submit/imagine", json={"prompt": "a lighthouse at dusk"}, headers=headers).json()["result"]
    relay_wait(base, headers, task_id)
    world["simulator"].configure(failure_rate=1.0)
    relay_wait(base, headers, httpx.post(f"{base}/mj/submit/imagine", json={"prompt": "a storm"}, headers=headers).json()["result"])
    world["simulator"].configure(failure_rate=0.0, step_seconds=30)  # one task stays running for the pictures
    running = httpx.post(f"{base}/mj-relax/mj/submit/imagine", json={"prompt": "a slow sunrise"}, headers=headers).json()
    assert running["code"] == 1

    locale = "zh-CN" if lang == "zh" else "en-US"
    context, page, errors = new_page(browser, locale=locale, bypass_csp=True)
    suffix = "-zh" if lang == "zh" else ""
    failures: list[str] = []

    def check(name: str) -> None:
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(300)  # charts draw on the next frame
        for v in axe_violations(page):
            failures.append(f"{name}: axe {v['impact']} {v['id']} ({v['help']}): {v['nodes']}")
        if lang == "zh":
            failures.extend(f"{name}: English text {text}" for text in english_leftovers(page))
        if lang == "zh" or name not in SEEN_BY_THE_JOURNEYS:
            screens.save(page, name + suffix, full_page=name.startswith("dashboard") or name.startswith("admin-user")
                         or name.startswith("admin-channel"))

    page.goto(base + "/")
    expect(page.locator("form.login-card")).to_be_visible()
    assert page.evaluate("document.documentElement.lang") == ("zh-CN" if lang == "zh" else "en")
    if lang == "zh":
        only_en, only_zh = table_keys_match(page)
        assert only_en == [] and only_zh == [], (only_en, only_zh)
    check("login")
    sign_in(page, base, "boss", "pw-boss", heading="")
    for name, address in _tour(page, base, admin_id=boss["id"], user_id=world["user"]["id"], task_id=task_id):
        page.goto(f"{base}/{address}")
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        if name == "task-detail":
            expect(page.get_by_role("dialog")).to_be_visible()
            expect(page.get_by_role("dialog").locator("img.full-image")).to_be_visible()
        if name == "submit-edits":
            expect(page.locator(".mask-canvas")).to_be_visible()
        check(name)
    # The dialog of a running task (its duration ticks), and a form dialog.
    page.goto(f"{base}/#/tasks/{running['result']}")
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    ticking = dialog.locator(".duration")
    first = ticking.inner_text()
    expect(ticking).not_to_have_text(first, timeout=5000)
    check("task-detail-running")
    page.keyboard.press("Escape")
    page.goto(f"{base}/#/admin/channels")
    page.locator("tr[data-channel-id] .row-actions button").first.click()
    expect(page.get_by_role("dialog")).to_be_visible()
    check("admin-channel-edit")
    page.keyboard.press("Escape")
    # Dark mode follows the system, and keeps its contrast.
    page.emulate_media(color_scheme="dark")
    for name, address in (("dark-dashboard", "#/dashboard"), ("dark-task-log", "#/tasks")):
        page.goto(f"{base}/{address}")
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        assert page.evaluate("getComputedStyle(document.documentElement).backgroundColor") == "rgb(17, 19, 26)"
        check(name)
    page.emulate_media(color_scheme="light")
    # Phone width.
    page.set_viewport_size(PHONE)
    page.goto(f"{base}/#/dashboard")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    check("phone-dashboard")
    page.set_viewport_size(WIDE)

    if lang == "zh":
        # The scan does see English: a table string slipped into the page is reported.
        page.evaluate("document.querySelector('main').append(Object.assign(document.createElement('p'), {textContent: 'Apply filters'}))")
        assert any("Apply filters" in text for text in english_leftovers(page))

    # The language can be switched from any page, and the choice is kept.
    other = "en" if lang == "zh" else "zh"
    page.goto(f"{base}/#/tasks")
    page.locator("#topbar .lang-select").select_option(other)
    expect(page.get_by_role("heading", level=1)).to_have_text("Tasks (all users)" if other == "en" else "任务（所有用户）")
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("Tasks (all users)" if other == "en" else "任务（所有用户）")
    assert failures == [], "\n".join(failures)
    assert errors.real() == []
    context.close()


def test_keyboard_only_login_and_navigation(world, browser):
    """Tab reaches the form, the navigation and the dashboard's range; the focus ring is visible."""
    from playwright.sync_api import expect

    context, page, errors = new_page(browser)
    page.goto(world["base_url"] + "/")
    expect(page.locator("input[name=username]")).to_be_focused()
    page.keyboard.type("client")
    page.keyboard.press("Tab")
    page.keyboard.type("pw-client")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    def walk(key: str, target: str) -> list[str]:
        seen = []
        for _ in range(40):
            page.keyboard.press(key)
            text, ring = page.evaluate("""() => { const el = document.activeElement;
                const style = getComputedStyle(el);
                return [el.textContent.trim().slice(0, 30), style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2]; }""")
            seen.append(text)
            assert ring, f"no visible focus on {text!r}"
            if text == target:
                return seen
        raise AssertionError(f"{target!r} not reached with {key}: {seen}")

    # The page's heading has the focus after sign-in: forward to the range, back to the navigation.
    walk("Tab", "30 days")
    page.keyboard.press("Enter")
    expect(page.get_by_role("link", name="30 days")).to_have_attribute("aria-current", "true")
    walk("Shift+Tab", "Tasks")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="My tasks")).to_be_visible()
    assert errors.real() == []
    context.close()
