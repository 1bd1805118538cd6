"""How the registry's counter, job and office operations grow with its size (issue 13, "Show"):
registries of 10k / 100k / 1M persons are built (``sscard registry seed``'s synthetic persons
and cards, some lost or replaced, plus reissue jobs with step logs) and ``Registry.card``,
``registry show``'s lookups, ``sn_seen`` (a blank's SN before it is fed), ``report_loss``,
``submit_job``, ``done_steps``, ``job list`` and ``registry list`` are timed:
p50 and p99 per size, and the ratio of every p50 at the largest size to the smallest.

With ``--before DIR`` the same measurements also run against the code in DIR (an earlier
tree: ``mkdir /tmp/sscard-before && git archive 1dbdbfd | tar -x -C /tmp/sscard-before``),
on a copy of the same registry stepped back to DIR's schema (the indexes of the newer
migrations dropped, the photos back in the job rows): the "before" column of the closing
note. Each size and tree is measured ``--rounds`` times on a fresh copy and the round with
the lowest p50 counts (the machine is shared: the other rounds absorb its load).

    .venv/bin/python bench/registry_scale.py --sizes 10000,100000 --before /tmp/sscard-before
    .venv/bin/python bench/registry_scale.py --before /tmp/sscard-before  # 10k, 100k, 1M
    .venv/bin/python bench/registry_scale.py --postgresql   # and on a private PostgreSQL server

Each size is built once in ``--work`` (default a temporary directory; an existing build there
is reused; 1M persons take about 2 minutes). The measurements run in a subprocess
(``--measure --db LOCATION``) with the measured tree first on ``PYTHONPATH``, so the registry
location is one argument a PostgreSQL URL can later take.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import os
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent.parent
AT = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)  # every registry's clock: runs are comparable
AT_TEXT = AT.isoformat()
OPERATIONS = (
    "card",
    "registry_show",
    "sn_seen",
    "report_loss",
    "submit_job",
    "done_steps",
    "job_list",
    "registry_list",
)
SAMPLES = {
    "card": 300,
    "registry_show": 100,
    "sn_seen": 100,
    "report_loss": 60,
    "submit_job": 30,
    "done_steps": 300,
    "job_list": 7,
    "registry_list": 50,
}
STEPS_PER_PERSON = 0.1  # job_steps rows per person (spread over the jobs)
PAGE = 50  # rows per page of the lists
# at every size at least two full pages of jobs, so a list's page is as long at 10k as at 1M
MIN_JOBS = 2 * PAGE
SHARED_BUFFERS = "2GB"  # the PostgreSQL server's, for the 1M registry (docs/service.md)


def _checkpoints(db: str, keystore: Path) -> str | None:
    """A PostgreSQL registry's checkpoint log, in the work directory (a file's is beside it)."""
    if not db.startswith("postgresql://"):
        return None
    return str(keystore.parent / f"{db.rsplit('/', 1)[-1]}.checkpoints")


def _registry(db: str, keystore: Path) -> Any:
    from personalize.policy import load_policy
    from personalize.registry import Registry
    from personalize.station import open_security_module

    hsm = open_security_module(f"keystore:{keystore}", client_id="bench")
    return Registry(
        db,
        load_policy("default"),
        clock=lambda: AT,
        audit_key=hsm.audit_mac,
        checkpoints=_checkpoints(db, keystore),
    )


def _submission(registry: Any, number: str, photo: bytes) -> dict[str, Any]:
    """A job for the card ``number`` after its loss and reissue request (untimed)."""
    registry.report_loss(number, operator="bench")
    registry.formalize_loss(number, operator="bench", evidence="身份证")
    registry.request_reissue(number, operator="bench")
    person = registry.person(registry.card(number).person_id)
    # a Person (this tree) or a database row (an earlier tree measured with --before)
    field = person.__getitem__ if not hasattr(person, "ssn") else person.__getattribute__
    keys = ("ssn", "name", "gender", "ethnicity", "birthplace", "birth_date")
    holder = {k: field(k) for k in keys}
    return {
        "holder": holder,
        "photo": "base64:" + base64.b64encode(photo).decode(),
        "old_card_number": number,
    }


def _active_numbers(registry: Any, count: int, rng: random.Random) -> list[str]:
    """``count`` distinct active cards, picked at random ids (an index lookup each)."""
    top = int(registry.db.execute("SELECT MAX(id) FROM cards").fetchone()[0])
    numbers: set[str] = set()
    while len(numbers) < count:
        row = registry.db.execute(
            "SELECT card_number FROM cards WHERE id = ? AND status = 'active'",
            (rng.randint(1, top),),
        ).fetchone()
        if row is not None:
            numbers.add(row[0])
    return sorted(numbers)


def build(db: str, keystore: Path, persons: int) -> None:
    """A registry of ``persons`` seeded persons, one job per 1,000 (at least ``MIN_JOBS``) and
    ``STEPS_PER_PERSON`` step records per person spread over those jobs."""
    from personalize.jobs import STEPS, submit_job
    from personalize.seed import seed_registry
    from personalize.trackvault import TrackVault
    from simulator.factory import sample_photo
    from sscard.profile import load_profile

    registry = _registry(db, keystore)
    start = time.perf_counter()
    seed_registry(registry, persons, operator="bench")
    seeded = time.perf_counter() - start
    profile, vault = load_profile(registry.policy.profile), TrackVault(bytes(32))
    rng, photo = random.Random(persons), sample_photo("bench")
    jobs = []
    for number in _active_numbers(registry, max(MIN_JOBS, persons // 1000), rng):
        submission = _submission(registry, number, photo)
        jobs.append(
            submit_job(
                registry, profile, vault, submission, base_dir=keystore.parent, operator="bench"
            )
        )
    # each job: its current card's steps, and the steps of cards written off before it
    per_job = max(len(STEPS), int(persons * STEPS_PER_PERSON) // len(jobs))
    with registry.transaction() as tx:
        for job in jobs:
            sn = f"BENCH{job:011d}"
            tx.execute("UPDATE jobs SET sn = ? WHERE id = ?", (sn, job))
            tx.executemany(
                "INSERT INTO job_steps (job_id, step, result, sn, at, details)"
                " VALUES (?, ?, 'ok', ?, ?, '{}')",
                (
                    (job, STEPS[i % len(STEPS)], sn if i < len(STEPS) else f"W{job}-{i}", AT_TEXT)
                    for i in range(per_job)
                ),
            )
        registry.audit("bench", "bench.steps", "registry", {"jobs": len(jobs)})
    registry.close()
    print(json.dumps({"seed_s": round(seeded, 1), "jobs": len(jobs)}))


def _timed(samples: list[float], action: Callable[[], object]) -> None:
    start = time.perf_counter()
    action()
    samples.append((time.perf_counter() - start) * 1000)


def _list_args(db: str, keystore: Path, **extra: object) -> argparse.Namespace:
    return argparse.Namespace(
        db=db,
        policy="default",
        json=True,
        hsm=f"keystore:{keystore}",
        hsm_client="bench",
        hsm_secret_file=None,
        audit_checkpoints=_checkpoints(db, keystore),
        **extra,
    )


def measure(db: str, keystore: Path) -> dict[str, Any]:
    """Every operation's samples (ms) on the registry at ``db``, with the code on sys.path."""
    import personalize
    from personalize import service_commands
    from personalize.jobs import JobRunner, submit_job
    from personalize.trackvault import TrackVault
    from simulator.factory import sample_photo
    from sscard.profile import load_profile

    registry = _registry(db, keystore)
    rng, photo = random.Random(1), sample_photo("bench")
    profile, vault = load_profile(registry.policy.profile), TrackVault(bytes(32))
    times: dict[str, list[float]] = {op: [] for op in OPERATIONS}
    numbers = _active_numbers(registry, SAMPLES["card"] + SAMPLES["report_loss"], rng)
    for number in numbers[: SAMPLES["card"]]:
        _timed(times["card"], lambda n=number: registry.card(n))
    for number in numbers[: SAMPLES["registry_show"]]:  # card, holder, blacklist, history
        _timed(times["registry_show"], lambda n=number: service_commands._card_dict(registry, n))
    for number in numbers[: SAMPLES["sn_seen"]]:  # a blank's SN checked before it is fed
        _timed(times["sn_seen"], lambda n=number: registry.sn_seen(f"FE{n}"))
    for number in numbers[SAMPLES["card"] :]:
        _timed(times["report_loss"], lambda n=number: registry.report_loss(n, operator="bench"))
    for number in _active_numbers(registry, SAMPLES["submit_job"], rng):
        submission = _submission(registry, number, photo)
        _timed(
            times["submit_job"],
            lambda s=submission: submit_job(  # type: ignore[misc]
                registry, profile, vault, s, base_dir=keystore.parent, operator="bench"
            ),
        )
    runner = JobRunner(registry, registry.policy, profile, None, operator="bench")  # type: ignore[arg-type]
    jobs = [r[0] for r in registry.db.execute("SELECT id FROM jobs WHERE sn IS NOT NULL")]
    for _ in range(SAMPLES["done_steps"]):
        job = runner.job(rng.choice(jobs))
        _timed(times["done_steps"], lambda j=job: runner.done_steps(j))
    lists = {"job_list": ("cmd_job_list", "jobs"), "registry_list": ("cmd_registry_list", "cards")}
    for op, (name, table) in lists.items():
        # a cursor from which a full page follows, at every size
        top = int(registry.db.execute(f"SELECT MAX(id) FROM {table}").fetchone()[0]) - PAGE
        command = getattr(service_commands, name, None)
        if command is None:  # not in this tree
            del times[op]
            continue
        for _ in range(SAMPLES[op]):
            args = _list_args(
                db, keystore, status=None, limit=PAGE, after=str(rng.randint(0, top))
            )
            with contextlib.redirect_stdout(io.StringIO()):
                _timed(times[op], lambda a=args, c=command: c(a))
    return {"tree": str(Path(personalize.__file__).parent.parent), "ms": times}


