"""File paths in a job file are confined to the job file's directory: ``photo`` may not be
absolute, climb out with ``..``, or follow a symlink out — a clear error, nothing written.
The registry is a real SQLite file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from personalize.jobs import JobError, submit_job
from personalize.policy import load_policy
from personalize.registry import Registry
from personalize.trackvault import TrackVault
from simulator.factory import SAMPLE_HOLDER, sample_photo
from sscard.profile import load_profile
from tests.audit_key import AUDIT_KEY
from tests.clock import pinned_clock
from tests.conftest import NewDatabase

POLICY = load_policy("default")
PROFILE = load_profile("default")


@pytest.fixture
def jobs(tmp_path: Path, new_db: NewDatabase) -> tuple[Registry, TrackVault, str, Path]:
    """A reissue request ready for a job; the job file's directory is ``tmp_path/jobs``, a
    good photo lies outside it at ``tmp_path/secret/photo.jpg``."""
    registry = Registry(new_db("r"), POLICY, clock=pinned_clock, audit_key=AUDIT_KEY)
    number = registry.allocate_card_number()
    registry.enroll(SAMPLE_HOLDER, number, operator="op")
    registry.formalize_loss(number, operator="op", evidence="ID")
    registry.request_reissue(number, operator="op")
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "photo.jpg").write_bytes(sample_photo())
    (tmp_path / "jobs" / "photos").mkdir(parents=True)
    (tmp_path / "jobs" / "photos" / "inside.jpg").write_bytes(sample_photo())
    return registry, TrackVault.create(tmp_path / "tracks.key"), number, tmp_path / "jobs"


def job(number: str, photo: str) -> dict[str, Any]:
    return {
        "old_card_number": number,
        "holder": {
            "ssn": SAMPLE_HOLDER.ssn,
            "name": SAMPLE_HOLDER.name,
            "gender": SAMPLE_HOLDER.gender,
            "ethnicity": SAMPLE_HOLDER.ethnicity,
            "birthplace": SAMPLE_HOLDER.birthplace,
            "birth_date": SAMPLE_HOLDER.birth_date.isoformat(),
        },
        "photo": photo,
    }


def outside_cases(tmp_path: Path) -> list[str]:
    base = tmp_path / "jobs"
    os.symlink(tmp_path / "secret" / "photo.jpg", base / "link.jpg")
    os.symlink(tmp_path / "secret", base / "photos" / "dir")
    return [
        str(tmp_path / "secret" / "photo.jpg"),  # absolute
        "../secret/photo.jpg",
        "photos/../../secret/photo.jpg",
        "link.jpg",  # a symlink out of the directory
        "photos/dir/photo.jpg",  # through a symlinked directory
    ]


def test_photo_paths_outside_the_job_directory_are_refused(
    jobs: tuple[Registry, TrackVault, str, Path], tmp_path: Path
) -> None:
    registry, vault, number, base = jobs
    before = registry.db.execute("SELECT COUNT(*) FROM audit_events").fetchone()[0]
    for photo in outside_cases(tmp_path):
        with pytest.raises(JobError, match="照片路径须在作业文件所在目录内") as info:
            submit_job(registry, PROFILE, vault, job(number, photo), base_dir=base, operator="op")
        assert "Traceback" not in str(info.value)
    assert registry.db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 0
    assert registry.db.execute("SELECT COUNT(*) FROM audit_events").fetchone()[0] == before


@pytest.mark.parametrize("photo", ["photos/./inside.jpg", "photos/x/../inside.jpg", "alias.jpg"])
def test_photo_paths_inside_the_job_directory_are_read(
    jobs: tuple[Registry, TrackVault, str, Path], photo: str
) -> None:
    registry, vault, number, base = jobs
    (base / "photos" / "x").mkdir()
    os.symlink(base / "photos" / "inside.jpg", base / "alias.jpg")  # stays inside
    job_id = submit_job(registry, PROFILE, vault, job(number, photo), base_dir=base, operator="op")
    assert registry.job_photo(job_id) == sample_photo()
