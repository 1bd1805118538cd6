"""The registry's invariants are database constraints, and what the database (SQLite or
PostgreSQL) says becomes one clear refusal (docs/service.md "Concurrency"): a second
unfinished request for a card, a lock held past the busy timeout, a card read before another
change."""

from __future__ import annotations

import pytest

from personalize.policy import load_policy
from personalize.registry import Registry, RegistryError
from simulator.factory import SAMPLE_HOLDER
from tests.audit_key import AUDIT_KEY
from tests.clock import pinned_clock
from tests.conftest import NewDatabase

POLICY = load_policy("default")


@pytest.fixture
def registry(new_db: NewDatabase) -> Registry:
    registry = Registry(new_db("r"), POLICY, clock=pinned_clock, audit_key=AUDIT_KEY)
    registry.enroll(SAMPLE_HOLDER, "H00000012", operator="op")
    return registry


def _duplicate_request(registry: Registry, status: str) -> None:
    with registry.transaction() as db:
        db.execute(
            "INSERT INTO reissue_requests (person_id, old_card_id, kind, applied_on, collect_on,"
            " place, fee, operator, status) SELECT person_id, old_card_id, kind, applied_on,"
            " collect_on, place, fee, 'mallory', ? FROM reissue_requests WHERE id = 1",
            (status,),
        )


def test_one_unfinished_request_per_card_is_a_database_constraint(registry: Registry) -> None:
    registry.formalize_loss("H00000012", operator="op", evidence="ID")
    registry.request_reissue("H00000012", operator="op")
    for status in ("open", "in_job"):
        with pytest.raises(RegistryError, match=r"^该卡已有未完成的补/换卡申请 \(the card"):
            _duplicate_request(registry, status)
    _duplicate_request(registry, "done")  # a finished request is history, not a conflict
    count = registry.db.execute("SELECT COUNT(*) FROM reissue_requests").fetchone()[0]
    assert count == 2


def test_a_lock_held_past_the_busy_timeout_is_a_refusal(registry: Registry) -> None:
    other = Registry(registry.path, POLICY, clock=pinned_clock, create=False, audit_key=AUDIT_KEY)
    other.db.set_busy_timeout(50)  # another station waits 50 ms, not 30 s
    with registry.transaction():
        registry.report_loss("H00000012", operator="op")
        with pytest.raises(RegistryError, match=r"^登记库正忙，请稍后重试 \(the registry is busy"):
            other.unreport("H00000012", operator="op2", evidence="ID")
    assert other.unreport("H00000012", operator="op2", evidence="ID").status == "active"


def test_a_card_read_before_another_change_is_never_written_over(
    registry: Registry,
) -> None:
    seen = registry.card("H00000012")  # active
    other = Registry(registry.path, POLICY, clock=pinned_clock, create=False, audit_key=AUDIT_KEY)
    other.formalize_loss("H00000012", operator="op2", evidence="ID")
    with (
        pytest.raises(RegistryError, match=r"状态已被其他操作改变.*changed meanwhile"),
        registry.transaction(),
    ):
        registry._transition(seen, "report_loss", "op", "预挂失")
    assert registry.card("H00000012").status == "formal_loss"
    assert [h.to_status for h in registry.history(seen.id)] == ["formal_loss"]


def test_reading_a_card_for_update_needs_a_write_transaction(registry: Registry) -> None:
    with pytest.raises(RuntimeError, match="write transaction"):
        registry.card_for_update("H00000012")
    with registry.transaction():
        assert registry.card_for_update("H00000012").status == "active"
