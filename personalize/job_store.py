"""The jobs repository (issue 13, Deliver 1: one store layer): every SQL statement about the
tables ``jobs``, ``job_steps`` and ``job_photos``, behind methods that return typed, frozen
domain objects (:class:`Job`, :class:`JobStep`, :class:`JobSummary`) with enums for the
statuses (:class:`personalize.lifecycle.JobStatus`, :class:`StepResult`).

The store runs statements on the registry's connection and never opens a transaction of its
own: the workflows (:mod:`personalize.jobs`, :mod:`personalize.station_worker`) call it
inside ``Registry.transaction()``, which checks the fencing token and audits in the same
transaction (docs/architecture.md "The store layer").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from personalize.database import Database, Row
from personalize.lifecycle import JobStatus


class StepResult(StrEnum):
    """What a ``job_steps`` row records (docs/service.md, Jobs)."""

    OK = "ok"  # the step is done (verified steps are what a job resumes after)
    INTENT = "intent"  # a print begun, its outcome not yet known
    REJECTED = "rejected"  # the card went to the reject bin (``step = 'card'``)
    LOST = "lost"  # the card is no longer the job's (``step = 'card'``)


@dataclass(frozen=True)
class Job:
    """One ``jobs`` row: a reissued card being made."""

    id: int
    request_id: int
    person_id: int
    old_card_id: int
    new_card_id: int | None
    holder: str  # JSON of the holder's fields
    tracks: bytes | None  # sealed track images (TrackVault)
    status: JobStatus
    step: str | None
    sn: str | None
    attempts: int
    station: str | None
    lease_until: str | None
    fence: int
    heartbeat_at: str | None
    last_error: str | None
    operator: str
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class JobStep:
    """One ``job_steps`` row: a step's intent or outcome, against the card's chip SN."""

    id: int
    job_id: int
    step: str
    result: StepResult
    sn: str | None
    at: str
    details: dict[str, Any]
    fence: int | None


@dataclass(frozen=True)
class JobSummary:
    """A job as listed to the operator: with its holder and both card numbers."""

    job: Job
    holder_name: str
    holder_ssn: str
    old_card_number: str
    new_card_number: str | None


@dataclass(frozen=True)
class RepeatedStep:
    """A step recorded ``ok`` more than once for one card (``fence`` None) or for one card
    under one claim (``fence`` its token): what a center's run must never leave."""

    job_id: int
    sn: str | None
    step: str
    fence: int | None


@dataclass(frozen=True)
class StepSpan:
    """When a step recorded ``ok`` began and ended (ISO 8601, milliseconds)."""

    job_id: int
    step: str
    started_at: str
    ended_at: str


@dataclass(frozen=True)
class StationSeen:
    """A station as the jobs it has held show it (``jobs.station``): how many, its last
    heartbeat and the last change it made to one (docs/console.md "Card center")."""

    name: str
    jobs: int
    last_heartbeat: str | None
    last_change: str


@dataclass(frozen=True)
class WrittenOff:
    """A card a job wrote off (``job_steps`` ``card`` record): to the reject bin
    (``rejected``) or lost, with the reason; ``station`` is the job's (its last holder)."""

    job_id: int
    station: str | None
    sn: str | None
    result: StepResult
    reason: str
    at: str


_JOB_COLUMNS = (
    "id, request_id, person_id, old_card_id, new_card_id, holder, tracks, status, step, sn,"
    " attempts, station, lease_until, fence, heartbeat_at, last_error, operator, created_at,"
    " updated_at"
)
_SUMMARY_QUERY = (
    "SELECT "
    + ", ".join(f"j.{c.strip()}" for c in _JOB_COLUMNS.split(","))
    + ", p.name AS holder_name, p.ssn AS holder_ssn,"
    " o.card_number AS old_card_number, n.card_number AS new_card_number"
    " FROM jobs j JOIN persons p ON p.id = j.person_id JOIN cards o ON o.id = j.old_card_id"
    " LEFT JOIN cards n ON n.id = j.new_card_id"
)
_STEP_COLUMNS = "id, job_id, step, result, sn, at, details, fence"

# The claim's candidates (docs/service.md "Stations that pull work"): first the station's
# own running jobs (index jobs_claim_own), then jobs whose holder stopped heartbeating
# (index jobs_claim_expired), then the queue in submission order (index jobs_by_status);
# only jobs of the station's region (the old card's, cards.region).
_CLAIMABLE = (
    "SELECT "
    + ", ".join(f"j.{c.strip()}" for c in _JOB_COLUMNS.split(","))
    + " FROM jobs j JOIN cards c ON c.id = j.old_card_id"
    " WHERE j.status = ? AND c.region = ? {condition} ORDER BY {order} LIMIT ?"
)
OWN_QUERY = _CLAIMABLE.format(condition="AND j.station = ?", order="j.id")
EXPIRED_QUERY = _CLAIMABLE.format(condition="AND j.lease_until <= ?", order="j.lease_until, j.id")
QUEUED_QUERY = _CLAIMABLE.format(condition="", order="j.id")

