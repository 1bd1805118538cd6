"""The auditor's pages (issue 16, Deliver 5; docs/console.md "Auditor") in chromium through a
real ``sscard serve``, on SQLite and PostgreSQL: events the registry's workflows wrote at
known times are found by card, person, operator and time window (the region's local time in
and out: a window read as UTC would catch other events) and not outside it; the search pages
by keyset and never shows a field named token or password; a verification run says the chain
is intact (then verifies incrementally), and an event edited behind sscard's back shows as
broken; the outbox's counts per destination, after a real ``sscard outbox dispatch`` to a
receiver that accepts and one that fails, are those ``sscard outbox list`` gives, and a
supervisor re-queues the failed one from the page."""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from personalize.registry import Registry
from personalize.roles import Role
from personalize.web.routes_audit import PAGE_SIZE
from sscard.identifiers import first_generation_ssn
from tests.audit_key import AUDIT_KEY, HSM_ENV
from tests.cli import run_sscard
from tests.clock import FAKETIME_ENV
from tests.conftest import NewDatabase
from tests.integration.api_fixture import POLICY, card_number, holder, open_registry
from tests.integration.console import (
    OPERATORS,
    TABLET,
    Desk,
    desk,
    prepare_console,
    serve_console,
)
from tests.webhook_receiver import BANK_SECRET, KAGUAN_SECRET, Receiver

LOST, OTHER = card_number(0), card_number(1)
COUNTER, SUPERVISOR = OPERATORS[Role.COUNTER], OPERATORS[Role.SUPERVISOR]
# Shanghai is UTC+8. The window searched is 2026-11-27 00:00–24:00 local time.
BEFORE = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)  # 11-26 18:00 local: before it
INSIDE = datetime(2026, 11, 26, 17, 0, tzinfo=UTC)  # 11-27 01:00 local: inside (not as UTC)
AFTER = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)  # 11-28 01:00 local: after it (not as UTC)
PAGER = "pager"  # an operator with more events than a page


def registry_at(db: str, moment: datetime) -> Registry:
    return Registry(db, POLICY, clock=lambda: moment, audit_key=AUDIT_KEY)


def make_history(db: str) -> None:
    """A loss, its formal loss and reissue request at the counter, another card's loss by
    the supervisor, each at its time; and a page and ten events of one operator, with
    fields no page may show."""
    with closing(registry_at(db, BEFORE)) as registry:
        registry.report_loss(LOST, operator=COUNTER)
    with closing(registry_at(db, INSIDE)) as registry:
        registry.formalize_loss(LOST, operator=COUNTER, evidence="居民身份证")
        registry.request_reissue(LOST, operator=COUNTER, counter="3号窗口")
    with closing(registry_at(db, AFTER)) as registry:
        registry.report_loss(OTHER, operator=SUPERVISOR)
    with closing(open_registry(db)) as registry, registry.transaction():
        for n in range(PAGE_SIZE + 10):
            details = {"n": n, "token": f"tok-{n}-SECRET", "query_password": "pw-SECRET"}
            registry.audit(PAGER, "test.note", "registry", details)


def dispatch(db: str, tmp_path: Path) -> None:
    """``sscard outbox dispatch --once`` to the 卡管 (accepts) and the bank (answers 503;
    gives up after one try)."""
    kaguan, bank = Receiver(KAGUAN_SECRET).up(), Receiver(BANK_SECRET).up()
    bank.answer = 503
    config = tmp_path / "outbox.toml"
    lines = []
    for name, receiver, secret in (("kaguan", kaguan, KAGUAN_SECRET), ("bank", bank, BANK_SECRET)):
        path = tmp_path / f"{name}.secret"
        path.write_text(secret, encoding="utf-8")
        os.chmod(path, 0o600)
        lines.append(
            f'[[destination]]\nname = "{name}"\nurl = "{receiver.url}"\nsecret_file = "{path}"\n'
            "[destination.retry]\nmax_attempts = 1\n"
        )
    config.write_text("\n".join(lines), encoding="utf-8")
    try:
        result = sscard("outbox", "dispatch", "--once", "--config", str(config), "--db", db)
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        kaguan.down()
        bank.down()


def sscard(*args: str) -> subprocess.CompletedProcess[str]:
    return run_sscard(*args, env={**os.environ, **FAKETIME_ENV, **HSM_ENV})


