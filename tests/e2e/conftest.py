"""Real-browser tests: Playwright's Python API driving Debian's Chromium against a live gateway.

Playwright is used without its own browser download: it launches /usr/bin/chromium (override
with MJGATE_CHROMIUM). Without that browser the tests skip locally and fail when CI=true.
Screenshots go to artifacts/screenshots/ (git-ignored); with MJGATE_UPDATE_SCREENSHOTS=1 they are
also copied, palette-compressed, into docs/screenshots/.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("MJGATE_CHROMIUM", "/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() == "true"
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS_DIR = ROOT / "artifacts" / "screenshots"
DOCS_DIR = ROOT / "docs" / "screenshots"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"]
WIDE = {"width": 1280, "height": 820}
PHONE = {"width": 390, "height": 844}


def _unavailable() -> str | None:
    if not Path(CHROMIUM).is_file():
        return f"{CHROMIUM} is missing: install Debian's chromium (scripts/install.sh test does)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing: scripts/install.sh test installs it"
    return None


# Module scope, not session: while Playwright's sync API is open its event loop counts as running in
# this thread, and the asyncio tests collected after this package would refuse to start their own.
@pytest.fixture(scope="module")
def browser():
    reason = _unavailable()
    if reason:
        if IN_CI:
            pytest.fail(f"the browser tests must run in CI: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class Screens:
    def __init__(self) -> None:
        ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
        self.update_docs = os.environ.get("MJGATE_UPDATE_SCREENSHOTS") == "1"

    def save(self, page, name: str, **options) -> Path:
        # Transient messages are noise in a picture of the page.
        page.evaluate("document.querySelectorAll('#toasts .toast').forEach(t => t.remove())")
        path = ARTIFACTS_DIR / f"{name}.png"
        page.screenshot(path=str(path), **options)
        if self.update_docs:
            self._publish(path)
        return path

    @staticmethod
    def _publish(path: Path) -> None:
        # 256-colour PNGs are a fraction of the size and look the same for a flat UI.
        from PIL import Image

        DOCS_DIR.mkdir(parents=True, exist_ok=True)
        with Image.open(path) as image:
            small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
            buffer = io.BytesIO()
            small.save(buffer, format="PNG", optimize=True)
        (DOCS_DIR / path.name).write_bytes(buffer.getvalue())


@pytest.fixture(scope="session")
def screens() -> Screens:
    return Screens()


class PageErrors(list):
    """Uncaught page errors and console errors: a console that throws is a failing console."""

    def attach(self, page) -> None:
        page.on("pageerror", lambda exc: self.append(f"pageerror: {exc}"))
        page.on("console", lambda msg: self.append(f"console.{msg.type}: {msg.text}") if msg.type == "error" else None)

    def real(self) -> list[str]:
        # A 401 from /api/console/me before login is the expected "not signed in" answer.
        return [e for e in self if "401" not in e]


# ------------------------------------------------------------------ accessibility and languages

AXE_JS = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"  # npm axe-core 4.14.1 (MPL-2.0)
BLOCKING_IMPACTS = ("serious", "critical")


def axe_violations(page) -> list[dict]:
    """axe-core's serious and critical violations on the page as it is now (WCAG 2.x A/AA rules).

    The console's CSP forbids inline scripts, so the context running this needs bypass_csp=True.
    """
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE_JS))
    result = page.evaluate("""async () => {
        const r = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
                                            resultTypes: ['violations'] });
        return r.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help,
                                        nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ' :: ' + n.failureSummary) }));
    }""")
    return [v for v in result if v["impact"] in BLOCKING_IMPACTS]


def english_leftovers(page) -> list[str]:
    """Visible text and accessible names on a Chinese page that are English strings of the console's table.

    Every text node, and every aria-label / title / placeholder / alt, is compared with the English
    table: equal to an English value (whose Chinese differs), or containing a multi-word English
    phrase of it (the fixed parts of a "{name}" template), is a string that missed the table.
    """
    return page.evaluate("""async () => {
        const { STRINGS } = await import('/assets/js/i18n.js');
        const phrases = new Set(), whole = new Set();
        for (const [key, en] of Object.entries(STRINGS.en)) {
            if (STRINGS.zh[key] === en) continue;            // the same in both (U1, URLs, examples)
            for (const part of en.split(/\\{\\w+\\}/)) {
                const p = part.trim();
                if (!/[A-Za-z]{2}/.test(p)) continue;
                whole.add(p);
                if (p.split(/\\s+/).length >= 3) phrases.add(p);
            }
        }
        const seen = [];
        const check = (text, where) => {
            const v = (text || '').trim();
            if (!v) return;
            if (whole.has(v)) { seen.push(`${where}: ${v}`); return; }
            for (const p of phrases) if (v.includes(p)) { seen.push(`${where}: ${v} (has "${p}")`); return; }
        };
        const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
        while (walker.nextNode()) {
            const node = walker.currentNode;
            const el = node.parentElement;
            if (!el || el.closest('script, style, [hidden], .u-legend') || el.closest('[lang="en"]')) continue;
            check(node.textContent, el.tagName.toLowerCase());
        }
        for (const el of document.querySelectorAll('[aria-label], [title], [placeholder], img[alt]')) {
            if (el.closest('[hidden]')) continue;
            for (const attr of ['aria-label', 'title', 'placeholder', 'alt']) if (el.hasAttribute(attr)) check(el.getAttribute(attr), `@${attr}`);
        }
        return seen;
    }""")


def table_keys_match(page) -> tuple[list[str], list[str]]:
    """(keys only in English, keys only in Chinese) of the console's string table."""
    return tuple(page.evaluate("""async () => {
        const { STRINGS } = await import('/assets/js/i18n.js');
        const en = Object.keys(STRINGS.en), zh = Object.keys(STRINGS.zh);
        return [en.filter(k => !(k in STRINGS.zh)), zh.filter(k => !(k in STRINGS.en))];
    }"""))
