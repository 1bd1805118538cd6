"""Crash campaign: ``sscard job run`` SIGKILLed at random moments, then resumed, over many
jobs, on one station or on two stations with forced lease takeovers (issue 11, "Show").

Every figure is taken from the devices' own records, not from the registry: the printer
emulators count the cards they printed (a job that made the printers print more than once is
a double print), and the card the registry activated is looked up in the printers' output
hoppers and read there — in process, straight from the simulated chip — to see that it was
printed, carries the holder's data and number on the chip and the track on the stripe.

Used by ``tests/integration/test_crash_resume.py`` (a small campaign) and by
``bench/crash_resume.py`` (the full figure).
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from apdu.inprocess import InProcessTransport
from personalize.policy import RegionPolicy, load_policy
from personalize.registry import VALID, Registry, RegistryError, utc_now
from personalize.roles import Role
from personalize.station import StationConfig
from personalize.trackvault import TrackVault
from simulator.center import TRACK2, SimulatedCenter, submit_reissue_job
from simulator.evolis_emulator import EvolisEmulator, VirtualCard
from sscard.card import SocialSecurityCard
from sscard.identifiers import ssn_check
from sscard.profile import CardProfile, load_profile
from sscard.public import read_public
from sscard.records import HolderData
from tests import kill_after_step
from tests.audit_key import AUDIT_KEY
from tests.clock import pinned_clock
from tests.operators import login

POLICY: RegionPolicy = load_policy("default")
PROFILE: CardProfile = load_profile("default")


def job_run_argv(job_id: int, station_file: Path, *, kill_after: str | None = None) -> list[str]:
    """``sscard job run JOB --station FILE`` as a station runs it; with ``kill_after`` its
    process SIGKILLs itself right after recording that step (tests/kill_after_step.py)."""
    args = ("job", "run", str(job_id), "--station", str(station_file))
    if kill_after is not None:
        return kill_after_step.argv(kill_after, *args)
    return [sys.executable, "-m", "personalize.cli", *args]


@dataclass
class Figures:
    jobs: int = 0
    kills: int = 0
    takeovers: int = 0
    stale_station_wrote: int = 0  # a station that lost its lease recorded something
    # a frozen station's print that was recorded as begun under its lease and went out when
    # it woke (it was between its last lease check and ``Se``): the same card's one print,
    # settled later at that printer — not a second card (double prints are counted apart)
    stale_inflight_prints: int = 0
    double_prints: int = 0  # jobs for which the printers printed more than one card
    bad_activations: int = 0  # active card not printed, not in a hopper, or chip/stripe wrong
    lost_jobs: int = 0  # jobs not done after the final runs
    not_one_valid_card: int = 0  # persons without exactly one valid card
    written_off: int = 0  # cards written off by the jobs (rejected or lost)
    audit_problems: int = 0
    details: list[str] = field(default_factory=list)

    def clean(self) -> bool:
        return not (
            self.stale_station_wrote
            or self.double_prints
            or self.bad_activations
            or self.lost_jobs
            or self.not_one_valid_card
            or self.audit_problems
        )

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "details"}


def holder_number(i: int) -> HolderData:
    """The i-th synthetic holder: a valid 18-digit number (Beijing Dongcheng, distinct birth
    dates), gender from its sequence code."""
    born = date(1960, 1, 1) + timedelta(days=37 * i)
    first17 = f"110101{born:%Y%m%d}{(i % 900) + 100:03d}"
    ssn = first17 + ssn_check(first17)
    return HolderData(
        ssn=ssn,
        name="李四",
        gender="1" if int(ssn[16]) % 2 else "2",
        ethnicity="01",
        birthplace="110101",
        birth_date=born,
    )


class Campaign:
    """Simulated stations of one card center (simulator/center.py) sharing a registry, a
    security module and a track key (station N's printer serves its contact station on vpcd
    slot N-1)."""

    def __init__(
        self,
        root: Path,
        *,
        jobs: int,
        stations: int = 1,
        seed: int = 11,
        cards_per_station: int | None = None,
        registry: str | None = None,
    ) -> None:
        self.root = root
        self.jobs = jobs
        self.rng = random.Random(seed)
        self.stations = stations
        self.center = SimulatedCenter(
            root,
            PROFILE,
            POLICY.region_code,
            stations=stations,
            cards_per_station=cards_per_station or jobs * 4 + 8,
            registry=registry,
        )

    def __enter__(self) -> Campaign:
        self.center.start()
        self.station_files = self.center.station_files
        self.config = StationConfig.load(self.station_files[0])
        self.registry = Registry(
            self.config.registry,
            POLICY,
            clock=pinned_clock,
            audit_key=AUDIT_KEY,
            checkpoints=self.config.audit_checkpoints,
        )
        # the stations' operator; ``job run`` runs on the real clock
        self.session = login(self.config.registry, "op", Role.CARD_CENTER, clock=utc_now)
        return self

    def __exit__(self, *exc: object) -> None:
        self.registry.close()
        self.center.stop()

    @property
    def printers(self) -> list[EvolisEmulator]:
        return self.center.printers

    def printed(self) -> int:
        return self.center.printed()

    # ----------------------------------------------------------------- one job

    def submit(self, i: int) -> tuple[int, str]:
        return submit_reissue_job(
            self.registry,
            PROFILE,
            TrackVault.from_file(self.config.track_key),
            holder_number(i),
            photo_dir=self.root,
            operator="op",
        )

    def start(self, job_id: int, station: int) -> subprocess.Popen[str]:
        return subprocess.Popen(
            job_run_argv(job_id, self.station_files[station]),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **self.session},
        )

    def run_to_end(self, job_id: int, station: int) -> subprocess.CompletedProcess[str]:
        proc = self.start(job_id, station)
        out, err = proc.communicate(timeout=180)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def expire_lease(self, job_id: int, *, timeout: float = 30) -> None:
        """Time passes: the job's lease runs out (what a takeover waits for)."""
        # through the registry (an audited change, as a station's own expiry would be), not
        # behind its back: ``audit verify`` flags rows changed outside sscard
        self.registry.db.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        try:
            with self.registry.transaction() as db:
                db.execute(
                    "UPDATE jobs SET lease_until = '2000-01-01T00:00:00+00:00' WHERE id = ?",
                    (job_id,),
                )
        finally:
            self.registry.db.execute("PRAGMA busy_timeout = 30000")

    def job(self, job_id: int) -> sqlite3.Row:
        row: sqlite3.Row = self.registry.db.execute(
            "SELECT * FROM jobs WHERE id = ?", (job_id,)
        ).fetchone()
        return row

    def one_job(self, i: int, kills: int, duration: float, figures: Figures) -> None:
        job_id, old = self.submit(i)
        before = self.printed()
        station = 0
        landed = attempts = 0
        # kills at delays drawn uniformly over an uninterrupted run, until ``kills`` of them
        # landed (a resumed run has less left to do, so some runs end before their kill)
        while landed < kills and attempts < 4 * kills and self.job(job_id)["status"] != "done":
            attempts += 1
            proc = self.start(job_id, station)
            time.sleep(self.rng.uniform(0.0, duration))
            if proc.poll() is None:
                proc.kill()
                landed += 1
                figures.kills += 1
            proc.communicate(timeout=60)
            if self.stations == 2:
                station = 1 - station
                self.expire_lease(job_id)
                figures.takeovers += 1
        if self.stations == 2:
            self.stale_takeover(job_id, station, duration, figures)
            station = 1 - station
        for _ in range(3):
            if self.job(job_id)["status"] == "done":
                break
            done = self.run_to_end(job_id, station)
            if done.returncode != 0:
                figures.details.append(f"job {job_id}: {done.stderr.strip()[-300:]}")
                station = (station + 1) % self.stations
        self.check(job_id, old, self.printed() - before, figures)

    def stale_takeover(
        self,
        job_id: int,
        station: int,
        duration: float,
        figures: Figures,
        *,
        freeze_on: str | None = None,
    ) -> None:
        """A station is frozen mid-job (SIGSTOP) — at a random moment, or when its printer
        has done the command ``freeze_on`` — its lease expires, the other station takes the
        job over; then the frozen one wakes up (SIGCONT) and must neither record nor print."""
        if self.job(job_id)["status"] == "done":
            return
        frozen = threading.Event()
        proc = self.start(job_id, station)
        if freeze_on is not None:

            def freeze(command: str) -> None:
                if command.startswith(freeze_on) and not frozen.is_set():
                    proc.send_signal(signal.SIGSTOP)
                    frozen.set()

            self.printers[station].after_command = freeze
            frozen.wait(120)
            self.printers[station].after_command = None
        else:
            time.sleep(self.rng.uniform(0.3 * duration, duration))
            if proc.poll() is None:
                proc.send_signal(signal.SIGSTOP)
                frozen.set()
        if not frozen.is_set():
            proc.communicate(timeout=60)
            return
        try:
            self.expire_lease(job_id, timeout=5)
        except RegistryError:  # frozen inside a write transaction (registry busy): no takeover
            proc.send_signal(signal.SIGCONT)
            proc.communicate(timeout=60)
            return
        figures.takeovers += 1
        other = self.run_to_end(job_id, 1 - station)
        if other.returncode != 0:
            figures.details.append(f"job {job_id} takeover: {other.stderr.strip()[-300:]}")
        steps_before = self._steps(job_id)
        printed_before = self.printers[station].printed
        proc.send_signal(signal.SIGCONT)
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
        if self._steps(job_id) != steps_before:
            figures.stale_station_wrote += 1
            figures.details.append(f"job {job_id}: the stale station recorded after the takeover")
        if self.printers[station].printed != printed_before:
            figures.stale_inflight_prints += 1
            figures.details.append(f"job {job_id}: the stale station's begun print went out")

    def _steps(self, job_id: int) -> int:
        return int(
            self.registry.db.execute(
                "SELECT COUNT(*) FROM job_steps WHERE job_id = ?", (job_id,)
            ).fetchone()[0]
        )

    # ----------------------------------------------------------------- checks

    def check(self, job_id: int, old: str, printed: int, figures: Figures) -> None:
        figures.jobs += 1
        registry = self.registry
        job = self.job(job_id)
        if printed > 1:
            figures.double_prints += 1
            figures.details.append(f"job {job_id}: {printed} cards printed")
        if job["status"] != "done":
            figures.lost_jobs += 1
            figures.details.append(f"job {job_id}: {job['status']} {job['last_error']}")
        person = registry.card(old).person_id
        cards = registry.cards_of(person)
        valid = [c for c in cards if c.status in VALID]
        if len(valid) != 1 or valid[0].card_number == old:
            figures.not_one_valid_card += 1
            figures.details.append(f"job {job_id}: valid cards {[c.card_number for c in valid]}")
        figures.written_off += registry.db.execute(
            "SELECT COUNT(*) FROM job_steps WHERE job_id = ? AND step = 'card'", (job_id,)
        ).fetchone()[0]
        for card in cards:
            if card.status != "active" or card.card_number == old:
                continue
            problem = self.card_problem(card.sn, card.card_number, registry.person(person).ssn)
            if problem:
                figures.bad_activations += 1
                figures.details.append(f"job {job_id}: active {card.card_number}: {problem}")

    def card_problem(self, sn: str | None, number: str, ssn: str) -> str | None:
        return card_problem(self.printers, sn, number, ssn)

    def campaign(self, kills_per_job: tuple[int, int], *, window: float = 1.0) -> Figures:
        """Run the jobs; kill delays are drawn uniformly over ``window`` × the calibrated
        duration of one run (1.0: anywhere in a run; less: kills land more surely, in the
        earlier steps — for the short campaigns of the suite)."""
        figures = Figures()
        duration = window * self.calibrate()
        for i in range(self.jobs):
            self.one_job(i + 1, self.rng.randint(*kills_per_job), duration, figures)
        figures.audit_problems = len(self.registry.verify_audit()[1])
        return figures

    def calibrate(self) -> float:
        """The duration of one uninterrupted ``job run`` (process start included): kill
        delays are drawn uniformly over it."""
        job_id, _ = self.submit(0)
        before = self.printed()
        started = time.monotonic()
        done = self.run_to_end(job_id, 0)
        assert done.returncode == 0, done.stderr
        duration = time.monotonic() - started
        assert self.printed() - before == 1
        return duration


def card_problem(
    printers: list[EvolisEmulator], sn: str | None, number: str, ssn: str
) -> str | None:
    """What is wrong with an activated card, read from the printers' output hoppers: it must
    be in exactly one hopper, printed, with the stripe written and the holder's data and
    number on its chip (read in process, straight from the simulated chip)."""
    found = [c for p in printers for c in p.hopper if c.chip is not None and _chip_sn(c) == sn]
    if len(found) != 1:
        return f"SN {sn} is in no output hopper ({len(found)} found)"
    card = found[0]
    if card.printed is None:
        return "not printed"
    if card.stripe.read(2) != ("ok", TRACK2):
        return "stripe not written"
    assert card.chip is not None
    transport = InProcessTransport(card.chip)
    try:
        transport.connect()
        data = read_public(SocialSecurityCard(transport, PROFILE))
    except Exception as exc:
        return f"chip unreadable: {type(exc).__name__}"
    finally:
        transport.disconnect()
    if data["card_number"] != number or data["ssn"] != ssn or not all(data["checks"].values()):
        return "chip data differ"
    return None


def _chip_sn(card: VirtualCard) -> str | None:
    from sscard.identifiers import serial_number

    assert card.chip is not None
    return serial_number(card.chip.power_on()).hex().upper()
