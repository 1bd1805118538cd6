"""Check characters and the 卡识别码 (docs/chip-application.md §3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from apdu.atr import build_atr
from hsm_stub.keystore import Keystore
from hsm_stub.local import LocalSecurityModule
from sscard.errors import InvalidData
from sscard.identifiers import (
    build_card_id,
    card_id_matches_sn,
    card_number_check,
    card_number_valid,
    serial_number,
    ssn_check,
    ssn_valid,
    validate_card_number,
    validate_ssn,
    verify_card_id,
)


@pytest.mark.parametrize("number", ["X00000019", "KD5578904"])
def test_public_card_numbers(number: str) -> None:
    # docs/chip-application.md §3 and §1: public card numbers whose check characters agree.
    assert card_number_check(number[:8]) == number[8]
    assert card_number_valid(number)


def test_card_number_check_x_and_0() -> None:
    # r = 10 gives 'X', r = 11 gives '0' (GB 11714 scheme): find both among 8-digit stems.
    checks = {card_number_check(f"{i:08d}") for i in range(200)}
    assert {"X", "0"} <= checks


def test_card_number_errors() -> None:
    with pytest.raises(InvalidData, match="校验位"):
        validate_card_number("KD5578905")
    with pytest.raises(InvalidData, match="9 位"):
        validate_card_number("KD557890")
    assert not card_number_valid("kd5578904")  # lower case is not a card number


def test_gb11643_example() -> None:
    # GB 11643-1999's own example: 11010519491231002X.
    assert ssn_check("11010519491231002") == "X"
    assert ssn_valid("11010519491231002X")
    with pytest.raises(InvalidData, match="应为 X"):
        validate_ssn("110105194912310021")
    with pytest.raises(InvalidData, match="18 位"):
        validate_ssn("1101051949123100")
    with pytest.raises(InvalidData, match="出生日期"):
        validate_ssn("110105194913310029"[:17] + ssn_check("11010519491331002"))


def test_serial_number_from_atr() -> None:
    sn = bytes.fromhex("4EAC58E79F6F7077")
    assert serial_number(build_atr(0, b"\x86SSC" + sn)) == sn
    assert serial_number(build_atr(1, b"\x86SSC" + sn)) == sn  # TCK is not part of it
    with pytest.raises(InvalidData):
        serial_number(build_atr(0, b"\x01\x02"))


def test_public_card_identifier_structure() -> None:
    # docs/chip-application.md §1 sample: 341200 ‖ D156000005 ‖ 024575A7 ‖ AEB8AF87.
    card_id = bytes.fromhex("341200D156000005024575A7AEB8AF87")
    assert card_id_matches_sn(card_id, bytes.fromhex("00000000024575A7"))
    assert not card_id_matches_sn(card_id, bytes.fromhex("00000000024575A8"))


def test_card_identifier_mac(tmp_path: Path) -> None:
    hsm = LocalSecurityModule(Keystore.create_test(tmp_path / "ks.json"))
    sn = bytes.fromhex("0102030405060708")
    card_id = build_card_id(hsm, "irk", "371700", sn)
    assert card_id[:12] == bytes.fromhex("371700D15600000505060708")
    assert verify_card_id(hsm, "irk", card_id, sn)
    forged = card_id[:12] + bytes(4)
    assert not verify_card_id(hsm, "irk", forged, sn)
    assert not verify_card_id(hsm, "irk", card_id, bytes.fromhex("0102030405060709"))
