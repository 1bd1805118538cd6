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


def test_the_log_is_read_from_an_offset_in_complete_lines(tmp_path: Path) -> None:
    """``audit verify`` reads the log from where it last stopped; a line being appended
    (no newline yet) is read next time, with its line number."""
    path = tmp_path / "r.db"
    registry = Registry(path, POLICY, clock=pinned_clock, audit_key=AUDIT_KEY)
    registry.enroll(SAMPLE_HOLDER, "H00000012", operator="op1")
    registry.report_loss("H00000012", operator="op1")
    log = registry.checkpoints
    whole = log.read(AUDIT_KEY)
    assert [cp.event for cp in whole.checkpoints] == [1, 2] and whole.lines == 2
    line = json.dumps({**json.loads(log.path.read_text().splitlines()[0]), "mac": "00"})
    with log.path.open("a") as fh:
        fh.write(line[:10])
    partial = log.read(AUDIT_KEY, whole.offset, whole.lines)
    assert (partial.checkpoints, partial.problems, partial.offset) == ([], [], whole.offset)
    with log.path.open("a") as fh:
        fh.write(line[10:] + "\n")
    rest = log.read(AUDIT_KEY, whole.offset, whole.lines)
    assert len(rest.problems) == 1 and "checkpoint line 3: its MAC does not" in rest.problems[0]
    assert (rest.offset, rest.lines) == (log.path.stat().st_size, 3)
    shorter = log.read(AUDIT_KEY, log.path.stat().st_size + 1, 4)
    assert "is shorter than when last verified" in shorter.problems[0]
