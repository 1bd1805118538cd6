"""The registry's domain objects besides :class:`personalize.registry.Card` (issue 13,
Deliver 1: queries return typed objects, never database rows): a person (参保人), a
reissue or replacement request (补卡/换卡申请), a card's status history entry and a stored
验卡单 (office verification report), each built from its table's row here and nowhere else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from personalize.database import Row
from personalize.lifecycle import CardStatus, RequestStatus


@dataclass(frozen=True)
class Person:
    """A ``persons`` row: the holder's identity as enrolled (GB 11643 ID in ``ssn``)."""

    id: int
    ssn: str
    name: str
    gender: str
    ethnicity: str
    birthplace: str
    birth_date: str  # ISO 8601 date
    created_at: str


@dataclass(frozen=True)
class ReissueRequest:
    """A ``reissue_requests`` row: a 补卡 (``kind`` reissue) or 换卡 (replacement) request."""

    id: int
    person_id: int
    old_card_id: int
    kind: str  # 'reissue' or 'replacement'
    status: RequestStatus
    applied_on: str  # ISO 8601 dates, in the region's zone
    collect_on: str
    place: str
    fee: int
    operator: str
    counter: str | None
    agent: str | None  # Agent.as_text() of whoever applied for the holder
    job_id: int | None


@dataclass(frozen=True)
class HistoryEntry:
    """A ``status_history`` row: one change of a card's status."""

    id: int
    card_id: int
    from_status: CardStatus | None
    to_status: CardStatus
    at: str
    operator: str
    reason: str
    evidence: str | None


@dataclass(frozen=True)
class OfficeReport:
    """An ``office_reports`` row: a stored 验卡单 and what it said (``data``)."""

    id: int
    report_no: str
    card_number: str | None
    request_id: int | None
    at: str
    operator: str
    data: dict[str, Any]


def person_of(row: Row) -> Person:
    return Person(
        id=int(row["id"]),
        ssn=row["ssn"],
        name=row["name"],
        gender=row["gender"],
        ethnicity=row["ethnicity"],
        birthplace=row["birthplace"],
        birth_date=row["birth_date"],
        created_at=row["created_at"],
    )


def request_of(row: Row) -> ReissueRequest:
    return ReissueRequest(
        id=int(row["id"]),
        person_id=int(row["person_id"]),
        old_card_id=int(row["old_card_id"]),
        kind=row["kind"],
        status=RequestStatus(row["status"]),
        applied_on=row["applied_on"],
        collect_on=row["collect_on"],
        place=row["place"],
        fee=int(row["fee"]),
        operator=row["operator"],
        counter=row["counter"],
        agent=row["agent"],
        job_id=row["job_id"],
    )


def history_entry_of(row: Row) -> HistoryEntry:
    source = row["from_status"]
    return HistoryEntry(
        id=int(row["id"]),
        card_id=int(row["card_id"]),
        from_status=None if source is None else CardStatus(source),
        to_status=CardStatus(row["to_status"]),
        at=row["at"],
        operator=row["operator"],
        reason=row["reason"],
        evidence=row["evidence"],
    )


def office_report_of(row: Row) -> OfficeReport:
    return OfficeReport(
        id=int(row["id"]),
        report_no=row["report_no"],
        card_number=row["card_number"],
        request_id=row["request_id"],
        at=row["at"],
        operator=row["operator"],
        data=json.loads(row["data"]),
    )
