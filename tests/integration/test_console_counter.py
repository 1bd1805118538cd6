"""The counter's pages (issue 16, Deliver 3; docs/console.md "Counter"), in chromium against a
real ``sscard serve``: find a person, loss, formal loss, 补卡 in person and by an agent, the
领卡证明 opened and reprinted under dual control, a 换卡 after a 验卡 verdict, the job with its
photo and face preview — and each refusal shown with nothing of it written."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from personalize.office import Office
from personalize.registry import AGENT_DOCUMENTS, Agent, mask_id
from personalize.roles import Role
from personalize.trackvault import TrackVault
from simulator.factory import sample_photo
from sscard.profile import load_profile
from tests.conftest import NewDatabase
from tests.integration.api_fixture import POLICY, card_number, holder, open_registry
from tests.integration.console import (
    OPERATORS,
    TABLET,
    desk,
    prepare_console,
    serve_console,
)
from tests.operators import PASSWORD

AGENT_ID = "110105198001010016"  # 李四, a valid GB 11643 number
BAD_AGENT_ID = "110105198001010019"  # its check character is 6


@dataclass
class World:
    base: str
    db: str


def state(db: str) -> dict[str, object]:
    """What a refused form must leave as it was: every card's status, the requests, the jobs,
    and the audit events other than refusals."""
    registry = open_registry(db)
    try:

        def count(sql: str) -> int:
            return int(registry.db.execute(sql).fetchone()[0])

        return {
            "cards": [
                tuple(r)
                for r in registry.db.execute("SELECT card_number, status FROM cards ORDER BY 1")
            ],
            "requests": count("SELECT COUNT(*) FROM reissue_requests"),
            "jobs": count("SELECT COUNT(*) FROM jobs"),
            "events": count("SELECT COUNT(*) FROM audit_events WHERE action NOT LIKE '%refused'"),
        }
    finally:
        registry.close()


def events(db: str, action: str) -> list[tuple[str, str, str]]:
    registry = open_registry(db)
    try:
        rows = registry.db.execute(
            "SELECT operator, subject, details FROM audit_events WHERE action = ? ORDER BY id",
            (action,),
        )
        return [(r["operator"], r["subject"], r["details"]) for r in rows]
    finally:
        registry.close()


def assert_chain_intact(db: str) -> None:
    """Every change the console made is explained by its audit events (``audit verify``)."""
    registry = open_registry(db)
    try:
        assert registry.check_audit(full=True).problems == []
    finally:
        registry.close()


def damaged(db: str, index: int, agent: Agent | None = None) -> None:
    """A 验卡 at a street office seeing a cracked card (visual only): the verdict 人为损坏
    opens the 换卡 request (``Office.diagnose``, as ``sscard office diagnose``), with the
    ``agent`` who brought the card."""
    registry = open_registry(db)
    try:
        office = Office(registry, POLICY, load_profile(POLICY.profile), None, None,  # type: ignore[arg-type]
                        operator=OPERATORS[Role.OFFICE], progress=lambda s: None)  # fmt: skip
        office.diagnose(None, None, ("cracked",), card_number=card_number(index), visual_only=True,
                        agent=agent)  # fmt: skip
    finally:
        registry.close()


@pytest.fixture
def world(new_db: NewDatabase, tmp_path: Path) -> Iterator[World]:
    db = new_db("counter")
    prepare_console(db)
    damaged(db, 3)
    key = tmp_path / "track.key"
    TrackVault.create(key)
    with serve_console(db, track_key=key) as base:
        yield World(base, db)


def flash(page: Page) -> str:
    return page.locator("p.flash").first.inner_text()


def pdftext(pdf: bytes, path: Path) -> str:
    path.write_bytes(pdf)
    return subprocess.run(
        ["pdftotext", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def card_form(page: Page, index: int, action: str) -> str:
    return f"#card-{card_number(index)} form[action$='/{action}']"


def search(page: Page, query: str) -> None:
    page.fill("input[name=q]", query)
    page.click("form.search button[type=submit]")
    page.wait_for_load_state()


def test_the_counter_finds_reports_formalizes_reissues_and_prints(
    world: World, browser: Browser, tmp_path: Path
) -> None:
    base, db = world.base, world.db
    with desk(browser, base, tmp_path) as d:
        page = d.login(Role.COUNTER)
        page.on("dialog", lambda dialog: dialog.accept())  # 预挂失 asks to confirm
        page = d.go("/counter")
        d.shot("counter-search")
        # a name several persons share: a list, ID numbers masked
        search(page, "张三")
        rows = page.locator("#persons tbody tr")
        assert rows.count() == 4
        listing = page.inner_text("#persons")
        assert mask_id(holder(0).ssn) in listing and holder(0).ssn not in listing
        d.shot("counter-search-name")
        # the card number leads to its holder, whose ID the counter sees whole
        search(page, card_number(0))
        assert page.url.endswith("/console/counter/persons/1")
        assert page.inner_text("#ssn") == holder(0).ssn
        assert page.inner_text(f"#card-{card_number(0)} .status") == "正常"
        d.shot("counter-person")

        page.click(card_form(page, 0, "report-loss") + " button")
        page.wait_for_load_state()
        assert "已预挂失" in flash(page)
        assert page.inner_text(f"#card-{card_number(0)} .status") == "预挂失"
        stale = d.context.new_page()  # a second window still showing the 预挂失 page
        stale.goto(page.url)
        page.click(card_form(page, 0, "formal-loss") + " button")
        page.wait_for_load_state()
        assert "已正式挂失" in flash(page)
        d.shot("counter-formal-loss")

        # a second formal loss, from the stale window: the rule's refusal, nothing written
        before = state(db)
        refused = len(events(db, "console.refused"))
        stale.click(card_form(stale, 0, "formal-loss") + " button")
        stale.wait_for_load_state()
        assert "正式挂失" in flash(stale) and "error" in stale.locator("p.flash").get_attribute(
            "class"
        )  # fmt: skip
        assert state(db) == before
        assert len(events(db, "console.refused")) == refused + 1
        stale.close()

        # a reissue by an agent whose ID number has a wrong check character
        page.reload()
        form = card_form(page, 0, "reissue")
        assert page.inner_text(form + " #fee-reissue") == str(POLICY.fee_reissue)
        page.click(form + " details summary")
        page.fill(form + " input[name=agent_name]", "李四")
        page.fill(form + " input[name=agent_id]", BAD_AGENT_ID)
        page.click(form + " button[type=submit]")
        page.wait_for_load_state()
        assert "代办人证件号码" in flash(page) and "校验位" in flash(page)
        assert state(db) == before
        d.shot("counter-agent-refused")

        # the holder in person: the request, its fee, its 领卡证明
        page.fill(card_form(page, 0, "reissue") + " input[name=counter]", "3 号窗口")
        page.click(card_form(page, 0, "reissue") + " button[type=submit]")
        page.wait_for_load_state()
        assert "补卡申请 SSCARD-REQ-000002 已受理" in flash(page)
        assert f"工本费 {POLICY.fee_reissue} 元" in flash(page)
        row = page.inner_text("#request-2")
        assert "补卡" in row and "待制卡" in row and f"{POLICY.fee_reissue} 元" in row
        assert page.inner_text(f"#card-{card_number(0)} .status") == "补卡中"
        assert page.locator("#request-2 a.job").count() == 1  # the counter submits the job
        d.shot("counter-reissued")
        link = page.locator("#request-2 a.certificate")
        assert link.get_attribute("target") == "_blank"
        answer = page.request.get(base.removesuffix("/console") + str(link.get_attribute("href")))
        assert answer.status == 200 and answer.headers["content-type"] == "application/pdf"
        assert answer.headers["content-disposition"].startswith("inline")
        text = pdftext(answer.body(), tmp_path / "cert.pdf")
        assert "SSCARD-REQ-000002" in text and holder(0).name in text and "3 号窗口" in text
        assert "补打" not in text
        assert events(db, "document.view")[-1][:2] == (OPERATORS[Role.COUNTER], "SSCARD-REQ-000002")

        # 补打: a wrong password of the confirming supervisor refuses it; then it is printed
        csrf = page.locator("#request-2 .reprint input[name=csrf]").get_attribute("value")
        url = f"{base}/counter/requests/2/reprint"
        sup = OPERATORS[Role.SUPERVISOR]
        wrong = page.request.post(
            url, form={"csrf": str(csrf), "confirm_by": sup, "confirm_password": "wrong-pw-1"}
        )
        assert wrong.headers["content-type"].startswith("text/html")
        assert "操作员名或口令错误" in wrong.text() and events(db, "document.reprint") == []
        again = page.request.post(
            url, form={"csrf": str(csrf), "confirm_by": sup, "confirm_password": PASSWORD}
        )
        assert again.headers["content-type"] == "application/pdf"
        assert "补打" in pdftext(again.body(), tmp_path / "reprint.pdf")
        ((who, number, details),) = events(db, "document.reprint")
        assert (who, number) == (OPERATORS[Role.COUNTER], "SSCARD-REQ-000002")
        assert f'"confirmed_by": "{sup}"' in details
    assert_chain_intact(db)


def test_an_agent_formalizes_and_applies_and_a_replacement_follows_its_verdict(
    world: World, browser: Browser, tmp_path: Path
) -> None:
    base = world.base
    with desk(browser, base, tmp_path) as d:
        d.login(Role.COUNTER)
        page = d.go("/counter")
        search(page, holder(1).ssn)
        assert page.url.endswith("/counter/persons/2")
        form = card_form(page, 1, "formal-loss")
        page.click(form + " details summary")
        page.fill(form + " input[name=agent_name]", "李四")
        page.fill(form + " input[name=agent_id]", AGENT_ID)
        page.click(form + " button[type=submit]")
        page.wait_for_load_state()
        assert "已正式挂失" in flash(page)
        assert f"代办人 agent 李四 {mask_id(AGENT_ID)}" in page.inner_text(
            f"#card-{card_number(1)} details.history"
        )
        form = card_form(page, 1, "reissue")
        page.click(form + " details summary")
        page.fill(form + " input[name=agent_name]", "李四")
        page.fill(form + " input[name=agent_id]", AGENT_ID)
        page.click(form + " button[type=submit]")
        page.wait_for_load_state()
        assert "已受理" in flash(page)
        assert f"李四 {mask_id(AGENT_ID)}" in page.inner_text("#request-2")
        answer = page.request.get(f"{base}/counter/requests/2/certificate")
        assert "李四" in pdftext(answer.body(), tmp_path / "agent.pdf")
        d.shot("counter-agent-reissued")

        # 换卡: the street office's 验卡 verdict opened it; the counter shows it and its fee
        search_page = d.go("/counter")
        search(search_page, card_number(3))
        card = page.inner_text(f"#card-{card_number(3)}")
        assert "换卡中" in card and "人为损坏，收费换卡" in card and "SSCARD-REQ-000001" in card
        fee = POLICY.fee_damage_human
        assert "换卡" in page.inner_text("#request-1") and f"{fee} 元" in page.inner_text(
            "#request-1"
        )  # fmt: skip
        report = page.locator(f"#card-{card_number(3)} table.reports a").first
        answer = page.request.get(base.removesuffix("/console") + str(report.get_attribute("href")))
        assert answer.headers["content-type"] == "application/pdf"
        assert "人为损坏" in pdftext(answer.body(), tmp_path / "report.pdf")
        d.shot("counter-replacement")
    with desk(browser, base, tmp_path, viewport=TABLET) as d:
        d.login(Role.COUNTER)
        d.go("/counter/persons/4")
        d.shot("counter-person-tablet")

    # unknown and malformed numbers: the refusal on the search page
    with desk(browser, base, tmp_path) as d:
        d.login(Role.COUNTER)
        page = d.go("/counter")
        unknown = card_number(899)  # never enrolled
        search(page, unknown)
        assert f"卡号 {unknown} 不在登记库中" in page.inner_text("main")
        search(page, card_number(0)[:-1] + ("1" if card_number(0)[-1] != "1" else "2"))
        assert "校验位" in page.inner_text("main")
        search(page, holder(0).ssn[:-1] + ("1" if holder(0).ssn[-1] != "1" else "2"))
        assert "校验位" in page.inner_text("main")
        search(page, "王五")
        assert "没有姓名为 王五 的人员" in page.inner_text("main")
        d.shot("counter-search-refused")


def test_a_job_is_submitted_with_its_photo_after_the_face_preview(
    world: World, browser: Browser, tmp_path: Path
) -> None:
    base, db = world.base, world.db
    registry = open_registry(db)
    try:
        registry.formalize_loss(card_number(2), operator="setup", evidence="居民身份证")
        registry.request_reissue(card_number(2), operator="setup")  # request 2
    finally:
        registry.close()
    with desk(browser, base, tmp_path) as d:
        d.login(Role.SUPERVISOR)
        page = d.go("/counter/persons/3")
        page.click("#request-2 a.job")
        page.wait_for_load_state()
        assert page.url.endswith("/counter/requests/2/job")
        assert holder(2).ssn in page.inner_text("main")
        d.shot("counter-job-upload")
        before = state(db)
        big = sample_photo(size=5000)
        page.set_input_files(
            "input[name=photo]", {"name": "big.jpg", "mimeType": "image/jpeg", "buffer": big}
        )
        page.click("#preview")
        page.wait_for_load_state()
        assert "超过 4096 字节上限" in flash(page)
        page.set_input_files(
            "input[name=photo]",
            {"name": "p.gif", "mimeType": "image/gif", "buffer": b"GIF89a" + bytes(200)},
        )
        page.click("#preview")
        page.wait_for_load_state()
        assert "JPEG" in flash(page)
        assert state(db) == before
        d.shot("counter-job-photo-refused")

        page.set_input_files(
            "input[name=photo]",
            {"name": "p.jpg", "mimeType": "image/jpeg", "buffer": sample_photo("counter")},
        )
        page.click("#preview")
        page.wait_for_load_state()
        face = page.locator("img#face")
        assert str(face.get_attribute("src")).startswith("data:image/png;base64,")
        size = face.evaluate("img => [img.naturalWidth, img.naturalHeight]")
        assert size == [1016, 648]  # the printer's front panel, 300 dpi
        assert state(db) == before  # a preview writes nothing
        d.shot("counter-job-preview")
        page.click("#submit-job")
        page.wait_for_load_state()
        assert "制卡作业 1 已提交" in flash(page)
        assert page.inner_text("#request-status") == "制卡中（作业 1）"
        d.shot("counter-job-submitted")
    registry = open_registry(db)
    try:
        job = registry.job(1)
        assert job.status == "queued" and registry.job_photo(1) == sample_photo("counter")
    finally:
        registry.close()
    ((who, subject, _),) = events(db, "job.submit")
    assert (who, subject) == (OPERATORS[Role.SUPERVISOR], "job-1")
    assert_chain_intact(db)

    # the card center opens the job page by its link (the person's page is the counter's)
    with desk(browser, base, tmp_path) as d:
        d.login(Role.CARD_CENTER)
        page = d.go("/counter/requests/2/job")
        assert "已不在待制卡状态" in page.inner_text("main")
        assert page.locator("a[href$='/counter/persons/3']").count() == 0


def test_without_a_track_key_the_job_page_says_so(tmp_path: Path, browser: Browser) -> None:
    db = str(tmp_path / "registry.db")
    prepare_console(db, persons=1)
    damaged(db, 0)
    with serve_console(db) as base, desk(browser, base, tmp_path) as d:
        d.login(Role.CARD_CENTER)
        page = d.go("/counter/requests/1/job")
        assert "未配置磁道密钥" in page.inner_text("#no-track-key")
        assert page.locator("input[name=photo]").count() == 0


def test_an_agents_replacement_is_shown_and_printed_and_an_agent_may_not_unreport(
    world: World, browser: Browser, tmp_path: Path
) -> None:
    """委托代办 at the counter (docs/business-rules.md "Agents (委托代办)"): the 换卡 an agent
    brought to 验卡 lists them, masked, with the documents shown, and its 领卡证明 prints
    them; 解挂 with an agent named on the form is refused by the transition table, nothing
    written, and the holder in person then succeeds."""
    base, db = world.base, world.db
    damaged(db, 2, Agent("李四", AGENT_ID))
    with desk(browser, base, tmp_path) as d:
        d.login(Role.COUNTER)
        page = d.go("/counter")
        search(page, card_number(2))
        row = page.inner_text("#request-2")
        assert "换卡" in row and f"李四 {mask_id(AGENT_ID)}（{AGENT_DOCUMENTS}）" in row
        answer = page.request.get(f"{base}/counter/requests/2/certificate")
        text = " ".join(pdftext(answer.body(), tmp_path / "replacement.pdf").split())
        assert "换卡" in text and f"李四（{mask_id(AGENT_ID)}）" in text
        assert AGENT_DOCUMENTS in text and AGENT_ID not in text
        d.shot("counter-agent-replacement")

        page.on("dialog", lambda dialog: dialog.accept())  # 预挂失 asks to confirm
        page = d.go("/counter")
        search(page, card_number(0))
        page.click(card_form(page, 0, "report-loss") + " button")
        page.wait_for_load_state()
        assert "已预挂失" in flash(page)
        before = state(db)
        form = card_form(page, 0, "unreport")
        page.click(form + " details summary")
        page.fill(form + " input[name=agent_name]", "李四")
        page.fill(form + " input[name=agent_id]", AGENT_ID)
        page.click(form + " button[type=submit]")
        page.wait_for_load_state()
        assert "解挂须持卡人本人办理，不能委托代办" in flash(page)
        assert state(db) == before
        d.shot("counter-agent-unreport-refused")
        page.click(card_form(page, 0, "unreport") + " button[type=submit]")
        page.wait_for_load_state()
        assert "已解挂" in flash(page)
        assert page.inner_text(f"#card-{card_number(0)} .status") == "正常"
