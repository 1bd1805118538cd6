"""``sscard sim center`` (issue 13, Deliver 6 and "Show"): a simulated card center — one
pcscd with a vpcd slot per station, one security module, a printer emulator per station —
drains reissue jobs with real ``sscard station run`` worker processes; run as the command
line it is, its summary read as JSON."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from personalize.database import display
from personalize.jobs import STEPS
from personalize.registry import Registry, utc_now
from personalize.roles import Role
from tests.audit_key import AUDIT_KEY
from tests.clock import pinned_clock
from tests.conftest import NewDatabase
from tests.integration.crash_campaign import POLICY, holder_number
from tests.operators import login

pytestmark = pytest.mark.pcsc
SIM_CENTER = (sys.executable, "-m", "personalize.cli", "sim", "center")


def sim_center(*options: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any], str]:
    done = subprocess.run(
        [*SIM_CENTER, *options, "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    summary = json.loads(done.stdout) if done.stdout.startswith("{") else {}
    return done.returncode, summary, done.stderr


def test_two_stations_drain_twenty_jobs(tmp_path: Path, new_db: NewDatabase) -> None:
    """On a SQLite file and on the tests' PostgreSQL server (issue 13, "Show")."""
    db = new_db("center")
    code, summary, err = sim_center(
        "--stations", "2", "--jobs", "20", "--db", db, "--out", str(tmp_path)
    )
    assert code == 0, err
    assert (summary["stations"], summary["jobs"], summary["jobs_done"]) == (2, 20, 20)
    assert summary["worker_exits"] == [0, 0]
    assert summary["jobs_per_hour"] > 0
    assert {i["name"]: i["ok"] for i in summary["invariants"]} == {
        "one_valid_card_per_person": True,
        "every_job_done_once": True,
        "no_step_done_twice": True,
        "printed_once_per_job": True,
        "audit_verifies": True,
    }
    steps = summary["steps"]
    assert [s["step"] for s in steps] == list(STEPS)
    assert all(s["count"] >= 20 and 0 <= s["median_ms"] <= s["p95_ms"] for s in steps)
    assert summary["registry"] == display(db)  # a URL's password masked
    # both stations worked: each worker's log names jobs it finished
    logs = [(tmp_path / f"worker-{n}.log").read_text(encoding="utf-8") for n in (1, 2)]
    assert all("完成 (job done)" in log for log in logs)


def test_a_failed_invariant_is_reported_with_a_failing_exit(tmp_path: Path) -> None:
    """A registry whose audit chain no longer verifies (a person's name changed behind the
    registry's back) → the run drains its job but ``audit_verifies`` fails, exit 1."""
    db = tmp_path / "given.db"
    registry = Registry(db, POLICY, clock=pinned_clock, audit_key=AUDIT_KEY)
    registry.enroll(holder_number(1), registry.allocate_card_number(), operator="op")
    registry.close()
    with sqlite3.connect(db) as raw:
        raw.execute("UPDATE persons SET name = '王五'")
    out = tmp_path / "center"
    code, summary, err = sim_center(
        "--stations", "1", "--jobs", "1", "--db", str(db), "--out", str(out)
    )
    assert code == 1, err
    verdicts = {i["name"]: i["ok"] for i in summary["invariants"]}
    assert verdicts.pop("audit_verifies") is False
    (audit,) = [i for i in summary["invariants"] if i["name"] == "audit_verifies"]
    assert "persons/1" in audit["detail"] and audit["detail"].count("changed outside sscard") == 1
    assert all(verdicts.values()), summary["invariants"]
    assert summary["jobs_done"] == 1 and summary["registry"] == str(db)


def test_a_seeded_registry_gets_new_holders_and_the_logged_in_supervisors_operator(
    tmp_path: Path,
) -> None:
    """On a registry ``registry seed`` filled (its persons are the synthetic holders the run
    would make first, its operators not the run's): the run's operator is added by the
    supervisor logged in, the seeded persons are left alone."""
    db = tmp_path / "seeded.db"
    supervisor = login(db, "sup1", Role.SUPERVISOR, clock=utc_now)
    env = {**os.environ, **supervisor}
    seed = (sys.executable, "-m", "personalize.cli", "registry", "seed", "--persons", "50")
    seeded = subprocess.run(
        [*seed, "--db", str(db)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert seeded.returncode == 0, seeded.stderr
    no_session = {**os.environ, "SSCARD_SESSION": str(tmp_path / "none")}
    on_seeded = ("--stations", "1", "--jobs", "3", "--db", str(db))
    refused, _, err = sim_center(*on_seeded, "--out", str(tmp_path / "r"), env=no_session)
    assert refused == 1 and "未登录" in err and "(not logged in" in err
    code, summary, err = sim_center(*on_seeded, "--out", str(tmp_path / "c"), env=env)
    assert code == 0, err
    assert summary["jobs_done"] == 3 and all(i["ok"] for i in summary["invariants"])
    registry = Registry(db, POLICY, clock=pinned_clock, audit_key=AUDIT_KEY)
    try:
        assert registry.db.execute("SELECT COUNT(*) FROM persons").fetchone()[0] == 53
        (added,) = registry.db.execute(
            "SELECT created_by FROM operators WHERE name LIKE 'sim-center-%'"
        ).fetchone()
        assert added == "sup1"
    finally:
        registry.close()


def test_interrupted_run_stops_what_it_started(tmp_path: Path) -> None:
    """Ctrl-C while the workers drain: exit 130, no worker left running, the jobs resumable."""
    run = subprocess.Popen(
        [*SIM_CENTER, "--stations", "2", "--jobs", "30", "--out", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C as at a terminal: a suite started in the background (``cmd &``) ignores
        # SIGINT, and an ignored SIGINT is inherited, so Python would install no handler
        preexec_fn=default_sigint,
    )
    worker_log = tmp_path / "worker-1.log"
    deadline = time.monotonic() + 120
    while "作业" not in (worker_log.read_text("utf-8") if worker_log.exists() else ""):
        assert run.poll() is None and time.monotonic() < deadline, run.communicate()
        time.sleep(0.1)
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 130, err
    assert "已中断 (interrupted)" in err
    assert started_from(tmp_path) == []
    registry = Registry(tmp_path / "registry.db", POLICY, clock=pinned_clock, audit_key=AUDIT_KEY)
    try:
        assert not registry.verify_audit()[1]
        queued = registry.db.execute("SELECT COUNT(*) FROM jobs WHERE status != 'done'")
        assert queued.fetchone()[0] > 0  # interrupted before the queue was drained
    finally:
        registry.close()


def default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def started_from(root: Path) -> list[str]:
    """Command lines of the processes still running that name a file under ``root``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(root) in text:
            found.append(text)
    return found
