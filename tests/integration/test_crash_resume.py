"""Exactly one card, and only the right one, through crashes, cleared printers, torn prints
and stripes, and stations that lost their lease (issue 11) — real pcscd + vpcd, real ptys, a
real SQLite file; prints counted by the printer emulator itself, never by the registry."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from apdu.pcsc import PcscReader
from personalize.database import open_database
from personalize.job_store import StepResult
from personalize.jobs import AfterStep, JobRunner, StationDevices
from personalize.registry import LeaseLost, Registry
from personalize.trackvault import TrackVault
from printer.evolis import EvolisPrinter
from simulator.evolis_emulator import EvolisEmulator
from simulator.sscard_card import SocialSecurityCardOS, Tearing
from tests.audit_key import AUDIT_KEY
from tests.integration.crash_campaign import Campaign, Figures, card_problem, job_run_argv
from tests.integration.test_reissue import (  # noqa: F401 (the fixture)
    POLICY,
    PROFILE,
    Prepared,
    assert_consistent,
    prepared,
    run_job,
)

pytestmark = pytest.mark.pcsc


@pytest.fixture
def p(prepared: Prepared) -> Prepared:  # noqa: F811 (the imported fixture)
    return prepared


def emulator(p: Prepared) -> EvolisEmulator:
    assert p.sim.printer is not None
    return p.sim.printer


def the_new_card_is_the_printed_one(p: Prepared) -> None:
    """The active card is in the output hopper, printed, striped, its chip right."""
    registry = Registry(p.config.registry, POLICY, audit_key=AUDIT_KEY)
    person = registry.card(p.old_number).person_id
    (new,) = [c for c in registry.cards_of(person) if c.status == "active"]
    ssn = registry.person(person).ssn
    assert card_problem([emulator(p)], new.sn, new.card_number, ssn) is None
    registry.close()


def written_off(p: Prepared) -> list[tuple[str, str]]:
    return [
        (r["result"], r["sn"])
        for r in p.registry.db.execute(
            "SELECT result, sn FROM job_steps WHERE job_id = ? AND step = 'card' ORDER BY id",
            (p.job_id,),
        )
    ]


def released(p: Prepared, sn: str) -> None:
    """A written-off card: its registry card released (废卡, its number not the active
    card's), its SN blacklisted."""
    card = p.registry.db.execute("SELECT * FROM cards WHERE sn = ?", (sn,)).fetchone()
    assert card is not None and card["status"] == "rejected"
    assert p.registry.db.execute("SELECT 1 FROM blacklist WHERE sn = ?", (sn,)).fetchone()
    active = p.registry.db.execute(
        "SELECT card_number FROM cards WHERE job_id = ? AND status = 'active'", (p.job_id,)
    ).fetchone()
    assert active is not None and active["card_number"] != card["card_number"]


def test_killed_after_se_is_settled_from_the_printer_not_printed_again(p: Prepared) -> None:
    emu = emulator(p)
    running: list[subprocess.Popen[str]] = []

    def kill_once_se_is_done(command: str) -> None:
        if command == "Se":
            running[0].kill()  # the host dies before the printer's reply reaches it

    emu.after_command = kill_once_se_is_done
    running.append(job_process(p))
    running[0].communicate(timeout=120)
    emu.after_command = None
    assert running[0].returncode == -9
    resumed = run_job(p)
    assert resumed.returncode == 0, resumed.stderr
    assert emu.printed == 1 and len(emu.printed_log) == 1  # the printer's own count
    assert_consistent(p)
    the_new_card_is_the_printed_one(p)
    settled = p.registry.db.execute(
        "SELECT details FROM job_steps WHERE step = 'print_face' AND result = 'ok'"
    ).fetchone()
    assert '"settled": "printed"' in settled["details"]


def job_process(p: Prepared) -> subprocess.Popen[str]:
    return subprocess.Popen(
        job_run_argv(p.job_id, p.sim.station_file),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **p.session},
    )


@pytest.mark.parametrize("step", ["chip_verify", "encode_stripe", "stripe_verify"])
def test_printer_cleared_after_a_step_the_removed_card_is_never_activated(
    p: Prepared, step: str
) -> None:
    crashed = run_job(p, kill_after=step)
    assert crashed.returncode == -9, crashed.stderr
    emu = emulator(p)
    gone = p.registry.db.execute("SELECT sn FROM jobs WHERE id = ?", (p.job_id,)).fetchone()[0]
    emu._leave_contact()  # the operator clears the printer: the job's card is gone
    emu.card = None
    resumed = run_job(p)
    assert resumed.returncode == 0, resumed.stderr
    assert_consistent(p)
    the_new_card_is_the_printed_one(p)
    assert emu.printed == 1
    assert written_off(p) == [("lost", gone)]
    released(p, gone)


def runner(
    p: Prepared,
    printer: EvolisPrinter,
    name: str = "sim-station-1",
    after_step: AfterStep | None = None,
) -> JobRunner:
    devices = StationDevices(
        printer,
        PcscReader(p.config.contact_reader),
        p.config.security_module(),
        TrackVault.from_file(p.config.track_key),
        p.config.out_dir,
        name,
    )
    return JobRunner(
        p.registry,
        POLICY,
        PROFILE,
        devices,
        operator="op",
        progress=lambda s: None,
        after_step=after_step,
    )


