"""Dates a person sees are dates in the region's zone (Asia/Shanghai), whatever the machine's
zone: an application made at 04:00 in Shanghai on 2026-11-27 (20:00 UTC on the 26th) is dated
the 27th in the registry and on the 领卡证明. The ``sscard`` subprocesses run under faketime
(libfaketime) with the clock started at that instant; the machine's zone is UTC."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from simulator.factory import SAMPLE_HOLDER
from tests.cli import run_sscard
from tests.clock import faketime_env
from tests.operators import login

AT = "@2026-11-26 20:00:00"  # read in TZ=UTC: Friday 2026-11-27 04:00 in Shanghai
STARTED = datetime(2026, 11, 26, 20, 0, tzinfo=UTC)  # the same instant, for the login


def sscard(*args: str, db: Path) -> subprocess.CompletedProcess[str]:
    session = login(db, "op7", clock=lambda: STARTED)
    return run_sscard(
        *args,
        timeout=60,
        env={**os.environ, **faketime_env(AT), "TZ": "UTC", "SSCARD_DB": str(db), **session},
    )


def test_an_application_at_4_am_in_shanghai_prints_that_date(tmp_path: Path) -> None:
    db = tmp_path / "registry.db"
    person = tmp_path / "person.json"
    person.write_text(
        json.dumps(
            {
                "ssn": SAMPLE_HOLDER.ssn,
                "name": "张三",
                "gender": SAMPLE_HOLDER.gender,
                "ethnicity": "01",
                "birthplace": "110105",
                "birth_date": "1949-12-31",
                "card_number": "X00000019",
                # today in Shanghai (the 26th in UTC): not in the future there
                "issued_on": "2026-11-27",
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    for args in (
        ("registry", "enroll", str(person)),
        ("registry", "formalize-loss", "X00000019", "--evidence", "居民身份证"),
    ):
        done = sscard(*args, db=db)
        assert done.returncode == 0, done.stderr
    pdf = tmp_path / "领卡证明.pdf"
    done = sscard("registry", "request-reissue", "X00000019", "--out", str(pdf), db=db)
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(db) as conn:
        applied, collect = conn.execute(
            "SELECT applied_on, collect_on FROM reissue_requests"
        ).fetchone()
        issued, since = conn.execute(
            "SELECT issued_on, status_since FROM cards WHERE card_number = 'X00000019'"
        ).fetchone()
    conn.close()
    # From Fri 11-27: Nov 30 (1), Dec 1–4 (2–5), 7–11 (6–10), 14–18 (11–15) → Fri 12-18.
    assert (applied, collect, issued) == ("2026-11-27", "2026-12-18", "2026-11-27")
    assert since.startswith("2026-11-26T20:") and since.endswith("+00:00")  # instants: UTC
    [written] = tmp_path.glob("领卡证明*.pdf")
    text = " ".join(
        subprocess.run(
            ["pdftotext", str(written), "-"], capture_output=True, text=True, check=True
        ).stdout.split()
    )
    assert re.search(r"申请日期：? ?2026年11月27日", text), text
    assert re.search(r"领卡日期：? ?2026年12月18日", text), text
