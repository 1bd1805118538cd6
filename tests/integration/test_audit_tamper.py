"""The tamper-evident audit (issue 11, deliverable 5): each way of tampering with the registry
behind sscard's back — with the sqlite3 library on the database file, as someone with file
access but without the security module's audit key would — is detected by
``sscard audit verify`` (exit 1, the problem named); an intact registry verifies."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from personalize.policy import load_policy
from personalize.registry import Registry
from simulator.factory import SAMPLE_HOLDER
from sscard.identifiers import ssn_check
from tests.audit_key import AUDIT_KEY
from tests.cli import run_sscard
from tests.clock import FAKETIME_ENV, pinned_clock
from tests.integration.conftest import RunningServer
from tests.operators import login

POLICY = load_policy("default")
LOST, KEPT = "H00000012", "H00000020"


def sscard(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_sscard(*args, env={**os.environ, **FAKETIME_ENV, **(env or {})})


def verify(db: Path, *extra: str) -> tuple[int, list[str]]:
    """``sscard audit verify --json``: exit code and the problems it names."""
    result = sscard("audit", "verify", "--db", str(db), "--json", *extra)
    assert "Traceback" not in result.stderr, result.stderr
    if result.returncode > 1:
        return result.returncode, [result.stderr]
    return result.returncode, json.loads(result.stdout)["problems"]


def open_registry(db: Path) -> Registry:
    return Registry(db, POLICY, clock=pinned_clock, audit_key=AUDIT_KEY)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Two holders: one card lost, formally reported, a reissue requested; the other active."""
    path = tmp_path / "registry.db"
    registry = open_registry(path)
    registry.enroll(SAMPLE_HOLDER, LOST, operator="op1", sn="0000000000000001")
    first17 = SAMPLE_HOLDER.ssn[:14] + "003"
    other = replace(SAMPLE_HOLDER, ssn=first17 + ssn_check(first17), gender="1")
    registry.enroll(other, KEPT, operator="op1")
    registry.report_loss(LOST, operator="op1")
    registry.formalize_loss(LOST, operator="op1", evidence="居民身份证")
    registry.request_reissue(LOST, operator="op1", counter="3号窗口")
    registry.close()
    return path


def tamper(db: Path, *statements: str) -> None:
    """Edit the database directly (no sscard, no audit key)."""
    con = sqlite3.connect(db)
    with con:
        for statement in statements:
            con.execute(statement)
    con.close()


def events(db: Path) -> int:
    con = sqlite3.connect(db)
    try:
        return int(con.execute("SELECT MAX(id) FROM audit_events").fetchone()[0] or 0)
    finally:
        con.close()


def recompute_unkeyed(db: Path, hash_of: Callable[[str, sqlite3.Row], str]) -> None:
    """What a forger without the key does after an edit: rebuild every hash of the chain."""
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    with con:
        prev = "0" * 64
        for row in con.execute("SELECT * FROM audit_events ORDER BY id").fetchall():
            digest = hash_of(prev, row)
            con.execute(
                "UPDATE audit_events SET prev_hash = ?, hash = ? WHERE id = ?",
                (prev, digest, row["id"]),
            )
            prev = digest
    con.close()


def sha256_fields(prev: str, row: sqlite3.Row) -> str:
    """The plain SHA-256 chain of before the keyed audit: previous hash and the content."""
    fields = [prev, row["at"], row["operator"], row["action"], row["subject"], row["details"]]
    return hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode()).hexdigest()


def test_an_intact_registry_verifies(db: Path) -> None:
    code, problems = verify(db)
    assert (code, problems) == (0, [])
    text = sscard("audit", "verify", "--db", str(db))
    assert text.returncode == 0 and "intact 完整" in text.stdout


def test_deleting_the_last_events_is_detected(db: Path) -> None:
    last = events(db)
    tamper(db, f"DELETE FROM audit_events WHERE id > {last - 2}")
    code, problems = verify(db)
    assert code == 1
    assert f"(events {last - 1}-{last} are missing: the chain was truncated" in "\n".join(problems)


def test_truncation_to_an_earlier_copy_is_detected(db: Path, tmp_path: Path) -> None:
    """The whole database put back as it was (a consistent, older copy): only the checkpoints
    outside it know that later events existed."""
    earlier = tmp_path / "earlier.db"
    shutil_copy_db(db, earlier)
    before = events(db)
    registry = open_registry(db)
    registry.report_loss(KEPT, operator="op2")
    registry.close()
    after = events(db)
    assert after > before
    shutil_copy_db(earlier, db)
    code, problems = verify(db)
    assert code == 1
    assert len(problems) == 1
    assert problems[0].startswith(f"审计事件 {before + 1}–{after} 缺失：链尾被截断")
    assert f"(events {before + 1}-{after} are missing: the chain was truncated" in problems[0]


