"""The console tests' world (docs/console.md): a registry with enrolled holders and one
operator per role, ``sscard serve`` on it (tests/api_serve.py: its own process, clock
pinned), and Debian's chromium driven by Playwright (headless; Playwright cannot download a
browser here, so ``executable_path`` is the system's, with the flags that keep chromium off
the network).

``shot(page, name)`` saves a full-page screenshot in the test's directory, and also in
``$SSCARD_SHOTS`` when set (to look at them after a run)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from personalize.operators import Operator, add_operator, find_operator, has_operators
from personalize.roles import Role
from tests.api_serve import serve_api
from tests.integration.api_fixture import open_registry, prepare
from tests.operators import PASSWORD

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",  # root, in a container
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# One operator per role, each with the tests' password.
OPERATORS: dict[Role, str] = {
    Role.SUPERVISOR: "sup0",
    Role.COUNTER: "counter1",
    Role.CARD_CENTER: "center1",
    Role.AUDITOR: "auditor1",
    Role.OFFICE: "office1",
}
DESKTOP = {"width": 1366, "height": 768}
TABLET = {"width": 820, "height": 1180}


def add_operators(db: str | Path) -> None:
    """The operators of ``OPERATORS`` not there yet (the supervisor, the first, bootstraps
    the others when the registry has no operator)."""
    registry = open_registry(db)
    try:
        supervisor = Operator(OPERATORS[Role.SUPERVISOR], Role.SUPERVISOR)
        for role, name in OPERATORS.items():
            if find_operator(registry, name) is None:
                by = supervisor if has_operators(registry) else None
                add_operator(registry, name, role, PASSWORD, by=by)
    finally:
        registry.close()


def prepare_console(db: str | Path, persons: int = 4) -> None:
    """Holders with a card each (tests/integration/api_fixture.py) and the operators."""
    prepare(db, persons)
    add_operators(db)


@contextmanager
def serve_console(
    db: str | Path, *, track_key: Path | None = None, extra: tuple[str, ...] = ()
) -> Iterator[str]:
    """``sscard serve`` on ``db``; yields the console's base URL (``…/console``)."""
    with serve_api(db, track_key=track_key, extra=extra) as base:
        yield base + "/console"


@contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Desk:
    """One browser context (its own cookies) at the console."""

    base: str
    context: BrowserContext
    page: Page
    shots: Path

    def go(self, path: str) -> Page:
        self.page.goto(self.base + path)
        return self.page

    def login(self, role: Role, *, password: str = PASSWORD) -> Page:
        page = self.go("/login")
        page.fill("input[name=name]", OPERATORS[role])
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        return page

    def shot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        if target := os.environ.get("SSCARD_SHOTS"):
            Path(target).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(target) / path.name)
        return path


@contextmanager
def desk(
    browser: Browser, base: str, shots: Path, *, viewport: dict[str, int] = DESKTOP
) -> Iterator[Desk]:
    context = browser.new_context(viewport=viewport, locale="zh-CN")  # type: ignore[arg-type]
    try:
        yield Desk(base, context, context.new_page(), shots)
    finally:
        context.close()


@contextmanager
def http_login(base: str, role: Role) -> Iterator[httpx.Client]:
    """An HTTP client logged in as ``role``'s operator (for tests of refusals and CSRF that
    need to send what no browser form would)."""
    with httpx.Client(base_url=base, timeout=30, follow_redirects=False) as client:
        token = client.get("/login").cookies["sscard_login"]
        answer = client.post(
            "/login", data={"name": OPERATORS[role], "password": PASSWORD, "csrf": token}
        )
        assert answer.status_code == 303, answer.text
        yield client


def csrf_of(client: httpx.Client, path: str = "/") -> str:
    """The CSRF token the page at ``path`` embeds in its forms."""
    text = client.get(path).text
    marker = 'name="csrf" value="'
    start = text.index(marker) + len(marker)
    return text[start : text.index('"', start)]
