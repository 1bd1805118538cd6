"""The medical-account balance carried to the new card (issue 17; docs/business-rules.md "The
medical-account balance", 莱西: "新卡激活以后,原卡将自动废止,医疗保险个人帐户金有余额的,自动
转入"): yuan text to integer fen, exact; the business system's report kept until the
activation's transaction records the transfer, or the transfer left pending and completed
by a late report; a strict region's refusal; bad reports refused with nothing written; the
rows audited — on SQLite and PostgreSQL (``new_db``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from personalize.jobs import claim_job
from personalize.medical_balance import BalanceTransfer, TransferStatus, fen_of_yuan, yuan_text
from personalize.policy import PolicyError, load_policy
from personalize.registry import ACTIVATION_EVIDENCE, Registry, RegistryError
from sscard.errors import InvalidData
from tests.audit_key import AUDIT_KEY
from tests.clock import pinned_clock
from tests.conftest import NewDatabase
from tests.integration.api_fixture import holder
from tests.stores import behind_its_back, fed_job, record_steps

POLICY = load_policy("default")
STRICT = replace(POLICY, balance_required_before_activation=True)


# ------------------------------------------------------------------ yuan → fen


@pytest.mark.parametrize(
    ("text", "fen"),
    [("0.10", 10), ("0.29", 29), ("12345678.99", 1234567899), ("0", 0), ("1.5", 150),
     ("0.07", 7), ("1.1", 110), ("99999999.99", 9999999999), ("4.35", 435)],
)  # fmt: skip
def test_yuan_become_exact_fen(text: str, fen: int) -> None:
    assert fen_of_yuan(text) == fen
    # the independent reading: Python's decimal arithmetic (no binary floating point)
    assert fen == int(Decimal(text) * 100)
    assert yuan_text(fen) == str(Decimal(text).quantize(Decimal("0.01")))


def test_a_float_would_lose_a_fen_where_the_codec_does_not() -> None:
    # why the amount never goes through a float: 0.29 yuan is 28.999999999999996 fen there
    assert int(float("0.29") * 100) == 28 and fen_of_yuan("0.29") == 29
    assert int(float("4.35") * 100) == 434 and fen_of_yuan("4.35") == 435


@pytest.mark.parametrize(
    ("text", "says"),
    [("-1.00", "负数"), ("-0", "负数"), ("1.234", "两位小数"), ("0.001", "两位小数"),
     ("abc", "十进制"), ("1e3", "十进制"), ("", "十进制"), (" 1", "十进制"), ("1.", "十进制"),
     (".5", "十进制"), ("01", "十进制"), ("+1", "十进制"), ("1,000", "十进制"), ("NaN", "十进制"),
     ("Infinity", "十进制"), ("１２", "十进制"), ("100000000.00", "上限"), ("9" * 5000, "上限")],
)  # fmt: skip
def test_bad_amounts_are_refused_with_their_reason(text: str, says: str) -> None:
    with pytest.raises(InvalidData, match=says):
        fen_of_yuan(text, maximum=POLICY.balance_max_fen)


def test_the_policy_holds_the_ceiling_and_the_strict_flag(tmp_path: Path) -> None:
    assert POLICY.balance_max_fen == 9_999_999_999
    assert POLICY.balance_required_before_activation is False
    text = (Path(__file__).parents[2] / "personalize/policies/default.toml").read_text()
    strict = text.replace("required_before_activation = false", "required_before_activation = true")
    strict = strict.replace('max = "99999999.99"', 'max = "50000"')
    (tmp_path / "strict.toml").write_text(strict)
    policy = load_policy(tmp_path / "strict.toml")
    assert policy.balance_required_before_activation is True
    assert policy.balance_max_fen == 5_000_000
    for old, bad in (
        ('max = "50000"', 'max = "5.001"'),
        ('max = "50000"', 'max = "-5"'),
        ("required_before_activation = true", "required_before_activation = 1"),
    ):
        (tmp_path / "bad.toml").write_text(strict.replace(old, bad))
        with pytest.raises(PolicyError, match="medical_balance"):
            load_policy(tmp_path / "bad.toml")


# ------------------------------------------------------------------ the registry


@pytest.fixture
def job(new_db: NewDatabase) -> Iterator[tuple[Registry, int, int]]:
    """A registry with a job whose new card was made (every step recorded) and not yet
    activated: (registry, job id, new card id)."""
    registry = Registry(new_db("registry"), POLICY, clock=pinned_clock, audit_key=AUDIT_KEY)
    job_id, card_id = fed_job(registry)
    record_steps(registry, "feed", *ACTIVATION_EVIDENCE)
    yield registry, job_id, card_id
    registry.close()


def old_card(registry: Registry, job_id: int) -> str:
    return registry.card_by_id(registry.job(job_id).old_card_id).card_number


def activate(registry: Registry, job_id: int, card_id: int) -> None:
    fence = claim_job(registry, job_id, "station-1")
    registry.activate(card_id, operator="op", job_id=job_id, fence=fence)


def report(
    registry: Registry,
    card: str,
    amount: str,
    *,
    as_of: datetime | None = None,
    reference: str = "YB-1",
) -> BalanceTransfer:
    return registry.report_balance(
        card,
        amount,
        as_of=pinned_clock() - timedelta(hours=1) if as_of is None else as_of,
        reference=reference,
        operator="api:yb",
    )


def events(registry: Registry, prefix: str) -> list[tuple[str, str]]:
    rows = registry.db.execute("SELECT action, details FROM audit_events ORDER BY id")
    return [(r["action"], r["details"]) for r in rows if str(r["action"]).startswith(prefix)]


def state(registry: Registry) -> tuple[object, ...]:
    """Everything a refused report or activation must leave as it was."""
    db = registry.db
    return (
        [tuple(r) for r in db.execute("SELECT * FROM balance_transfers ORDER BY id")],
        db.execute("SELECT COUNT(*) FROM audit_events").fetchone()[0],
        [tuple(r) for r in db.execute("SELECT id, status FROM cards ORDER BY id")],
    )


def test_a_reported_balance_moves_to_the_new_card_in_the_activation(
    job: tuple[Registry, int, int],
) -> None:
    registry, job_id, card_id = job
    old = old_card(registry, job_id)
    report(registry, old, "100.00", reference="YB-1")
    report(registry, old, "0.29", reference="YB-2")  # a later report replaces the first
    stale = pinned_clock() - timedelta(hours=2)  # read before the kept one: never replaces it
    with pytest.raises(RegistryError, match="早于已报送余额的时点"):
        report(registry, old, "50.00", as_of=stale, reference="YB-0")
    transfer = registry.balances.of_request(registry.job(job_id).request_id)
    assert transfer is not None and transfer.status == TransferStatus.REPORTED
    assert (transfer.amount_fen, transfer.reference, transfer.new_card_id) == (29, "YB-2", None)
    reports = [d for a, d in events(registry, "balance.report")]
    assert '"replaces": null' in reports[0] and '"replaces": 10000' in reports[1]

    activate(registry, job_id, card_id)
    new = registry.card_by_id(card_id)
    done = registry.balance_transfers(new)
    assert [(t.status, t.amount_fen, t.new_card_id) for t in done] == [
        (TransferStatus.TRANSFERRED, 29, card_id)
    ]
    assert registry.balance_transfers(registry.card(old)) == done  # the same row, both cards
    (_action, details), = events(registry, "balance.transfer")  # fmt: skip
    assert '"amount": "0.29"' in details and '"amount_fen": 29' in details
    assert f'"to_card": "{new.card_number}"' in details
    activation = next(d for a, d in events(registry, "card.activate"))
    assert '"balance": {' in activation and '"status": "transferred"' in activation
    assert registry.verify_audit()[1] == []

    with pytest.raises(RegistryError, match="没有待换发的新卡"):  # transferred: no more reports
        report(registry, old, "1.00")
    with pytest.raises(RegistryError, match="没有待换发的新卡"):  # the new card awaits nothing
        report(registry, new.card_number, "1.00")


def test_activation_without_a_report_leaves_the_transfer_pending_until_one_comes(
    job: tuple[Registry, int, int],
) -> None:
    registry, job_id, card_id = job
    old = old_card(registry, job_id)
    activate(registry, job_id, card_id)
    (pending,) = registry.balance_transfers(registry.card_by_id(card_id))
    assert (pending.status, pending.amount_fen) == (TransferStatus.PENDING, None)
    assert [a for a, _ in events(registry, "balance.")] == ["balance.pending"]

    report(registry, old, "12345678.99", reference="YB-late")
    (done,) = registry.balance_transfers(registry.card_by_id(card_id))
    assert (done.status, done.amount_fen, done.reference) == (
        TransferStatus.TRANSFERRED, 1234567899, "YB-late"
    )  # fmt: skip
    assert done.transferred_at is not None
    assert [a for a, _ in events(registry, "balance.")] == ["balance.pending", "balance.transfer"]
    assert registry.verify_audit()[1] == []


def test_a_strict_region_refuses_activation_until_the_balance_is_reported(
    job: tuple[Registry, int, int],
) -> None:
    registry, job_id, card_id = job
    registry.policy = STRICT
    fence = claim_job(registry, job_id, "station-1")
    before = state(registry)
    with pytest.raises(RegistryError, match="医保个人账户余额尚未由业务系统报送"):
        registry.activate(card_id, operator="op", job_id=job_id, fence=fence)
    assert state(registry) == before and registry.card_by_id(card_id).status == "personalizing"
    report(registry, old_card(registry, job_id), "0.10")
    registry.activate(card_id, operator="op", job_id=job_id, fence=fence)
    (done,) = registry.balance_transfers(registry.card_by_id(card_id))
    assert (done.status, done.amount_fen) == (TransferStatus.TRANSFERRED, 10)


def test_bad_reports_are_refused_and_write_nothing(job: tuple[Registry, int, int]) -> None:
    registry, job_id, _ = job
    old = old_card(registry, job_id)
    other = registry.allocate_card_number()  # a valid card awaiting no new card
    registry.enroll(holder(3), other, operator="op")
    before = state(registry)
    for amount in ("-5", "1.234", "ten", "100000000.00"):
        with pytest.raises(InvalidData):
            report(registry, old, amount)
    with pytest.raises(InvalidData, match="晚于当前时间"):
        report(registry, old, "1.00", as_of=pinned_clock() + timedelta(minutes=1))
    with pytest.raises(InvalidData, match="时区"):
        report(registry, old, "1.00", as_of=pinned_clock().replace(tzinfo=None))
    with pytest.raises(RegistryError, match="没有待换发的新卡"):
        report(registry, other, "1.00")
    with pytest.raises(RegistryError, match="不在登记库中"):
        report(registry, "H99999990", "1.00")
    assert state(registry) == before


def test_a_transfer_row_edited_behind_sscards_back_breaks_the_audit(
    job: tuple[Registry, int, int],
) -> None:
    registry, job_id, card_id = job
    report(registry, old_card(registry, job_id), "0.29")
    activate(registry, job_id, card_id)
    assert registry.verify_audit()[1] == []
    behind_its_back(registry.path, "UPDATE balance_transfers SET amount_fen = 2900")
    problems = registry.verify_audit()[1]
    assert problems and any("balance_transfers/1" in p for p in problems)
