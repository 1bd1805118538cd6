"""The console's gate (issue 16, Deliver 2; docs/console.md "Sessions, roles and CSRF"):
login, the role table walked route by route, CSRF on every form, session expiry and logout —
through a real ``sscard serve`` process, in chromium where a person's path matters and over
HTTP where a test must send what no form would."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser

from personalize.roles import Role
from personalize.web.access import PUBLIC
from personalize.web.app import SECTIONS, page_table
from tests.integration.api_fixture import open_registry
from tests.integration.console import (
    OPERATORS,
    TABLET,
    csrf_of,
    desk,
    http_login,
    prepare_console,
    serve_console,
)

PAGES = page_table(SECTIONS)


def concrete(path: str) -> str:
    """A route path with each parameter filled (the gate answers before the route reads it)."""
    return re.sub(r"\{[^}]+\}", "1", path)


def events(db: str | Path, action: str) -> list[tuple[str, str]]:
    registry = open_registry(db)
    try:
        rows = registry.db.execute(
            "SELECT operator, details FROM audit_events WHERE action = ? ORDER BY id", (action,)
        ).fetchall()
        return [(str(r["operator"]), str(r["details"])) for r in rows]
    finally:
        registry.close()


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    db = tmp_path_factory.mktemp("console") / "registry.db"
    prepare_console(db)
    with serve_console(db) as base:
        yield base, db


def test_an_operator_logs_in_and_sees_only_their_roles_sections(
    console: tuple[str, Path], browser: Browser, tmp_path: Path
) -> None:
    base, db = console
    with desk(browser, base, tmp_path) as d:
        page = d.login(Role.COUNTER, password="wrong-password")
        assert "操作员名或口令错误" in page.inner_text("main")
        d.shot("login-refused")
        page = d.login(Role.COUNTER)
        assert page.url.endswith("/console/")
        assert page.inner_text("#operator") == f"{OPERATORS[Role.COUNTER]}（柜员）"
        menu = page.locator("header nav a").all_inner_texts()
        assert menu == ["柜台业务"]
        d.shot("home-counter")
    with desk(browser, base, tmp_path, viewport=TABLET) as d:
        d.login(Role.SUPERVISOR)
        assert d.page.locator("header nav a").all_inner_texts() == [
            "柜台业务", "制卡队列", "卡片库存", "审计"
        ]  # fmt: skip
        d.shot("home-supervisor-tablet")
    refused = [who for who, _ in events(db, "operator.login.refused")]
    assert OPERATORS[Role.COUNTER] in refused


def test_a_page_asked_for_without_a_session_leads_to_login_and_back(
    console: tuple[str, Path], browser: Browser, tmp_path: Path
) -> None:
    base, _ = console
    with desk(browser, base, tmp_path) as d:
        page = d.go("/?from=bookmark")
        assert "/console/login" in page.url
        assert "请先登录" in page.inner_text("main")
        page.fill("input[name=name]", OPERATORS[Role.AUDITOR])
        page.fill("input[name=password]", "test-operator-pw")
        page.click("button[type=submit]")
        page.wait_for_load_state()
        assert page.url.endswith("/console/?from=bookmark")


def test_the_login_form_refuses_a_post_without_its_csrf_cookie_and_never_redirects_away(
    console: tuple[str, Path],
) -> None:
    base, _ = console
    with httpx.Client(base_url=base, timeout=30) as client:
        answer = client.post(
            "/login", data={"name": OPERATORS[Role.COUNTER], "password": "test-operator-pw",
                            "csrf": "forged"}
        )  # fmt: skip
        assert answer.status_code == 403
        assert "sscard_console" not in answer.cookies
        form = client.get("/login")
        token = form.cookies["sscard_login"]
        answer = client.post(
            "/login", data={"name": OPERATORS[Role.COUNTER], "password": "test-operator-pw",
                            "csrf": token, "next": "https://elsewhere.example/"},
        )  # fmt: skip
        assert answer.status_code == 303
        assert answer.headers["location"] == "/console/"


@pytest.mark.parametrize("role", [r for r in Role if r != Role.SUPERVISOR])
def test_each_role_is_refused_every_page_and_form_not_its_own(
    console: tuple[str, Path], role: Role
) -> None:
    base, db = console
    before = len(events(db, "console.refused"))
    refused = 0
    with http_login(base, role) as client:
        csrf = csrf_of(client)
        for (method, path), access in PAGES.items():
            if access is PUBLIC or role in access.roles:
                continue
            url = concrete(path)
            answer = client.get(url) if method == "GET" else client.post(url, data={"csrf": csrf})
            assert answer.status_code == 403, (method, path, answer.status_code)
            assert "无权" in answer.text
            refused += 1
    assert len(events(db, "console.refused")) == before + refused


def test_every_form_refuses_a_post_without_the_sessions_csrf_token(
    console: tuple[str, Path],
) -> None:
    """A supervisor may use every form, so only the token can be what refuses it."""
    base, db = console
    forms = [path for (method, path), a in PAGES.items() if method == "POST" and a is not PUBLIC]
    assert forms, "the console has forms"
    with http_login(base, Role.SUPERVISOR) as client, http_login(base, Role.COUNTER) as other:
        theirs = csrf_of(other)  # a real token, of another session
        before = len(events(db, "console.refused"))
        for path in forms:
            for sent in ({}, {"csrf": "0" * 64}, {"csrf": theirs}):
                answer = client.post(concrete(path), data=sent)
                assert answer.status_code == 403, (path, sent, answer.status_code)
                assert "CSRF" in answer.text
        assert len(events(db, "console.refused")) == before + 3 * len(forms)
        assert client.get("/").status_code == 200  # still logged in: nothing was done


def test_a_session_left_idle_expires_and_logout_ends_one(tmp_path: Path) -> None:
    db = tmp_path / "registry.db"
    prepare_console(db, persons=1)
    with (
        serve_console(db, extra=("--console-idle", "2")) as base,
        http_login(base, Role.COUNTER) as client,
    ):
        assert client.get("/").status_code == 200
        time.sleep(3)
        answer = client.get("/")
        assert answer.status_code == 303
        assert "/console/login" in answer.headers["location"]
        assert "%E8%BF%87%E6%9C%9F" in answer.headers["location"]  # 过期
    with serve_console(db) as base, http_login(base, Role.COUNTER) as client:
        csrf = csrf_of(client)
        token = client.cookies["sscard_console"]
        assert client.post("/logout", data={"csrf": csrf}).status_code == 303
        with httpx.Client(base_url=base, timeout=30) as stale:
            stale.cookies.set("sscard_console", token, path="/console")
            answer = stale.get("/", follow_redirects=False)
            assert answer.status_code == 303 and "/console/login" in answer.headers["location"]
    assert [who for who, _ in events(db, "operator.logout")] == [OPERATORS[Role.COUNTER]]
