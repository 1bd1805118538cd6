"""A simulated card center (制卡中心) (issue 13, Deliver 6): N personalization stations that
share one registry, one security module and one track key — what ``sscard sim center`` and
the multi-station tests (tests/integration/crash_campaign.py) run on.

One pcscd serves a vpcd slot per station (``Pcscd(slots=N)``); one security module server
on loopback holds the test keystore; each station has its own Evolis printer emulator, with
a distinct printer serial number and blank cards whose chip serial numbers are distinct
across the center, and its own station file naming the shared registry location (a path or
URL, passed through unchanged), module and track key.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any

from hsm_stub.audit import AuditLog
from hsm_stub.keystore import Keystore
from hsm_stub.local import LocalSecurityModule
from hsm_stub.server import HsmServer
from personalize.database import is_url
from personalize.jobs import submit_job
from personalize.registry import Registry
from personalize.trackvault import TrackVault
from simulator.evolis_emulator import EvolisEmulator
from simulator.factory import sample_photo
from simulator.pcscd import Pcscd
from simulator.station import SimulatedStation, free_port
from sscard.profile import CardProfile
from sscard.records import HolderData

PHOTO = "photo.jpg"  # the synthetic holders' photo, in the center's root
TRACK2 = "6217991234567890123=3611120"  # the issuer track the synthetic jobs carry
CONNECTIONS_PER_STATION = 8  # security-module connections a station's worker may hold


def station_name(index: int) -> str:
    """``sim-station-1`` … for station ``index`` (0-based)."""
    return f"sim-station-{index + 1}"


class SimulatedCenter:
    """``with SimulatedCenter(root, profile, region, stations=N):`` the devices of N
    stations; ``registry``: the shared registry location (default ``root/registry.db``)."""

    def __init__(
        self,
        root: Path,
        profile: CardProfile,
        region: str,
        *,
        stations: int,
        cards_per_station: int,
        registry: str | None = None,
        policy: str = "default",
    ) -> None:
        self.root = root
        self.profile = profile
        self.region = region
        self.stations = stations
        self.cards_per_station = cards_per_station
        self.registry = registry or str(root / "registry.db")
        # one checkpoint log for every station and the center (a registry file has it beside
        # it; a PostgreSQL registry's default would be one per station directory)
        self.audit_checkpoints = root / "registry.checkpoints" if is_url(self.registry) else None
        self.policy = policy
        self.track_key = root / "tracks.key"
        self.pcscd = Pcscd(root / "pcscd.log", slots=stations)
        self.server: HsmServer | None = None
        self.audit: AuditLog | None = None
        self.sims: list[SimulatedStation] = []

    def start(self) -> SimulatedCenter:
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            self.pcscd.start()
            hsm = self._start_security_module()
            for index in range(self.stations):
                sim = SimulatedStation(
                    self.root / f"station-{index + 1}",
                    self.profile,
                    self.region,
                    cards=self.cards_per_station,
                    slot=index,
                    name=station_name(index),
                    policy=self.policy,
                    hsm=hsm,
                    registry=self.registry,
                    audit_checkpoints=self.audit_checkpoints,
                    track_key=self.track_key,
                    # station 1 has the single station's serials (5343…, PRI000123)
                    chip_prefix=(0x5343 + index).to_bytes(2, "big"),
                    printer_serial=f"PRI{123 + index:06d}",
                )
                self.sims.append(sim)
                sim.start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_security_module(self) -> str:
        """The center's one security module (test keystore in ``root``), on loopback."""
        path = self.root / "keystore.json"
        store = Keystore.open(path) if path.exists() else Keystore.create_test(path)
        self.audit = AuditLog(self.root / "hsm-audit.log")
        # every station connects from loopback (a real center's from their own hosts), each
        # worker with a few connections: its devices', its registry's audit key, its
        # heartbeat's — the per-address limit is the center's, not one client's
        clients = CONNECTIONS_PER_STATION * self.stations + 16
        self.server = HsmServer(
            LocalSecurityModule(store),
            audit=self.audit,
            port=free_port(),
            max_clients=max(64, clients),
            max_per_address=clients,
        )
        self.server.start()
        return f"tcp://{self.server.host}:{self.server.port}"

    def stop(self) -> None:
        for sim in reversed(self.sims):
            sim.stop()
        self.sims.clear()
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self.audit is not None:
            self.audit.close()
            self.audit = None
        self.pcscd.stop()

    @property
    def station_files(self) -> list[Path]:
        return [sim.station_file for sim in self.sims]

    @property
    def printers(self) -> list[EvolisEmulator]:
        out = []
        for sim in self.sims:
            assert sim.printer is not None
            out.append(sim.printer)
        return out

    def printed(self) -> int:
        """Cards printed by all the center's printers, by their own counts."""
        return sum(p.printed for p in self.printers)

    def __enter__(self) -> SimulatedCenter:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def submit_reissue_job(
    registry: Registry,
    profile: CardProfile,
    vault: TrackVault,
    holder: HolderData,
    *,
    photo_dir: Path,
    operator: str,
) -> tuple[int, str]:
    """A holder enrolled with a card, the card lost (正式挂失), a reissue requested and its
    job submitted (valid ID, photo, issuer track): (job id, the lost card's number)."""
    old = registry.allocate_card_number()
    registry.enroll(holder, old, operator=operator)
    registry.formalize_loss(old, operator=operator, evidence="ID")
    registry.request_reissue(old, operator=operator)
    photo = photo_dir / PHOTO
    if not photo.exists():
        photo.write_bytes(sample_photo("center"))
    submission: dict[str, Any] = {
        "old_card_number": old,
        "holder": {
            "ssn": holder.ssn,
            "name": holder.name,
            "gender": holder.gender,
            "ethnicity": holder.ethnicity,
            "birthplace": holder.birthplace,
            "birth_date": holder.birth_date.isoformat(),
        },
        "photo": PHOTO,
        "tracks": {"2": TRACK2},
    }
    job = submit_job(registry, profile, vault, submission, base_dir=photo_dir, operator=operator)
    return job, old
