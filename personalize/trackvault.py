"""Issuer track images at rest: the stripe data the bank supplies for a card is stored
encrypted (AES-256-GCM, the job id as associated data) and decrypted only to hand it to the
encoder. The key is a 32-byte file (hex) kept beside the station's configuration;
``TrackVault.create`` makes one with mode 600 (``sscard hsm new-track-key``) and never
replaces an existing key — the track images sealed under it would no longer open.

A key is named by its check value (``kcv``): the first 3 bytes of the AES encryption of a
zero block, as payment security modules show AES key check values (ANSI X9.24-1); it
identifies the key without revealing it."""

from __future__ import annotations

import json
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class VaultError(Exception):
    """The track key is missing or wrong, or a sealed blob was altered."""


class TrackVault:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise VaultError("the track key is 32 bytes")
        self._aead = AESGCM(key)
        zero_block = Cipher(algorithms.AES(key), modes.ECB()).encryptor().update(bytes(16))
        self.kcv = zero_block[:3].hex().upper()

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
        """A new random key written to ``path`` (mode 600); an existing file is refused."""
        key = os.urandom(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise VaultError(
                f"磁道密钥文件已存在，拒绝覆盖：{path} (a track key exists; refusing to replace it)"
            ) from None
        except OSError as exc:
            raise VaultError(
                f"无法创建磁道密钥文件：{path} (cannot create the track key: {exc.strerror})"
            ) from None
        try:
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(key.hex())
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            Path(path).unlink(missing_ok=True)
            raise VaultError(
                f"无法写入磁道密钥文件：{path} (cannot write the track key: {exc.strerror})"
            ) from None
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
