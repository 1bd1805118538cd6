"""``sscard hsm serve``: the security module as a TCP service (protocol: :mod:`protocol`).

Binds loopback by default. Each connection is authenticated (HMAC challenge on the secret
of a client registered in the keystore) and every request is authorized by the client's role
(``ROLE_USAGES``), then served one request at a time. Limits: at most ``max_clients``
connections at once and ``max_per_address`` from one client address (the next one is told
BUSY and closed); the whole handshake within ``handshake_timeout`` of the connection, so an
unauthenticated client holds a slot a few seconds at most; each request frame whole within
``request_timeout`` of its first byte (a deadline per frame, not per ``recv``); an idle
connection is closed after ``idle_timeout``. A malformed or oversize frame closes that
connection only. Every key use and every refusal is written to the audit log.

With ``workers`` > 1 the connections are served by that many forked worker processes
(:mod:`hsm_stub.workers`), so the service computes on as many cores; this process keeps the
listener and the limits. The workers are forked when the server is made: make it before
the process starts any thread (``sscard hsm serve`` does).
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
import socket
import socketserver
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from hsm_stub.audit import AuditLog
from hsm_stub.cryptograms import CardFactors
from hsm_stub.errors import BadInput, ProtocolViolation, SecurityModuleError
from hsm_stub.keystore import MIN_CLIENT_SECRET
from hsm_stub.local import LocalSecurityModule
from hsm_stub.module import SecurityModule
from hsm_stub.protocol import (
    MAGIC,
    NONCE_LENGTH,
    ConnectionClosed,
    Op,
    SecureChannel,
    Status,
    client_proof,
    pack_fields,
    read_frame,
    server_proof,
    status_for,
    unpack_fields,
    write_frame,
)
from hsm_stub.workers import NoWorker, WorkerPool

log = logging.getLogger(__name__)

Handler = Callable[[SecurityModule, list[bytes]], bytes]


def _text(field: bytes, what: str) -> str:
    try:
        return field.decode("ascii")
    except UnicodeDecodeError:
        raise BadInput(f"{what} must be ASCII") from None


def _external_auth(m: SecurityModule, f: list[bytes]) -> bytes:
    return m.external_auth(_text(f[0], "label"), CardFactors.from_bytes(f[1]), f[2], f[3])


def _command_mac(m: SecurityModule, f: list[bytes]) -> bytes:
    return m.command_mac(_text(f[0], "label"), CardFactors.from_bytes(f[1]), f[2], f[3])


def _pin_reset(m: SecurityModule, f: list[bytes]) -> bytes:
    factors = CardFactors.from_bytes(f[1])
    return m.pin_reset_block(_text(f[0], "label"), factors, f[2], _text(f[3], "PIN"))


def _internal_auth(m: SecurityModule, f: list[bytes]) -> bytes:
    return m.internal_auth(_text(f[0], "label"), CardFactors.from_bytes(f[1]), f[2])


def _card_id_mac(m: SecurityModule, f: list[bytes]) -> bytes:
    return m.card_id_mac(_text(f[0], "label"), f[1], f[2])


def _kcv(m: SecurityModule, f: list[bytes]) -> bytes:
    return m.kcv(_text(f[0], "label"))


def _audit_mac(m: SecurityModule, f: list[bytes]) -> bytes:
    return m.audit_mac(f[1], _text(f[0], "label"))


@dataclass(frozen=True)
class Operation:
    name: str
    fields: int
    handler: Handler
    sn_field: int | None  # the field whose first 8 bytes are the card SN, for the audit


OPERATIONS: dict[int, Operation] = {
    Op.EXTERNAL_AUTH: Operation("external-auth", 4, _external_auth, 1),
    Op.COMMAND_MAC: Operation("command-mac", 4, _command_mac, 1),
    Op.PIN_RESET_BLOCK: Operation("pin-reset-block", 4, _pin_reset, 1),
    Op.CARD_ID_MAC: Operation("card-id-mac", 3, _card_id_mac, 1),
    Op.KCV: Operation("kcv", 1, _kcv, None),
    Op.AUDIT_MAC: Operation("audit-mac", 2, _audit_mac, None),
    Op.INTERNAL_AUTH: Operation("internal-auth", 3, _internal_auth, 1),
}


class HsmServer:
    def __init__(
        self,
        module: LocalSecurityModule,
        *,
        audit: AuditLog,
        host: str = "127.0.0.1",
        port: int = 0,
        max_clients: int = 64,
        max_per_address: int = 16,
        handshake_timeout: float = 3.0,
        request_timeout: float = 10.0,
        idle_timeout: float = 300.0,
        workers: int = 1,
    ) -> None:
        if workers < 1:
            raise ValueError("a security module needs at least one worker")
        self.module = module
        self.audit = audit
        self.handshake_timeout = handshake_timeout
        self.request_timeout = request_timeout
        self.idle_timeout = idle_timeout
        self.max_per_address = max_per_address
        self._slots = threading.BoundedSemaphore(max_clients)
        self._per_address: Counter[str] = Counter()
        self._address_lock = threading.Lock()
        self._lock = threading.Lock()  # a process computes one request at a time
        self._pool: WorkerPool | None = None
        outer = self

        class _Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                outer._serve_connection(self.request, self.client_address)

        class _Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 128  # the default 5 drops bursts of connections

        self._server = _Server((host, port), _Handler)
        address = self._server.server_address
        self.host, self.port = str(address[0]), int(address[1])
        self._thread: threading.Thread | None = None
        if workers > 1:  # forked now, before this process starts a thread of its own
            self._pool = WorkerPool(
                workers, self._serve_admitted, close_in_workers=self._server.socket
            )

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> HsmServer:
        """Serve on a thread of this process; :meth:`stop` ends it."""
        self._thread = threading.Thread(target=self.serve_forever, name="hsm-server", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve on this thread until :meth:`stop` (from another thread) or an exception
        (the CLI's SIGTERM and Ctrl-C), after which the caller calls :meth:`stop`."""
        self._server.serve_forever(poll_interval=0.1)

    def stop(self) -> None:
        if self._thread is not None:  # serving on our own thread: end its loop first
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()
        if self._pool is not None:
            self._pool.close()

    # ----------------------------------------------------------------- connections

    def _admit(self, address: str) -> str | None:
        """Take a slot for a connection from ``address``; the refusal's reason if none."""
        with self._address_lock:
            if self._per_address[address] >= self.max_per_address:
                return "too many connections from this address"
            if not self._slots.acquire(blocking=False):
                return "server busy"
            self._per_address[address] += 1
        return None

    def _release(self, address: str) -> None:
        with self._address_lock:
            self._per_address[address] -= 1
            if not self._per_address[address]:
                del self._per_address[address]
            self._slots.release()

    def _serve_connection(self, sock: socket.socket, address: tuple[str, int]) -> None:
        """Admit the connection and serve it here, or pass it to a worker process."""
        peer = f"{address[0]}:{address[1]}"
        refused = self._admit(address[0])
        if refused is not None:
            self.audit.record(client=peer, operation="connect", result=f"busy: {refused}")
            with contextlib.suppress(OSError):
                sock.settimeout(1.0)
                write_frame(sock, bytes((Status.BUSY,)) + refused.encode())
            return
        if self._pool is None:
            try:
                self._serve_admitted(sock, address)
            finally:
                self._release(address[0])
            return
        try:
            self._pool.hand_off(
                socket.socket(fileno=sock.detach()), address, lambda: self._release(address[0])
            )
        except NoWorker as exc:
            self._release(address[0])
            log.error("connection %s dropped: %s", peer, exc)

    def _serve_admitted(self, sock: socket.socket, address: tuple[str, int]) -> None:
        """Handshake, then requests until the client leaves, idles out or breaks the protocol."""
        peer = f"{address[0]}:{address[1]}"
        try:
            authenticated = self._handshake(sock, peer)
            if authenticated is None:
                return
            channel, client, module = authenticated
            sock.settimeout(self.idle_timeout)
            while True:
                try:
                    request = channel.recv(sock, frame_timeout=self.request_timeout)
                except ConnectionClosed:
                    return
                response = self._dispatch(request, client, module)
                channel.send(sock, response)
        except ProtocolViolation as exc:
            self.audit.record(client=peer, operation="frame", result=f"refused: {exc}")
        except (OSError, ConnectionClosed) as exc:
            log.debug("connection %s ended: %s", peer, exc)

    def _handshake(
        self, sock: socket.socket, peer: str
    ) -> tuple[SecureChannel, str, SecurityModule] | None:
        """The HMAC handshake, whole within ``handshake_timeout``; the channel, the client's
        name for the audit and the module limited to its role — or None, refused."""
        deadline = time.monotonic() + self.handshake_timeout
        sock.settimeout(self.handshake_timeout)
        server_nonce = os.urandom(NONCE_LENGTH)
        write_frame(sock, MAGIC + server_nonce)
        payload = read_frame(sock, deadline=deadline)
        if payload[:1] != bytes((Op.AUTH,)):
            # The audit line is written before the refusal is sent: whoever sees the answer
            # can rely on the audit already holding it.
            self.audit.record(client=peer, operation="auth", result="refused: not authenticated")
            write_frame(sock, bytes((Status.NOT_AUTHENTICATED,)) + b"authenticate first")
            return None
        client_id, client_nonce, proof = unpack_fields(payload[1:], 3)
        name = client_id.decode("utf-8", "replace")
        client = f"{name}@{peer}"
        registered = self.module.keystore.client(name)
        # An unknown id is checked against a throw-away secret: the answer and its timing
        # are those of a wrong secret.
        secret = registered.secret.value if registered else os.urandom(MIN_CLIENT_SECRET)
        expected = client_proof(secret, server_nonce, client_nonce, client_id)
        good = hmac.compare_digest(proof, expected) and len(client_nonce) == NONCE_LENGTH
        if registered is None or not good:
            reason = "unknown client" if registered is None else "bad proof"
            self.audit.record(client=client, operation="auth", result=f"refused: {reason}")
            write_frame(sock, bytes((Status.NOT_AUTHENTICATED,)) + b"authentication failed")
            return None
        write_frame(
            sock,
            bytes((Status.OK,)) + pack_fields(server_proof(secret, server_nonce, client_nonce)),
        )
        channel = SecureChannel(secret, server_nonce, client_nonce, server=True)
        return channel, client, self.module.for_role(registered.role)

    def _dispatch(self, request: bytes, client: str, module: SecurityModule) -> bytes:
        if not request:
            return bytes((Status.MALFORMED,)) + b"empty request"
        op = OPERATIONS.get(request[0])
        if op is None:
            self.audit.record(client=client, operation=f"op-{request[0]:02x}", result="unknown")
            return bytes((Status.UNKNOWN_OP,)) + f"unknown operation {request[0]:#04x}".encode()
        label: str | None = None
        sn: bytes | None = None
        try:
            fields = unpack_fields(request[1:], op.fields)
            label = fields[0].decode("ascii", "replace")
            sn = fields[op.sn_field][:8] if op.sn_field is not None else None
            with self._lock:
                result = op.handler(module, fields)
        except SecurityModuleError as exc:
            self.audit.record(
                client=client, operation=op.name, label=label, sn=sn, result=type(exc).__name__
            )
            return bytes((status_for(exc),)) + str(exc).encode()
        self.audit.record(client=client, operation=op.name, label=label, sn=sn, result="ok")
        return bytes((Status.OK,)) + pack_fields(result)
