"""``sscard registry``, ``sscard audit verify`` and ``sscard job`` as the counter uses them:
a logged-in operator for every change, JSON output, clear refusals, the 领卡证明 PDF."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hsm_stub.keystore import Keystore
from personalize.database import Row
from personalize.jobs import claim_job
from personalize.policy import load_policy
from personalize.registry import Registry
from personalize.roles import Role
from personalize.trackvault import TrackVault
from simulator.factory import SAMPLE_HOLDER, sample_photo
from sscard.identifiers import ssn_check
from tests.audit_key import AUDIT_KEY, HSM_ENV
from tests.cli import run_sscard
from tests.clock import FAKETIME_ENV, faketime
from tests.conftest import NewDatabase
from tests.operators import confirm, login
from tests.stores import behind_its_back


def sscard(
    *args: str, db: str | Path, session: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run_sscard(
        *args,
        timeout=60,
        env={
            "PATH": "/usr/bin:/bin",
            "SSCARD_DB": str(db),
            **FAKETIME_ENV,
            **HSM_ENV,
            **(session or {}),
        },
    )


def test_counter_flow_from_the_command_line(tmp_path: Path, new_db: NewDatabase) -> None:
    db = new_db("registry")
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
    op7 = login(db, "op7", Role.COUNTER)
    operator_events = 3  # sup0 and op7 added, op7 logged in
    enrolled = sscard("registry", "enroll", str(person), "--json", db=db, session=op7)
    assert enrolled.returncode == 0, enrolled.stderr
    assert json.loads(enrolled.stdout)["status"] == "active"
    no_operator = sscard("registry", "report-loss", "X00000019", db=db)
    assert no_operator.returncode == 1 and "未登录" in no_operator.stderr
    operator_events += 1  # the refusal is audited
    lost = sscard("registry", "report-loss", "X00000019", "--json", db=db, session=op7)
    assert json.loads(lost.stdout)["status_name"] == "预挂失"
    early = sscard("registry", "request-reissue", "X00000019", db=db, session=op7)
    assert early.returncode == 1 and "补卡前须正式挂失" in early.stderr
    formal = sscard(
        "registry",
        "formalize-loss",
        "X00000019",
        "--evidence",
        "居民身份证",
        db=db,
        session=op7,
    )
    assert formal.returncode == 0, formal.stderr
    pdf = tmp_path / "cert.pdf"
    request = sscard(
        "registry",
        "request-reissue",
        "X00000019",
        "--counter",
        "5号窗口",
        "--out",
        str(pdf),
        "--json",
        db=db,
        session=op7,
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
    first = {"mode": "full", "reason": "first", "events": operator_events + 5, "problems": []}
    assert json.loads(verified.stdout).items() >= first.items()
    behind_its_back(db, "UPDATE audit_events SET details = '{}' WHERE id = 7")
    broken = sscard("audit", "verify", "--full", db=db)  # event 7 is before the last verification
    assert broken.returncode == 1 and "event 7" in broken.stdout
    unknown = sscard("registry", "show", "Q00000000", db=db)
    assert unknown.returncode == 1 and "unknown card number" in unknown.stderr
    assert json.loads(sscard("job", "list", "--json", db=db).stdout) == {"jobs": [], "next": None}


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
            conn.execute(
                "SELECT COUNT(*) FROM audit_events WHERE action NOT LIKE 'operator.%'"
            ).fetchone()[0],
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
        ({"issued_on": "2001/06/01"}, "字段 issued_on（发卡日期）"),
        ({"issued_on": "1998-12-31"}, "早于 1999 年"),
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
    result = sscard("registry", "enroll", str(path), db=db, session=login(db))
    assert result.returncode == 1, result.stdout
    message = result.stderr.strip()
    assert "\n" not in message and "Traceback" not in message, message
    assert words in message, message
    assert message.startswith("错误：") and "\u4e00" <= message[3] <= "\u9fff", message
    assert not db.exists() or _rows(db) == (0, 0, 0)


def test_enroll_accepts_the_sample_and_refuses_it_twice(tmp_path: Path) -> None:
    db = tmp_path / "registry.db"
    path = _enroll_file(tmp_path / "ok.json")
    op7 = login(db)
    good = sscard("registry", "enroll", str(path), db=db, session=op7)
    assert good.returncode == 0, good.stderr
    assert _rows(db) == (1, 1, 1)
    again = sscard("registry", "enroll", str(path), db=db, session=op7)
    assert again.returncode == 1 and "卡号已登记" in again.stderr, again.stderr
    assert _rows(db) == (1, 1, 1)


def test_enroll_keeps_the_issue_date_given_and_invents_none(tmp_path: Path) -> None:
    """The file's ``issued_on`` is the card's 发卡日期 and starts its validity; without it the
    registry does not know either (review 17, finding 5) — ``registry show`` says null."""
    db = tmp_path / "registry.db"
    op7 = login(db)
    given = _enroll_file(tmp_path / "given.json", issued_on="2001-06-01")
    shown = sscard("registry", "enroll", str(given), "--json", db=db, session=op7)
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert (data["issued_on"], data["valid_until"]) == ("2001-06-01", "2011-06-01")
    man = "11010519491231001"  # born the same day, 17th digit odd
    unknown = _enroll_file(
        tmp_path / "unknown.json", ssn=man + ssn_check(man), gender="1", card_number="H00000020"
    )
    shown = sscard("registry", "enroll", str(unknown), "--json", db=db, session=op7)
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert (data["issued_on"], data["valid_until"], data["validity"]) == (None, None, None)


# ---------------------------------------------------------------- the counter under misuse

NOW = "2026-11-25 09:30:00"  # a Wednesday, 17:30 in Shanghai
PINNED = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
POLICY = load_policy("default")


def pinned(
    *args: str,
    db: str | Path | None = None,
    at: str = NOW,
    cwd: Path | None = None,
    session: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``sscard ARGS`` with the clock pinned (faketime keeps it running from ``at``)."""
    env = {"PATH": "/usr/bin:/bin", **HSM_ENV, **(session or {})}
    if db is not None:
        env["SSCARD_DB"] = str(db)
    return subprocess.run(
        [*faketime(at), sys.executable, "-m", "personalize.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=cwd,
    )


@dataclass
class Counter:
    root: Path
    station: Path
    db: str | Path  # a SQLite file or a postgresql:// URL
    old: str

    def registry(self) -> Registry:
        return Registry(self.db, POLICY, clock=lambda: PINNED, audit_key=AUDIT_KEY)

    def job_file(self) -> Path:
        path = self.root / "job.json"
        if not path.exists():
            (self.root / "photo.jpg").write_bytes(sample_photo())
            holder = {
                k: getattr(SAMPLE_HOLDER, k)
                for k in ("ssn", "name", "gender", "ethnicity", "birthplace")
            }
            job = {
                "old_card_number": self.old,
                "holder": {**holder, "birth_date": SAMPLE_HOLDER.birth_date.isoformat()},
                "photo": "photo.jpg",
            }
            path.write_text(json.dumps(job, ensure_ascii=False), encoding="utf-8")
        return path

    def submit(self) -> subprocess.CompletedProcess[str]:
        return pinned(
            "job", "submit", str(self.job_file()), "--station", str(self.station), "--json",
            session=login(self.db, "op7", Role.CARD_CENTER),
        )  # fmt: skip

    def cancel(self, *args: str, at: str = NOW) -> subprocess.CompletedProcess[str]:
        """``job cancel ARGS`` by op7, confirmed by a second supervisor (dual control)."""
        return pinned(
            "job", "cancel", *args, *confirm(self.db), db=self.db, at=at,
            session=login(self.db, "op7", Role.CARD_CENTER),
        )  # fmt: skip

    def job(self, job_id: int) -> Row:
        row: Row = (
            self.registry().db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        )
        return row


@pytest.fixture
def counter(tmp_path: Path, new_db: NewDatabase) -> Counter:
    """A station file whose printer port does not exist, and H00000012 formally lost with
    a reissue request, on either database."""
    db = new_db("registry")
    Keystore.create_test(tmp_path / "keystore.json")
    TrackVault.create(tmp_path / "tracks.key")
    station = tmp_path / "station.toml"
    station.write_text(
        'name = "station-1"\nprinter = "/nonexistent/ttyUSB9"\n'
        'contact_reader = "Virtual PCD 00 00"\n'
        f'hsm = "keystore:{tmp_path / "keystore.json"}"\ntrack_key = "tracks.key"\n'
        f'registry = "{db}"\nout_dir = "out"\n',
        encoding="utf-8",
    )
    c = Counter(tmp_path, station, db, "H00000012")
    registry = c.registry()
    registry.enroll(SAMPLE_HOLDER, c.old, operator="op7")
    registry.formalize_loss(c.old, operator="op7", evidence="居民身份证")
    registry.request_reissue(c.old, operator="op7")
    registry.close()
    return c


def test_a_cancelled_job_leaves_the_request_open(counter: Counter) -> None:
    submitted = counter.submit()
    assert submitted.returncode == 0, submitted.stderr
    job_id = json.loads(submitted.stdout)["job"]
    cancelled = counter.cancel(str(job_id), "--reason", "照片不清晰")
    assert cancelled.returncode == 0, cancelled.stderr
    assert counter.registry().card(counter.old).status == "reissue_pending"
    again = counter.submit()
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["job"] == job_id + 1
    job = counter.job(job_id + 1)
    assert (job["status"], job["request_id"]) == ("queued", counter.job(job_id)["request_id"])


def test_a_wrong_printer_port_pauses_the_job(counter: Counter) -> None:
    job_id = json.loads(counter.submit().stdout)["job"]
    run = pinned(
        "job", "run", str(job_id), "--station", str(counter.station),
        session=login(counter.db, "op7", Role.CARD_CENTER),
    )  # fmt: skip
    assert run.returncode == 1 and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert "Traceback" not in run.stderr
    job = counter.job(job_id)
    assert job["status"] == "paused" and "ttyUSB9" in job["last_error"]
    cancelled = counter.cancel(str(job_id), "--reason", "打印机端口配置错误")
    assert cancelled.returncode == 0, cancelled.stderr
    assert counter.job(job_id)["status"] == "cancelled"


def test_a_request_whose_certificate_cannot_be_written_changes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "registry.db"
    registry = Registry(db, POLICY, clock=lambda: PINNED, audit_key=AUDIT_KEY)
    registry.enroll(SAMPLE_HOLDER, "H00000012", operator="op7")
    registry.formalize_loss("H00000012", operator="op7", evidence="居民身份证")
    registry.close()
    op7 = login(db)
    events = Registry(db, POLICY, audit_key=AUDIT_KEY).verify_audit()[0]
    (tmp_path / "not-a-dir").write_text("")  # unwritable even for root: its parent is a file
    failed = pinned(
        "registry", "request-reissue", "H00000012",
        "--out", str(tmp_path / "not-a-dir" / "x.pdf"), db=db, session=op7,
    )  # fmt: skip
    assert failed.returncode == 1 and "Traceback" not in failed.stderr, failed.stderr
    assert len(failed.stderr.strip().splitlines()) == 1 and "not-a-dir" in failed.stderr
    registry = Registry(db, POLICY, clock=lambda: PINNED, audit_key=AUDIT_KEY)
    assert registry.card("H00000012").status == "formal_loss"
    assert registry.db.execute("SELECT COUNT(*) FROM reissue_requests").fetchone()[0] == 0
    assert registry.verify_audit() == (events, [])
    out = tmp_path / "cert.pdf"
    done = pinned(
        "registry", "request-reissue", "H00000012", "--out", str(out), db=db, session=op7,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert registry.card("H00000012").status == "reissue_pending"


def test_a_job_stuck_running_after_a_crash_can_be_cancelled(counter: Counter) -> None:
    job_id = json.loads(counter.submit().stdout)["job"]
    registry = counter.registry()
    claim_job(registry, job_id, "station-1")  # the station took the lease, then crashed
    registry.close()
    cancel = (str(job_id), "--reason", "工位死机")
    held = counter.cancel(*cancel, at="2026-11-25 09:31:00")
    assert held.returncode == 1 and "正由工位 station-1 执行" in held.stderr, held.stderr
    assert counter.job(job_id)["status"] == "running"
    own = counter.cancel(*cancel, "--station-name", "station-1", at="2026-11-25 09:31:00")
    assert own.returncode == 0, own.stderr
    assert counter.job(job_id)["status"] == "cancelled"
    assert counter.job(job_id)["last_error"] == "工位死机"


def test_a_crashed_job_is_cancellable_once_its_lease_expired(counter: Counter) -> None:
    job_id = json.loads(counter.submit().stdout)["job"]
    registry = counter.registry()
    claim_job(registry, job_id, "station-1")
    registry.close()
    later = counter.cancel(str(job_id), "--reason", "工位死机", at="2026-11-25 09:41:00")
    assert later.returncode == 0, later.stderr
    again = counter.cancel(str(job_id), "--reason", "again")
    assert again.returncode == 1 and "已取消" in again.stderr, again.stderr
    assert counter.submit().returncode == 0


def test_reprint_reproduces_the_certificate_marked_as_such(tmp_path: Path) -> None:
    db = tmp_path / "registry.db"
    registry = Registry(db, POLICY, clock=lambda: PINNED, audit_key=AUDIT_KEY)
    registry.enroll(SAMPLE_HOLDER, "H00000012", operator="op7")
    registry.formalize_loss("H00000012", operator="op7", evidence="居民身份证")
    registry.close()
    first = tmp_path / "cert.pdf"
    made = pinned(
        "registry", "request-reissue", "H00000012", "--out", str(first),
        "--agent-name", "李四", "--agent-id", "110105198001010016", db=db,
        session=login(db, "op7", Role.COUNTER),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    original = pdftext(first)
    assert "补打" not in original and "李四（110105********0016）" in original
    next_day = datetime(2026, 11, 26, 2, 15, tzinfo=UTC)  # op9 logs in the next morning
    op9 = login(db, "op9", Role.COUNTER, clock=lambda: next_day)
    sup2 = confirm(db, clock=lambda: next_day)
    again = pinned(
        "registry", "reprint", "SSCARD-REQ-000001", "--out", str(first), *sup2,
        "--json", db=db, at="2026-11-26 02:15:00", session=op9,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    out = Path(json.loads(again.stdout)["file"])
    assert out == tmp_path / "cert-2.pdf" and first.read_text(errors="replace")  # not overwritten
    text = pdftext(out)
    assert "补打 2026年11月26日 10:15" in text  # Shanghai time of the reprint
    info = subprocess.run(["pdfinfo", str(out)], capture_output=True, text=True).stdout
    assert "社会保障卡领卡证明 SSCARD-REQ-000001 （补打）" in info
    assert f"Author:          {POLICY.authority}" in info
    for words in ("SSCARD-REQ-000001", "H00000012", "李四", "工本费", "20 元", "op7", "12333"):
        assert words in text and words in original

    def reprint(number: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return pinned(
            "registry", "reprint", number, *sup2, db=db, at="2026-11-26 02:20:00", cwd=cwd,
            session=op9,
        )  # fmt: skip

    by_id = reprint("1", cwd=tmp_path)
    assert by_id.returncode == 0, by_id.stderr
    assert (tmp_path / "领卡证明-SSCARD-REQ-000001-补打.pdf").is_file()  # the default name
    unknown = reprint("SSCARD-REQ-000009")
    assert unknown.returncode == 1 and "no request 9" in unknown.stderr
    garbage = reprint("VR-x")
    assert garbage.returncode == 1 and "无法识别" in garbage.stderr
    registry = Registry(db, POLICY, clock=lambda: PINNED, audit_key=AUDIT_KEY)
    reprints = registry.db.execute(
        "SELECT operator, subject, details FROM audit_events WHERE action = 'document.reprint'"
    ).fetchall()
    assert [tuple(r)[:2] for r in reprints] == [("op9", "SSCARD-REQ-000001")] * 2
    assert all(json.loads(r["details"])["confirmed_by"] == "sup2" for r in reprints)
    assert registry.verify_audit()[1] == []


def pdftext(path: Path) -> str:
    return subprocess.run(
        ["pdftotext", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def test_job_cancel_is_confirmed_by_a_second_supervisor(counter: Counter) -> None:
    job_id = str(json.loads(counter.submit().stdout)["job"])
    boss = login(counter.db, "boss", Role.SUPERVISOR)
    cancel = ("job", "cancel", job_id, "--reason", "照片不清晰")
    alone = pinned(*cancel, db=counter.db, session=boss)
    assert alone.returncode == 1 and "须由另一位主管复核" in alone.stderr, alone.stderr
    own = pinned(*cancel, *confirm(counter.db, "boss"), db=counter.db, session=boss)
    assert own.returncode == 1 and "复核人须为另一位操作员" in own.stderr, own.stderr
    clerk = confirm(counter.db, "clerk")[1]  # a session file, but of a supervisor: re-role it
    behind_its_back(counter.db, "UPDATE operators SET role = 'card_center' WHERE name = 'clerk'")
    peer = pinned(*cancel, "--confirm-session", clerk, db=counter.db, session=boss)
    assert peer.returncode == 1 and "无权复核" in peer.stderr, peer.stderr
    assert counter.job(int(job_id))["status"] == "queued"
    done = pinned(*cancel, *confirm(counter.db), db=counter.db, session=boss)
    assert done.returncode == 0, done.stderr
    assert counter.job(int(job_id))["status"] == "cancelled"
    registry = counter.registry()
    events = registry.db.execute(
        "SELECT operator, action, details FROM audit_events WHERE subject = ? ORDER BY id",
        (f"job-{job_id}",),
    ).fetchall()
    confirmed = [json.loads(e["details"]) for e in events if e["action"] == "dual_control.confirm"]
    assert confirmed == [{"action": "job.cancel", "operator": "boss", "confirmed_by": "sup2"}]
    assert [e["operator"] for e in events if e["action"] == "job.cancelled"] == ["boss"]
    refusals = registry.db.execute(
        "SELECT COUNT(*) FROM audit_events WHERE action = 'job.cancel.refused'"
    ).fetchone()[0]
    assert refusals == 3
    assert registry.verify_audit()[1] == []
