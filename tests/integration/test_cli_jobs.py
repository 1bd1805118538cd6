"""``sscard job list`` and ``job show`` as the workshop reads them: a header, the holder
masked, old and new card numbers, station, times in the region's zone, status and reason —
never ``None``. The registry is a real SQLite file with a pinned clock; the commands run as
subprocesses."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from personalize.jobs import claim_job, submit_job
from personalize.policy import load_policy
from personalize.registry import Registry
from personalize.trackvault import TrackVault
from simulator.factory import sample_photo
from sscard.profile import load_profile
from sscard.records import HolderData
from tests.audit_key import AUDIT_KEY
from tests.cli import run_sscard

POLICY = load_policy("default")
# 20:30 UTC on 26 November is 04:30 on the 27th in Shanghai (UTC+8).
SUBMITTED = datetime(2026, 11, 26, 20, 30, tzinfo=UTC)
PAUSED = datetime(2026, 11, 26, 21, 5, tzinfo=UTC)
SSN = "110105194912310046"  # GB 11643 check character 6; 17th digit even: female
MASKED = "110105********0046"
REASON = "打印机盖板打开 (printer cover open)"


def sscard(*args: str) -> subprocess.CompletedProcess[str]:
    return run_sscard(*args, timeout=60)


@pytest.fixture
def db(tmp_path: Path) -> tuple[Path, str]:
    """Two jobs: one queued, one paused with a reason, claimed by station 工位A."""
    now = [SUBMITTED]
    path = tmp_path / "registry.db"
    registry = Registry(path, POLICY, clock=lambda: now[0], audit_key=AUDIT_KEY)
    vault = TrackVault.create(tmp_path / "tracks.key")
    (tmp_path / "photo.jpg").write_bytes(sample_photo())
    numbers = []
    for ssn, name, gender in (("110105194912310011", "张三", "1"), (SSN, "欧阳娜娜", "2")):
        number = registry.allocate_card_number()
        holder = {
            "ssn": ssn,
            "name": name,
            "gender": gender,
            "ethnicity": "01",
            "birthplace": "110105",
            "birth_date": "1949-12-31",
        }
        registry.enroll(
            HolderData(ssn, name, gender, "01", "110105", date(1949, 12, 31)),
            number,
            operator="op",
        )
        registry.formalize_loss(number, operator="op", evidence="ID")
        registry.request_reissue(number, operator="op")
        submit_job(
            registry,
            load_profile("default"),
            vault,
            {"old_card_number": number, "holder": holder, "photo": "photo.jpg"},
            base_dir=tmp_path,
            operator="op",
        )
        numbers.append(number)
    now[0] = PAUSED
    claim_job(registry, 2, "工位A")
    with registry.transaction() as conn:  # what the runner records when it pauses
        conn.execute(
            "UPDATE jobs SET status = 'paused', last_error = ?, updated_at = ? WHERE id = 2",
            (REASON, PAUSED.isoformat()),
        )
    registry.close()
    return path, numbers[1]


def test_job_list_has_a_header_masked_holders_numbers_station_times_and_reason(
    db: tuple[Path, str],
) -> None:
    path, second_number = db
    result = sscard("job", "list", "--db", str(path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    header = lines[0]
    for column in ("作业", "状态", "持卡人", "旧卡号", "新卡号", "工作站", "创建", "更新", "原因"):
        assert column in header
    paused = lines[2]
    assert "欧***" in paused and "欧阳娜娜" not in paused
    assert MASKED in paused and SSN not in result.stdout
    assert second_number in paused
    assert "工位A" in paused and REASON in paused
    assert "2026-11-27 04:30" in paused and "2026-11-27 05:05" in paused
    assert "已暂停" in paused
    assert "张*" in lines[1] and "排队" in lines[1]
    assert "None" not in result.stdout

    listed = json.loads(sscard("job", "list", "--db", str(path), "--json").stdout)["jobs"]
    assert [j["job"] for j in listed] == [1, 2]
    job = listed[1]
    assert job["holder"] == "欧***" and job["ssn"] == MASKED
    assert job["old_card_number"] == second_number and job["new_card_number"] is None
    assert job["station"] == "工位A" and job["status"] == "paused"
    assert job["status_name"] == "已暂停" and job["reason"] == REASON
    assert job["created_at"] == "2026-11-27T04:30:00+08:00"
    assert job["updated_at"] == "2026-11-27T05:05:00+08:00"


def test_job_show_names_the_reason_never_none(db: tuple[Path, str]) -> None:
    path, second_number = db
    paused = sscard("job", "show", "2", "--db", str(path))
    assert paused.returncode == 0, paused.stderr
    assert REASON in paused.stdout and "已暂停" in paused.stdout
    assert second_number in paused.stdout and "欧***" in paused.stdout
    assert "None" not in paused.stdout
    queued = sscard("job", "show", "1", "--db", str(path))
    assert queued.returncode == 0, queued.stderr
    assert "None" not in queued.stdout and "排队" in queued.stdout
    shown = json.loads(sscard("job", "show", "2", "--db", str(path), "--json").stdout)
    assert shown["reason"] == REASON and shown["holder"] == "欧***"
    missing = sscard("job", "show", "9", "--db", str(path))
    assert missing.returncode == 1 and missing.stderr.startswith("错误：")


def test_job_list_pages_by_cursor_and_filters_by_status(db: tuple[Path, str]) -> None:
    path, _ = db

    def page(*args: str) -> Any:
        result = sscard("job", "list", "--db", str(path), "--json", *args)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    first = page("--limit", "1")
    assert [j["job"] for j in first["jobs"]] == [1] and first["next"] == "1"
    second = page("--limit", "1", "--after", "1")
    assert [j["job"] for j in second["jobs"]] == [2] and second["next"] is None
    paused = page("--status", "paused")
    assert [j["job"] for j in paused["jobs"]] == [2]
    text = sscard("job", "list", "--db", str(path), "--limit", "1")
    assert text.stdout.splitlines()[-1] == "下一页 next page: --after 1"
    bad = sscard("job", "list", "--db", str(path), "--after", "x")
    assert bad.returncode != 0 and "--after" in bad.stderr
    empty = sscard("job", "list", "--db", str(path), "--limit", "0")
    assert empty.returncode != 0 and "--limit" in empty.stderr
