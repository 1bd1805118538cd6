"""Every cryptographic step of the 社保卡 scheme against fixed vectors computed by an
independent implementation: the ``openssl`` command line (docs/chip-application.md §3-§4,
docs/security-module.md "Test vectors").

Each expected value below is a hex literal printed by the ``openssl`` command in the comment
above it (run the comment without its ``# ``: binary in on stdin, hex out through ``xxd``).
No value here was computed by ``hsm_stub``: :func:`test_openssl_still_gives_every_literal`
re-runs every command at test time and compares its output with the literal, and the other
tests compare the code under test with the literals. Single DES (``-des-ecb``, ``-des-cbc``)
lives in OpenSSL 3's legacy provider, loaded with ``-provider legacy -provider default``.

The keys are the test keys of ``hsm_stub.keystore.TEST_KEYS`` (ASCII text: ``SSCARD TEST
UPD1`` = ``53534341524420544553542055504431``, …) and the factors those of a test card of
region 371700 with SN ``0102030405060708`` (docs/chip-application.md §4): card = the SN,
city ``371700sx`` = ``3337313730307378``, province ``370000sh`` = ``3337303030307368``;
challenge R = ``1122334455667788``, authentication factor A = ``A1A2A3A4A5A6A7A8``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes

from hsm_stub.blockcipher import ecb_encrypt
from hsm_stub.cryptograms import (
    CardFactors,
    card_id_mac,
    command_mac,
    derive_card_key,
    external_auth_data,
    internal_auth_response,
    pin_reset_data,
)
from hsm_stub.keystore import TEST_KEYS, Keystore
from hsm_stub.local import LocalSecurityModule
from hsm_stub.mac import mac_algorithm1, mac_algorithm3, pad_method2
from hsm_stub.suites import SM4_SUITE, TDES

H = bytes.fromhex
LEGACY = ("-provider", "legacy", "-provider", "default")


@dataclass(frozen=True)
class Vector:
    """One ``openssl`` run: its arguments, the input bytes (hex) and the output bytes (hex)
    it printed. ``legacy``: single DES, which needs OpenSSL 3's legacy provider."""

    args: str
    data: str
    out: str
    legacy: bool = False

    @property
    def argv(self) -> list[str]:
        return ["openssl", *self.args.split(), *(LEGACY if self.legacy else ())]

    @property
    def output(self) -> bytes:
        return H(self.out)

    @property
    def key(self) -> str:
        """The ``-K`` argument (hex)."""
        words = self.args.split()
        return words[words.index("-K") + 1]


def invert(hex_factor: str) -> str:
    return bytes(b ^ 0xFF for b in H(hex_factor)).hex().upper()


# ---- 3DES suite, three levels: update key (KID 04), root 'SSCARD TEST UPD1'
# echo 0000000000000000 | xxd -r -p \
#   | openssl enc -des-ede-ecb -K 53534341524420544553542055504431 -nopad | xxd -p -u -c 64
KCV_UPDATE_ROOT = Vector(
    "enc -des-ede-ecb -K 53534341524420544553542055504431 -nopad",
    "0000000000000000",
    "278B7834A3501909",
)

# Div(K_root, province '370000sh') = 3DES_K(P) ‖ 3DES_K(~P): ECB over P ‖ ~P
# echo 3337303030307368CCC8CFCFCFCF8C97 | xxd -r -p \
#   | openssl enc -des-ede-ecb -K 53534341524420544553542055504431 -nopad | xxd -p -u -c 64
UPDATE_PROVINCE = Vector(
    "enc -des-ede-ecb -K 53534341524420544553542055504431 -nopad",
    "3337303030307368CCC8CFCFCFCF8C97",
    "44B554ED9EA3DD57D13169A098EE6627",
)

# echo 0000000000000000 | xxd -r -p \
#   | openssl enc -des-ede-ecb -K 44B554ED9EA3DD57D13169A098EE6627 -nopad | xxd -p -u -c 64
KCV_UPDATE_PROVINCE = Vector(
    "enc -des-ede-ecb -K 44B554ED9EA3DD57D13169A098EE6627 -nopad",
    "0000000000000000",
    "824B9EA920730D31",
)

# Div(K_province, city '371700sx')
# echo 3337313730307378CCC8CEC8CFCF8C87 | xxd -r -p \
#   | openssl enc -des-ede-ecb -K 44B554ED9EA3DD57D13169A098EE6627 -nopad | xxd -p -u -c 64
UPDATE_CITY = Vector(
    "enc -des-ede-ecb -K 44B554ED9EA3DD57D13169A098EE6627 -nopad",
    "3337313730307378CCC8CEC8CFCF8C87",
    "47AF52244EF2F02B3366E9275A8B0C9A",
)

# echo 0000000000000000 | xxd -r -p \
#   | openssl enc -des-ede-ecb -K 47AF52244EF2F02B3366E9275A8B0C9A -nopad | xxd -p -u -c 64
KCV_UPDATE_CITY = Vector(
    "enc -des-ede-ecb -K 47AF52244EF2F02B3366E9275A8B0C9A -nopad",
    "0000000000000000",
    "20EA26BA873CAD73",
)

# Div(K_city, card SN 0102030405060708)
# echo 0102030405060708FEFDFCFBFAF9F8F7 | xxd -r -p \
#   | openssl enc -des-ede-ecb -K 47AF52244EF2F02B3366E9275A8B0C9A -nopad | xxd -p -u -c 64
UPDATE_CARD = Vector(
    "enc -des-ede-ecb -K 47AF52244EF2F02B3366E9275A8B0C9A -nopad",
    "0102030405060708FEFDFCFBFAF9F8F7",
    "5117CD0ECB3A0DC4EDBAF8A5104FA7CE",
)

