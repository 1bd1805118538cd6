"""``claim_next_job``, ``release_job`` and ``renew_lease`` on a real SQLite registry (issue
13, Deliver 5): which job a station claims, in which order, once, through an index."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from personalize.job_store import EXPIRED_QUERY, OWN_QUERY, QUEUED_QUERY
from personalize.jobs import submit_job
from personalize.registry import LeaseLost, Registry
from personalize.station_worker import (
    Claim,
    claim_next_job,
    release_job,
    renew_lease,
)
from personalize.trackvault import TrackVault
from simulator.factory import sample_photo
from tests.audit_key import AUDIT_KEY
from tests.clock import MovingClock
from tests.integration.crash_campaign import POLICY, PROFILE, holder_number

LEASE = timedelta(seconds=60)


@pytest.fixture
def registry(tmp_path: Path, clock: MovingClock) -> Registry:
    """A registry with three queued jobs (ids 1, 2, 3)."""
    registry = Registry(tmp_path / "r.db", POLICY, clock=clock, audit_key=AUDIT_KEY)
    (tmp_path / "photo.jpg").write_bytes(sample_photo())
    vault = TrackVault.create(tmp_path / "tracks.key")
    for i in range(1, 4):
        holder = holder_number(i)
        number = registry.allocate_card_number()
        registry.enroll(holder, number, operator="op")
        registry.formalize_loss(number, operator="op", evidence="ID")
        registry.request_reissue(number, operator="op")
        submission = {
            "old_card_number": number,
            "holder": {
                "ssn": holder.ssn,
                "name": holder.name,
                "gender": holder.gender,
                "ethnicity": holder.ethnicity,
                "birthplace": holder.birthplace,
                "birth_date": holder.birth_date.isoformat(),
            },
            "photo": "photo.jpg",
        }
        submit_job(registry, PROFILE, vault, submission, base_dir=tmp_path, operator="op")
    return registry


def claim(registry: Registry, station: str) -> Claim | None:
    return claim_next_job(
        registry,
        station,
        region=POLICY.region_code,
        printer=f"PRI-{station}",
        lease=LEASE,
        operator="op",
    )


def test_queued_jobs_are_claimed_in_order_each_once(registry: Registry) -> None:
    claims = [claim(registry, s) for s in ("s1", "s2", "s3", "s4")]
    assert claims == [Claim(1, 1), Claim(2, 1), Claim(3, 1), None]
    rows = registry.db.execute("SELECT station, status, heartbeat_at FROM jobs ORDER BY id")
    assert [(r["station"], r["status"]) for r in rows] == [
        ("s1", "running"),
        ("s2", "running"),
        ("s3", "running"),
    ]
    assert registry.verify_audit()[1] == []


def test_a_station_takes_its_own_unfinished_job_back_first(registry: Registry) -> None:
    assert claim(registry, "s1") == Claim(1, 1)
    assert claim(registry, "s1") == Claim(1, 2)  # a restarted s1: its job before the queue
    assert claim(registry, "s2") == Claim(2, 1)


def test_an_expired_lease_is_taken_over_before_the_queue(
    registry: Registry, clock: MovingClock
) -> None:
    first = claim(registry, "s1")
    assert first == Claim(1, 1)
    assert claim(registry, "s2") == Claim(2, 1)  # job 1's lease still runs
    clock.now += LEASE  # s1 stopped heartbeating
    assert claim(registry, "s3") == Claim(1, 2)
    with pytest.raises(LeaseLost):  # the old holder can record nothing more
        renew_lease(registry, first, station="s1", operator="op", lease=LEASE)


def test_heartbeats_keep_the_lease(registry: Registry, clock: MovingClock) -> None:
    held = claim(registry, "s1")
    assert held is not None
    for _ in range(3):
        clock.now += LEASE * 2 / 3
        renew_lease(registry, held, station="s1", operator="op", lease=LEASE)
    job = registry.db.execute("SELECT * FROM jobs WHERE id = 1").fetchone()
    assert job["heartbeat_at"] == clock.now.isoformat(timespec="seconds")
    assert claim(registry, "s2") == Claim(2, 1)  # not job 1: its lease was renewed


def test_a_released_job_is_claimable_at_once(registry: Registry) -> None:
    held = claim(registry, "s1")
    assert held is not None
    release_job(registry, held, station="s1", operator="op")
    assert claim(registry, "s2") == Claim(1, 2)
    with pytest.raises(LeaseLost):
        release_job(registry, held, station="s1", operator="op")  # not s1's any more
    assert registry.verify_audit()[1] == []


@pytest.mark.parametrize(
    ("query", "index", "params"),
    [
        (OWN_QUERY, "jobs_claim_own", ("running", "110100", "s1", 8)),
        (EXPIRED_QUERY, "jobs_claim_expired", ("running", "110100", "2026", 8)),
        (QUEUED_QUERY, "jobs_by_status", ("queued", "110100", 8)),
    ],
)
def test_each_claim_query_searches_its_index(
    registry: Registry, query: str, index: str, params: tuple[object, ...]
) -> None:
    plan = " | ".join(
        str(r["detail"]) for r in registry.db.execute("EXPLAIN QUERY PLAN " + query, params)
    )
    assert f"SEARCH j USING INDEX {index}" in plan, plan
    assert "SCAN" not in plan and "TEMP B-TREE" not in plan, plan
