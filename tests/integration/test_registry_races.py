"""Conflicting registry operations run at the same instant by two processes on one registry
— a SQLite file or a PostgreSQL database (fixture ``new_db``): exactly one wins, the other
gets a clear refusal (Chinese first, English beside it), never a traceback; the registry
stays consistent (docs/service.md "Concurrency").

Each pair has its own database with one fresh card per round. Two worker processes (the
databases' locks are per connection, SQLite's per process, so threads would prove nothing)
stay alive across the rounds; for every round both are handed the same card and released
together by a barrier. After the rounds: every card's status history is one unbroken chain
ending at its current status, a card has at most one unfinished request and a request at
most one live job, and the audit chain verifies.

``python -m tests.integration.test_registry_races`` prints the figures for every pair
without asserting (what issue 11 quotes before and after the fix).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import re
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from hsm_stub.keystore import Keystore
from personalize.jobs import JobError, submit_job
from personalize.policy import load_policy
from personalize.registry import MIGRATIONS, Registry, RegistryError
from personalize.trackvault import TrackVault
from simulator.factory import SAMPLE_HOLDER, sample_photo
from sscard.identifiers import ssn_check
from sscard.profile import load_profile
from sscard.records import HolderData
from tests.audit_key import AUDIT_KEY, HSM_ENV
from tests.clock import FAKETIME, PINNED
from tests.conftest import NewDatabase
from tests.operators import login

ROUNDS = 100
POLICY = load_policy("default")
LATER = timedelta(days=10)  # past any 预挂失 deadline set at PINNED
_CJK = re.compile(r"[\u3400-\u9fff]")
_LATIN = re.compile(r"[A-Za-z]")


@dataclass(frozen=True)
class Pair:
    """Two operations on one card, the card's status before them, and what may happen."""

    name: str
    ops: tuple[str, str]
    prepared: tuple[str, ...]  # the preparation steps, from an active card
    one_winner: bool = True  # in any serial order exactly one of the two can succeed
    final: str | None = None  # the status every card must end in, whatever the order
    later: bool = False  # the workers' clock is past the 预挂失 deadline


PAIRS = (
    Pair("report-loss ‖ report-loss", ("report_loss", "report_loss"), ()),
    Pair(
        "request-reissue ‖ request-reissue",
        ("request_reissue", "request_reissue"),
        ("formalize_loss",),
    ),
    Pair("unreport ‖ request-reissue", ("unreport", "request_reissue"), ("formalize_loss",)),
    # Both may succeed in either order (解挂 then 正式挂失, or — the default policy allows
    # 解挂 after formal loss — the reverse); what must hold is that they were serialized.
    Pair(
        "formalize-loss ‖ unreport",
        ("formalize_loss", "unreport"),
        ("report_loss",),
        one_winner=False,
    ),
    Pair(
        "request-replacement ‖ formalize-loss",
        ("request_replacement", "formalize_loss"),
        ("report_loss",),
    ),
    Pair(
        "request-replacement ‖ request-replacement",
        ("request_replacement", "request_replacement"),
        (),
    ),
    Pair("job submit ‖ job submit", ("submit_job", "submit_job"), ("formalize_loss", "reissue")),
    # The deadline has passed: the sweep may lapse the card first, formal loss is still
    # allowed from active — but a formal loss is never undone by the sweep.
    Pair(
        "lapse ‖ formalize-loss",
        ("lapse", "formalize_loss"),
        ("report_loss",),
        one_winner=False,
        final="formal_loss",
        later=True,
    ),
)


def holder(index: int) -> HolderData:
    """A distinct valid holder per round (female: an even sequence digit)."""
    first17 = f"11010519491231{2 * index:03d}"
    return replace(SAMPLE_HOLDER, ssn=first17 + ssn_check(first17))


class Clock:
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


@dataclass(frozen=True)
class Setup:
    db: str | Path  # a SQLite file or a postgresql:// URL
    vault: Path
    base_dir: Path
    later: bool