# The PBOC rule as written, a block at a time: 3DES_K(D) and 3DES_K(~D) in two runs. Their
# concatenation is UPDATE_CARD, the one ECB call over D ‖ ~D that suites.diversify makes.
# echo 0102030405060708 | xxd -r -p \
#   | openssl enc -des-ede-ecb -K 47AF52244EF2F02B3366E9275A8B0C9A -nopad | xxd -p -u -c 64
UPDATE_CARD_D = Vector(
    "enc -des-ede-ecb -K 47AF52244EF2F02B3366E9275A8B0C9A -nopad",
    "0102030405060708",
    "5117CD0ECB3A0DC4",
)

# echo FEFDFCFBFAF9F8F7 | xxd -r -p \
#   | openssl enc -des-ede-ecb -K 47AF52244EF2F02B3366E9275A8B0C9A -nopad | xxd -p -u -c 64
UPDATE_CARD_NOT_D = Vector(
    "enc -des-ede-ecb -K 47AF52244EF2F02B3366E9275A8B0C9A -nopad",
    "FEFDFCFBFAF9F8F7",
    "EDBAF8A5104FA7CE",
)

# echo 0000000000000000 | xxd -r -p \
#   | openssl enc -des-ede-ecb -K 5117CD0ECB3A0DC4EDBAF8A5104FA7CE -nopad | xxd -p -u -c 64
KCV_UPDATE_CARD = Vector(
    "enc -des-ede-ecb -K 5117CD0ECB3A0DC4EDBAF8A5104FA7CE -nopad",
    "0000000000000000",
    "D4BB2C8A642C21B7",
)

# ---- 3DES suite, two levels (card ‖ city): update key
# Div(K_root, city '371700sx')
# echo 3337313730307378CCC8CEC8CFCF8C87 | xxd -r -p \
#   | openssl enc -des-ede-ecb -K 53534341524420544553542055504431 -nopad | xxd -p -u -c 64
UPDATE2_CITY = Vector(
    "enc -des-ede-ecb -K 53534341524420544553542055504431 -nopad",
    "3337313730307378CCC8CEC8CFCF8C87",
    "FE0587C0B2BD296EDAD934C138DE8B8C",
)

# Div(K_city, card SN)
# echo 0102030405060708FEFDFCFBFAF9F8F7 | xxd -r -p \
#   | openssl enc -des-ede-ecb -K FE0587C0B2BD296EDAD934C138DE8B8C -nopad | xxd -p -u -c 64
UPDATE2_CARD = Vector(
    "enc -des-ede-ecb -K FE0587C0B2BD296EDAD934C138DE8B8C -nopad",
    "0102030405060708FEFDFCFBFAF9F8F7",
    "071997CC42835A32CDCFE04E892D5DB5",
)

# echo 0000000000000000 | xxd -r -p \
#   | openssl enc -des-ede-ecb -K 071997CC42835A32CDCFE04E892D5DB5 -nopad | xxd -p -u -c 64
KCV_UPDATE2_CARD = Vector(
    "enc -des-ede-ecb -K 071997CC42835A32CDCFE04E892D5DB5 -nopad",
    "0000000000000000",
    "B0FE9974906CBE1B",
)

# ---- session key and EXTERNAL AUTHENTICATE
# SK = 3DES_K_card(R), R = 1122334455667788
# echo 1122334455667788 | xxd -r -p \
#   | openssl enc -des-ede-ecb -K 5117CD0ECB3A0DC4EDBAF8A5104FA7CE -nopad | xxd -p -u -c 64
UPDATE_SESSION = Vector(
    "enc -des-ede-ecb -K 5117CD0ECB3A0DC4EDBAF8A5104FA7CE -nopad",
    "1122334455667788",
    "2B1DE6499E118965",
)

# E = DES_SK(A), A = A1A2A3A4A5A6A7A8 (single DES: legacy provider)
# echo A1A2A3A4A5A6A7A8 | xxd -r -p \
#   | openssl enc -des-ecb -K 2B1DE6499E118965 -nopad \
#     -provider legacy -provider default | xxd -p -u -c 64
UPDATE_E = Vector(
    "enc -des-ecb -K 2B1DE6499E118965 -nopad",
    "A1A2A3A4A5A6A7A8",
    "F2961318490C5A89",
    legacy=True,
)

# ---- PIN key, root 'SSCARD TEST PIN1'
# echo 3337303030307368CCC8CFCFCFCF8C97 | xxd -r -p \
#   | openssl enc -des-ede-ecb -K 53534341524420544553542050494E31 -nopad | xxd -p -u -c 64
PIN_PROVINCE = Vector(
    "enc -des-ede-ecb -K 53534341524420544553542050494E31 -nopad",
    "3337303030307368CCC8CFCFCFCF8C97",
    "763C06D92FEDE6A638A0566BA4498FB8",
)

# echo 3337313730307378CCC8CEC8CFCF8C87 | xxd -r -p \
#   | openssl enc -des-ede-ecb -K 763C06D92FEDE6A638A0566BA4498FB8 -nopad | xxd -p -u -c 64
PIN_CITY = Vector(
    "enc -des-ede-ecb -K 763C06D92FEDE6A638A0566BA4498FB8 -nopad",
    "3337313730307378CCC8CEC8CFCF8C87",
    "71F5DAB10D39CB5A4896F91B0376E173",
)

