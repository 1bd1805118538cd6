"""Operator accounts, the permission table and sessions in-process, with the registry's
clock injected (personalize/operators.py, personalize/roles.py)."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest

from personalize.operators import (
    SESSION_LIFETIME,
    Operator,
    OperatorError,
    add_operator,
    check_password,
    confirm,
    hash_password,
    open_session,
    require,
)
from personalize.policy import load_policy
from personalize.registry import Registry
from personalize.roles import ACTIONS, DUAL_CONTROL, PERMISSIONS, Role, allowed
from tests.audit_key import AUDIT_KEY
from tests.clock import PINNED, MovingClock
from tests.conftest import NewDatabase

POLICY = load_policy("default")
PASSWORD = "unit-test-password"


def test_passwords_are_scrypt_hashed_with_owasp_parameters_and_a_fresh_salt() -> None:
    stored = hash_password(PASSWORD)
    kind, n, r, p, salt, digest = stored.split("$")
    assert (kind, int(n), int(r), int(p)) == ("scrypt", 2**17, 8, 1)
    expected = hashlib.scrypt(
        PASSWORD.encode(), salt=bytes.fromhex(salt), n=2**17, r=8, p=1, maxmem=2**28, dklen=32
    )
    assert bytes.fromhex(digest) == expected and PASSWORD not in stored
    assert hash_password(PASSWORD).split("$")[4] != salt  # a new salt each time
    assert check_password(stored, PASSWORD)
    assert not check_password(stored, PASSWORD + "x")
    assert check_password(hash_password("ｐａｓｓ１２３４"), "pass1234")  # NFKC: IME full-width
    with pytest.raises(OperatorError, match="口令至少 8 个字符"):
        hash_password("1234567")


def test_the_permission_table() -> None:
    assert PERMISSIONS[Role.SUPERVISOR] == frozenset(ACTIONS)
    assert PERMISSIONS[Role.AUDITOR] == frozenset({"audit.verify"})  # reads, and verifies
    for role in (Role.COUNTER, Role.CARD_CENTER, Role.OFFICE, Role.AUDITOR):
        assert not allowed(role, "confirm") and not allowed(role, "operator.add")
    assert allowed(Role.COUNTER, "request.reissue") and not allowed(Role.OFFICE, "request.reissue")
    assert allowed(Role.OFFICE, "office.pin") and not allowed(Role.COUNTER, "office.pin")
    assert allowed(Role.CARD_CENTER, "job.cancel") and not allowed(Role.COUNTER, "job.run")
    assert {"job.cancel", "document.reprint", "fee.waive", "request.withdraw"} == DUAL_CONTROL
    assert allowed(Role.COUNTER, "fee.pay") and allowed(Role.OFFICE, "fee.pay")
    assert not allowed(Role.OFFICE, "fee.waive") and not allowed(Role.CARD_CENTER, "fee.pay")
    with pytest.raises(KeyError):
        allowed(Role.SUPERVISOR, "no.such.action")


def test_a_session_lives_eight_hours_by_the_registrys_clock(new_db: NewDatabase) -> None:
    clock = MovingClock()
    registry = Registry(new_db("r"), POLICY, clock=clock, audit_key=AUDIT_KEY)
    add_operator(registry, "boss", Role.SUPERVISOR, PASSWORD, by=None)
    add_operator(registry, "clerk", Role.COUNTER, PASSWORD, by=Operator("boss", Role.SUPERVISOR))
    session = open_session(registry, "clerk", PASSWORD)
    assert timedelta(hours=8) == SESSION_LIFETIME
    clock.now = PINNED + SESSION_LIFETIME - timedelta(seconds=1)
    assert require(registry, session, "card.report_loss") == Operator("clerk", Role.COUNTER)
    with pytest.raises(OperatorError, match="无权"):
        require(registry, session, "job.run")
    clock.now = PINNED + SESSION_LIFETIME
    with pytest.raises(OperatorError, match="过期"):
        require(registry, session, "card.report_loss")
    refusals = registry.db.execute(
        "SELECT operator, action FROM audit_events WHERE action LIKE '%.refused' ORDER BY id"
    ).fetchall()
    assert [tuple(r) for r in refusals] == [
        ("clerk", "job.run.refused"),
        ("clerk", "card.report_loss.refused"),
    ]
    assert "token" not in repr(session) and session.token not in repr(session)
    assert registry.verify_audit()[1] == []


def test_dual_control_needs_a_different_supervisor(new_db: NewDatabase) -> None:
    registry = Registry(new_db("r"), POLICY, clock=MovingClock(), audit_key=AUDIT_KEY)
    boss = add_operator(registry, "boss", Role.SUPERVISOR, PASSWORD, by=None)
    boss2 = add_operator(registry, "boss2", Role.SUPERVISOR, PASSWORD, by=boss)
    clerk = add_operator(registry, "clerk", Role.COUNTER, PASSWORD, by=boss)
    with pytest.raises(OperatorError, match="另一位"):
        confirm(registry, boss, boss, "job.cancel")
    with pytest.raises(OperatorError, match="无权复核"):
        confirm(registry, boss, clerk, "job.cancel")
    assert confirm(registry, boss, boss2, "job.cancel") == boss2
    assert confirm(registry, clerk, boss, "document.reprint") == boss
    with pytest.raises(KeyError):
        confirm(registry, clerk, boss, "card.report_loss")  # no dual control there


def test_only_one_first_operator(new_db: NewDatabase) -> None:
    registry = Registry(new_db("r"), POLICY, clock=MovingClock(), audit_key=AUDIT_KEY)
    add_operator(registry, "boss", Role.SUPERVISOR, PASSWORD, by=None)
    with pytest.raises(OperatorError, match="已有操作员"):
        add_operator(registry, "boss2", Role.SUPERVISOR, PASSWORD, by=None)
    with pytest.raises(OperatorError, match="操作员名无效"):
        add_operator(registry, "a b", Role.COUNTER, PASSWORD, by=Operator("boss", Role.SUPERVISOR))
