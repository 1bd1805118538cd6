"""Fees through the HTTP API (docs/api.md "Fees"): a real ``sscard serve`` on SQLite and on
PostgreSQL — the counter's business system records a 补卡 fee as paid with its receipt (the
request then says so), every refusal is a problem answer with nothing written, a repeated call
with its Idempotency-Key gets the first answer; the day's report for the systems that may read
it, refused to a terminal."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from personalize.roles import ApiRole
from tests.conftest import NewDatabase
from tests.integration.api_fixture import Api, card_number, served_api

COUNTER, AUDITOR, TERMINAL = ApiRole.COUNTER, ApiRole.AUDITOR, ApiRole.TERMINAL


@pytest.fixture
def api(new_db: NewDatabase) -> Iterator[Api]:
    yield from served_api(new_db("api_fees"), 2)


def settlements(api: Api) -> int:
    registry = api.registry()
    try:
        return int(registry.db.execute("SELECT COUNT(*) FROM fee_settlements").scalar())
    finally:
        registry.close()


def reissued(api: Api, index: int) -> int:
    number = card_number(index)
    answer = api.post(COUNTER, f"/v1/cards/{number}/formal-loss", {"evidence": "身份证原件"})
    assert answer.status_code == 200, answer.text
    answer = api.post(COUNTER, "/v1/reissue-requests", {"card_number": number})
    assert answer.status_code == 201, answer.text
    assert answer.json()["fee_state"] == "20 元（未收）"
    return int(answer.json()["request"])


def test_the_counters_system_records_a_payment_and_reads_the_day(api: Api) -> None:
    first, second = reissued(api, 0), reissued(api, 1)
    path = f"/v1/reissue-requests/{first}/fee-payment"
    answer = api.post(COUNTER, path, {"receipt_no": "SH-0001", "amount": 20}, key="pay-1")
    assert answer.status_code == 201, answer.text
    paid = answer.json()
    assert (paid["outcome"], paid["receipt_no"], paid["amount"]) == ("paid", "SH-0001", 20)
    assert paid["at"].startswith("2026-11-25T17:3") and paid["at"].endswith("+08:00")  # local
    again = api.post(COUNTER, path, {"receipt_no": "SH-0001", "amount": 20}, key="pay-1")
    assert again.status_code == 201 and again.json() == paid  # the first answer, not a second
    shown = api.as_(COUNTER).get(f"/v1/reissue-requests/{first}").json()
    assert shown["fee_state"] == "20 元（已收，收据号 SH-0001）"

    refusals = [
        (path, {"receipt_no": "SH-0002", "amount": 20}, 409, "不能重复办理"),
        (f"/v1/reissue-requests/{second}/fee-payment", {"receipt_no": "SH-0001", "amount": 20},
         409, "收据号 SH-0001 已用于"),
        (f"/v1/reissue-requests/{second}/fee-payment", {"receipt_no": "SH-0003", "amount": 10},
         409, "与工本费 20 元不符"),
        (f"/v1/reissue-requests/{second}/fee-payment", {"receipt_no": "SH 3", "amount": 20},
         422, ""),
        ("/v1/reissue-requests/99/fee-payment", {"receipt_no": "SH-0004", "amount": 20}, 404,
         "没有申请 99"),
    ]  # fmt: skip
    for where, body, status, message in refusals:
        answer = api.post(COUNTER, where, body)
        assert answer.status_code == status, (where, body, answer.text)
        assert message in answer.json()["detail"], answer.text
    assert settlements(api) == 1
    denied = api.post(AUDITOR, f"/v1/reissue-requests/{second}/fee-payment",
                      {"receipt_no": "SH-0005", "amount": 20})  # fmt: skip
    assert denied.status_code == 403 and settlements(api) == 1

    report = api.as_(AUDITOR).get("/v1/fee-reports/2026-11-25")
    assert report.status_code == 200, report.text
    day = report.json()
    assert day["reconciled"] is True and day["discrepancies"] == []
    total = day["total"]
    assert (total["paid"], total["paid_sum"], total["outstanding"], total["outstanding_sum"]) == (
        1, 20, 1, 20,
    )  # fmt: skip
    assert [s["receipt_no"] for s in day["settlements"]] == ["SH-0001"]
    assert [u["request_no"] for u in day["outstanding"]] == [f"SSCARD-REQ-{second:06d}"]
    assert api.as_(TERMINAL).get("/v1/fee-reports/2026-11-25").status_code == 403
    assert api.as_(AUDITOR).get("/v1/fee-reports/2026-02-30").status_code == 422