# Fields a step may set with its record, in the same fenced transaction.
JOB_FIELDS = ("sn",)


def _job(row: Row) -> Job:
    tracks = row["tracks"]
    return Job(
        id=int(row["id"]),
        request_id=int(row["request_id"]),
        person_id=int(row["person_id"]),
        old_card_id=int(row["old_card_id"]),
        new_card_id=row["new_card_id"],
        holder=row["holder"],
        tracks=None if tracks is None else bytes(tracks),
        status=JobStatus(row["status"]),
        step=row["step"],
        sn=row["sn"],
        attempts=int(row["attempts"]),
        station=row["station"],
        lease_until=row["lease_until"],
        fence=int(row["fence"]),
        heartbeat_at=row["heartbeat_at"],
        last_error=row["last_error"],
        operator=row["operator"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _step(row: Row) -> JobStep:
    return JobStep(
        id=int(row["id"]),
        job_id=int(row["job_id"]),
        step=row["step"],
        result=StepResult(row["result"]),
        sn=row["sn"],
        at=row["at"],
        details=json.loads(row["details"]),
        fence=row["fence"],
    )


class JobStore:
    """The jobs, their step records and photos, on one registry connection."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # ----------------------------------------------------------------- reading

    def get(self, job_id: int) -> Job | None:
        row = self.db.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,))
        found = row.fetchone()
        return None if found is None else _job(found)

    def live_for_card(self, old_card_id: int) -> Job | None:
        """The newest queued, running or paused job for the old card, if any."""
        row = self.db.execute(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE old_card_id = ? AND status IN (?, ?, ?)"
            " ORDER BY id DESC LIMIT 1",
            (old_card_id, JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.PAUSED),
        ).fetchone()
        return None if row is None else _job(row)

    def summary(self, job_id: int) -> JobSummary | None:
        row = self.db.execute(_SUMMARY_QUERY + " WHERE j.id = ?", (job_id,)).fetchone()
        return None if row is None else _summary(row)

    def page(
        self, *, status: JobStatus | None = None, after: int = 0, limit: int = 50
    ) -> list[JobSummary]:
        """One page of jobs in id order after job id ``after`` (keyset pagination: a page
        costs O(log n + limit)), optionally of one status."""
        where = " WHERE j.id > ?" + ("" if status is None else " AND j.status = ?")
        params: tuple[object, ...] = (after,) + (() if status is None else (str(status),))
        rows = self.db.execute(_SUMMARY_QUERY + where + " ORDER BY j.id LIMIT ?", (*params, limit))
        return [_summary(r) for r in rows]

    def latest(self, status: JobStatus, *, limit: int) -> list[JobSummary]:
        """The newest ``limit`` jobs of ``status``, newest first (index jobs_by_status)."""
        rows = self.db.execute(
            _SUMMARY_QUERY + " WHERE j.status = ? ORDER BY j.id DESC LIMIT ?", (str(status), limit)
        )
        return [_summary(r) for r in rows]

    def stations(self) -> list[StationSeen]:
        """Every station that has held a job, by name."""
        rows = self.db.execute(
            "SELECT station, COUNT(*) AS jobs, MAX(heartbeat_at) AS beat,"
            " MAX(updated_at) AS changed FROM jobs WHERE station IS NOT NULL"
            " GROUP BY station ORDER BY station"
        )
        return [
            StationSeen(str(r["station"]), int(r["jobs"]), r["beat"], str(r["changed"]))
            for r in rows
        ]

    def written_off(self, *, limit: int) -> list[WrittenOff]:
        """The newest ``limit`` cards written off by jobs (the reject bin and lost cards),
        newest first."""
        rows = self.db.execute(
            "SELECT s.job_id, j.station, s.sn, s.result, s.details, s.at FROM job_steps s"
            " JOIN jobs j ON j.id = s.job_id WHERE s.step = 'card' AND s.result IN (?, ?)"
            " ORDER BY s.id DESC LIMIT ?",
            (str(StepResult.REJECTED), str(StepResult.LOST), limit),
        )
        return [
            WrittenOff(
                int(r["job_id"]),
                r["station"],
                r["sn"],
                StepResult(r["result"]),
                str(json.loads(r["details"]).get("reason", "")),
                str(r["at"]),
            )
            for r in rows
        ]

    def claimable(self, query: str, params: tuple[object, ...]) -> list[Job]:
        """Candidates of one claim query (:data:`OWN_QUERY`, :data:`EXPIRED_QUERY`,
        :data:`QUEUED_QUERY`), their rows locked and locked ones skipped on PostgreSQL."""
        rows = self.db.execute(query + self.db.lock_skipping("j"), params).fetchall()
        return [_job(r) for r in rows]

    def photo(self, job_id: int) -> bytes | None:
        row = self.db.execute("SELECT photo FROM job_photos WHERE job_id = ?", (job_id,))
        found = row.fetchone()
        return None if found is None else bytes(found[0])

    def steps(self, job_id: int) -> list[JobStep]:
        rows = self.db.execute(
            f"SELECT {_STEP_COLUMNS} FROM job_steps WHERE job_id = ? ORDER BY id", (job_id,)
        )
        return [_step(r) for r in rows]

    def last_step(
        self, job_id: int, sn: str, step: str, result: StepResult | None = None
    ) -> JobStep | None:
        """The newest record of ``step`` for the card ``sn`` in the job (of ``result``)."""
        row = self.db.execute(
            f"SELECT {_STEP_COLUMNS} FROM job_steps WHERE job_id = ? AND sn = ? AND step = ?"
            + ("" if result is None else " AND result = ?")
            + " ORDER BY id DESC LIMIT 1",
            (job_id, sn, step) + (() if result is None else (str(result),)),
        ).fetchone()
        return None if row is None else _step(row)

    def done_steps(self, job_id: int, sn: str) -> set[str]:
        rows = self.db.execute(
            "SELECT step FROM job_steps WHERE job_id = ? AND sn = ? AND result = ?",
            (job_id, sn, str(StepResult.OK)),
        )
        return {r["step"] for r in rows}

    def steps_since_feed(self, job_id: int, sn: str) -> tuple[bool, list[JobStep]]:
        """Whether the card ``sn`` was fed in the job, and its records since the last feed."""
        fed = self.last_step(job_id, sn, "feed", StepResult.OK)
        rows = self.db.execute(
            f"SELECT {_STEP_COLUMNS} FROM job_steps WHERE job_id = ? AND sn = ? AND id > ?"
            " ORDER BY id",
            (job_id, sn, 0 if fed is None else fed.id),
        )
        return fed is not None, [_step(r) for r in rows]

    def sn_recorded(self, sn: str) -> bool:
        """A chip SN some job has recorded (fed, written, written off)."""
        row = self.db.execute("SELECT 1 FROM job_steps WHERE sn = ? LIMIT 1", (sn,))
        return row.fetchone() is not None

    def in_range(self, first: int, last: int) -> list[Job]:
        """The jobs with ids ``first`` to ``last`` (a primary-key range)."""
        rows = self.db.execute(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id BETWEEN ? AND ? ORDER BY id", (first, last)
        )
        return [_job(r) for r in rows]

    def repeated_steps(self, verified: tuple[str, ...]) -> list[RepeatedStep]:
        """Every step recorded ``ok`` twice: one of the ``verified`` steps (never redone on
        the same card) twice for one card, or any step twice for one card under one claim."""
        marks = ", ".join("?" * len(verified))
        rows = self.db.execute(
            "SELECT job_id, sn, step, NULL FROM job_steps WHERE result = 'ok'"
            f" AND step IN ({marks}) GROUP BY job_id, sn, step HAVING COUNT(*) > 1"
            " UNION ALL SELECT job_id, sn, step, fence FROM job_steps WHERE result = 'ok'"
            " AND step != 'card' GROUP BY job_id, sn, step, fence HAVING COUNT(*) > 1",
            verified,
        )
        return [RepeatedStep(int(r[0]), r[1], str(r[2]), r[3]) for r in rows]

    def step_spans(self, first: int, last: int) -> list[StepSpan]:
        """The timed ``ok`` steps of the jobs ``first`` to ``last``."""
        rows = self.db.execute(
            "SELECT job_id, step, started_at, ended_at FROM job_steps WHERE job_id BETWEEN ? AND ?"
            " AND result = 'ok' AND started_at IS NOT NULL",
            (first, last),
        )
        return [StepSpan(int(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in rows]

    # ----------------------------------------------------------------- writing

    def insert(
        self,
        *,
        request_id: int,
        person_id: int,
        old_card_id: int,
        holder: str,
        status: str,
        operator: str,
        now: str,
        photo: bytes,
    ) -> int:
        """A new job and its photo (kept apart from the hot jobs rows); its id."""
        job_id = self.db.insert(
            "INSERT INTO jobs (request_id, person_id, old_card_id, holder, tracks, status,"
            " operator, created_at, updated_at) VALUES (?, ?, ?, ?, NULL, ?, ?, ?, ?)",
            (request_id, person_id, old_card_id, holder, status, operator, now, now),
        )
        self.db.execute("INSERT INTO job_photos (job_id, photo) VALUES (?, ?)", (job_id, photo))
        return job_id

    def set_tracks(self, job_id: int, sealed: bytes) -> None:
        self.db.execute("UPDATE jobs SET tracks = ? WHERE id = ?", (sealed, job_id))

    def add_step(
        self,
        job_id: int,
        step: str,
        result: StepResult,
        sn: str | None,
        *,
        at: str,
        details: dict[str, Any],
        fence: int | None,
        started_at: str | None = None,
        ended_at: str | None = None,
    ) -> None:
        """A step record; ``started_at``/``ended_at``: the step's own start and end to the
        millisecond (``jobs.step_time``), from which ``sim center`` reports step times."""
        self.db.execute(
            "INSERT INTO job_steps (job_id, step, result, sn, at, details, fence, started_at,"
            " ended_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                job_id,
                step,
                str(result),
                sn,
                at,
                json.dumps(details, ensure_ascii=False),
                fence,
                started_at,
                ended_at,
            ),
        )

    def set_fields(self, job_id: int, fields: dict[str, str | None]) -> None:
        """Set columns of :data:`JOB_FIELDS` that a step record carries."""
        for key, value in fields.items():
            assert key in JOB_FIELDS
            self.db.execute(f"UPDATE jobs SET {key} = ? WHERE id = ?", (value, job_id))

    def advance(
        self, job_id: int, step: str, result: StepResult, *, now: str, lease_until: str
    ) -> None:
        """After a step record: the job's step (unless only begun), time and renewed lease."""
        self.db.execute(
            "UPDATE jobs SET step = CASE WHEN ? = 'intent' THEN step ELSE ? END,"
            " updated_at = ?, lease_until = ? WHERE id = ?",
            (str(result), step, now, lease_until, job_id),
        )

    def set_status(self, job_id: int, status: str, *, last_error: str | None, now: str) -> None:
        """A new status (paused, done, failed, cancelled): the lease is given up."""
        self.db.execute(
            "UPDATE jobs SET status = ?, last_error = ?, lease_until = NULL, updated_at = ?"
            " WHERE id = ?",
            (status, last_error, now, job_id),
        )

    def drop_card(self, job_id: int, *, rejected: bool) -> None:
        """The job's card written off: no SN; a rejected one counts towards the limit."""
        self.db.execute(
            "UPDATE jobs SET sn = NULL, attempts = attempts + ? WHERE id = ?",
            (int(rejected), job_id),
        )

    def forget_new_card(self, card_id: int) -> None:
        """A released card is no longer any job's new card."""
        self.db.execute("UPDATE jobs SET new_card_id = NULL WHERE new_card_id = ?", (card_id,))

    def set_new_card(self, job_id: int, card_id: int) -> None:
        self.db.execute("UPDATE jobs SET new_card_id = ? WHERE id = ?", (card_id, job_id))

    def claim(self, job_id: int, station: str, *, status: str, until: str, now: str) -> int:
        """The job's lease for ``station`` until ``until``; its new fencing token."""
        self.db.execute(
            "UPDATE jobs SET status = ?, station = ?, lease_until = ?, fence = fence + 1,"
            " updated_at = ? WHERE id = ?",
            (status, station, until, now, job_id),
        )
        return int(self.db.execute("SELECT fence FROM jobs WHERE id = ?", (job_id,)).scalar())

    def heartbeat(self, job_id: int, *, now: str, lease_until: str | None = None) -> None:
        """A heartbeat recorded (and the lease renewed until ``lease_until``)."""
        if lease_until is None:
            self.db.execute("UPDATE jobs SET heartbeat_at = ? WHERE id = ?", (now, job_id))
        else:
            self.db.execute(
                "UPDATE jobs SET lease_until = ?, heartbeat_at = ? WHERE id = ?",
                (lease_until, now, job_id),
            )

    def release(self, job_id: int, *, now: str) -> None:
        """The lease expired now: any station may claim the (still running) job."""
        self.db.execute(
            "UPDATE jobs SET lease_until = ?, updated_at = ? WHERE id = ?", (now, now, job_id)
        )


def _summary(row: Row) -> JobSummary:
    return JobSummary(
        job=_job(row),
        holder_name=row["holder_name"],
        holder_ssn=row["holder_ssn"],
        old_card_number=row["old_card_number"],
        new_card_number=row["new_card_number"],
    )
