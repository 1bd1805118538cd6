"""换领 (identity data changed) end to end through the CLI (issue 17; docs/business-rules.md
"换领 (identity data changed)", 珠海: "因居民身份证号码或姓名变更而需换卡的…凭公安部门出具的变更
证明和社保经办机构的更改证明…申请换卡"): ``sscard registry change`` at the counter prints the 领卡
证明 with the reason and the change; ``sscard job submit`` takes only the new name and ID number;
``sscard job run`` on the simulated station (pcscd + vpcd, the Evolis and MSR206 emulators)
makes the card, which read through pcscd carries the new data; its activation changes the
person's record and voids the old card. Every refusal — a certificate for another person, an
invalid or another person's new number, nothing changed, a mere 15→18 upgrade, a card not
active — writes nothing: no row, no audit event, no document. SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from personalize.policy import load_policy
from personalize.registry import Registry
from personalize.roles import Role
from simulator.center import TRACK2
from simulator.factory import SAMPLE_HOLDER, sample_photo
from simulator.station import SimulatedStation
from sscard.profile import load_profile
from tests.card_read import card_read_json
from tests.clock import FAKETIME_ENV, pinned_clock
from tests.conftest import NewDatabase
from tests.integration.api_fixture import open_registry
from tests.integration.crash_campaign import job_run_argv
from tests.integration.holder_reader import printed_card
from tests.operators import login

pytestmark = pytest.mark.pcsc
POLICY = load_policy("default")
PROFILE = load_profile("default")
OLD_ID = SAMPLE_HOLDER.ssn  # 11010519491231002X, 张三
NEW_ID = "110108194912310029"  # her number after moving to 海淀区 (GB 11643 check char 9)
OTHER_ID = "440400194912310020"  # another woman born the same day
FIFTEEN = "110105491231002"  # 张三's first-generation number (upgrade: OLD_ID)
CERTIFICATE = (
    "--certificate", "京公(海)变字2026第0815号",
    "--authority", "北京市公安局海淀分局",
    "--bureau-certificate", "京社更2026-0042",
)  # fmt: skip
TABLES = (
    "persons",
    "cards",
    "status_history",
    "reissue_requests",
    "identity_changes",
    "jobs",
    "audit_events",
)


def sscard(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "personalize.cli", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, **env, **FAKETIME_ENV},
    )


def pdftext(path: Path) -> str:
    return subprocess.run(
        ["pdftotext", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def snapshot(db: str) -> tuple[object, ...]:
    """The row counts a 换领 writes to and the audit chain's head."""
    registry = Registry(db, POLICY, clock=pinned_clock)
    try:
        counts = [registry.db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES]
        head = registry.db.execute("SELECT hash FROM audit_events ORDER BY id DESC LIMIT 1")
        return (*counts, head.fetchone()[0])
    finally:
        registry.close()


def enroll(db: str, ssn: str = OLD_ID, name: str = "张三") -> str:
    registry = open_registry(db)
    try:
        number = registry.allocate_card_number()
        registry.enroll(replace(SAMPLE_HOLDER, ssn=ssn, name=name), number, operator="op")
        return number
    finally:
        registry.close()


def job_file(root: Path, number: str, ssn: str, name: str) -> Path:
    (root / "photo.jpg").write_bytes(sample_photo("change"))
    holder = {
        "ssn": ssn,
        "name": name,
        "gender": "2",
        "ethnicity": "01",
        "birthplace": "110105",
        "birth_date": "1949-12-31",
    }
    path = root / f"job-{ssn}.json"
    submission = {
        "old_card_number": number,
        "holder": holder,
        "photo": "photo.jpg",
        "tracks": {"2": TRACK2},
    }
    path.write_text(json.dumps(submission, ensure_ascii=False), encoding="utf-8")
    return path