def _operate(registry: Registry, vault: TrackVault, setup: Setup, op: str, index: int) -> None:
    number = registry_card_number(registry, index)
    if op == "report_loss":
        registry.report_loss(number, operator="w")
    elif op == "formalize_loss":
        registry.formalize_loss(number, operator="w", evidence="居民身份证")
    elif op == "unreport":
        registry.unreport(number, operator="w", evidence="居民身份证")
    elif op == "request_reissue":
        registry.request_reissue(number, operator="w")
    elif op == "request_replacement":
        registry.request_reissue(number, operator="w", kind="replacement", fee=20)
    elif op == "lapse":
        registry.lapse_expired()
    elif op == "submit_job":
        h = holder(index)
        submission = {
            "old_card_number": number,
            "holder": {
                "ssn": h.ssn,
                "name": h.name,
                "gender": h.gender,
                "ethnicity": h.ethnicity,
                "birthplace": h.birthplace,
                "birth_date": h.birth_date.isoformat(),
            },
            "photo": "photo.jpg",
        }
        submit_job(registry, PROFILE, vault, submission, base_dir=setup.base_dir, operator="w")
    else:
        raise AssertionError(op)


PROFILE = load_profile("default")


def registry_card_number(registry: Registry, index: int) -> str:
    person = registry.person_by_ssn(holder(index).ssn)
    assert person is not None
    return str(registry.cards_of(int(person.id))[0].card_number)


def _worker(conn: Connection, barrier: Barrier, setup: Setup) -> None:
    """Stays alive across rounds: receives (operation, round), meets the other worker at
    the barrier, runs the operation and sends back ("ok" | "refused" | "crash", text)."""
    clock = Clock(PINNED + (LATER if setup.later else timedelta(0)))
    registry = Registry(setup.db, POLICY, clock=clock, create=False, audit_key=AUDIT_KEY)
    vault = TrackVault.from_file(setup.vault)
    while True:
        message = conn.recv()
        if message is None:
            break
        op, index = message
        barrier.wait()
        try:
            _operate(registry, vault, setup, op, index)
            conn.send(("ok", ""))
        except (RegistryError, JobError) as exc:
            conn.send(("refused", f"{type(exc).__name__}: {exc}"))
        except Exception as exc:  # what the pair must never produce
            conn.send(("crash", f"{type(exc).__name__}: {exc}"))
    registry.close()


@dataclass
class Figures:
    pair: str
    rounds: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    crashes: list[str] = field(default_factory=list)
    unclear: list[str] = field(default_factory=list)  # refusals not Chinese + English
    problems: list[str] = field(default_factory=list)  # registry inconsistencies

    @property
    def both_won(self) -> int:
        return self.outcomes["ok+ok"]

    def line(self) -> str:
        shown = ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items()))
        return (
            f"{self.pair}: {self.rounds} rounds — {shown}; crashes {len(self.crashes)}; "
            f"unclear refusals {len(self.unclear)}; registry problems {len(self.problems)}"
        )


def _prepare(registry: Registry, pair: Pair) -> None:
    for index in range(1, ROUNDS + 1):
        number = registry.allocate_card_number()
        registry.enroll(holder(index), number, operator="prep")
        for step in pair.prepared:
            if step == "report_loss":
                registry.report_loss(number, operator="prep")
            elif step == "formalize_loss":
                registry.formalize_loss(number, operator="prep", evidence="居民身份证")
            elif step == "reissue":
                registry.request_reissue(number, operator="prep")


def consistency(registry: Registry) -> list[str]:
    """What must hold however the operations interleaved."""
    problems: list[str] = []
    _count, audit = registry.verify_audit()
    problems += [f"audit: {p}" for p in audit]
    for row in registry.db.execute("SELECT * FROM cards ORDER BY id"):
        chain = registry.history(int(row["id"]))
        # an enrolled card starts active without a history row; a job's card starts with one
        expected = None if row["job_id"] is not None else "active"
        for h in chain:
            if h.from_status != expected:
                problems.append(
                    f"{row['card_number']}: history goes {expected} → then from "
                    f"{h.from_status} (a lost update)"
                )
            expected = h.to_status
        if expected != row["status"]:
            problems.append(f"{row['card_number']}: is {row['status']}, history says {expected}")
        unfinished = registry.db.execute(
            "SELECT COUNT(*) FROM reissue_requests WHERE old_card_id = ? AND status != 'done'",
            (row["id"],),
        ).fetchone()[0]
        pending = row["status"] in ("reissue_pending", "replacement_pending")
        if unfinished != (1 if pending else 0):
            problems.append(f"{row['card_number']}: {row['status']} with {unfinished} requests")
    for row in registry.db.execute(
        "SELECT request_id, COUNT(*) AS n FROM jobs WHERE status NOT IN"
        " ('done', 'failed', 'cancelled') GROUP BY request_id HAVING COUNT(*) > 1"
    ):
        problems.append(f"request {row['request_id']}: {row['n']} live jobs")
    return problems


