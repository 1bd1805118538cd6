"""Job submission validates everything up front; bad input is a clear error and writes
nothing. Track images are sealed at rest."""

from __future__ import annotations

import base64
import io
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from personalize.jobs import JobError, next_step, submit_job
from personalize.policy import PolicyError, load_policy
from personalize.registry import Registry
from personalize.trackvault import TrackVault, VaultError
from simulator.factory import SAMPLE_HOLDER, sample_photo
from sscard.profile import load_profile
from tests.audit_key import AUDIT_KEY
from tests.clock import pinned_clock
from tests.conftest import NewDatabase

POLICY = load_policy("default")
PROFILE = load_profile("default")
T2 = "6217991234567890123=3611120"


@pytest.fixture
def setup(tmp_path: Path, new_db: NewDatabase) -> tuple[Registry, TrackVault, str]:
    registry = Registry(new_db("r"), POLICY, clock=pinned_clock, audit_key=AUDIT_KEY)
    number = registry.allocate_card_number()
    registry.enroll(SAMPLE_HOLDER, number, operator="op")
    registry.formalize_loss(number, operator="op", evidence="ID")
    registry.request_reissue(number, operator="op")
    (tmp_path / "photo.jpg").write_bytes(sample_photo())
    return registry, TrackVault.create(tmp_path / "tracks.key"), number


def submission(number: str, **changes: Any) -> dict[str, Any]:
    holder = {
        "ssn": SAMPLE_HOLDER.ssn,
        "name": "张三",
        "gender": "2",
        "ethnicity": "01",
        "birthplace": "110105",
        "birth_date": "1949-12-31",
    }
    holder.update(changes.pop("holder", {}))
    return {
        "old_card_number": number,
        "holder": holder,
        "photo": "photo.jpg",
        "tracks": {"2": T2},
        **changes,
    }


def test_a_good_job_is_queued_with_sealed_tracks(
    setup: tuple[Registry, TrackVault, str], tmp_path: Path
) -> None:
    registry, vault, number = setup
    job_id = submit_job(
        registry, PROFILE, vault, submission(number), base_dir=tmp_path, operator="op"
    )
    job = registry.db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
    assert job["status"] == "queued"
    assert T2.encode() not in bytes(job["tracks"])  # sealed at rest
    assert vault.open(bytes(job["tracks"]), f"job-{job_id}") == {2: T2}
    with pytest.raises(VaultError):
        vault.open(bytes(job["tracks"]), "job-999")  # bound to its job
    with pytest.raises(JobError, match=r"no open reissue request.*job 1 is queued: run or cancel"):
        submit_job(registry, PROFILE, vault, submission(number), base_dir=tmp_path, operator="op")


def _png() -> str:
    buf = io.BytesIO()
    Image.new("RGB", (150, 180)).save(buf, format="PNG")
    return "base64:" + base64.b64encode(buf.getvalue()).decode()


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"holder": {"ssn": "110105194912310021"}}, "校验位"),
        ({"old_card_number": "H99999999"}, "unknown card number"),
        ({"holder": {"name": "王𪚥"}}, "U\\+2A6A5"),
        ({"photo": "base64:" + base64.b64encode(b"\xff\xd8" + bytes(5000)).decode()}, "上限"),
        ({"photo": _png()}, "JPEG"),
        ({"photo": "missing.jpg"}, "not found"),
        ({"tracks": {"2": "12AB"}}, "track 2"),
        ({"holder": {"birth_date": "1949-13-01"}}, "birth_date"),
        ({"holder": {"gender": None}}, "性别"),
    ],
)
def test_bad_input_writes_nothing(
    setup: tuple[Registry, TrackVault, str],
    tmp_path: Path,
    changes: dict[str, Any],
    reason: str,
) -> None:
    registry, vault, number = setup
    before = registry.verify_audit()[0]
    with pytest.raises(JobError, match=reason):
        submit_job(
            registry,
            PROFILE,
            vault,
            submission(number, **changes),
            base_dir=tmp_path,
            operator="op",
        )
    assert registry.db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 0
    assert registry.verify_audit()[0] == before


def test_old_card_not_formally_lost(tmp_path: Path, new_db: NewDatabase) -> None:
    registry = Registry(new_db("r"), POLICY, audit_key=AUDIT_KEY)
    number = registry.allocate_card_number()
    registry.enroll(replace(SAMPLE_HOLDER), number, operator="op")
    (tmp_path / "photo.jpg").write_bytes(sample_photo())
    with pytest.raises(JobError, match="正式挂失"):
        submit_job(
            registry,
            PROFILE,
            TrackVault.create(tmp_path / "k"),
            submission(number),
            base_dir=tmp_path,
            operator="op",
        )


def test_expired_policy_date_math_writes_nothing(new_db: NewDatabase) -> None:
    expired = replace(POLICY, valid_until=date(2026, 1, 31))
    registry = Registry(new_db("r"), expired, clock=pinned_clock, audit_key=AUDIT_KEY)
    number = registry.allocate_card_number()
    registry.enroll(SAMPLE_HOLDER, number, operator="op")
    with pytest.raises(PolicyError, match="valid until 2026-01-31"):
        registry.report_loss(number, operator="op")  # the lapse deadline needs the calendar
    assert registry.card(number).status == "active"
    registry.formalize_loss(number, operator="op", evidence="ID")
    before = registry.verify_audit()[0]
    with pytest.raises(PolicyError, match="valid until 2026-01-31"):
        registry.request_reissue(number, operator="op")
    assert registry.card(number).status == "formal_loss"
    assert registry.verify_audit()[0] == before
    assert registry.db.execute("SELECT COUNT(*) FROM reissue_requests").fetchone()[0] == 0


def test_resume_points() -> None:
    assert next_step(set()) == "feed"
    assert next_step({"feed"}) == "chip_write"
    assert next_step({"feed", "chip_write"}) == "chip_write"  # never from the last step sent
    assert next_step({"feed", "chip_write", "chip_verify"}) == "encode_stripe"
    assert next_step({"feed", "chip_verify", "encode_stripe"}) == "encode_stripe"
    assert next_step({"feed", "chip_verify", "stripe_verify"}) == "print_face"
    assert next_step({"feed", "chip_verify", "stripe_verify", "print_face"}) == "activate"
    assert next_step({"feed", "chip_verify", "stripe_verify", "print_face", "activate"}) is None


def test_vault_key_file(tmp_path: Path) -> None:
    with pytest.raises(VaultError):
        TrackVault.from_file(tmp_path / "none.key")
    (tmp_path / "short.key").write_text("00ff")
    with pytest.raises(VaultError):
        TrackVault.from_file(tmp_path / "short.key")
    vault = TrackVault.create(tmp_path / "ok.key")
    assert (tmp_path / "ok.key").stat().st_mode & 0o077 == 0
    assert "key" in repr(vault) and (tmp_path / "ok.key").read_text() not in repr(vault)
