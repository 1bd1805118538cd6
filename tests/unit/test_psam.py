"""The simulated PSAM's commands and the PSAM backend's error mapping, in process."""

from __future__ import annotations

from pathlib import Path

import pytest

from apdu.inprocess import InProcessTransport
from hsm_stub.cryptograms import CardFactors
from hsm_stub.errors import BadInput, KeyUsageError, SecurityModuleUnavailable, UnknownKey
from hsm_stub.keystore import Keystore
from hsm_stub.local import LocalSecurityModule
from hsm_stub.psam import PSAM_AID, PsamSecurityModule
from simulator.psam import PsamCard, new_psam

FACTORS = CardFactors.for_card(bytes.fromhex("0102030405060708"), "440300")
R = bytes.fromhex("0011223344556677")


@pytest.fixture
def keystore(tmp_path: Path) -> Keystore:
    return Keystore.create_test(tmp_path / "ks.json")


def run(card: PsamCard, hexapdu: str) -> int:
    raw = card.process(bytes.fromhex(hexapdu))
    return int.from_bytes(raw[-2:], "big")


def test_psam_command_rules(keystore: Keystore) -> None:
    card = new_psam(keystore, role="card-center")
    card.power_on()
    factors = FACTORS.to_bytes().hex()
    assert run(card, "BFDE610418" + factors) == 0x6985  # PSAM application not selected
    assert run(card, "00A4040C06" + PSAM_AID.hex()) == 0x9000
    assert run(card, "80FA000008" + "00" * 10) == 0x6700  # Lc 8, 10 bytes follow
    assert run(card, "80FA0000080000000000000000") == 0x6985  # no key initialised yet
    assert run(card, "BFDE610410" + factors[:32]) == 0x6700  # 3 levels need 24 or 32 bytes
    assert run(card, "BFDE6109 18".replace(" ", "") + factors) == 0x6A88  # no key id 09
    assert run(card, "00DE610418" + factors) == 0x6E00  # wrong class
    assert run(card, "BFDE610420" + factors + R.hex()) == 0x9000
    assert run(card, "80FA000007" + "00" * 7) == 0x6700  # not whole blocks
    assert run(card, "80FA090008" + "00" * 8) == 0x6A86
    card.power_off()
    card.power_on()
    assert card.working is None  # a reset forgets the working key


def test_psam_backend_in_process_matches_local(keystore: Keystore) -> None:
    transport = InProcessTransport(new_psam(keystore, role="card-center", protocol="T1"))
    transport.connect()
    psam = PsamSecurityModule(transport)
    local = LocalSecurityModule(keystore)
    assert psam.external_auth("update", FACTORS, R, bytes(8)) == local.external_auth(
        "update", FACTORS, R, bytes(8)
    )
    assert psam.kcv("irk") == local.kcv("irk")
    with pytest.raises(UnknownKey):
        psam.kcv("ghost")
    with pytest.raises(BadInput):
        psam.external_auth("update", FACTORS, R, bytes(7))
    with pytest.raises(BadInput):
        psam.card_id_mac("irk", bytes(8), bytes(11))


def test_psam_without_the_key_and_pulled(keystore: Keystore, tmp_path: Path) -> None:
    card = new_psam(keystore, role="card-center")
    del card.keys[(0x06, 0x01)]  # a PSAM issued without the IRK
    transport = InProcessTransport(card)
    transport.connect()
    psam = PsamSecurityModule(transport)
    with pytest.raises(UnknownKey):
        psam.card_id_mac("irk", bytes(8), bytes(12))
    transport.remove_card()
    with pytest.raises(SecurityModuleUnavailable, match="PSAM unavailable"):
        psam.kcv("mk")


def test_psam_refuses_mac_before_init(keystore: Keystore) -> None:
    transport = InProcessTransport(new_psam(keystore, role="card-center"))
    transport.connect()
    psam = PsamSecurityModule(transport)
    psam.kcv("mk")  # selects the application
    with pytest.raises(KeyUsageError):
        psam._mac(b"data")  # no BF DE first: conditions of use not satisfied


def test_office_psam_holds_the_internal_key_and_answers_like_the_card(keystore: Keystore) -> None:
    """``sim new-psam`` loads the ``internal`` root key (type 7 encrypt, id 01) into an
    office PSAM too — checking a card genuine is an office's job — and the PSAM backend's
    expected INTERNAL AUTHENTICATE answer is the in-process module's."""
    card = new_psam(keystore)  # role office, the default
    assert (0x07, 0x01) in card.keys
    assert (0x01, 0x04) not in card.keys  # still no update key
    transport = InProcessTransport(card)
    transport.connect()
    psam = PsamSecurityModule(transport)
    local = LocalSecurityModule(keystore)
    for data in (R, R + bytes(8)):
        assert psam.internal_auth("internal", FACTORS, data) == local.internal_auth(
            "internal", FACTORS, data
        )
    assert psam.kcv("internal") == local.kcv("internal")
    with pytest.raises(BadInput):
        psam.internal_auth("internal", FACTORS, bytes(24))
