"""A registry at a city's size (issue 13, item 2 and 6): the bulk seed gives valid persons and
cards and stays audited, every lookup path has an index, the provisional losses past their
deadline lapse on touch or by the sweep, and card pages neither skip nor repeat a card while
rows are added. Real SQLite files, a pinned clock."""

from __future__ import annotations

import sqlite3
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from personalize.lifecycle import VALID_CARD_STATUSES, CardStatus
from personalize.policy import load_policy
from personalize.registry import Registry
from personalize.seed import seed_registry
from sscard.identifiers import validate_card_number
from sscard.records import HolderData
from tests.audit_key import AUDIT_KEY
from tests.clock import PINNED, pinned_clock

POLICY = load_policy("default")


def _registry(path: Path, clock: object = pinned_clock) -> Registry:
    return Registry(path, POLICY, clock=clock, audit_key=AUDIT_KEY)  # type: ignore[arg-type]


@pytest.fixture
def seeded(tmp_path: Path) -> Registry:
    registry = _registry(tmp_path / "r.db")
    seed_registry(registry, 1200, operator="tester", chunk=500)
    return registry


def test_seeded_persons_and_cards_pass_the_projects_validators(seeded: Registry) -> None:
    persons = seeded.db.execute("SELECT * FROM persons").fetchall()
    assert len(persons) == 1200 and len({p["ssn"] for p in persons}) == 1200
    for p in persons:
        holder = HolderData.from_mapping(dict(p))
        holder.validate(today=POLICY.local_date(PINNED))  # GB 11643 check, birth date, gender
        p["name"].encode("gbk")
    cards = seeded.db.execute("SELECT * FROM cards").fetchall()
    for card in cards:
        validate_card_number(card["card_number"])
    statuses = Counter(c["status"] for c in cards)
    assert statuses[CardStatus.VOID] == 12 and statuses[CardStatus.FORMAL_LOSS] == 12
    assert statuses[CardStatus.PROVISIONAL_LOSS] == 12
    valid = Counter(c["person_id"] for c in cards if c["status"] in VALID_CARD_STATUSES)
    assert len(valid) == 1200 and set(valid.values()) == {1}  # one valid card each
    void = {c["card_number"] for c in cards if c["status"] == CardStatus.VOID}
    assert {b["card_number"] for b in seeded.db.execute("SELECT * FROM blacklist")} == void
    assert seeded.verify_audit()[1] == []
    # the counter moved past the seeded numbers: the next one is new, at once
    assert seeded.allocate_card_number() not in {c["card_number"] for c in cards}


def test_a_second_seed_continues_and_a_tampered_seeded_row_is_found(seeded: Registry) -> None:
    seed_registry(seeded, 10, operator="tester")
    ssns = [r[0] for r in seeded.db.execute("SELECT ssn FROM persons")]
    assert len(ssns) == len(set(ssns)) == 1210
    assert seeded.verify_audit()[1] == []
    with sqlite3.connect(seeded.path) as raw:
        raw.execute("UPDATE persons SET name = '李四' WHERE id = 1201")
        lost = raw.execute("SELECT MIN(id) FROM cards WHERE status = 'formal_loss'").fetchone()[0]
        raw.execute("UPDATE cards SET status = 'active' WHERE id = ?", (lost,))
    problems = seeded.verify_audit()[1]
    assert any("persons/1201" in p for p in problems)
    assert any(f"cards/{lost} " in p and "formal_loss" in p for p in problems)


def test_seed_without_the_audit_key_writes_nothing(tmp_path: Path) -> None:
    _registry(tmp_path / "r.db").close()
    read_only = Registry(tmp_path / "r.db", POLICY, clock=pinned_clock)
    with pytest.raises(Exception, match="审计密钥"):
        seed_registry(read_only, 10, operator="tester")
    assert read_only.db.execute("SELECT COUNT(*) FROM persons").fetchone()[0] == 0


