"""What the card center's pages read (personalize/web/center_view.py) and the resume they
offer (``jobs.resume_job``), on a SQLite file and on the tests' PostgreSQL server: the queue
by station, the newest finished jobs first, the stations' heartbeats and faults, the reject
bin; a resumed job is the first its station's worker claims."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from personalize.jobs import JobError, resume_job
from personalize.lifecycle import JobStatus
from personalize.registry import _iso
from personalize.station_worker import claim_next_job
from personalize.web import center_view
from tests.conftest import NewDatabase
from tests.integration.api_fixture import open_registry
from tests.integration.test_console_center import (
    CENTER,
    DONE,
    FAILED,
    PAUSED,
    QUEUED,
    REJECT_REASON,
    RUNNING,
    TO_CANCEL,
    TO_RESUME,
    world,
)


def test_the_center_reads_jobs_by_station_and_a_resumed_job_goes_back_to_its_station(
    new_db: NewDatabase, tmp_path: Path
) -> None:
    db = new_db("center")
    world(db, tmp_path)
    registry = open_registry(db)
    try:
        queue = center_view.queue(registry)
        assert [r.id for r in queue.waiting] == [QUEUED, TO_CANCEL]
        assert {s.station: [r.id for r in s.jobs] for s in queue.stations} == {
            "工位A": [RUNNING], "工位B": [PAUSED], "工位D": [TO_RESUME]
        }  # fmt: skip
        assert [r.id for r in queue.finished] == [FAILED, DONE]  # newest first
        assert queue.more == []
        pause = queue.stations[1].jobs[0].pause
        assert pause is not None and pause.device == "打印机" and "补充空白卡" in pause.recovery
        assert [s.job.id for s in registry.jobs.latest(JobStatus.QUEUED, limit=1)] == [TO_CANCEL]

        stations = {s.name: s for s in center_view.stations(registry)}
        assert sorted(stations) == ["工位A", "工位B", "工位D"]
        assert stations["工位A"].jobs_total == 3 and stations["工位A"].fault is None
        assert stations["工位A"].last_heartbeat == "2026-11-25 17:30:00"  # UTC+8
        assert stations["工位B"].fault is not None and stations["工位B"].state.startswith("暂停")
        [reject] = center_view.rejects(registry)
        assert (reject.job_id, reject.kind, reject.reason) == (FAILED, "进废卡箱", REJECT_REASON)

        with pytest.raises(JobError, match="只有暂停的作业可以恢复执行"):
            resume_job(registry, QUEUED, operator=CENTER)
        job = resume_job(registry, PAUSED, operator=CENTER)
        assert (job.status, job.station) == (JobStatus.RUNNING, "工位B")
        assert job.lease_until == _iso(registry.clock())  # run out: for a station to take
        claim = claim_next_job(
            registry, "工位B", region=registry.policy.region_code, printer="EVO-1",
            lease=timedelta(minutes=10), operator=CENTER,
        )  # fmt: skip
        assert claim is not None and claim.job_id == PAUSED  # its own station's, first
    finally:
        registry.close()


@pytest.mark.parametrize(
    ("reason", "device", "says"),
    [
        ("FeederEmpty: 进卡器无卡 (printer: feeder empty; NACK F)", "打印机", "补充空白卡"),
        ("CommandRejected: printer: command error (NACK 1)", "打印机", "重置设备"),
        ("MagError: printer: magnetic write error (NACK W)", "打印机", "卡片位置或介质状态不明"),
        ("DeviceTimeout: no answer", "设备串口", "卡片位置或介质状态不明"),
        ("ReaderUnavailable: reader gone", "接触式读卡器", "按原因处理设备"),
        ("SecurityModuleUnavailable: refused", "安全模块", "按原因处理设备"),
        ("KeyboardInterrupt: ", None, "请查明原因并处理"),
        (None, None, "请查明原因并处理"),
    ],
)
def test_a_pause_reason_leads_to_its_devices_recovery(
    reason: str | None, device: str | None, says: str
) -> None:
    pause = center_view.pause_of(reason, "工位A")
    assert pause.device == device and says in pause.recovery
    assert "恢复执行" in pause.recovery and "工位A" in pause.recovery
