"""The HTTP API end to end (issue 15, Show 1): a real ``sscard serve`` process on 127.0.0.1
called with httpx, on SQLite and on PostgreSQL — each channel's loss report through to the
card's status at a terminal and in the blacklist feed; formal loss, 解挂, reissue with its
领卡证明; roles refused where they must be; every call audited with the client."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from personalize.api.clients import revoke_client
from personalize.card_standing import INITIAL_PIN_NAMES
from personalize.registry import MIGRATIONS
from personalize.roles import ApiRole
from tests.conftest import NewDatabase
from tests.integration.api_fixture import (
    SUPERVISOR,
    Api,
    card_number,
    holder,
    served_api,
)

CHANNEL, COUNTER, TERMINAL = ApiRole.CHANNEL, ApiRole.COUNTER, ApiRole.TERMINAL


@pytest.fixture
def api(new_db: NewDatabase) -> Iterator[Api]:
    yield from served_api(new_db("api"))


def status(api: Api, number: str) -> dict[str, object]:
    answer = api.as_(TERMINAL).get(f"/v1/cards/{number}/status")
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


def feed(api: Api, since: int = 0) -> dict[str, object]:
    answer = api.as_(TERMINAL).get("/v1/blacklist", params={"since": since})
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


def audit_actions(api: Api) -> list[tuple[str, str, str]]:
    """(operator, action, subject) of every audit event, and the chain checked."""
    registry = api.registry()
    try:
        checked, problems = registry.verify_audit()
        assert problems == [] and checked > 0
        rows = registry.db.execute("SELECT operator, action, subject FROM audit_events ORDER BY id")
        return [(r["operator"], r["action"], r["subject"]) for r in rows]
    finally:
        registry.close()


def test_each_channel_reports_a_loss_that_terminals_see_at_once(api: Api) -> None:
    numbers = [card_number(i) for i in range(4)]
    assert [status(api, n)["refuse"] for n in numbers] == [False] * 4
    start = feed(api)
    assert start["entries"] == []
    # the holder of card 2 has a 查询密码, set at the counter
    answer = api.post(COUNTER, f"/v1/cards/{numbers[2]}/query-password", {"password": "862431"})
    assert answer.status_code == 200, answer.text

    wrong = {"channel": "online", "card_number": numbers[2], "query_password": "000000"}
    answer = api.post(CHANNEL, "/v1/loss-reports", wrong)
    assert answer.status_code == 403 and "查询密码" in answer.json()["detail"]
    assert "000000" not in answer.text
    unknown = {**wrong, "card_number": card_number(77)}  # answered as a wrong password
    assert api.post(CHANNEL, "/v1/loss-reports", unknown).json() == {
        **answer.json(),
        "instance": "/v1/loss-reports",
    }
    assert status(api, numbers[2])["refuse"] is False

    reports = [
        (COUNTER, {"channel": "counter", "card_number": numbers[0]}),
        (CHANNEL, {"channel": "phone", "card_number": numbers[1], "id_number": holder(1).ssn}),
        (CHANNEL, {"channel": "online", "id_number": holder(2).ssn, "query_password": "862431"}),
        (CHANNEL, {"channel": "kiosk", "id_number": holder(3).ssn}),
    ]
    for role, body in reports:
        answer = api.post(role, "/v1/loss-reports", body)
        assert answer.status_code == 201, (body["channel"], answer.text)
        assert answer.json()["status"] == "provisional_loss"
        assert answer.json()["refuse"] is True

    for n in numbers:  # 挂失后立即锁定: refused at the next terminal query
        assert status(api, n) | {"since": None} == {
            "card_number": n, "status": "provisional_loss", "status_name": "预挂失",
            "refuse": True, "since": None,
            # enrolled without its issue date: its validity and initial PIN not known
            "valid_until": None, "validity": None, "past_validity": None,
            "initial_pin": None, "initial_pin_name": INITIAL_PIN_NAMES[None],
        }  # fmt: skip
    page = feed(api)
    entries = page["entries"]
    assert isinstance(entries, list)
    assert [(e["card_number"], e["refuse"]) for e in entries] == [(n, True) for n in numbers]
    cursors = [e["cursor"] for e in entries]
    assert cursors == sorted(cursors) and page["next"] == cursors[-1]
    assert feed(api, int(page["next"]))["entries"] == []  # type: ignore[arg-type]

    history = [a for a in audit_actions(api) if a[1] == "card.provisional_loss"]
    assert [h[0] for h in history] == ["api:counter-1"] + ["api:channel-1"] * 3


def test_formal_loss_reissue_and_unreport_reach_the_feed(api: Api) -> None:
    lost, found = card_number(0), card_number(1)
    for number in (lost, found):
        assert api.post(COUNTER, "/v1/loss-reports", {"channel": "counter",
                        "card_number": number}).status_code == 201  # fmt: skip
    since = feed(api)["next"]
    answer = api.post(COUNTER, f"/v1/cards/{lost}/formal-loss", {"evidence": "身份证原件"})
    assert answer.status_code == 200 and answer.json()["status"] == "formal_loss", answer.text
    answer = api.post(COUNTER, "/v1/reissue-requests", {"card_number": lost, "counter": "3"})
    assert answer.status_code == 201, answer.text
    request = answer.json()
    assert request["request_no"] == f"SSCARD-REQ-{request['request']:06d}"
    assert request["fee"] == 20 and request["old_card_number"] == lost
    pdf = api.as_(COUNTER).get(request["certificate"])
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    answer = api.post(COUNTER, f"/v1/cards/{found}/unreport", {"evidence": "身份证原件"})
    assert answer.status_code == 200 and answer.json()["status"] == "active", answer.text
    assert status(api, found)["refuse"] is False

    entries = feed(api, since)["entries"]  # type: ignore[arg-type]
    assert [(e["card_number"], e["status"], e["refuse"]) for e in entries] == [
        (lost, "formal_loss", True),
        (lost, "reissue_pending", True),
        (found, "active", False),
    ]


def test_an_agent_may_not_unreport_and_nothing_changes(api: Api) -> None:
    number = card_number(0)
    api.post(COUNTER, "/v1/loss-reports", {"channel": "counter", "card_number": number})
    agent = {"name": "李四", "id_number": holder(3).ssn}
    answer = api.post(COUNTER, f"/v1/cards/{number}/unreport", {"evidence": "x", "agent": agent})
    assert answer.status_code == 409
    assert answer.headers["content-type"] == "application/problem+json"
    assert "本人" in answer.json()["detail"]
    assert status(api, number)["status"] == "provisional_loss"


def test_lookups_are_masked_unless_the_counter_asks(api: Api) -> None:
    number, person = card_number(1), holder(1)
    masked = api.as_(ApiRole.AUDITOR).get(f"/v1/cards/{number}").json()
    assert masked["holder_name"] == "张*"
    assert masked["holder_id_number"] == person.ssn[:6] + "*" * 8 + person.ssn[-4:]
    refused = api.as_(ApiRole.AUDITOR).get(f"/v1/cards/{number}", params={"reveal": "true"})
    assert refused.status_code == 403
    clear = api.as_(COUNTER).get(f"/v1/persons/{person.ssn}", params={"reveal": "true"}).json()
    assert clear["name"] == "张三" and clear["id_number"] == person.ssn
    assert [c["card_number"] for c in clear["cards"]] == [number]


ROLE_REFUSALS = [
    (TERMINAL, "POST", "/v1/loss-reports", {"channel": "kiosk", "card_number": card_number(0)}),
    (CHANNEL, "POST", "/v1/loss-reports", {"channel": "counter", "card_number": card_number(0)}),
    (COUNTER, "POST", "/v1/loss-reports", {"channel": "phone", "card_number": card_number(0),
                                           "id_number": holder(0).ssn}),
    (CHANNEL, "GET", f"/v1/cards/{card_number(0)}", None),
    (CHANNEL, "GET", "/v1/blacklist", None),
    (TERMINAL, "POST", f"/v1/cards/{card_number(0)}/formal-loss", {"evidence": "x"}),
    (ApiRole.AUDITOR, "POST", "/v1/reissue-requests", {"card_number": card_number(0)}),
    (ApiRole.CARD_CENTER, "GET", f"/v1/persons/{holder(0).ssn}", None),
]  # fmt: skip


def test_roles_are_refused_where_they_must_be(api: Api) -> None:
    for role, method, path, body in ROLE_REFUSALS:
        answer = api.post(role, path, body) if method == "POST" else api.as_(role).get(path)
        assert answer.status_code == 403, (role, path, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["title"] == "无权调用"
    assert status(api, card_number(0))["status"] == "active"  # nothing was done
    refusals = [a for a in audit_actions(api) if a[1] == "api.refused"]
    assert len(refusals) == len(ROLE_REFUSALS)


def test_unknown_and_revoked_tokens_are_401(api: Api) -> None:
    path = f"/v1/cards/{card_number(0)}/status"
    assert api.as_(TERMINAL).get(path).status_code == 200
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic eA=="}):
        answer = httpx.get(api.base + path, headers=headers, timeout=30)
        assert answer.status_code == 401, headers
        assert answer.json()["title"] == "未认证的客户端"
    registry = api.registry()
    try:
        revoke_client(registry, "terminal-1", by=SUPERVISOR)
    finally:
        registry.close()
    assert api.as_(TERMINAL).get(path).status_code == 401


def test_health_and_readiness_need_no_token(api: Api) -> None:
    assert httpx.get(f"{api.base}/v1/health", timeout=30).json() == {
        "status": "ok", "schema_version": None,
    }  # fmt: skip
    ready = httpx.get(f"{api.base}/v1/ready", timeout=30)
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "schema_version": len(MIGRATIONS)}


def test_what_the_api_changes_is_an_outbox_event_for_the_card_management_system(
    api: Api,
) -> None:
    """回盘: a loss from the phone channel and a 解挂 at the counter, made through the API,
    each leave one outbox event, written with the change (docs/outbox.md)."""
    number = card_number(2)
    registry = api.registry()
    try:
        before = registry.outbox.events_after(0, limit=1000)
    finally:
        registry.close()
    body = {"channel": "phone", "card_number": number, "id_number": holder(2).ssn}
    answer = api.post(CHANNEL, "/v1/loss-reports", body)
    assert answer.status_code == 201, answer.text
    answer = api.post(COUNTER, f"/v1/cards/{number}/unreport", {"evidence": "身份证原件"})
    assert answer.status_code == 200, answer.text
    registry = api.registry()
    try:
        events = registry.outbox.events_after(before[-1].seq if before else 0, limit=1000)
    finally:
        registry.close()
    assert [(e.card_number, e.kind, e.status) for e in events] == [
        (number, "card.frozen", "provisional_loss"),
        (number, "card.unfrozen", "active"),
    ]
