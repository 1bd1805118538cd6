"""A sample generic ISO 7816 card, for the demo and the transport tests.

It carries an application (DF ``A0 00 00 00 01 53 53 43``, label "DEMO") with a transparent
EF ``0101`` (SFI 1) and a record EF ``0102`` (SFI 2) of simple-TLV records, and a 600-byte
GET DATA object (tag ``0101``) that exercises T=0 response chaining.
"""

from __future__ import annotations

from apdu.atr import build_atr
from apdu.tlv import encode_simple
from simulator.cardos.card import CardOS, ProtocolName
from simulator.cardos.filesystem import MF_FID, DedicatedFile, RecordEF, TransparentEF

SAMPLE_AID = bytes.fromhex("A00000000153534344454D4F")
SAMPLE_BINARY = "sscard sample card — ISO/IEC 7816-4".encode()
SAMPLE_RECORDS = [encode_simple(0x01, b"HELLO"), encode_simple(0x02, "社会保障".encode("gbk"))]
LARGE_OBJECT_TAG = 0x0101
LARGE_OBJECT = bytes(i % 251 for i in range(600))


def sample_atr(protocol: ProtocolName, serial: bytes = bytes.fromhex("0102030405060708")) -> bytes:
    return build_atr(0 if protocol == "T0" else 1, b"\x80\x53\x53" + serial)


def sample_card(protocol: ProtocolName = "T0", *, extended_apdus: bool = True) -> CardOS:
    mf = DedicatedFile(MF_FID, "MF")
    app = DedicatedFile(0x1001, "DEMO", aid=SAMPLE_AID, proprietary_fci=b"\x88\x01\x0b")
    mf.add(app)
    binary = bytearray(SAMPLE_BINARY) + bytearray(4096 - len(SAMPLE_BINARY))
    app.add(TransparentEF(0x0101, "EF0101", sfi=1, data=binary))
    app.add(
        RecordEF(
            0x0102, "EF0102", sfi=2, record_size=64, records=[bytearray(r) for r in SAMPLE_RECORDS]
        )
    )
    return CardOS(
        mf,
        atr=sample_atr(protocol),
        protocol=protocol,
        extended_apdus=extended_apdus,
        data_objects={LARGE_OBJECT_TAG: LARGE_OBJECT},
    )
