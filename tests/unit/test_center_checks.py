"""The card center's invariants (simulator/center_checks.py) on a real SQLite registry: each
one can fail, and says what it found."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from personalize.registry import Registry
from personalize.trackvault import TrackVault
from simulator.center import submit_reissue_job
from simulator.center_checks import Invariant, check_center, step_times
from tests.audit_key import AUDIT_KEY
from tests.clock import pinned_clock
from tests.integration.crash_campaign import POLICY, PROFILE, holder_number


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "r.db", POLICY, clock=pinned_clock, audit_key=AUDIT_KEY)


def submitted(registry: Registry, tmp_path: Path, count: int) -> list[int]:
    vault = TrackVault.create(tmp_path / "tracks.key")
    return [
        submit_reissue_job(
            registry, PROFILE, vault, holder_number(i), photo_dir=tmp_path, operator="op"
        )[0]
        for i in range(1, count + 1)
    ]


def verdicts(invariants: list[Invariant]) -> dict[str, bool]:
    return {i.name: i.ok for i in invariants}


def test_jobs_not_run_fail_the_card_job_and_print_invariants(
    registry: Registry, tmp_path: Path
) -> None:
    jobs = submitted(registry, tmp_path, 2)
    invariants = check_center(registry, jobs, printed=1)
    assert verdicts(invariants) == {
        "one_valid_card_per_person": False,  # the only valid card is still the lost one
        "every_job_done_once": False,
        "no_step_done_twice": True,
        "printed_once_per_job": False,
        "audit_verifies": True,
    }
    details = {i.name: i.detail for i in invariants}
    assert f"job {jobs[0]}: queued, job.done ×0" in details["every_job_done_once"]
    assert details["printed_once_per_job"] == "1 printed for 2 jobs"
    assert step_times(registry, jobs) == []


def test_a_step_recorded_twice_is_reported(registry: Registry, tmp_path: Path) -> None:
    (job,) = submitted(registry, tmp_path, 1)
    with sqlite3.connect(tmp_path / "r.db") as db:  # job_steps rows are not audited rows
        for _ in range(2):
            db.execute(
                "INSERT INTO job_steps (job_id, step, result, sn, at, details, fence)"
                " VALUES (?, 'chip_verify', 'ok', 'SN1', '2026-01-01T00:00:00+00:00', '{}', 1)",
                (job,),
            )
    twice = [i for i in check_center(registry, [job], printed=1) if i.name == "no_step_done_twice"]
    assert twice == [
        Invariant(
            "no_step_done_twice",
            False,
            f"job {job} chip_verify (SN1, token None); job {job} chip_verify (SN1, token 1)",
        )
    ]


def test_a_card_changed_behind_the_registry_fails_the_audit(
    registry: Registry, tmp_path: Path
) -> None:
    (job,) = submitted(registry, tmp_path, 1)
    with sqlite3.connect(tmp_path / "r.db") as db:
        db.execute("UPDATE cards SET status = 'active'")
    audit = [i for i in check_center(registry, [job], printed=1) if i.name == "audit_verifies"]
    assert [i.ok for i in audit] == [False]
