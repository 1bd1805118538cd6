"""The security module's host protocol over TCP (docs/security-module.md has the full
description).

* Frame: 4-byte big-endian length (1 … 65 536), then the payload. A larger or zero length
  is a protocol violation: the server closes the connection. A frame has a deadline from its
  first byte to its last (not per ``recv``: a peer sending a byte at a time cannot stretch it).
* Handshake, in the clear: the server sends ``SSHSM1 ‖ server nonce (16)``; the client sends
  ``01 ‖ fields(client id, client nonce (16), HMAC-SHA256(secret, SSHSM1 ‖ server nonce ‖
  client nonce ‖ client id))``; the server answers ``00 ‖ fields(HMAC-SHA256(secret, "server"
  ‖ server nonce ‖ client nonce))`` or an error and closes. Both sides then derive two
  AES-256-GCM keys with HKDF-SHA256(secret, nonces) and every later payload is encrypted,
  the 96-bit nonce being a per-direction counter — so PINs never cross the socket in clear.
* Request payload: operation code (1 byte) ‖ fields; response: status (1 byte) ‖ fields, or
  status ‖ UTF-8 message. A field is a 2-byte length and its bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import socket
import time
from enum import IntEnum

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hsm_stub.errors import (
    AuthenticationRefused,
    BadInput,
    Forbidden,
    KeyUsageError,
    ProtocolViolation,
    SecurityModuleError,
    UnknownKey,
)

MAGIC = b"SSHSM1"
NONCE_LENGTH = 16
MAX_FRAME = 65_536
RECV_SIZE = 16_384  # what one recv of a FrameReader takes at most
DEFAULT_PORT = 9630


class Op(IntEnum):
    AUTH = 0x01
    EXTERNAL_AUTH = 0x10
    COMMAND_MAC = 0x11
    PIN_RESET_BLOCK = 0x12
    CARD_ID_MAC = 0x13
    KCV = 0x14
    AUDIT_MAC = 0x15
    INTERNAL_AUTH = 0x16


class Status(IntEnum):
    OK = 0x00
    MALFORMED = 0x01
    UNKNOWN_OP = 0x02
    UNKNOWN_KEY = 0x03
    KEY_USAGE = 0x04
    BAD_INPUT = 0x05
    NOT_AUTHENTICATED = 0x06
    BUSY = 0x07
    INTERNAL = 0x08
    FORBIDDEN = 0x09


STATUS_ERRORS: dict[Status, type[SecurityModuleError]] = {
    Status.MALFORMED: ProtocolViolation,
    Status.UNKNOWN_OP: ProtocolViolation,
    Status.UNKNOWN_KEY: UnknownKey,
    Status.KEY_USAGE: KeyUsageError,
    Status.BAD_INPUT: BadInput,
    Status.NOT_AUTHENTICATED: AuthenticationRefused,
    Status.FORBIDDEN: Forbidden,
}


def status_for(exc: SecurityModuleError) -> Status:
    for status, cls in STATUS_ERRORS.items():
        if type(exc) is cls:
            return status
    return Status.INTERNAL


class ConnectionClosed(Exception):
    """The peer closed the connection (or it broke)."""


class FrameTimeout(ProtocolViolation):
    """A frame did not arrive whole before its deadline."""


def _recv(sock: socket.socket, n: int, deadline: float | None) -> bytes:
    """One ``recv`` of at most ``n`` bytes; with a ``deadline`` (``time.monotonic()``) it
    waits only for what is left of it."""
    if deadline is None:
        chunk = sock.recv(n)
    else:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FrameTimeout("the frame did not arrive before its deadline")
        previous = sock.gettimeout()
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(n)
        except TimeoutError:
            raise FrameTimeout("the frame did not arrive before its deadline") from None
        finally:
            sock.settimeout(previous)
    if not chunk:
        raise ConnectionClosed("connection closed by peer")
    return chunk


def _recv_exact(sock: socket.socket, n: int, deadline: float | None) -> bytes:
    """``n`` bytes, not one more; the deadline holds for the whole read."""
    buf = bytearray()
    while len(buf) < n:
        buf += _recv(sock, n - len(buf), deadline)
    return bytes(buf)


def _frame_deadline(deadline: float | None, frame_timeout: float | None) -> float | None:
    """The deadline of a frame whose first byte just arrived."""
    if frame_timeout is None:
        return deadline
    end = time.monotonic() + frame_timeout
    return end if deadline is None else min(deadline, end)


def _frame_length(header: bytes | bytearray) -> int:
    length = int.from_bytes(header, "big")
    if not 1 <= length <= MAX_FRAME:
        raise ProtocolViolation(f"frame length {length} outside 1..{MAX_FRAME}")
    return length


def read_frame(
    sock: socket.socket, *, frame_timeout: float | None = None, deadline: float | None = None
) -> bytes:
    """Read one frame and nothing after it. ``frame_timeout`` bounds the time from its first
    byte to its last; ``deadline`` (a ``time.monotonic()`` instant) bounds the whole read,
    the wait for the first byte included. Waiting for the first byte otherwise uses the
    socket's timeout."""
    first = _recv_exact(sock, 1, deadline)
    deadline = _frame_deadline(deadline, frame_timeout)
    length = _frame_length(first + _recv_exact(sock, 3, deadline))
    return _recv_exact(sock, length, deadline)