def run_pair(pair: Pair, workdir: Path, db: str | Path | None = None) -> Figures:
    """The pair's rounds on the registry ``db`` (default: a new SQLite file in ``workdir``)."""
    workdir.mkdir(parents=True, exist_ok=True)
    setup = Setup(db or workdir / "registry.db", workdir / "tracks.key", workdir, pair.later)
    TrackVault.create(setup.vault)
    (workdir / "photo.jpg").write_bytes(sample_photo())
    registry = Registry(setup.db, POLICY, clock=Clock(PINNED), audit_key=AUDIT_KEY)
    _prepare(registry, pair)
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    pipes = [ctx.Pipe() for _ in pair.ops]
    workers = [
        ctx.Process(target=_worker, args=(child, barrier, setup), daemon=True) for _, child in pipes
    ]
    for w in workers:
        w.start()
    figures = Figures(pair.name)
    try:
        for index in range(1, ROUNDS + 1):
            for (parent, _), op in zip(pipes, pair.ops, strict=True):
                parent.send((op, index))
            results = []
            for (parent, _), op in zip(pipes, pair.ops, strict=True):
                if not parent.poll(60):
                    raise AssertionError(f"{pair.name}: worker for {op} hung in round {index}")
                results.append(parent.recv())
            figures.rounds += 1
            figures.outcomes["+".join(sorted(kind for kind, _ in results))] += 1
            for kind, text in results:
                if kind == "crash":
                    figures.crashes.append(text)
                elif kind == "refused":
                    message = text.split(": ", 1)[1]
                    cjk, latin = _CJK.search(message), _LATIN.search(message)
                    if not (cjk and latin and cjk.start() < latin.start()):
                        figures.unclear.append(text)
    finally:
        for parent, _ in pipes:
            parent.send(None)
        for w in workers:
            w.join(10)
    figures.problems = consistency(registry)
    if pair.final is not None:
        rows = registry.db.execute("SELECT card_number, status FROM cards ORDER BY id")
        figures.problems += [
            f"{r['card_number']} ended {r['status']}, not {pair.final}"
            for r in rows
            if r["status"] != pair.final
        ]
    registry.close()
    return figures


@pytest.mark.parametrize("pair", PAIRS, ids=[p.name for p in PAIRS])
def test_conflicting_operations_have_one_winner(
    pair: Pair, tmp_path: Path, new_db: NewDatabase
) -> None:
    figures = run_pair(pair, tmp_path, new_db("registry"))
    assert figures.rounds == ROUNDS
    assert figures.crashes == [], figures.line() + "\n" + "\n".join(figures.crashes[:5])
    assert figures.unclear == [], figures.line() + "\n" + "\n".join(figures.unclear[:5])
    assert figures.problems == [], figures.line() + "\n" + "\n".join(figures.problems[:5])
    if pair.one_winner:
        assert figures.outcomes == Counter({"ok+refused": ROUNDS}), figures.line()


OPENERS = 3
_OPEN_BARRIER: list[Barrier] = []


def _opener_init(barrier: Barrier) -> None:
    _OPEN_BARRIER.append(barrier)


def _open_new(path: str | Path) -> str:
    """Open (create and migrate) ``path`` together with the other openers."""
    _OPEN_BARRIER[0].wait()
    try:
        registry = Registry(path, POLICY, clock=Clock(PINNED), audit_key=AUDIT_KEY)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    version = registry.schema_version
    registry.close()
    return f"ok {version}"


