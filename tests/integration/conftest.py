"""Fixtures that start the real components: pcscd with the vpcd driver, and simulated cards
served on vpcd slots through the bridge. Cards are pulled, and their removal seen by pcscd,
before the next test begins."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser
from smartcard import scard

from apdu.pcsc import wait_for_card, wait_for_removal
from hsm_stub.audit import AuditLog
from hsm_stub.client import TcpSecurityModule
from hsm_stub.keystore import TEST_CLIENT_SECRET, Keystore
from hsm_stub.local import LocalSecurityModule
from hsm_stub.server import HsmServer
from simulator.cardos.card import CardOS
from simulator.pcscd import Pcscd
from simulator.vpcd import VpcdBridge, reader_name
from tests.integration.console import chromium

# APDUs the simulated cards answered through pcscd, per reader, for the run's summary.
SERVED_APDUS: dict[str, int] = {}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if SERVED_APDUS:
        terminalreporter.section("PC/SC path (pyscard -> pcscd -> vpcd -> simulated card)")
        for reader, count in sorted(SERVED_APDUS.items()):
            terminalreporter.write_line(f"{reader}: {count} APDUs answered by simulated cards")


@pytest.fixture(scope="session")
def pcscd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pcscd]:
    log: Path = tmp_path_factory.mktemp("pcscd") / "pcscd.log"
    with Pcscd(log_path=log) as daemon:
        yield daemon


@dataclass
class Served:
    card: CardOS
    bridge: VpcdBridge
    reader: str
    atr: bytes


ServeCard = Callable[..., Served]


@pytest.fixture
def serve_card(pcscd: Pcscd) -> Iterator[ServeCard]:
    """``serve_card(card, slot=0)`` inserts ``card`` in ``Virtual PCD 00 0<slot>``."""
    served: list[Served] = []

    def _serve(card: CardOS, slot: int = 0) -> Served:
        reader = reader_name(slot)
        bridge = VpcdBridge(card, slot=slot).start()
        atr = wait_for_card(reader, timeout=10)
        item = Served(card, bridge, reader, atr)
        served.append(item)
        return item

    yield _serve
    for item in served:
        item.bridge.stop()
        SERVED_APDUS[item.reader] = SERVED_APDUS.get(item.reader, 0) + item.bridge.apdu_count
    for item in served:
        wait_for_removal(item.reader, timeout=10)


@dataclass
class RunningServer:
    server: HsmServer
    audit_path: Path
    keystore: Keystore

    def client(
        self,
        *,
        timeout: float = 10.0,
        secret: bytes = TEST_CLIENT_SECRET,
        client_id: str = "test-center",
    ) -> TcpSecurityModule:
        return TcpSecurityModule(
            self.server.host,
            self.server.port,
            secret=secret,
            timeout=timeout,
            client_id=client_id,
        )


@pytest.fixture
def test_keystore(tmp_path: Path) -> Keystore:
    return Keystore.create_test(tmp_path / "keystore.json")


@pytest.fixture
def hsm_server(test_keystore: Keystore, tmp_path: Path) -> Iterator[RunningServer]:
    audit_path = tmp_path / "audit.log"
    audit = AuditLog(audit_path)
    server = HsmServer(
        LocalSecurityModule(test_keystore),
        audit=audit,
        max_clients=64,
        max_per_address=64,  # every test client comes from 127.0.0.1
        request_timeout=2.0,
    ).start()
    yield RunningServer(server, audit_path, test_keystore)
    server.stop()
    audit.close()


@pytest.fixture
def pcsc_contexts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every PC/SC context established (``SCardEstablishContext``: a round trip to pcscd,
    and one more to release it) from now on, by its scope."""
    made: list[int] = []
    establish = scard.SCardEstablishContext

    def counted(scope: int) -> Any:
        made.append(scope)
        return establish(scope)

    monkeypatch.setattr(scard, "SCardEstablishContext", counted)
    return made


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless chromium per test module (the console's Playwright tests)."""
    with chromium() as b:
        yield b
