"""A serial device emulator's end of a pseudo-terminal: the emulator owns the master, any
program opens the slave path (printed, and in ``.path``) exactly as it would
``/dev/ttyUSB0`` (docs/devices.md §5). The slave is put in raw mode (no echo, no line editing)."""

from __future__ import annotations

import contextlib
import os
import select
import threading
import tty
from collections.abc import Callable


class PtyDevice:
    """Runs ``handle(read)`` in a thread; ``read(n, timeout)`` returns up to n bytes the
    program sent (b"" on timeout), ``send(data)`` answers."""

    def __init__(self) -> None:
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pending = bytearray()

    def read(self, n: int = 1, timeout: float = 0.1) -> bytes:
        if self._pending:
            out = bytes(self._pending[:n])
            del self._pending[:n]
            return out
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return b""
        try:
            data = os.read(self.master, 4096)
        except OSError:
            return b""
        self._pending += data[n:]
        return data[:n]

    def read_exact(self, n: int, timeout: float = 5.0) -> bytes:
        out = bytearray()
        waited = 0.0
        while len(out) < n and not self._stop.is_set():
            chunk = self.read(n - len(out), 0.1)
            if not chunk:
                waited += 0.1
                if waited >= timeout:
                    break
            out += chunk
        return bytes(out)

    def send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self.master, view)
            view = view[written:]

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def start(self, loop: Callable[[], None]) -> None:
        def run() -> None:
            while not self._stop.is_set():
                loop()

        self._thread = threading.Thread(target=run, daemon=True, name=f"pty {self.path}")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for fd in (self.master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)
