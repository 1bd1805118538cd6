"""The checkpoint log is MACed and opened before the transaction commits: a log that cannot
be written refuses the change (nothing is committed without its checkpoint), and its lines
are appended with mode 0600."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from personalize.policy import load_policy
from personalize.registry import Registry
from simulator.factory import SAMPLE_HOLDER
from tests.audit_key import AUDIT_KEY
from tests.clock import pinned_clock

POLICY = load_policy("default")


def test_an_unwritable_checkpoint_log_refuses_the_change(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    registry = Registry(path, POLICY, clock=pinned_clock, audit_key=AUDIT_KEY)
    registry.enroll(SAMPLE_HOLDER, "H00000012", operator="op1")
    log = Path(f"{path}.checkpoints")
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert [json.loads(line)["event"] for line in log.read_text().splitlines()] == [1]
    elsewhere = Registry(
        path,
        POLICY,
        clock=pinned_clock,
        audit_key=AUDIT_KEY,
        checkpoints=tmp_path / "missing-dir" / "checkpoints",
    )
    with pytest.raises(FileNotFoundError):
        elsewhere.report_loss("H00000012", operator="op1")
    assert elsewhere.card("H00000012").status == "active"
    assert registry.verify_audit() == (1, [])
