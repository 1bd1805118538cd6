"""``sscard registry pay-fee|waive-fee|fees`` as a counter clerk and a supervisor run them
(docs/service.md "Fees and receipts"): real subprocesses (clock pinned by faketime) against a
registry on SQLite or PostgreSQL. A fee is paid with a receipt number or waived with a reason
and a second operator's confirmation; every refusal exits non-zero with a clear message and
writes nothing; the day's report sums what was done and writes its PDF; the 领卡证明
reprinted shows the fee's settlement."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from personalize.policy import load_policy
from personalize.registry import Registry
from personalize.roles import Role
from simulator.factory import SAMPLE_HOLDER
from sscard.identifiers import ssn_check
from tests.audit_key import AUDIT_KEY, HSM_ENV
from tests.clock import FAKETIME, pinned_clock
from tests.conftest import NewDatabase
from tests.operators import confirm, login
from tests.stores import behind_its_back

POLICY = load_policy("default")


def sscard(
    db: str, *args: str, session: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FAKETIME, sys.executable, "-m", "personalize.cli", "registry", *args, "--db", db],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": os.environ["PATH"], "HOME": str(Path.cwd()), **HSM_ENV, **(session or {})},
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def lost_cards(db: str, n: int) -> list[str]:
    """``n`` holders whose cards are formally lost: their card numbers."""
    registry = Registry(db, POLICY, clock=pinned_clock, audit_key=AUDIT_KEY)
    try:
        numbers = []
        for i in range(n):
            number = registry.allocate_card_number()
            first17 = f"11010519491231{2 * (i + 1):03d}"
            holder = replace(SAMPLE_HOLDER, ssn=first17 + ssn_check(first17))
            registry.enroll(holder, number, operator="op")
            registry.formalize_loss(number, operator="op", evidence="居民身份证")
            numbers.append(number)
        return numbers
    finally:
        registry.close()


def written(db: str) -> tuple[int, int]:
    """(settlements, fee audit events)."""
    registry = Registry(db, POLICY, clock=pinned_clock, audit_key=AUDIT_KEY)
    try:
        rows = registry.db.execute("SELECT COUNT(*) FROM fee_settlements").scalar()
        events = registry.db.execute(
            "SELECT COUNT(*) FROM audit_events WHERE action IN ('fee.paid', 'fee.waived')"
        ).scalar()
        return int(rows), int(events)
    finally:
        registry.close()


def pdf_text(path: Path) -> str:
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def test_pay_waive_refuse_and_the_days_report(new_db: NewDatabase, tmp_path: Path) -> None:
    db = new_db("fees_cli")
    clerk = login(db, "ct1", Role.COUNTER)
    cards = lost_cards(db, 3)
    for n, card in enumerate(cards, 1):
        out = json.loads(
            ok(sscard(db, "request-reissue", card, "--out", str(tmp_path / f"c{n}.pdf"),
                      "--json", session=clerk))
        )  # fmt: skip
        assert (out["request"], out["fee"]) == (n, POLICY.fee_reissue)
    assert "20 元（未收）" in pdf_text(tmp_path / "c1.pdf")  # the certificate: not paid yet

    paid = json.loads(
        ok(sscard(db, "pay-fee", "SSCARD-REQ-000001", "--receipt", "SH-0001", "--amount", "20",
                  "--json", session=clerk))
    )  # fmt: skip
    assert (paid["outcome"], paid["receipt_no"], paid["operator"]) == ("paid", "SH-0001", "ct1")
    # the CLI's clock starts at the pinned instant and runs on (tests/clock.py): the second
    # depends on how long the process took to start
    assert paid["at"].startswith("2026-11-25T17:30:") and paid["at"].endswith("+08:00")
    text = ok(sscard(db, "waive-fee", "2", "--reason", "低保对象", *confirm(db), session=clerk))
    assert "SSCARD-REQ-000002 工本费 20 元免收（低保对象；批准人 sup2）" in text

    before = written(db)
    refusals = [
        (("pay-fee", "3", "--receipt", "SH-0001", "--amount", "20"), 1, "收据号 SH-0001 已用于"),
        (("pay-fee", "3", "--receipt", "SH-0002", "--amount", "10"), 1, "与工本费 20 元不符"),
        (("pay-fee", "1", "--receipt", "SH-0003", "--amount", "20"), 1, "不能重复办理"),
        (("pay-fee", "99", "--receipt", "SH-0004", "--amount", "20"), 1, "没有申请 99"),
        (("pay-fee", "REQ-3", "--receipt", "SH-0004", "--amount", "20"), 2, "申请编号须如"),
        (("pay-fee", "3", "--receipt", "SH-0004", "--amount", "二十"), 2, "金额须为整数元"),
        (("waive-fee", "3", "--reason", "低保对象"), 1, "须由另一位主管复核"),
        (("waive-fee", "3", "--reason", " ", *confirm(db)), 1, "免收须说明原因"),
        (("waive-fee", "1", "--reason", "低保对象", *confirm(db)), 1, "不能重复办理"),
    ]  # fmt: skip
    for args, status, message in refusals:
        result = sscard(db, *args, session=clerk)
        assert result.returncode == status, (args, result.stdout, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr, result.stderr
    own = sscard(db, "waive-fee", "3", "--reason", "低保", "--confirm-session",
                 clerk["SSCARD_SESSION"], session=clerk)  # fmt: skip
    assert own.returncode == 1 and "复核人须为另一位操作员" in own.stderr, own.stderr
    auditor = login(db, "au1", Role.AUDITOR)
    denied = sscard(db, "pay-fee", "3", "--receipt", "SH-9", "--amount", "20", session=auditor)
    assert denied.returncode == 1 and "无权收取工本费" in denied.stderr, denied.stderr
    assert written(db) == before

    pdf = tmp_path / "工本费日报.pdf"
    report = json.loads(
        ok(sscard(db, "fees", "--day", "2026-11-25", "--pdf", str(pdf), "--json"))
    )  # reading needs no session
    assert report["reconciled"] and report["discrepancies"] == []
    total = report["total"]
    assert (total["paid"], total["paid_sum"], total["waived"], total["waived_sum"]) == (
        1,
        20,
        1,
        20,
    )
    assert (total["outstanding"], total["outstanding_sum"]) == (1, 20)
    assert [s["receipt_no"] for s in report["settlements"]] == ["SH-0001", None]
    assert [u["request_no"] for u in report["outstanding"]] == ["SSCARD-REQ-000003"]
    text = pdf_text(pdf)
    assert "收据号 SH-0001" in text and "免收：低保对象（批准人 sup2）" in text
    assert "SSCARD-REQ-000003 补卡" in text and "无差异" in text
    human = ok(sscard(db, "fees", "--day", "2026-11-25"))
    assert "补卡\t1\t20\t1\t20\t1\t20" in human and "合计\t1\t20\t1\t20\t1\t20" in human

    reprinted = tmp_path / "补打.pdf"
    ok(sscard(db, "reprint", "1", "--out", str(reprinted), *confirm(db), session=clerk))
    assert "20 元（已收，收据号 SH-0001）" in pdf_text(reprinted)
    ok(sscard(db, "reprint", "2", "--out", str(reprinted), *confirm(db), session=clerk))
    assert "20 元（免收，批准人 sup2）" in pdf_text(tmp_path / "补打-2.pdf")

    # a receipt's amount changed behind sscard's back: listed, exit status 1
    behind_its_back(db, "UPDATE fee_settlements SET amount = 2 WHERE receipt_no = 'SH-0001'")
    broken = sscard(db, "fees", "--day", "2026-11-25")
    assert broken.returncode == 1, broken.stderr
    assert "SSCARD-REQ-000001：已收 2 元，工本费 20 元" in broken.stdout
