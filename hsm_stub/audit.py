"""Append-only audit log of key use: one JSON line per event — time, client, operation,
label, card serial number, result. Never data, cryptograms, PINs or keys. The time comes from
an injected clock (the system's UTC clock unless the composition root passes another)."""

from __future__ import annotations

import json
import os
import threading
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
        self._lock = threading.Lock()
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
        entry = {
            "time": self.clock().astimezone(UTC).isoformat(timespec="milliseconds"),
            "client": client,
            "op": operation,
            "label": label,
            "sn": sn.hex().upper() if sn else None,
            "result": result,
        }
        line = (json.dumps(entry, ensure_ascii=False) + "\n").encode()
        with self._lock:
            os.write(self._fd, line)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
