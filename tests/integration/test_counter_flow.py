"""The counter's day end to end, as operators type it — every step a ``sscard`` subprocess
with the clock pinned (faketime), on the simulated station (pyscard → pcscd → vpcd, a real
printer pty, a real SQLite file):

enroll H00000012 (the README's example) and its neighbours → 预挂失 → 正式挂失 → 补卡申请
(领卡证明) → job submit → the station crashes mid-job → job cancel → resubmit → run →
activation. After each step the registry (card, request and job statuses), the audit chain
and the documents are checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from personalize.policy import load_policy
from personalize.registry import Registry
from personalize.roles import Role
from personalize.station import StationConfig
from simulator.factory import SAMPLE_HOLDER, sample_photo
from simulator.station import SimulatedStation
from sscard.identifiers import card_number_check, ssn_check
from sscard.profile import load_profile
from tests import kill_after_step
from tests.audit_key import AUDIT_KEY
from tests.clock import FAKETIME_ENV
from tests.operators import confirm, login

pytestmark = pytest.mark.pcsc
POLICY = load_policy("default")
PROFILE = load_profile("default")
NOW = "2026-11-25 09:30:00"  # Wednesday 17:30 in Shanghai; 15 working days on: 2026-12-16
OLD = "H00000012"
PINNED = FAKETIME_ENV  # libfaketime in the sscard process; "@" keeps the clock running


def card_number(serial: int) -> str:
    first8 = f"H{serial:07d}"
    return first8 + card_number_check(first8)


def pdftext(path: Path) -> str:
    return subprocess.run(
        ["pdftotext", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


@dataclass
class Counter:
    sim: SimulatedStation
    config: StationConfig
    session: dict[str, str]  # op7's (sscard login)

    def sscard(self, *args: str, env: dict[str, str] | None = None) -> dict[str, object]:
        """Run ``sscard ARGS --json`` at the pinned time; its JSON answer."""
        done = subprocess.run(
            [sys.executable, "-m", "personalize.cli", *args, "--json"],
            capture_output=True,
            text=True,
            timeout=180,
            env={
                **os.environ, **PINNED, "SSCARD_DB": str(self.config.registry), **self.session,
                **(env or {}),
            },
        )  # fmt: skip
        assert done.returncode == 0, (args, done.stderr)
        answer: dict[str, object] = json.loads(done.stdout)
        return answer

    def registry(self) -> Registry:
        return Registry(self.config.registry, POLICY, audit_key=AUDIT_KEY)

    def state(self) -> dict[str, object]:
        """Statuses of every card, request and job, and the audit chain's verdict."""
        registry = self.registry()
        try:
            cards = {
                r["card_number"]: r["status"]
                for r in registry.db.execute("SELECT card_number, status FROM cards ORDER BY id")
            }
            requests = [
                (r["status"], r["job_id"])
                for r in registry.db.execute("SELECT * FROM reissue_requests ORDER BY id")
            ]
            jobs = [r["status"] for r in registry.db.execute("SELECT * FROM jobs ORDER BY id")]
            return {
                "cards": cards,
                "requests": requests,
                "jobs": jobs,
                "blacklist": sorted(
                    r[0] for r in registry.db.execute("SELECT card_number FROM blacklist")
                ),
                "audit": registry.verify_audit()[1],
            }
        finally:
            registry.close()


@pytest.fixture
def counter(tmp_path: Path) -> Iterator[Counter]:
    with SimulatedStation(tmp_path / "station", PROFILE, POLICY.region_code, cards=4) as sim:
        config = StationConfig.load(sim.station_file)
        yield Counter(sim, config, login(config.registry, "op7", Role.SUPERVISOR))


def enroll(counter: Counter, n: int, number: str) -> None:
    first17 = SAMPLE_HOLDER.ssn[:14] + f"{n:03d}"
    holder = replace(SAMPLE_HOLDER, ssn=first17 + ssn_check(first17), gender=str(2 - n % 2))
    if n == 2:
        holder = SAMPLE_HOLDER  # 张三, whose card is lost
    person = {
        **{k: getattr(holder, k) for k in ("ssn", "name", "gender", "ethnicity", "birthplace")},
        "birth_date": holder.birth_date.isoformat(),
        "card_number": number,
    }
    path = counter.sim.root / f"person-{n}.json"
    path.write_text(json.dumps(person, ensure_ascii=False), encoding="utf-8")
    counter.sscard("registry", "enroll", str(path))


