"""``sscard station run``: stations that pull their own work (issue 13, Deliver 5) — real
worker processes on simulated stations (pcscd + vpcd, printer emulators on ptys), one real
SQLite registry; every card counted by the printer emulators, not by the registry."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from personalize.registry import utc_now
from simulator.center_checks import check_center
from simulator.pcscd import Pcscd
from tests.conftest import NewDatabase
from tests.integration.crash_campaign import Campaign, Figures

pytestmark = pytest.mark.pcsc

LEASE = 3.0  # seconds: short, so a takeover happens within the test
STARTED: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def no_worker_outlives_its_test() -> Iterator[None]:
    yield
    while STARTED:
        worker = STARTED.pop()
        if worker.poll() is None:  # a failed test left it running
            worker.kill()
            worker.communicate()


def station_run(
    campaign: Campaign, station: int, *options: str, lease: float = LEASE
) -> subprocess.Popen[str]:
    """``sscard station run`` as its own process, with the stations' operator session."""
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "personalize.cli",
            "station",
            "run",
            "--station",
            str(campaign.station_files[station]),
            "--lease",
            str(lease),
            "--poll",
            "0.2",
            *options,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **campaign.session},
    )
    STARTED.append(worker)
    return worker


@pytest.fixture
def two_stations(tmp_path: Path) -> Iterator[Campaign]:
    with Campaign(tmp_path, jobs=6, stations=2) as campaign:
        yield campaign


def checked(campaign: Campaign, jobs: list[tuple[int, str]], printed: int) -> Figures:
    """The center's invariants (simulator/center_checks.py) hold, and every activated card
    is in a hopper, printed, with the holder's chip data and stripe (Campaign.check)."""
    figures = Figures()
    for job_id, old in jobs:
        campaign.check(job_id, old, 1, figures)
    assert figures.clean(), figures.details
    job_ids = [job_id for job_id, _ in jobs]
    failed = [i for i in check_center(campaign.registry, job_ids, campaign.printed()) if not i.ok]
    assert failed == []
    assert campaign.printed() == printed
    return figures


