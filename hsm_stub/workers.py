"""Worker processes behind one listener, so the TCP service computes on every core (one
Python process computes on one: the GIL).

The service's process keeps the listener: it accepts, applies the connection limits and
passes each admitted connection to the worker with the fewest open connections, as a file
descriptor over a Unix socket pair (``SCM_RIGHTS``); the worker serves it to the end on a
thread of its own and answers with the connection's number, which frees its slot. Workers
are forked once, before the service starts any thread, and inherit the opened keystore and
the audit log (whose lock and counter are shared, hsm_stub/audit.py). Each worker keeps
only its own end of its pair: when the service's process dies — even by SIGKILL — every
worker reads end-of-file there and exits at once, dropping its connections, so no worker
outlives the service and clients see it gone.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import multiprocessing
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

ServeConnection = Callable[[socket.socket, tuple[str, int]], None]
_ID_LENGTH = 8


class NoWorker(RuntimeError):
    """Every worker process has died."""


def _worker_main(channel: socket.socket, serve: ServeConnection) -> None:
    """A worker: serve each connection the service passes, until the service closes the
    channel or dies."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the service, which stops us
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    send_lock = threading.Lock()

    def serve_one(sock: socket.socket, address: tuple[str, int], conn_id: bytes) -> None:
        try:
            serve(sock, address)
        finally:
            sock.close()
            with send_lock, contextlib.suppress(OSError):
                channel.sendall(conn_id)

    while True:
        try:
            message, fds, _, _ = socket.recv_fds(channel, 512, 1)
        except OSError:
            return
        if not message or not fds:
            return  # end of file: the service stopped or died
        conn_id, peer = message[:_ID_LENGTH], message[_ID_LENGTH:].decode()
        host, _, port = peer.rpartition(" ")
        sock = socket.socket(fileno=fds[0])
        threading.Thread(
            target=serve_one, args=(sock, (host, int(port)), conn_id), daemon=True
        ).start()


@dataclass
class _Worker:
    process: multiprocessing.process.BaseProcess
    channel: socket.socket  # the service's end
    open: dict[bytes, Callable[[], None]] = field(default_factory=dict)  # id → release
    alive: bool = True


class WorkerPool:
    def __init__(self, count: int, serve: ServeConnection, *, close_in_workers: socket.socket):
        """Fork ``count`` workers running ``serve`` on each connection they are passed;
        ``close_in_workers`` (the listener) is closed in each of them."""
        context = multiprocessing.get_context("fork")
        pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET) for _ in range(count)]
        self._workers: list[_Worker] = []
        for i, (ours, theirs) in enumerate(pairs):
            others = [s for pair in pairs for s in pair if s is not theirs]
            process = context.Process(
                target=self._run_worker,
                args=(theirs, serve, [close_in_workers, *others]),
                name=f"hsm-worker-{i + 1}",
                daemon=True,
            )
            process.start()
            self._workers.append(_Worker(process, ours))
        for _, theirs in pairs:
            theirs.close()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._closing = False
        for worker in self._workers:
            threading.Thread(
                target=self._read_releases, args=(worker,), name="hsm-worker-releases", daemon=True
            ).start()

    @staticmethod
    def _run_worker(
        channel: socket.socket, serve: ServeConnection, inherited: list[socket.socket]
    ) -> None:
        for sock in inherited:
            sock.close()
        _worker_main(channel, serve)

    def hand_off(
        self, sock: socket.socket, address: tuple[str, int], release: Callable[[], None]
    ) -> None:
        """Pass ``sock`` to the least busy live worker (our copy is closed); ``release`` is
        called once that worker is done with it. NoWorker when none is left."""
        message = f"{address[0]} {address[1]}".encode()
        with sock, self._lock:
            while True:
                live = [w for w in self._workers if w.alive]
                if not live:
                    raise NoWorker("no security-module worker process is left")
                worker = min(live, key=lambda w: len(w.open))
                conn_id = next(self._ids).to_bytes(_ID_LENGTH, "big")
                worker.open[conn_id] = release
                try:
                    socket.send_fds(worker.channel, [conn_id + message], [sock.fileno()])
                    return
                except OSError as exc:
                    del worker.open[conn_id]
                    self._lost(worker, exc)

    def _read_releases(self, worker: _Worker) -> None:
        while True:
            reason: OSError | None = None
            try:
                conn_id = worker.channel.recv(_ID_LENGTH)
            except OSError as exc:
                conn_id, reason = b"", exc
            if not conn_id:
                with self._lock:
                    self._lost(worker, reason)
                return
            with self._lock:
                release = worker.open.pop(conn_id, None)
            if release is not None:
                release()

    def _lost(self, worker: _Worker, reason: object) -> None:
        """A worker is gone (called with the lock held): its connections are closed with
        it, their slots freed."""
        if worker.alive:
            worker.alive = False
            if not self._closing:
                log.error("security-module worker %s lost: %s", worker.process.name, reason)
                worker.process.join(timeout=1)  # reap it
        for release in worker.open.values():
            release()
        worker.open.clear()

    def close(self) -> None:
        """Stop every worker: each sees its channel end and exits, dropping its connections."""
        self._closing = True
        for worker in self._workers:
            with contextlib.suppress(OSError):
                worker.channel.shutdown(socket.SHUT_RDWR)
        for worker in self._workers:
            worker.process.join(timeout=5)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.channel.close()
