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
    registry = "registry.db"             # or "postgresql://sscard@db.example:5432/sscard"
    audit_hsm = "tcp://10.0.0.1:9630"    # optional: the module of the registry's audit key
                                         # (default: hsm; needed when hsm is a PSAM)
    audit_checkpoints = "audit.log"      # optional: the audit checkpoint log (default:
                                         # registry.db.checkpoints beside the registry;
                                         # for a URL: HOST-PORT-NAME.checkpoints beside
                                         # this file)
    policy = "default"
    out_dir = "out"
    lease_seconds = 600                  # optional: how long a claim or heartbeat holds a job
                                         # (station run renews it every third of that)
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from apdu.pcsc import PcscTransport
from hsm_stub.client import TcpSecurityModule
from hsm_stub.keystore import TEST_CLIENTS, Keystore
from hsm_stub.local import LocalSecurityModule
from hsm_stub.module import SecurityModule
from hsm_stub.psam import PsamSecurityModule
from personalize.database import checkpoint_default, is_url
from personalize.policy import RegionPolicy
from personalize.registry import Clock, Registry, utc_now


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
    registry: Path | str  # a SQLite file, or a postgresql:// URL
    policy: str
    out_dir: Path
    audit_hsm: str | None = None  # the audit key's module, when ``hsm`` cannot MAC (a PSAM)
    audit_checkpoints: Path | None = None  # default: beside the registry (Registry)
    lease_seconds: float = 600.0  # a job's lease: claim, step record, heartbeat

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.lease_seconds)

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
                registry=str(d["registry"]) if is_url(d["registry"]) else rel(d["registry"]),
                policy=str(d.get("policy", "default")),
                out_dir=rel(d.get("out_dir", "out")),
                audit_hsm=str(d["audit_hsm"]) if "audit_hsm" in d else None,
                audit_checkpoints=(
                    rel(d["audit_checkpoints"])
                    if "audit_checkpoints" in d
                    else rel(checkpoint_default(d["registry"]))
                    if is_url(d["registry"])
                    else None
                ),
                lease_seconds=_positive(d.get("lease_seconds", 600), "lease_seconds", path),
            )
        except KeyError as exc:
            raise StationError(f"station file {path} lacks {exc}") from None

    def security_module(self) -> SecurityModule:
        return open_security_module(
            self.hsm, client_id=self.hsm_client, secret_file=self.hsm_secret_file
        )

    def audit_module(self) -> SecurityModule:
        """The module holding the registry's audit key: ``audit_hsm`` if the station names
        one (a street office whose ``hsm`` is a PSAM), else ``hsm``."""
        spec = self.audit_hsm or self.hsm
        if spec.startswith("psam:"):
            raise StationError(
                "PSAM 不持有审计密钥：请在工作站文件中设置 audit_hsm（卡管中心安全模块）"
                "(a PSAM holds no audit key: set audit_hsm to the card center's module)"
            )
        return open_security_module(
            spec, client_id=self.hsm_client, secret_file=self.hsm_secret_file
        )

    def open_registry(
        self, policy: RegionPolicy, *, create: bool = False, clock: Clock = utc_now
    ) -> Registry:
        """The station's registry, its audit chain keyed by the station's audit module and
        checkpointed to ``audit_checkpoints``."""
        return Registry(
            self.registry,
            policy,
            create=create,
            clock=clock,
            audit_key=self.audit_module().audit_mac,
            checkpoints=self.audit_checkpoints,
        )


def _positive(value: object, key: str, path: Path) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise StationError(
            f"工作站文件 {path} 的 {key} 须为正数秒 ({key} must be a positive number of seconds)"
        )
    return float(value)


def client_secret(client_id: str, secret_file: Path | None) -> bytes:
    """A security-module client's secret from its file (one line of hex); the documented
    test clients (``test-center``, ``test-office``) have theirs built in."""
    if secret_file is None:
        if client_id in TEST_CLIENTS:
            return TEST_CLIENTS[client_id][1]
        raise StationError(
            f"缺少客户端密钥文件 hsm_secret_file: the security-module client {client_id!r} "
            "needs its secret file (hsm_secret_file / --hsm-secret-file)"
        )
    try:
        return bytes.fromhex(secret_file.read_text(encoding="ascii").strip())
    except (OSError, ValueError) as exc:
        raise StationError(
            f"客户端密钥文件不可用 {secret_file}: {type(exc).__name__} "
            "(the client secret file: one line of hex expected)"
        ) from None


def open_security_module(
    spec: str, *, client_id: str, secret_file: Path | None = None
) -> SecurityModule:
    """A security module from its address: ``tcp://HOST:PORT`` as client ``client_id``
    (secret from ``secret_file``), ``keystore:PATH`` (in process) or ``psam:READER``."""
    if spec.startswith("tcp://"):
        host, _, port = spec[len("tcp://") :].rpartition(":")
        secret = client_secret(client_id, secret_file)
        return TcpSecurityModule(host, int(port), secret=secret, client_id=client_id)
    if spec.startswith("keystore:"):
        return LocalSecurityModule(Keystore.open(spec[len("keystore:") :]))
    if spec.startswith("psam:"):
        transport = PcscTransport(spec[len("psam:") :])
        transport.connect()
        return PsamSecurityModule(transport, owns_transport=True)
    raise StationError(f"hsm must be tcp://HOST:PORT, keystore:PATH or psam:READER, not {spec!r}")