# echo 0102030405060708FEFDFCFBFAF9F8F7 | xxd -r -p \
#   | openssl enc -des-ede-ecb -K 71F5DAB10D39CB5A4896F91B0376E173 -nopad | xxd -p -u -c 64
PIN_CARD = Vector(
    "enc -des-ede-ecb -K 71F5DAB10D39CB5A4896F91B0376E173 -nopad",
    "0102030405060708FEFDFCFBFAF9F8F7",
    "07158331F3421BD2083AECB9C2C21951",
)

# echo 0000000000000000 | xxd -r -p \
#   | openssl enc -des-ede-ecb -K 07158331F3421BD2083AECB9C2C21951 -nopad | xxd -p -u -c 64
KCV_PIN_CARD = Vector(
    "enc -des-ede-ecb -K 07158331F3421BD2083AECB9C2C21951 -nopad",
    "0000000000000000",
    "55AF36CA84935414",
)

# echo 1122334455667788 | xxd -r -p \
#   | openssl enc -des-ede-ecb -K 07158331F3421BD2083AECB9C2C21951 -nopad | xxd -p -u -c 64
PIN_SESSION = Vector(
    "enc -des-ede-ecb -K 07158331F3421BD2083AECB9C2C21951 -nopad",
    "1122334455667788",
    "BA47C2FFC29ACDBB",
)

# PIN unblock: DES CBC-MAC (IV 0) of 84 24 00 00 04 ‖ 80 00 00 under SK; MAC = first 4 bytes
# echo 8424000004800000 | xxd -r -p \
#   | openssl enc -des-cbc -K BA47C2FFC29ACDBB -iv 0000000000000000 -nopad \
#     -provider legacy -provider default | xxd -p -u -c 64
UNBLOCK_MAC = Vector(
    "enc -des-cbc -K BA47C2FFC29ACDBB -iv 0000000000000000 -nopad",
    "8424000004800000",
    "53A411FDEBC073A5",
    legacy=True,
)

# PIN reset to 654321: 3DES_K_card(03 ‖ 654321 ‖ 80 00 00 00)
# echo 0365432180000000 | xxd -r -p \
#   | openssl enc -des-ede-ecb -K 07158331F3421BD2083AECB9C2C21951 -nopad | xxd -p -u -c 64
RESET_ENC = Vector(
    "enc -des-ede-ecb -K 07158331F3421BD2083AECB9C2C21951 -nopad",
    "0365432180000000",
    "4EF4599C416C1457",
)

# DES CBC-MAC of 84 24 00 01 0C ‖ enc ‖ 80 00 00 under SK; MAC = first 4 bytes of the last block
# echo 842400010C4EF4599C416C1457800000 | xxd -r -p \
#   | openssl enc -des-cbc -K BA47C2FFC29ACDBB -iv 0000000000000000 -nopad \
#     -provider legacy -provider default | xxd -p -u -c 64
RESET_MAC = Vector(
    "enc -des-cbc -K BA47C2FFC29ACDBB -iv 0000000000000000 -nopad",
    "842400010C4EF4599C416C1457800000",
    "9402F42F1927E854BBE9B5EF2C892624",
    legacy=True,
)

# ---- 卡识别码 MAC, root 'SSCARD TEST IRK1' diversified once by the SN
# echo 0102030405060708FEFDFCFBFAF9F8F7 | xxd -r -p \
#   | openssl enc -des-ede-ecb -K 53534341524420544553542049524B31 -nopad | xxd -p -u -c 64
IRK_CARD = Vector(
    "enc -des-ede-ecb -K 53534341524420544553542049524B31 -nopad",
    "0102030405060708FEFDFCFBFAF9F8F7",
    "CE4EF2055542890B0BCB3A545DAC95D3",
)

# MAC algorithm 3 step 1: single-DES CBC under K1 over the padded 12 bytes
# echo 371700D1560000050506070880000000 | xxd -r -p \
#   | openssl enc -des-cbc -K CE4EF2055542890B -iv 0000000000000000 -nopad \
#     -provider legacy -provider default | xxd -p -u -c 64
CARD_ID_CBC = Vector(
    "enc -des-cbc -K CE4EF2055542890B -iv 0000000000000000 -nopad",
    "371700D1560000050506070880000000",
    "CAA744B266AD742DA83FA778E2AE29ED",
    legacy=True,
)

# step 2: decrypt the last block under K2
# echo A83FA778E2AE29ED | xxd -r -p \
#   | openssl enc -d -des-ecb -K 0BCB3A545DAC95D3 -nopad \
#     -provider legacy -provider default | xxd -p -u -c 64
CARD_ID_DEC = Vector(
    "enc -d -des-ecb -K 0BCB3A545DAC95D3 -nopad",
    "A83FA778E2AE29ED",
    "70F8EDFEDB21A63D",
    legacy=True,
)

# step 3: encrypt under K1; the MAC is the first 4 bytes
# echo 70F8EDFEDB21A63D | xxd -r -p \
#   | openssl enc -des-ecb -K CE4EF2055542890B -nopad \
#     -provider legacy -provider default | xxd -p -u -c 64
CARD_ID_MAC = Vector(
    "enc -des-ecb -K CE4EF2055542890B -nopad",
    "70F8EDFEDB21A63D",
    "5F44E9532C005B17",
    legacy=True,
)

