"""``sscard audit verify`` on a long chain: the default (incremental) run after 1,000 new
events against ``--full`` (issue 13: < 1 s for the incremental one on a 2.6M-event chain).

    .venv/bin/python bench/audit_verify.py [--events 2600000] [--persons 100000] [--rounds 5]
    .venv/bin/python bench/audit_verify.py --postgresql   # the same on a private PostgreSQL server

The chain is written fast by a bulk writer with the registry's own hash functions (keyed
HMAC per event, one MACed checkpoint line per 1,000 events): the first ``--persons`` events
each enrol a person and a card (their rows and row digests, as ``Registry.enroll`` records
them), the rest are operator logins (no rows). Then, ``--rounds`` times: 1,000 enrolments
through ``Registry.enroll`` (each its own transaction and event) and one default
``check_audit()`` — the median is reported, and once the same through the ``sscard audit
verify`` command (process start included). ``--full`` is timed ``--full-runs`` times.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, replace
from datetime import date
from pathlib import Path
from typing import Any

from hsm_stub.keystore import Keystore
from hsm_stub.local import LocalSecurityModule
from personalize.auditlog import AuditKey, Checkpoint
from personalize.policy import load_policy
from personalize.registry import AUDITED_COLUMNS, GENESIS, Registry, _event_hash, _row_state
from simulator.factory import SAMPLE_HOLDER
from sscard.identifiers import card_number_check, ssn_check
from sscard.records import HolderData

AT = "2026-11-25T09:30:00+00:00"
BATCH = 1000
REGION = load_policy("default").region_code


def holder(n: int) -> HolderData:
    """A valid holder per serial: born on a day per 1,000 (from 1950), sequence n % 1000."""
    born = date.fromordinal(date(1950, 1, 1).toordinal() + n // 1000)
    first17 = SAMPLE_HOLDER.ssn[:6] + born.strftime("%Y%m%d") + f"{n % 1000:03d}"
    ssn = first17 + ssn_check(first17)
    return replace(SAMPLE_HOLDER, ssn=ssn, gender=str(2 - n % 2), birth_date=born)


def card_number(n: int) -> str:
    first8 = f"H{n:07d}"
    return first8 + card_number_check(first8)


def person(n: int) -> tuple[Any, ...]:
    h = holder(n)
    return (n, h.ssn, h.name, h.gender, h.ethnicity, h.birthplace, h.birth_date.isoformat(), AT)


def bulk_chain(registry: Registry, key: AuditKey, events: int, persons: int) -> None:
    """Write ``events`` sealed events (the first ``persons`` enrol a person and a card) and
    their checkpoint lines, in batches of 1,000 per transaction."""
    db, prev = registry.db, GENESIS
    person_cols = ("id", *AUDITED_COLUMNS["persons"], "created_at")
    card_cols = ("id", "person_id", "card_number", "region", "status", "status_since")
    with registry.checkpoints.path.open("a", encoding="utf-8") as log:
        for start in range(1, events + 1, BATCH):
            ids = range(start, min(start + BATCH, events + 1))
            rows_p, rows_c, rows_e = [], [], []
            for event in ids:
                details: dict[str, Any] = {}
                if event <= persons:
                    p = person(event)
                    c = (event, event, card_number(event), REGION, "active", AT)
                    full_c = dict.fromkeys(AUDITED_COLUMNS["cards"]) | dict(
                        zip(card_cols, c, strict=True)
                    )
                    details = {
                        "card": c[2],
                        "rows": {
                            f"persons/{event}": _row_state(
                                "persons", dict(zip(person_cols, p, strict=True))
                            ),
                            f"cards/{event}": _row_state("cards", full_c),
                        },
                    }
                    rows_p.append((*p, event))
                    rows_c.append((*c, AT, event))
                text = json.dumps(details, ensure_ascii=False, sort_keys=True)
                action, subject = ("card.enroll", "card") if details else ("operator.login", "op1")
                row = {"id": event, "at": AT, "operator": "op1", "action": action}
                row |= {"subject": subject, "details": text}
                digest = _event_hash(key, row, prev)  # type: ignore[arg-type]
                rows_e.append((event, AT, "op1", action, subject, text, prev, digest))
                prev = digest
            with registry.transaction():
                db.executemany(
                    f"INSERT INTO persons ({', '.join(person_cols)}, audit_event_id)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows_p,
                )
                db.executemany(
                    f"INSERT INTO cards ({', '.join(card_cols)}, created_at, audit_event_id)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    rows_c,
                )
                db.execute("DELETE FROM audit_touched")  # sealed here, not by _seal
                db.executemany(
                    "INSERT INTO audit_events (id, at, operator, action, subject, details,"
                    " prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    rows_e,
                )
                for table in ("persons", "cards", "audit_events"):
                    db.follow_ids(table)  # PostgreSQL: the sequences past the explicit ids
            checkpoint = Checkpoint(ids[-1], prev, AT, 0)
            log.write(json.dumps({**asdict(checkpoint), "mac": checkpoint.mac(key)}) + "\n")


def timed(action: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2_600_000)
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--full-runs", type=int, default=3)
    parser.add_argument(
        "--postgresql",
        action="store_true",
        help="on a private PostgreSQL server (tests/pgserver.py) instead of a SQLite file",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sscard-bench-audit-"))
    os.chdir(work)  # a PostgreSQL registry's checkpoint log is in the working directory
    if not args.postgresql:
        return measure(args, work, str(work / "registry.db"), "SQLite")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.pgserver import postgres_server

    with postgres_server() as server:
        return measure(args, work, server.create_database("audit_bench"), "PostgreSQL")


def measure(args: argparse.Namespace, work: Path, db: str, label: str) -> int:
    keystore = work / "keystore.json"
    key = LocalSecurityModule(Keystore.create_test(keystore)).audit_mac
    registry = Registry(db, load_policy("default"), audit_key=key)
    built, _ = timed(lambda: bulk_chain(registry, key, args.events, args.persons))
    print(f"chain of {args.events:,} events ({args.persons:,} persons) written in {built:.0f} s")
    first, result = timed(registry.check_audit)
    assert result.mode == "full" and not result.problems, result
    print(f"first verify (full): {first:.2f} s, {result.events:,} events, {result.rows:,} rows")

    serial = args.persons + 1
    incremental: list[float] = []
    for _ in range(args.rounds):
        for n in range(serial, serial + BATCH):
            registry.enroll(holder(n), card_number(n), operator="op1")
        serial += BATCH
        seconds, result = timed(registry.check_audit)
        assert result.mode == "incremental" and result.events == BATCH, result
        assert not result.problems, result.problems
        incremental.append(seconds)
    for n in range(serial, serial + BATCH):
        registry.enroll(holder(n), card_number(n), operator="op1")
    env = {**os.environ, "SSCARD_HSM": f"keystore:{keystore}"}
    command = [sys.executable, "-m", "personalize.cli", "audit", "verify", "--json"]
    command += ["--db", db]
    cli, done = timed(lambda: subprocess.run(command, env=env, capture_output=True, text=True))
    report = json.loads(done.stdout)
    assert report["mode"] == "incremental" and report["events"] == BATCH, done.stdout

    full: list[float] = []
    for _ in range(args.full_runs):
        seconds, result = timed(lambda: registry.check_audit(full=True))
        assert not result.problems, result.problems
        full.append(seconds)
    inc, whole = statistics.median(incremental), statistics.median(full)
    head = result.head
    print(f"audit verify after {BATCH:,} new events on a {head:,}-event chain ({label}):")
    print(f"  default (incremental): median {inc * 1000:.0f} ms of {args.rounds} runs")
    print(f"  sscard audit verify (command, process start included): {cli * 1000:.0f} ms")
    print(f"  --full: median {whole:.2f} s of {args.full_runs} runs  (ratio {whole / inc:.0f}x)")
    print("  command: .venv/bin/python bench/audit_verify.py " + " ".join(sys.argv[1:]))
    registry.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
