"""What a card center's run must leave true, and how fast it went (issue 13, Deliver 6 and 7):
the invariants ``sscard sim center`` prints and the multi-station tests assert, and the step
times read from the registry's ``job_steps``. The queries are here, each in one function,
for the store layer to take over.

Invariants, over the jobs of a run:

- ``one_valid_card_per_person``: each job's holder has exactly one valid card (business rule
  一人一卡, docs/business-rules.md), and it is not the lost one;
- ``every_job_done_once``: every job is ``done`` and its audit chain holds exactly one
  ``job.done`` event;
- ``no_step_done_twice``: no step recorded ``ok`` twice — a verified step (never redone on
  the same card, ``jobs.next_step``) for the same card, or any step for the same card under
  one claim (fencing token);
- ``printed_once_per_job``: the printers' own counts add up to one card per job;
- ``audit_verifies``: ``audit verify`` finds nothing.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from personalize.jobs import STEPS
from personalize.registry import VALID, Registry

# Steps never done again on the same card: a resume starts after the last of them (an
# unverified chip write or stripe encoding is redone by design, personalize/jobs.next_step)
VERIFIED_STEPS = ("feed", "chip_verify", "stripe_verify", "print_face", "activate")


@dataclass(frozen=True)
class Invariant:
    name: str
    ok: bool
    detail: str  # what was found wrong, or what was checked

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StepTimes:
    step: str
    count: int
    median_ms: float
    p95_ms: float


def _jobs(registry: Registry, job_ids: Sequence[int]) -> list[tuple[int, int, int, str]]:
    """(id, person id, old card id, status) of the jobs ``job_ids``."""
    wanted = set(job_ids)
    if not wanted:
        return []
    rows = registry.db.execute(
        "SELECT id, person_id, old_card_id, status FROM jobs WHERE id BETWEEN ? AND ?",
        (min(wanted), max(wanted)),
    )
    return [tuple(r) for r in rows if r[0] in wanted]


def jobs_done(registry: Registry, job_ids: Sequence[int]) -> int:
    """How many of the jobs ``job_ids`` are ``done``."""
    return sum(1 for *_, status in _jobs(registry, job_ids) if status == "done")


def steps_done_twice(registry: Registry) -> list[tuple[object, ...]]:
    """(job, SN, step, token or None) of every step recorded ``ok`` twice (module
    docstring)."""
    marks = ", ".join("?" * len(VERIFIED_STEPS))
    rows = registry.db.execute(
        "SELECT job_id, sn, step, NULL FROM job_steps WHERE result = 'ok'"
        f" AND step IN ({marks}) GROUP BY job_id, sn, step HAVING COUNT(*) > 1"
        " UNION ALL SELECT job_id, sn, step, fence FROM job_steps WHERE result = 'ok'"
        " AND step != 'card' GROUP BY job_id, sn, step, fence HAVING COUNT(*) > 1",
        VERIFIED_STEPS,
    )
    return [tuple(r) for r in rows]


def _done_events(registry: Registry) -> dict[str, int]:
    """``job.done`` events per subject (``job-ID``)."""
    rows = registry.db.execute(
        "SELECT subject, COUNT(*) FROM audit_events WHERE action = 'job.done' GROUP BY subject"
    )
    return {str(r[0]): int(r[1]) for r in rows}


def check_center(registry: Registry, job_ids: Sequence[int], printed: int) -> list[Invariant]:
    """The invariants of the module docstring over the jobs ``job_ids``; ``printed``: the
    cards the center's printers printed meanwhile, by their own counts."""
    jobs = _jobs(registry, job_ids)
    not_one: list[str] = []
    for job_id, person, old_card, _ in jobs:
        valid = [c for c in registry.cards_of(person) if c.status in VALID]
        if len(valid) != 1 or valid[0].id == old_card:
            not_one.append(f"job {job_id}: {[c.card_number for c in valid]}")
    done = _done_events(registry)
    not_done = [
        f"job {job_id}: {status}, job.done ×{done.get(f'job-{job_id}', 0)}"
        for job_id, _, _, status in jobs
        if status != "done" or done.get(f"job-{job_id}", 0) != 1
    ]
    twice = steps_done_twice(registry)
    _, problems = registry.verify_audit()
    return [
        Invariant(
            "one_valid_card_per_person",
            not not_one,
            "; ".join(not_one[:5]) or f"{len(jobs)} persons",
        ),
        Invariant(
            "every_job_done_once",
            not not_done and len(jobs) == len(job_ids),
            "; ".join(not_done[:5]) or f"{len(jobs)} of {len(job_ids)} jobs",
        ),
        Invariant("no_step_done_twice", not twice, "; ".join(map(str, twice[:5])) or "none twice"),
        Invariant(
            "printed_once_per_job",
            printed == len(job_ids),
            f"{printed} printed for {len(job_ids)} jobs",
        ),
        Invariant("audit_verifies", not problems, "; ".join(problems[:5]) or "chain intact"),
    ]


def _spans(registry: Registry, job_ids: Sequence[int]) -> list[tuple[str, datetime, datetime]]:
    """(step, start, end) of the steps recorded ``ok`` with their times, in ``job_ids``."""
    wanted = set(job_ids)
    if not wanted:
        return []
    rows = registry.db.execute(
        "SELECT job_id, step, started_at, ended_at FROM job_steps WHERE job_id BETWEEN ? AND ?"
        " AND result = 'ok' AND started_at IS NOT NULL",
        (min(wanted), max(wanted)),
    )
    return [
        (str(r[1]), datetime.fromisoformat(r[2]), datetime.fromisoformat(r[3]))
        for r in rows
        if r[0] in wanted
    ]


def step_times(registry: Registry, job_ids: Sequence[int]) -> list[StepTimes]:
    """Median and 95th percentile of each step's duration (``job_steps.started_at`` to
    ``ended_at``), steps in the order a job runs them (``personalize.jobs.STEPS``)."""
    durations: dict[str, list[float]] = {}
    for step, start, end in _spans(registry, job_ids):
        durations.setdefault(step, []).append((end - start).total_seconds() * 1000)
    return [
        StepTimes(step, len(ms), round(statistics.median(ms), 1), round(_p95(ms), 1))
        for step, ms in sorted(durations.items(), key=lambda item: _order(item[0]))
    ]


def _order(step: str) -> int:
    return STEPS.index(step) if step in STEPS else len(STEPS)


def jobs_per_hour(registry: Registry, job_ids: Sequence[int], done: int) -> float:
    """``done`` jobs over the span from the first step's start to the last step's end."""
    spans = _spans(registry, job_ids)
    if not spans or done == 0:
        return 0.0
    seconds = (max(e for _, _, e in spans) - min(s for _, s, _ in spans)).total_seconds()
    return round(done * 3600 / max(seconds, 0.001), 1)


def _p95(values: list[float]) -> float:
    """The 95th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[max(0, -(-95 * len(ordered) // 100) - 1)]