# ---- INTERNAL AUTHENTICATE, root 'SSCARD TEST INT1'
# echo 3337303030307368CCC8CFCFCFCF8C97 | xxd -r -p \
#   | openssl enc -des-ede-ecb -K 535343415244205445535420494E5431 -nopad | xxd -p -u -c 64
INTERNAL_PROVINCE = Vector(
    "enc -des-ede-ecb -K 535343415244205445535420494E5431 -nopad",
    "3337303030307368CCC8CFCFCFCF8C97",
    "0A7C9FBA31D1D9E88F6CBC18ADC471F6",
)

# echo 3337313730307378CCC8CEC8CFCF8C87 | xxd -r -p \
#   | openssl enc -des-ede-ecb -K 0A7C9FBA31D1D9E88F6CBC18ADC471F6 -nopad | xxd -p -u -c 64
INTERNAL_CITY = Vector(
    "enc -des-ede-ecb -K 0A7C9FBA31D1D9E88F6CBC18ADC471F6 -nopad",
    "3337313730307378CCC8CEC8CFCF8C87",
    "F2F2D36862EAF539F1788C7DB48748DB",
)

# echo 0102030405060708FEFDFCFBFAF9F8F7 | xxd -r -p \
#   | openssl enc -des-ede-ecb -K F2F2D36862EAF539F1788C7DB48748DB -nopad | xxd -p -u -c 64
INTERNAL_CARD = Vector(
    "enc -des-ede-ecb -K F2F2D36862EAF539F1788C7DB48748DB -nopad",
    "0102030405060708FEFDFCFBFAF9F8F7",
    "DF3D26718D5B790D12218A1DFEBA46AD",
)

# answer to 00 88 00 00 10 <16 random bytes>: 3DES-ECB under K_card_internal
# echo 11121314151617182122232425262728 | xxd -r -p \
#   | openssl enc -des-ede-ecb -K DF3D26718D5B790D12218A1DFEBA46AD -nopad | xxd -p -u -c 64
INTERNAL_ANSWER = Vector(
    "enc -des-ede-ecb -K DF3D26718D5B790D12218A1DFEBA46AD -nopad",
    "11121314151617182122232425262728",
    "43E3CC52D5D02CA3C6BA018948E3A096",
)

# ---- SM4 suite [ours]: root = the update key's 16 bytes used as an SM4 key
# Div(K, D) = SM4_K(D ‖ ~D)
# echo 3337303030307368CCC8CFCFCFCF8C97 | xxd -r -p \
#   | openssl enc -sm4-ecb -K 53534341524420544553542055504431 -nopad | xxd -p -u -c 64
SM4_PROVINCE = Vector(
    "enc -sm4-ecb -K 53534341524420544553542055504431 -nopad",
    "3337303030307368CCC8CFCFCFCF8C97",
    "6CB5F3A761B23A9B8EC9D4639F3DFC42",
)

# echo 00000000000000000000000000000000 | xxd -r -p \
#   | openssl enc -sm4-ecb -K 6CB5F3A761B23A9B8EC9D4639F3DFC42 -nopad | xxd -p -u -c 64
KCV_SM4_PROVINCE = Vector(
    "enc -sm4-ecb -K 6CB5F3A761B23A9B8EC9D4639F3DFC42 -nopad",
    "00000000000000000000000000000000",
    "06EA2C66125CB5D2D1A5738787D2F654",
)

# echo 3337313730307378CCC8CEC8CFCF8C87 | xxd -r -p \
#   | openssl enc -sm4-ecb -K 6CB5F3A761B23A9B8EC9D4639F3DFC42 -nopad | xxd -p -u -c 64
SM4_CITY = Vector(
    "enc -sm4-ecb -K 6CB5F3A761B23A9B8EC9D4639F3DFC42 -nopad",
    "3337313730307378CCC8CEC8CFCF8C87",
    "B4C1FE13A86DC561B2978DCB28F319B3",
)

# echo 00000000000000000000000000000000 | xxd -r -p \
#   | openssl enc -sm4-ecb -K B4C1FE13A86DC561B2978DCB28F319B3 -nopad | xxd -p -u -c 64
KCV_SM4_CITY = Vector(
    "enc -sm4-ecb -K B4C1FE13A86DC561B2978DCB28F319B3 -nopad",
    "00000000000000000000000000000000",
    "016F613E90CA35E8D988AFF3BDB53355",
)

# echo 0102030405060708FEFDFCFBFAF9F8F7 | xxd -r -p \
#   | openssl enc -sm4-ecb -K B4C1FE13A86DC561B2978DCB28F319B3 -nopad | xxd -p -u -c 64
SM4_CARD = Vector(
    "enc -sm4-ecb -K B4C1FE13A86DC561B2978DCB28F319B3 -nopad",
    "0102030405060708FEFDFCFBFAF9F8F7",
    "DB00298A447A12A5D28669DDFD0618C8",
)

# echo 00000000000000000000000000000000 | xxd -r -p \
#   | openssl enc -sm4-ecb -K DB00298A447A12A5D28669DDFD0618C8 -nopad | xxd -p -u -c 64
KCV_SM4_CARD = Vector(
    "enc -sm4-ecb -K DB00298A447A12A5D28669DDFD0618C8 -nopad",
    "00000000000000000000000000000000",
    "6DA04C16484EED9F5FC36FCB7955D7CE",
)

# SK = SM4_K_card(R ‖ ~R)
# echo 1122334455667788EEDDCCBBAA998877 | xxd -r -p \
#   | openssl enc -sm4-ecb -K DB00298A447A12A5D28669DDFD0618C8 -nopad | xxd -p -u -c 64
SM4_SESSION = Vector(
    "enc -sm4-ecb -K DB00298A447A12A5D28669DDFD0618C8 -nopad",
    "1122334455667788EEDDCCBBAA998877",
    "EAB395B7943187988BF68F68C79DEE56",
)

