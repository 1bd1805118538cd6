"""Withdrawing a request (撤销申请) at the counter's console (docs/console.md "Counter",
docs/business-rules.md "Withdrawing a request (撤销)"), in chromium against a real ``sscard
serve``: the 撤销 form on an open request's row, a supervisor confirming at the counter; a
wrong confirmation and a request whose fee was paid refused with nothing written; a 换领
typed wrong withdrawn and applied for again with the right data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from personalize.fees import pay_fee
from personalize.identity_change import ChangeCertificate
from personalize.roles import Role
from tests.conftest import NewDatabase
from tests.integration.api_fixture import card_number, holder, open_registry
from tests.integration.console import OPERATORS, desk, prepare_console, serve_console
from tests.integration.test_console_change import NEW_ID, apply
from tests.integration.test_console_counter import World, flash, state
from tests.operators import PASSWORD


@pytest.fixture
def world(new_db: NewDatabase) -> Iterator[World]:
    """holder(1)'s 换领 to a mistyped name (request 1); holder(0)'s 补卡 with its fee paid
    (request 2)."""
    db = new_db("console_withdraw")
    prepare_console(db)
    registry = open_registry(db)
    try:
        registry.request_change(
            card_number(1),
            ChangeCertificate(
                number="京公(海)变字2026第0815号",
                authority="北京市公安局海淀分局",
                bureau_number="京社更2026-0042",
                old_name=holder(1).name,
                old_id=holder(1).ssn,
                new_name="张参",  # the clerk mistyped 张叁
                new_id=NEW_ID,
            ),
            operator="setup",
        )
        registry.formalize_loss(card_number(0), operator="setup", evidence="居民身份证")
        paid = registry.request_reissue(card_number(0), operator="setup")
        pay_fee(registry, paid.id, receipt_no="SH-0001", amount=paid.fee, operator="setup")
    finally:
        registry.close()
    with serve_console(db) as base:
        yield World(base, db)


def withdraw(page: Page, request: int, reason: str, by: str, password: str) -> None:
    row = f"#request-{request}"
    page.click(f"{row} details.withdraw summary")
    page.fill(f"{row} details.withdraw input[name=reason]", reason)
    page.fill(f"{row} details.withdraw input[name=confirm_by]", by)
    page.fill(f"{row} details.withdraw input[name=confirm_password]", password)
    page.click(f"{row} details.withdraw button[type=submit]")
    page.wait_for_load_state()


def test_the_counter_withdraws_a_change_and_applies_again(
    world: World, browser: Browser, tmp_path: Path
) -> None:
    base, db = world.base, world.db
    with desk(browser, base, tmp_path) as d:
        d.login(Role.COUNTER)
        page = d.go("/counter/persons/2")
        before = state(db)
        withdraw(page, 1, "新姓名录入错误", OPERATORS[Role.SUPERVISOR], "wrong-password")
        assert "复核未通过，未撤销" in flash(page)
        withdraw(page, 1, "新姓名录入错误", OPERATORS[Role.COUNTER], PASSWORD)  # oneself
        assert "复核未通过，未撤销" in flash(page)
        assert state(db) == before
        withdraw(page, 1, "新姓名录入错误", OPERATORS[Role.SUPERVISOR], PASSWORD)
        message = flash(page)
        assert "换领申请 SSCARD-REQ-000001 已撤销（复核人 sup0）" in message, message
        assert f"原卡 {card_number(1)} 现为正常" in message
        assert "已撤销" in page.inner_text("#request-1")
        assert page.locator("#request-1 details.withdraw").count() == 0  # nothing left to do
        assert page.locator("#request-1 details.reprint").count() == 0
        d.shot("withdrawn")
        apply(page, new_name="张叁")  # the change form is offered again: the card is 正常
        assert "换领申请 SSCARD-REQ-000003 已受理" in flash(page)

        page = d.go("/counter/persons/1")
        before = state(db)
        withdraw(page, 2, "持卡人放弃", OPERATORS[Role.SUPERVISOR], PASSWORD)
        assert "工本费 20 元已收（收据号 SH-0001），系统没有退费流程，不能撤销" in flash(page)
        assert "待制卡" in page.inner_text("#request-2")
        assert state(db) == before
