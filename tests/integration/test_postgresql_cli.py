"""``sscard`` with ``--db postgresql://…`` (docs/service.md "PostgreSQL"): a registry made
in an empty database by ``registry init``, commands that never show the password, and two
``sscard`` processes changing one card or enrolling one person at once — one wins, the other
is refused with the same Chinese text as on SQLite, and the audit chain verifies."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path

from personalize.registry import MIGRATIONS
from personalize.roles import Role
from simulator.factory import SAMPLE_HOLDER
from sscard.identifiers import card_number_check, ssn_check
from sscard.records import HolderData
from tests.audit_key import HSM_ENV
from tests.clock import FAKETIME
from tests.conftest import NewDatabase
from tests.operators import login
from tests.pgserver import PostgresServer

ROUNDS = 3


def run(*args: str, cwd: Path, session: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``sscard ARGS`` started (not awaited), the registry named by ``--db`` in ``args``."""
    return subprocess.Popen(
        [*FAKETIME, sys.executable, "-m", "personalize.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", **HSM_ENV, **(session or {})},
    )


def done(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=60)
    return process.returncode, out, err


def test_registry_init_makes_the_schema_in_an_empty_database(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    url = postgres.create_database("counter_center")
    shown = url.replace(postgres.password, "***")
    missing = done(run("registry", "show", "H00000012", "--db", url, cwd=tmp_path))
    assert missing[0] == 1 and f"登记库不存在：{shown}" in missing[2]
    made = done(run("registry", "init", "--db", url, "--json", cwd=tmp_path))
    assert made[0] == 0, made[2]
    assert json.loads(made[1]) == {"db": shown, "schema_version": len(MIGRATIONS)}
    again = done(run("registry", "init", "--db", url, cwd=tmp_path))
    assert again[0] == 1 and f"登记库已存在，未改动：{shown}" in again[2]
    for _code, out, err in (missing, made, again):
        assert postgres.password not in out + err


def holder(index: int) -> HolderData:
    """Another valid person per index (female like the sample: an even sequence digit)."""
    first17 = SAMPLE_HOLDER.ssn[:14] + f"{100 + 2 * index:03d}"
    return replace(SAMPLE_HOLDER, ssn=first17 + ssn_check(first17))


def card_number(serial: int) -> str:
    first8 = f"H{serial:07d}"
    return first8 + card_number_check(first8)


def person_file(path: Path, person: HolderData, number: str) -> Path:
    data = {**asdict(person), "birth_date": person.birth_date.isoformat()}
    del data["extra"]
    path.write_text(json.dumps({**data, "card_number": number}), encoding="utf-8")
    return path


def test_two_processes_enrolling_one_person_or_reporting_one_card(
    new_db: NewDatabase, tmp_path: Path
) -> None:
    """Per round: two ``registry enroll`` of one person (two card numbers) started together,
    then two ``registry report-loss`` of the card enrolled. Each time one wins and the other
    is refused in one clear line; ``audit verify`` passes after all of it."""
    db = new_db("registry")
    ops = {n: login(db, f"op{n}", Role.COUNTER) for n in (1, 2)}
    for index in range(1, ROUNDS + 1):
        files = [
            person_file(tmp_path / f"p{index}-{n}.json", holder(index), card_number(2 * index + n))
            for n in (0, 1)
        ]
        enrolls = [
            run("registry", "enroll", str(f), "--db", db, cwd=tmp_path, session=ops[n])
            for n, f in zip((1, 2), files, strict=True)
        ]
        results = [done(p) for p in enrolls]
        assert sorted(code for code, _, _ in results) == [0, 1], results
        refused = next(err for code, _, err in results if code == 1)
        assert refused.startswith("错误：") and "该持卡人已有有效卡" in refused, refused
        assert len(refused.strip().splitlines()) == 1, refused
        number = next(
            card_number(2 * index + n) for n, (code, _, _) in enumerate(results) if code == 0
        )
        losses = [
            run("registry", "report-loss", number, "--db", db, cwd=tmp_path, session=ops[n])
            for n in (1, 2)
        ]
        results = [done(p) for p in losses]
        assert sorted(code for code, _, _ in results) == [0, 1], results
        refused = next(err for code, _, err in results if code == 1)
        assert "只能对正常状态" in refused and len(refused.strip().splitlines()) == 1, refused
    verified = done(run("audit", "verify", "--json", "--db", db, cwd=tmp_path))
    assert verified[0] == 0 and json.loads(verified[1])["problems"] == [], verified
