"""Known-answer tests of the security module's algorithms, each vector with its source."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from hypothesis import given
from hypothesis import strategies as st

from hsm_stub.blockcipher import cbc_decrypt, cbc_encrypt, ecb_decrypt, ecb_encrypt
from hsm_stub.cryptograms import (
    CardFactors,
    card_id_mac,
    command_mac,
    derive_card_key,
    external_auth_data,
    pin_block,
    pin_reset_data,
)
from hsm_stub.errors import BadInput
from hsm_stub.mac import mac_algorithm1, mac_algorithm3, pad_method2, unpad_method2
from hsm_stub.suites import SM4_SUITE, TDES, CipherSuite

H = bytes.fromhex


def test_des_worked_example() -> None:
    # J. Orlin Grabbe, "The DES Algorithm Illustrated": K = 133457799BBCDFF1,
    # M = 0123456789ABCDEF -> C = 85E813540F0AB405.
    assert ecb_encrypt("DES", H("133457799BBCDFF1"), H("0123456789ABCDEF")) == H("85E813540F0AB405")


def test_3des_sp800_67_example() -> None:
    # NIST SP 800-67 Rev. 1, Appendix B: three-key TDEA on "The qufck brown fox jump".
    key = H("0123456789ABCDEF23456789ABCDEF01456789ABCDEF0123")
    cipher = ecb_encrypt("3DES", key, b"The qufck brown fox jump")
    assert cipher == H("A826FD8CE53B855FCCE21C8112256FE668D5C05DD9B6B900")
    assert ecb_decrypt("3DES", key, cipher) == b"The qufck brown fox jump"


def test_sm4_gbt_32907_example() -> None:
    # GB/T 32907-2016 appendix A example 1 (docs/chip-application.md §4).
    key = H("0123456789ABCDEFFEDCBA9876543210")
    assert ecb_encrypt("SM4", key, key) == H("681EDF34D206965E86B3E94F536E4246")


def test_sm3_gbt_32905_example() -> None:
    # GB/T 32905-2016 appendix A example 1: SM3("abc").
    digest = hashes.Hash(hashes.SM3())
    digest.update(b"abc")
    assert digest.finalize() == H(
        "66C7F0F462EEEDD9D1F2D46BDC10E4E24167C4875CF2F7A2297DA02B8F4BA8E0"
    )


def test_spec_notes_pki_pin_vector() -> None:
    # docs/chip-application.md §4 (Z390Kylin, recomputed): SM4_ECB(SM3(PIN BCD)[:16], challenge).
    digest = hashes.Hash(hashes.SM3())
    digest.update(H("123456"))
    sm3 = digest.finalize()
    assert sm3 == H("3DE741F445DD357BEA4E6C3FE6437036F62B5E3EC0F00D62796EDB4305ED627F")
    challenge = H("178CEDCF32C5D7990216632170C7CD37")
    assert ecb_encrypt("SM4", sm3[:16], challenge) == H("358B51056B9B9EB2C96B20E7DB7A6B8F")


def test_mac_algorithm_1_fips_113_example() -> None:
    # FIPS PUB 113 / ANSI X9.9 example: DES CBC-MAC of "7654321 Now is the time for "
    # (zero-padded) under 0123456789ABCDEF = F1D30F68 49312CA4.
    data = b"7654321 Now is the time for "
    padded = data + bytes(-len(data) % 8)
    assert mac_algorithm1("DES", H("0123456789ABCDEF"), padded) == H("F1D30F6849312CA4")


def test_mac_algorithm_3_published_example() -> None:
    # pyemv tests/test_mac.py: ISO 9797-1 MAC algorithm 3, K = AA…AA ‖ BB…BB,
    # "hello world", padding method 2 -> 2BC2D9EDE0CF31F6.
    key = H("AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBB")
    assert mac_algorithm3(key, pad_method2(b"hello world")) == H("2BC2D9EDE0CF31F6")
    assert TDES.mac(key, b"hello world") == H("2BC2D9EDE0CF31F6")


def test_kcv_published_example() -> None:
    # The KCV of the 3DES test key 0123456789ABCDEF FEDCBA9876543210 is 08D7B4
    # (the value every payment-HSM manual and BP-Tools print for it).
    assert TDES.kcv(H("0123456789ABCDEFFEDCBA9876543210")) == H("08D7B4")


@pytest.mark.parametrize("n", range(0, 18))
def test_padding_method_2(n: int) -> None:
    data = b"F" * n
    padded = pad_method2(data, 8)
    assert padded == data + b"\x80" + bytes(7 - n % 8)
    assert unpad_method2(padded, 8) == data
    assert pad_method2(data, 16) == data + b"\x80" + bytes(15 - n % 16)


def test_unpad_refuses_bad_padding() -> None:
    with pytest.raises(BadInput):
        unpad_method2(bytes(8))
    with pytest.raises(BadInput):
        unpad_method2(b"\x80" + bytes(15))  # a whole block of padding is too much at 8


@given(st.binary(min_size=8, max_size=64).filter(lambda b: len(b) % 8 == 0))
def test_cbc_round_trip(data: bytes) -> None:
    key = H("0123456789ABCDEFFEDCBA9876543210")
    iv = H("1122334455667788")
    assert cbc_decrypt("3DES", key, cbc_encrypt("3DES", key, data, iv), iv) == data


def test_cipher_input_checks() -> None:
    with pytest.raises(BadInput, match="8, 16 or 24"):
        ecb_encrypt("3DES", bytes(15), bytes(8))
    with pytest.raises(BadInput, match="SM4 keys"):
        ecb_encrypt("SM4", bytes(8), bytes(16))
    with pytest.raises(BadInput, match="whole"):
        ecb_encrypt("3DES", bytes(16), bytes(7))
    with pytest.raises(BadInput, match="16-byte"):
        mac_algorithm3(bytes(24), bytes(8))


# ---------------------------------------------------------------- the 社保卡 scheme

ROOT = H("0123456789ABCDEFFEDCBA9876543210")
SN = H("0102030405060708")
FACTORS = CardFactors.for_card(SN, "371700")


def test_card_factors_from_region_and_sn() -> None:
    # docs/chip-application.md §4: city "371700sx" = 3337313730307378; province "37" "0000" "sh".
    assert FACTORS.city == H("3337313730307378")
    assert FACTORS.province == H("3337303030307368")
    assert FACTORS.card == SN
    assert CardFactors.from_bytes(FACTORS.to_bytes()) == FACTORS
    with pytest.raises(BadInput):
        CardFactors.for_card(SN, "37170")
    with pytest.raises(BadInput):
        CardFactors.for_card(SN[:7], "371700")


def test_pboc_diversification_step() -> None:
    # Div(K, D) = 3DES_K(D) ‖ 3DES_K(~D), SM4 suite SM4_K(D ‖ ~D) (docs/chip-application.md §4);
    # expected values from openssl, not from hsm_stub (more in test_independent_vectors.py):
    # echo 3337313730307378CCC8CEC8CFCF8C87 | xxd -r -p \
    #   | openssl enc -des-ede-ecb -K 0123456789ABCDEFFEDCBA9876543210 -nopad | xxd -p -u -c 64
    assert TDES.diversify(ROOT, H("3337313730307378")) == H("B30540AEE745677DFB820230EE93DAFF")
    # echo 3337313730307378CCC8CEC8CFCF8C87 | xxd -r -p \
    #   | openssl enc -sm4-ecb -K 0123456789ABCDEFFEDCBA9876543210 -nopad | xxd -p -u -c 64
    assert SM4_SUITE.diversify(ROOT, H("3337313730307378")) == H("C4C7562FAC8A0B3A281F1F74B3E99EA8")


def test_three_level_derivation_order() -> None:
    # Root → province → city → card (docs/chip-application.md §4); each level by openssl:
    # echo 3337303030307368CCC8CFCFCFCF8C97 | xxd -r -p \
    #   | openssl enc -des-ede-ecb -K 0123456789ABCDEFFEDCBA9876543210 -nopad | xxd -p -u -c 64
    province = H("7BA884BEC14AF6CFEC9F03A1B95AEC0C")
    # echo 3337313730307378CCC8CEC8CFCF8C87 | xxd -r -p \
    #   | openssl enc -des-ede-ecb -K 7BA884BEC14AF6CFEC9F03A1B95AEC0C -nopad | xxd -p -u -c 64
    city = H("1D08890AAB0249491D0CCC70EC710FFC")
    # echo 0102030405060708FEFDFCFBFAF9F8F7 | xxd -r -p \
    #   | openssl enc -des-ede-ecb -K 1D08890AAB0249491D0CCC70EC710FFC -nopad | xxd -p -u -c 64
    card = H("F5186E818D40946939B097BAC9342FDD")
    assert TDES.diversify(ROOT, H("3337303030307368")) == province
    assert TDES.diversify(province, H("3337313730307378")) == city
    assert derive_card_key(TDES, ROOT, FACTORS) == card
    other = CardFactors.for_card(H("0102030405060709"), "371700")
    assert derive_card_key(TDES, ROOT, other) != card  # one key per card


# The expected values below are openssl's (the command above each), never hsm_stub's; the card
# key of ROOT for FACTORS is F5186E818D40946939B097BAC9342FDD (test_three_level_derivation_order)
# and, in the SM4 suite, 9E67E047576506F3AE9FDA2813AA6840:
#   echo 3337303030307368CCC8CFCFCFCF8C97 | xxd -r -p | openssl enc -sm4-ecb -nopad \
#     -K 0123456789ABCDEFFEDCBA9876543210 | xxd -p -u -c 64    → 43E920C2FB5C9FEFBF9738CEF2101BE9
#   echo 3337313730307378CCC8CEC8CFCF8C87 | xxd -r -p | openssl enc -sm4-ecb -nopad \
#     -K 43E920C2FB5C9FEFBF9738CEF2101BE9 | xxd -p -u -c 64    → 4C04212D4DBCC040F0C8A1948127B5C0
#   echo 0102030405060708FEFDFCFBFAF9F8F7 | xxd -r -p | openssl enc -sm4-ecb -nopad \
#     -K 4C04212D4DBCC040F0C8A1948127B5C0 | xxd -p -u -c 64    → 9E67E047576506F3AE9FDA2813AA6840
CARD_KEYS = {
    "3DES": H("F5186E818D40946939B097BAC9342FDD"),
    "SM4": H("9E67E047576506F3AE9FDA2813AA6840"),
}
# Single DES is in OpenSSL 3's legacy provider: in the commands, LEGACY="-provider legacy
# -provider default" (as tests/unit/test_independent_vectors.py runs them).


@pytest.mark.parametrize(
    ("s", "session", "cryptogram"),
    [
        # echo A1A2A3A4A5A6A7A8 | xxd -r -p | openssl enc -des-ede-ecb -nopad \
        #   -K F5186E818D40946939B097BAC9342FDD | xxd -p -u        → SK EE964A12988D967D
        # echo 0001020304050607 | xxd -r -p | openssl enc -des-ecb -nopad \
        #   -K EE964A12988D967D $LEGACY | xxd -p -u                → E 79CED0E30A1DFE47
        (TDES, "EE964A12988D967D", "79CED0E30A1DFE47"),
        # echo A1A2A3A4A5A6A7A85E5D5C5B5A595857 | xxd -r -p | openssl enc -sm4-ecb -nopad \
        #   -K 9E67E047576506F3AE9FDA2813AA6840 | xxd -p -u -c 64  → SK 63C3F964…B60915DD
        # echo 000102030405060708090A0B0C0D0E0F | xxd -r -p | openssl enc -sm4-ecb -nopad \
        #   -K 63C3F964A4B36DCAD64CF214B60915DD | xxd -p -u -c 64  → E F5CB8055…0BB798C1
        (SM4_SUITE, "63C3F964A4B36DCAD64CF214B60915DD", "F5CB80557634AA36C4C43BEE0BB798C1"),
    ],
    ids=["3DES", "SM4"],
)
def test_external_authentication_cryptogram(s: CipherSuite, session: str, cryptogram: str) -> None:
    card_key = derive_card_key(s, ROOT, FACTORS)
    assert card_key == CARD_KEYS[s.name]
    challenge = H("A1A2A3A4A5A6A7A8")
    factor = bytes(range(s.block))
    assert s.session_key(card_key, challenge) == H(session)
    assert external_auth_data(s, card_key, challenge, factor) == H(cryptogram) + factor
    with pytest.raises(BadInput):
        external_auth_data(s, card_key, challenge[:4], factor)


def test_command_mac_and_pin_reset_block() -> None:
    card_key = CARD_KEYS["3DES"]
    challenge = H("1122334455667788")
    # echo 1122334455667788 | xxd -r -p | openssl enc -des-ede-ecb -nopad \
    #   -K F5186E818D40946939B097BAC9342FDD | xxd -p -u          → SK 96743012591E6A5B
    assert TDES.session_key(card_key, challenge) == H("96743012591E6A5B")
    # echo 8424000004800000 | xxd -r -p | openssl enc -des-cbc -nopad \
    #   -K 96743012591E6A5B -iv 0000000000000000 $LEGACY | xxd -p -u     → 184DAFCD842FBEF6
    assert command_mac(TDES, card_key, challenge, H("8424000004")) == H("184DAFCD")
    # echo 0365432180000000 | xxd -r -p | openssl enc -des-ede-ecb -nopad \
    #   -K F5186E818D40946939B097BAC9342FDD | xxd -p -u          → B9922BD7695CDD2F
    # echo 842400010CB9922BD7695CDD2F800000 | xxd -r -p | openssl enc -des-cbc -nopad \
    #   -K 96743012591E6A5B -iv 0000000000000000 $LEGACY | xxd -p -u -c 64
    #                                                  → 8E6DCF0DE7683DB1 163504716FDF50CB
    # (the MAC covers the PIN RESET header with Lc = 0C: 8 enciphered bytes + 4 MAC bytes)
    assert pin_reset_data(TDES, card_key, challenge, "654321") == H("B9922BD7695CDD2F16350471")
    assert pin_block(SM4_SUITE, "123456") == H("03123456") + b"\x80" + bytes(11)
    with pytest.raises(BadInput, match="6 digits"):
        pin_block(TDES, "12345a")


def test_card_identifier_mac() -> None:
    # docs/chip-application.md §3: MAC algorithm 3 over the first 12 bytes, IRK diversified by
    # SN; the IRK here is ROOT, the 12 bytes 341200 ‖ D156000005 ‖ 05060708. By openssl:
    # echo 0102030405060708FEFDFCFBFAF9F8F7 | xxd -r -p | openssl enc -des-ede-ecb -nopad \
    #   -K 0123456789ABCDEFFEDCBA9876543210 | xxd -p -u -c 64  → A85CEB8CDADFF80836B1D1C24CE030D7
    # echo 341200D1560000050506070880000000 | xxd -r -p | openssl enc -des-cbc -nopad \
    #   -K A85CEB8CDADFF808 -iv 0000000000000000 $LEGACY | xxd -p -u -c 64
    #                                                  → 17EF1D71233C5318 051A3444C5DB2E7B
    # echo 051A3444C5DB2E7B | xxd -r -p | openssl enc -d -des-ecb -nopad \
    #   -K 36B1D1C24CE030D7 $LEGACY | xxd -p -u               → 91C1D8E6F68DC310
    # echo 91C1D8E6F68DC310 | xxd -r -p | openssl enc -des-ecb -nopad \
    #   -K A85CEB8CDADFF808 $LEGACY | xxd -p -u               → 9C67A57FEDA54EC0
    data12 = H("341200") + H("D156000005") + SN[4:]
    assert card_id_mac(TDES, ROOT, SN, data12) == H("9C67A57F")
    with pytest.raises(BadInput, match="12 bytes"):
        card_id_mac(TDES, ROOT, SN, data12[:11])
