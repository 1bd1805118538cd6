"""``make demo`` / ``sscard demo``: one person's lost card replaced on the simulated station.

Starts the station (pcscd + vpcd, the Evolis printer emulator with its contact station and a
feeder of blank 社保卡, the security module with the test keys on loopback, a SQLite
registry), then walks 张三 through 预挂失 → 正式挂失 → 补卡申请 (领卡证明 PDF) → the
personalization job (chip, stripe, face, activation) and reads the new card back through
pcscd. Leaves in ``out/``: the 领卡证明, the printed card's PNG, the face proof, the job's
step log and ``summary.json``.

Time is the caller's: ``sscard demo`` starts the registry's clock at a fixed instant
(``--at``, default 2026-11-25T09:30+08:00) so that the documents are the same whatever the
day the demo is run, and the default policy's holiday calendar covers the dates it computes.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from apdu.pcsc import PcscReader
from personalize.documents import collection_certificate, collection_certificate_pdf
from personalize.jobs import JobRunner, StationDevices, submit_job
from personalize.policy import RegionPolicy, load_policy
from personalize.registry import Clock
from personalize.station import StationConfig
from personalize.trackvault import TrackVault
from printer.evolis import EvolisPrinter
from printer.tracks import Track2, Track3
from simulator.factory import SAMPLE_HOLDER, sample_photo
from simulator.station import SimulatedStation
from sscard.profile import load_profile

OPERATOR = "demo-op-01"
HOLDER = replace(SAMPLE_HOLDER, name="张三")
PAN = "6217991234567890123"


def _say(n: int, text: str) -> None:
    print(f"[{n}] {text}", flush=True)


def running_from(start: datetime) -> Clock:
    """A clock that reads ``start`` (aware) now and runs on with the machine's monotonic
    clock: fixed dates, real durations."""
    start = start.astimezone(UTC)
    origin = time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - origin)


def run_demo(out: Path, *, clock: Clock, policy: RegionPolicy | None = None) -> int:
    """Run the demo; ``clock`` gives the registry's time, ``policy`` the region's rules
    (the shipped default unless given)."""
    started = time.monotonic()
    station_dir = out / "station"
    if station_dir.exists():
        shutil.rmtree(station_dir)
    out.mkdir(parents=True, exist_ok=True)
    policy = policy or load_policy("default")
    profile = load_profile(policy.profile)
    timings: dict[str, float] = {}
    with SimulatedStation(station_dir, profile, policy.region_code) as sim:
        assert sim.printer is not None
        config = StationConfig.load(sim.station_file)
        registry = config.open_registry(policy, create=True, clock=clock)
        _say(
            1,
            f"模拟工位已启动 station up: printer {sim.printer.path}, contact reader "
            f"{config.contact_reader}, HSM {config.hsm}",
        )
        old = registry.enroll(
            HOLDER,
            registry.allocate_card_number(),
            operator=OPERATOR,
            sn="0000000000000001",
            issued_on=date(2016, 5, 20),
        )
        _say(2, f"登记 {HOLDER.name} 的旧卡 {old.card_number}（正常）")
        registry.report_loss(old.card_number, operator=OPERATOR, channel="12333 电话")
        lapse_at = registry.card(old.card_number).lapse_at
        assert lapse_at is not None
        lapse = policy.local_time(datetime.fromisoformat(lapse_at))
        _say(3, f"预挂失 provisional loss — {lapse:%Y-%m-%d %H:%M} 前未正式挂失则自动解除")
        registry.formalize_loss(old.card_number, operator=OPERATOR, evidence="居民身份证原件已核验")
        _say(4, "正式挂失 formal loss（居民身份证原件已核验）")
        request = registry.request_reissue(old.card_number, operator=OPERATOR, counter="3号窗口")
        cert_path = out / f"领卡证明-{request.id:06d}.pdf"
        cert_path = collection_certificate_pdf(
            collection_certificate(registry, request.id), cert_path
        )
        _say(5, f"补卡申请 reissue request；领卡日期 {request.collect_on}；{cert_path}")
        photo_path = station_dir / "photo.jpg"
        photo_path.write_bytes(sample_photo("张三"))
        submission: dict[str, Any] = {
            "old_card_number": old.card_number,
            "holder": {
                **{
                    k: getattr(HOLDER, k)
                    for k in ("ssn", "name", "gender", "ethnicity", "birthplace")
                },
                "birth_date": HOLDER.birth_date.isoformat(),
            },
            "photo": photo_path.name,
            "tracks": {
                "2": Track2(PAN, "3611", "120", "0000").build(),
                "3": Track3(PAN, rest="000000").build(),
            },
        }
        vault = TrackVault.from_file(config.track_key)
        job_id = submit_job(
            registry, profile, vault, submission, base_dir=station_dir, operator=OPERATOR
        )
        _say(6, f"制卡作业 {job_id} 已提交 job submitted")
        hsm = config.security_module()
        step_started = [time.monotonic()]
        last = [""]

        def progress(text: str) -> None:
            now = time.monotonic()
            if last[0]:
                timings[last[0]] = round((now - step_started[0]) * 1000, 1)
            last[0] = text.split()[-1]
            step_started[0] = now
            print(f"      {text}", flush=True)

        assert config.printer is not None and config.contact_reader is not None
        with (
            EvolisPrinter(config.printer) as printer,
            PcscReader(config.contact_reader) as reader,
        ):
            runner = JobRunner(
                registry,
                policy,
                profile,
                StationDevices(printer, reader, hsm, vault, config.out_dir, config.name),
                operator=OPERATOR,
                progress=progress,
            )
            job = runner.run(job_id)
        timings[last[0]] = round((time.monotonic() - step_started[0]) * 1000, 1)
        hsm.close()
        assert job.new_card_id is not None
        new = registry.card_by_id(job.new_card_id)
        _say(7, f"新卡 {new.card_number} 已启用 active；旧卡 {old.card_number} 已注销并列入黑名单")
        card = sim.printer.hopper[-1]
        assert card.printed is not None
        read_back = sim.read_printed_card()
        _say(
            8,
            f"读卡核对 read back: {read_back['name']} {read_back['card_number']} "
            f"checks {read_back['checks']}",
        )
        card.printed.save(out / "printed-card.png")
        shutil.copy(config.out_dir / f"job-{job_id}" / "卡面校样.pdf", out / "卡面校样.pdf")
        steps = [
            {
                "step": s.step,
                "result": str(s.result),
                "sn": s.sn,
                "at": s.at,
                "details": json.dumps(s.details, ensure_ascii=False),
            }
            for s in registry.jobs.steps(job_id)
        ]
        (out / "job-steps.json").write_text(
            json.dumps(steps, ensure_ascii=False, indent=2), encoding="utf-8"
        )
        events, problems = registry.verify_audit()
        summary = {
            "person": HOLDER.name,
            "old_card": {
                "number": old.card_number,
                "status": registry.card(old.card_number).status,
                "blacklisted": registry.blacklisted(old.card_number),
            },
            "new_card": {"number": new.card_number, "status": new.status, "sn": new.sn},
            "read_back": read_back,
            "collection_certificate": cert_path.name,
            "printed_card": "printed-card.png",
            "step_ms": timings,
            "audit": {"events": events, "intact": not problems},
            "seconds": round(time.monotonic() - started, 1),
        }
        (out / "summary.json").write_text(
            json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8"
        )
        registry.close()
    _say(
        9,
        f"完成 done in {summary['seconds']} s — {out}/: {cert_path.name}, printed-card.png, "
        "卡面校样.pdf, job-steps.json, summary.json",
    )
    return 0
