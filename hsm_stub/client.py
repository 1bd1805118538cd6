"""TCP client backend of :class:`SecurityModule` for ``sscard hsm serve``.

One connection, one request at a time (a lock makes the object safe to share between
threads). A server that is down, goes away mid-request or stops answering within
``timeout`` raises :class:`SecurityModuleUnavailable`; the next call connects afresh.
"""

from __future__ import annotations

import hmac
import os
import socket
import threading

from hsm_stub.cryptograms import CardFactors
from hsm_stub.errors import (
    AuthenticationRefused,
    ProtocolViolation,
    SecurityModuleError,
    SecurityModuleUnavailable,
)
from hsm_stub.module import AUDIT_KEY_LABEL, SecurityModule
from hsm_stub.protocol import (
    MAGIC,
    NONCE_LENGTH,
    STATUS_ERRORS,
    ConnectionClosed,
    Op,
    SecureChannel,
    Status,
    client_proof,
    pack_fields,
    read_frame,
    server_proof,
    unpack_fields,
    write_frame,
)


class TcpSecurityModule(SecurityModule):
    def __init__(
        self,
        host: str,
        port: int,
        *,
        secret: bytes,
        client_id: str,
        timeout: float = 10.0,
    ) -> None:
        self.host, self.port = host, port
        self._secret = secret
        self.client_id = client_id
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._channel: SecureChannel | None = None
        self._lock = threading.Lock()

    def _connect(self) -> tuple[socket.socket, SecureChannel]:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as exc:
            raise SecurityModuleUnavailable(
                f"security module at {self.host}:{self.port} unreachable: {exc}"
            ) from None
        try:
            hello = read_frame(sock)
            if not hello.startswith(MAGIC) or len(hello) != len(MAGIC) + NONCE_LENGTH:
                if hello[:1] == bytes((Status.BUSY,)):
                    reason = hello[1:].decode("utf-8", "replace")
                    raise SecurityModuleUnavailable(f"security module busy: {reason}")
                raise ProtocolViolation("not a security module (bad greeting)")
            server_nonce = hello[len(MAGIC) :]
            client_nonce = os.urandom(NONCE_LENGTH)
            ident = self.client_id.encode()
            proof = client_proof(self._secret, server_nonce, client_nonce, ident)
            write_frame(sock, bytes((Op.AUTH,)) + pack_fields(ident, client_nonce, proof))
            answer = read_frame(sock)
            if answer[:1] != bytes((Status.OK,)):
                raise AuthenticationRefused(
                    f"security module refused this client: {answer[1:].decode(errors='replace')}"
                )
            (theirs,) = unpack_fields(answer[1:], 1)
            if not hmac.compare_digest(
                theirs, server_proof(self._secret, server_nonce, client_nonce)
            ):
                raise AuthenticationRefused("the server could not prove it knows the secret")
        except (OSError, ConnectionClosed) as exc:
            sock.close()
            raise SecurityModuleUnavailable(f"security module handshake failed: {exc}") from None
        except SecurityModuleError:
            sock.close()
            raise
        return sock, SecureChannel(self._secret, server_nonce, client_nonce, server=False)

    def _call(self, op: Op, *fields: bytes) -> bytes:
        with self._lock:
            if self._sock is None or self._channel is None:
                self._sock, self._channel = self._connect()
            sock, channel = self._sock, self._channel
            try:
                channel.send(sock, bytes((op,)) + pack_fields(*fields))
                answer = channel.recv(sock)
            except (OSError, ConnectionClosed, ProtocolViolation) as exc:
                self._drop()
                raise SecurityModuleUnavailable(
                    f"security module at {self.host}:{self.port} stopped answering: "
                    f"{type(exc).__name__}"
                ) from None
        status = answer[0]
        if status == Status.OK:
            (result,) = unpack_fields(answer[1:], 1)
            return result
        message = answer[1:].decode("utf-8", "replace")
        try:
            known = Status(status)
        except ValueError:
            known = Status.INTERNAL
        raise STATUS_ERRORS.get(known, SecurityModuleError)(message)

    def _drop(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock, self._channel = None, None

    def close(self) -> None:
        with self._lock:
            self._drop()

    # ----------------------------------------------------------------- interface

    def external_auth(
        self, label: str, card_factors: CardFactors, challenge: bytes, auth_factor: bytes
    ) -> bytes:
        return self._call(
            Op.EXTERNAL_AUTH, label.encode(), card_factors.to_bytes(), challenge, auth_factor
        )

    def command_mac(
        self, label: str, card_factors: CardFactors, challenge: bytes, data: bytes
    ) -> bytes:
        return self._call(Op.COMMAND_MAC, label.encode(), card_factors.to_bytes(), challenge, data)

    def pin_reset_block(
        self, label: str, card_factors: CardFactors, challenge: bytes, pin: str
    ) -> bytes:
        return self._call(
            Op.PIN_RESET_BLOCK, label.encode(), card_factors.to_bytes(), challenge, pin.encode()
        )

    def internal_auth(self, label: str, card_factors: CardFactors, data: bytes) -> bytes:
        return self._call(Op.INTERNAL_AUTH, label.encode(), card_factors.to_bytes(), data)

    def card_id_mac(self, label: str, sn: bytes, data12: bytes) -> bytes:
        return self._call(Op.CARD_ID_MAC, label.encode(), sn, data12)

    def kcv(self, label: str) -> bytes:
        return self._call(Op.KCV, label.encode())

    def audit_mac(self, data: bytes, label: str = AUDIT_KEY_LABEL) -> bytes:
        return self._call(Op.AUDIT_MAC, label.encode(), data)