# E = SM4_SK(A), A = A1…A8 B1…B8
# echo A1A2A3A4A5A6A7A8B1B2B3B4B5B6B7B8 | xxd -r -p \
#   | openssl enc -sm4-ecb -K EAB395B7943187988BF68F68C79DEE56 -nopad | xxd -p -u -c 64
SM4_E = Vector(
    "enc -sm4-ecb -K EAB395B7943187988BF68F68C79DEE56 -nopad",
    "A1A2A3A4A5A6A7A8B1B2B3B4B5B6B7B8",
    "F150682FCC2325D8165053D5802AD38B",
)

# SM4 CBC-MAC (IV 0) of 84 24 00 00 04 ‖ 80 00…; MAC = first 4 bytes
# echo 84240000048000000000000000000000 | xxd -r -p \
#   | openssl enc -sm4-cbc -K EAB395B7943187988BF68F68C79DEE56 \
#     -iv 00000000000000000000000000000000 -nopad | xxd -p -u -c 64
SM4_UNBLOCK_MAC = Vector(
    "enc -sm4-cbc -K EAB395B7943187988BF68F68C79DEE56 -iv 00000000000000000000000000000000 -nopad",
    "84240000048000000000000000000000",
    "FE2CDED0AB4265AADCAD316358D0721B",
)

# ---- published vectors
# GB/T 32907-2016 appendix A, example 1: key = plaintext → 681EDF34…4E6246.
# echo 0123456789ABCDEFFEDCBA9876543210 | xxd -r -p \
#   | openssl enc -sm4-ecb -K 0123456789ABCDEFFEDCBA9876543210 -nopad | xxd -p -u -c 64
SM4_GBT32907 = Vector(
    "enc -sm4-ecb -K 0123456789ABCDEFFEDCBA9876543210 -nopad",
    "0123456789ABCDEFFEDCBA9876543210",
    "681EDF34D206965E86B3E94F536E4246",
)

# GB/T 32905-2016 appendix A, example 1: SM3("abc") = 66C7F0F4…8F4BA8E0.
# echo 616263 | xxd -r -p \
#   | openssl dgst -sm3 -binary | xxd -p -u -c 64
SM3_ABC = Vector(
    "dgst -sm3 -binary",
    "616263",
    "66C7F0F462EEEDD9D1F2D46BDC10E4E24167C4875CF2F7A2297DA02B8F4BA8E0",
)

# docs/chip-application.md §4 (Z390Kylin PKI PIN): SM3 of the PIN 123456 in BCD.
# echo 123456 | xxd -r -p \
#   | openssl dgst -sm3 -binary | xxd -p -u -c 64
SM3_PIN = Vector(
    "dgst -sm3 -binary",
    "123456",
    "3DE741F445DD357BEA4E6C3FE6437036F62B5E3EC0F00D62796EDB4305ED627F",
)

# docs/chip-application.md §4: SM4-ECB(SM3(PIN)[:16], challenge) = 358B5105…DB7A6B8F.
# echo 178CEDCF32C5D7990216632170C7CD37 | xxd -r -p \
#   | openssl enc -sm4-ecb -K 3DE741F445DD357BEA4E6C3FE6437036 -nopad | xxd -p -u -c 64
SM4_PIN = Vector(
    "enc -sm4-ecb -K 3DE741F445DD357BEA4E6C3FE6437036 -nopad",
    "178CEDCF32C5D7990216632170C7CD37",
    "358B51056B9B9EB2C96B20E7DB7A6B8F",
)

# J. Orlin Grabbe, "The DES Algorithm Illustrated": K = 133457799BBCDFF1,
# M = 0123456789ABCDEF → C = 85E813540F0AB405.
# echo 0123456789ABCDEF | xxd -r -p \
#   | openssl enc -des-ecb -K 133457799BBCDFF1 -nopad \
#     -provider legacy -provider default | xxd -p -u -c 64
DES_GRABBE = Vector(
    "enc -des-ecb -K 133457799BBCDFF1 -nopad",
    "0123456789ABCDEF",
    "85E813540F0AB405",
    legacy=True,
)

# NIST SP 800-67 Rev. 1, appendix B: three-key TDEA of "The qufck brown fox jump".
# echo 54686520717566636B2062726F776E20666F78206A756D70 | xxd -r -p \
#   | openssl enc -des-ede3-ecb -K 0123456789ABCDEF23456789ABCDEF01456789ABCDEF0123 -nopad \
#   | xxd -p -u -c 64
TDES_SP800_67 = Vector(
    "enc -des-ede3-ecb -K 0123456789ABCDEF23456789ABCDEF01456789ABCDEF0123 -nopad",
    "54686520717566636B2062726F776E20666F78206A756D70",
    "A826FD8CE53B855FCCE21C8112256FE668D5C05DD9B6B900",
)

# The KCV of the test key 0123456789ABCDEF FEDCBA9876543210 is 08D7B4 (payment-HSM
# manuals, BP-Tools).
# echo 0000000000000000 | xxd -r -p \
#   | openssl enc -des-ede-ecb -K 0123456789ABCDEFFEDCBA9876543210 -nopad | xxd -p -u -c 64
KCV_0123 = Vector(
    "enc -des-ede-ecb -K 0123456789ABCDEFFEDCBA9876543210 -nopad",
    "0000000000000000",
    "08D7B4FB629D0885",
)

