"""Secrets of the API never leave it (docs/api.md): the clients' bearer tokens and the
holders' 查询密码 appear neither in what ``sscard serve`` printed (stdout and stderr, read
when it stopped: tests/api_serve.py), nor in any audit event, nor in an answer — after
right and wrong passwords, a bad token and a malformed body carrying a password."""

from __future__ import annotations

import httpx

from personalize.roles import ApiRole
from tests.api_serve import SERVER_OUTPUT, serve_api
from tests.conftest import NewDatabase
from tests.integration.api_fixture import api_world, card_number, holder, prepare

PASSWORD = "Qz4815162342"  # the holder's 查询密码
WRONG = "Wr0ng-9917"


def test_no_token_or_query_password_in_the_output_the_audit_or_an_answer(
    new_db: NewDatabase,
) -> None:
    db = new_db("api")
    tokens = prepare(db)
    answers: list[str] = []
    with serve_api(db) as base:
        for api in api_world(base, db, tokens):
            number = card_number(1)
            set_password = api.post(
                ApiRole.COUNTER, f"/v1/cards/{number}/query-password", {"password": PASSWORD}
            )
            assert set_password.status_code == 200, set_password.text
            online = {"channel": "online", "id_number": holder(1).ssn}
            wrong = api.post(
                ApiRole.CHANNEL, "/v1/loss-reports", online | {"query_password": WRONG}
            )
            right = api.post(
                ApiRole.CHANNEL, "/v1/loss-reports", online | {"query_password": PASSWORD}
            )
            assert (wrong.status_code, right.status_code) == (403, 201), right.text
            bad_token = httpx.get(
                f"{base}/v1/cards/{number}/status",
                headers={"Authorization": f"Bearer {tokens[ApiRole.TERMINAL]}x"},
            )
            malformed = api.as_(ApiRole.CHANNEL).post(
                "/v1/loss-reports",
                content=f'{{"channel": "online", "query_password": "{PASSWORD}"',
                headers={"Idempotency-Key": "k1", "Content-Type": "application/json"},
            )
            assert (bad_token.status_code, malformed.status_code) == (401, 400)
            answers += [r.text for r in (set_password, wrong, right, bad_token, malformed)]
            registry = api.registry()
            try:
                audit = [
                    " ".join(map(str, row))
                    for row in registry.db.execute("SELECT * FROM audit_events").fetchall()
                ]
            finally:
                registry.close()
    output = SERVER_OUTPUT[base]
    assert "listening on" in output  # the server's output was read
    assert any("api.lockout" in e or "api.refused" in e for e in audit)  # the audit was read
    secrets = {"查询密码": PASSWORD, "wrong 查询密码": WRONG} | {
        f"{role} token": token for role, token in tokens.items()
    }
    for name, secret in secrets.items():
        for where, texts in (("server output", [output]), ("audit", audit), ("answer", answers)):
            assert not any(secret in text for text in texts), f"the {name} is in the {where}"
