"""The auditor's reading of the audit chain (issue 16, Deliver 5; docs/console.md "Auditor"):
every SQL statement of the search of ``audit_events`` and of the chain's head.

A search filters by subject (a card and what concerns it, a person), operator and time range
(UTC ISO-8601 text, compared as text, as stored), newest first, one page at a time: the
keyset is (``at``, ``id``) — a page costs O(log n + page) through the indexes
``audit_events_by_at|subject|operator`` (the registry's migration after the API's), however
deep the page, where ``OFFSET`` would read every row before it. A store module
(docs/architecture.md "The store layer"): it never opens a transaction of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from personalize.database import Database, Row
from personalize.registry import request_number
from sscard.errors import InvalidData
from sscard.identifiers import canonical_ssn, first_generation_ssn


@dataclass(frozen=True)
class AuditEvent:
    """One ``audit_events`` row as the auditor reads it: ``at`` is UTC, ``details`` the JSON
    as stored (what the chain's hash covers)."""

    id: int
    at: str
    operator: str
    action: str
    subject: str
    details: str


@dataclass(frozen=True)
class EventSearch:
    """What to look for: ``subjects`` (None: any; empty: nothing can match), ``operator``,
    and the time range ``since`` (inclusive) to ``until`` (exclusive), UTC ISO-8601."""

    subjects: tuple[str, ...] | None = None
    operator: str | None = None
    since: str | None = None
    until: str | None = None


def _event(row: Row) -> AuditEvent:
    return AuditEvent(
        int(row["id"]),
        str(row["at"]),
        str(row["operator"]),
        str(row["action"]),
        str(row["subject"]),
        str(row["details"]),
    )


def event(db: Database, event_id: int) -> AuditEvent | None:
    row = db.execute(
        "SELECT id, at, operator, action, subject, details FROM audit_events WHERE id = ?",
        (event_id,),
    ).fetchone()
    return None if row is None else _event(row)


def chain_head(db: Database) -> AuditEvent | None:
    """The last event of the chain (None: no event yet)."""
    row = db.execute(
        "SELECT id, at, operator, action, subject, details FROM audit_events"
        " ORDER BY id DESC LIMIT 1"
    ).fetchone()
    return None if row is None else _event(row)


def event_page(
    db: Database, search: EventSearch, *, before: AuditEvent | None = None, limit: int = 50
) -> list[AuditEvent]:
    """Up to ``limit`` events matching ``search``, newest first (by ``at``, then ``id``),
    after ``before`` — the last event of the previous page (keyset pagination)."""
    if search.subjects == ():
        return []
    where: list[str] = []
    params: list[object] = []
    if search.subjects is not None:
        where.append(f"subject IN ({', '.join('?' for _ in search.subjects)})")
        params += search.subjects
    for clause, value in (
        ("operator = ?", search.operator),
        ("at >= ?", search.since),
        ("at < ?", search.until),
    ):
        if value is not None:
            where.append(clause)
            params.append(value)
    if before is not None:
        where.append("at <= ? AND (at < ? OR id < ?)")  # (at, id) < before's: an index range
        params += (before.at, before.at, before.id)
    rows = db.execute(
        "SELECT id, at, operator, action, subject, details FROM audit_events"
        + (" WHERE " + " AND ".join(where) if where else "")
        + " ORDER BY at DESC, id DESC LIMIT ?",
        (*params, limit),
    )
    return [_event(r) for r in rows]


def card_subjects(db: Database, card_number: str) -> tuple[str, ...] | None:
    """The subjects under which the chain records what concerns a card: its number, its
    reissue requests (``SSCARD-REQ-…``) and the jobs that replace it or make it
    (``job-N``). None: no such card."""
    card = db.execute("SELECT id FROM cards WHERE card_number = ?", (card_number,)).fetchone()
    if card is None:
        return None
    requests = db.execute(
        "SELECT id FROM reissue_requests WHERE old_card_id = ? ORDER BY id", (card["id"],)
    )
    jobs = db.execute(
        "SELECT id FROM jobs WHERE old_card_id = ? OR new_card_id = ? ORDER BY id",
        (card["id"], card["id"]),
    )
    return (
        card_number,
        *(request_number(int(r["id"])) for r in requests),
        *(f"job-{int(j['id'])}" for j in jobs),
    )


def _person_id(db: Database, ssn: str) -> int | None:
    """The person recorded under ID number ``ssn`` — a 15-digit first-generation number by
    its upgrade (``canonical_ssn``) — or else the one whose applied 换领 left it (the latest
    ``identity_changes.old_ssn``); None: nobody, or a malformed 15-digit number."""
    try:
        number = canonical_ssn(ssn)
    except InvalidData:
        return None
    row: Row | None = db.execute("SELECT id FROM persons WHERE ssn = ?", (number,)).fetchone()
    if row is None:
        row = db.execute(
            "SELECT person_id AS id FROM identity_changes WHERE old_ssn = ?"
            " AND applied_at IS NOT NULL ORDER BY id DESC LIMIT 1",
            (number,),
        ).fetchone()
    return None if row is None else int(row["id"])


def person_numbers(db: Database, ssn: str) -> tuple[str, ...] | None:
    """Every ID number the person of ``ssn`` (:func:`_person_id`) had — the current one, then
    those their applied 换领 replaced — each followed by its 15-digit first-generation form
    where it has one: the numbers an API path may have named them by. None: no such person."""
    person_id = _person_id(db, ssn)
    if person_id is None:
        return None
    current = db.execute("SELECT ssn FROM persons WHERE id = ?", (person_id,)).fetchall()
    old = db.execute(
        "SELECT old_ssn FROM identity_changes WHERE person_id = ? AND applied_at IS NOT NULL"
        " ORDER BY id DESC",
        (person_id,),
    ).fetchall()
    numbers = [*(str(r["ssn"]) for r in current), *(str(r["old_ssn"]) for r in old)]
    forms = (f for n in numbers for f in (n, first_generation_ssn(n)) if f is not None)
    return tuple(dict.fromkeys(forms))


def person_subjects(db: Database, ssn: str) -> tuple[str, ...] | None:
    """The subjects under which the chain records what concerns the person with ID number
    ``ssn`` (found as :func:`_person_id` finds them: by a 15-digit number's upgrade, by a
    number a 换领 replaced): ``person/<id>`` (their 查询密码) and each of their cards'
    (``card_subjects``). None: no such person."""
    person_id = _person_id(db, ssn)
    if person_id is None:
        return None
    cards = db.execute(
        "SELECT card_number FROM cards WHERE person_id = ? ORDER BY id", (person_id,)
    ).fetchall()
    subjects = [f"person/{person_id}"]
    for card in cards:
        subjects += card_subjects(db, str(card["card_number"])) or ()
    return tuple(subjects)
