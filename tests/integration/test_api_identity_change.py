"""换领 (identity data changed) through the HTTP API, a real ``sscard serve`` on SQLite and
PostgreSQL (docs/api.md "POST /v1/change-requests"; docs/business-rules.md "换领 (identity
data changed)"): the counter's business system applies with the change certificates and gets
the request with the change (ID numbers masked) and its 领卡证明; a certificate for another
person, another person's new number or a client of another role is refused with nothing
written."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from personalize.roles import ApiRole
from tests.conftest import NewDatabase
from tests.integration.api_fixture import Api, card_number, holder, served_api

NEW_ID = "110108194912310029"  # a GB 11643-1999 number of 1949-12-31, a woman, 海淀区


@pytest.fixture
def api(new_db: NewDatabase) -> Iterator[Api]:
    yield from served_api(new_db("api"))


def body(index: int = 1, **certificate: str) -> dict[str, Any]:
    """holder(index)'s 换领 to 张叁 at ``NEW_ID``, unless ``certificate`` says otherwise."""
    return {
        "card_number": card_number(index),
        "counter": "3号窗口",
        "certificate": {
            "number": "京公(海)变字2026第0815号",
            "authority": "北京市公安局海淀分局",
            "bureau_number": "京社更2026-0042",
            "old_name": "张三",
            "old_id_number": holder(index).ssn,
            "new_name": "张叁",
            "new_id_number": NEW_ID,
            **certificate,
        },
    }


def written(api: Api) -> tuple[int, ...]:
    """The rows a 换领 request writes."""
    registry = api.registry()
    try:
        return tuple(
            registry.db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in (
                "reissue_requests",
                "identity_changes",
                "status_history",
                # the API's own record of each call and refusal (docs/api.md) aside
                "audit_events WHERE action NOT LIKE 'api.%'",
            )
        )
    finally:
        registry.close()


def test_the_counter_applies_for_a_change(api: Api, tmp_path: Any) -> None:
    answer = api.post(ApiRole.COUNTER, "/v1/change-requests", body())
    assert answer.status_code == 201, answer.text
    request = answer.json()
    assert request["kind"] == "change" and request["old_card_number"] == card_number(1)
    assert request["change"] == {
        "old_name": "张*",
        "new_name": "张*",
        "old_id_number": holder(1).ssn[:6] + "********" + holder(1).ssn[-4:],
        "new_id_number": "110108********0029",
        "certificate": "京公(海)变字2026第0815号",
        "authority": "北京市公安局海淀分局",
        "bureau_certificate": "京社更2026-0042",
        "applied": False,
    }
    shown = api.as_(ApiRole.CARD_CENTER).get(f"/v1/reissue-requests/{request['request']}")
    assert shown.status_code == 200 and shown.json()["change"] == request["change"]
    # the names in clear only for the counter asking ?reveal=true (review17 #8), as card lookups
    path = f"/v1/reissue-requests/{request['request']}"
    revealed = api.as_(ApiRole.COUNTER).get(path, params={"reveal": "true"}).json()["change"]
    assert (revealed["old_name"], revealed["new_name"]) == ("张三", "张叁")
    assert revealed["new_id_number"] == request["change"]["new_id_number"]  # IDs stay masked
    refused = api.as_(ApiRole.CARD_CENTER).get(path, params={"reveal": "true"})
    assert refused.status_code == 403
    pdf = api.as_(ApiRole.COUNTER).get(request["certificate"])
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    path = tmp_path / "cert.pdf"
    path.write_bytes(pdf.content)
    text = subprocess.run(
        ["pdftotext", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "换领（身份信息变更）" in text and "张三 → 张叁" in text
    card = api.as_(ApiRole.COUNTER).get(f"/v1/cards/{card_number(1)}")
    assert card.json()["status"] == "replacement_pending"


@pytest.mark.parametrize(
    ("role", "change", "status", "says"),
    [
        (ApiRole.COUNTER, {"old_id_number": holder(2).ssn}, 409, "for another person"),
        (ApiRole.COUNTER, {"new_id_number": holder(3).ssn}, 409, "已属于另一参保人"),
        (ApiRole.COUNTER, {"new_name": "张三", "new_id_number": holder(1).ssn}, 409, "均未改变"),
        (ApiRole.COUNTER, {"new_id_number": "11010819491231002"}, 422, ""),
        (ApiRole.CHANNEL, {}, 403, ""),
    ],
)
def test_a_refused_change_writes_nothing(
    api: Api, role: ApiRole, change: dict[str, str], status: int, says: str
) -> None:
    before = written(api)
    answer = api.post(role, "/v1/change-requests", body(**change))
    assert answer.status_code == status, answer.text
    assert says in answer.text
    assert written(api) == before