@pytest.fixture
def world(new_db: NewDatabase, tmp_path: Path) -> Iterator[tuple[str, str]]:
    db = new_db("console_audit")
    prepare_console(db)
    make_history(db)
    dispatch(db, tmp_path)
    with serve_console(db) as base:
        yield base, db


def table(page: Page) -> list[list[str]]:
    """The events table: number, time, operator, action, subject, details."""
    rows: list[list[str]] = page.eval_on_selector_all(
        "#events tbody tr[data-event]",
        "rows => rows.map(r => Array.from(r.cells, c => c.innerText))",
    )
    return rows


def search(d: Desk, **fields: str) -> Page:
    page = d.go("/audit/events")
    for name, value in fields.items():
        page.fill(f"input[name={name}]", value)
    page.click("#search button[type=submit]")
    page.wait_for_load_state()
    return page


def test_events_are_found_by_card_person_operator_and_local_time_window(
    world: tuple[str, str], browser: Browser, tmp_path: Path
) -> None:
    base, _ = world
    with desk(browser, base, tmp_path) as d:
        d.login(Role.AUDITOR)
        assert d.page.locator("header nav a").all_inner_texts() == ["审计"]

        page = search(d, card=LOST)
        assert [(r[3], r[4]) for r in table(page)] == [
            ("request.reissue", LOST),
            ("card.reissue_pending", LOST),
            ("card.formal_loss", LOST),
            ("card.provisional_loss", LOST),
            ("card.enroll", LOST),
        ]
        assert {r[2] for r in table(page)[:4]} == {COUNTER}
        d.shot("audit-events-by-card")

        page = search(d, person=holder(1).ssn)
        assert [(r[3], r[4]) for r in table(page)] == [
            ("card.provisional_loss", OTHER),
            ("card.enroll", OTHER),
        ]
        # the same person by the first-generation 15-digit form of their number
        fifteen = first_generation_ssn(holder(1).ssn)
        assert fifteen is not None and len(fifteen) == 15
        assert table(search(d, person=fifteen)) == table(page)

        page = search(d, operator=SUPERVISOR)
        rows = table(page)
        assert rows and {r[2] for r in rows} == {SUPERVISOR}
        assert ("card.provisional_loss", OTHER) in [(r[3], r[4]) for r in rows]
        assert LOST not in {r[4] for r in rows}

        page = search(d, since="2026-11-27T00:00", until="2026-11-28T00:00")
        assert [(r[1], r[3], r[4]) for r in table(page)] == [
            ("2026-11-27 01:00:00", "request.reissue", LOST),
            ("2026-11-27 01:00:00", "card.reissue_pending", LOST),
            ("2026-11-27 01:00:00", "card.formal_loss", LOST),
        ]
        d.shot("audit-events-time-window")

        page = search(d, card=LOST, operator=SUPERVISOR)
        assert table(page) == []
        assert "没有符合条件的事件" in page.inner_text("#events")

        page = d.go("/audit/events?since=yesterday")
        assert "起始时间「yesterday」不是有效的时间" in page.inner_text("main")
        page = d.go("/audit/events?card=H99999999")
        assert "卡号 H99999999 不在登记库中" in page.inner_text("main")
    with desk(browser, base, tmp_path, viewport=TABLET) as d:
        d.login(Role.AUDITOR)
        search(d, card=LOST)
        d.shot("audit-events-tablet")


def test_the_search_pages_by_keyset_and_never_shows_a_token_or_password(
    world: tuple[str, str], browser: Browser, tmp_path: Path
) -> None:
    base, _ = world
    with desk(browser, base, tmp_path) as d:
        d.login(Role.SUPERVISOR)
        page = search(d, operator=PAGER)
        first = table(page)
        assert len(first) == PAGE_SIZE
        assert [r[5] for r in first[:2]] == ["n 59", "n 58"]  # newest first, at equal: by id
        assert "SECRET" not in page.content() and "password" not in page.content()
        page.click("#next")
        page.wait_for_load_state()
        rest = table(page)
        assert [r[5] for r in rest] == [f"n {n}" for n in range(9, -1, -1)]
        assert page.locator("#next").count() == 0
        assert "SECRET" not in page.content()
        d.shot("audit-events-page-2")


