"""``sscard registry``, ``sscard audit verify`` and ``sscard job`` as the counter uses them:
operator on every change, JSON output, clear refusals, the 领卡证明 PDF."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.factory import SAMPLE_HOLDER
from sscard.identifiers import ssn_check


def sscard(*args: str, db: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "personalize.cli", *args],
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
                "gender": "2",
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


def _enroll_file(path: Path, **changes: object) -> Path:
    data: dict[str, object] = {
        "ssn": SAMPLE_HOLDER.ssn,
        "name": SAMPLE_HOLDER.name,
        "gender": SAMPLE_HOLDER.gender,
        "ethnicity": SAMPLE_HOLDER.ethnicity,
        "birthplace": SAMPLE_HOLDER.birthplace,
        "birth_date": SAMPLE_HOLDER.birth_date.isoformat(),
        "card_number": "H00000012",
    }
    data.update(changes)
    path.write_text(json.dumps({k: v for k, v in data.items() if v is not ...}), encoding="utf-8")
    return path


def _rows(db: Path) -> tuple[int, int, int]:
    with sqlite3.connect(db) as conn:
        return (
            conn.execute("SELECT COUNT(*) FROM persons").fetchone()[0],
            conn.execute("SELECT COUNT(*) FROM cards").fetchone()[0],
            conn.execute("SELECT COUNT(*) FROM audit_events").fetchone()[0],
        )


OTHER_GENDER = "1" if SAMPLE_HOLDER.gender == "2" else "2"


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"card_number": "H00000030"}, "H00000039"),  # H=17: 17·3 + 3·2 = 57 → check 9
        ({"gender": OTHER_GENDER}, "第 17 位"),
        ({"card_number": ...}, "card_number"),
        ({"ssn": ...}, "ssn"),
        ({"birth_date": 19491231}, "birth_date"),
        ({"name": "张\u20ac三"}, "GBK"),
        ({"birthplace": "999999"}, "999999"),
        ({"ssn": "99999919491231002" + ssn_check("99999919491231002")}, "地址码 999999"),
        ("ssn=110105", "JSON"),
        (None, "无法读取登记文件"),
    ],
)
def test_enroll_refuses_bad_files_in_one_line_and_writes_nothing(
    tmp_path: Path, changes: dict[str, object] | str | None, words: str
) -> None:
    db = tmp_path / "registry.db"
    path = tmp_path / "person.json"
    if isinstance(changes, dict):
        _enroll_file(path, **changes)
    elif isinstance(changes, str):
        path.write_text(changes, encoding="utf-8")
    result = sscard("registry", "enroll", str(path), "--operator", "op7", db=db)
    assert result.returncode == 1, result.stdout
    message = result.stderr.strip()
    assert "\n" not in message and "Traceback" not in message, message
    assert words in message, message
    assert "\u4e00" <= message.split(": ", 1)[-1][0] <= "\u9fff", message
    assert not db.exists() or _rows(db) == (0, 0, 0)


def test_enroll_accepts_the_sample_and_refuses_it_twice(tmp_path: Path) -> None:
    db = tmp_path / "registry.db"
    path = _enroll_file(tmp_path / "ok.json")
    good = sscard("registry", "enroll", str(path), "--operator", "op7", db=db)
    assert good.returncode == 0, good.stderr
    assert _rows(db) == (1, 1, 1)
    again = sscard("registry", "enroll", str(path), "--operator", "op7", db=db)
    assert again.returncode == 1 and "卡号已登记" in again.stderr, again.stderr
    assert _rows(db) == (1, 1, 1)
