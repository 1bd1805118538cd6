"""The card center's pages (issue 16, Deliver 4; docs/console.md "Card center") in chromium
against a real ``sscard serve``: the queue by station with paused jobs' reasons and
recoveries, updated live while the page is open; a job's step log; resume; cancel under dual
control (refused without a valid confirmer, nothing written); the stations and the reject
bin. The jobs are submitted in-process with ``jobs.submit_job`` and moved by the jobs'
own workflows (``claim_job``, ``pause_job``, ``end_job``) — a finished job and a written-off
card through the jobs store, as a station's runner records them."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from personalize.job_store import StepResult
from personalize.jobs import claim_job, end_job, pause_job, submit_job
from personalize.lifecycle import JobStatus, RequestStatus
from personalize.registry import Registry, _iso
from personalize.roles import Role
from personalize.stock import MoveKind, receive_stock, write_off_reason
from personalize.trackvault import TrackVault
from printer.evolis import error_for
from simulator.factory import sample_photo
from sscard.profile import load_profile
from tests.integration.api_fixture import card_number, holder, open_registry
from tests.integration.console import (
    OPERATORS,
    TABLET,
    desk,
    prepare_console,
    serve_console,
)
from tests.operators import PASSWORD

FEEDER_EMPTY = error_for("NACK F")  # the printer's answer with an empty feeder
PAUSE_REASON = f"{type(FEEDER_EMPTY).__name__}: {FEEDER_EMPTY}"  # as JobRunner records it
REJECT_REASON = "chip verification: EF05 mismatch"
REJECTED_SN = "0102030405060708"
CENTER = OPERATORS[Role.CARD_CENTER]
SUPERVISOR = OPERATORS[Role.SUPERVISOR]
# The jobs of the world, by id (one person each, in order).
QUEUED, RUNNING, PAUSED, DONE, FAILED, TO_CANCEL, TO_RESUME = range(1, 8)


def submit(registry: Registry, index: int, vault: TrackVault, tmp: Path) -> int:
    """A reissue job for person ``index``: formal loss, reissue request, job submitted."""
    number = card_number(index)
    registry.formalize_loss(number, operator="counter1", evidence="居民身份证")
    registry.request_reissue(number, operator="counter1")
    person = {**asdict(holder(index)), "birth_date": holder(index).birth_date.isoformat()}
    photo = "base64:" + base64.b64encode(sample_photo()).decode()
    submission = {"old_card_number": number, "holder": person, "photo": photo}
    return submit_job(
        registry, load_profile("default"), vault, submission, base_dir=tmp, operator=CENTER
    )


def world(db: Path, tmp: Path) -> None:
    """Seven jobs: queued, running at 工位A, paused at 工位B (feeder empty), done, failed
    after a rejected card, queued (to cancel), paused at 工位D (to resume); 10 blank cards
    received at 工位A before its card was rejected."""
    prepare_console(db, persons=7)
    vault = TrackVault.create(tmp / "tracks.key")
    registry = open_registry(db)
    try:
        ids = [submit(registry, i, vault, tmp) for i in range(7)]
        assert ids == [QUEUED, RUNNING, PAUSED, DONE, FAILED, TO_CANCEL, TO_RESUME]
        claim_job(registry, RUNNING, "工位A")
        with registry.transaction():  # a heartbeat of 工位A's worker
            registry.jobs.heartbeat(RUNNING, now=_iso(registry.clock()))
        for job, station in ((PAUSED, "工位B"), (TO_RESUME, "工位D")):
            claim_job(registry, job, station)
            pause_job(registry, job, operator=CENTER, reason=PAUSE_REASON)
        claim_job(registry, DONE, "工位A")
        with registry.transaction():  # what the runner's _finish records
            registry.jobs.set_status(DONE, "done", last_error=None, now=_iso(registry.clock()))
        receive_stock(registry, "工位A", 10, batch="B-001", operator=CENTER)
        claim_job(registry, FAILED, "工位A")
        with registry.transaction():  # what the runner's _write_off records
            registry.record_stock(
                MoveKind.REJECTED, "工位A", 1, operator=CENTER, job_id=FAILED, sn=REJECTED_SN,
                reason=write_off_reason("chip_verify", lost=False), detail=REJECT_REASON,
            )  # fmt: skip
            registry.jobs.add_step(
                FAILED, "card", StepResult.REJECTED, REJECTED_SN,
                at=_iso(registry.clock()), details={"reason": REJECT_REASON}, fence=None,
            )  # fmt: skip
            registry.jobs.drop_card(FAILED, rejected=True)
        end_job(registry, FAILED, "fail", operator=CENTER, reason="作业失败：已报废 3 张卡")
    finally:
        registry.close()


@pytest.fixture(scope="module")
def center(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    tmp = tmp_path_factory.mktemp("center")
    db = tmp / "registry.db"
    world(db, tmp)
    with serve_console(db) as base:
        yield base, db


def job_status(db: Path, job_id: int) -> JobStatus:
    registry = open_registry(db)
    try:
        job = registry.jobs.get(job_id)
        assert job is not None
        return job.status
    finally:
        registry.close()


def events(db: Path, action: str) -> list[tuple[str, str, dict[str, object]]]:
    registry = open_registry(db)
    try:
        rows = registry.db.execute(
            "SELECT operator, subject, details FROM audit_events WHERE action = ? ORDER BY id",
            (action,),
        ).fetchall()
        return [(str(r[0]), str(r[1]), json.loads(r[2])) for r in rows]
    finally:
        registry.close()


def test_the_queue_by_station_shows_each_state_and_updates_live(
    center: tuple[str, Path], browser: Browser, tmp_path: Path
) -> None:
    base, db = center
    with desk(browser, base, tmp_path) as d:
        d.login(Role.CARD_CENTER)
        page = d.go("/center")
        waiting = page.locator("#queue section").first
        assert waiting.locator(f"tr[data-job='{QUEUED}']").inner_text().count("排队") == 1
        running = page.locator("section[data-station='工位A']")
        assert "制作中" in running.locator(f"tr[data-job='{RUNNING}']").inner_text()
        assert "1/7 进卡" in running.inner_text() and "租约至" in running.inner_text()
        paused = page.locator("section[data-station='工位B']")
        assert "已暂停" in paused.inner_text()
        pause = paused.locator(f"tr[data-pause='{PAUSED}']").inner_text()
        assert "进卡器无卡" in pause and "打印机" in pause
        assert "补充空白卡" in pause and "恢复执行" in pause
        finished = page.locator("#queue section").last.inner_text()
        assert f"#{DONE}" in finished and "已完成" in finished
        assert f"#{FAILED}" in finished and "失败" in finished and "已报废 3 张卡" in finished
        d.shot("center-queue")

        registry = open_registry(db)  # a station takes the queued job while the page is open
        try:
            claim_job(registry, QUEUED, "工位C")
        finally:
            registry.close()
        page.wait_for_selector(f"section[data-station='工位C'] tr[data-job='{QUEUED}']")
        assert page.url.endswith("/console/center")  # not reloaded: the fragment changed
        d.shot("center-queue-live")


def test_a_job_shows_its_step_log_and_a_paused_one_is_given_back_to_its_station(
    center: tuple[str, Path], browser: Browser, tmp_path: Path
) -> None:
    base, db = center
    with desk(browser, base, tmp_path) as d:
        d.login(Role.CARD_CENTER)
        page = d.go(f"/center/jobs/{FAILED}")
        steps = page.locator("#steps").inner_text()
        assert "废卡" in steps and "进废卡箱" in steps and REJECT_REASON in steps
        assert "1 张（满 3 张作业失败）" in page.inner_text("main")
        assert page.locator("#resume").count() == 0 and page.locator("#cancel").count() == 0
        d.shot("center-job-failed")

        page = d.go(f"/center/jobs/{TO_RESUME}")
        assert page.inner_text("#job-status") == "已暂停"
        assert "进卡器无卡" in page.inner_text("main")
        d.shot("center-job-paused")
        page.click("#resume button")
        page.wait_for_load_state()
        assert "已交还工位 工位D" in page.inner_text(".flash.ok")
        assert page.inner_text("#job-status") == "制作中"
        assert "租约已到期，待工位续做" in page.inner_text("main")
    assert job_status(db, TO_RESUME) == JobStatus.RUNNING
    registry = open_registry(db)
    try:
        job = registry.jobs.get(TO_RESUME)
        assert job is not None and job.station == "工位D"
        assert job.lease_until == job.updated_at  # the lease ran out as it was resumed
    finally:
        registry.close()
    assert [(who, subject) for who, subject, _ in events(db, "job.resume")] == [
        (CENTER, f"job-{TO_RESUME}")
    ]


def test_cancel_is_refused_without_a_valid_confirmer_and_done_with_one(
    center: tuple[str, Path], browser: Browser, tmp_path: Path
) -> None:
    base, db = center
    with desk(browser, base, tmp_path) as d:
        d.page.on("dialog", lambda dialog: dialog.accept())  # the form's "are you sure?"
        d.login(Role.CARD_CENTER)

        def cancel(confirmer: str, password: str) -> str:
            page = d.go(f"/center/jobs/{TO_CANCEL}")
            page.fill("#cancel textarea[name=reason]", "持卡人已找回原卡")
            page.fill("#cancel input[name=confirm_by]", confirmer)
            page.fill("#cancel input[name=confirm_password]", password)
            page.click("#cancel button")
            page.wait_for_load_state()
            return page.inner_text("main")

        for confirmer, password, refusal in (
            (CENTER, PASSWORD, "复核人须为另一位操作员"),  # the acting operator
            (SUPERVISOR, "wrong-password", "操作员名或口令错误"),
            (OPERATORS[Role.COUNTER], PASSWORD, "无权复核"),  # a role that may not confirm
        ):
            text = cancel(confirmer, password)
            assert "复核未通过，作业未取消" in text and refusal in text
            assert job_status(db, TO_CANCEL) == JobStatus.QUEUED
        d.shot("center-cancel-refused")
        assert events(db, "dual_control.confirm") == []
        assert len(events(db, "job.cancel.refused")) == 3

        text = cancel(SUPERVISOR, PASSWORD)
        assert f"作业 {TO_CANCEL} 已取消（复核人 {SUPERVISOR}）" in text
        assert d.page.inner_text("#job-status") == "已取消"
        d.shot("center-cancel-done")
    assert job_status(db, TO_CANCEL) == JobStatus.CANCELLED
    [(who, subject, details)] = events(db, "dual_control.confirm")
    assert (who, subject) == (CENTER, f"job-{TO_CANCEL}")
    assert details["confirmed_by"] == SUPERVISOR
    registry = open_registry(db)
    try:
        old = registry.card(card_number(TO_CANCEL - 1))
        request = registry.open_request(old.id)
        assert request is not None and request.status == RequestStatus.OPEN
    finally:
        registry.close()


def test_stations_with_their_device_faults_and_the_reject_bin(
    center: tuple[str, Path], browser: Browser, tmp_path: Path
) -> None:
    base, _ = center
    with desk(browser, base, tmp_path) as d:
        d.login(Role.CARD_CENTER)
        page = d.go("/center/stations")
        a = page.locator("#stations tr[data-station='工位A']").inner_text()
        assert "制卡中" in a and f"#{RUNNING}" in a and "无已记录的故障" in a
        assert "2026-11-25 17:30:00" in a  # its heartbeat, in Shanghai time
        b = page.locator("#stations tr[data-station='工位B']").inner_text()
        assert "暂停，待操作员处理" in b and "打印机故障" in b and "进卡器无卡" in b
        d.shot("center-stations")
        page = d.go("/center/rejects")
        rows = page.locator("#rejects tbody tr").all_inner_texts()
        assert len(rows) == 1
        assert f"#{FAILED}" in rows[0] and "进废卡箱" in rows[0] and REJECT_REASON in rows[0]
        d.shot("center-rejects")
    with desk(browser, base, tmp_path, viewport=TABLET) as d:
        d.login(Role.SUPERVISOR)
        page = d.go("/center")
        assert page.locator("section[data-station='工位B']").count() == 1
        d.shot("center-queue-tablet")


def test_stock_levels_the_days_reconciliation_its_pdf_and_the_stock_forms(
    center: tuple[str, Path], browser: Browser, tmp_path: Path
) -> None:
    base, db = center
    with desk(browser, base, tmp_path) as d:
        d.login(Role.CARD_CENTER)
        page = d.go("/center/stock")
        assert page.locator("#levels tr[data-station='工位A']").inner_text().split() == [
            "工位A", "10", "0", "1", "0", "9"
        ]  # fmt: skip

        page.fill("#receive input[name=station]", "工位A")
        page.fill("#receive input[name=count]", "100")
        page.fill("#receive input[name=batch]", "2026-11 第二批 H0100001-H0100100")
        page.click("#receive button")
        page.wait_for_load_state()
        assert "工位 工位A 入库空白卡 100 张" in page.inner_text(".flash.ok")
        page.fill("#test-card input[name=station]", "工位A")
        page.fill("#test-card input[name=reason]", "打印机校色")
        page.click("#test-card button")
        page.wait_for_load_state()
        assert "领用测试卡 1 张" in page.inner_text(".flash.ok")
        for station, reason in (("工位A", " "), (" ", "校色")):  # refused: nothing written
            page.fill("#test-card input[name=station]", station)
            page.fill("#test-card input[name=reason]", reason)
            page.click("#test-card button")
            page.wait_for_load_state()
            assert "不能为空" in page.inner_text(".flash.error")

        levels = page.locator("#levels tr[data-station='工位A']").inner_text().split()
        assert levels == ["工位A", "110", "0", "1", "1", "108"]
        day = page.locator("#report tr[data-station='工位A']").inner_text().split()
        # opening, received, personalized, rejected, test, closing; the jobs' counts
        assert day == ["工位A", "0", "110", "0", "1", "1", "108", "0", "1"]
        assert "芯片校验不合格 1 张" in page.inner_text("main")
        assert page.locator("#reconciled").count() == 1
        d.shot("center-stock")

        pdf = page.request.get(page.locator("#report-pdf").evaluate("link => link.href"))
        assert pdf.status == 200 and pdf.body().startswith(b"%PDF")
        assert pdf.headers["content-type"] == "application/pdf"
        assert pdf.headers["content-disposition"].startswith("inline")

        page = d.go("/center/stock?day=2026-13-01")
        assert "日期应为 YYYY-MM-DD" in page.inner_text("main")
    assert [e[2]["quantity"] for e in events(db, "stock.received")] == [10, 100]
    assert len(events(db, "stock.test")) == 1
