"""Withdrawing an open request (撤销申请; docs/business-rules.md "Withdrawing a request (撤销)",
review17 finding 2), on SQLite and PostgreSQL: the request withdrawn, the card back to the
status it had before, a 换领's new number no longer reserved (the clerk applies again with the
data corrected), a reported balance kept against the request, audited under dual control in
one transaction — and every refusal writes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import pytest

from personalize import registry as registry_module
from personalize.documents import collection_certificate
from personalize.fee_report import fee_day_report
from personalize.fees import pay_fee, waive_fee
from personalize.lifecycle import TransitionRefused, way_back
from personalize.registry import MIGRATIONS, WITHDRAW_MIGRATION, Registry, RegistryError
from personalize.withdrawal import withdraw_request
from tests.audit_key import AUDIT_KEY
from tests.clock import PINNED, MovingClock, pinned_clock
from tests.conftest import NewDatabase
from tests.stores import running_job
from tests.unit.test_identity_change import NEW_ID, POLICY, STATION, certificate, enrolled

TABLES = (
    "persons",
    "cards",
    "status_history",
    "reissue_requests",
    "identity_changes",
    "fee_settlements",
    "balance_transfers",
    "audit_events",
    "outbox_events",
)


@pytest.fixture
def registry(new_db: NewDatabase) -> Iterator[Registry]:
    registry = Registry(new_db("withdraw"), POLICY, clock=pinned_clock, audit_key=AUDIT_KEY)
    yield registry
    registry.close()


def snapshot(registry: Registry) -> tuple[object, ...]:
    """Every row a withdrawal could write, the rows' states, and the audit chain's head."""
    counts = tuple(registry.db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES)
    states = tuple(
        tuple(r) for r in registry.db.execute("SELECT id, status FROM cards ORDER BY id")
    ) + tuple(
        tuple(r) for r in registry.db.execute("SELECT id, status FROM reissue_requests ORDER BY id")
    )
    head = registry.db.execute("SELECT hash FROM audit_events ORDER BY id DESC LIMIT 1")
    return (*counts, states, head.fetchone()[0])


def withdraw(registry: Registry, request_id: int, **given: str) -> None:
    withdraw_request(
        registry,
        request_id,
        **{"reason": "持卡人放弃", "confirmed_by": "supervisor", "operator": "op", **given},  # type: ignore[arg-type]
    )


def last_event(registry: Registry, action: str) -> dict[str, object]:
    import json

    row = registry.db.execute(
        "SELECT details FROM audit_events WHERE action = ? ORDER BY id DESC LIMIT 1", (action,)
    ).fetchone()
    assert row is not None, action
    details: dict[str, object] = json.loads(row["details"])
    return details


def test_a_withdrawn_change_frees_its_new_number_and_may_be_applied_for_again(
    registry: Registry,
) -> None:
    """The clerk typed the wrong new name: withdraw (the card 正常 again, NEW_ID no longer
    reserved), apply again with the right one."""
    number = enrolled(registry)
    typo = registry.request_change(number, certificate(new_name="张参"), operator="op")
    assert registry.changes.pending_for(NEW_ID) is not None
    withdraw(registry, typo.id, reason="新姓名录入错误")
    assert registry.request(typo.id).status == "withdrawn"
    assert registry.card(number).status == "active"
    assert registry.changes.pending_for(NEW_ID) is None
    history = registry.history(registry.card(number).id)
    assert (history[-1].from_status, history[-1].to_status) == ("replacement_pending", "active")
    assert "新姓名录入错误" in history[-1].reason
    event = last_event(registry, "request.withdraw")
    assert event["reason"] == "新姓名录入错误" and event["confirmed_by"] == "supervisor"
    assert last_event(registry, "dual_control.confirm")["action"] == "request.withdraw"
    again = registry.request_change(number, certificate(), operator="op")
    assert registry.holder_of(again).name == "张叁"
    assert registry.identity_change(typo.id) is not None  # the withdrawn change stays on record
    assert registry.verify_audit()[1] == []


def test_a_withdrawn_reissue_leaves_the_loss_formal(registry: Registry) -> None:
    number = enrolled(registry)
    registry.formalize_loss(number, operator="op", evidence="身份证")
    request = registry.request_reissue(number, operator="op")
    withdraw(registry, request.id)
    assert registry.card(number).status == "formal_loss"
    assert registry.unfinished_request(registry.card(number).id) is None
    collection_certificate(registry, request.id)  # shown as it was printed …
    with pytest.raises(RegistryError, match="已撤销，不补打领卡证明"):  # … never printed again
        collection_certificate(registry, request.id, reprinted_at=PINNED)
    assert registry.verify_audit()[1] == []


def test_a_replacement_from_a_provisional_loss_goes_back_with_its_deadline(
    registry: Registry,
) -> None:
    number = enrolled(registry)
    reported = registry.report_loss(number, operator="op")
    request = registry.request_reissue(number, operator="op", kind="replacement", fee=20)
    withdraw(registry, request.id)
    back = registry.card(number)
    assert (back.status, back.lapse_at) == ("provisional_loss", reported.lapse_at)


def test_a_provisional_loss_past_its_deadline_lapses_when_its_replacement_is_withdrawn(
    registry: Registry,
) -> None:
    number = enrolled(registry)
    registry.report_loss(number, operator="op")
    request = registry.request_reissue(number, operator="op", kind="replacement", fee=20)
    registry.clock = lambda: PINNED + timedelta(days=60)
    withdraw(registry, request.id)
    card = registry.card(number)
    assert card.status == "active"
    moves = [(h.from_status, h.to_status) for h in registry.history(card.id)][-2:]
    assert moves == [
        ("replacement_pending", "provisional_loss"),
        ("provisional_loss", "active"),
    ]
    assert registry.verify_audit()[1] == []


def test_a_waived_fee_and_a_reported_balance_stay_with_the_withdrawn_request(
    registry: Registry,
) -> None:
    number = enrolled(registry)
    registry.formalize_loss(number, operator="op", evidence="身份证")
    request = registry.request_reissue(number, operator="op")
    assert request.fee > 0
    waive_fee(registry, request.id, reason="低保", approved_by="supervisor", operator="op")
    registry.report_balance(number, "12.34", as_of=PINNED, reference="B1", operator="bank")
    withdraw(registry, request.id)
    transfer = registry.balances.of_request(request.id)
    assert transfer is not None and transfer.amount_fen == 1234 and transfer.new_card_id is None
    assert last_event(registry, "request.withdraw")["fee_settled"] == "waived"
    with pytest.raises(RegistryError, match="没有待换发的新卡"):  # no transfer ever happens
        registry.report_balance(number, "12.34", as_of=PINNED, reference="B2", operator="bank")


@pytest.mark.parametrize(
    ("given", "refusal"),
    [
        ({"reason": "  "}, "须说明原因"),
        ({"reason": "长" * 201}, "原因过长"),
        ({"confirmed_by": ""}, "须由另一位操作员复核"),
        ({"confirmed_by": "op"}, "复核人须为另一位操作员"),
    ],
)
def test_a_withdrawal_without_reason_or_second_operator_is_refused(
    registry: Registry, given: dict[str, str], refusal: str
) -> None:
    number = enrolled(registry)
    request = registry.request_change(number, certificate(), operator="op")
    before = snapshot(registry)
    with pytest.raises(RegistryError, match=refusal):
        withdraw(registry, request.id, **given)
    assert snapshot(registry) == before


def test_a_request_with_a_paid_fee_is_not_withdrawn(registry: Registry) -> None:
    number = enrolled(registry)
    registry.formalize_loss(number, operator="op", evidence="身份证")
    request = registry.request_reissue(number, operator="op")
    pay_fee(registry, request.id, receipt_no="R-0001", amount=request.fee, operator="op")
    before = snapshot(registry)
    with pytest.raises(RegistryError, match="系统没有退费流程，不能撤销"):
        withdraw(registry, request.id)
    assert snapshot(registry) == before


def test_a_request_in_a_job_done_or_withdrawn_is_not_withdrawn(registry: Registry) -> None:
    number = enrolled(registry)
    request = registry.request_change(number, certificate(), operator="op")
    running_job(registry, number, "C1", STATION)  # a job is making its card: in_job
    before = snapshot(registry)
    with pytest.raises(RegistryError, match="不能撤销：状态为 制卡中"):
        withdraw(registry, request.id)
    assert snapshot(registry) == before
    other = enrolled(registry, "440400194912310020", "李四")
    registry.formalize_loss(other, operator="op", evidence="身份证")
    second = registry.request_reissue(other, operator="op")
    withdraw(registry, second.id)
    before = snapshot(registry)
    with pytest.raises(RegistryError, match="不能撤销：状态为 已撤销"):
        withdraw(registry, second.id)
    with pytest.raises(RegistryError, match="没有申请 999"):
        withdraw(registry, 999)
    assert snapshot(registry) == before


def test_the_way_back_is_the_tables() -> None:
    assert way_back("reissue_pending", "formal_loss") == "withdraw"
    assert way_back("replacement_pending", "active") == "withdraw"
    assert way_back("replacement_pending", "provisional_loss") == "withdraw_to_provisional_loss"
    with pytest.raises(TransitionRefused, match="不能撤销"):
        way_back("replacement_pending", "formal_loss")
    with pytest.raises(TransitionRefused, match="不能撤销"):
        way_back("active", None)


def test_the_migration_keeps_the_requests_and_their_invariant(
    new_db: NewDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A registry made before ``WITHDRAW_MIGRATION`` with an open, an in-job and a done
    request is upgraded: statuses kept, the audit still verifies, a withdrawal works, the
    one-unfinished-request-per-card index still holds and an unknown status is refused."""
    db = new_db("old")
    with monkeypatch.context() as m:
        m.setattr(registry_module, "MIGRATIONS", MIGRATIONS[: MIGRATIONS.index(WITHDRAW_MIGRATION)])
        old = Registry(db, POLICY, clock=pinned_clock, audit_key=AUDIT_KEY)
        number = enrolled(old)
        old.formalize_loss(number, operator="op", evidence="ID")
        request = old.request_reissue(number, operator="op")
        in_job = enrolled(old, "440400194912310020", "李四")
        old.request_change(
            in_job, certificate(old_name="李四", old_id="440400194912310020", new_id=""),
            operator="op",
        )  # fmt: skip
        running_job(old, in_job, "C1", STATION)
        old.close()
    registry = Registry(db, POLICY, clock=pinned_clock, audit_key=AUDIT_KEY)
    try:
        assert registry.schema_version == len(MIGRATIONS)
        statuses = registry.db.execute("SELECT id, status FROM reissue_requests ORDER BY id")
        assert [tuple(r) for r in statuses] == [(1, "open"), (2, "in_job")]
        assert registry.verify_audit()[1] == []
        withdraw(registry, request.id)
        assert registry.card(number).status == "formal_loss"
        unfinished = pytest.raises(RegistryError, match="未完成的补/换卡申请")
        with unfinished, registry.transaction() as conn:
            conn.execute(  # a second unfinished request of the in-job card
                "INSERT INTO reissue_requests (person_id, old_card_id, kind, applied_on,"
                " collect_on, place, fee, operator, status) SELECT person_id, old_card_id,"
                " kind, applied_on, collect_on, place, fee, operator, 'open'"
                " FROM reissue_requests WHERE id = 2"
            )
        with pytest.raises(RegistryError), registry.transaction() as conn:
            conn.execute("UPDATE reissue_requests SET status = 'lost' WHERE id = 1")
        assert registry.verify_audit()[1] == []
    finally:
        registry.close()


def test_a_past_days_fee_report_keeps_the_fee_a_later_withdrawal_cancelled(
    new_db: NewDatabase,
) -> None:
    """The fee report of the day the 补卡 was applied for lists its fee outstanding; the
    request withdrawn the next day leaves that day's report as it was and is gone from the
    report of the day it was withdrawn (its ``withdrawn_at``)."""
    clock = MovingClock()
    registry = Registry(new_db("withdraw_fees"), POLICY, clock=clock, audit_key=AUDIT_KEY)
    try:
        number = enrolled(registry)
        registry.formalize_loss(number, operator="op", evidence="居民身份证")
        request = registry.request_reissue(number, operator="op")
        assert request.fee > 0
        applied = POLICY.local_date(PINNED)

        def outstanding(day: date) -> list[int]:
            return [u.request_id for u in fee_day_report(registry, day).outstanding]

        assert outstanding(applied) == [request.id]
        clock.now = PINNED + timedelta(days=1)
        withdraw(registry, request.id)
        assert outstanding(applied) == [request.id]  # as it was that evening
        assert outstanding(applied + timedelta(days=1)) == []
    finally:
        registry.close()
