"""Agents (委托代办) through the HTTP API (docs/business-rules.md "Agents (委托代办)", docs/api.md):
a real ``sscard serve`` on SQLite and PostgreSQL. An agent formalizes a loss and applies for
the 补卡; a 换卡 an agent brought to 验卡 is shown with them; both 领卡证明 PDFs print the agent
masked with the documents they showed — and an agent refused (解挂, a wrong ID number) leaves
nothing written."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from personalize.office import Office
from personalize.registry import AGENT_DOCUMENTS, Agent
from personalize.roles import ApiRole
from sscard.profile import load_profile
from tests.api_serve import SERVER_OUTPUT, serve_api
from tests.conftest import NewDatabase
from tests.integration.api_fixture import (
    POLICY,
    Api,
    api_world,
    card_number,
    open_registry,
    prepare,
    served_api,
)

COUNTER = ApiRole.COUNTER
AGENT = {"name": "李四", "id_number": "110105198001010016"}
MASKED = "李四 110105********0016"


@pytest.fixture
def api(new_db: NewDatabase) -> Iterator[Api]:
    yield from served_api(new_db("api"))


def pdftext(pdf: bytes, path: Path) -> str:
    path.write_bytes(pdf)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout  # fmt: skip
    return " ".join(text.split())


def written(api: Api) -> tuple[object, ...]:
    """What a refusal must leave: the cards' statuses, the requests and the audit events
    other than calls and refusals."""
    registry = api.registry()
    try:
        rows = registry.db.execute("SELECT card_number, status FROM cards ORDER BY 1")
        one = registry.db.execute
        return (
            [tuple(r) for r in rows],
            one("SELECT COUNT(*) FROM reissue_requests").fetchone()[0],
            one(
                "SELECT COUNT(*) FROM audit_events WHERE action NOT LIKE 'api.%'"
                " AND action NOT LIKE '%refused'"
            ).fetchone()[0],
        )
    finally:
        registry.close()


def test_an_agents_reissue_and_replacement_and_their_certificates(api: Api, tmp_path: Path) -> None:
    lost, damaged = card_number(0), card_number(1)
    answer = api.post(COUNTER, f"/v1/cards/{lost}/formal-loss",
                      {"evidence": "身份证原件", "agent": AGENT})  # fmt: skip
    assert answer.status_code == 200 and answer.json()["status"] == "formal_loss", answer.text
    body = {"card_number": lost, "agent": {**AGENT, "documents": "双方身份证原件及复印件、委托书"}}
    answer = api.post(COUNTER, "/v1/reissue-requests", body)
    assert answer.status_code == 201, answer.text
    reissue = answer.json()
    assert reissue["agent"] == f"{MASKED}（双方身份证原件及复印件、委托书）"
    assert AGENT["id_number"] not in answer.text

    # 换卡: the street office's 验卡 of the card an agent brought (as ``sscard diagnose
    # --visual-only --agent-name … --agent-id …``) opened the request
    registry = api.registry()
    try:
        office = Office(registry, POLICY, load_profile(POLICY.profile), None, None,  # type: ignore[arg-type]
                        operator="op-office", progress=lambda s: None)  # fmt: skip
        verdict = office.diagnose(None, None, ("cracked",), card_number=damaged, visual_only=True,
                                  agent=Agent(AGENT["name"], AGENT["id_number"]))  # fmt: skip
    finally:
        registry.close()
    replacement = api.as_(COUNTER).get(f"/v1/reissue-requests/{verdict.request}").json()
    assert replacement["kind"] == "replacement" and replacement["fee"] == POLICY.fee_damage_human
    assert replacement["agent"] == f"{MASKED}（{AGENT_DOCUMENTS}）"

    for request, kind, shown in (
        (reissue, "补卡", "委托书"),
        (replacement, "换卡", AGENT_DOCUMENTS),
    ):
        pdf = api.as_(COUNTER).get(request["certificate"])
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
        text = pdftext(pdf.content, tmp_path / f"{request['request']}.pdf")
        assert kind in text and "李四（110105********0016）" in text and shown in text
        assert "代办人签字" in text and AGENT["id_number"] not in text


def test_an_agent_refused_leaves_nothing_written_and_no_id_in_the_log(new_db: NewDatabase) -> None:
    """解挂 with an agent (409), an agent's wrong ID number (422), no documents named (422):
    nothing written; the agent's ID number, right or wrong, is in no line ``sscard serve``
    printed (nor their name) and in no audit event (the history keeps it masked)."""
    db = new_db("api")
    tokens = prepare(db)
    wrong = {**AGENT, "id_number": AGENT["id_number"][:-1] + "9"}  # its check character is 6
    found, lost = card_number(2), card_number(3)
    with serve_api(db) as base:
        for api in api_world(base, db, tokens):
            for number in (found, lost):
                answer = api.post(COUNTER, "/v1/loss-reports", {"channel": "counter",
                                  "card_number": number})  # fmt: skip
                assert answer.status_code == 201, answer.text
            before = written(api)
            answer = api.post(COUNTER, f"/v1/cards/{found}/unreport",
                              {"evidence": "身份证原件", "agent": AGENT})  # fmt: skip
            assert answer.status_code == 409 and "解挂须持卡人本人办理" in answer.json()["detail"]
            answer = api.post(COUNTER, f"/v1/cards/{lost}/formal-loss",
                              {"evidence": "身份证原件", "agent": wrong})  # fmt: skip
            assert answer.status_code == 422 and "代办人证件号码" in answer.json()["detail"]
            assert wrong["id_number"] not in answer.text
            answer = api.post(COUNTER, "/v1/reissue-requests", {"card_number": lost,
                              "agent": {**AGENT, "documents": ""}})  # fmt: skip
            assert answer.status_code == 422  # the documents shown must be named
            assert written(api) == before
            answer = api.post(COUNTER, f"/v1/cards/{lost}/formal-loss",
                              {"evidence": "身份证原件", "agent": AGENT})  # fmt: skip
            assert answer.status_code == 200, answer.text
    registry = open_registry(db)
    try:
        details = " ".join(r[0] for r in registry.db.execute("SELECT details FROM audit_events"))
    finally:
        registry.close()
    assert MASKED in details  # the formal loss's history: the agent, masked
    assert AGENT["name"] not in SERVER_OUTPUT[base]
    for number in (AGENT["id_number"], wrong["id_number"]):
        assert number not in details and number not in SERVER_OUTPUT[base]
