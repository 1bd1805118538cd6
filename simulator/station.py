"""The simulated personalization station: pcscd with vpcd, a security module with the test
keys serving on loopback, an Evolis printer emulator whose contact station is a vpcd
reader and whose feeder holds blank 社保卡 from the card factory, a track key, and a
station file pointing at all of it — what ``make demo`` and the end-to-end tests run on."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from types import TracebackType
from typing import Any

from apdu.pcsc import PcscTransport, wait_for_card, wait_for_removal
from hsm_stub.audit import AuditLog
from hsm_stub.keystore import Keystore
from hsm_stub.local import LocalSecurityModule
from hsm_stub.server import HsmServer
from simulator.evolis_emulator import EvolisEmulator, VirtualCard
from simulator.factory import issue_blank_card
from simulator.pcscd import Pcscd
from simulator.vpcd import VpcdBridge, reader_name
from sscard.card import SocialSecurityCard
from sscard.profile import CardProfile
from sscard.public import read_public


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SimulatedStation:
    def __init__(
        self,
        root: Path,
        profile: CardProfile,
        region: str,
        *,
        cards: int = 3,
        slot: int = 0,
        name: str = "sim-station-1",
        policy: str = "default",
        hsm: str | None = None,
        registry: str = "registry.db",
        audit_checkpoints: Path | None = None,
        track_key: Path | None = None,
        chip_prefix: bytes = b"SC",
        printer_serial: str = "PRI000123",
    ) -> None:
        """``hsm``: the address of a security module already serving (a card center's one
        module, simulator/center.py), else the station starts its own on the keystore in
        ``root``; ``registry`` (a path or URL, as the station file takes it),
        ``audit_checkpoints`` (its checkpoint log, when not beside a registry file) and
        ``track_key``: shared ones, else the station's own in ``root``; ``chip_prefix``: the
        first two bytes of its blank cards' chip serial numbers and ``printer_serial`` its
        printer's, distinct per station of one center."""
        self.root = root
        self.profile = profile
        self.region = region
        self.cards = cards
        self.slot = slot
        self.name = name
        self.policy = policy
        self.hsm = hsm
        self.registry = registry
        self.audit_checkpoints = audit_checkpoints
        self.track_key = track_key or root / "tracks.key"
        self.chip_prefix = chip_prefix
        self.printer_serial = printer_serial
        self.pcscd = Pcscd(log_path=root / "pcscd.log")
        self.server: HsmServer | None = None
        self.audit: AuditLog | None = None
        self.printer: EvolisEmulator | None = None
        self.station_file = root / "station.toml"

    def start(self) -> SimulatedStation:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "printed").mkdir(exist_ok=True)
        self.pcscd.start()
        hsm = self.hsm or self._start_security_module()
        feeder = [
            VirtualCard(
                issue_blank_card(
                    self.profile.name,
                    self.region,
                    serial=self.chip_prefix + i.to_bytes(6, "big"),
                )
            )
            for i in range(1, self.cards + 1)
        ]
        self.printer = EvolisEmulator(
            feeder,
            contact_slot=self.slot,
            out_dir=self.root / "printed",
            serial_number=self.printer_serial,
        ).start()
        if not self.track_key.exists():  # the station's key for sealed track images (32 bytes)
            fd = os.open(self.track_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(os.urandom(32).hex())
        checkpoints = (
            f'audit_checkpoints = "{self.audit_checkpoints}"\n'
            if self.audit_checkpoints is not None
            else ""
        )
        self.station_file.write_text(
            f'name = "{self.name}"\n'
            f'printer = "{self.printer.path}"\n'
            f'contact_reader = "{reader_name(self.slot)}"\n'
            f'hsm = "{hsm}"\n'
            'hsm_client = "test-center"\n'
            f'track_key = "{os.path.relpath(self.track_key, self.root)}"\n'
            f'registry = "{self.registry}"\n'
            f"{checkpoints}"
            f'policy = "{self.policy}"\n'
            'out_dir = "."\n',
            encoding="utf-8",
        )
        return self

    def _start_security_module(self) -> str:
        """The station's own security module on the test keystore in ``root`` (created when
        missing), serving on loopback; its address."""
        keystore_path = self.root / "keystore.json"
        store = (
            Keystore.open(keystore_path)
            if keystore_path.exists()
            else Keystore.create_test(keystore_path)
        )
        self.audit = AuditLog(self.root / "hsm-audit.log")
        self.server = HsmServer(
            LocalSecurityModule(store),
            audit=self.audit,
            port=free_port(),
        ).start()
        return f"tcp://{self.server.host}:{self.server.port}"

    def read_printed_card(self, index: int = -1, *, slot: int = 1) -> dict[str, Any]:
        """Put a card from the output hopper in another virtual reader and read its public
        data through pcscd, as a counter clerk would check a new card."""
        assert self.printer is not None
        chip = self.printer.hopper[index].chip
        if chip is None:
            raise ValueError("that card has no chip")
        bridge = VpcdBridge(chip, slot=slot).start()
        try:
            wait_for_card(reader_name(slot))
            with PcscTransport(reader_name(slot)) as transport:
                return read_public(SocialSecurityCard(transport, self.profile))
        finally:
            bridge.stop()
            wait_for_removal(reader_name(slot))

    def stop(self) -> None:
        if self.printer is not None:
            self.printer.stop()
        if self.server is not None:
            self.server.stop()
        if self.audit is not None:
            self.audit.close()
        self.pcscd.stop()

    def __enter__(self) -> SimulatedStation:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
