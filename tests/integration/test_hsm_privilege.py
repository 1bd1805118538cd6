"""Least privilege and hardening of ``sscard hsm serve``: clients registered with a secret
and a role, each request authorized by the role's key usages (refusals audited), office
PSAMs without update or master keys, and per-frame deadlines with a per-address cap so
slow-drip connections cannot lock legitimate clients out."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from apdu.inprocess import InProcessTransport
from hsm_stub.audit import AuditLog
from hsm_stub.client import TcpSecurityModule
from hsm_stub.cryptograms import CardFactors
from hsm_stub.errors import AuthenticationRefused, Forbidden, UnknownKey
from hsm_stub.keystore import TEST_CLIENTS, TEST_KEYS, Keystore
from hsm_stub.local import LocalSecurityModule
from hsm_stub.psam import PsamSecurityModule
from hsm_stub.server import HsmServer
from hsm_stub.suites import TDES
from personalize.station import StationConfig
from simulator.cardfile import load_card
from simulator.psam import PsamCard, new_psam
from tests.cli import run_sscard
from tests.integration.conftest import RunningServer

FACTORS = CardFactors.for_card(bytes.fromhex("0FF1CE0000000001"), "371700")
R = bytes.fromhex("0102030405060708")
A = bytes.fromhex("1122334455667788")


def audit_entries(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_office_client_is_refused_update_and_master_keys_and_audited(
    hsm_server: RunningServer,
) -> None:
    _, office_secret = TEST_CLIENTS["test-office"]
    with hsm_server.client(client_id="test-office", secret=office_secret) as office:
        with pytest.raises(Forbidden, match="office"):
            office.external_auth("update", FACTORS, R, A)  # the EF06 write path
        with pytest.raises(Forbidden):
            office.external_auth("mk", FACTORS, R, A)
        with pytest.raises(Forbidden):
            office.command_mac("mk", FACTORS, R, bytes(16))
        # what an office does: prove a card genuine, unblock and reset PINs
        local = LocalSecurityModule(hsm_server.keystore)
        assert office.external_auth("read", FACTORS, R, A) == local.external_auth(
            "read", FACTORS, R, A
        )
        assert office.command_mac("pin", FACTORS, R, bytes(16)) == local.command_mac(
            "pin", FACTORS, R, bytes(16)
        )
        assert office.pin_reset_block("pin", FACTORS, R, "123456") == local.pin_reset_block(
            "pin", FACTORS, R, "123456"
        )
        data12 = bytes(12)
        assert office.card_id_mac("irk", FACTORS.card, data12) == local.card_id_mac(
            "irk", FACTORS.card, data12
        )
    refusals = [e for e in audit_entries(hsm_server.audit_path) if e["result"] == "Forbidden"]
    assert [(e["op"], e["label"]) for e in refusals] == [
        ("external-auth", "update"),
        ("external-auth", "mk"),
        ("command-mac", "mk"),
    ]
    assert all(e["client"].startswith("test-office@") for e in refusals)
    with hsm_server.client(client_id="test-center") as center:  # the card center may
        assert center.external_auth("update", FACTORS, R, A)


def test_unknown_client_is_refused_and_audited(hsm_server: RunningServer) -> None:
    _, center_secret = TEST_CLIENTS["test-center"]
    with pytest.raises(AuthenticationRefused):
        hsm_server.client(client_id="intruder", secret=center_secret).kcv("read")
    # a known client id with another client's secret
    with pytest.raises(AuthenticationRefused):
        hsm_server.client(client_id="test-office", secret=center_secret).kcv("read")
    results = [(e["client"].split("@")[0], e["result"]) for e in audit_entries(
        hsm_server.audit_path)]  # fmt: skip
    assert results == [
        ("intruder", "refused: unknown client"),
        ("test-office", "refused: bad proof"),
    ]


def sscard(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return run_sscard(*args, stdin=stdin, timeout=60)


@pytest.fixture
def served_keystore(tmp_path: Path) -> Iterator[tuple[Path, HsmServer]]:
    ks = tmp_path / "keys.json"
    assert sscard("hsm", "init", "--test-keys", "--keystore", str(ks)).returncode == 0
    added = sscard("hsm", "add-client", "--keystore", str(ks), "--id", "office-01",
                   "--role", "office", "--json")  # fmt: skip
    assert added.returncode == 0, added.stderr
    (tmp_path / "office-01.secret").write_text(json.loads(added.stdout)["secret"] + "\n")
    audit = AuditLog(tmp_path / "audit.log")
    server = HsmServer(LocalSecurityModule(Keystore.open(ks)), audit=audit).start()
    yield ks, server
    server.stop()
    audit.close()


def test_office_station_file_cannot_get_an_update_cryptogram(
    served_keystore: tuple[Path, HsmServer], tmp_path: Path
) -> None:
    ks, server = served_keystore
    listed = sscard("hsm", "list-clients", "--keystore", str(ks), "--json")
    assert json.loads(listed.stdout)["clients"] == [
        {"id": "office-01", "role": "office"},
        {"id": "test-center", "role": "card-center"},
        {"id": "test-office", "role": "office"},
    ]
    secret_hex = (tmp_path / "office-01.secret").read_text().strip()
    assert secret_hex not in listed.stdout + listed.stderr
    station = tmp_path / "office.toml"
    station.write_text(
        f'name = "office-7"\nhsm = "tcp://{server.host}:{server.port}"\n'
        'hsm_client = "office-01"\nhsm_secret_file = "office-01.secret"\n'
        'track_key = "tracks.key"\nregistry = "registry.db"\n',
        encoding="utf-8",
    )
    with StationConfig.load(station).security_module() as hsm:
        with pytest.raises(Forbidden):
            hsm.external_auth("update", FACTORS, R, A)
        assert len(hsm.external_auth("read", FACTORS, R, A)) == 16
    entries = audit_entries(tmp_path / "audit.log")
    assert [(e["client"].split("@")[0], e["label"], e["result"]) for e in entries] == [
        ("office-01", "update", "Forbidden"),
        ("office-01", "read", "ok"),
    ]


def test_office_psam_holds_no_update_or_master_key(tmp_path: Path) -> None:
    keystore = Keystore.create_test(tmp_path / "ks.json")
    psam = new_psam(keystore)  # an office PSAM unless asked otherwise
    transport = InProcessTransport(psam)
    transport.connect()
    with PsamSecurityModule(transport) as hsm:
        with pytest.raises(UnknownKey):
            hsm.external_auth("update", FACTORS, R, A)
        with pytest.raises(UnknownKey):
            hsm.external_auth("mk", FACTORS, R, A)
        local = LocalSecurityModule(keystore)
        assert hsm.external_auth("read", FACTORS, R, A) == local.external_auth(
            "read", FACTORS, R, A
        )
    full = new_psam(keystore, role="card-center")
    # mk, update, read, pin, irk, internal; an office: read, pin, irk, internal (an office
    # checks cards genuine by INTERNAL AUTHENTICATE too)
    assert len(full.keys) == 6 and len(psam.keys) == 4


def test_sim_new_psam_roles_and_no_production_keys_in_clear(tmp_path: Path) -> None:
    ks = tmp_path / "test.json"
    assert sscard("hsm", "init", "--test-keys", "--keystore", str(ks)).returncode == 0
    office = tmp_path / "office-psam.json"
    assert sscard("sim", "new-psam", "--keystore", str(ks), "--out", str(office)).returncode == 0
    card = load_card(office, persist=False)
    assert isinstance(card, PsamCard)
    kcvs = {TDES.kcv(value) for _, value in card.keys.values()}
    office_labels = ("read", "pin", "irk", "internal")  # internal: INTERNAL AUTHENTICATE
    assert kcvs == {TDES.kcv(TEST_KEYS[label][2]) for label in office_labels}
    center = tmp_path / "center-psam.json"
    made = sscard("sim", "new-psam", "--keystore", str(ks), "--out", str(center),
                  "--role", "card-center")  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert len(load_card(center, persist=False).keys) == 6  # type: ignore[attr-defined]

    prod = tmp_path / "prod.json"
    lmk = ["00112233445566778899AABBCCDDEEFF", "y", "0F1E2D3C4B5A69788796A5B4C3D2E1F0", "y"]
    init = sscard("hsm", "init", "--keystore", str(prod), stdin="\n".join(lmk) + "\n")
    assert init.returncode == 0, init.stderr
    out = tmp_path / "prod-psam.json"
    refused = sscard("sim", "new-psam", "--keystore", str(prod), "--out", str(out),
                     stdin="\n".join(lmk) + "\n")  # fmt: skip
    assert refused.returncode == 1 and "production" in refused.stderr
    assert "Traceback" not in refused.stderr and not out.exists()


# ----------------------------------------------------------------- hardening


def drip(host: str, port: int, source: str, stop: threading.Event) -> None:
    """An unauthenticated client sending one byte every 1.5 s, never a whole frame."""
    try:
        sock = socket.create_connection((host, port), timeout=30, source_address=(source, 0))
    except OSError:
        return
    with sock:
        try:
            sock.sendall(b"\x00\x00\x00")  # most of a length header, then a byte at a time
            while not stop.wait(1.5):
                sock.sendall(b"\x40")
        except OSError:
            return


def start_drips(server: HsmServer, source: str, n: int, stop: threading.Event) -> None:
    for _ in range(n):
        threading.Thread(target=drip, args=(server.host, server.port, source, stop),
                         daemon=True).start()  # fmt: skip
    time.sleep(0.5)


@pytest.fixture
def small_server(test_keystore: Keystore, tmp_path: Path) -> Iterator[HsmServer]:
    audit = AuditLog(tmp_path / "audit.log")
    server = HsmServer(
        LocalSecurityModule(test_keystore),
        audit=audit,
        max_clients=4,
        max_per_address=2,
        handshake_timeout=2.0,
    ).start()
    yield server
    server.stop()
    audit.close()


def center(server: HsmServer) -> TcpSecurityModule:
    _, secret = TEST_CLIENTS["test-center"]
    return TcpSecurityModule(
        server.host, server.port, secret=secret, client_id="test-center", timeout=5
    )


def test_slow_drip_connections_from_one_address_do_not_lock_out_others(
    small_server: HsmServer, test_keystore: Keystore
) -> None:
    stop = threading.Event()
    try:
        start_drips(small_server, "127.0.0.2", 6, stop)
        started = time.monotonic()
        with center(small_server) as client:
            assert client.kcv("read") == test_keystore.info("read").kcv
        assert time.monotonic() - started < 1.5  # served at once, not after the drips
    finally:
        stop.set()


def test_slow_drip_connections_hold_a_slot_for_a_few_seconds_only(
    small_server: HsmServer, test_keystore: Keystore
) -> None:
    """Drips from the client's own address: the handshake deadline is for the whole frame,
    so each drip is cut after 2 s however steadily it sends, and the client gets in."""
    stop = threading.Event()
    try:
        start_drips(small_server, "127.0.0.1", 4, stop)
        started = time.monotonic()
        served = None
        while time.monotonic() - started < 8 and served is None:
            try:
                with center(small_server) as client:
                    served = client.kcv("read")
            except Exception:  # busy while the drips hold the address's slots
                time.sleep(0.3)
        assert served == test_keystore.info("read").kcv
        assert time.monotonic() - started < 4
    finally:
        stop.set()


def test_client_cli_secret_from_stdin_removal_and_no_clients(tmp_path: Path) -> None:
    ks = tmp_path / "keys.json"
    assert sscard("hsm", "init", "--test-keys", "--keystore", str(ks)).returncode == 0
    secret = "A5" * 24
    added = sscard("hsm", "add-client", "--keystore", str(ks), "--id", "station-9",
                   "--role", "card-center", "--secret-stdin", stdin=secret + "\n")  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert secret not in added.stdout + added.stderr
    client = Keystore.open(ks).client("station-9")
    assert client is not None and client.secret.value == bytes.fromhex(secret)
    again = sscard("hsm", "add-client", "--keystore", str(ks), "--id", "station-9",
                   "--role", "office")  # fmt: skip
    assert again.returncode == 1 and "exists" in again.stderr and "Traceback" not in again.stderr
    bad = sscard("hsm", "add-client", "--keystore", str(ks), "--id", "x", "--role", "office",
                 "--secret-stdin", stdin="not hex\n")  # fmt: skip
    assert bad.returncode == 1 and "hexadecimal" in bad.stderr
    for client_id in ("station-9", "test-center", "test-office"):
        removed = sscard("hsm", "remove-client", "--keystore", str(ks), "--id", client_id)
        assert removed.returncode == 0, removed.stderr
    assert Keystore.open(ks).clients() == []
    serve = sscard("hsm", "serve", "--keystore", str(ks), "--listen", "127.0.0.1:0")
    assert serve.returncode == 1 and "add-client" in serve.stderr
