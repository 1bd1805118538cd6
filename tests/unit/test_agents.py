"""Agents (委托代办, docs/business-rules.md "Agents (委托代办)"): the transition table lets an
agent apply for a 补卡 and a 换卡 with both IDs, never 解挂 nor a PIN service (珠海: "…服务网点
办理(不可代办)"); the agent's identity and the documents they showed are recorded on the
request and printed, masked, on its 领卡证明 — in SQLite and PostgreSQL (``new_db``)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from personalize.documents import collection_certificate, collection_certificate_bytes
from personalize.lifecycle import ACTIONS, TRANSITIONS, TransitionRefused, lookup
from personalize.policy import load_policy
from personalize.registry import AGENT_DOCUMENTS, Agent, Registry, RegistryError
from simulator.factory import SAMPLE_HOLDER
from sscard.errors import InvalidData
from tests.audit_key import AUDIT_KEY
from tests.clock import pinned_clock
from tests.conftest import NewDatabase

POLICY = load_policy("default")
AGENT = Agent("李四", "110105198001010016")
MASKED = "110105********0016"
PIN_SERVICES = ("change_pin", "unblock_pin", "reset_pin")


def test_an_agent_may_apply_for_a_reissue_or_a_replacement_never_unreport_or_pins() -> None:
    by_action: dict[str, set[bool]] = {}
    for t in TRANSITIONS:
        if t.subject in ("card", "pin"):  # who is at the counter: a card's or a PIN's rows
            by_action.setdefault(t.action, set()).add(t.agent)
    assert by_action["request_reissue"] == {True} and by_action["request_replacement"] == {True}
    assert by_action["unreport"] == {False}
    for action in PIN_SERVICES:  # every PIN service is in the table, none by an agent
        assert by_action[action] == {False}
        with pytest.raises(TransitionRefused, match=f"{ACTIONS[action].label}须持卡人本人办理"):
            lookup("pin", None, action, agent=True)
        assert lookup("pin", None, action).target  # the holder in person


def test_the_documents_are_kept_and_an_older_request_without_them_reads_back() -> None:
    assert Agent.from_text(AGENT.as_text()) == AGENT and AGENT.documents == AGENT_DOCUMENTS
    older = '{"name": "李四", "id_number": "110105198001010016"}'  # recorded before this
    assert Agent.from_text(older) == Agent("李四", AGENT.id_number, "")
    assert AGENT.masked() == f"李四 {MASKED}（{AGENT_DOCUMENTS}）"
    with pytest.raises(InvalidData, match="所验证件"):
        Agent("李四", AGENT.id_number, " ").check()


def registry(new_db: NewDatabase) -> Registry:
    r = Registry(new_db("r"), POLICY, clock=pinned_clock, audit_key=AUDIT_KEY)
    r.enroll(SAMPLE_HOLDER, "H00000012", operator="op1")
    return r


def pdftext(pdf: bytes, path: Path) -> str:
    path.write_bytes(pdf)
    return subprocess.run(
        ["pdftotext", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def test_an_agents_replacement_is_recorded_and_printed_masked(
    new_db: NewDatabase, tmp_path: Path
) -> None:
    r = registry(new_db)
    shown = Agent("李四", AGENT.id_number, "委托书、双方户口簿原件")
    request = r.request_reissue(
        "H00000012", operator="op1", kind="replacement", fee=20, agent=shown
    )
    assert Agent.from_text(request.agent) == shown
    assert r.card("H00000012").status == "replacement_pending"
    [history] = [h.evidence for h in r.history(r.card("H00000012").id) if h.to_status ==
                 "replacement_pending"]  # fmt: skip
    assert history == f"代办人 agent 李四 {MASKED}（委托书、双方户口簿原件）"
    text = pdftext(collection_certificate_bytes(collection_certificate(r, request.id)),
                   tmp_path / "c.pdf")  # fmt: skip
    assert "换卡" in text and f"李四（{MASKED}）" in text and "委托书、双方户口簿原件" in text
    assert "代办人签字" in text and AGENT.id_number not in text
    details = r.db.execute(
        "SELECT details FROM audit_events WHERE action = 'request.replacement'"
    ).fetchone()["details"]
    assert '"agent": true' in details and AGENT.id_number not in details


def test_an_agent_refused_a_replacement_of_a_lost_card_writes_nothing(
    new_db: NewDatabase,
) -> None:
    r = registry(new_db)
    r.formalize_loss("H00000012", operator="op1", evidence="ID")
    events = r.db.execute("SELECT COUNT(*) FROM audit_events").fetchone()[0]
    with pytest.raises(RegistryError, match="不能换卡"):
        r.request_reissue("H00000012", operator="op1", kind="replacement", agent=AGENT)
    assert r.card("H00000012").status == "formal_loss"
    assert r.db.execute("SELECT COUNT(*) FROM reissue_requests").fetchone()[0] == 0
    assert r.db.execute("SELECT COUNT(*) FROM audit_events").fetchone()[0] == events


def test_the_registry_refuses_an_agent_a_pin_service_before_checking_them(
    new_db: NewDatabase,
) -> None:
    r = registry(new_db)
    bad = Agent("李四", "110105198001010019")  # wrong check character: not even looked at
    for action in PIN_SERVICES:
        with pytest.raises(RegistryError, match="不能委托代办"):
            r.rule("pin", None, action, agent=bad)
