"""The card center's main job end to end on the simulated station — real pcscd + vpcd, real
ptys, a real SQLite file — including crashes after every step, two stations on one job, and
the faults a station meets (pulled card, bad card, ribbon out, dead security module)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from apdu.pcsc import PcscReader
from hsm_stub.keystore import Keystore
from hsm_stub.local import LocalSecurityModule
from hsm_stub.server import HsmServer
from personalize.demo import run_demo
from personalize.jobs import STEPS, JobPaused, JobRunner, StationDevices, submit_job
from personalize.policy import load_policy
from personalize.registry import VALID, Registry, utc_now
from personalize.roles import Role
from personalize.station import StationConfig
from personalize.stock import day_report, day_report_pdf, receive_stock
from personalize.trackvault import TrackVault
from printer.evolis import EvolisPrinter
from simulator.evolis_emulator import VirtualCard
from simulator.factory import SAMPLE_HOLDER, TEST_ROOTS, issue_blank_card, sample_photo
from simulator.station import SimulatedStation
from sscard.profile import load_profile
from tests.audit_key import AUDIT_KEY
from tests.clock import pinned_clock
from tests.conftest import NewDatabase
from tests.integration.crash_campaign import job_run_argv
from tests.operators import login

pytestmark = pytest.mark.pcsc
POLICY = load_policy("default")
PROFILE = load_profile("default")
T2 = "6217991234567890123=3611120"


def pdftext(path: Path) -> str:
    return subprocess.run(
        ["pdftotext", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def test_demo_flow_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "out"
    # Pinned clock: Wed 2026-11-25 09:30 UTC; 15 working days later is Wed 2026-12-16.
    assert run_demo(out, clock=lambda: datetime(2026, 11, 25, 9, 30, tzinfo=UTC)) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["old_card"] == {
        "number": summary["old_card"]["number"],
        "status": "void",
        "blacklisted": True,
    }
    assert summary["new_card"]["status"] == "active"
    back = summary["read_back"]
    assert (back["name"], back["ssn"], back["birth_date"]) == (
        "张三",
        SAMPLE_HOLDER.ssn,
        "1949-12-31",
    )
    assert back["card_number"] == summary["new_card"]["number"]
    assert all(back["checks"].values()) and summary["audit"]["intact"]
    cert = pdftext(out / "领卡证明-000001.pdf")
    for words in (
        "社会保障卡领卡证明",
        "张三",
        "110105********002X",
        summary["old_card"]["number"],
        "2026年12月16日",
        "SSCARD-REQ-000001",
    ):
        assert words in cert
    assert summary["new_card"]["number"] in pdftext(out / "卡面校样.pdf")
    assert (out / "printed-card.png").stat().st_size > 10_000
    steps = json.loads((out / "job-steps.json").read_text())
    assert [s["step"] for s in steps if s["result"] == "ok"] == list(STEPS)
    # the print was recorded as begun before ``Se`` was sent, then as done
    assert [(s["step"], s["result"]) for s in steps[5:7]] == [
        ("print_face", "intent"),
        ("print_face", "ok"),
    ]
    registry = Registry(out / "station" / "registry.db", POLICY, audit_key=AUDIT_KEY)
    person = registry.card(summary["new_card"]["number"]).person_id
    valid = [c for c in registry.cards_of(person) if c.status in VALID]
    assert [c.card_number for c in valid] == [summary["new_card"]["number"]]


@dataclass
class Prepared:
    sim: SimulatedStation
    registry: Registry
    config: StationConfig
    job_id: int
    old_number: str
    session: dict[str, str]  # the station operator's; ``job run`` runs on the real clock


@pytest.fixture
def prepared(tmp_path: Path, new_db: NewDatabase) -> Iterator[Prepared]:
    """A simulated station whose registry (SQLite or PostgreSQL) holds one queued job."""
    with SimulatedStation(tmp_path / "station", PROFILE, POLICY.region_code, cards=4) as sim:
        db = new_db("registry")
        text = sim.station_file.read_text(encoding="utf-8")
        text = text.replace('registry = "registry.db"', f'registry = "{db}"')
        sim.station_file.write_text(text, encoding="utf-8")
        config = StationConfig.load(sim.station_file)
        assert str(config.registry) == db
        registry = Registry(config.registry, POLICY, clock=pinned_clock, audit_key=AUDIT_KEY)
        old = registry.allocate_card_number()
        registry.enroll(SAMPLE_HOLDER, old, operator="op")
        registry.formalize_loss(old, operator="op", evidence="ID")
        registry.request_reissue(old, operator="op")
        (sim.root / "photo.jpg").write_bytes(sample_photo("crash"))
        holder = {
            "ssn": SAMPLE_HOLDER.ssn,
            "name": "张三",
            "gender": "2",
            "ethnicity": "01",
            "birthplace": "110105",
            "birth_date": "1949-12-31",
        }
        job_id = submit_job(
            registry,
            PROFILE,
            TrackVault.from_file(config.track_key),
            {"old_card_number": old, "holder": holder, "photo": "photo.jpg", "tracks": {"2": T2}},
            base_dir=sim.root,
            operator="op",
        )
        session = login(config.registry, "op", Role.CARD_CENTER, clock=utc_now)
        yield Prepared(sim, registry, config, job_id, old, session)
        registry.close()


def run_job(
    p: Prepared, *, kill_after: str | None = None, station: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        job_run_argv(p.job_id, station or p.sim.station_file, kill_after=kill_after),
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **p.session},
    )


def assert_consistent(p: Prepared, *, printed: int = 1, rejected: int = 0) -> None:
    registry = Registry(p.config.registry, POLICY, audit_key=AUDIT_KEY)
    old = registry.card(p.old_number)
    cards = registry.cards_of(old.person_id)
    valid = [c for c in cards if c.status in VALID]
    assert len(valid) == 1 and valid[0].status == "active" and valid[0].id != old.id
    assert old.status == "void" and registry.blacklisted(p.old_number)
    assert registry.verify_audit()[1] == []
    assert p.sim.printer is not None
    assert len(p.sim.printer.hopper) == printed
    assert len(p.sim.printer.reject_bin) == rejected
    job = registry.db.execute("SELECT status FROM jobs WHERE id = ?", (p.job_id,)).fetchone()
    assert job["status"] == "done"


@pytest.mark.parametrize("step", STEPS)
def test_killed_after_each_step_then_resumed(prepared: Prepared, step: str) -> None:
    crashed = run_job(prepared, kill_after=step)
    assert crashed.returncode == -9, crashed.stderr
    resumed = run_job(prepared)
    assert resumed.returncode == 0, resumed.stderr
    assert_consistent(prepared)
    # the resumed run started where the last verified step left off
    first = resumed.stdout.splitlines()[0] if step != "activate" else ""
    expected = {
        "feed": "chip_write",
        "chip_write": "chip_write",
        "chip_verify": "encode_stripe",
        "encode_stripe": "encode_stripe",
        "stripe_verify": "print_face",
        "print_face": "activate",
    }.get(step)
    if expected:
        assert first.endswith(expected), resumed.stdout


def test_two_stations_one_job(prepared: Prepared) -> None:
    other = prepared.sim.root / "station-b.toml"
    other.write_text(
        prepared.sim.station_file.read_text().replace(
            'name = "sim-station-1"', 'name = "sim-station-2"'
        )
    )
    first = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "personalize.cli",
            "job",
            "run",
            str(prepared.job_id),
            "--station",
            str(prepared.sim.station_file),
        ],
        env={**os.environ, **prepared.session},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    second = run_job(prepared, station=other)
    out, err = first.communicate(timeout=120)
    outcomes = sorted([(first.returncode, err), (second.returncode, second.stderr)])
    assert [code for code, _ in outcomes] == [0, 1], (out, err, second.stderr)
    refusal = outcomes[1][1]
    assert "正由工位 sim-station-" in refusal or "已完成" in refusal, refusal
    assert_consistent(prepared)


def in_process_runner(p: Prepared, printer: EvolisPrinter) -> JobRunner:
    """The job runner of the station, in this process, quiet."""
    return JobRunner(
        p.registry, POLICY, PROFILE, devices(p, printer), operator="op", progress=lambda s: None
    )


def devices(p: Prepared, printer: EvolisPrinter) -> StationDevices:
    return StationDevices(
        printer,
        PcscReader(p.config.contact_reader),
        p.config.security_module(),
        TrackVault.from_file(p.config.track_key),
        p.config.out_dir,
        "t",
    )


def test_a_job_waits_for_and_talks_to_its_cards_on_one_pcsc_context(
    prepared: Prepared, pcsc_contexts: list[int]
) -> None:
    """The station's contact reader is held open (``PcscReader``): the feed's waits, every
    proof of the card and every chip session of the job share one PC/SC context — before
    issue 14 each established its own (9 a job), two round trips to pcscd apiece."""
    with EvolisPrinter(prepared.config.printer) as printer:
        in_process_runner(prepared, printer).run(prepared.job_id)
    assert_consistent(prepared)
    assert len(pcsc_contexts) == 1


def test_a_bad_card_goes_to_the_reject_bin(prepared: Prepared) -> None:
    assert prepared.sim.printer is not None
    other = {k: (alg, bytes(b ^ 0x33 for b in v)) for k, (alg, v) in TEST_ROOTS.items()}
    prepared.sim.printer.feeder.insert(
        0,
        VirtualCard(
            issue_blank_card(
                PROFILE.name,
                POLICY.region_code,
                roots=other,
                serial=bytes.fromhex("BAD0000000000001"),
            )
        ),
    )
    with EvolisPrinter(prepared.config.printer) as printer:
        in_process_runner(prepared, printer).run(prepared.job_id)
    assert_consistent(prepared, rejected=1)
    reasons = [
        r["details"]
        for r in prepared.registry.db.execute(
            "SELECT details FROM job_steps WHERE step = 'card' AND result = 'rejected'"
        )
    ]
    assert len(reasons) == 1 and "external authentication" in reasons[0]
    # the rejected card's number went with it (废卡, blacklisted); the good card got a new one
    person = prepared.registry.card(prepared.old_number).person_id
    made = {c.sn: c for c in prepared.registry.cards_of(person) if c.job_id == prepared.job_id}
    bad = made["BAD0000000000001"]
    assert bad.status == "rejected" and prepared.registry.blacklisted(bad.card_number)
    good = [c for c in made.values() if c.status == "active"]
    assert len(good) == 1 and good[0].card_number != bad.card_number
    assert (
        "BAD0000000000001"
        in prepared.registry.db.execute(
            "SELECT sn FROM job_steps WHERE result = 'rejected'"
        ).fetchone()[0]
    )


def test_ribbon_out_pauses_then_resumes(prepared: Prepared) -> None:
    assert prepared.sim.printer is not None
    prepared.sim.printer.ribbon = None
    with EvolisPrinter(prepared.config.printer) as printer:
        runner = in_process_runner(prepared, printer)
        with pytest.raises(JobPaused, match=r"RibbonError.*operator"):
            runner.run(prepared.job_id)
        job = runner.job(prepared.job_id)
        assert job.status == "paused" and job.step == "stripe_verify"
        prepared.sim.printer.ribbon = "YMCKO"  # the operator loads a ribbon
        runner.run(prepared.job_id)
    assert_consistent(prepared)


def test_dead_security_module_pauses_then_resumes(prepared: Prepared) -> None:
    assert prepared.sim.server is not None
    prepared.sim.server.stop()
    with EvolisPrinter(prepared.config.printer) as printer:
        runner = in_process_runner(prepared, printer)
        with pytest.raises(JobPaused, match="SecurityModuleUnavailable"):
            runner.run(prepared.job_id)
    assert runner.job(prepared.job_id).status == "paused"
    # the module comes back on the same port
    assert prepared.sim.audit is not None
    _host, port = prepared.config.hsm[len("tcp://") :].rsplit(":", 1)
    prepared.sim.server = HsmServer(
        LocalSecurityModule(Keystore.open(prepared.sim.root / "keystore.json")),
        audit=prepared.sim.audit,
        port=int(port),
    ).start()
    with EvolisPrinter(prepared.config.printer) as printer:
        in_process_runner(prepared, printer).run(prepared.job_id)
    assert_consistent(prepared)


def test_pulled_card_is_written_off_and_the_job_goes_on(prepared: Prepared) -> None:
    assert prepared.sim.printer is not None
    crashed = run_job(prepared, kill_after="feed")
    assert crashed.returncode == -9
    # someone takes the card out of the printer: the contact station is empty
    printer_emu = prepared.sim.printer
    printer_emu._leave_contact()
    printer_emu.card = None
    resumed = run_job(prepared)
    assert resumed.returncode == 0, resumed.stderr
    assert_consistent(prepared)
    lost = prepared.registry.db.execute(
        "SELECT COUNT(*) FROM job_steps WHERE step = 'card' AND result = 'lost'"
    ).fetchone()[0]
    assert lost == 1


def test_new_card_reads_back_through_pcscd(prepared: Prepared) -> None:
    assert run_job(prepared).returncode == 0
    data = prepared.sim.read_printed_card(0)
    registry = Registry(prepared.config.registry, POLICY, audit_key=AUDIT_KEY)
    person = registry.card(prepared.old_number).person_id
    new = next(c for c in registry.cards_of(person) if c.status == "active")
    assert data["card_number"] == new.card_number and data["sn"] == new.sn
    assert data["name"] == "张三" and all(data["checks"].values())


def test_the_days_stock_report_reconciles_the_activated_and_the_rejected_card(
    prepared: Prepared, tmp_path: Path
) -> None:
    """Card stock (docs/business-rules.md): the station's blank cards are received, a bad
    one goes to the reject bin and a good one is activated by the real job on the simulated
    devices; the day's report counts both from the ledger, finds the same in the job
    records, adds up to the cards left in the printer's feeder, and its PDF says so."""
    assert prepared.sim.printer is not None
    other = {k: (alg, bytes(b ^ 0x33 for b in v)) for k, (alg, v) in TEST_ROOTS.items()}
    bad = issue_blank_card(
        PROFILE.name, POLICY.region_code, roots=other, serial=bytes.fromhex("BAD0000000000002")
    )
    prepared.sim.printer.feeder.insert(0, VirtualCard(bad))
    delivered = len(prepared.sim.printer.feeder)
    receive_stock(prepared.registry, "t", delivered, batch="仿真批次 S-01", operator="op")
    with EvolisPrinter(prepared.config.printer) as printer:
        in_process_runner(prepared, printer).run(prepared.job_id)
    assert_consistent(prepared, rejected=1)

    report = day_report(prepared.registry, pinned_clock().date())  # 17:30 in Shanghai
    assert report.reconciled, report.discrepancies
    (day,) = report.stations
    assert (day.station, day.opening, day.received, day.personalized, day.rejected) == (
        "t",
        0,
        delivered,
        1,
        1,
    )
    assert (day.jobs_personalized, day.jobs_rejected) == (1, 1)
    assert [(r.reason, r.count) for r in day.rejected_by_reason] == [("写芯片不合格", 1)]
    assert day.closing == len(prepared.sim.printer.feeder) == delivered - 2
    (reject,) = report.rejects
    assert reject.sn == "BAD0000000000002" and "external authentication" in (reject.detail or "")

    pdf = tmp_path / "stock-day.pdf"
    pdf.write_bytes(day_report_pdf(report))
    text = pdftext(pdf)
    assert "社会保障卡空白卡库存日结对账表" in text and "无差异" in text
    assert "写芯片不合格 1" in text and "BAD0000000000002" in text
    subprocess.run(
        ["pdftoppm", "-png", "-r", "100", str(pdf), str(tmp_path / "stock-day")], check=True
    )
    shots = Path("/work/shots/stock")
    shots.mkdir(parents=True, exist_ok=True)
    for png in tmp_path.glob("stock-day*.png"):
        shutil.copy(png, shots / f"{png.stem}-{prepared.registry.db.dialect}.png")