def test_three_processes_creating_one_registry_at_once(new_db: NewDatabase) -> None:
    """Several stations' first start on a new registry: each migration is applied once (the
    version is re-read under the write lock), and every opener gets the full schema."""
    ctx = mp.get_context("spawn")
    with ctx.Pool(OPENERS, _opener_init, (ctx.Barrier(OPENERS),)) as pool:
        outcomes: Counter[str] = Counter()
        for round_ in range(20):
            path = new_db(str(round_))
            outcomes.update(pool.map(_open_new, [path] * OPENERS, chunksize=1))
    assert outcomes == Counter({f"ok {len(MIGRATIONS)}": 20 * OPENERS})


CLI_ROUNDS = 5


def _sscard(
    *args: str, cwd: Path, db: str | Path, session: dict[str, str]
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*FAKETIME, sys.executable, "-m", "personalize.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "SSCARD_DB": str(db), **HSM_ENV, **session},
    )


@pytest.mark.parametrize("command", ["request-reissue", "job submit"])
def test_two_sscard_commands_at_once_one_wins_the_other_is_refused(
    command: str, tmp_path: Path, new_db: NewDatabase
) -> None:
    """The commands as operators run them: two ``sscard`` processes started together for one
    card. One succeeds; the other exits 1 with one clear line — no traceback, no
    ``IntegrityError`` or ``database is locked``."""
    db = new_db("registry")
    Keystore.create_test(tmp_path / "keystore.json")
    TrackVault.create(tmp_path / "tracks.key")
    (tmp_path / "photo.jpg").write_bytes(sample_photo())
    (tmp_path / "station.toml").write_text(
        'name = "station-1"\nprinter = "/nonexistent/ttyUSB9"\n'
        'contact_reader = "Virtual PCD 00 00"\n'
        f'hsm = "keystore:{tmp_path / "keystore.json"}"\ntrack_key = "tracks.key"\n'
        f'registry = "{db}"\nout_dir = "out"\n',
        encoding="utf-8",
    )
    registry = Registry(db, POLICY, clock=Clock(PINNED), audit_key=AUDIT_KEY)
    for index in range(1, CLI_ROUNDS + 1):
        number = registry.allocate_card_number()
        registry.enroll(holder(index), number, operator="prep")
        registry.formalize_loss(number, operator="prep", evidence="居民身份证")
        if command == "job submit":
            registry.request_reissue(number, operator="prep")
            h = holder(index)
            job = {
                "old_card_number": number,
                "holder": {**asdict(h), "birth_date": h.birth_date.isoformat()},
                "photo": "photo.jpg",
            }
            (tmp_path / f"job-{index}.json").write_text(json.dumps(job), encoding="utf-8")
    sessions = {n: login(db, f"op{n}") for n in (1, 2)}
    for index in range(1, CLI_ROUNDS + 1):
        number = registry_card_number(registry, index)
        if command == "job submit":
            args = ["job", "submit", f"job-{index}.json", "--station", "station.toml"]
        else:
            args = ["registry", "request-reissue", number]
        runs = [
            _sscard(
                *args, "--out", f"cert-{index}-{n}.pdf", cwd=tmp_path, db=db, session=sessions[n]
            )
            if command == "request-reissue"
            else _sscard(*args, cwd=tmp_path, db=db, session=sessions[n])
            for n in (1, 2)
        ]
        results = [(run.wait(60), *run.communicate()) for run in runs]
        assert sorted(code for code, _, _ in results) == [0, 1], results
        refused = next(err for code, _, err in results if code == 1)
        assert refused.startswith("错误：") and len(refused.strip().splitlines()) == 1, refused
        for raw in ("Traceback", "IntegrityError", "OperationalError", "database is locked"):
            assert raw not in refused
    assert consistency(registry) == []
    registry.close()


def main() -> int:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for number, pair in enumerate(PAIRS):
            started = time.monotonic()
            figures = run_pair(pair, Path(tmp) / str(number))
            print(f"{figures.line()} [{time.monotonic() - started:.1f} s]", flush=True)
            for text in (figures.crashes + figures.unclear + figures.problems)[:2]:
                print(f"    e.g. {text}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