LOOKUPS = [
    # (what, the query as the code runs it) — each must search an index, never scan a table
    ("card by number", "SELECT * FROM cards WHERE card_number = 'x'"),
    ("cards of a person", "SELECT * FROM cards WHERE person_id = 1 ORDER BY id"),
    ("history of a card", "SELECT * FROM status_history WHERE card_id = 1 ORDER BY id"),
    (
        "open request",
        "SELECT * FROM reissue_requests WHERE old_card_id = 1 AND status = 'open'"
        " ORDER BY id DESC LIMIT 1",
    ),
    (
        "live job of a card",
        "SELECT id, status FROM jobs WHERE old_card_id = 1 AND status IN"
        " ('queued', 'running', 'paused') ORDER BY id DESC LIMIT 1",
    ),
    ("job of a new card", "UPDATE jobs SET new_card_id = NULL WHERE new_card_id = 1"),
    (
        "SN seen",
        "SELECT 1 FROM cards WHERE sn = 'x' UNION ALL SELECT 1 FROM blacklist WHERE"
        " sn = 'x' UNION ALL SELECT 1 FROM job_steps WHERE sn = 'x' LIMIT 1",
    ),
    ("done steps", "SELECT step FROM job_steps WHERE job_id = 1 AND sn = 'x' AND result = 'ok'"),
    (
        "provisional losses due",
        "SELECT id FROM cards WHERE status = 'provisional_loss'"
        " AND lapse_at <= 'x' ORDER BY lapse_at",
    ),
    ("blacklisted number", "SELECT 1 FROM blacklist WHERE card_number = 'x'"),
    (
        "card page of a status",
        "SELECT c.*, p.name FROM cards c JOIN persons p ON"
        " p.id = c.person_id WHERE c.id > 5 AND c.status = 'active' ORDER BY c.id LIMIT 51",
    ),
    (
        "job page of a status",
        "SELECT * FROM jobs WHERE id > 5 AND status = 'queued' ORDER BY id LIMIT 51",
    ),
    ("office reports of a card", "SELECT * FROM office_reports WHERE card_number = 'x'"),
]


@pytest.mark.parametrize(("what", "query"), LOOKUPS, ids=[w for w, _ in LOOKUPS])
def test_every_lookup_path_searches_an_index(seeded: Registry, what: str, query: str) -> None:
    seeded.db.execute("ANALYZE")
    plan = [row[3] for row in seeded.db.execute(f"EXPLAIN QUERY PLAN {query}")]
    scans = [step for step in plan if step.startswith("SCAN")]
    assert not scans, f"{what}: {plan}"


def test_a_lapse_due_shows_on_reading_and_is_recorded_by_the_next_change(
    seeded: Registry,
) -> None:
    due = seeded.db.execute(
        "SELECT card_number FROM cards WHERE status = 'provisional_loss' AND lapse_at <= ?",
        (PINNED.isoformat(),),
    ).fetchall()
    number = due[0][0]
    events = seeded.db.execute("SELECT COUNT(*) FROM audit_events").fetchone()[0]
    assert seeded.card(number).status == CardStatus.ACTIVE  # read: shown lapsed …
    stored = seeded.db.execute("SELECT status FROM cards WHERE card_number = ?", (number,))
    assert stored.fetchone()[0] == CardStatus.PROVISIONAL_LOSS  # … nothing written
    assert seeded.db.execute("SELECT COUNT(*) FROM audit_events").fetchone()[0] == events
    seeded.report_loss(number, operator="counter")  # the change records the lapse first
    history = [h.to_status for h in seeded.history(seeded.card(number).id)]
    assert history == [CardStatus.ACTIVE, CardStatus.PROVISIONAL_LOSS]
    assert seeded.verify_audit()[1] == []


def test_the_sweep_records_every_lapse_due_at_now_and_only_those(seeded: Registry) -> None:
    later = PINNED + timedelta(minutes=5)
    sweeper = _registry(seeded.path, clock=lambda: later)
    assert sweeper.lapse_expired() == 6  # 12 provisional losses, half of them past due
    rows = sweeper.db.execute("SELECT status, lapse_at FROM cards WHERE lapse_at IS NOT NULL")
    assert {(r[0], r[1] > later.isoformat()) for r in rows} == {("provisional_loss", True)}
    lapses = sweeper.db.execute("SELECT at, operator FROM status_history").fetchall()
    assert len(lapses) == 6 and {tuple(r) for r in lapses} == {(later.isoformat(), "system")}
    assert sweeper.lapse_expired() == 0
    assert sweeper.verify_audit()[1] == []


def test_card_pages_neither_skip_nor_repeat_while_cards_are_added(seeded: Registry) -> None:
    seen: list[int] = []
    after = 0
    while True:
        page = seeded.card_page(after=after, limit=97)
        if not page:
            break
        seen += [listed.card.id for listed in page]
        after = page[-1].card.id
        if len(seen) < 400:  # more persons arrive while the list is read
            seed_registry(seeded, 20, operator="tester")
    total = seeded.db.execute("SELECT COUNT(*) FROM cards").fetchone()[0]
    assert seen == sorted(set(seen)) and len(seen) == total
    lost = seeded.card_page(status="formal_loss", limit=1000)
    assert lost and {listed.card.status for listed in lost} == {"formal_loss"}
    assert all(listed.holder_ssn and listed.holder_name for listed in lost)
    with pytest.raises(Exception, match="未知的卡状态"):
        seeded.card_page(status="lost")
