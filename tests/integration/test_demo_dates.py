"""The demo flow (预挂失 → 正式挂失 → 补卡申请 → personalization job) with the clock pinned at
instants across 春节 and 国庆 2026 with their 调休 days, and in 2027–2030 — real pcscd +
vpcd, real ptys, a real SQLite file. The suite passes whatever day it is run on.

The expected dates are counted by hand (comments), never computed with the code under test.
2026 uses the shipped default policy (the State Council's 2026 notice); later years use the
default policy with the SYNTHETIC calendars of data/synthetic-calendars-2027-2031.toml."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from personalize.demo import run_demo
from personalize.policy import POLICY_DIR, RegionPolicy, load_policy, policy_from_dict
from tests.clock import faketime

pytestmark = pytest.mark.pcsc
SYNTHETIC = Path(__file__).parent / "data" / "synthetic-calendars-2027-2031.toml"


def synthetic_policy() -> RegionPolicy:
    """The default policy with the synthetic 2027–2031 calendars added (test data only)."""
    with (POLICY_DIR / "default.toml").open("rb") as fh:
        base = tomllib.load(fh)
    with SYNTHETIC.open("rb") as fh:
        extra = tomllib.load(fh)["calendar"]
    return policy_from_dict(
        {**base, "calendar": {**base["calendar"], **extra}}, "default+synthetic-test"
    )


@dataclass(frozen=True)
class Case:
    at: str  # the pinned instant
    synthetic: bool  # default policy + synthetic calendars
    applied: date  # 申请日期 (Shanghai date)
    collect: date  # 领卡日期: 15 working days later
    lapse: str  # the 预挂失 deadline, Shanghai wall clock: 3 working days later


CASES = {
    # Tue 2026-02-10 09:30+08. Collection: Feb 11 (1), 12 (2), 13 (3), Sat 14 调休 (4),
    # 15–23 春节 off, 24 (5), 25 (6), 26 (7), 27 (8), Sat 28 调休 (9), Mar 2 (10), 3 (11),
    # 4 (12), 5 (13), 6 (14), Mon Mar 9 (15). Lapse: Feb 11, 12, Fri 13 09:30.
    "spring-festival-2026": Case(
        "2026-02-10T09:30+08:00", False, date(2026, 2, 10), date(2026, 3, 9), "2026-02-13 09:30"
    ),
    # 2026-09-18T20:00Z is Sat 09-19 04:00 in Shanghai (applied on the 19th, not the 18th).
    # Collection: Sun 20 调休 (1), 21 (2), 22 (3), 23 (4), 24 (5), 25–27 中秋 off, 28 (6),
    # 29 (7), 30 (8), Oct 1–7 国庆 off, 8 (9), 9 (10), Sat 10 调休 (11), 12 (12), 13 (13),
    # 14 (14), Thu Oct 15 (15). Lapse: Sun 20 调休 (1), 21 (2), Tue 22 (3) 04:00.
    "national-day-2026": Case(
        "2026-09-18T20:00+00:00", False, date(2026, 9, 19), date(2026, 10, 15), "2026-09-22 04:00"
    ),
    # Mon 2027-12-20 09:30+08 (synthetic: 2027-12-25 Sat worked, 12-31 off, 2028-01-01..03
    # off, 01-08 Sat worked). Collection: Dec 21 (1), 22 (2), 23 (3), 24 (4), Sat 25 (5),
    # 27 (6), 28 (7), 29 (8), 30 (9), Jan 4 (10), 5 (11), 6 (12), 7 (13), Sat 8 (14),
    # Mon Jan 10 (15). Lapse: 21, 22, Thu 23 09:30.
    "new-year-2028": Case(
        "2027-12-20T09:30+08:00", True, date(2027, 12, 20), date(2028, 1, 10), "2027-12-23 09:30"
    ),
    # Fri 2029-06-01 09:30+08 (synthetic: 06-09 Sat worked, 06-15..17 off). Collection:
    # Jun 4 (1), 5 (2), 6 (3), 7 (4), 8 (5), Sat 9 (6), 11 (7), 12 (8), 13 (9), 14 (10),
    # 18 (11), 19 (12), 20 (13), 21 (14), Fri 22 (15). Lapse: Jun 4, 5, Wed 6 09:30.
    "dragon-boat-2029": Case(
        "2029-06-01T09:30+08:00", True, date(2029, 6, 1), date(2029, 6, 22), "2029-06-06 09:30"
    ),
    # 2030-12-16T18:00Z is Tue 12-17 02:00 in Shanghai (synthetic: 2030-12-28 Sat worked,
    # 2031-01-01..03 off, 01-04 Sat worked). Collection: Dec 18 (1), 19 (2), 20 (3), 23 (4),
    # 24 (5), 25 (6), 26 (7), 27 (8), Sat 28 (9), 30 (10), 31 (11), Sat Jan 4 (12), 6 (13),
    # 7 (14), Wed Jan 8 (15). Lapse: Dec 18, 19, Fri 20 02:00.
    "new-year-2031": Case(
        "2030-12-16T18:00+00:00", True, date(2030, 12, 17), date(2031, 1, 8), "2030-12-20 02:00"
    ),
}


def printed(day: date) -> str:
    """A date as the 领卡证明 prints it, leading zeros optional: 2026年3月9日 / 2026年03月09日."""
    return rf"{day.year}年0?{day.month}月0?{day.day}日"


@pytest.mark.parametrize("name", list(CASES))
def test_demo_flow_at_pinned_dates(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = CASES[name]
    at = datetime.fromisoformat(case.at)
    policy = synthetic_policy() if case.synthetic else load_policy("default")
    out = tmp_path / "out"
    assert run_demo(out, clock=lambda: at, policy=policy) == 0
    shown = capsys.readouterr().out
    assert f"{case.lapse} 前未正式挂失则自动解除" in shown
    assert f"领卡日期 {case.collect.isoformat()}" in shown
    [cert] = sorted(out.glob("领卡证明-*.pdf"))
    text = " ".join(
        subprocess.run(
            ["pdftotext", str(cert), "-"], capture_output=True, text=True, check=True
        ).stdout.split()
    )
    assert re.search(rf"申请日期：? ?{printed(case.applied)}", text), text
    assert re.search(rf"领卡日期：? ?{printed(case.collect)}", text), text
    db = sqlite3.connect(out / "station" / "registry.db")
    stamps = [row[0] for row in db.execute("SELECT at FROM audit_events")]
    db.close()
    utc = at.astimezone(UTC).isoformat(timespec="seconds")
    assert stamps and set(stamps) == {utc}  # instants are stored in UTC with their offset


def sscard_demo(*args: str, at: str) -> subprocess.CompletedProcess[str]:
    """``sscard demo`` run with the machine's clock at ``at`` (libfaketime, TZ=UTC)."""
    return subprocess.run(
        [*faketime(at), sys.executable, "-m", "personalize.cli", "demo", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TZ": "UTC"},
    )


def test_sscard_demo_gives_the_same_documents_on_any_day(tmp_path: Path) -> None:
    # The machine's clock says 2030-12-20 (no holiday calendar for 2031 in the default
    # policy); the demo still starts at its documented instant, Wed 2026-11-25 09:30+08.
    # Collection: Nov 26 (1), 27 (2), 30 (3), Dec 1–4 (4–7), 7–11 (8–12), 14 (13), 15 (14),
    # Wed Dec 16 (15).
    done = sscard_demo("--out", str(tmp_path / "out"), at="@2030-12-20 10:00:00")
    assert done.returncode == 0, done.stderr
    [cert] = sorted((tmp_path / "out").glob("领卡证明-*.pdf"))
    text = " ".join(
        subprocess.run(
            ["pdftotext", str(cert), "-"], capture_output=True, text=True, check=True
        ).stdout.split()
    )
    assert re.search(rf"申请日期：? ?{printed(date(2026, 11, 25))}", text), text
    assert re.search(rf"领卡日期：? ?{printed(date(2026, 12, 16))}", text), text


def test_sscard_demo_at_refuses_what_it_cannot_date(tmp_path: Path) -> None:
    naive = sscard_demo("--at", "2026-11-25T09:30", at="@2026-11-25 09:30:00")
    assert naive.returncode == 2 and "时刻须带时区偏移" in naive.stderr
    assert "默认 2026-11-25T09:30+08:00" in sscard_demo("--help", at="@2026-11-25 09:30:00").stdout
    uncovered = sscard_demo(
        "--out", str(tmp_path / "out"), "--at", "2027-06-15T10:00+08:00", at="@2026-11-25 09:30:00"
    )
    assert uncovered.returncode == 1
    assert "未收录 2027 年的节假日安排" in uncovered.stderr
    assert "Traceback" not in uncovered.stderr