# ISO/IEC 9797-1 MAC algorithm 3 (pyemv tests/test_mac.py): K = AA…AA ‖ BB…BB,
# "hello world", padding method 2 → 2BC2D9EDE0CF31F6; in three openssl steps.
# echo 68656C6C6F20776F726C648000000000 | xxd -r -p \
#   | openssl enc -des-cbc -K AAAAAAAAAAAAAAAA -iv 0000000000000000 -nopad \
#     -provider legacy -provider default | xxd -p -u -c 64
MAC3_PYEMV_CBC = Vector(
    "enc -des-cbc -K AAAAAAAAAAAAAAAA -iv 0000000000000000 -nopad",
    "68656C6C6F20776F726C648000000000",
    "5D34FB3EA0990F94773175BE288E4F1D",
    legacy=True,
)

# echo 773175BE288E4F1D | xxd -r -p \
#   | openssl enc -d -des-ecb -K BBBBBBBBBBBBBBBB -nopad \
#     -provider legacy -provider default | xxd -p -u -c 64
MAC3_PYEMV_DEC = Vector(
    "enc -d -des-ecb -K BBBBBBBBBBBBBBBB -nopad",
    "773175BE288E4F1D",
    "3DB19319DB3637C0",
    legacy=True,
)

# echo 3DB19319DB3637C0 | xxd -r -p \
#   | openssl enc -des-ecb -K AAAAAAAAAAAAAAAA -nopad \
#     -provider legacy -provider default | xxd -p -u -c 64
MAC3_PYEMV = Vector(
    "enc -des-ecb -K AAAAAAAAAAAAAAAA -nopad",
    "3DB19319DB3637C0",
    "2BC2D9EDE0CF31F6",
    legacy=True,
)

# FIPS PUB 113 / ANSI X9.9: DES CBC-MAC of "7654321 Now is the time for " (zero-padded)
# under 0123456789ABCDEF = F1D30F68 49312CA4 (the last block).
# echo 37363534333231204E6F77206973207468652074696D6520666F722000000000 | xxd -r -p \
#   | openssl enc -des-cbc -K 0123456789ABCDEF -iv 0000000000000000 -nopad \
#     -provider legacy -provider default | xxd -p -u -c 64
FIPS113_MAC = Vector(
    "enc -des-cbc -K 0123456789ABCDEF -iv 0000000000000000 -nopad",
    "37363534333231204E6F77206973207468652074696D6520666F722000000000",
    "21FB193693A16C286C463F0CB7167A6F956EE891E889D91EF1D30F6849312CA4",
    legacy=True,
)


VECTORS = {name: v for name, v in globals().items() if isinstance(v, Vector)}

UPDATE_ROOT = H("53534341524420544553542055504431")  # b"SSCARD TEST UPD1"
PIN_ROOT = H("53534341524420544553542050494E31")  # b"SSCARD TEST PIN1"
IRK_ROOT = H("53534341524420544553542049524B31")  # b"SSCARD TEST IRK1"
INTERNAL_ROOT = H("535343415244205445535420494E5431")  # b"SSCARD TEST INT1"
SN = H("0102030405060708")
CITY = "3337313730307378"  # "371700sx"
PROVINCE = "3337303030307368"  # "370000sh"
REGION = "371700"
R = H("1122334455667788")
A = H("A1A2A3A4A5A6A7A8")
A16 = H("A1A2A3A4A5A6A7A8B1B2B3B4B5B6B7B8")
CARD_ID_BODY = H("371700D15600000505060708")  # region BCD ‖ D156000005 ‖ SN[4:8]
THREE = CardFactors.for_card(SN, REGION)
TWO = CardFactors.for_card(SN, REGION, levels=2)


# ----------------------------------------------------------------- the literals are openssl's


def test_openssl_is_on_path_with_the_legacy_provider() -> None:
    assert shutil.which("openssl"), "openssl 不在 PATH 上 (install the Debian package openssl)"
    listing = subprocess.run(
        ["openssl", "list", "-providers", *LEGACY], capture_output=True, text=True, check=False
    )
    assert listing.returncode == 0 and "legacy" in listing.stdout, (
        "OpenSSL 3 legacy provider not loadable (single DES needs it): it ships as "
        "ossl-modules/legacy.so in libssl3; OPENSSL_MODULES names its directory. "
        f"{listing.stderr.strip()}"
    )


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_openssl_still_gives_every_literal(name: str) -> None:
    vector = VECTORS[name]
    run = subprocess.run(vector.argv, input=H(vector.data), capture_output=True, check=False)
    assert run.returncode == 0, run.stderr.decode(errors="replace")
    assert run.stdout.hex().upper() == vector.out


def test_the_documented_values_are_these_literals() -> None:
    """docs/security-module.md "Test vectors" quotes values of this file and of the public
    trace's test: each hex word of that section is part of a literal of one of them."""
    here = Path(__file__)
    doc = (here.parents[2] / "docs" / "security-module.md").read_text(encoding="utf-8")
    section = doc.split("### Test vectors", 1)[1].split("\n## ", 1)[0]
    words = re.findall(r"\b[0-9A-F]{6,}\b", section)
    assert len(words) > 20
    literals = " ".join(f"{v.args} {v.data} {v.out}" for v in VECTORS.values())
    literals += (here.parent / "test_public_trace.py").read_text(encoding="utf-8")
    assert [w for w in words if w not in literals] == []


