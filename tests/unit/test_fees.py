"""Fees and receipts (issue 17; docs/business-rules.md "Fees and receipts"), on a real SQLite
file and a real PostgreSQL server: a request's fee is settled once, paid with a receipt
number or waived with a reason and an approver; every refusal writes nothing; the day's
report, per local day in the region's zone, sums paid, waived and outstanding fees per kind,
lists every receipt, and names every disagreement between the sums, the rows and the audit
chain."""

from __future__ import annotations

import subprocess
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image

from personalize.fee_report import fee_day_report, fee_day_report_pdf
from personalize.fees import FeeError, Outcome, fee_settlement, pay_fee, waive_fee
from personalize.identity_change import ChangeCertificate
from personalize.jobs import JobError, submit_job
from personalize.policy import POLICY_DIR, PolicyError, load_policy, policy_from_dict
from personalize.registry import Registry
from personalize.trackvault import TrackVault
from simulator.factory import SAMPLE_HOLDER, sample_photo
from sscard.identifiers import ssn_check
from sscard.profile import load_profile
from tests.audit_key import AUDIT_KEY
from tests.clock import PINNED, MovingClock
from tests.conftest import NewDatabase
from tests.stores import behind_its_back

POLICY = load_policy("default")
PROFILE = load_profile("default")
DAY = date(2026, 11, 25)  # PINNED is 17:30 of this day in Shanghai (UTC+8)


@pytest.fixture
def location(new_db: NewDatabase) -> str:
    return new_db("fees")


@pytest.fixture
def registry(location: str, clock: MovingClock) -> Iterator[Registry]:
    registry = Registry(location, POLICY, clock=clock, audit_key=AUDIT_KEY)
    yield registry
    registry.close()


def holder_card(registry: Registry, n: int) -> str:
    """A new holder (the ``n``th) with an enrolled card; the card's number."""
    number = registry.allocate_card_number()
    first17 = f"11010519491231{2 * n:03d}"
    registry.enroll(replace(SAMPLE_HOLDER, ssn=first17 + ssn_check(first17)), number, operator="op")
    return number


def reissue(registry: Registry, n: int) -> int:
    """A 补卡 request (the policy's fee) for a new holder's lost card; its id."""
    number = holder_card(registry, n)
    registry.formalize_loss(number, operator="op", evidence="ID")
    return registry.request_reissue(number, operator="op").id


def replacement(registry: Registry, n: int, fee: int) -> int:
    """A 换卡 request with the 验卡 verdict's ``fee``; its id."""
    number = holder_card(registry, n)
    return registry.request_reissue(number, operator="op", kind="replacement", fee=fee).id


def counts(registry: Registry) -> tuple[int, int]:
    """(settlements, audit events): what a refusal must leave as it was."""
    db = registry.db
    return (
        int(db.execute("SELECT COUNT(*) FROM fee_settlements").fetchone()[0]),
        int(db.execute("SELECT COUNT(*) FROM audit_events").fetchone()[0]),
    )


def test_a_fee_paid_with_a_receipt_is_an_audited_settlement(registry: Registry) -> None:
    request = reissue(registry, 1)
    paid = pay_fee(registry, request, receipt_no="SH2026-000123", amount=20, operator="clerk")
    assert (paid.outcome, paid.amount, paid.receipt_no, paid.operator) == (
        Outcome.PAID,
        20,
        "SH2026-000123",
        "clerk",
    )
    assert fee_settlement(registry, request) == paid
    event = registry.db.execute(
        "SELECT operator, details FROM audit_events WHERE action = 'fee.paid'"
    ).fetchone()
    assert event["operator"] == "clerk" and '"receipt_no": "SH2026-000123"' in event["details"]
    assert registry.verify_audit()[1] == []


def test_a_waiver_records_its_reason_and_approver_under_dual_control(registry: Registry) -> None:
    request = replacement(registry, 2, POLICY.fee_damage_human)
    waived = waive_fee(
        registry, request, reason="低保对象，凭低保证免收", approved_by="boss", operator="clerk"
    )
    assert (
        waived.outcome,
        waived.amount,
        waived.reason,
        waived.approved_by,
        waived.receipt_no,
    ) == (
        Outcome.WAIVED,
        POLICY.fee_damage_human,
        "低保对象，凭低保证免收",
        "boss",
        None,
    )
    actions = [
        r["action"]
        for r in registry.db.execute(
            "SELECT action FROM audit_events WHERE action IN ('dual_control.confirm',"
            " 'fee.waived') ORDER BY id"
        )
    ]
    assert actions == ["dual_control.confirm", "fee.waived"]
    assert registry.verify_audit()[1] == []


