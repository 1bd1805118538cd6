"""Audit verification in O(new events) (issue 13, deliverable 3): ``sscard audit verify``
checks from the last checkpoint of verification on — the events after it, the checkpoint log
after it, the state rows they record or whose ``audit_event_id`` is newer — and walks the
whole chain with ``--full``, on its first run, when the checkpoint is not sound and when the
last full walk is ``--full-every`` days old. Real SQLite files, the CLI as a subprocess, the
in-process registry with an injected clock, and several writer processes."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from personalize.auditverify import AuditVerification
from personalize.policy import load_policy
from personalize.registry import Registry
from simulator.factory import SAMPLE_HOLDER
from tests.audit_key import AUDIT_KEY
from tests.clock import FAKETIME, MovingClock, faketime, pinned_clock
from tests.unit.test_policy_registry import card_number, neighbour

POLICY = load_policy("default")


def open_registry(db: Path, clock: MovingClock | None = None) -> Registry:
    return Registry(db, POLICY, clock=clock or pinned_clock, audit_key=AUDIT_KEY)


def enroll(registry: Registry, serials: range) -> None:
    """One person and card per serial (each enrolment: one transaction, one event)."""
    for n in serials:
        registry.enroll(neighbour(SAMPLE_HOLDER, n), card_number(n), operator="op1")


def tamper(db: Path, *statements: str) -> None:
    """Edit the database directly (no sscard, no audit key)."""
    con = sqlite3.connect(db)
    with con:
        for statement in statements:
            con.execute(statement)
    con.close()


def verify(db: Path, *extra: str, at: str = "2026-11-25 09:30:00") -> dict[str, object]:
    """``sscard audit verify --json`` (its clock from ``at``): the output, with the exit code."""
    command = [sys.executable, "-m", "personalize.cli", "audit", "verify", "--db", str(db)]
    result = subprocess.run(
        [*faketime(at), *command, "--json", *extra],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode in (0, 1) and "Traceback" not in result.stderr, result.stderr
    return json.loads(result.stdout) | {"exit": result.returncode}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """40 persons with their cards: 40 events, 40 person rows, 40 card rows."""
    path = tmp_path / "registry.db"
    registry = open_registry(path)
    enroll(registry, range(1, 41))
    registry.close()
    return path


def test_default_verify_reads_only_what_is_new(db: Path) -> None:
    first = verify(db)
    assert first | {"exit": 0} == first
    assert (first["mode"], first["reason"], first["from_event"]) == ("full", "first", 1)
    assert (first["events"], first["rows"], first["head"]) == (40, 80, 40)
    enroll(open_registry(db), range(41, 44))
    again = verify(db)
    assert (again["exit"], again["problems"], again["mode"]) == (0, [], "incremental")
    # the 3 new events, and the 3 persons and 3 cards they wrote — not the 80 rows before
    assert (again["from_event"], again["events"], again["rows"], again["head"]) == (41, 3, 6, 43)
    nothing_new = verify(db)
    assert (nothing_new["from_event"], nothing_new["events"], nothing_new["rows"]) == (44, 0, 0)
    full = verify(db, "--full")
    assert (full["mode"], full["reason"], full["events"], full["rows"]) == (
        "full",
        "requested",
        43,
        86,
    )


def test_the_text_output_says_which_mode_ran_and_from_where(db: Path) -> None:
    command = [*FAKETIME, sys.executable, "-m", "personalize.cli", "audit", "verify", "--db"]
    command.append(str(db))
    first = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert "完整核验 full (尚无核验检查点 (no checkpoint of verification yet))" in first.stdout
    enroll(open_registry(db), range(41, 42))
    second = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0
    assert "增量核验 incremental, from event 41: 1 events, 2 rows checked" in second.stdout
    bad = subprocess.run([*command, "--full-every", "-1"], capture_output=True, text=True)
    assert bad.returncode == 2 and "days must be a number from 0 to 36500" in bad.stderr


def test_tampering_after_the_checkpoint_is_found_by_default(db: Path) -> None:
    assert verify(db)["exit"] == 0
    enroll(open_registry(db), range(41, 44))
    tamper(
        db,
        "UPDATE cards SET status = 'void' WHERE id = 42",
        "UPDATE audit_events SET operator = 'nobody' WHERE id = 42",
        "UPDATE audit_events SET details = 'not JSON' WHERE id = 43",
    )
    found = verify(db)
    assert (found["exit"], found["mode"], found["from_event"]) == (1, "incremental", 41)
    assert any("event 42: its content was altered" in p for p in found["problems"])
    assert any("event 43: its content was altered" in p for p in found["problems"])
    assert any(str(p).startswith("cards/42 (卡号 ") for p in found["problems"])
    assert verify(db)["problems"] == found["problems"]  # nothing recorded: found again


def test_a_row_inserted_after_the_checkpoint_is_found_by_default(db: Path) -> None:
    assert verify(db)["exit"] == 0
    tamper(db, "INSERT INTO blacklist (card_number, reason, at) VALUES ('H00000012', 'x', 'y')")
    found = verify(db)  # no audit_event_id: found through the index
    assert (found["exit"], found["mode"], found["rows"]) == (1, "incremental", 1)
    assert "blacklist/1: no audit event explains this row" in str(found["problems"])
    tamper(db, "UPDATE blacklist SET audit_event_id = 99")  # claims a newer event: found
    assert "blacklist/1: no audit event explains" in str(verify(db)["problems"])
    tamper(db, "UPDATE blacklist SET audit_event_id = 3")  # an old event: for the full walk
    assert (verify(db)["exit"], verify(db, "--full")["exit"]) == (0, 1)


def test_tampering_before_the_checkpoint_is_found_by_full(db: Path) -> None:
    assert verify(db)["exit"] == 0
    tamper(
        db,
        "UPDATE audit_events SET operator = 'nobody' WHERE id = 7",
        "UPDATE cards SET status = 'void' WHERE id = 3",
    )
    enroll(open_registry(db), range(41, 42))
    default = verify(db)
    assert (default["exit"], default["mode"], default["events"]) == (0, "incremental", 1)
    full = verify(db, "--full")
    assert (full["exit"], full["mode"]) == (1, "full")
    assert any("event 7: its content was altered" in p for p in full["problems"])
    assert any(str(p).startswith("cards/3 ") for p in full["problems"])


def test_a_rewritten_or_truncated_checkpoint_event_forces_a_full_walk(db: Path) -> None:
    assert verify(db)["exit"] == 0
    tamper(db, "UPDATE audit_events SET hash = 'x' WHERE id = 40")
    found = verify(db)
    assert (found["exit"], found["mode"], found["reason"]) == (1, "full", "unsound")
    assert "event 40 differs from its verification checkpoint" in str(found["problems"])


def test_truncations_after_the_checkpoint_are_found_by_default(db: Path) -> None:
    assert verify(db)["exit"] == 0
    enroll(open_registry(db), range(41, 44))
    tamper(db, "DELETE FROM audit_events WHERE id > 41")
    found = verify(db)
    assert (found["exit"], found["mode"]) == (1, "incremental")
    assert any("events 42-43 are missing: the chain was truncated" in p for p in found["problems"])
    log = Path(f"{db}.checkpoints")
    log.write_bytes(log.read_bytes()[:100])
    found = verify(db)
    assert "the checkpoint log" in str(found["problems"]) and "is shorter than" in str(
        found["problems"]
    )


def test_forged_or_deleted_checkpoints_of_verification_are_named(db: Path) -> None:
    assert verify(db)["exit"] == 0
    enroll(open_registry(db), range(41, 42))
    assert verify(db)["mode"] == "incremental"
    tamper(db, "UPDATE audit_verifications SET full_at = '2099-01-01T00:00:00+00:00' WHERE id = 2")
    forged = verify(db)
    assert (forged["exit"], forged["reason"]) == (1, "unsound")
    assert "verification checkpoint 2: its MAC does not verify" in str(forged["problems"])
    tamper(db, "DELETE FROM audit_verifications WHERE id = 2")
    after = verify(db)  # the one before is sound: from there
    assert (after["exit"], after["mode"], after["from_event"]) == (0, "incremental", 41)
    tamper(db, "DELETE FROM audit_verifications WHERE id = 1")
    gap = verify(db)
    assert gap["exit"] == 1 and "checkpoints before 2 were deleted" in str(gap["problems"])


def test_a_periodic_full_walk_finds_tampering_before_the_checkpoint(db: Path) -> None:
    clock = MovingClock()
    registry = open_registry(db, clock)
    assert registry.check_audit().reason == "first"
    tamper(db, "UPDATE cards SET status = 'void' WHERE id = 5")
    clock.now += timedelta(days=6, hours=23)
    assert registry.check_audit() == AuditVerification("incremental", 41, None, 40, 0, 0, [])
    clock.now += timedelta(hours=1)  # 7 days after the last full walk
    periodic = registry.check_audit()
    assert (periodic.mode, periodic.reason) == ("full", "periodic")
    assert periodic.problems and periodic.problems[0].startswith("cards/5 ")
    tamper(db, "UPDATE cards SET status = 'active' WHERE id = 5")
    assert registry.check_audit(full_every=timedelta(0)).reason == "periodic"  # sound: recorded
    assert registry.check_audit(full_every=timedelta(0)).reason == "periodic"  # 0: every run
    assert registry.check_audit().mode == "incremental"
    clock.now += timedelta(days=3)  # the last *sound* full walk is now 3 days old
    assert registry.check_audit().mode == "incremental"
    # the command line: --full-every in days, the clock of the process (libfaketime)
    # (the last full walk: 2026-12-02 09:30)
    assert verify(db, at="2026-12-06 09:30:00")["mode"] == "incremental"
    assert verify(db, "--full-every", "4", at="2026-12-06 09:30:00")["reason"] == "periodic"


def _write(db: str, serials: range) -> None:
    """A writer process: its own registry connection, one transaction per enrolment."""
    registry = Registry(db, POLICY, clock=pinned_clock, audit_key=AUDIT_KEY)
    enroll(registry, serials)
    registry.close()


def test_one_chain_under_concurrent_writers_while_verify_runs(db: Path) -> None:
    assert verify(db)["exit"] == 0
    context = multiprocessing.get_context("fork")
    writers = [
        context.Process(target=_write, args=(str(db), range(n, n + 60))) for n in (41, 101, 161)
    ]
    for writer in writers:
        writer.start()
    verifier = open_registry(db)  # its own connection, as another process would have
    runs = []
    while any(w.is_alive() for w in writers) or not runs:
        runs.append(verifier.check_audit())
    for writer in writers:
        writer.join()
        assert writer.exitcode == 0
    assert all(run.mode == "incremental" and not run.problems for run in runs), runs
    last = verify(db)
    # every new event checked once, each run from where the one before ended
    assert [run.from_event for run in runs[1:]] == [run.head + 1 for run in runs[:-1]]
    assert last["head"] == 220 and sum(run.events for run in runs) + int(str(last["events"])) == 180
    full = verify(db, "--full")
    assert (full["exit"], full["events"], full["rows"]) == (0, 220, 440)
    con = sqlite3.connect(db)
    ids = [row[0] for row in con.execute("SELECT id FROM audit_verifications ORDER BY id")]
    con.close()
    assert ids == list(range(1, len(runs) + 4))
