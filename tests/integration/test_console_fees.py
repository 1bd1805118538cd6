"""Fees in the console (issue 17; docs/console.md "Fees"), in chromium against a real
``sscard serve``: the counter records a request's fee as paid with a receipt number, or waived
with a supervisor confirming at the counter; each refusal is shown with nothing written; the
card center reads the day's fees and opens their PDF; a counter may not open that page."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from personalize.roles import Role
from tests.conftest import NewDatabase
from tests.integration.api_fixture import card_number, open_registry
from tests.integration.console import OPERATORS, desk, prepare_console, serve_console
from tests.operators import PASSWORD


@dataclass
class World:
    base: str
    db: str


@pytest.fixture
def world(new_db: NewDatabase) -> Iterator[World]:
    """Three holders whose lost cards each have a 补卡 request (the policy's 20 yuan)."""
    db = new_db("console_fees")
    prepare_console(db, 3)
    registry = open_registry(db)
    try:
        for i in range(3):
            registry.formalize_loss(card_number(i), operator="setup", evidence="居民身份证")
            registry.request_reissue(card_number(i), operator="setup")
    finally:
        registry.close()
    with serve_console(db) as base:
        yield World(base, db)


def settlements(db: str) -> list[tuple[int, str, str | None, str | None]]:
    registry = open_registry(db)
    try:
        rows = registry.db.execute(
            "SELECT request_id, outcome, receipt_no, approved_by FROM fee_settlements ORDER BY id"
        )
        return [(r[0], r[1], r[2], r[3]) for r in rows]
    finally:
        registry.close()


def flash(page: Page) -> str:
    return page.locator("p.flash").first.inner_text()


def pay(page: Page, request: int, receipt: str, amount: str) -> None:
    row = f"#request-{request}"
    page.click(f"{row} details.fee-pay summary")
    page.fill(f"{row} input[name=receipt_no]", receipt)
    page.fill(f"{row} input[name=amount]", amount)
    page.click(f"{row} details.fee-pay button[type=submit]")
    page.wait_for_load_state()


def waive(page: Page, request: int, reason: str, by: str, password: str) -> None:
    row = f"#request-{request}"
    page.click(f"{row} details.fee-waive summary")
    page.fill(f"{row} input[name=reason]", reason)
    page.fill(f"{row} input[name=confirm_by]", by)
    page.fill(f"{row} input[name=confirm_password]", password)
    page.click(f"{row} details.fee-waive button[type=submit]")
    page.wait_for_load_state()


def test_the_counter_takes_and_waives_fees_and_the_center_reads_the_day(
    world: World, browser: Browser, tmp_path: Path
) -> None:
    base, db = world.base, world.db
    with desk(browser, base, tmp_path) as d:
        page = d.login(Role.COUNTER)
        page = d.go("/counter/persons/1")
        assert page.inner_text("#request-1 .fee-state") == "20 元（未收）"
        pay(page, 1, "SH-0001", "10")  # not the fee
        assert "与工本费 20 元不符" in flash(page)
        assert settlements(db) == []
        pay(page, 1, "SH-0001", "20")
        assert "工本费 20 元已收，收据号 SH-0001" in flash(page)
        assert page.inner_text("#request-1 .fee-state") == "20 元（已收，收据号 SH-0001）"
        assert page.locator("#request-1 details.fee-pay").count() == 0  # settled: no form
        d.shot("fees-paid")

        page = d.go("/counter/persons/2")
        pay(page, 2, "SH-0001", "20")  # the receipt number is used
        assert "收据号 SH-0001 已用于申请 SSCARD-REQ-000001" in flash(page)
        waive(page, 2, "低保对象", OPERATORS[Role.SUPERVISOR], "wrong-password")
        assert "复核未通过，未免收" in flash(page)
        waive(page, 2, "低保对象", OPERATORS[Role.COUNTER], PASSWORD)  # oneself
        assert "复核未通过，未免收" in flash(page)
        assert len(settlements(db)) == 1
        waive(page, 2, "低保对象", OPERATORS[Role.SUPERVISOR], PASSWORD)
        assert "工本费 20 元免收（批准人 sup0）" in flash(page)
        assert page.inner_text("#request-2 .fee-state") == "20 元（免收，批准人 sup0）"
        d.shot("fees-waived")
        assert settlements(db) == [
            (1, "paid", "SH-0001", None),
            (2, "waived", None, OPERATORS[Role.SUPERVISOR]),
        ]
        assert d.go("/center/fees").inner_text("h1") == "无权操作"

    with desk(browser, base, tmp_path) as d:
        d.login(Role.CARD_CENTER)
        page = d.go("/center/fees?day=2026-11-25")
        total = page.locator("#fees tr.total td").all_inner_texts()
        assert total == ["合计", "1", "20", "1", "20", "1", "20"]
        assert "收据号 SH-0001" in page.inner_text("#settlements")
        assert "免收：低保对象（批准人 sup0）" in page.inner_text("#settlements")
        assert "SSCARD-REQ-000003 补卡" in page.inner_text("#outstanding")
        assert page.locator("#fees-reconciled").count() == 1
        d.shot("fees-report")
        link = page.locator("#fees-pdf")
        answer = page.request.get(base.removesuffix("/console") + str(link.get_attribute("href")))
        assert answer.status == 200 and answer.headers["content-type"] == "application/pdf"
        pdf = tmp_path / "fees.pdf"
        pdf.write_bytes(answer.body())
        text = subprocess.run(
            ["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True
        ).stdout
        assert "社会保障卡工本费日报" in text and "收据号 SH-0001" in text

    registry = open_registry(db)
    try:
        assert registry.check_audit(full=True).problems == []
    finally:
        registry.close()
