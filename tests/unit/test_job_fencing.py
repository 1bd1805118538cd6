"""Fencing tokens and the activation's evidence, on a real SQLite file (issue 11): each claim
increments the job's token, a stale token records nothing, and the registry activates only a
card whose whole personalization is recorded in this job, after it was fed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from personalize.jobs import claim_job, pause_job
from personalize.policy import load_policy
from personalize.registry import ACTIVATION_EVIDENCE, LeaseLost, Registry, RegistryError
from tests.audit_key import AUDIT_KEY
from tests.clock import pinned_clock
from tests.conftest import NewDatabase
from tests.stores import fed_job, record_steps

POLICY = load_policy("default")


@pytest.fixture
def job(new_db: NewDatabase) -> Iterator[tuple[Registry, int, int]]:
    """A registry with one claimed-able job whose new card was fed (``tests.stores.fed_job``)."""
    registry = Registry(new_db("registry"), POLICY, clock=pinned_clock, audit_key=AUDIT_KEY)
    yield registry, *fed_job(registry)
    registry.close()


steps = record_steps


def test_each_claim_increments_the_token_and_fences_the_previous_one(
    job: tuple[Registry, int, int],
) -> None:
    registry, job_id, _ = job
    first = claim_job(registry, job_id, "station-1")
    second = claim_job(registry, job_id, "station-1")  # the same station, a new process
    assert second == first + 1
    with registry.transaction(), pytest.raises(LeaseLost, match="租约已失效"):
        registry.check_fence(job_id, first)
    pause_job(registry, job_id, operator="op", reason="stale", fence=first)
    assert registry.db.execute("SELECT status FROM jobs").fetchone()[0] == "running"
    pause_job(registry, job_id, operator="op", reason="fault", fence=second)
    assert registry.db.execute("SELECT status FROM jobs").fetchone()[0] == "paused"


def test_activation_needs_the_whole_evidence_in_this_job(job: tuple[Registry, int, int]) -> None:
    registry, job_id, card_id = job
    fence = claim_job(registry, job_id, "station-1")
    steps(registry, "feed", *[s for s in ACTIVATION_EVIDENCE if s != "print_face"])
    steps(registry, "print_face", result="intent")  # begun, outcome unknown
    with pytest.raises(RegistryError, match="print_face"):
        registry.activate(card_id, operator="op", job_id=job_id, fence=fence)
    assert registry.card_by_id(card_id).status == "personalizing"
    steps(registry, "print_face")
    with pytest.raises(LeaseLost):
        registry.activate(card_id, operator="op", job_id=job_id, fence=fence - 1)
    assert registry.activate(card_id, operator="op", job_id=job_id, fence=fence).status == "active"


def test_a_card_written_off_or_refed_is_not_activated(job: tuple[Registry, int, int]) -> None:
    registry, job_id, card_id = job
    fence = claim_job(registry, job_id, "station-1")
    steps(registry, "feed", *ACTIVATION_EVIDENCE)
    steps(registry, "card", result="lost")
    with pytest.raises(RegistryError, match="refusing to activate"):
        registry.activate(card_id, operator="op", job_id=job_id, fence=fence)
    steps(registry, "feed", "chip_write", "chip_verify")  # fed again: earlier records void
    with pytest.raises(RegistryError, match="encode_stripe"):
        registry.activate(card_id, operator="op", job_id=job_id, fence=fence)
