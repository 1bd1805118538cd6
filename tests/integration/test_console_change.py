"""换领 (identity data changed) at the counter's console (issue 17; docs/console.md "Counter",
docs/business-rules.md "换领 (identity data changed)"), in chromium against a real ``sscard
serve``: the form on the holder's page with what the change certificates say; a certificate
for another person and another person's new number refused with nothing written; the
request, its 领卡证明 with the reason and the change, and the job page showing — and
submitting — the new name and ID number for the new card."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from personalize.registry import mask_id
from personalize.roles import Role
from personalize.trackvault import TrackVault
from simulator.factory import sample_photo
from tests.conftest import NewDatabase
from tests.integration.api_fixture import card_number, holder, open_registry
from tests.integration.console import desk, prepare_console, serve_console
from tests.integration.test_console_counter import World, flash, state

NEW_ID = "110108194912310029"  # a GB 11643-1999 number of 1949-12-31, a woman, 海淀区


@pytest.fixture
def world(new_db: NewDatabase, tmp_path: Path) -> Iterator[World]:
    db = new_db("counter")
    prepare_console(db)
    key = tmp_path / "track.key"
    TrackVault.create(key)
    with serve_console(db, track_key=key) as base:
        yield World(base, db)


FORM = f"#card-{card_number(1)} form[action$='/change']"


def apply(page: Page, **fields: str) -> None:
    """Fill the 换领 form of holder(1)'s card with the certificates and ``fields``; send it."""
    values = {
        "new_name": "张叁",
        "new_id": NEW_ID,
        "certificate": "京公(海)变字2026第0815号",
        "authority": "北京市公安局海淀分局",
        "bureau_certificate": "京社更2026-0042",
        "counter": "3 号窗口",
        **fields,
    }
    for name, value in values.items():
        page.fill(f"{FORM} input[name={name}]", value)
    page.click(FORM + " button[type=submit]")
    page.wait_for_load_state()


def test_the_counter_takes_a_change_and_the_job_carries_the_new_data(
    world: World, browser: Browser, tmp_path: Path
) -> None:
    base, db = world.base, world.db
    with desk(browser, base, tmp_path) as d:
        d.login(Role.COUNTER)
        page = d.go("/counter/persons/2")
        # the certificate's old data is prefilled from the record, for the clerk to compare
        assert page.input_value(FORM + " input[name=old_id]") == holder(1).ssn
        assert page.input_value(FORM + " input[name=old_name]") == "张三"
        d.shot("counter-change-form")

        before = state(db)
        apply(page, new_id=holder(2).ssn)
        assert "新身份证号码已属于另一参保人" in flash(page)
        apply(page, old_id=holder(3).ssn)
        assert "for another person" in flash(page)
        apply(page, new_name="", new_id="")
        assert "均未改变" in flash(page)
        assert state(db) == before
        d.shot("counter-change-refused")

        page = d.go("/counter/persons/2")
        apply(page)
        assert "换领申请 SSCARD-REQ-000001 已受理" in flash(page)
        assert page.inner_text(f"#card-{card_number(1)} .status") == "换卡中"
        row = page.inner_text("#request-1")
        assert "换领" in row and "待制卡" in row
        assert "京公(海)变字2026第0815号" in page.inner_text(
            f"#card-{card_number(1)} details.history"
        )
        d.shot("counter-change-applied")
        link = page.locator("#request-1 a.certificate")
        answer = page.request.get(base.removesuffix("/console") + str(link.get_attribute("href")))
        path = tmp_path / "cert.pdf"
        path.write_bytes(answer.body())
        text = subprocess.run(
            ["pdftotext", str(path), "-"], capture_output=True, text=True, check=True
        ).stdout
        assert "换领（身份信息变更）" in text and "张三 → 张叁" in text
        assert f"{mask_id(holder(1).ssn)} → {mask_id(NEW_ID)}" in text

        # the job for the new card: the new name and ID number, shown and submitted
        page.click("#request-1 a.job")
        page.wait_for_load_state()
        main = page.inner_text("main")
        assert NEW_ID in main and "张叁" in main and holder(1).ssn not in main
        page.set_input_files(
            "input[name=photo]",
            {"name": "p.jpg", "mimeType": "image/jpeg", "buffer": sample_photo("change")},
        )
        page.click("#preview")
        page.wait_for_load_state()
        d.shot("counter-change-job-preview")
        page.click("#submit-job")
        page.wait_for_load_state()
        assert "制卡作业 1 已提交" in flash(page)
    registry = open_registry(db)
    try:
        job_holder = json.loads(registry.job(1).holder)
        assert (job_holder["name"], job_holder["ssn"]) == ("张叁", NEW_ID)
        person = registry.person(2)
        assert (person.name, person.ssn) == ("张三", holder(1).ssn)  # until the activation
        assert registry.check_audit(full=True).problems == []
    finally:
        registry.close()