def test_after_step_is_told_each_step_once_its_ok_is_committed(p: Prepared) -> None:
    told: list[tuple[str, bool]] = []

    def after_step(step: str) -> None:  # seen from another connection: committed
        other = open_database(p.config.registry, create=False)
        done = other.execute(
            "SELECT 1 FROM job_steps WHERE job_id = ? AND step = ? AND result = 'ok'",
            (p.job_id, step),
        ).fetchone()
        other.close()
        told.append((step, done is not None))

    with EvolisPrinter(p.config.printer) as printer:
        runner(p, printer, after_step=after_step).run(p.job_id)
    assert told == [
        ("feed", True),
        ("chip_write", True),
        ("chip_verify", True),
        ("encode_stripe", True),
        ("stripe_verify", True),
        ("print_face", True),
        ("activate", True),
    ]
    assert_consistent(p)


def test_job_run_ignores_the_old_environment_hook(p: Prepared) -> None:
    """``SSCARD_FAULT_KILL_AFTER`` once made ``job run`` kill itself: production code no
    longer has such a hook (the crash tests use tests/kill_after_step.py)."""
    done = subprocess.run(
        job_run_argv(p.job_id, p.sim.station_file),
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **p.session, "SSCARD_FAULT_KILL_AFTER": "feed"},
    )
    assert done.returncode == 0, done.stderr
    assert_consistent(p)


def test_torn_print_goes_to_the_reject_bin_and_is_not_printed_again_on_it(p: Prepared) -> None:
    emu = emulator(p)
    emu.tear_print_next = True
    with EvolisPrinter(p.config.printer) as printer:
        runner(p, printer).run(p.job_id)
    assert_consistent(p, rejected=1)
    torn = emu.reject_bin[0]
    assert torn.printed is not None  # half a face: it never reaches a holder
    assert emu.printed == 1
    the_new_card_is_the_printed_one(p)
    ((result, sn),) = written_off(p)
    assert result == "rejected"
    released(p, sn)


def test_torn_stripe_goes_to_the_reject_bin(p: Prepared) -> None:
    emu = emulator(p)
    emu.tear_stripe_next = True
    with EvolisPrinter(p.config.printer) as printer:
        runner(p, printer).run(p.job_id)
    assert_consistent(p, rejected=1)
    assert emu.reject_bin[0].stripe.read(2)[0] != "ok"
    the_new_card_is_the_printed_one(p)
    ((result, sn),) = written_off(p)
    assert result == "rejected"
    released(p, sn)


def test_torn_chip_write_card_is_written_off_blacklisted_and_binned(p: Prepared) -> None:
    emu = emulator(p)
    chip = emu.feeder[0].chip
    assert isinstance(chip, SocialSecurityCardOS)
    chip.tearing = Tearing("partial", after_writes=2)  # power lost on the third write
    with EvolisPrinter(p.config.printer) as printer:
        runner(p, printer).run(p.job_id)
    assert_consistent(p, rejected=1)
    assert emu.reject_bin[0].chip is chip  # the torn card does not stay in the printer
    the_new_card_is_the_printed_one(p)
    ((result, sn),) = written_off(p)
    assert result == "lost"
    released(p, sn)


def test_a_run_that_lost_its_lease_records_and_activates_nothing(p: Prepared) -> None:
    """Two runs of one station (a restarted process while the old one still lives): the
    newer claim fences the older run off."""
    with EvolisPrinter(p.config.printer) as printer:
        old = runner(p, printer)
        old._claim(p.job_id)
        old.step_feed(old.job(p.job_id))
        sn = old.job(p.job_id).sn
        new = runner(p, printer)
        new._claim(p.job_id)
        with pytest.raises(LeaseLost):
            old.record(p.job_id, "chip_write", StepResult.OK, sn, {})
        with pytest.raises(LeaseLost):
            old.guard(p.job_id)
        card = old.job(p.job_id).new_card_id
        with pytest.raises(LeaseLost):
            p.registry.activate(card, operator="op", job_id=p.job_id, fence=old.fence)
        old._pause(p.job_id, "the old run stops")
        assert old.job(p.job_id).status == "running"  # the newer run's job is untouched
        new.run(p.job_id)
    assert_consistent(p)
    assert emulator(p).printed == 1


def test_a_station_whose_lease_was_taken_over_stops(tmp_path: Path) -> None:
    """Station 1 is frozen as its print sequence begins (``Pr``), its lease runs out,
    station 2 takes the job over and finishes it; station 1 wakes up and records and prints
    nothing."""
    with Campaign(tmp_path, jobs=1, stations=2, seed=3) as c:
        figures = Figures()
        job_id, old = c.submit(1)
        before = c.printed()
        c.stale_takeover(job_id, 0, 1.5, figures, freeze_on="Pr")
        for station in (1, 0):
            if c.job(job_id)["status"] != "done":
                c.run_to_end(job_id, station)
        c.check(job_id, old, c.printed() - before, figures)
        assert figures.takeovers == 1 and figures.clean(), figures.details
        assert figures.stale_inflight_prints == 0  # it was stopped before its print began


@pytest.mark.parametrize(("stations", "jobs"), [(1, 8), (2, 5)])
def test_random_kills_and_takeovers(tmp_path: Path, stations: int, jobs: int) -> None:
    """A small crash campaign (the full one, kills anywhere in a run: bench/crash_resume.py).
    Kills land in the first 60 % of a run so that every job is crashed at least once; kills
    during and after the print are covered by the dedicated tests above."""
    with Campaign(tmp_path, jobs=jobs, stations=stations, seed=20 + stations) as c:
        figures = c.campaign((3, 4), window=0.6)
    assert figures.kills >= jobs and figures.jobs == jobs, (figures.as_dict(), figures.details)
    assert figures.clean(), (figures.as_dict(), figures.details)
