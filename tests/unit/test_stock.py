"""Card stock and the daily reconciliation (issue 16; docs/business-rules.md "Card stock"), on
a real SQLite file and a real PostgreSQL server: deliveries and test cards are audited
movements; an activation and a cancelled job's fed card are movements written in the
transaction of the change; the day's report is per local day, adds up, is checked against
the job records, and lists every discrepancy (and a station below zero) instead of hiding
it. Bad input is refused with nothing written."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest

from personalize.jobs import end_job
from personalize.policy import load_policy
from personalize.registry import Registry, RegistryError
from personalize.stock import (
    MoveKind,
    StockError,
    day_report,
    day_report_pdf,
    receive_stock,
    stock_levels,
    take_test_card,
)
from simulator.factory import SAMPLE_HOLDER
from sscard.identifiers import ssn_check
from tests.audit_key import AUDIT_KEY
from tests.clock import PINNED, MovingClock
from tests.conftest import NewDatabase
from tests.stores import inserts_fail, running_job

POLICY = load_policy("default")
DAY = date(2026, 11, 25)  # PINNED is 17:30 of this day in Shanghai
STATION = "st-1"


@pytest.fixture
def registry(new_db: NewDatabase, clock: MovingClock) -> Iterator[Registry]:
    registry = Registry(new_db("stock"), POLICY, clock=clock, audit_key=AUDIT_KEY)
    yield registry
    registry.close()


def events(registry: Registry, action: str) -> list[tuple[str, str]]:
    rows = registry.db.execute(
        "SELECT operator, subject FROM audit_events WHERE action = ? ORDER BY id", (action,)
    )
    return [(r["operator"], r["subject"]) for r in rows]


def fed_job(registry: Registry, sn: str, *, evidence: bool = True) -> tuple[int, int]:
    """A running job of ``STATION`` (token 1) whose new card ``sn`` was fed (and, with
    ``evidence``, written, verified, encoded and printed): (job id, new card id)."""
    number = registry.allocate_card_number()
    first17 = f"11010519491231{2 * (int(sn, 16) % 500):03d}"  # one holder per job (female)
    registry.enroll(replace(SAMPLE_HOLDER, ssn=first17 + ssn_check(first17)), number, operator="op")
    registry.formalize_loss(number, operator="op", evidence="ID")
    registry.request_reissue(number, operator="op")
    return running_job(registry, number, sn, STATION, evidence=evidence)


def test_a_delivery_and_a_test_card_are_audited_movements(registry: Registry) -> None:
    move = receive_stock(registry, STATION, 500, batch="B2026-11 0000001-0000500", operator="cc1")
    assert (move.kind, move.quantity, move.batch, move.operator) == (
        MoveKind.RECEIVED,
        500,
        "B2026-11 0000001-0000500",
        "cc1",
    )
    test = take_test_card(registry, STATION, reason="新色带试打", operator="cc2")
    assert (test.kind, test.quantity, test.reason) == (MoveKind.TEST, 1, "新色带试打")
    (level,) = stock_levels(registry)
    assert (level.station, level.received, level.test, level.on_hand) == (STATION, 500, 1, 499)
    assert events(registry, "stock.received") == [("cc1", f"station/{STATION}")]
    assert events(registry, "stock.test") == [("cc2", f"station/{STATION}")]
    assert move.audit_event < test.audit_event
    assert registry.verify_audit()[1] == []


BAD_INPUT = {
    "zero": (
        lambda r: receive_stock(r, STATION, 0, batch="B1", operator="cc1"),
        "入库数量须为正整数",
    ),
    "negative": (
        lambda r: receive_stock(r, STATION, -5, batch="B1", operator="cc1"),
        "入库数量须为正整数",
    ),
    "no batch": (
        lambda r: receive_stock(r, STATION, 10, batch="  ", operator="cc1"),
        "批次或卡号段不能为空",
    ),
    "long batch": (
        lambda r: receive_stock(r, STATION, 10, batch="B" * 201, operator="cc1"),
        "批次或卡号段过长",
    ),
    "no station": (lambda r: receive_stock(r, "", 10, batch="B1", operator="cc1"), "工位不能为空"),
    "no reason": (
        lambda r: take_test_card(r, STATION, reason=" ", operator="cc1"),
        "领用原因不能为空",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_refused_and_nothing_is_written(registry: Registry, case: str) -> None:
    act, message = BAD_INPUT[case]
    before = registry.db.execute("SELECT COUNT(*) FROM audit_events").scalar()
    with pytest.raises(StockError, match=message):
        act(registry)
    assert registry.stock.moves() == []
    assert registry.db.execute("SELECT COUNT(*) FROM audit_events").scalar() == before


def test_an_activation_is_one_personalized_movement_in_its_transaction(
    registry: Registry,
) -> None:
    job, card = fed_job(registry, "AA01")
    registry.activate(card, operator="cc1", job_id=job, fence=1)
    (move,) = registry.stock.moves()
    assert (move.kind, move.station, move.job_id, move.sn, move.operator) == (
        MoveKind.PERSONALIZED,
        STATION,
        job,
        "AA01",
        "cc1",
    )
    # an activation refused (no evidence) writes no movement either
    job, card = fed_job(registry, "AA02", evidence=False)
    with pytest.raises(RegistryError, match="拒绝启用"):
        registry.activate(card, operator="cc1", job_id=job, fence=1)
    assert len(registry.stock.moves()) == 1
    assert registry.verify_audit()[1] == []


def test_a_failed_ledger_write_undoes_the_activation_and_the_write_off(
    registry: Registry,
) -> None:
    """One transaction: when the movement cannot be written, the change it records is not
    made either — the card stays 制卡中, the job keeps running."""
    job, card = fed_job(registry, "CC01")
    with inserts_fail(registry.db, "stock_moves", "ledger disk full"):
        with pytest.raises(RegistryError, match="ledger disk full"):
            registry.activate(card, operator="cc1", job_id=job, fence=1)
        assert registry.card_by_id(card).status == "personalizing"
        with pytest.raises(RegistryError, match="ledger disk full"):
            end_job(registry, job, "cancel", operator="cc1", reason="撤回", station=STATION)
        assert registry.job(job).status == "running"
    assert registry.card_by_id(card).status == "personalizing"
    assert registry.stock.moves() == [] and registry.verify_audit()[1] == []
    registry.activate(card, operator="cc1", job_id=job, fence=1)
    assert [m.kind for m in registry.stock.moves()] == [MoveKind.PERSONALIZED]


def test_a_cancelled_jobs_fed_card_is_one_rejected_movement(registry: Registry) -> None:
    job, _ = fed_job(registry, "AA03")
    end_job(registry, job, "cancel", operator="cc1", reason="持卡人撤回申请", station=STATION)
    (move,) = registry.stock.moves()
    assert (move.kind, move.reason, move.detail, move.sn) == (
        MoveKind.REJECTED,
        "作业取消",
        "持卡人撤回申请",
        "AA03",
    )
    report = day_report(registry, DAY)
    (day,) = report.stations
    assert (day.rejected, day.jobs_rejected) == (1, 1)
    assert [(r.reason, r.count) for r in day.rejected_by_reason] == [("作业取消", 1)]


def test_the_day_is_the_regions_local_day_and_the_counts_add_up(
    registry: Registry, clock: MovingClock
) -> None:
    receive_stock(registry, STATION, 100, batch="B1", operator="cc1")
    receive_stock(registry, "st-2", 20, batch="B2", operator="cc1")
    job, card = fed_job(registry, "BB01")
    registry.activate(card, operator="cc1", job_id=job, fence=1)
    take_test_card(registry, STATION, reason="校准", operator="cc1")
    # 00:30 of the next day in Shanghai (16:30 UTC the same day): the next day's
    clock.now = PINNED.replace(hour=16, minute=30)
    take_test_card(registry, STATION, reason="校准", operator="cc1")
    receive_stock(registry, "st-2", 5, batch="B3", operator="cc1")

    first = day_report(registry, DAY)
    assert first.reconciled, first.discrepancies
    one, two = first.stations
    assert (one.station, one.opening, one.received, one.personalized, one.test, one.closing) == (
        STATION,
        0,
        100,
        1,
        1,
        98,
    )
    assert (one.jobs_personalized, one.jobs_rejected) == (1, 0)
    assert (two.station, two.closing) == ("st-2", 20)
    assert (first.total.received, first.total.closing) == (120, 118)

    second = day_report(registry, DAY + timedelta(days=1))
    assert second.reconciled, second.discrepancies
    one, two = second.stations
    assert (one.opening, one.test, one.personalized, one.closing) == (98, 1, 0, 97)
    assert (two.opening, two.received, two.closing) == (20, 5, 25)
    only = day_report(registry, DAY + timedelta(days=1), station="st-2")
    assert [s.station for s in only.stations] == ["st-2"] and only.total.closing == 25
    assert [(s.station, s.on_hand) for s in stock_levels(registry)] == [(STATION, 97), ("st-2", 25)]


def test_a_mismatch_with_the_jobs_and_a_station_below_zero_are_listed(
    registry: Registry, tmp_path: Path
) -> None:
    # a rejected card in the ledger that no job wrote off, and a card used before any
    # delivery: neither is refused, both are reported
    registry.record_stock(
        MoveKind.REJECTED, STATION, 1, operator="cc1", reason="写芯片不合格", detail="?"
    )
    take_test_card(registry, "st-9", reason="试打", operator="cc1")
    report = day_report(registry, DAY)
    assert not report.reconciled
    found = "\n".join(report.discrepancies)
    assert "工位 st-1：台账废卡 1 张，作业记录报废 0 张" in found
    assert "工位 st-9：库存曾为负（最低 -1）" in found
    assert [d for d in report.discrepancies if "期末" in d] == []  # the sums themselves add up
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(day_report_pdf(report))
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "社会保障卡空白卡库存日结对账表" in text and "2026年11月25日" in text
    assert "台账废卡 1 张" in text and "库存曾为负" in text
    assert "写芯片不合格" in text
    subprocess.run(["pdftoppm", "-png", "-r", "100", str(pdf), str(tmp_path / "page")], check=True)
    shots = Path("/work/shots/stock")
    shots.mkdir(parents=True, exist_ok=True)
    for png in tmp_path.glob("page*.png"):
        shutil.copy(png, shots / f"stock-day-discrepancies-{registry.db.dialect}.png")
