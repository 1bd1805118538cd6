"""``sscard registry``, ``sscard audit verify`` and ``sscard job`` as the counter uses them:
operator on every change, JSON output, clear refusals, the 领卡证明 PDF."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from simulator.factory import SAMPLE_HOLDER
from tests.clock import FAKETIME


def sscard(*args: str, db: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FAKETIME, sys.executable, "-m", "personalize.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "SSCARD_DB": str(db)},
    )


def test_counter_flow_from_the_command_line(tmp_path: Path) -> None:
    db = tmp_path / "registry.db"
    person = tmp_path / "person.json"
    person.write_text(
        json.dumps(
            {
                "ssn": SAMPLE_HOLDER.ssn,
                "name": "张三",
                "gender": "1",
                "ethnicity": "01",
                "birthplace": "110105",
                "birth_date": "1949-12-31",
                "card_number": "X00000019",
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    enrolled = sscard("registry", "enroll", str(person), "--operator", "op7", "--json", db=db)
    assert enrolled.returncode == 0, enrolled.stderr
    assert json.loads(enrolled.stdout)["status"] == "active"
    no_operator = sscard("registry", "report-loss", "X00000019", db=db)
    assert no_operator.returncode == 2 and "--operator" in no_operator.stderr
    lost = sscard("registry", "report-loss", "X00000019", "--operator", "op7", "--json", db=db)
    assert json.loads(lost.stdout)["status_name"] == "预挂失"
    early = sscard("registry", "request-reissue", "X00000019", "--operator", "op7", db=db)
    assert early.returncode == 1 and "补卡前须正式挂失" in early.stderr
    formal = sscard(
        "registry",
        "formalize-loss",
        "X00000019",
        "--operator",
        "op7",
        "--evidence",
        "居民身份证",
        db=db,
    )
    assert formal.returncode == 0, formal.stderr
    pdf = tmp_path / "cert.pdf"
    request = sscard(
        "registry",
        "request-reissue",
        "X00000019",
        "--operator",
        "op7",
        "--counter",
        "5号窗口",
        "--out",
        str(pdf),
        "--json",
        db=db,
    )
    assert request.returncode == 0, request.stderr
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout
    assert "X00000019" in text and "5号窗口" in text and "110105********002X" in text
    shown = json.loads(sscard("registry", "show", "X00000019", "--json", db=db).stdout)
    assert [h["to"] for h in shown["history"]] == [
        "provisional_loss",
        "formal_loss",
        "reissue_pending",
    ]
    assert all(h["operator"] == "op7" for h in shown["history"])
    verified = sscard("audit", "verify", "--json", db=db)
    assert json.loads(verified.stdout) == {"events": 5, "problems": []}
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE audit_events SET details = '{}' WHERE id = 3")
    broken = sscard("audit", "verify", db=db)
    assert broken.returncode == 1 and "event 3" in broken.stdout
    unknown = sscard("registry", "show", "Q00000000", db=db)
    assert unknown.returncode == 1 and "unknown card number" in unknown.stderr
    assert json.loads(sscard("job", "list", "--json", db=db).stdout) == {"jobs": []}
