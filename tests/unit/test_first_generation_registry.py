"""The registry and first-generation 15-digit ID numbers, on SQLite and PostgreSQL: a person
is recorded once, under the 18-character number, and found by the 15-digit one through its
GB 11643-1999 upgrade (docs/business-rules.md "15-digit ID numbers")."""

from __future__ import annotations

from dataclasses import replace

import pytest

from personalize.policy import load_policy
from personalize.registry import Registry
from simulator.factory import SAMPLE_HOLDER
from sscard.errors import InvalidData
from sscard.identifiers import card_number_check
from tests.audit_key import AUDIT_KEY
from tests.clock import pinned_clock
from tests.conftest import NewDatabase

FIFTEEN = "110105491231002"  # SAMPLE_HOLDER's 11010519491231002X in its 15-digit form
NUMBER = "A0000001" + card_number_check("A0000001")


@pytest.fixture
def registry(new_db: NewDatabase) -> Registry:
    return Registry(new_db("r"), load_policy("default"), clock=pinned_clock, audit_key=AUDIT_KEY)


def count(registry: Registry, table: str) -> int:
    return int(registry.db.execute(f"SELECT COUNT(*) AS n FROM {table}").fetchone()["n"])


def test_a_15_digit_number_finds_the_person_by_its_upgrade(registry: Registry) -> None:
    card = registry.enroll(SAMPLE_HOLDER, NUMBER, operator="op")
    person = registry.person_by_ssn(FIFTEEN)
    assert person is not None and person.id == card.person_id
    assert person == registry.person_by_ssn(SAMPLE_HOLDER.ssn)
    assert [r["ssn"] for r in registry.db.execute("SELECT ssn FROM persons")] == [
        SAMPLE_HOLDER.ssn
    ]  # stored once, in its 18-character form
    assert registry.person_by_ssn("110105491231004") is None  # another sequence: nobody
    with pytest.raises(InvalidData, match="出生日期"):
        registry.person_by_ssn("110105491331002")  # month 13


def test_nobody_is_enrolled_under_a_15_digit_number(registry: Registry) -> None:
    with pytest.raises(InvalidData, match="升位"):
        registry.enroll(replace(SAMPLE_HOLDER, ssn=FIFTEEN), NUMBER, operator="op")
    assert (count(registry, "persons"), count(registry, "cards")) == (0, 0)
    assert count(registry, "audit_events") == 0
