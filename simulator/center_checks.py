"""What a card center's run must leave true, and how fast it went (issue 13, Deliver 6 and 7):
the invariants ``sscard sim center`` prints and the multi-station tests assert, and the step
times read from the registry's ``job_steps`` (through the store: ``JobStore.in_range``,
``repeated_steps``, ``step_spans``, ``Registry.event_counts``).

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

from personalize.job_store import Job, RepeatedStep
from personalize.jobs import STEPS
from personalize.lifecycle import JobStatus
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


def _jobs(registry: Registry, job_ids: Sequence[int]) -> list[Job]:
    """The jobs ``job_ids``."""
    wanted = set(job_ids)
    if not wanted:
        return []
    return [j for j in registry.jobs.in_range(min(wanted), max(wanted)) if j.id in wanted]


def jobs_done(registry: Registry, job_ids: Sequence[int]) -> int:
    """How many of the jobs ``job_ids`` are ``done``."""
    return sum(1 for job in _jobs(registry, job_ids) if job.status == JobStatus.DONE)


def steps_done_twice(registry: Registry) -> list[RepeatedStep]:
    """Every step recorded ``ok`` twice (module docstring)."""
    return registry.jobs.repeated_steps(VERIFIED_STEPS)


def check_center(registry: Registry, job_ids: Sequence[int], printed: int) -> list[Invariant]:
    """The invariants of the module docstring over the jobs ``job_ids``; ``printed``: the
    cards the center's printers printed meanwhile, by their own counts."""
    jobs = _jobs(registry, job_ids)
    not_one: list[str] = []
    for job in jobs:
        valid = [c for c in registry.cards_of(job.person_id) if c.status in VALID]
        if len(valid) != 1 or valid[0].id == job.old_card_id:
            not_one.append(f"job {job.id}: {[c.card_number for c in valid]}")
    done = registry.event_counts("job.done")
    not_done = [
        f"job {job.id}: {job.status}, job.done ×{done.get(f'job-{job.id}', 0)}"
        for job in jobs
        if job.status != JobStatus.DONE or done.get(f"job-{job.id}", 0) != 1
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
        Invariant(
            "no_step_done_twice",
            not twice,
            "; ".join(f"job {t.job_id} {t.step} ({t.sn}, token {t.fence})" for t in twice[:5])
            or "none twice",
        ),
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
    return [
        (span.step, datetime.fromisoformat(span.started_at), datetime.fromisoformat(span.ended_at))
        for span in registry.jobs.step_spans(min(wanted), max(wanted))
        if span.job_id in wanted
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