REFUSALS: dict[str, tuple[Callable[[Registry, int, int], object], str]] = {
    "receipt already used": (
        lambda r, req, other: pay_fee(r, req, receipt_no="R-1", amount=20, operator="clerk"),
        "收据号 R-1 已用于申请",
    ),
    "amount not the fee": (
        lambda r, req, other: pay_fee(r, req, receipt_no="R-2", amount=10, operator="clerk"),
        "与工本费 20 元不符",
    ),
    "bool amount": (
        lambda r, req, other: pay_fee(r, req, receipt_no="R-2", amount=True, operator="clerk"),
        "不符",
    ),
    "malformed receipt": (
        lambda r, req, other: pay_fee(r, req, receipt_no="R 2", amount=20, operator="clerk"),
        "收据号须为",
    ),
    "empty receipt": (
        lambda r, req, other: pay_fee(r, req, receipt_no=" ", amount=20, operator="clerk"),
        "收据号须为",
    ),
    "settled twice": (
        lambda r, req, other: pay_fee(r, other, receipt_no="R-3", amount=20, operator="clerk"),
        "工本费已办理（已收），不能重复办理",
    ),
    "waiver of a paid fee": (
        lambda r, req, other: waive_fee(r, other, reason="x", approved_by="boss", operator="c"),
        "不能重复办理",
    ),
    "waiver without reason": (
        lambda r, req, other: waive_fee(r, req, reason=" ", approved_by="boss", operator="c"),
        "免收须说明原因",
    ),
    "waiver without approver": (
        lambda r, req, other: waive_fee(r, req, reason="低保", approved_by="", operator="c"),
        "须由另一位操作员批准",
    ),
    "waiver approved by oneself": (
        lambda r, req, other: waive_fee(r, req, reason="低保", approved_by="c", operator="c"),
        "批准人须为另一位操作员",
    ),
    "unknown request": (
        lambda r, req, other: pay_fee(r, 999, receipt_no="R-4", amount=20, operator="clerk"),
        "没有申请 999",
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_every_refusal_writes_nothing(registry: Registry, case: str) -> None:
    request = reissue(registry, 3)
    other = reissue(registry, 4)
    pay_fee(registry, other, receipt_no="R-1", amount=20, operator="clerk")
    before = counts(registry)
    act, message = REFUSALS[case]
    with pytest.raises(FeeError, match=message):
        act(registry, request, other)
    assert counts(registry) == before
    assert fee_settlement(registry, request) is None


def test_a_request_without_a_fee_has_nothing_to_settle(registry: Registry) -> None:
    free = replacement(registry, 5, POLICY.fee_damage_usage)  # 非人为损坏: 0 yuan
    before = counts(registry)
    with pytest.raises(FeeError, match="无需缴费"):
        pay_fee(registry, free, receipt_no="R-9", amount=0, operator="clerk")
    with pytest.raises(FeeError, match="无需缴费"):
        waive_fee(registry, free, reason="x", approved_by="boss", operator="clerk")
    assert counts(registry) == before


def test_the_database_refuses_a_second_settlement_behind_the_registrys_back(
    registry: Registry, location: str
) -> None:
    """The one-settlement rule is the database's too (``request_id`` UNIQUE), not only the
    check made under the write lock."""
    request = reissue(registry, 6)
    pay_fee(registry, request, receipt_no="R-1", amount=20, operator="clerk")
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        behind_its_back(
            location,
            "INSERT INTO fee_settlements (request_id, outcome, amount, receipt_no, operator, at)"
            f" VALUES ({request}, 'paid', 20, 'R-2', 'x', '2026-11-25T10:00:00+00:00')",
        )


def a_day_across_midnight(registry: Registry, clock: MovingClock) -> dict[str, int]:
    """Requests and settlements around the region's midnight of DAY/DAY+1 (16:00 UTC):
    before DAY, on DAY (from 00:00 to 23:59 local time), and on the next day."""
    local_midnight = datetime(2026, 11, 25, 16, 0, tzinfo=PINNED.tzinfo)  # 00:00 Nov 26 local
    ids: dict[str, int] = {}
    clock.now = datetime(2026, 11, 24, 15, 30, tzinfo=PINNED.tzinfo)  # 23:30 Nov 24 local
    ids["earlier"] = reissue(registry, 10)  # applied the day before, paid on DAY
    ids["before"] = reissue(registry, 11)  # applied and paid the day before: not DAY's
    pay_fee(registry, ids["before"], receipt_no="R-0", amount=20, operator="clerk")
    clock.now = datetime(2026, 11, 24, 16, 0, 30, tzinfo=PINNED.tzinfo)  # 00:00:30 on DAY
    pay_fee(registry, ids["earlier"], receipt_no="R-1", amount=20, operator="clerk")
    clock.now = PINNED
    ids["paid"] = reissue(registry, 12)
    pay_fee(registry, ids["paid"], receipt_no="R-2", amount=20, operator="clerk")
    ids["waived"] = replacement(registry, 13, 20)
    waive_fee(registry, ids["waived"], reason="低保对象", approved_by="boss", operator="clerk")
    ids["owed"] = replacement(registry, 14, 20)  # never settled
    ids["free"] = replacement(registry, 15, 0)  # no fee: not outstanding
    clock.now = local_midnight - timedelta(seconds=30)  # 23:59:30 on DAY
    ids["late"] = reissue(registry, 16)  # applied on DAY, paid after midnight: outstanding
    clock.now = local_midnight + timedelta(seconds=30)  # 00:00:30 on the next day
    pay_fee(registry, ids["late"], receipt_no="R-3", amount=20, operator="clerk")
    ids["next"] = reissue(registry, 17)  # the next day's: not DAY's
    return ids


def test_the_days_report_sums_paid_waived_and_outstanding_per_kind(
    registry: Registry, clock: MovingClock
) -> None:
    ids = a_day_across_midnight(registry, clock)
    report = fee_day_report(registry, DAY)
    # in the lifecycle's order (补卡, 换卡, 换领), every kind even without a fee that day
    assert [d.kind for d in report.kinds] == ["reissue", "replacement", "change"]
    by_kind = {d.kind: d for d in report.kinds}
    reissued, replaced = by_kind["reissue"], by_kind["replacement"]
    assert (reissued.paid, reissued.paid_sum, reissued.waived, reissued.outstanding) == (
        2,
        40,
        0,
        1,
    )
    assert reissued.outstanding_sum == 20
    assert (replaced.paid, replaced.waived, replaced.waived_sum) == (0, 1, 20)
    assert (replaced.outstanding, replaced.outstanding_sum) == (1, 20)
    total = report.total
    assert (total.paid_sum, total.waived_sum, total.outstanding_sum) == (40, 20, 40)
    assert [s.receipt_no for s in report.settlements] == ["R-1", "R-2", None]
    assert [u.request_id for u in report.outstanding] == [ids["owed"], ids["late"]]
    assert report.reconciled, report.discrepancies
    # the day before: its own receipt; "earlier" was outstanding at its close
    before = fee_day_report(registry, DAY - timedelta(days=1))
    assert [s.receipt_no for s in before.settlements] == ["R-0"]
    assert [u.request_id for u in before.outstanding] == [ids["earlier"]]
    # the next day: the late payment; the next day's request outstanding
    after = fee_day_report(registry, DAY + timedelta(days=1))
    assert [s.receipt_no for s in after.settlements] == ["R-3"]
    assert [u.request_id for u in after.outstanding] == [ids["owed"], ids["next"]]


def test_a_settlement_changed_behind_the_registrys_back_is_a_listed_discrepancy(
    registry: Registry, clock: MovingClock, location: str
) -> None:
    a_day_across_midnight(registry, clock)
    behind_its_back(location, "UPDATE fee_settlements SET amount = 2 WHERE receipt_no = 'R-2'")
    behind_its_back(
        location,
        "INSERT INTO fee_settlements (request_id, outcome, amount, receipt_no, operator, at)"
        " SELECT id, 'paid', fee, 'FORGED', 'x', '2026-11-25T09:40:00+00:00'"
        " FROM reissue_requests WHERE kind = 'replacement' AND fee > 0 AND id NOT IN"
        " (SELECT request_id FROM fee_settlements)",
    )
    report = fee_day_report(registry, DAY)
    assert not report.reconciled
    text = "\n".join(report.discrepancies)
    assert "工本费 20 元 (the amount is not the request's fee)" in text
    assert "当日收费/免收审计事件 3 条，明细 4 笔" in text
    assert registry.verify_audit()[1] != []  # the audit sees both rows too


def test_the_pdf_lists_the_sums_receipts_and_outstanding_fees(
    registry: Registry, clock: MovingClock, tmp_path: Path
) -> None:
    ids = a_day_across_midnight(registry, clock)
    pdf = tmp_path / "fees.pdf"
    pdf.write_bytes(fee_day_report_pdf(fee_day_report(registry, DAY)))
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "社会保障卡工本费日报" in text and "2026年11月25日" in text
    assert "收据号 R-1" in text and "收据号 R-2" in text and "R-3" not in text
    assert "免收：低保对象（批准人 boss）" in text
    assert f"SSCARD-REQ-{ids['owed']:06d} 换卡" in text and "未收 20 元" in text
    assert "无差异" in text
    total = next(line for line in text.splitlines() if line.strip().startswith("合计"))
    assert total.split() == ["合计", "2", "40", "1", "20", "2", "40"]
    png = tmp_path / "fees"
    subprocess.run(["pdftoppm", "-png", "-r", "50", str(pdf), str(png)], check=True)
    with Image.open(tmp_path / "fees-1.png") as page:
        assert abs(page.height / page.width - 297 / 210) < 0.01  # one A4 page
        ink = page.convert("L").point(lambda v: 255 if v < 128 else 0)
        assert ink.getbbox() is not None  # printed on, not blank
        assert not (tmp_path / "fees-2.png").exists()


def test_a_region_that_wants_the_fee_first_refuses_the_job_until_it_is_settled(
    location: str, clock: MovingClock, tmp_path: Path
) -> None:
    """``fees.settle_before_job = true``: no job for an unpaid fee, nothing written; paid, the
    same submission is queued. The default (false) queues it unpaid (test_job_submission)."""
    strict = replace(POLICY, fee_settle_before_job=True)
    registry = Registry(location, strict, clock=clock, audit_key=AUDIT_KEY)
    try:
        request = reissue(registry, 20)
        number = registry.card_by_id(registry.request(request).old_card_id).card_number
        person = registry.person(registry.card(number).person_id)
        (tmp_path / "photo.jpg").write_bytes(sample_photo())
        job = {
            "old_card_number": number,
            "holder": {
                "ssn": person.ssn,
                "name": "张三",
                "gender": person.gender,
                "ethnicity": "01",
                "birthplace": "110105",
                "birth_date": "1949-12-31",
            },
            "photo": "photo.jpg",
        }
        vault = TrackVault.create(tmp_path / "tracks.key")
        jobs_before = registry.db.execute("SELECT COUNT(*) FROM jobs").scalar()
        with pytest.raises(JobError, match="的工本费 20 元未收：须先收费或免收"):
            submit_job(registry, PROFILE, vault, job, base_dir=tmp_path, operator="op")
        assert registry.db.execute("SELECT COUNT(*) FROM jobs").scalar() == jobs_before
        pay_fee(registry, request, receipt_no="R-7", amount=20, operator="clerk")
        queued = submit_job(registry, PROFILE, vault, job, base_dir=tmp_path, operator="op")
        assert registry.job(queued).request_id == request
    finally:
        registry.close()


def test_the_policy_flag_is_a_boolean() -> None:
    data = tomllib.loads((POLICY_DIR / "default.toml").read_text(encoding="utf-8"))
    assert load_policy("default").fee_settle_before_job is False  # the shipped default
    data["fees"]["settle_before_job"] = "yes"
    with pytest.raises(PolicyError, match=r"fees\.settle_before_job 须为 true 或 false"):
        policy_from_dict(data, "bad")


def test_a_change_costs_the_policys_change_fee_and_is_settled_as_any(
    location: str, clock: MovingClock
) -> None:
    """A 换领's fee is the region's ``[fees] change`` (review 17, finding 6; 上海: "再次办理
    社会保障卡需支付全额费用"), 0 in the shipped policy; paid and reported as any fee."""
    data = tomllib.loads((POLICY_DIR / "default.toml").read_text(encoding="utf-8"))
    assert POLICY.fee_change == 0 and data["fees"]["change"] == 0  # shipped: free
    assert policy_from_dict({**data, "fees": {**data["fees"], "change": 15}}, "x").fee_change == 15
    registry = Registry(location, replace(POLICY, fee_change=15), clock=clock, audit_key=AUDIT_KEY)
    try:
        number = holder_card(registry, 1)
        person = registry.person(registry.card(number).person_id)
        certificate = ChangeCertificate(
            number="京公(海)变字2026第0815号",
            authority="北京市公安局海淀分局",
            bureau_number="京社更2026-0042",
            old_name=person.name,
            old_id=person.ssn,
            new_name="张叁",
            new_id="",
        )
        request = registry.request_change(number, certificate, operator="op")
        assert registry.request(request.id).fee == 15
        pay_fee(registry, request.id, receipt_no="SH2026-000777", amount=15, operator="clerk")
        changed = {d.kind: d for d in fee_day_report(registry, DAY).kinds}["change"]
        assert (changed.paid, changed.paid_sum, changed.outstanding) == (1, 15, 0)
    finally:
        registry.close()
