"""The medical-account balance in the console (issue 17; docs/console.md, docs/business-rules.md
"The medical-account balance"), in chromium against a real ``sscard serve``: the counter's
person page shows each request's transfer — not reported, reported with its amount, pending
after an activation, transferred to the new card — the card center's job page says it, and
the auditor's search by the old card finds the transfer's audit events."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from personalize.jobs import claim_job
from personalize.registry import ACTIVATION_EVIDENCE, Registry
from personalize.roles import Role
from tests.clock import pinned_clock
from tests.conftest import NewDatabase
from tests.integration.api_fixture import card_number, holder, open_registry
from tests.integration.console import add_operators, desk, serve_console
from tests.stores import fed_job, record_steps


@dataclass
class World:
    base: str
    db: str
    activated_from: str  # job 1's old card: its new card is active, the transfer pending
    waiting: str  # a lost card whose reissue request has no job yet


def report(registry: Registry, card: str, amount: str, reference: str) -> None:
    as_of = pinned_clock() - timedelta(hours=2)
    registry.report_balance(card, amount, as_of=as_of, reference=reference, operator="api:yb")


@pytest.fixture
def world(new_db: NewDatabase) -> Iterator[World]:
    """Job 1 made and activated with no balance reported (pending); a second holder's lost
    card with a reissue request, not yet reported."""
    db = new_db("console")
    add_operators(db)
    registry = open_registry(db)
    job_id, card_id = fed_job(registry)
    record_steps(registry, "feed", *ACTIVATION_EVIDENCE)
    fence = claim_job(registry, job_id, "station-1")
    registry.activate(card_id, operator="center1", job_id=job_id, fence=fence)
    activated_from = registry.card_by_id(registry.job(job_id).old_card_id).card_number
    registry.enroll(holder(3), card_number(3), operator="counter1")
    registry.formalize_loss(card_number(3), operator="counter1", evidence="居民身份证原件")
    registry.request_reissue(card_number(3), operator="counter1")
    registry.close()
    with serve_console(db) as base:
        yield World(base, db, activated_from, card_number(3))


def test_the_console_shows_each_transfer_where_the_operators_look(
    world: World, browser: Browser, tmp_path: Path
) -> None:
    with desk(browser, world.base, tmp_path) as d:
        d.login(Role.COUNTER)
        page = d.go("/counter/persons/2")  # the second holder: requested, nothing reported
        cell = page.locator("#request-2 td.balance")
        assert cell.get_attribute("data-balance") == "none"
        assert cell.inner_text() == "业务系统未报"
        registry = open_registry(world.db)
        report(registry, world.waiting, "0.29", "YB-7")
        page = d.go("/counter/persons/2")
        assert cell.get_attribute("data-balance") == "reported"
        text = cell.inner_text()
        assert "0.29 元" in text and "已报余额，待新卡启用后转入" in text and "YB-7" in text
        assert "余额时点 2026-11-25 15:30" in text  # the business system's time, local
        d.shot("counter-balance-reported")

        page = d.go("/counter/persons/1")  # activated before any report: pending
        cell = page.locator("#request-1 td.balance")
        assert cell.get_attribute("data-balance") == "pending"
        assert "新卡已启用，待业务系统报余额" in cell.inner_text()
        report(registry, world.activated_from, "12345678.99", "YB-8")  # the late report
        new = registry.card_by_id(registry.job(1).new_card_id or 0).card_number
        registry.close()
        page = d.go("/counter/persons/1")
        assert cell.get_attribute("data-balance") == "transferred"
        assert "12345678.99 元 已转入新卡（转入 " + new + "）" in cell.inner_text()
        d.shot("counter-balance-transferred")

    with desk(browser, world.base, tmp_path) as d:
        d.login(Role.CARD_CENTER)
        page = d.go("/center/jobs/1")
        assert page.inner_text("#balance") == "12345678.99 元，已转入新卡"
        d.shot("center-job-balance")

    with desk(browser, world.base, tmp_path) as d:
        d.login(Role.AUDITOR)
        page = d.go(f"/audit/events?card={world.activated_from}")
        actions = page.locator("#events tbody tr td:nth-child(4)").all_inner_texts()
        assert "balance.pending" in actions and "balance.transfer" in actions
        transfer = page.locator("#events tbody tr", has_text="balance.transfer").inner_text()
        assert "12345678.99" in transfer and new in transfer
