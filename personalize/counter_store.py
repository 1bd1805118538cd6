"""What the counter's pages read besides the registry's own queries (issue 16, Deliver 3;
docs/console.md "Counter"): the persons of a name (同名: several may match), a person's
补卡/换卡 requests, and the 验卡单 of a card — as the frozen records of
``personalize.registry_records``.

A store module (docs/architecture.md "The store layer"): it runs the SQL, reads only, and
never opens a transaction."""

from __future__ import annotations

from personalize.database import Database
from personalize.registry_records import (
    OfficeReport,
    Person,
    ReissueRequest,
    office_report_of,
    person_of,
    request_of,
)

NAMED_LIMIT = 50  # a name shared by more persons than this lists the first ones only


def persons_named(db: Database, name: str, *, limit: int = NAMED_LIMIT) -> list[Person]:
    """The persons enrolled under exactly ``name``, in enrolment order (index
    ``persons_by_name``)."""
    rows = db.execute(
        "SELECT * FROM persons WHERE name = ? ORDER BY id LIMIT ?", (name, limit)
    ).fetchall()
    return [person_of(r) for r in rows]


def requests_of_person(db: Database, person_id: int) -> list[ReissueRequest]:
    """The person's 补卡 and 换卡 requests, newest first."""
    rows = db.execute(
        "SELECT * FROM reissue_requests WHERE person_id = ? ORDER BY id DESC", (person_id,)
    ).fetchall()
    return [request_of(r) for r in rows]


def office_reports_of(db: Database, card_number: str) -> list[OfficeReport]:
    """The 验卡单 stored for a card (index ``office_reports_by_card``), newest first."""
    rows = db.execute(
        "SELECT * FROM office_reports WHERE card_number = ? ORDER BY id DESC", (card_number,)
    ).fetchall()
    return [office_report_of(r) for r in rows]