def test_factor_inputs_and_key_chains() -> None:
    """Each level's openssl input is D ‖ ~D of the documented factor, and its -K the key the
    level above printed: the literals form the chains they claim to."""
    levels = {
        "UPDATE": (UPDATE_ROOT, "UPDATE_PROVINCE", "UPDATE_CITY", "UPDATE_CARD"),
        "PIN": (PIN_ROOT, "PIN_PROVINCE", "PIN_CITY", "PIN_CARD"),
        "INTERNAL": (INTERNAL_ROOT, "INTERNAL_PROVINCE", "INTERNAL_CITY", "INTERNAL_CARD"),
        "SM4": (UPDATE_ROOT, "SM4_PROVINCE", "SM4_CITY", "SM4_CARD"),
    }
    for root, province, city, card in levels.values():
        chain = [VECTORS[province], VECTORS[city], VECTORS[card]]
        assert [v.data for v in chain] == [
            PROVINCE + invert(PROVINCE),
            CITY + invert(CITY),
            SN.hex().upper() + invert(SN.hex()),
        ]
        assert [v.key for v in chain] == [root.hex().upper(), chain[0].out, chain[1].out]
    assert UPDATE2_CITY.key == UPDATE_ROOT.hex().upper() and UPDATE2_CARD.key == UPDATE2_CITY.out
    assert IRK_CARD.key == IRK_ROOT.hex().upper()
    for kcv, key in [
        (KCV_UPDATE_ROOT, UPDATE_ROOT.hex().upper()),
        (KCV_UPDATE_PROVINCE, UPDATE_PROVINCE.out),
        (KCV_UPDATE_CITY, UPDATE_CITY.out),
        (KCV_UPDATE_CARD, UPDATE_CARD.out),
        (KCV_UPDATE2_CARD, UPDATE2_CARD.out),
        (KCV_PIN_CARD, PIN_CARD.out),
        (KCV_SM4_PROVINCE, SM4_PROVINCE.out),
        (KCV_SM4_CITY, SM4_CITY.out),
        (KCV_SM4_CARD, SM4_CARD.out),
    ]:
        assert kcv.key == key and set(kcv.data) == {"0"}
    assert UPDATE_SESSION.key == UPDATE_CARD.out and UPDATE_E.key == UPDATE_SESSION.out
    assert PIN_SESSION.key == PIN_CARD.out and UNBLOCK_MAC.key == PIN_SESSION.out
    assert RESET_ENC.key == PIN_CARD.out and RESET_MAC.key == PIN_SESSION.out
    assert RESET_MAC.data == "842400010C" + RESET_ENC.out + "800000"
    assert CARD_ID_CBC.key == IRK_CARD.out[:16] and CARD_ID_DEC.key == IRK_CARD.out[16:]
    assert CARD_ID_DEC.data == CARD_ID_CBC.out[-16:] and CARD_ID_MAC.data == CARD_ID_DEC.out
    assert CARD_ID_MAC.key == IRK_CARD.out[:16]
    assert INTERNAL_ANSWER.key == INTERNAL_CARD.out
    assert SM4_SESSION.key == SM4_CARD.out
    assert SM4_E.key == SM4_SESSION.out and SM4_UNBLOCK_MAC.key == SM4_SESSION.out
    assert SM4_PIN.key == SM3_PIN.out[:32]
    assert MAC3_PYEMV_DEC.data == MAC3_PYEMV_CBC.out[-16:] and MAC3_PYEMV.data == MAC3_PYEMV_DEC.out


# ----------------------------------------------------------------- the 3DES suite


def test_three_level_diversification_each_level_and_kcv() -> None:
    province = TDES.diversify(UPDATE_ROOT, H(PROVINCE))
    city = TDES.diversify(province, H(CITY))
    card = TDES.diversify(city, SN)
    assert (province, city, card) == (
        UPDATE_PROVINCE.output,
        UPDATE_CITY.output,
        UPDATE_CARD.output,
    )
    assert derive_card_key(TDES, UPDATE_ROOT, THREE) == UPDATE_CARD.output
    assert [TDES.kcv(k) for k in (UPDATE_ROOT, province, city, card)] == [
        KCV_UPDATE_ROOT.output[:3],
        KCV_UPDATE_PROVINCE.output[:3],
        KCV_UPDATE_CITY.output[:3],
        KCV_UPDATE_CARD.output[:3],
    ]
    assert derive_card_key(TDES, PIN_ROOT, THREE) == PIN_CARD.output
    assert TDES.kcv(PIN_CARD.output) == KCV_PIN_CARD.output[:3]
    assert derive_card_key(TDES, INTERNAL_ROOT, THREE) == INTERNAL_CARD.output


def test_one_ecb_call_over_d_and_not_d_is_the_two_block_rule() -> None:
    # suites.diversify enciphers D ‖ ~D in one call; the rule enciphers D and ~D apart.
    assert [UPDATE_CARD_D.key, UPDATE_CARD_NOT_D.key] == [UPDATE_CITY.out] * 2
    assert UPDATE_CARD_D.data + UPDATE_CARD_NOT_D.data == UPDATE_CARD.data
    two_blocks = UPDATE_CARD_D.output + UPDATE_CARD_NOT_D.output
    assert TDES.diversify(UPDATE_CITY.output, SN) == two_blocks == UPDATE_CARD.output


def test_two_level_diversification_card_and_city() -> None:
    assert TWO.chain() == (SN, H(CITY))
    assert TDES.diversify(UPDATE_ROOT, H(CITY)) == UPDATE2_CITY.output
    assert derive_card_key(TDES, UPDATE_ROOT, TWO) == UPDATE2_CARD.output
    assert TDES.kcv(UPDATE2_CARD.output) == KCV_UPDATE2_CARD.output[:3]