def _schema_back(db: Path, python_path: Path) -> None:
    """Step a copied registry back to the schema of the code at ``python_path``: drop the
    indexes of the migrations it does not have, the photos back in the job rows."""
    count = subprocess.run(
        [
            sys.executable,
            "-c",
            "from personalize.registry import MIGRATIONS; print(len(MIGRATIONS))",
        ],
        env=os.environ | {"PYTHONPATH": str(python_path)},
        cwd=python_path,  # -c puts the working directory first on the path
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    sys.path.insert(0, str(HERE))
    from personalize.registry import MIGRATIONS, PHOTO_MIGRATION

    undo = {  # the photo back into the job rows (as the last column: rows are read by name)
        PHOTO_MIGRATION: "ALTER TABLE jobs ADD COLUMN photo BLOB; UPDATE jobs SET photo ="
        " (SELECT photo FROM job_photos WHERE job_id = jobs.id); DROP TABLE job_photos"
    }
    with sqlite3.connect(db) as conn:
        for script in reversed(MIGRATIONS[int(count) :]):
            if script in undo:
                conn.executescript(undo[script])
                continue
            statements = [s.strip() for s in script.split(";") if s.strip()]
            for statement in reversed(statements):
                index = re.fullmatch(r"CREATE (?:UNIQUE )?INDEX (\w+) .*", statement, re.S)
                table = re.fullmatch(r"CREATE TABLE (\w+) .*", statement, re.S)
                column = re.fullmatch(r"ALTER TABLE (\w+) ADD COLUMN (\w+) .*", statement, re.S)
                if index is not None:
                    conn.execute(f"DROP INDEX {index.group(1)}")
                elif table is not None:
                    conn.execute(f"DROP TABLE {table.group(1)}")
                elif column is not None:
                    conn.execute(f"ALTER TABLE {column.group(1)} DROP COLUMN {column.group(2)}")
                else:
                    raise SystemExit(f"cannot step the schema back over: {statement[:60]}")
        conn.execute(f"PRAGMA user_version = {int(count)}")


def _percentile(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="persons, comma-separated")
    parser.add_argument("--before", type=Path, help="an earlier checkout to measure as well")
    parser.add_argument("--work", type=Path, help="where the registries are built (reused)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds per size and tree; the best p50 counts"
    )
    parser.add_argument(
        "--postgresql",
        action="store_true",
        help="also measure on PostgreSQL (a private server started for the run, as the tests do)",
    )
    parser.add_argument("--build", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--keystore", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        build(args.db, args.keystore, args.build)
        return 0
    if args.measure:
        print(json.dumps(measure(args.db, args.keystore)))
        return 0
    work = args.work or Path(tempfile.mkdtemp(prefix="sscard-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    keystore = work / "keystore.json"
    if not keystore.exists():
        sys.path.insert(0, str(HERE))
        from hsm_stub.keystore import Keystore

        Keystore.create_test(keystore)
    trees = [("after", HERE)] + ([("before", args.before.resolve())] if args.before else [])
    results: dict[tuple[str, int], dict[str, list[float]]] = {}
    sizes = [int(s) for s in args.sizes.split(",")]
    for size in sizes:
        built = work / f"{size}.db"
        if not built.exists():
            start = time.perf_counter()
            tmp = built.with_suffix(".tmp")
            done = json.loads(_run(HERE, "--build", size, "--db", tmp, "--keystore", keystore))
            for suffix in ("", ".checkpoints"):
                Path(f"{tmp}{suffix}").rename(f"{built}{suffix}")
            print(
                f"built {size} persons in {time.perf_counter() - start:.0f} s "
                f"(seed {done['seed_s']} s, then {done['jobs']} jobs)",
                flush=True,
            )
    # rounds interleave the sizes and trees, so that a ratio compares figures taken under
    # the same load (a shared machine's load drifts over a run of many minutes)
    for round_ in range(args.rounds):
        for size in sizes:
            for label, tree in trees:
                measured = _measure_copy(work / f"{size}.db", label, tree, keystore)
                _keep_best(results.setdefault((label, size), {}), measured)
                print(f"round {round_ + 1}: measured {size} persons ({label}: {tree})", flush=True)
    labels = [label for label, _ in trees]
    if args.postgresql:
        _measure_postgresql(results, sizes, keystore, args.rounds)
        labels.append(POSTGRESQL)
    _report(results, sizes, labels)
    return 0


POSTGRESQL = "after, PostgreSQL"


def _measure_postgresql(
    results: dict[tuple[str, int], dict[str, list[float]]],
    sizes: list[int],
    keystore: Path,
    rounds: int,
) -> None:
    """The same registries built and measured on a private PostgreSQL server (the current
    code only: the earlier tree had no PostgreSQL); each round on a fresh copy of the built
    database (``CREATE DATABASE … TEMPLATE``)."""
    sys.path.insert(0, str(HERE))
    import psycopg

    from tests.pgserver import postgres_server

    # sized as a deployment for a city's registry would be (PostgreSQL's 128 MB default holds
    # the 10k registry, not the 1M one: the ratio would measure the cache, not the indexes)
    with postgres_server(settings=(f"shared_buffers={SHARED_BUFFERS}",)) as server:
        for size in sizes:
            built = server.create_database(f"scale_{size}")
            start = time.perf_counter()
            done = json.loads(_run(HERE, "--build", size, "--db", built, "--keystore", keystore))
            print(
                f"built {size} persons on PostgreSQL in {time.perf_counter() - start:.0f} s "
                f"(seed {done['seed_s']} s, then {done['jobs']} jobs)",
                flush=True,
            )
        for round_ in range(rounds):  # interleaved, as on SQLite
            for size in sizes:
                name = f"scale_{size}_r{round_}"
                with psycopg.connect(server.url, autocommit=True) as conn:
                    conn.execute(f"CREATE DATABASE {name} TEMPLATE scale_{size}")
                copy = server.url_of(name)
                source = _checkpoints(server.url_of(f"scale_{size}"), keystore)
                target = _checkpoints(copy, keystore)
                assert source is not None and target is not None
                shutil.copyfile(source, target)
                measured = json.loads(_run(HERE, "--measure", "--db", copy, "--keystore", keystore))
                _keep_best(results.setdefault((POSTGRESQL, size), {}), measured["ms"])
                with psycopg.connect(server.url, autocommit=True) as conn:
                    conn.execute(f"DROP DATABASE {name}")
                print(f"round {round_ + 1}: measured {size} persons on PostgreSQL", flush=True)


def _keep_best(best: dict[str, list[float]], measured: dict[str, list[float]]) -> None:
    """Per operation, the samples of the round with the lowest median."""
    for op, samples in measured.items():
        if op not in best or statistics.median(samples) < statistics.median(best[op]):
            best[op] = samples


def _measure_copy(built: Path, label: str, tree: Path, keystore: Path) -> dict[str, list[float]]:
    """One round: the measurements of the code in ``tree`` on a fresh copy of ``built``."""
    copy = built.with_name(f"{built.stem}-{label}.db")
    for suffix in ("", ".checkpoints"):
        shutil.copyfile(f"{built}{suffix}", f"{copy}{suffix}")
    if label == "before":
        _schema_back(copy, tree)
    measured = json.loads(_run(tree, "--measure", "--db", copy, "--keystore", keystore))
    for suffix in ("", ".checkpoints", "-wal", "-shm"):
        Path(f"{copy}{suffix}").unlink(missing_ok=True)
    if Path(measured["tree"]).resolve() != tree:
        raise SystemExit(f"measured the code in {measured['tree']}, not {tree}")
    ms: dict[str, list[float]] = measured["ms"]
    return ms


def _run(tree: Path, *args: object) -> str:
    """This script in a subprocess with ``tree`` first on the import path."""
    command = [sys.executable, str(Path(__file__).resolve()), *map(str, args)]
    env = os.environ | {"PYTHONPATH": str(tree)}
    done = subprocess.run(command, env=env, cwd=tree, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def _report(
    results: dict[tuple[str, int], dict[str, list[float]]], sizes: list[int], labels: list[str]
) -> None:
    print(f"p50 / p99 in ms; ratio = p50 at {sizes[-1]:,} ÷ p50 at {sizes[0]:,} persons")
    head = " | ".join(f"{size:,}" for size in sizes)
    for label in labels:
        print(f"\n{label}:\n| operation | {head} | ratio |")
        print("|---" * (len(sizes) + 2) + "|")
        for op in OPERATIONS:
            if op not in results[label, sizes[0]]:
                print(f"| {op} |" + " — |" * (len(sizes) + 1))
                continue
            cells = []
            for size in sizes:
                samples = results[label, size][op]
                p50, p99 = statistics.median(samples), _percentile(samples, 99)
                cells.append(f"{p50:.3f} / {p99:.3f}")
            first = statistics.median(results[label, sizes[0]][op])
            last = statistics.median(results[label, sizes[-1]][op])
            print(f"| {op} | {' | '.join(cells)} | {last / first:.2f} |")


if __name__ == "__main__":
    raise SystemExit(main())
