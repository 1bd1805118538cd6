"""``sscard hsm serve --workers 2`` (hsm_stub/workers.py): concurrent clients get the answers
of the in-process module; every request is audited once, the records numbered without a gap,
in the order of their times and, for each client, of its requests, with no key or PIN; the
workers are the service's child processes and do not outlive it, even killed."""

from __future__ import annotations

import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from hsm_stub.client import TcpSecurityModule
from hsm_stub.cryptograms import CardFactors, derive_card_key
from hsm_stub.errors import SecurityModuleUnavailable
from hsm_stub.keystore import TEST_CLIENT_SECRET, Keystore
from hsm_stub.local import LocalSecurityModule
from simulator.station import free_port
from tests.hsm_serve import serve_hsm
from tests.test_secrets_never_leak import secret_forms

CLIENTS, REQUESTS = 8, 40
SECRET = b"a station's secret, 16 bytes or more"
CHALLENGE = bytes.fromhex("0102030405060708")
PIN = "246810"


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _gone(pid: int, within: float = 10.0) -> bool:
    """The process has exited (reaped, or a zombie waiting for its new parent)."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


def _serial(station: int, n: int) -> bytes:
    return (station * 1000 + n).to_bytes(8, "big")


def test_eight_concurrent_clients_are_answered_and_each_audited_once_in_order(
    test_keystore: Keystore, tmp_path: Path
) -> None:
    for i in range(CLIENTS):
        test_keystore.add_client(f"station-{i}", "card-center", secret=SECRET)
    local = LocalSecurityModule(test_keystore)
    audit, port = tmp_path / "audit.log", free_port()
    proc = serve_hsm(test_keystore.path, port, audit, workers=2)

    def station(i: int) -> list[tuple[bytes, bytes]]:
        answers = []
        with TcpSecurityModule(
            "127.0.0.1", port, secret=SECRET, client_id=f"station-{i}"
        ) as client:
            for n in range(REQUESTS):
                factors = CardFactors.for_card(_serial(i, n), "371700")
                if n % 2:
                    answers.append(
                        (
                            client.pin_reset_block("pin", factors, CHALLENGE, PIN),
                            local.pin_reset_block("pin", factors, CHALLENGE, PIN),
                        )
                    )
                else:
                    data = n.to_bytes(4, "big") + bytes.fromhex("8424000004")
                    answers.append(
                        (
                            client.command_mac("pin", factors, CHALLENGE, data),
                            local.command_mac("pin", factors, CHALLENGE, data),
                        )
                    )
        return answers

    try:
        workers = _children(proc.pid)
        assert len(workers) == 2
        with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
            answers = [a for per_station in pool.map(station, range(CLIENTS)) for a in per_station]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    assert all(_gone(pid) for pid in workers)
    assert len(answers) == CLIENTS * REQUESTS and all(got == want for got, want in answers)

    text = audit.read_text()
    entries = [json.loads(line) for line in text.splitlines()]
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    assert [e["time"] for e in entries] == sorted(e["time"] for e in entries)
    uses = [e for e in entries if e["op"] in ("command-mac", "pin-reset-block")]
    assert len(uses) == len(entries) == CLIENTS * REQUESTS
    assert all(e["result"] == "ok" for e in uses)
    for i in range(CLIENTS):
        mine = [e for e in uses if e["client"].startswith(f"station-{i}@")]
        assert [e["sn"] for e in mine] == [_serial(i, n).hex().upper() for n in range(REQUESTS)]
        assert [e["op"] for e in mine] == ["command-mac", "pin-reset-block"] * (REQUESTS // 2)

    suite, pin_root = test_keystore.use("pin", "pin-reset")
    card_keys = {
        derive_card_key(suite, pin_root, CardFactors.for_card(_serial(i, n), "371700")).hex()
        for i in range(CLIENTS)
        for n in range(REQUESTS)
    }
    forbidden = {*secret_forms(), *card_keys, *(k.upper() for k in card_keys), PIN, SECRET.hex()}
    assert [form for form in forbidden if form in text] == []


def test_the_workers_go_with_a_killed_service(test_keystore: Keystore, tmp_path: Path) -> None:
    port = free_port()
    proc = serve_hsm(test_keystore.path, port, tmp_path / "audit.log", workers=2)
    try:
        workers = _children(proc.pid)
        assert len(workers) == 2
        with TcpSecurityModule(
            "127.0.0.1", port, secret=TEST_CLIENT_SECRET, client_id="test-center", timeout=5
        ) as center:
            assert center.kcv("pin") == test_keystore.info("pin").kcv  # served by a worker
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            assert all(_gone(pid) for pid in workers)
            with pytest.raises(SecurityModuleUnavailable):
                center.kcv("pin")  # its worker went with the service, and the listener too
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_a_killed_worker_leaves_the_service_serving(
    test_keystore: Keystore, tmp_path: Path
) -> None:
    port = free_port()
    proc = serve_hsm(test_keystore.path, port, tmp_path / "audit.log", workers=2)

    def center() -> TcpSecurityModule:
        return TcpSecurityModule(
            "127.0.0.1", port, secret=TEST_CLIENT_SECRET, client_id="test-center", timeout=5
        )

    try:
        first, second = _children(proc.pid)
        with center() as a, center() as b:  # one connection each way: least busy first
            assert a.kcv("pin") == b.kcv("pin") == test_keystore.info("pin").kcv
            os.kill(first, signal.SIGKILL)
            assert _gone(first)
            answers = []
            for client in (a, b):
                try:
                    answers.append(client.kcv("pin"))
                except SecurityModuleUnavailable:
                    answers.append(b"")
            assert answers.count(b"") == 1  # the connection of the killed worker only
        for _ in range(4):  # every new connection goes to the live worker, the slots were freed
            with center() as client:
                assert client.kcv("pin") == test_keystore.info("pin").kcv
        assert _children(proc.pid) == [second] and proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