def shutil_copy_db(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite database (its WAL included), over ``target``."""
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target)
    with dst:
        src.backup(dst)
    src.close()
    dst.close()


def test_deleting_every_event_is_detected(db: Path) -> None:
    last = events(db)
    tamper(db, "DELETE FROM audit_events")
    code, problems = verify(db)
    assert code == 1
    assert any(
        f"(the audit chain is empty but a checkpoint names event {last}: every event was deleted)"
        in p
        for p in problems
    )


@pytest.mark.parametrize("layout", ["sha256", "sha256-legacy-claim"])
def test_an_edit_with_every_hash_recomputed_is_detected(db: Path, layout: str) -> None:
    """The operator of an event is changed and the whole chain rebuilt with SHA-256; in the
    second variant the forger also claims every event predates the keyed chain."""
    statements = ["UPDATE audit_events SET operator = 'mallory' WHERE id = 3"]
    if layout == "sha256-legacy-claim":
        statements.append("UPDATE audit_meta SET legacy_events = 1000")
    tamper(db, *statements)
    recompute_unkeyed(db, sha256_fields)
    code, problems = verify(db)
    assert code == 1
    joined = "\n".join(problems)
    if layout == "sha256":
        assert "(event 3: its content was altered or its hash recomputed)" in joined
    else:  # the chain checks out as unkeyed, the checkpoints do not
        assert "its content was altered" not in joined
        assert "(the checkpoints record 0 legacy events, the database says 1000)" in joined
    assert "differs from its checkpoint" in joined and "the chain was rewritten" in joined
    Path(f"{db}.checkpoints").unlink()  # and the checkpoints thrown away too
    code, problems = verify(db)
    assert code == 1 and any("a deleted tail cannot be ruled out" in p for p in problems)


def test_a_card_status_edited_directly_is_detected(db: Path) -> None:
    tamper(db, f"UPDATE cards SET status = 'active', lapse_at = NULL WHERE card_number = '{LOST}'")
    code, problems = verify(db)
    assert code == 1
    assert len(problems) == 1
    assert problems[0].startswith(f"cards/1 (卡号 {LOST}) 与审计事件")
    assert "状态 status 表中 active，审计链为 reissue_pending" in problems[0]
    assert "changed outside sscard" in problems[0]


def test_a_blacklist_row_inserted_directly_is_detected(db: Path) -> None:
    tamper(
        db,
        "INSERT INTO blacklist (card_number, sn, card_id, reason, at, audit_event_id)"
        f" VALUES ('{KEPT}', NULL, NULL, 'replaced', '2026-11-25T09:30:00+00:00', 3)",
    )
    code, problems = verify(db)
    assert code == 1
    assert problems == [
        f"blacklist/1 (卡号 {KEPT})：没有审计事件说明这一行，是在 sscard 之外写入的 "
        "(blacklist/1: no audit event explains this row — written outside sscard)"
    ]


def test_a_status_history_edit_is_detected(db: Path) -> None:
    tamper(db, "UPDATE status_history SET operator = 'nobody' WHERE id = 2")
    code, problems = verify(db)
    assert code == 1
    assert len(problems) == 1 and "status_history/2 与审计事件" in problems[0]


def test_deleted_rows_and_a_forged_or_missing_checkpoint_log_are_named(db: Path) -> None:
    tamper(db, "DELETE FROM status_history WHERE id = (SELECT MAX(id) FROM status_history)")
    code, problems = verify(db)
    assert code == 1 and "was deleted outside sscard" in problems[0]
    log = Path(f"{db}.checkpoints")
    lines = log.read_text().splitlines()
    forged = json.loads(lines[-1]) | {"event": 99}
    with log.open("a") as fh:
        fh.write(json.dumps(forged) + "\n")
    code, problems = verify(db)
    assert any(f"checkpoint line {len(lines) + 1}: its MAC does not verify" in p for p in problems)
    log.unlink()
    code, problems = verify(db)
    assert code == 1 and any("a deleted tail cannot be ruled out" in p for p in problems)


def test_without_the_audit_key_nothing_is_written_and_nothing_verified(db: Path) -> None:
    session = login(db)
    before = events(db)
    no_key = {"SSCARD_HSM": "", **session}
    report = sscard("registry", "report-loss", KEPT, "--db", str(db), env=no_key)
    assert report.returncode != 0
    assert "no audit key: the registry is read-only" in report.stderr
    assert events(db) == before and verify(db) == (0, [])
    refused = sscard("audit", "verify", "--db", str(db), env=no_key)
    assert refused.returncode != 0 and "needs the audit key" in refused.stderr
    shown = sscard("registry", "show", KEPT, "--db", str(db), env=no_key)
    assert shown.returncode == 0  # reading needs no key


def test_verify_through_the_tcp_security_module(db: Path, hsm_server: RunningServer) -> None:
    """The audit key where it lives in production: the security-module service."""
    spec = f"tcp://{hsm_server.server.host}:{hsm_server.server.port}"
    assert verify(db, "--hsm", spec) == (0, [])
    tamper(db, f"UPDATE cards SET status = 'void' WHERE card_number = '{KEPT}'")
    code, problems = verify(db, "--hsm", spec, "--full")  # the row's event is verified
    assert code == 1 and problems[0].startswith(f"cards/2 (卡号 {KEPT})")
    assert '"op": "audit-mac"' in hsm_server.audit_path.read_text()