def test_session_key_and_external_authentication_cryptogram() -> None:
    assert TDES.session_key(UPDATE_CARD.output, R) == UPDATE_SESSION.output
    assert external_auth_data(TDES, UPDATE_CARD.output, R, A) == UPDATE_E.output + A


def test_pin_unblock_mac() -> None:
    # 84 24 00 00 04 <MAC>: the MAC input is the header with Lc counting the MAC.
    assert TDES.session_key(PIN_CARD.output, R) == PIN_SESSION.output
    mac = command_mac(TDES, PIN_CARD.output, R, H("8424000004"))
    assert mac == UNBLOCK_MAC.output[:4]


def test_pin_reset_block() -> None:
    # 84 24 00 01 0C <3DES(03 ‖ 654321 ‖ 80 00 00 00)> <MAC of the header ‖ that>.
    data = pin_reset_data(TDES, PIN_CARD.output, R, "654321")
    assert data == RESET_ENC.output + RESET_MAC.output[-8:-4]


def test_card_identifier_mac() -> None:
    # MAC algorithm 3 under IRK diversified once by the SN, first 4 bytes.
    assert TDES.diversify(IRK_ROOT, SN) == IRK_CARD.output
    assert mac_algorithm3(IRK_CARD.output, pad_method2(CARD_ID_BODY)) == CARD_ID_MAC.output
    assert card_id_mac(TDES, IRK_ROOT, SN, CARD_ID_BODY) == CARD_ID_MAC.output[:4]


def test_internal_authentication_answer() -> None:
    random16 = H(INTERNAL_ANSWER.data)
    answer = internal_auth_response(TDES, INTERNAL_CARD.output, random16)
    assert answer == INTERNAL_ANSWER.output


def test_the_test_keystore_gives_the_vectors(tmp_path: Path) -> None:
    """The documented test keys, through the security module as the host uses it."""
    assert {label: TEST_KEYS[label][2] for label in ("update", "pin", "irk", "internal")} == {
        "update": UPDATE_ROOT,
        "pin": PIN_ROOT,
        "irk": IRK_ROOT,
        "internal": INTERNAL_ROOT,
    }
    hsm = LocalSecurityModule(Keystore.create_test(tmp_path / "ks.json"))
    assert hsm.kcv("update") == KCV_UPDATE_ROOT.output[:3]
    assert hsm.external_auth("update", THREE, R, A) == UPDATE_E.output + A
    assert hsm.command_mac("pin", THREE, R, H("8424000004")) == UNBLOCK_MAC.output[:4]
    assert hsm.pin_reset_block("pin", THREE, R, "654321") == (
        RESET_ENC.output + RESET_MAC.output[-8:-4]
    )
    assert hsm.card_id_mac("irk", SN, CARD_ID_BODY) == CARD_ID_MAC.output[:4]


# ----------------------------------------------------------------- the SM4 suite [ours]


def test_sm4_suite_diversification_session_and_mac() -> None:
    province = SM4_SUITE.diversify(UPDATE_ROOT, H(PROVINCE))
    city = SM4_SUITE.diversify(province, H(CITY))
    card = SM4_SUITE.diversify(city, SN)
    assert (province, city, card) == (SM4_PROVINCE.output, SM4_CITY.output, SM4_CARD.output)
    assert derive_card_key(SM4_SUITE, UPDATE_ROOT, THREE) == SM4_CARD.output
    assert [SM4_SUITE.kcv(k) for k in (province, city, card)] == [
        KCV_SM4_PROVINCE.output[:3],
        KCV_SM4_CITY.output[:3],
        KCV_SM4_CARD.output[:3],
    ]
    assert SM4_SUITE.session_key(card, R) == SM4_SESSION.output
    assert external_auth_data(SM4_SUITE, card, R, A16) == SM4_E.output + A16
    assert command_mac(SM4_SUITE, card, R, H("8424000004")) == SM4_UNBLOCK_MAC.output[:4]


# ----------------------------------------------------------------- published vectors


def _sm3(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SM3())
    digest.update(data)
    return digest.finalize()


def test_published_vectors() -> None:
    assert ecb_encrypt("SM4", H(SM4_GBT32907.key), H(SM4_GBT32907.data)) == SM4_GBT32907.output
    assert SM4_GBT32907.out == "681EDF34D206965E86B3E94F536E4246"
    assert _sm3(b"abc") == SM3_ABC.output
    assert SM3_ABC.out.startswith("66C7F0F4") and SM3_ABC.out.endswith("8F4BA8E0")
    assert _sm3(H("123456")) == SM3_PIN.output
    assert ecb_encrypt("SM4", SM3_PIN.output[:16], H(SM4_PIN.data)) == SM4_PIN.output
    assert SM4_PIN.out == "358B51056B9B9EB2C96B20E7DB7A6B8F"
    assert ecb_encrypt("DES", H(DES_GRABBE.key), H(DES_GRABBE.data)) == DES_GRABBE.output
    assert DES_GRABBE.out == "85E813540F0AB405"
    sp800 = ecb_encrypt("3DES", H(TDES_SP800_67.key), H(TDES_SP800_67.data))
    assert sp800 == TDES_SP800_67.output
    assert TDES.kcv(H(KCV_0123.key)) == H("08D7B4") == KCV_0123.output[:3]
    pyemv_key = H("AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBB")
    assert TDES.mac(pyemv_key, b"hello world") == MAC3_PYEMV.output == H("2BC2D9EDE0CF31F6")
    fips = mac_algorithm1("DES", H(FIPS113_MAC.key), H(FIPS113_MAC.data))
    assert fips == FIPS113_MAC.output[-8:] == H("F1D30F6849312CA4")
