"""Verifying the audit chain (``sscard audit verify``) in O(new events): checkpoints of
verification (审计核验检查点, table ``audit_verifications``; :class:`personalize.auditlog.
Verification`) record where the chain was last found sound, so a run checks only the events,
checkpoint-log lines and state rows that are new since; ``--full``, the first run, an unsound
checkpoint and a full walk older than ``--full-every`` walk everything (docs/service.md
"Audit"). The hash functions and the row digests are the registry's own
(:mod:`personalize.registry`)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import astuple, dataclass, replace
from datetime import datetime, timedelta

from personalize.auditlog import AuditKey, LogRead, Verification
from personalize.database import Row
from personalize.registry import (
    AUDITED_COLUMNS,
    GENESIS,
    Registry,
    RegistryError,
    _event_hash,
    _iso,
    _legacy_event_hash,
    _row_state,
)

NO_KEY = (
    "核验审计链需要审计密钥：请用 --hsm 或 $SSCARD_HSM 指定安全模块 "
    "(verifying the audit chain needs the audit key: --hsm or $SSCARD_HSM)"
)

# ``audit verify`` walks the whole chain when its last full walk is this old (``--full-every``)
FULL_EVERY = timedelta(days=7)
# why a verification walked the whole chain (``AuditVerification.reason``)
FULL_REASONS = {
    "requested": "按要求完整核验 (--full requested)",
    "first": "尚无核验检查点 (no checkpoint of verification yet)",
    "unsound": "核验检查点不可信 (the checkpoint of verification is not sound)",
    "periodic": "距上次完整核验已满周期 (the last full walk is older than --full-every)",
}


@dataclass(frozen=True)
class _Walk:
    """What one stretch of verification covered: the head it reached (event, hash), where it
    stopped reading the checkpoint log, how many events and state rows it read, problems."""

    head: int
    hash: str
    log: LogRead
    events: int
    rows: int
    problems: list[str]

    def then(self, tail: _Walk, before: list[str]) -> _Walk:
        """This walk followed by ``tail`` (the events written meanwhile), with the
        ``before`` problems (of the checkpoint of verification) first."""
        problems = [*before, *self.problems, *tail.problems]
        return replace(
            tail,
            events=self.events + tail.events,
            rows=self.rows + tail.rows,
            problems=sorted(set(problems), key=problems.index),
        )


@dataclass(frozen=True)
class AuditVerification:
    """What ``Registry.check_audit`` did: ``mode`` "incremental" (from the last checkpoint
    of verification) or "full"; the first event it checked (``from_event``); why it walked
    the whole chain (a ``FULL_REASONS`` key, None for incremental); the head it reached;
    the events and state rows it read; the problems found (none: the chain is intact)."""

    mode: str
    from_event: int
    reason: str | None
    head: int
    events: int
    rows: int
    problems: list[str]

    @classmethod
    def of(cls, mode: str, from_event: int, reason: str | None, walk: _Walk) -> AuditVerification:
        return cls(mode, from_event, reason, walk.head, walk.events, walk.rows, walk.problems)


def _full_reason(
    full: bool, last: Verification | None, problems: list[str], now: datetime, every: timedelta
) -> str | None:
    """Why ``check_audit`` walks the whole chain (a ``FULL_REASONS`` key), or None."""
    if full:
        return "requested"
    if problems:
        return "unsound"
    if last is None:
        return "first"
    if now - datetime.fromisoformat(last.full_at) >= every:
        return "periodic"
    return None


def _verification(row: Row) -> Verification:
    return Verification(
        int(row["id"]),
        int(row["event"]),
        str(row["hash"]),
        str(row["at"]),
        str(row["full_at"]),
        int(row["log_offset"]),
        int(row["log_lines"]),
        str(row["prev_mac"]),
    )


def _recorded_rows(details: str) -> dict[str, dict[str, str] | None]:
    """The state rows an event records (``details["rows"]``); none when its details are not
    what sscard writes — an edit its keyed hash already names."""
    try:
        rows = json.loads(details).get("rows", {})
    except (ValueError, AttributeError):
        return {}
    return rows if isinstance(rows, dict) else {}


def _row_name(table: str, row_id: int, row: Row | None) -> str:
    """A state row as the auditor reads it: ``cards/3 (卡号 H00000012)``."""
    if row is not None and "card_number" in AUDITED_COLUMNS[table]:
        return f"{table}/{row_id} (卡号 {row['card_number']})"
    return f"{table}/{row_id}"


class AuditVerifier:
    """Verifies one registry's audit chain with its audit key (the registry's connection,
    checkpoint log and clock)."""

    def __init__(self, registry: Registry) -> None:
        if registry.audit_key is None:
            raise RegistryError(NO_KEY)
        self.registry = registry
        self.db = registry.db
        self.checkpoints = registry.checkpoints
        self.key: AuditKey = registry.audit_key

    def verify_all(self) -> tuple[int, list[str]]:
        """(events checked, problems) of the whole chain, read-only — nothing recorded."""
        with self._snapshot():
            walk = self._walk(0, GENESIS, LogRead([], [], 0, 0), all_rows=True)
        return walk.events, walk.problems

    def check(
        self, *, full: bool = False, full_every: timedelta | None = None
    ) -> AuditVerification:
        """``sscard audit verify``: by default only what is new since the last checkpoint of
        verification (the events after it, the checkpoint log after it, the state rows those
        events record or whose ``audit_event_id`` is newer — O(new events)); the whole
        chain when ``full``, when there is no sound checkpoint of verification, or when the
        last full walk is ``full_every`` or more ago (docs/service.md "Audit"). A sound
        result is recorded as the next checkpoint of verification. The checkpoint is read
        and the next one written inside one write transaction, so two verifiers do not race;
        a full walk reads a snapshot first (writers go on) and then the events written
        meanwhile under the write lock."""
        now = self.registry.clock()
        with self.registry.transaction():
            last, problems = self.last_verification()
            every = FULL_EVERY if full_every is None else full_every
            reason = _full_reason(full, last, problems, now, every)
            if reason is None and last is not None:
                log = LogRead([], [], last.log_offset, last.log_lines)
                walk = self._walk(last.event, last.hash, log, all_rows=False)
                self._record_verification(walk, last.full_at)
                return AuditVerification.of("incremental", last.event + 1, None, walk)
        with self._snapshot():
            walk = self._walk(0, GENESIS, LogRead([], [], 0, 0), all_rows=True)
        with self.registry.transaction():
            log = LogRead([], [], walk.log.offset, walk.log.lines)
            tail = self._walk(walk.head, walk.hash, log, all_rows=False)
            whole = walk.then(tail, problems)
            self._record_verification(whole, _iso(now))
        return AuditVerification.of("full", 1, reason, whole)

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        """A read transaction: every query inside sees the registry as at its first read
        (SQLite WAL snapshot; PostgreSQL: REPEATABLE READ), so a long walk is consistent
        while writers go on. Inside an open transaction, that one."""
        if self.db.in_transaction:
            yield
            return
        self.db.begin_read()
        try:
            yield
        finally:
            self.db.commit()

    def last_verification(self) -> tuple[Verification | None, list[str]]:
        """The last checkpoint of verification, if it is sound: its MAC, its link to the one
        before, and the event it names still there with that hash. Otherwise (None, what is
        wrong): the chain must be walked whole."""
        key = self.key
        rows = self.db.execute(
            "SELECT * FROM audit_verifications ORDER BY id DESC LIMIT 2"
        ).fetchall()
        if not rows:
            return None, []
        last = _verification(rows[0])
        if last.mac(key) != rows[0]["mac"]:
            return None, [
                f"核验检查点 {last.id} 签名不符：伪造或被改动 "
                f"(verification checkpoint {last.id}: its MAC does not verify — forged or altered)"
            ]
        before = rows[1] if len(rows) > 1 else None
        expected = ("", 1) if before is None else (before["mac"], int(before["id"]) + 1)
        if (last.prev_mac, last.id) != expected:
            return None, [
                f"核验检查点 {last.id} 之前的检查点被删除或改动 "
                f"(the verification checkpoints before {last.id} were deleted or altered)"
            ]
        event = self.db.execute(
            "SELECT hash FROM audit_events WHERE id = ?", (last.event,)
        ).fetchone()
        if event is None or event["hash"] != last.hash:
            return None, [
                f"审计事件 {last.event} 与 {last.at} 的核验检查点不符：链被改写或截断 "
                f"(event {last.event} differs from its verification checkpoint of {last.at}: "
                "the chain was rewritten or truncated)"
            ]
        return last, []

    def _record_verification(self, walk: _Walk, full_at: str) -> None:
        """A sound walk becomes the next checkpoint of verification, chained to the last
        one (read again here, under the write lock). A walk with problems records nothing:
        the next run finds them again."""
        if walk.problems:
            return
        key = self.key
        row = self.db.execute(
            "SELECT id, mac FROM audit_verifications ORDER BY id DESC LIMIT 1"
        ).fetchone()
        number, prev_mac = (1, "") if row is None else (int(row["id"]) + 1, str(row["mac"]))
        record = Verification(
            number,
            walk.head,
            walk.hash,
            _iso(self.registry.clock()),
            full_at,
            walk.log.offset,
            walk.log.lines,
            prev_mac,
        )
        self.db.execute(
            "INSERT INTO audit_verifications (id, event, hash, at, full_at, log_offset,"
            " log_lines, prev_mac, mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*astuple(record), record.mac(key)),
        )

    def _walk(self, since: int, since_hash: str, log: LogRead, *, all_rows: bool) -> _Walk:
        """Verify the events after ``since`` (0: the whole chain; ``since_hash`` is the hash
        of event ``since``): ids without gaps, each link and keyed hash; the checkpoint log
        after ``log.offset`` (MACs; the events they name still there with that hash; none
        past the head); and the state rows — every one (``all_rows``) or those the new
        events record or whose ``audit_event_id`` is newer than ``since`` (an index) —
        against the chain's latest record of them."""
        key = self.key
        log = self.checkpoints.read(key, log.offset, log.lines)
        named = {cp.event for cp in log.checkpoints}
        problems: list[str] = []
        legacy = self.registry._legacy_events()
        prev, expected, count = since_hash, since + 1, 0
        hashes: dict[int, str] = {}  # of the events the checkpoints name
        latest: dict[str, tuple[int, dict[str, str] | None]] = {}
        for row in self.db.execute("SELECT * FROM audit_events WHERE id > ? ORDER BY id", (since,)):
            count += 1
            event = int(row["id"])
            if event != expected:
                problems.append(
                    f"审计事件 {expected}–{event - 1} 缺失：被删除 "
                    f"(events {expected}-{event - 1} are missing: deleted)"
                )
            if event <= legacy:
                args = (row["at"], row["operator"], row["action"], row["subject"], row["details"])
                digest = _legacy_event_hash(row["prev_hash"], *args)
            else:
                digest = _event_hash(key, row, row["prev_hash"])
            if row["prev_hash"] != prev:
                problems.append(
                    f"审计事件 {event} 链接断开 (event {event}: broken link — an event before it "
                    "changed or is gone)"
                )
            if digest != row["hash"]:
                problems.append(
                    f"审计事件 {event} 内容被改动或哈希被重算 "
                    f"(event {event}: its content was altered or its hash recomputed)"
                )
            for name, state in _recorded_rows(row["details"]).items():
                latest[name] = (event, state)
            if event in named:
                hashes[event] = row["hash"]
            prev, expected = row["hash"], event + 1
        head = expected - 1
        problems += self._verify_checkpoints(log, hashes, since, head, legacy)
        state_rows = self._all_rows() if all_rows else self._rows_since(since, latest)
        found, rows = self._verify_rows(latest, state_rows)
        problems += found
        return _Walk(head, prev, log, count, rows, sorted(set(problems), key=problems.index))

    def _verify_checkpoints(
        self, log: LogRead, hashes: dict[int, str], since: int, head: int, legacy: int
    ) -> list[str]:
        """The checkpoints read (``log``) against the events: ``hashes`` of those walked,
        one lookup each for those at or before ``since``."""
        problems = list(log.problems)
        checkpoints = log.checkpoints
        if not checkpoints and log.offset == 0 and head:
            problems.append(
                f"检查点日志 {self.checkpoints.path} 缺失或没有有效检查点：无法排除尾部被删除 "
                f"(no valid checkpoint in {self.checkpoints.path}: a deleted tail cannot be "
                "ruled out)"
            )
        last = max((cp.event for cp in checkpoints), default=0)
        if not head and last:
            problems.append(
                f"审计链为空，但检查点记录到事件 {last}：全部事件被删除 "
                f"(the audit chain is empty but a checkpoint names event {last}: every "
                "event was deleted)"
            )
        elif last > head:
            at = max(checkpoints, key=lambda cp: cp.event).at
            problems.append(
                f"审计事件 {head + 1}–{last} 缺失：链尾被截断 "
                f"(events {head + 1}-{last} are missing: the chain was truncated; "
                f"checkpoint of {at})"
            )
        claims = sorted({cp.legacy for cp in checkpoints} - {legacy})
        if claims:
            problems.append(
                f"检查点记录 {claims[0]} 个无密钥旧事件，库中为 {legacy} "
                f"(the checkpoints record {claims[0]} legacy events, the database says {legacy})"
            )
        for cp in checkpoints:
            # an event missing inside the chain or past its head is reported above
            known = hashes.get(cp.event)
            if known is None and cp.event <= since:  # written after an earlier verification
                row = self.db.execute(
                    "SELECT hash FROM audit_events WHERE id = ?", (cp.event,)
                ).fetchone()
                known = None if row is None else str(row["hash"])
            if known is not None and known != cp.hash:
                problems.append(
                    f"审计事件 {cp.event} 与 {cp.at} 的检查点不符：链被改写 "
                    f"(event {cp.event} differs from its checkpoint of {cp.at}: the chain "
                    "was rewritten)"
                )
        return problems

    def _all_rows(self) -> Iterator[tuple[str, Row]]:
        for table, columns in self.registry.audited_columns().items():
            query = (
                f"SELECT id, audit_event_id, {', '.join(columns)}"
                f" FROM {self.registry.audited_rows(table)} ORDER BY id"
            )
            for row in self.db.execute(query):
                yield table, row

    def _rows_since(
        self, since: int, latest: dict[str, tuple[int, dict[str, str] | None]]
    ) -> Iterator[tuple[str, Row]]:
        """The state rows whose ``audit_event_id`` is newer than ``since`` or missing (a row
        sscard did not write; both through the index ``<table>_by_audit_event``), and those
        the new events record (by id)."""
        recorded: dict[str, list[int]] = {}
        for name in latest:
            table, _, number = name.partition("/")
            recorded.setdefault(table, []).append(int(number))
        for table, columns in self.registry.audited_columns().items():
            select = (
                f"SELECT id, audit_event_id, {', '.join(columns)}"
                f" FROM {self.registry.audited_rows(table)}"
            )
            seen: set[int] = set()
            for condition, args in (("IS NULL", ()), ("> ?", (since,))):
                for row in self.db.execute(f"{select} WHERE audit_event_id {condition}", args):
                    seen.add(int(row["id"]))
                    yield table, row
            for row_id in recorded.get(table, []):
                if row_id not in seen:
                    found = self.db.execute(f"{select} WHERE id = ?", (row_id,)).fetchone()
                    if found is not None:
                        yield table, found

    def _verify_rows(
        self,
        latest: dict[str, tuple[int, dict[str, str] | None]],
        rows: Iterable[tuple[str, Row]],
    ) -> tuple[list[str], int]:
        """(problems, rows read): each state row against the chain's latest record of it,
        and every row that record says exists but is not among ``rows``."""
        problems: list[str] = []
        seen: set[str] = set()
        for table, row in rows:
            key = f"{table}/{row['id']}"
            seen.add(key)
            name = _row_name(table, int(row["id"]), row)
            state = _row_state(table, row)
            event, recorded = latest.get(key, (None, None))
            if event is None:
                problems.append(
                    f"{name}：没有审计事件说明这一行，是在 sscard 之外写入的 "
                    f"({key}: no audit event explains this row — written outside sscard)"
                )
            elif recorded is None:
                problems.append(
                    f"{name}：审计事件 {event} 记为已删除，表中却存在 "
                    f"({key}: audit event {event} deleted it, yet it is there)"
                )
            elif recorded["digest"] != state["digest"]:
                diff = ""
                if "status" in recorded and recorded["status"] != state.get("status"):
                    diff = (
                        f"：状态 status 表中 {state.get('status')}，审计链为 {recorded['status']}"
                    )
                problems.append(
                    f"{name} 与审计事件 {event} 不符，被直接修改{diff} "
                    f"({key} differs from audit event {event}: changed outside sscard)"
                )
            elif row["audit_event_id"] != event:
                problems.append(
                    f"{name} 标注的审计事件 {row['audit_event_id']} 不是链中最后说明它的事件 "
                    f"{event} ({key}: carries audit event {row['audit_event_id']}, "
                    f"the chain's latest is {event})"
                )
        for key, (event, recorded) in latest.items():
            if key not in seen and recorded is not None:
                problems.append(
                    f"{key}：审计事件 {event} 之后被删除 ({key} was deleted outside sscard; "
                    f"its last audit event is {event})"
                )
        return problems, len(seen)
