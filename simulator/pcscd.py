"""Start and stop ``pcscd`` for the simulated station, tests and benchmarks.

pcscd runs without systemd as ``pcscd --foreground`` (docs/devices.md §1); with Debian's
``vsmartcard-vpcd`` installed it loads vpcd from ``/etc/reader.conf.d/vpcd`` and shows the
readers ``Virtual PCD 00 00`` and ``Virtual PCD 00 01``. ``Pcscd(slots=N)`` with more than
those two slots starts pcscd on a reader.conf.d of its own (``pcscd --config``) listing
N/2 vpcd readers (``simulator.vpcd.reader_name``). An already running pcscd is used as it is
and left running, when it shows enough virtual readers.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from apdu.errors import ReaderUnavailable
from apdu.pcsc import list_readers
from simulator.vpcd import slot_port, vpcd_reader

VPCD_CONFIG = Path("/etc/reader.conf.d/vpcd")
VPCD_DRIVER = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so"  # Debian vsmartcard-vpcd
VIRTUAL_READER_PREFIX = "Virtual PCD"


class PcscdError(RuntimeError):
    """pcscd could not be started or shows no virtual readers."""


def _readers() -> list[str] | None:
    """Reader names, or None when the PC/SC service does not answer."""
    try:
        return list_readers()
    except ReaderUnavailable:
        return None


def virtual_readers() -> list[str]:
    return [n for n in (_readers() or []) if n.startswith(VIRTUAL_READER_PREFIX)]


class Pcscd:
    """``with Pcscd():`` makes sure pcscd with vpcd is up; stops it after if it started it."""

    def __init__(self, log_path: Path | None = None, *, slots: int = 2) -> None:
        self.log_path = log_path
        self.slots = slots
        self.process: subprocess.Popen[bytes] | None = None
        self.config_dir: Path | None = None

    def _enough(self) -> bool:
        present = virtual_readers()
        if present and len(present) < self.slots:
            raise PcscdError(
                f"pcscd is running with {len(present)} virtual readers, {self.slots} needed"
            )
        return bool(present)

    def _config(self) -> list[str]:
        """``--config DIR`` with ``slots`` vpcd slots, or nothing for Debian's two."""
        if self.slots <= 2:
            return []
        self.config_dir = Path(tempfile.mkdtemp(prefix="sscard-vpcd-"))
        (self.config_dir / "reader.conf.d").mkdir()
        entries = []
        for n in range((self.slots + 1) // 2):
            # the driver keeps its connections in a static array indexed by slot alone
            # (ifd-vpcd.c): each reader loads its own copy, or they would share slots 0 and 1
            driver = self.config_dir / f"libifdvpcd-{n}.so"
            shutil.copy(VPCD_DRIVER, driver)
            port = slot_port(2 * n)
            entries.append(
                f'FRIENDLYNAME "{vpcd_reader(n)}"\nDEVICENAME /dev/null:0x{port:X}\n'
                f"LIBPATH {driver}\nCHANNELID 0x{port:X}\n"
            )
        (self.config_dir / "reader.conf.d" / "vpcd").write_text(
            "\n".join(entries), encoding="ascii"
        )
        return ["--config", str(self.config_dir / "reader.conf.d")]

    def start(self, timeout: float = 15.0) -> Pcscd:
        if self._enough():
            return self
        if not VPCD_CONFIG.exists():
            raise PcscdError(
                f"{VPCD_CONFIG} is missing: install Debian's vsmartcard-vpcd (make test does)"
            )
        if _readers() is not None:
            raise PcscdError(
                "pcscd is running but shows no virtual readers; restart it after installing "
                "vsmartcard-vpcd"
            )
        binary = shutil.which("pcscd") or "/usr/sbin/pcscd"
        if not Path(binary).exists():
            raise PcscdError("pcscd is not installed (Debian package pcscd)")
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            [binary, "--foreground", *self._config()], stdout=out, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PcscdError(f"pcscd exited at start with code {self.process.returncode}")
            if len(virtual_readers()) >= self.slots:
                return self
            time.sleep(0.05)
        self.stop()
        raise PcscdError(f"pcscd showed no virtual readers within {timeout:.0f} s")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
        if self.config_dir is not None:
            shutil.rmtree(self.config_dir, ignore_errors=True)
            self.config_dir = None

    @property
    def started_here(self) -> bool:
        return self.process is not None

    def __enter__(self) -> Pcscd:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
