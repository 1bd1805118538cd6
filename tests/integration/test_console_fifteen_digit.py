"""The counter finds a holder by the first-generation 15-digit ID number their old card and
papers carry (issue 17; docs/business-rules.md "15-digit ID numbers", 珠海: "身份证号从15位升位
到18位的可不用办理换卡手续"): the 18-digit person it upgrades to opens, a malformed 15-digit
number is named as such — in chromium against a real ``sscard serve``."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, Page

from personalize.roles import Role
from tests.conftest import NewDatabase
from tests.integration.api_fixture import holder
from tests.integration.console import desk, prepare_console, serve_console


def first_generation(ssn18: str) -> str:
    """The 15-digit number an 18-digit one was upgraded from, by the inverse of GB 11643's
    upgrade written out here: the century ``19`` (positions 7-8) and the check character
    dropped."""
    assert ssn18[6:8] == "19"
    return ssn18[:6] + ssn18[8:17]


def search(page: Page, query: str) -> None:
    page.fill("input[name=q]", query)
    page.click("form.search button[type=submit]")
    page.wait_for_load_state()


def test_a_fifteen_digit_id_finds_its_upgraded_person(
    new_db: NewDatabase, tmp_path: Path, browser: Browser
) -> None:
    db = new_db("fifteen")
    prepare_console(db)
    with serve_console(db) as base, desk(browser, base, tmp_path) as d:
        page = d.login(Role.COUNTER)
        d.go("/counter")
        fifteen = first_generation(holder(2).ssn)
        assert len(fifteen) == 15
        search(page, fifteen)
        assert page.url.endswith("/console/counter/persons/3")
        assert page.inner_text("#ssn") == holder(2).ssn
        d.go("/counter")
        search(page, fifteen[:8] + "13" + fifteen[10:])  # month 13: no such birth date
        assert page.url.endswith("/console/counter?q=" + fifteen[:8] + "13" + fifteen[10:])
        assert "出生日期" in page.inner_text("main")
        d.go("/counter")
        search(page, "110105491231998")  # valid, but nobody's upgrade
        assert "登记库中没有该证件号码" in page.inner_text("main")
