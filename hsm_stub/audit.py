"""Append-only audit log of key use: one JSON line per event — its sequence number, time,
client, operation, label, card serial number, result. Never data, cryptograms, PINs or keys.
The time comes from an injected clock (the system's UTC clock unless the composition root
passes another).

The log may be shared by the processes of one service (``sscard hsm serve`` with several
workers, hsm_stub/server.py): the sequence counter lives in shared memory and one lock,
shared across those processes, covers taking the number, reading the clock and writing the
line — so the file holds every record once, numbered 1, 2, 3 … without a gap, in the order
of their numbers and times. Build the log before forking the workers; they inherit both.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path


def system_clock() -> datetime:
    """The machine's clock, in UTC: what a composition root passes in production."""
    return datetime.now(UTC)


class AuditLog:
    def __init__(self, path: str | Path, *, clock: Callable[[], datetime] = system_clock) -> None:
        self.path = Path(path)
        self.clock = clock
        # A semaphore and a shared integer: they work across threads and forked processes.
        self._lock = multiprocessing.Lock()
        self._sequence = multiprocessing.RawValue("Q", 0)
        # O_APPEND: every write lands at the end, whatever else has the file open.
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def record(
        self,
        *,
        client: str,
        operation: str,
        result: str,
        label: str | None = None,
        sn: bytes | None = None,
    ) -> None:
        body = json.dumps(
            {
                "client": client,
                "op": operation,
                "label": label,
                "sn": sn.hex().upper() if sn else None,
                "result": result,
            },
            ensure_ascii=False,
        )
        with self._lock:
            self._sequence.value += 1
            time = self.clock().astimezone(UTC).isoformat(timespec="milliseconds")
            head = f'{{"seq": {self._sequence.value}, "time": "{time}", '
            os.write(self._fd, (head + body[1:] + "\n").encode())

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
