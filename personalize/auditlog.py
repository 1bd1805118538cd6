"""The audit chain's key and its checkpoints outside the database.

Each registry audit event is sealed with an HMAC-SHA256 computed by the security module
(:meth:`hsm_stub.module.SecurityModule.audit_mac`, key usage ``audit-mac``): the key is never
in the database, so whoever edits the database cannot recompute the chain. What a keyed chain
cannot show by itself is that its *tail* is gone (deleted last rows, a truncated or emptied
table): for that, after every transaction the head — event id, hash, time — is MACed and
appended as one JSON line to a checkpoint log, a file outside the database opened
``O_APPEND`` with mode 0600. ``audit verify`` checks every checkpoint against the chain.

The log is append-only by the way it is written, not by the file system: ``chattr +a``
needs ``CAP_LINUX_IMMUTABLE``, which the service does not have; copy the log off the machine
(syslog, WORM storage) for protection against someone who can also rewrite files.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)

AuditKey = Callable[[bytes], bytes]  # data → HMAC (SecurityModule.audit_mac)

EVENT_DOMAIN = b"sscard-audit-event/1\n"
CHECKPOINT_DOMAIN = b"sscard-audit-checkpoint/1\n"
VERIFICATION_DOMAIN = b"sscard-audit-verification/1\n"


def event_mac(key: AuditKey, fields: list[object]) -> str:
    """The hash of an audit event: HMAC over its fields (id, previous hash, content)."""
    return key(EVENT_DOMAIN + json.dumps(fields, ensure_ascii=False).encode()).hex()


@dataclass(frozen=True)
class Checkpoint:
    """The chain's head after a transaction: its last event, that event's hash, when, and how
    many events before the keyed chain (unkeyed legacy events) the registry has."""

    event: int
    hash: str
    at: str
    legacy: int

    def mac(self, key: AuditKey) -> str:
        body = json.dumps([self.event, self.hash, self.at, self.legacy])
        return key(CHECKPOINT_DOMAIN + body.encode()).hex()


@dataclass(frozen=True)
class Verification:
    """A checkpoint of verification (审计核验检查点, table ``audit_verifications``): ``audit
    verify`` found the chain sound up to ``event`` (whose hash was ``hash``) at ``at``; the
    last full walk was at ``full_at``; the checkpoint log had been read up to byte
    ``log_offset`` (line ``log_lines``). Each record is MACed with the audit key over its
    fields and the previous record's MAC (``prev_mac``), so the records form a chain of
    their own that nobody without the key can extend or edit."""

    id: int
    event: int
    hash: str
    at: str
    full_at: str
    log_offset: int
    log_lines: int
    prev_mac: str

    def mac(self, key: AuditKey) -> str:
        body = json.dumps(
            [
                self.id,
                self.event,
                self.hash,
                self.at,
                self.full_at,
                self.log_offset,
                self.log_lines,
                self.prev_mac,
            ]
        )
        return key(VERIFICATION_DOMAIN + body.encode()).hex()


@dataclass(frozen=True)
class LogRead:
    """What :meth:`CheckpointLog.read` found from an offset on: the checkpoints whose MAC
    verifies, problems with the others, and where the complete lines end (byte, line)."""

    checkpoints: list[Checkpoint]
    problems: list[str]
    offset: int
    lines: int


class CheckpointLog:
    """The write-once checkpoint log: one JSON line per checkpoint, each with its MAC."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def prepare(self, checkpoint: Checkpoint, key: AuditKey) -> PendingCheckpoint:
        """MAC the checkpoint and open the log — the steps that may fail, done before the
        transaction commits; :meth:`PendingCheckpoint.write` appends it after."""
        line = json.dumps({**asdict(checkpoint), "mac": checkpoint.mac(key)}) + "\n"
        # O_APPEND: the line lands at the end whatever else has the file open; one write.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return PendingCheckpoint(self.path, fd, line.encode())

    def read(self, key: AuditKey, offset: int = 0, lines: int = 0) -> LogRead:
        """The checkpoints after byte ``offset`` (line ``lines``; 0: the whole log) — only
        complete lines: one being appended now is read next time. A log shorter than
        ``offset`` was truncated or replaced after it was read."""
        try:
            with self.path.open("rb") as log_file:
                size = log_file.seek(0, os.SEEK_END)
                log_file.seek(min(offset, size))
                data = log_file.read()
        except FileNotFoundError:
            size, data = 0, b""
        if size < offset:
            return LogRead(
                [],
                [
                    f"检查点日志 {self.path} 比上次核验时短：被截断或替换 "
                    f"(the checkpoint log {self.path} is shorter than when last verified: "
                    "truncated or replaced)"
                ],
                offset,
                lines,
            )
        complete = data[: data.rfind(b"\n") + 1]
        good: list[Checkpoint] = []
        problems: list[str] = []
        text = complete.decode("utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), start=lines + 1):
            try:
                d = json.loads(line)
                checkpoint = Checkpoint(
                    int(d["event"]), str(d["hash"]), str(d["at"]), int(d["legacy"])
                )
                mac = str(d["mac"])
            except (ValueError, KeyError, TypeError):
                problems.append(
                    f"检查点日志第 {number} 行无法解析 (checkpoint line {number} is malformed)"
                )
                continue
            if checkpoint.mac(key) != mac:
                problems.append(
                    f"检查点日志第 {number} 行签名不符：伪造或被改动 "
                    f"(checkpoint line {number}: its MAC does not verify — forged or altered)"
                )
                continue
            good.append(checkpoint)
        return LogRead(good, problems, offset + len(complete), lines + complete.count(b"\n"))


@dataclass
class PendingCheckpoint:
    """A checkpoint MACed and its log open, to be written once the transaction commits."""

    path: Path
    fd: int
    line: bytes

    def write(self) -> None:
        """Append the line (after COMMIT). A failure here cannot undo the commit: it is
        logged, and the next checkpoint covers this head too."""
        try:
            os.write(self.fd, self.line)
            os.fsync(self.fd)
        except OSError as exc:
            log.error("审计检查点未写入 audit checkpoint not written to %s: %s", self.path, exc)
        finally:
            self.discard()

    def discard(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
