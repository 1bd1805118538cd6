"""The holder's 查询密码 (query password) of the online loss channel (docs/api.md
"The online channel"; docs/business-rules.md "Channels, time, and what the rest of the
world needs from the card center": "a query password that must resist guessing").

* Kept per person as a scrypt hash (RFC 7914, the operators' parameters:
  ``personalize.operators.hash_password``), set at a counter (``POST
  /v1/cards/{card_number}/query-password``, counter role); at least ``MIN_LENGTH``
  characters, NFKC-normalised.
* Each attempt is counted *before* the hash is checked, under the registry's write lock, so
  concurrent guesses cannot slip past the limit: at most ``PERSON_LIMIT`` wrong attempts
  per person (whichever of card number or ID number names them) in ``PERSON_WINDOW``, and
  ``CLIENT_LIMIT`` per calling client in ``CLIENT_WINDOW``; beyond, every attempt is
  refused (429) without checking. The attempt that reaches a limit writes the audit event
  ``api.lockout``. A right password clears the person's count.
* An unknown card or ID number costs the same hash and gets the same answer as a wrong
  password: the channel does not tell which cards exist.
"""

from __future__ import annotations

from datetime import timedelta

from personalize import api_store
from personalize.api.problems import ApiProblem
from personalize.api_store import ApiClient
from personalize.operators import check_password, hash_password
from personalize.registry import Registry, _iso

MIN_LENGTH = 6
PERSON_LIMIT, PERSON_WINDOW = 5, timedelta(hours=24)
CLIENT_LIMIT, CLIENT_WINDOW = 50, timedelta(hours=1)

WRONG = "卡号/证件号码或查询密码不正确 (wrong card or ID number, or query password)"


def set_query_password(registry: Registry, person_id: int, stored: str, *, by: str) -> None:
    """Set (or replace) the person's 查询密码 (call inside the caller's transaction; the
    hash is slow, so callers hash first: ``hashed``)."""
    api_store.set_query_password(registry.db, person_id, stored, at=_iso(registry.clock()), by=by)
    api_store.clear_failures(registry.db, person_id)
    registry.audit(by, "query_password.set", f"person/{person_id}", {})


def hashed(password: str) -> str:
    return hash_password(password, minimum=MIN_LENGTH)


def _locked(scope: str) -> ApiProblem:
    return ApiProblem(
        429,
        f"查询密码错误次数过多，{scope}已锁定，请到柜台或拨打服务电话办理 "
        f"(too many wrong query passwords: this {'card' if scope == '该卡' else 'client'} "
        "is locked out)",
        slug="locked-out",
        headers={"Retry-After": "3600"},
    )


def check_query_password(
    registry: Registry, client: ApiClient, person_id: int | None, password: str
) -> None:
    """Nothing when ``password`` is the person's 查询密码; else ``ApiProblem`` 403 (wrong,
    or an unknown person) or 429 (locked out)."""
    now = registry.clock()
    with registry.transaction() as db:  # count this attempt first, under the write lock
        if api_store.failures_of_client(db, client.id, since=_iso(now - CLIENT_WINDOW)) >= (
            CLIENT_LIMIT
        ):
            raise _locked("该客户端")
        if (
            person_id is not None
            and api_store.failures_of_person(db, person_id, since=_iso(now - PERSON_WINDOW))
            >= PERSON_LIMIT
        ):
            raise _locked("该卡")
        api_store.add_failure(db, person_id, client.id, at=_iso(now))
        stored = None if person_id is None else api_store.query_password_hash(db, person_id)
    if check_password(stored, password):  # slow: outside the write lock
        assert person_id is not None
        with registry.transaction() as db:
            api_store.clear_failures(db, person_id)
        return
    with registry.transaction() as db:
        reached = []
        if (
            person_id is not None
            and api_store.failures_of_person(db, person_id, since=_iso(now - PERSON_WINDOW))
            == PERSON_LIMIT
        ):
            reached.append("card")
        if api_store.failures_of_client(db, client.id, since=_iso(now - CLIENT_WINDOW)) == (
            CLIENT_LIMIT
        ):
            reached.append("client")
        for scope in reached:
            registry.audit(
                client.operator,
                "api.lockout",
                f"person/{person_id}" if scope == "card" else client.operator,
                {"client": client.id, "scope": scope},
            )
    raise ApiProblem(403, WRONG, slug="wrong-query-password")
