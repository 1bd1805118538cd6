"""A station's configuration (TOML): where its printer, contact reader, security
module, registry and track key are — a card center's personalization station, or a street
office (no printer: ``printer`` and ``contact_reader`` left out). Every device is an
address that can point at hardware or an emulator (docs/architecture.md "Conventions").

    name = "station-1"
    printer = "/dev/ttyUSB0"             # serial_for_url address of the Evolis printer
    contact_reader = "Virtual PCD 00 00" # PC/SC reader of the printer's contact station
    hsm = "tcp://127.0.0.1:9630"         # or "keystore:/path/keys.json" (test keystores only)
                                         # or "psam:READER" (a PSAM in that PC/SC reader)
    hsm_client = "office-01"             # this station's client id at the security module
                                         # (default: name; registered with hsm add-client)
    hsm_secret_file = "client.secret"    # its secret, hex (optional for the test clients)
    track_key = "tracks.key"             # 32-byte hex key of the sealed track images
    registry = "registry.db"
    policy = "default"
    out_dir = "out"
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from apdu.pcsc import PcscTransport
from hsm_stub.client import TcpSecurityModule
from hsm_stub.keystore import TEST_CLIENTS, Keystore
from hsm_stub.local import LocalSecurityModule
from hsm_stub.module import SecurityModule
from hsm_stub.psam import PsamSecurityModule


class StationError(ValueError):
    """The station configuration is missing or wrong."""


@dataclass(frozen=True)
class StationConfig:
    name: str
    printer: str | None  # a street office has no card printer
    contact_reader: str | None
    hsm: str
    hsm_client: str
    hsm_secret_file: Path | None
    track_key: Path
    registry: Path
    policy: str
    out_dir: Path

    @classmethod
    def load(cls, path: str | Path) -> StationConfig:
        path = Path(path)
        try:
            with path.open("rb") as fh:
                d = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise StationError(f"station file {path}: {exc}") from None
        base = path.parent

        def rel(value: str) -> Path:
            p = Path(value)
            return p if p.is_absolute() else base / p

        try:
            return cls(
                name=str(d["name"]),
                printer=str(d["printer"]) if "printer" in d else None,
                contact_reader=str(d["contact_reader"]) if "contact_reader" in d else None,
                hsm=str(d["hsm"]),
                hsm_client=str(d.get("hsm_client", d["name"])),
                hsm_secret_file=rel(d["hsm_secret_file"]) if "hsm_secret_file" in d else None,
                track_key=rel(d["track_key"]),
                registry=rel(d["registry"]),
                policy=str(d.get("policy", "default")),
                out_dir=rel(d.get("out_dir", "out")),
            )
        except KeyError as exc:
            raise StationError(f"station file {path} lacks {exc}") from None

    def security_module(self) -> SecurityModule:
        if self.hsm.startswith("tcp://"):
            host, _, port = self.hsm[len("tcp://") :].rpartition(":")
            return TcpSecurityModule(
                host, int(port), secret=self._hsm_secret(), client_id=self.hsm_client
            )
        if self.hsm.startswith("keystore:"):
            return LocalSecurityModule(Keystore.open(self.hsm[len("keystore:") :]))
        if self.hsm.startswith("psam:"):
            transport = PcscTransport(self.hsm[len("psam:") :])
            transport.connect()
            return PsamSecurityModule(transport, owns_transport=True)
        raise StationError(
            f"hsm must be tcp://HOST:PORT, keystore:PATH or psam:READER, not {self.hsm!r}"
        )

    def _hsm_secret(self) -> bytes:
        """The client secret from ``hsm_secret_file``; the documented test clients
        (``test-center``, ``test-office``) have theirs built in."""
        if self.hsm_secret_file is None:
            if self.hsm_client in TEST_CLIENTS:
                return TEST_CLIENTS[self.hsm_client][1]
            raise StationError(
                f"站点文件缺少 hsm_secret_file: the security-module client {self.hsm_client!r} "
                "needs its secret file (hsm_secret_file)"
            )
        try:
            text = self.hsm_secret_file.read_text(encoding="ascii").strip()
            return bytes.fromhex(text)
        except (OSError, ValueError) as exc:
            raise StationError(
                f"客户端密钥文件不可用 hsm_secret_file {self.hsm_secret_file}: "
                f"{type(exc).__name__} (one line of hex expected)"
            ) from None
