"""``sscard hsm serve`` as a service on loopback: load, death mid-request, hostile input,
authentication, audit."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from hsm_stub.audit import AuditLog
from hsm_stub.client import TcpSecurityModule
from hsm_stub.cryptograms import CardFactors
from hsm_stub.errors import (
    AuthenticationRefused,
    BadInput,
    KeyUsageError,
    SecurityModuleUnavailable,
    UnknownKey,
)
from hsm_stub.keystore import TEST_CLIENT_SECRET, Keystore
from hsm_stub.local import LocalSecurityModule
from hsm_stub.protocol import MAGIC, read_frame
from hsm_stub.server import HsmServer
from simulator.station import free_port
from tests.hsm_serve import serve_hsm
from tests.integration.conftest import RunningServer

H = bytes.fromhex
CHALLENGE = H("0102030405060708")


def factors(i: int) -> CardFactors:
    return CardFactors.for_card(i.to_bytes(8, "big"), "371700")


def test_1000_concurrent_macs_from_50_connections(hsm_server: RunningServer) -> None:
    local = LocalSecurityModule(hsm_server.keystore)
    secret = b"station secret, 16 bytes or more"
    for i in range(50):
        hsm_server.keystore.add_client(f"station-{i}", "card-center", secret=secret)
    clients = [hsm_server.client(client_id=f"station-{i}", secret=secret) for i in range(50)]

    def work(n: int) -> tuple[bytes, bytes]:
        client = clients[n % 50]
        data = n.to_bytes(4, "big") + b"\x84\x24\x00\x00\x04"
        return client.command_mac("pin", factors(n), CHALLENGE, data), local.command_mac(
            "pin", factors(n), CHALLENGE, data
        )

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(work, range(1000)))
    for c in clients:
        c.close()
    assert len(results) == 1000
    assert all(got == want for got, want in results)
    lines = hsm_server.audit_path.read_text().splitlines()
    macs = [json.loads(line) for line in lines if '"command-mac"' in line]
    assert len(macs) == 1000 and all(m["result"] == "ok" for m in macs)
    assert len({m["client"].split("@")[0] for m in macs}) == 50


def test_server_killed_mid_request_gives_unavailable(
    test_keystore: Keystore, tmp_path: Path
) -> None:
    port = free_port()
    proc = serve_hsm(test_keystore.path, port, tmp_path / "audit.log")
    client = TcpSecurityModule(
        "127.0.0.1", port, secret=TEST_CLIENT_SECRET, client_id="test-center", timeout=5
    )
    errors: list[BaseException] = []
    done = threading.Event()

    def hammer() -> None:
        try:
            while True:
                client.command_mac("pin", factors(1), CHALLENGE, bytes(64))
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    try:
        assert client.kcv("pin") == Keystore.open(test_keystore.path).info("pin").kcv
        thread = threading.Thread(target=hammer)
        thread.start()
        time.sleep(0.3)
        started = time.monotonic()
        proc.send_signal(signal.SIGKILL)
        assert done.wait(10), "the client hung after the server died"
        assert time.monotonic() - started < 6
        thread.join()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert len(errors) == 1 and isinstance(errors[0], SecurityModuleUnavailable)
    with pytest.raises(SecurityModuleUnavailable, match="unreachable"):
        client.kcv("pin")


def test_serve_subprocess_stops_on_sigterm(test_keystore: Keystore, tmp_path: Path) -> None:
    port = free_port()
    proc = serve_hsm(test_keystore.path, port, tmp_path / "audit.log")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0


def _raw(server: HsmServer) -> socket.socket:
    sock = socket.create_connection((server.host, server.port), timeout=5)
    hello = read_frame(sock)
    assert hello.startswith(MAGIC)
    return sock


def _closed(sock: socket.socket) -> bool:
    """True when the server closes the connection (after at most an error frame) within
    the socket's 5-second timeout; False when it keeps it open."""
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