class FrameReader:
    """The frames of one connection, read with :func:`read_frame`'s deadlines in as few
    ``recv`` calls as the peer's writes allow: each call takes whatever has arrived (a whole
    frame usually comes in one), and bytes after a frame wait here for the next read."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = bytearray()

    def read(self, *, frame_timeout: float | None = None) -> bytes:
        if not self._buffer:
            self._buffer += _recv(self.sock, RECV_SIZE, None)
        deadline = _frame_deadline(None, frame_timeout)
        while len(self._buffer) < 4:
            self._buffer += _recv(self.sock, RECV_SIZE, deadline)
        end = 4 + _frame_length(self._buffer[:4])
        while len(self._buffer) < end:
            self._buffer += _recv(self.sock, RECV_SIZE, deadline)
        frame = bytes(self._buffer[4:end])
        del self._buffer[:end]
        return frame


def write_frame(sock: socket.socket, payload: bytes) -> None:
    if not 1 <= len(payload) <= MAX_FRAME:
        raise ProtocolViolation(f"frame of {len(payload)} bytes outside 1..{MAX_FRAME}")
    sock.sendall(len(payload).to_bytes(4, "big") + payload)


def pack_fields(*fields: bytes) -> bytes:
    out = bytearray()
    for f in fields:
        if len(f) > 0xFFFF:
            raise ProtocolViolation("a field is at most 65535 bytes")
        out += len(f).to_bytes(2, "big") + f
    return bytes(out)


def unpack_fields(data: bytes, count: int) -> list[bytes]:
    """Exactly ``count`` fields and nothing after them."""
    fields, pos = [], 0
    for _ in range(count):
        if pos + 2 > len(data):
            raise ProtocolViolation(f"expected {count} fields, the payload ends early")
        n = int.from_bytes(data[pos : pos + 2], "big")
        pos += 2
        if pos + n > len(data):
            raise ProtocolViolation("a field runs past the end of the payload")
        fields.append(data[pos : pos + n])
        pos += n
    if pos != len(data):
        raise ProtocolViolation(f"{len(data) - pos} unexpected bytes after {count} fields")
    return fields


def client_proof(secret: bytes, server_nonce: bytes, client_nonce: bytes, client: bytes) -> bytes:
    return hmac.new(secret, MAGIC + server_nonce + client_nonce + client, hashlib.sha256).digest()


def server_proof(secret: bytes, server_nonce: bytes, client_nonce: bytes) -> bytes:
    return hmac.new(secret, b"server" + server_nonce + client_nonce, hashlib.sha256).digest()


class SecureChannel:
    """AES-256-GCM on every frame after the handshake, counter nonces per direction."""

    def __init__(self, secret: bytes, server_nonce: bytes, client_nonce: bytes, *, server: bool):
        keys = HKDF(hashes.SHA256(), 64, server_nonce + client_nonce, b"sscard-hsm v1").derive(
            secret
        )
        c2s, s2c = AESGCM(keys[:32]), AESGCM(keys[32:])
        self._send, self._recv = (s2c, c2s) if server else (c2s, s2c)
        self._send_n = 0
        self._recv_n = 0
        self._reader: FrameReader | None = None

    def send(self, sock: socket.socket, payload: bytes) -> None:
        nonce = self._send_n.to_bytes(12, "big")
        self._send_n += 1
        write_frame(sock, self._send.encrypt(nonce, payload, None))

    def recv(self, sock: socket.socket, *, frame_timeout: float | None = None) -> bytes:
        if self._reader is None or self._reader.sock is not sock:
            self._reader = FrameReader(sock)  # the handshake read exactly: nothing is lost
        frame = self._reader.read(frame_timeout=frame_timeout)
        nonce = self._recv_n.to_bytes(12, "big")
        self._recv_n += 1
        try:
            return self._recv.decrypt(nonce, frame, None)
        except InvalidTag:
            raise ProtocolViolation("a frame failed its integrity check") from None
