"""Agents (委托代办) through the command line (docs/business-rules.md "Agents (委托代办)"),
each command a subprocess, on SQLite and PostgreSQL: an agent formalizes the loss and
applies for the 补卡 with the documents they showed, and the 领卡证明 prints them masked; an
agent's 解挂, an agent named by half, an agent's wrong ID number: refused, nothing written;
the agent's full ID number in no output and no audit event. (换卡 by an agent and the PIN
services: tests/integration/test_street_office.py, through pcscd.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from personalize.policy import load_policy
from personalize.registry import Registry
from personalize.roles import Role
from simulator.factory import SAMPLE_HOLDER
from tests.audit_key import AUDIT_KEY, HSM_ENV
from tests.clock import FAKETIME, pinned_clock
from tests.conftest import NewDatabase
from tests.operators import login

POLICY = load_policy("default")
NUMBER = "H00000012"
AGENT_ID = "110105198001010016"  # 李四
AGENT = ("--agent-name", "李四", "--agent-id", AGENT_ID)
MASKED = "110105********0016"


def sscard(db: str, session: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FAKETIME, sys.executable, "-m", "personalize.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "SSCARD_DB": db, **HSM_ENV, **session},
    )


def snapshot(db: str) -> tuple[object, ...]:
    """The card's status, the requests and the audit events other than refusals."""
    registry = Registry(db, POLICY, clock=pinned_clock, audit_key=AUDIT_KEY)
    try:
        one = registry.db.execute
        return (
            registry.card(NUMBER).status,
            one("SELECT COUNT(*) FROM reissue_requests").fetchone()[0],
            one("SELECT COUNT(*) FROM audit_events WHERE action NOT LIKE '%refused'").fetchone()[0],
        )
    finally:
        registry.close()


def test_an_agent_applies_for_the_reissue_and_is_refused_the_unreport(
    new_db: NewDatabase, tmp_path: Path
) -> None:
    db = new_db("registry")
    registry = Registry(db, POLICY, clock=pinned_clock, audit_key=AUDIT_KEY)
    registry.enroll(SAMPLE_HOLDER, NUMBER, operator="setup")
    registry.close()
    op = login(db, "op7", Role.COUNTER)
    outputs: list[str] = []

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        done = sscard(db, op, *args)
        outputs.append(done.stdout + done.stderr)
        return done

    assert run("registry", "report-loss", NUMBER).returncode == 0
    before = snapshot(db)
    refusals = (
        (("registry", "unreport", NUMBER, "--evidence", "身份证原件", *AGENT),
         "解挂须持卡人本人办理"),
        (("registry", "formalize-loss", NUMBER, "--evidence", "身份证原件", *AGENT[:2]),
         "须同时给出 --agent-name 和 --agent-id"),
        (("registry", "formalize-loss", NUMBER, "--evidence", "身份证原件", *AGENT[:3],
          AGENT_ID[:-1] + "9"), "代办人证件号码"),
    )  # fmt: skip
    for args, reason in refusals:
        refused = run(*args)
        assert refused.returncode == 1 and reason in refused.stderr, refused.stderr
        assert snapshot(db) == before

    formal = run("registry", "formalize-loss", NUMBER, "--evidence", "双方身份证原件", *AGENT)
    assert formal.returncode == 0, formal.stderr
    pdf = tmp_path / "cert.pdf"
    made = run("registry", "request-reissue", NUMBER, "--out", str(pdf), "--json", *AGENT,
               "--agent-documents", "双方身份证原件及复印件、委托书")  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["certificate"] == str(pdf)
    printed = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                             check=True).stdout  # fmt: skip
    printed = " ".join(printed.split())
    assert "补卡" in printed and f"李四（{MASKED}）" in printed and "委托书" in printed
    assert "代办人签字" in printed
    registry = Registry(db, POLICY, clock=pinned_clock, audit_key=AUDIT_KEY)
    try:
        evidence = [h.evidence for h in registry.history(registry.card(NUMBER).id)]
        details = [r[0] for r in registry.db.execute("SELECT details FROM audit_events")]
    finally:
        registry.close()
    assert evidence[-1] == f"代办人 agent 李四 {MASKED}（双方身份证原件及复印件、委托书）"
    for text in [*outputs, *details, printed]:
        assert AGENT_ID not in text and AGENT_ID[:-1] + "9" not in text