@pytest.mark.parametrize(
    "payload",
    [
        b"\x00\x00\x00\x00",  # zero-length frame
        b"\x00\x10\x00\x00" + b"x" * 32,  # oversize frame header (1 MiB announced)
        b"\xff\xff\xff\xff",  # absurd length
        b"\x00\x00\x00\x05\x01\x00\x05ab",  # AUTH with fields that run past the end
        b"\x00\x00\x00\x03\x10\x00\x00",  # a request before authenticating
    ],
    ids=["zero", "oversize", "absurd", "malformed-auth", "unauthenticated"],
)
def test_hostile_frames_close_that_connection_only(
    hsm_server: RunningServer, payload: bytes
) -> None:
    sock = _raw(hsm_server.server)
    sock.sendall(payload)
    assert _closed(sock)
    sock.close()
    with hsm_server.client() as good:  # the server is still up and serving
        assert good.kcv("mk") == hsm_server.keystore.info("mk").kcv
    audit = hsm_server.audit_path.read_text()
    assert "refused" in audit


def test_truncated_frame_times_out(hsm_server: RunningServer) -> None:
    sock = _raw(hsm_server.server)
    sock.sendall(b"\x00\x00\x00\x40abc")  # announces 64 bytes, sends 3, then nothing
    started = time.monotonic()
    assert _closed(sock)
    assert time.monotonic() - started < 5  # the server's request timeout is 2 s
    sock.close()


def test_wrong_secret_is_refused(hsm_server: RunningServer) -> None:
    with pytest.raises(AuthenticationRefused):
        hsm_server.client(secret=b"not the secret at all!").kcv("mk")
    assert "bad proof" in hsm_server.audit_path.read_text()


def test_server_errors_are_typed(hsm_server: RunningServer) -> None:
    with hsm_server.client() as client:
        with pytest.raises(UnknownKey, match="'ghost'"):
            client.kcv("ghost")
        with pytest.raises(KeyUsageError):
            client.card_id_mac("update", bytes(8), bytes(12))
        with pytest.raises(BadInput):
            client.external_auth("update", factors(1), CHALLENGE[:3], bytes(8))
        # the connection survives refused requests
        assert client.kcv("update") == hsm_server.keystore.info("update").kcv


def test_busy_server_refuses_extra_clients(test_keystore: Keystore, tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.log")
    server = HsmServer(LocalSecurityModule(test_keystore), audit=audit, max_clients=2).start()

    def center() -> TcpSecurityModule:
        return TcpSecurityModule(
            server.host, server.port, secret=TEST_CLIENT_SECRET, client_id="test-center"
        )

    try:
        first = center()
        second = center()
        first.kcv("mk")
        second.kcv("mk")
        third = center()
        with pytest.raises(SecurityModuleUnavailable, match="busy"):
            third.kcv("mk")
        first.close()
        time.sleep(0.2)
        assert third.kcv("mk") == test_keystore.info("mk").kcv
        second.close()
        third.close()
    finally:
        server.stop()
        audit.close()


def test_audit_has_no_data(hsm_server: RunningServer) -> None:
    hsm_server.keystore.add_client("counter-7", "office", secret=b"counter-7's own secret")
    with hsm_server.client(client_id="counter-7", secret=b"counter-7's own secret") as client:
        client.pin_reset_block("pin", factors(42), CHALLENGE, "246810")
        client.card_id_mac("irk", (42).to_bytes(8, "big"), H("371700D1560000050000002A"))
    entries = [json.loads(line) for line in hsm_server.audit_path.read_text().splitlines()]
    assert [e["op"] for e in entries] == ["pin-reset-block", "card-id-mac"]
    assert all(
        e["sn"] == "000000000000002A" and e["client"].startswith("counter-7@") for e in entries
    )
    text = hsm_server.audit_path.read_text()
    assert "246810" not in text and CHALLENGE.hex() not in text.lower()
    assert set(entries[0]) == {"seq", "time", "client", "op", "label", "sn", "result"}
    assert os.stat(hsm_server.audit_path).st_mode & 0o077 == 0