def test_a_verification_says_intact_then_an_edited_event_shows_as_broken(
    world: tuple[str, str], browser: Browser, tmp_path: Path
) -> None:
    base, db = world
    with desk(browser, base, tmp_path) as d:
        page = d.login(Role.AUDITOR)
        page = d.go("/audit")
        assert page.inner_text("#checkpoint") == "尚未核验"
        page.click("#verify button[type=submit]")
        page.wait_for_load_state()
        assert "审计链完整" in page.inner_text(".flash.ok")
        assert page.inner_text("#verdict") == "完整"
        assert "尚无核验检查点" in page.inner_text("#mode")
        first = int(page.url.rsplit("run=", 1)[1])
        assert page.inner_text("#checkpoint").startswith(f"{first - 1}（")
        d.shot("audit-status-intact")

        page.click("#verify button[type=submit]")
        page.wait_for_load_state()
        assert page.inner_text("#verdict") == "完整"
        assert page.inner_text("#mode") == f"增量核验，自事件 {first} 起"

        with closing(open_registry(db)) as registry, registry.transaction():
            edited = registry.db.execute(
                "SELECT id FROM audit_events WHERE action = 'card.formal_loss'"
            ).scalar()
            registry.db.execute(
                "UPDATE audit_events SET operator = 'nobody' WHERE id = ?", (edited,)
            )
        checkpoint = page.inner_text("#checkpoint")
        page.check("input[name=full]")
        page.click("#verify button[type=submit]")
        page.wait_for_load_state()
        assert "审计链已损坏" in page.inner_text(".flash.error")
        assert page.inner_text("#verdict") == "已损坏"
        assert "按要求完整核验" in page.inner_text("#mode")
        problems = page.locator("ul.problems li").all_inner_texts()
        assert f"审计事件 {edited} 内容被改动或哈希被重算" in "\n".join(problems)
        assert page.inner_text("#checkpoint") == checkpoint  # a broken chain records none
        d.shot("audit-status-broken")

        page = search(d, operator=OPERATORS[Role.AUDITOR])
        assert Counter(r[3] for r in table(page))["audit.verify"] == 3  # with the auditor's name


def test_the_outbox_counts_per_destination_are_those_of_outbox_list(
    world: tuple[str, str], browser: Browser, tmp_path: Path
) -> None:
    base, db = world
    listed: Counter[tuple[str, str]] = Counter()
    for state in ("pending", "failed", "delivered"):
        result = sscard("outbox", "list", "--status", state, "--json", "--db", db)
        assert result.returncode == 0, result.stderr
        for event in json.loads(result.stdout)["events"]:
            for where in event["destinations"]:
                if where["state"] == state:
                    listed[where["name"], state] += 1
    assert listed == {("kaguan", "delivered"): 3, ("bank", "failed"): 1, ("bank", "pending"): 2}
    with desk(browser, base, tmp_path) as d:
        d.login(Role.AUDITOR)
        page = d.go("/audit/outbox")
        assert page.inner_text("#outbox-total") == "3"
        for name in ("kaguan", "bank"):
            row = page.locator(f"tr[data-destination={name}]")
            for state in ("pending", "failed", "delivered"):
                assert int(row.locator(f"td.{state}").inner_text()) == listed[name, state]
        bank = page.locator("tr[data-destination=bank]").inner_text()
        assert "#1 card.frozen" in bank and "HTTP 503 Service Unavailable" in bank
        assert page.locator("form.retry").count() == 0  # read-only for the auditor
        d.shot("audit-outbox")
    with desk(browser, base, tmp_path) as d:
        d.login(Role.SUPERVISOR)
        page = d.go("/audit/outbox")
        page.click("tr[data-destination=bank] form.retry button")
        page.wait_for_load_state()
        assert "回盘事件 1 已重新排队：bank" in page.inner_text(".flash.ok")
        row = page.locator("tr[data-destination=bank]")
        assert [row.locator(f"td.{s}").inner_text() for s in ("pending", "failed")] == ["3", "0"]
        d.shot("audit-outbox-retried")
        page = search(d, operator=SUPERVISOR)
        assert ("outbox.retry", "outbox/1") in [(r[3], r[4]) for r in table(page)]