def test_a_holder_whose_name_and_id_changed_gets_a_card_with_the_new_data(
    tmp_path: Path, new_db: NewDatabase
) -> None:
    db = new_db("registry")
    old = enroll(db)
    clerk = login(db, "clerk", Role.COUNTER)
    with SimulatedStation(
        tmp_path / "station", PROFILE, POLICY.region_code, cards=2, registry=db
    ) as sim:
        cert = tmp_path / "领卡证明.pdf"
        asked = sscard(
            "registry", "change", old, "--db", db, "--old-name", "张三", "--old-id", OLD_ID,
            "--new-name", "张叁", "--new-id", NEW_ID, *CERTIFICATE, "--counter", "3号窗口",
            "--out", str(cert), "--json", env=clerk,
        )  # fmt: skip
        assert asked.returncode == 0, asked.stderr
        answer = json.loads(asked.stdout)
        assert answer["kind"] == "change" and answer["request_no"] == "SSCARD-REQ-000001"
        assert answer["old_ssn"] == "110105********002X"
        assert answer["new_ssn"] == "110108********0029"
        text = pdftext(cert)
        for words in (
            "换领（身份信息变更）",
            "姓名变更",
            "张三 → 张叁",
            "号码变更",
            "110105********002X → 110108********0029",
            "公安变更证明",
            "京公(海)变字2026第0815号",
            "北京市公安局海淀分局",
            "社保更改证明",
            "京社更2026-0042",
            old,
        ):
            assert words in text, words
        assert OLD_ID not in text and NEW_ID not in text

        center = login(db, "maker", Role.CARD_CENTER)
        station = ("--station", str(sim.station_file), "--json")
        stale = sscard("job", "submit", str(job_file(sim.root, old, OLD_ID, "张三")), *station,
                       env=center)  # fmt: skip
        assert stale.returncode == 1 and "换领的新卡须载明变更后的姓名和身份证号码" in stale.stderr
        submitted = sscard("job", "submit", str(job_file(sim.root, old, NEW_ID, "张叁")), *station,
                           env=center)  # fmt: skip
        assert submitted.returncode == 0, submitted.stderr
        job = json.loads(submitted.stdout)["job"]
        run = sscard(*job_run_argv(job, sim.station_file)[3:], env=center)
        assert run.returncode == 0, run.stderr

        with printed_card(sim) as reader:
            read = card_read_json(reader)
    assert (read["name"], read["ssn"]) == ("张叁", NEW_ID)

    registry = open_registry(db)
    try:
        person = registry.person(registry.card(old).person_id)
        assert (person.name, person.ssn) == ("张叁", NEW_ID)
        assert registry.person_by_ssn(OLD_ID) is None
        assert registry.card(old).status == "void" and registry.blacklisted(old)
        (new,) = [c for c in registry.cards_of(person.id) if c.card_number != old]
        assert new.status == "active" and new.card_number == read["card_number"]
        events = [
            json.loads(r["details"])
            for r in registry.db.execute(
                "SELECT details FROM audit_events WHERE action = 'person.identity_change'"
            )
        ]
        assert [(e["name"], e["ssn"]) for e in events] == [
            ("张三 → 张叁", "110105********002X → 110108********0029")
        ]
        assert registry.verify_audit()[1] == []
    finally:
        registry.close()


@pytest.mark.parametrize(
    ("options", "refusal"),
    [
        (("--old-name", "王五", "--old-id", OTHER_ID, "--new-name", "王伍"), "for another person"),
        (("--old-name", "张三", "--old-id", OLD_ID, "--new-id", NEW_ID[:-1] + "8"), "校验位错误"),
        (("--old-name", "张三", "--old-id", OLD_ID, "--new-id", OTHER_ID), "已属于另一参保人"),
        (("--old-name", "张三", "--old-id", OLD_ID, "--new-name", "张三"), "均未改变"),
        (("--old-name", "张三", "--old-id", FIFTEEN, "--new-id", OLD_ID), "不用办理换卡手续"),
    ],
)
def test_a_refused_change_writes_nothing(
    tmp_path: Path, new_db: NewDatabase, options: tuple[str, ...], refusal: str
) -> None:
    db = new_db("registry")
    number = enroll(db)
    enroll(db, OTHER_ID, "王五")
    clerk = login(db, "clerk", Role.COUNTER)
    before = snapshot(db)
    out = tmp_path / "领卡证明.pdf"
    refused = sscard(
        "registry", "change", number, "--db", db, *options, *CERTIFICATE, "--out", str(out),
        env=clerk,
    )  # fmt: skip
    assert refused.returncode == 1 and refusal in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    assert snapshot(db) == before and not out.exists()


def test_a_card_not_active_is_refused_and_nothing_written(
    tmp_path: Path, new_db: NewDatabase
) -> None:
    db = new_db("registry")
    number = enroll(db)
    clerk = login(db, "clerk", Role.COUNTER)
    lost = sscard("registry", "formalize-loss", number, "--db", db, "--evidence", "ID", env=clerk)
    assert lost.returncode == 0, lost.stderr
    before = snapshot(db)
    refused = sscard(
        "registry", "change", number, "--db", db, "--old-name", "张三", "--old-id", OLD_ID,
        "--new-name", "张叁", *CERTIFICATE, "--out", str(tmp_path / "c.pdf"), env=clerk,
    )  # fmt: skip
    assert refused.returncode == 1 and "不能换领：卡片状态为 正式挂失" in refused.stderr
    assert snapshot(db) == before and not (tmp_path / "c.pdf").exists()
