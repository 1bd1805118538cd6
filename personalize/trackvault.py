"""Issuer track images at rest: the stripe data the bank supplies for a card is stored
encrypted (AES-256-GCM, the job id as associated data) and decrypted only to hand it to the
encoder. The key is a 32-byte file (hex) kept beside the station's configuration;
``TrackVault.create`` makes one with mode 600."""

from __future__ import annotations

import json
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class VaultError(Exception):
    """The track key is missing or wrong, or a sealed blob was altered."""


class TrackVault:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise VaultError("the track key is 32 bytes")
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "TrackVault(<key>)"

    @classmethod
    def from_file(cls, path: str | Path) -> TrackVault:
        try:
            return cls(bytes.fromhex(Path(path).read_text(encoding="ascii").strip()))
        except (OSError, ValueError) as exc:
            raise VaultError(f"cannot read the track key {path}: {type(exc).__name__}") from None

    @classmethod
    def create(cls, path: str | Path) -> TrackVault:
        key = os.urandom(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(key.hex())
        return cls(key)

    def seal(self, tracks: dict[int, str], context: str) -> bytes:
        nonce = os.urandom(12)
        plain = json.dumps({str(n): data for n, data in tracks.items()}).encode()
        return nonce + self._aead.encrypt(nonce, plain, context.encode())

    def open(self, blob: bytes, context: str) -> dict[int, str]:
        try:
            plain = self._aead.decrypt(blob[:12], blob[12:], context.encode())
        except (InvalidTag, ValueError):
            raise VaultError("sealed track data does not open: wrong key or altered") from None
        return {int(n): str(data) for n, data in json.loads(plain).items()}