def test_the_counter_day_end_to_end(counter: Counter) -> None:
    c = counter
    neighbours = {card_number(2): "active", card_number(3): "active", card_number(5): "active"}
    # enroll: H00000012 (serial 1, the allocator's first number) and numbers around it
    enroll(c, 2, OLD)
    for n, number in zip((1, 3, 5), neighbours, strict=True):
        enroll(c, n, number)
    assert c.state() == {
        "cards": {OLD: "active", **neighbours},
        "requests": [],
        "jobs": [],
        "blacklist": [],
        "audit": [],
    }

    # 预挂失 by phone, then 正式挂失 at the counter
    lost = c.sscard("registry", "report-loss", OLD, "--channel", "12333")
    # 3 working days after Wed 11-25 17:30 Shanghai: Mon 11-30, same time of day (the pinned
    # clock runs on, so the seconds depend on how long the command took to start)
    assert lost["status"] == "provisional_loss"
    assert lost["lapse_at"].startswith("2026-11-30T17:3") and lost["lapse_at"].endswith("+08:00")
    formal = c.sscard("registry", "formalize-loss", OLD, "--evidence", "居民身份证原件")
    assert formal["status_name"] == "正式挂失"
    assert c.state()["cards"] == {OLD: "formal_loss", **neighbours}

    # 补卡申请 and its 领卡证明
    cert_path = c.sim.root / "领卡证明.pdf"
    request = c.sscard(
        "registry", "request-reissue", OLD, "--counter", "3号窗口",
        "--out", str(cert_path),
    )  # fmt: skip
    assert request["request_no"] == "SSCARD-REQ-000001" and request["collect_on"] == "2026-12-16"
    assert request["certificate"] == str(cert_path)
    cert = pdftext(cert_path)
    for words in (
        "社会保障卡领卡证明",
        "SSCARD-REQ-000001",
        "张三",
        "110105********002X",
        OLD,
        "2026年11月25日",
        "2026年12月16日 起",
        "20 元",
        "3号窗口",
        "op7",
        "申请人签字",
        "经办人签字",
        "（印章）",
        "服务电话：12333",
        POLICY.authority,
    ):
        assert words in cert, words  # fmt: skip
    state = c.state()
    assert state["cards"] == {OLD: "reissue_pending", **neighbours}
    assert state["requests"] == [("open", None)] and state["audit"] == []

    # the job, and the station dies right after feeding the first card
    job_file = c.sim.root / "job.json"
    (c.sim.root / "photo.jpg").write_bytes(sample_photo("张三"))
    holder = {k: getattr(SAMPLE_HOLDER, k) for k in ("ssn", "name", "gender", "ethnicity")}
    job_file.write_text(
        json.dumps(
            {
                "old_card_number": OLD,
                "holder": {**holder, "birthplace": "110105", "birth_date": "1949-12-31"},
                "photo": "photo.jpg",
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    station = ("--station", str(c.sim.station_file))
    assert c.sscard("job", "submit", str(job_file), *station)["job"] == 1
    assert c.state()["requests"] == [("in_job", 1)]
    crashed = subprocess.run(
        kill_after_step.argv("feed", "job", "run", "1", *station),
        capture_output=True, text=True, timeout=180,
        env={**os.environ, **PINNED, **c.session},
    )  # fmt: skip
    assert crashed.returncode == -9, crashed.stderr
    first_new = card_number(4)  # 1, 2, 3 and 5 are enrolled
    state = c.state()
    assert state["jobs"] == ["running"]
    assert state["cards"] == {OLD: "reissue_pending", **neighbours, first_new: "personalizing"}

    # cancel the crashed job from its own station: the request is open again
    cancelled = c.sscard(
        "job", "cancel", "1", "--reason", "工位死机，重新制卡",
        "--station-name", c.config.name, *confirm(c.config.registry),
    )  # fmt: skip
    assert cancelled["status"] == "cancelled"
    state = c.state()
    assert state["cards"] == {OLD: "reissue_pending", **neighbours, first_new: "rejected"}
    assert state["requests"] == [("open", 1)] and state["jobs"] == ["cancelled"]
    assert state["blacklist"] == [first_new]  # the fed card got its SN: never valid
    assert state["audit"] == []

    # resubmit for the same request, run it to the end
    assert c.sscard("job", "submit", str(job_file), *station)["job"] == 2
    assert c.state()["requests"] == [("in_job", 2)]
    done = c.sscard("job", "run", "2", *station)
    assert done["status"] == "done"
    new = card_number(6)  # 4 was released: never reused
    state = c.state()
    assert state["cards"] == {
        OLD: "void",
        **neighbours,
        first_new: "rejected",
        new: "active",
    }
    assert state["requests"] == [("done", 2)] and state["jobs"] == ["cancelled", "done"]
    assert state["blacklist"] == sorted([first_new, OLD]) and state["audit"] == []
    shown = c.sscard("registry", "show", new)
    assert shown["name"] == "张三" and shown["status_name"] == "正常"
    proof = pdftext(c.config.out_dir / "job-2" / "卡面校样.pdf")
    assert new in proof and "张三" in proof
    back = c.sim.read_printed_card(0)
    assert back["card_number"] == new and back["name"] == "张三"

    # the 领卡证明 again, from the registry
    op8 = login(c.config.registry, "op8", Role.COUNTER)
    reprint = c.sscard("registry", "reprint", "SSCARD-REQ-000001", "--out", str(cert_path),
                       *confirm(c.config.registry), env=op8)  # fmt: skip
    assert reprint["file"] == str(c.sim.root / "领卡证明-2.pdf")
    again = pdftext(Path(str(reprint["file"])))
    assert "补打 2026年11月25日 17:30" in again and "2026年12月16日 起" in again
    assert c.sscard("audit", "verify")["problems"] == []
