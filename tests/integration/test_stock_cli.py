"""``sscard stock receive|test-card|levels|report`` as a card-center operator runs them
(docs/service.md "Card stock"): real subprocesses (clock pinned by faketime) against a
registry on SQLite or PostgreSQL. Deliveries and test cards need a session whose role may
do them and are audited; bad input and a refused role write nothing; the day's report
prints, writes its PDF, and exits 1 when it lists a discrepancy."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from personalize.policy import load_policy
from personalize.registry import Registry
from personalize.roles import Role
from tests.audit_key import AUDIT_KEY, HSM_ENV
from tests.cli import run_sscard
from tests.clock import FAKETIME_ENV, pinned_clock
from tests.conftest import NewDatabase
from tests.operators import login

POLICY = load_policy("default")


def sscard(
    db: str, *args: str, session: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run_sscard(
        "stock",
        *args,
        "--db",
        db,
        env={
            "PATH": os.environ["PATH"],
            "HOME": str(Path.cwd()),
            **FAKETIME_ENV,
            **HSM_ENV,
            **(session or {}),
        },
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def stock_events(db: str) -> list[tuple[str, str]]:
    registry = Registry(db, POLICY, clock=pinned_clock, audit_key=AUDIT_KEY)
    try:
        rows = registry.db.execute(
            "SELECT operator, action FROM audit_events WHERE action LIKE 'stock.%' ORDER BY id"
        )
        return [(r["operator"], r["action"]) for r in rows]
    finally:
        registry.close()


def test_receive_test_card_levels_and_the_days_report(new_db: NewDatabase, tmp_path: Path) -> None:
    db = new_db("stock_cli")
    center = login(db, "cc1", Role.CARD_CENTER)
    moved = json.loads(
        ok(
            sscard(
                db, "receive", "--station", "st-1", "--count", "50", "--batch",
                "B2026-11 H0000001-H0000050", "--json", session=center,
            )
        )
    )  # fmt: skip
    assert (moved["kind"], moved["quantity"], moved["operator"]) == ("received", 50, "cc1")
    # the CLI's clock starts at the pinned instant and runs on (tests/clock.py): the second
    # depends on how long the process took to start
    assert moved["at"].startswith("2026-11-25T17:30:") and moved["at"].endswith("+08:00")
    text = ok(
        sscard(db, "test-card", "--station", "st-1", "--reason", "新色带试打", session=center)
    )
    assert "工位 st-1：领用测试卡 1 张，原因 新色带试打" in text
    levels = json.loads(ok(sscard(db, "levels", "--json")))  # reading needs no session
    assert levels["stations"] == [
        {"station": "st-1", "received": 50, "personalized": 0, "rejected": 0, "test": 1,
         "on_hand": 49}
    ]  # fmt: skip
    assert stock_events(db) == [("cc1", "stock.received"), ("cc1", "stock.test")]

    pdf = tmp_path / "日结.pdf"
    report = json.loads(
        ok(sscard(db, "report", "--day", "2026-11-25", "--pdf", str(pdf), "--json"))
    )
    assert report["reconciled"] and report["discrepancies"] == []
    (day,) = report["stations"]
    assert (day["opening"], day["received"], day["test"], day["closing"]) == (0, 50, 1, 49)
    assert report["pdf"] == str(pdf) and pdf.read_bytes().startswith(b"%PDF")
    # the next day opens with the closing stock; the PDF is never written over
    text = ok(sscard(db, "report", "--day", "2026-11-26", "--pdf", str(pdf)))
    assert "st-1\t49\t0\t0\t0\t0\t49" in text and "无差异" in text
    assert "日结-2.pdf" in text


def test_bad_input_and_a_refused_role_write_nothing(new_db: NewDatabase) -> None:
    db = new_db("stock_cli_bad")
    center = login(db, "cc1", Role.CARD_CENTER)
    counter = login(db, "ct1", Role.COUNTER)
    cases = [
        (("receive", "--station", "st-1", "--count", "0", "--batch", "B1"), 2, "须为正整数"),
        (("receive", "--station", "st-1", "--count", "-3", "--batch", "B1"), 2, "须为正整数"),
        (("receive", "--station", "st-1", "--count", "9", "--batch", " "), 1, "批次或卡号段不能"),
        (("test-card", "--station", "st-1", "--reason", ""), 1, "领用原因不能为空"),
        (("report", "--day", "2026/11/25"), 2, "日期格式须为 YYYY-MM-DD"),
        (("report", "--day", "2026-02-30"), 2, "日期格式须为 YYYY-MM-DD"),
    ]  # fmt: skip
    for args, status, message in cases:
        result = sscard(db, *args, session=center)
        assert result.returncode == status, (args, result.stdout, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr, result.stderr
    refused = sscard(
        db, "receive", "--station", "st-1", "--count", "10", "--batch", "B1", session=counter
    )
    assert refused.returncode == 1 and "无权入库空白卡" in refused.stderr, refused.stderr
    none = sscard(db, "receive", "--station", "st-1", "--count", "10", "--batch", "B1")
    assert none.returncode == 1 and "未登录" in none.stderr, none.stderr
    assert "没有库存记录" in ok(sscard(db, "levels"))
    assert stock_events(db) == [("ct1", "stock.receive.refused"), ("-", "stock.receive.refused")]


def test_a_day_that_does_not_reconcile_is_printed_and_exits_1(new_db: NewDatabase) -> None:
    db = new_db("stock_cli_neg")
    center = login(db, "cc1", Role.CARD_CENTER)
    ok(sscard(db, "test-card", "--station", "st-9", "--reason", "校准", session=center))
    result = sscard(db, "report", "--day", "2026-11-25", "--station", "st-9")
    assert result.returncode == 1, result.stderr
    assert "工位 st-9：库存曾为负（最低 -1）" in result.stdout
    assert "st-9\t0\t0\t0\t0\t1\t-1" in result.stdout
    levels = ok(sscard(db, "levels"))
    assert "st-9\t0\t0\t0\t1\t-1\t库存为负 (below zero)" in levels
