"""The keystore: named keys encrypted at rest under a local master key (LMK).

File (JSON): a header — format, test flag, the LMK's KCV, a salt — and the key table
encrypted with AES-256-GCM under ``HKDF-SHA256(LMK, salt)``, the header as associated data.
So a wrong LMK is told by its KCV (:class:`WrongComponents`) and any change to the file by the
GCM tag (:class:`KeystoreTampered`); neither opens, and the file is never rewritten on a
failed open. Writes are atomic (temporary file, fsync, rename).

A key is a label, an algorithm (``3DES`` 16/24 bytes or ``SM4``), a usage, a version and its
KCV; its value never leaves this module except to :mod:`hsm_stub.local` for computing, and
never appears in ``repr``, logs or errors.

The encrypted table also holds the registry of the TCP service's clients: an id, a role and
the secret of the HMAC handshake. ``ROLE_USAGES`` says which key usages each role may
invoke (docs/security-module.md, "Clients and roles"). Besides the KCV, the header carries
an ``lmk_check`` over every bit of the LMK, so components wrong only in their DES parity bits
(which the KCV cannot see) are told apart from a tampered file.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hsm_stub.errors import (
    Forbidden,
    KeystoreError,
    KeystoreTampered,
    KeyUsageError,
    UnknownKey,
    WrongComponents,
)
from hsm_stub.suites import TDES, CipherSuite, suite_for

FORMAT = "sscard-keystore/1"
LMK_LENGTH = 16

# ``external-auth`` opens write access on the card (the update key); ``read-auth`` only
# proves a card genuine (the read key) and is the one external authentication offices get;
# ``audit-mac`` keys the registry's audit chain (HMAC-SHA256, hsm_stub.local).
Usage = Literal[
    "master", "external-auth", "read-auth", "internal-auth", "card-id-mac", "pin", "audit-mac"
]
Operation = Literal[
    "external-auth", "internal-auth", "command-mac", "pin-reset", "card-id-mac", "kcv", "audit-mac"
]
USAGES: tuple[Usage, ...] = (
    "master",
    "external-auth",
    "read-auth",
    "internal-auth",
    "card-id-mac",
    "pin",
    "audit-mac",
)

# Which key usages may serve which operation.
OPERATION_USAGES: dict[Operation, frozenset[str]] = {
    "external-auth": frozenset({"external-auth", "read-auth", "master"}),
    "internal-auth": frozenset({"internal-auth"}),
    "command-mac": frozenset({"pin", "master", "external-auth"}),
    "pin-reset": frozenset({"pin"}),
    "card-id-mac": frozenset({"card-id-mac"}),
    "kcv": frozenset(USAGES),
    "audit-mac": frozenset({"audit-mac"}),
}

# Which key usages each client role may invoke, whatever the operation. Adding a usage for a
# role is one line here. An office authenticates with the read key, checks the 卡识别码,
# unblocks and resets PINs — never an update or master key.
# Both roles write the registry, so both seal its audit events (``audit-mac``).
ROLE_USAGES: dict[str, frozenset[str]] = {
    "card-center": frozenset(
        {"master", "external-auth", "read-auth", "internal-auth", "card-id-mac", "pin", "audit-mac"}
    ),
    "office": frozenset({"read-auth", "internal-auth", "card-id-mac", "pin", "audit-mac"}),
}
CLIENT_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
CLIENT_SECRET_LENGTH = 32
MIN_CLIENT_SECRET = 16

# Algorithm and key length each usage admits: the 卡识别码 MAC is MAC algorithm 3, which needs
# a double-length 3DES key; single DES is never accepted.
USAGE_KEYS: dict[str, frozenset[tuple[str, int]]] = {
    "master": frozenset({("3DES", 16), ("3DES", 24), ("SM4", 16)}),
    "external-auth": frozenset({("3DES", 16), ("3DES", 24), ("SM4", 16)}),
    "read-auth": frozenset({("3DES", 16), ("3DES", 24), ("SM4", 16)}),
    "internal-auth": frozenset({("3DES", 16), ("3DES", 24), ("SM4", 16)}),
    "pin": frozenset({("3DES", 16), ("3DES", 24), ("SM4", 16)}),
    "card-id-mac": frozenset({("3DES", 16), ("SM4", 16)}),
    # the registry's audit chain: HMAC-SHA256 keyed with the key's value (hsm_stub.local)
    "audit-mac": frozenset({("3DES", 16), ("3DES", 24), ("SM4", 16)}),
}

LABEL_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,31}")

# Documented, obviously-test material (docs/security-module.md). Never use outside tests
# and demos: `sscard hsm init --test-keys` marks such a keystore as a test keystore.
TEST_LMK = b"SSCARD TEST LMK!"
TEST_CLIENT_SECRET = b"SSCARD TEST HSM CLIENT SECRET"
TEST_OFFICE_SECRET = b"SSCARD TEST HSM OFFICE SECRET"
# The documented test clients of a test keystore: id → (role, secret).
TEST_CLIENTS: dict[str, tuple[str, bytes]] = {
    "test-center": ("card-center", TEST_CLIENT_SECRET),
    "test-office": ("office", TEST_OFFICE_SECRET),
}
TEST_KEYS: dict[str, tuple[str, Usage, bytes]] = {
    "mk": ("3DES", "master", b"SSCARD TEST MK 1"),
    "update": ("3DES", "external-auth", b"SSCARD TEST UPD1"),
    "read": ("3DES", "read-auth", b"SSCARD TEST READ"),
    "irk": ("3DES", "card-id-mac", b"SSCARD TEST IRK1"),
    "internal": ("3DES", "internal-auth", b"SSCARD TEST INT1"),
    "pin": ("3DES", "pin", b"SSCARD TEST PIN1"),
    "audit": ("3DES", "audit-mac", b"SSCARD TEST AUD1"),
}


@dataclass(frozen=True)
class KeyInfo:
    """What may be shown about a key."""

    label: str
    algorithm: str
    usage: str
    version: int
    kcv: bytes

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "algorithm": self.algorithm,
            "usage": self.usage,
            "version": self.version,
            "kcv": self.kcv.hex().upper(),
        }


class _Secret:
    """A key value that will not print itself."""

    __slots__ = ("value",)

    def __init__(self, value: bytes) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "<secret>"


@dataclass(frozen=True)
class _Key:
    info: KeyInfo
    secret: _Secret


@dataclass(frozen=True)
class Client:
    """A registered client of the TCP service: its id, role and handshake secret."""

    id: str
    role: str
    secret: _Secret

    @property
    def usages(self) -> frozenset[str]:
        return ROLE_USAGES[self.role]


def check_key(algorithm: str, usage: str, value: bytes) -> None:
    """Refuse an algorithm, length or usage the scheme does not allow."""
    if usage not in USAGES:
        raise KeyUsageError(f"unknown usage {usage!r}; known: {', '.join(USAGES)}")
    suite_for(algorithm)
    if (algorithm, len(value)) not in USAGE_KEYS[usage]:
        allowed = ", ".join(f"{a} {n} bytes" for a, n in sorted(USAGE_KEYS[usage]))
        raise KeyUsageError(
            f"a {algorithm} key of {len(value)} bytes cannot have usage {usage!r} "
            f"(allowed: {allowed})"
        )


def lmk_kcv(lmk: bytes) -> bytes:
    return TDES.kcv(lmk)


def lmk_check(lmk: bytes) -> str:
    """A check over every bit of the LMK (the KCV ignores the DES parity bits)."""
    return hmac.new(lmk, b"sscard LMK check", hashlib.sha256).hexdigest()[:16].upper()


def _aead(lmk: bytes, salt: bytes) -> AESGCM:
    key = HKDF(hashes.SHA256(), 32, salt, b"sscard keystore v1").derive(lmk)
    return AESGCM(key)


def _header_aad(header: dict[str, Any]) -> bytes:
    names = ["format", "test", "lmk_kcv", "salt", "custodians"]
    if "lmk_check" in header:  # keystores written before it have no such field
        names.append("lmk_check")
    fields = {k: header[k] for k in names}
    return json.dumps(fields, sort_keys=True).encode()


class Keystore:
    """An opened keystore. Create with :meth:`create`, open with :meth:`open`."""

    def __init__(
        self,
        path: Path,
        lmk: bytes,
        *,
        test: bool,
        keys: dict[str, _Key],
        clients: dict[str, Client] | None = None,
        custodians: int = 2,
    ) -> None:
        self.path = path
        self._lmk = _Secret(lmk)
        self.test = test
        self.custodians = custodians
        self._keys = keys
        self._clients = clients or {}

    # ----------------------------------------------------------------- files

    @classmethod
    def create(
        cls, path: str | Path, lmk: bytes, *, test: bool = False, custodians: int = 2
    ) -> Keystore:
        path = Path(path)
        if len(lmk) != LMK_LENGTH:
            raise KeystoreError(f"the LMK is {LMK_LENGTH} bytes")
        if path.exists():
            raise KeystoreError(f"{path} exists; refusing to overwrite a keystore")
        store = cls(path, lmk, test=test, keys={}, custodians=custodians)
        store.save()
        return store

    @classmethod
    def create_test(cls, path: str | Path) -> Keystore:
        """A keystore holding the documented test keys and test clients under the test LMK."""
        store = cls.create(path, TEST_LMK, test=True)
        for label, (algorithm, usage, value) in TEST_KEYS.items():
            store.put(label, algorithm, usage, value)
        for client_id, (role, secret) in TEST_CLIENTS.items():
            store.add_client(client_id, role, secret=secret)
        return store

    @staticmethod
    def read_header(path: str | Path) -> dict[str, Any]:
        path = Path(path)
        try:
            header = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise KeystoreError(f"keystore {path} does not exist") from None
        except (OSError, ValueError) as exc:
            raise KeystoreTampered(f"keystore {path} is not readable: {exc}") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise KeystoreTampered(f"{path} is not a {FORMAT} keystore")
        return header

    @classmethod
    def open(cls, path: str | Path, lmk: bytes | None = None) -> Keystore:
        """Open with the LMK; a test keystore opens with ``lmk=None``."""
        path = Path(path)
        header = cls.read_header(path)
        test = header.get("test") is True
        if lmk is None:
            if not test:
                raise WrongComponents(
                    f"{path} is a production keystore: its custodians' "
                    "components are needed to open it"
                )
            lmk = TEST_LMK
            if lmk_kcv(lmk).hex().upper() != header.get("lmk_kcv"):
                raise KeystoreTampered(f"{path} claims to be a test keystore but is not one")
        try:
            if lmk_kcv(lmk).hex().upper() != header["lmk_kcv"]:
                raise WrongComponents(
                    "the components do not give this keystore's LMK (KCV "
                    f"{lmk_kcv(lmk).hex().upper()} ≠ {header['lmk_kcv']}); nothing was changed"
                )
            if "lmk_check" in header and lmk_check(lmk) != header["lmk_check"]:
                raise WrongComponents(
                    "组件奇偶校验位有误 the components give the right KCV but differ in their "
                    "DES parity bits (the low bit of a byte), which the KCV cannot see: "
                    "check each component digit by digit; nothing was changed"
                )
            salt = bytes.fromhex(header["salt"])
            plain = _aead(lmk, salt).decrypt(
                bytes.fromhex(header["nonce"]),
                bytes.fromhex(header["ciphertext"]),
                _header_aad(header),
            )
            table = json.loads(plain)
            if isinstance(table, list):  # written before the client registry existed
                table = {"keys": table, "clients": []}
            keys = {}
            for entry in table["keys"]:
                value = bytes.fromhex(entry["value"])
                suite = suite_for(entry["algorithm"])
                info = KeyInfo(
                    entry["label"],
                    entry["algorithm"],
                    entry["usage"],
                    int(entry["version"]),
                    suite.kcv(value),
                )
                keys[info.label] = _Key(info, _Secret(value))
            clients = {
                str(c["id"]): Client(
                    str(c["id"]), str(c["role"]), _Secret(bytes.fromhex(c["secret"]))
                )
                for c in table["clients"]
            }
        except InvalidTag:
            raise KeystoreTampered(
                f"keystore {path} failed its integrity check: it was altered or corrupted"
            ) from None
        except (KeyError, TypeError, ValueError) as exc:
            raise KeystoreTampered(f"keystore {path} is malformed ({type(exc).__name__})") from None
        return cls(
            path, lmk, test=test, keys=keys, clients=clients, custodians=int(header["custodians"])
        )

    def save(self) -> None:
        salt = os.urandom(16)
        nonce = os.urandom(12)
        header: dict[str, Any] = {
            "format": FORMAT,
            "test": self.test,
            "lmk_kcv": lmk_kcv(self._lmk.value).hex().upper(),
            "lmk_check": lmk_check(self._lmk.value),
            "salt": salt.hex(),
            "custodians": self.custodians,
        }
        table = {
            "keys": [
                {**k.info.as_dict(), "value": k.secret.value.hex()} for k in self._keys.values()
            ],
            "clients": [
                {"id": c.id, "role": c.role, "secret": c.secret.value.hex()}
                for c in self._clients.values()
            ],
        }
        ciphertext = _aead(self._lmk.value, salt).encrypt(
            nonce, json.dumps(table).encode(), _header_aad(header)
        )
        header |= {"nonce": nonce.hex(), "ciphertext": ciphertext.hex()}
        directory = self.path.parent if str(self.path.parent) else Path(".")
        fd, tmp = tempfile.mkstemp(prefix=self.path.name, suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(header, fh, indent=1)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # ----------------------------------------------------------------- keys

    def put(self, label: str, algorithm: str, usage: str, value: bytes) -> KeyInfo:
        """Add a key, or a new version of an existing label; saves the file."""
        if not LABEL_RE.fullmatch(label):
            raise KeystoreError(
                f"label {label!r} must be 1-32 of a-z 0-9 . _ - and start with a letter or digit"
            )
        check_key(algorithm, usage, value)
        previous = self._keys.get(label)
        version = previous.info.version + 1 if previous else 1
        info = KeyInfo(label, algorithm, usage, version, suite_for(algorithm).kcv(value))
        self._keys[label] = _Key(info, _Secret(value))
        self.save()
        return info

    def list(self) -> list[KeyInfo]:
        return [k.info for k in sorted(self._keys.values(), key=lambda k: k.info.label)]

    def info(self, label: str) -> KeyInfo:
        return self._get(label).info

    def _get(self, label: str) -> _Key:
        try:
            return self._keys[label]
        except KeyError:
            raise UnknownKey(f"no key labelled {label!r} in {self.path}") from None

    def use(
        self, label: str, operation: Operation, *, role: str | None = None
    ) -> tuple[CipherSuite, bytes]:
        """The suite and key value for ``operation``, if the key's usage allows it and —
        when a client's ``role`` is given — the role may invoke that usage."""
        key = self._get(label)
        if role is not None and key.info.usage not in ROLE_USAGES[role]:
            raise Forbidden(
                f"角色 {role} 无权使用该密钥 role {role!r} may not use key {label!r} "
                f"(usage {key.info.usage!r})"
            )
        if key.info.usage not in OPERATION_USAGES[operation]:
            raise KeyUsageError(
                f"key {label!r} has usage {key.info.usage!r}, which does not allow {operation}"
            )
        return suite_for(key.info.algorithm), key.secret.value

    def export_for_issuance(self, label: str) -> tuple[str, bytes]:
        """(algorithm, root key) for loading a simulated PSAM or card factory — test keys
        only: a production key never leaves the keystore in clear (a real PSAM is loaded
        by its issuer under a transport key, which this project does not model)."""
        self.check_exportable()
        key = self._get(label)
        return key.info.algorithm, key.secret.value

    def check_exportable(self) -> None:
        """Refuse unless this is a test keystore, whose keys may be written out in clear."""
        if not self.test:
            raise KeystoreError(
                "生产密钥不得明文导出 a production keystore's keys are never written out in "
                "clear; simulated PSAMs and cards take test keystores only"
            )

    # ----------------------------------------------------------------- clients

    def add_client(self, client_id: str, role: str, *, secret: bytes | None = None) -> bytes:
        """Register a client of the TCP service; returns its secret (generated when not
        given) — the caller shows it once. Saves the file."""
        if not CLIENT_ID_RE.fullmatch(client_id):
            raise KeystoreError(
                f"client id {client_id!r} must be 1-64 of A-Z a-z 0-9 . _ - "
                "and start with a letter or digit"
            )
        if role not in ROLE_USAGES:
            raise KeystoreError(f"unknown role {role!r}; known: {', '.join(ROLE_USAGES)}")
        if client_id in self._clients:
            raise KeystoreError(f"client {client_id!r} exists; nothing was changed")
        secret = os.urandom(CLIENT_SECRET_LENGTH) if secret is None else secret
        if len(secret) < MIN_CLIENT_SECRET:
            raise KeystoreError(f"a client secret is at least {MIN_CLIENT_SECRET} bytes")
        self._clients[client_id] = Client(client_id, role, _Secret(secret))
        self.save()
        return secret

    def remove_client(self, client_id: str) -> None:
        if self._clients.pop(client_id, None) is None:
            raise KeystoreError(f"no client {client_id!r}")
        self.save()

    def client(self, client_id: str) -> Client | None:
        return self._clients.get(client_id)

    def clients(self) -> builtins.list[Client]:
        return sorted(self._clients.values(), key=lambda c: c.id)

    def __repr__(self) -> str:
        return f"Keystore({str(self.path)!r}, test={self.test}, keys={len(self._keys)})"
