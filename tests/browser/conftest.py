"""A real browser (Debian chromium driven by Playwright) on the live server, failing on any console error.

Every page a test opens is watched: a console error, an uncaught exception, a Content-Security-Policy
violation or a JavaScript dialog fails the test, so injected markup that runs, or a broken asset,
cannot pass unnoticed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Dialog, Page, sync_playwright

from history.polling import poll
from tests.history.factories import watch

CHROMIUM = "/usr/bin/chromium"
# Headless in a container with only loopback: no sandbox, no GPU, nothing that phones home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
TIMEOUT_MS = 10_000
VIEWPORT = {"width": 1280, "height": 900}

# Chromium reports violations in the console too; this also catches those it only dispatches as events.
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || "inline code"}`);
});
"""


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        # Playwright's sync API runs its asyncio loop on the test thread for the whole session, so
        # Django takes every ORM call (test data, the transactional flush) for one made from async
        # code. They are plain synchronous calls on this thread: the guard does not apply.
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


class Watched:
    """What went wrong in the pages of one test: console errors, page errors, dialogs."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.dialogs: list[str] = []

    def watch(self, context: BrowserContext) -> BrowserContext:
        context.set_default_timeout(TIMEOUT_MS)
        context.add_init_script(REPORT_CSP_VIOLATIONS)
        context.on("page", self._page)
        return context

    def _page(self, page: Page) -> None:
        page.on("console", lambda message: self._console(page, message))
        page.on("pageerror", lambda error: self.errors.append(f"{page.url}: uncaught {error}"))
        page.on("dialog", self._dialog)

    def _console(self, page: Page, message: ConsoleMessage) -> None:
        url = message.location.get("url") or page.url
        if message.type == "error":
            self.errors.append(f"{url}: {message.text}")

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def check(self) -> None:
        problems = [f"dialog opened: {text}" for text in self.dialogs] + self.errors
        if problems:
            pytest.fail("the browser reported:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture
def watched() -> Watched:
    """Problems seen by every context a test opens (`page`, `no_js_page`); checked after the test."""
    return Watched()


@pytest.fixture
def make_context(browser: Browser, watched: Watched, public) -> Iterator[Callable[..., BrowserContext]]:
    """Factory: a fresh browser context (cookies, storage) of a public instance whose pages are watched."""
    contexts: list[BrowserContext] = []

    def factory(**options) -> BrowserContext:
        contexts.append(watched.watch(browser.new_context(viewport=VIEWPORT, **options)))
        return contexts[-1]

    yield factory
    for context in contexts:
        context.close()
    watched.check()


@pytest.fixture
def page(make_context, live_server) -> Page:
    """A page of a JavaScript browser on the live server, allowed to use the clipboard."""
    context = make_context(base_url=live_server.url)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    return context.new_page()


@pytest.fixture
def no_js_page(make_context, live_server) -> Page:
    """A page of a browser with JavaScript off: what every page must still do without it."""
    return make_context(base_url=live_server.url, java_script_enabled=False).new_page()


def shot(page: Page, name: str) -> Path:
    """Save a full-page screenshot to tests/artifacts/<name>.png for people to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture
def python(registry, pusher, repo_name):
    """A repository as vendors publish one, from two real polls.

    3.14.4 multi-arch with latest, 3.14, 3 and a timestamp tag; a -dev variant; an older 3.13.9;
    then 3.14.4 rebuilt (its floating tags follow, a new timestamp tag appears) and polled again.
    """
    pusher.push(repo_name, "3.13.9", "docker-list", seed="3.13.9")
    first = pusher.push(repo_name, "3.14.4", "oci-index", seed="day1")
    for tag in ("3.14", "3", "latest", "3.14.4-202511251200"):
        pusher.tag(repo_name, "3.14.4", tag)
    pusher.push(repo_name, "3.14.4-dev", "oci", seed="dev")
    repository = watch(registry, repo_name)
    poll(repository)
    rebuilt = pusher.push(repo_name, "3.14.4", "oci-index", seed="day2")
    for tag in ("3.14", "3", "latest", "3.14.4-202511261200"):
        pusher.tag(repo_name, "3.14.4", tag)
    poll(repository)
    repository.first, repository.rebuilt = first, rebuilt
    return repository


def serious_violations(page: Page) -> list[str]:
    """What axe-core (bundled by axe-playwright-python: no network) finds serious or critical on
    `page`, each with up to three of the elements, so a failure says where to look."""
    return [
        f"{violation['impact']} {violation['id']}: {violation['help']} ("
        + "; ".join(" ".join(node["target"]) for node in violation["nodes"][:3])
        + ")"
        for violation in Axe().run(page).response["violations"]
        if violation["impact"] in ("serious", "critical")
    ]
