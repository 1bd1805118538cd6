"""``sscard registry withdraw`` as a counter clerk and a supervisor run it (docs/service.md
"Withdrawing a request"): real subprocesses (clock pinned by faketime) against a registry on
SQLite or PostgreSQL. A 换领 typed wrong is withdrawn under dual control and applied for again
with the right data; a 补卡 whose fee was paid, a request withdrawn twice, a withdrawal
without a confirmer or confirmed by the clerk themself are refused, exit non-zero with a clear
message and write nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path

from personalize.registry import Registry
from personalize.roles import Role
from tests.audit_key import AUDIT_KEY, HSM_ENV
from tests.cli import run_sscard
from tests.clock import faketime_env, pinned_clock
from tests.conftest import NewDatabase
from tests.operators import confirm, login
from tests.unit.test_identity_change import NEW_ID, OLD_ID, POLICY, enrolled

CHANGE = (
    "--old-name", "张三", "--old-id", OLD_ID, "--new-id", NEW_ID,
    "--certificate", "京公(海)变字2026第0815号", "--authority", "北京市公安局海淀分局",
    "--bureau-certificate", "京社更2026-0042",
)  # fmt: skip


def sscard(db: str, *args: str, session: dict[str, str]) -> tuple[int, str, str]:
    result = run_sscard(
        "registry", *args, "--db", db,
        env={"PATH": os.environ["PATH"], "HOME": str(Path.cwd()), **HSM_ENV, **session,
             **faketime_env("2026-11-25 09:30:00")},
    )  # fmt: skip
    return result.returncode, result.stdout, result.stderr


def state(db: str) -> tuple[object, ...]:
    """The requests' and cards' statuses and the number of audit events."""
    registry = Registry(db, POLICY, clock=pinned_clock, audit_key=AUDIT_KEY)
    try:
        return (
            tuple(tuple(r) for r in registry.db.execute("SELECT id, status FROM reissue_requests")),
            tuple(tuple(r) for r in registry.db.execute("SELECT id, status FROM cards")),
            registry.db.execute("SELECT COUNT(*) FROM audit_events").scalar(),
        )
    finally:
        registry.close()


def test_withdraw_a_change_and_apply_again(new_db: NewDatabase, tmp_path: Path) -> None:
    db = new_db("withdraw_cli")
    clerk = login(db, "ct1", Role.COUNTER)
    registry = Registry(db, POLICY, clock=pinned_clock, audit_key=AUDIT_KEY)
    try:
        card = enrolled(registry)
        lost = enrolled(registry, "440400194912310020", "李四")
        registry.formalize_loss(lost, operator="op", evidence="身份证")
    finally:
        registry.close()
    typo = (*CHANGE, "--new-name", "张参", "--out", str(tmp_path / "c1.pdf"))
    status, out, err = sscard(db, "change", card, *typo, session=clerk)
    assert status == 0, err

    status, out, err = sscard(
        db, "withdraw", "SSCARD-REQ-000001", "--reason", "新姓名录入错误", *confirm(db),
        "--json", session=clerk,
    )  # fmt: skip
    assert status == 0, err
    answer = json.loads(out)
    assert (answer["status"], answer["card_status"], answer["confirmed_by"]) == (
        "withdrawn",
        "active",
        "sup2",
    )
    again = (*CHANGE, "--new-name", "张叁", "--out", str(tmp_path / "c2.pdf"))
    status, out, err = sscard(db, "change", card, *again, session=clerk)
    assert status == 0 and "SSCARD-REQ-000002" in out, err

    status, out, err = sscard(db, "request-reissue", lost, "--out", str(tmp_path / "c3.pdf"),
                              session=clerk)  # fmt: skip
    assert status == 0, err
    status, out, err = sscard(db, "pay-fee", "3", "--receipt", "SH-1", "--amount", "20",
                              session=clerk)  # fmt: skip
    assert status == 0, err

    before = state(db)
    refusals = [
        (("withdraw", "1", "--reason", "重复", *confirm(db)), 1, "不能撤销：状态为 已撤销"),
        (("withdraw", "3", "--reason", "放弃", *confirm(db)), 1, "系统没有退费流程"),
        (("withdraw", "2", "--reason", "放弃"), 1, "须由另一位主管复核"),
        (("withdraw", "2", "--reason", " ", *confirm(db)), 1, "须说明原因"),
        (("withdraw", "99", "--reason", "放弃", *confirm(db)), 1, "没有申请 99"),
        (("withdraw", "REQ-2", "--reason", "放弃", *confirm(db)), 2, "申请编号须如"),
        (("withdraw", "2", "--reason", "放弃", "--confirm-session", clerk["SSCARD_SESSION"]),
         1, "复核人须为另一位操作员"),
    ]  # fmt: skip
    for args, code, message in refusals:
        status, out, err = sscard(db, *args, session=clerk)
        assert status == code, (args, out, err)
        assert message in err and "Traceback" not in err, err
    office = login(db, "of1", Role.OFFICE)
    status, out, err = sscard(db, "withdraw", "2", "--reason", "放弃", *confirm(db),
                              session=office)  # fmt: skip
    assert status == 1 and "无权撤销申请" in err, err
    assert state(db)[:2] == before[:2]  # only the refusals' own audit events were written