def test_two_workers_never_run_the_same_job(two_stations: Campaign) -> None:
    campaign = two_stations
    jobs = [campaign.submit(i) for i in range(1, 7)]
    workers = [station_run(campaign, s, "--idle-exit") for s in (0, 1)]
    outputs = [w.communicate(timeout=240) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    assert all("已停止 (station stopped)" in out for out, _ in outputs)
    # each job claimed once (token 1), by one station, and printed once in all
    claims = campaign.registry.db.execute(
        "SELECT jobs.id, COUNT(*) FROM audit_events JOIN jobs ON subject = 'job-' || jobs.id"
        " WHERE action = 'job.claim' GROUP BY jobs.id"
    ).fetchall()
    assert sorted(tuple(c) for c in claims) == [(j, 1) for j, _ in jobs]
    stations = {r[0] for r in campaign.registry.db.execute("SELECT station FROM jobs")}
    assert stations <= {"sim-station-1", "sim-station-2"}
    checked(campaign, jobs, printed=6)


def test_killed_worker_is_taken_over_after_its_lease(two_stations: Campaign) -> None:
    campaign = two_stations
    job_id, old = campaign.submit(1)
    first = station_run(campaign, 0)

    def kill_at_encoding(command: str) -> None:  # mid-job: the chip written and verified
        if command.startswith("Pmc"):
            first.kill()

    campaign.printers[0].after_command = kill_at_encoding
    first.communicate(timeout=60)
    campaign.printers[0].after_command = None
    assert first.returncode == -signal.SIGKILL
    assert campaign.job(job_id)["step"] == "chip_verify"
    killed_at = utc_now()
    lease_until = campaign.job(job_id)["lease_until"]
    second = station_run(campaign, 1, "--once")
    _, err = second.communicate(timeout=180)
    assert second.returncode == 0, err
    job = campaign.job(job_id)
    assert (job["status"], job["station"], job["fence"]) == ("done", "sim-station-2", 2)
    # the takeover waited for the lease: the second station's claim came after it ran out
    (claimed,) = campaign.registry.db.execute(
        "SELECT at FROM audit_events WHERE subject = ? AND action = 'job.claim'"
        " AND details LIKE '%sim-station-2%'",
        (f"job-{job_id}",),
    ).fetchone()
    assert claimed >= lease_until and lease_until > killed_at.isoformat(timespec="seconds")
    # resumed from the last verified step, on a new card (the old one is in the dead
    # station's printer): the first card written off as lost, one card printed in all
    lost = campaign.registry.db.execute(
        "SELECT COUNT(*) FROM job_steps WHERE job_id = ? AND step = 'card' AND result = 'lost'",
        (job_id,),
    ).fetchone()[0]
    assert lost == 1
    checked(campaign, [(job_id, old)], printed=1)


def test_sigterm_finishes_the_step_and_leaves_the_job_resumable(two_stations: Campaign) -> None:
    campaign = two_stations
    job_id, old = campaign.submit(1)
    worker = station_run(campaign, 0, lease=600)

    def terminate_while_feeding(command: str) -> None:  # the feed step is under way
        if command.startswith("Sis"):
            worker.send_signal(signal.SIGTERM)

    campaign.printers[0].after_command = terminate_while_feeding
    out, err = worker.communicate(timeout=60)
    campaign.printers[0].after_command = None
    assert worker.returncode == 0, err
    assert "SIGTERM" in out and "已释放" in out and "已停止 (station stopped)" in out
    job = campaign.job(job_id)
    steps = campaign.registry.db.execute(
        "SELECT step, result FROM job_steps WHERE job_id = ? ORDER BY id", (job_id,)
    ).fetchall()
    # the step under way was finished and recorded, and no other begun
    assert job["status"] == "running"
    assert [tuple(r) for r in steps] == [("feed", "ok")]
    assert job["lease_until"] <= utc_now().isoformat(timespec="seconds")
    assert campaign.printed() == 0
    # resumable at once, by any station: the same station resumes on the same card
    again = station_run(campaign, 0, "--once", lease=600)
    out, err = again.communicate(timeout=180)
    assert again.returncode == 0, err
    assert campaign.job(job_id)["status"] == "done"
    assert (
        campaign.registry.db.execute(
            "SELECT COUNT(*) FROM job_steps WHERE job_id = ? AND step = 'card'", (job_id,)
        ).fetchone()[0]
        == 0
    )
    checked(campaign, [(job_id, old)], printed=1)


@pytest.fixture
def eight_vpcd_slots(pcscd: Pcscd) -> Iterator[None]:
    """The session's pcscd (Debian's two vpcd slots) gives way to the campaign's, with a
    slot per station, and is back afterwards."""
    restart = pcscd.started_here
    pcscd.stop()
    try:
        yield
    finally:
        if restart:
            pcscd.start()


@pytest.mark.usefixtures("eight_vpcd_slots")
def test_eight_workers_two_hundred_jobs_random_kills(tmp_path: Path, new_db: NewDatabase) -> None:
    """Issue 13's concurrency test: 8 station workers (each its own printer emulator and
    vpcd slot, one pcscd) drain 200 jobs from one registry — a SQLite file, or the tests'
    PostgreSQL server — while workers are SIGKILLed at random and restarted → every job done
    once, one valid card per person, no step done twice, one print per job, no worker
    stopped by a device fault, and the audit chain verifies.

    Until the Evolis driver synchronized its sessions (printer/evolis.py), about half the
    runs failed: a worker killed with a command under way left its printer to answer it
    after the restarted worker had asked for the serial number, which read ``OK``; the
    restarted worker then left its own job's begun print unsettled (a job not drained) or
    settled it after other prints had moved the counter (201 prints for 200 jobs)."""
    rng = random.Random(13)
    with Campaign(
        tmp_path, jobs=200, stations=8, cards_per_station=80, registry=new_db("center")
    ) as campaign:
        jobs = [campaign.submit(i) for i in range(1, 201)]
        workers = [station_run(campaign, s, lease=2) for s in range(8)]
        kills = restarts = 0
        deadline = time.monotonic() + 600  # a hang guard, not a speed bound (loaded CI)
        while _unfinished(campaign):
            assert time.monotonic() < deadline, _statuses(campaign)
            time.sleep(rng.uniform(0.2, 1.5))
            for station, worker in enumerate(workers):
                # a worker that stopped on its own (a device fault) is restarted, as its
                # operator would, and counted: there must be none
                if worker.poll() is not None:
                    workers[station] = station_run(campaign, station, lease=2)
                    restarts += 1
            if kills < 40:
                victim = rng.randrange(8)
                workers[victim].kill()
                workers[victim].communicate(timeout=30)
                workers[victim] = station_run(campaign, victim, lease=2)
                kills += 1
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        outputs = [w.communicate(timeout=60) for w in workers]
        assert [w.returncode for w in workers] == [0] * 8, outputs
        assert (kills, restarts) == (40, 0)
        figures = checked(campaign, jobs, printed=200)
        assert figures.jobs == 200
        takeovers = campaign.registry.db.execute(
            "SELECT COUNT(*) FROM jobs WHERE fence > 1"
        ).fetchone()[0]
        assert takeovers > 0  # kills landed mid-job, and those jobs were resumed elsewhere
        print(
            f"8 workers, 200 jobs: {kills} kills, {restarts} restarts after a device fault,"
            f" {takeovers} jobs taken over, {figures.written_off} cards written off"
        )


def _statuses(campaign: Campaign) -> str:
    rows = campaign.registry.db.execute(
        "SELECT status, COUNT(*), MAX(last_error) FROM jobs GROUP BY status"
    )
    stuck = campaign.registry.db.execute(
        "SELECT id, status, step, station, fence, lease_until, heartbeat_at, last_error"
        " FROM jobs WHERE status != 'done'"
    )
    return (
        f"jobs not drained: {[tuple(r) for r in rows]}; at {utc_now().isoformat()}"
        f" the others: {[tuple(r) for r in stuck]}"
    )


def _unfinished(campaign: Campaign) -> int:
    return int(
        campaign.registry.db.execute("SELECT COUNT(*) FROM jobs WHERE status != 'done'").fetchone()[
            0
        ]
    )
