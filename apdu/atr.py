"""Answer-to-reset structure, ISO/IEC 7816-3:2006 §8.2: TS, T0, interface bytes TAi..TDi,
historical bytes, TCK.

Used to tell a card's protocols and to take its historical bytes (the 社保卡 serial number is
the last 8 of them — docs/chip-application.md §3), and by the simulator to build valid ATRs.
"""

from __future__ import annotations

from dataclasses import dataclass

from apdu.errors import ApduFormatError


class MalformedAtr(ApduFormatError):
    """The bytes are not an ATR of ISO/IEC 7816-3 §8.2."""


@dataclass(frozen=True)
class Atr:
    raw: bytes
    protocols: tuple[int, ...]  # T values offered, in order (T=0 when none is indicated)
    historical: bytes
    tck: int | None

    @classmethod
    def parse(cls, raw: bytes) -> Atr:
        if len(raw) < 2:
            raise MalformedAtr(f"ATR of {len(raw)} bytes is too short")
        if raw[0] not in (0x3B, 0x3F):
            raise MalformedAtr(f"TS {raw[0]:02X} is neither 3B (direct) nor 3F (inverse)")
        k = raw[1] & 0x0F
        y = raw[1] >> 4
        pos = 2
        protocols: list[int] = []
        while True:
            for bit in (0x1, 0x2, 0x4):  # TA, TB, TC
                if y & bit:
                    pos += 1
            if not y & 0x8:
                break
            if pos >= len(raw):
                raise MalformedAtr("ATR truncated in its interface bytes")
            td = raw[pos]
            pos += 1
            protocols.append(td & 0x0F)
            y = td >> 4
        if pos + k > len(raw):
            raise MalformedAtr("ATR truncated in its historical bytes")
        historical = raw[pos : pos + k]
        pos += k
        needs_tck = any(p != 0 for p in protocols)
        tck: int | None = None
        if needs_tck:
            if pos >= len(raw):
                raise MalformedAtr("ATR lacks the TCK its protocols require")
            tck = raw[pos]
            check = 0
            for b in raw[1 : pos + 1]:
                check ^= b
            if check:
                raise MalformedAtr("ATR check byte TCK is wrong")
            pos += 1
        if pos != len(raw):
            raise MalformedAtr(f"ATR has {len(raw) - pos} unexpected trailing bytes")
        return cls(bytes(raw), tuple(dict.fromkeys(protocols or [0])), bytes(historical), tck)


def build_atr(protocol: int, historical: bytes) -> bytes:
    """A minimal ATR offering T=0 (``3B 6K 00 00 hist``, as 社保卡 ATRs look) or T=1
    (``3B 8K 01 hist TCK``)."""
    if len(historical) > 15:
        raise MalformedAtr("at most 15 historical bytes")
    k = len(historical)
    if protocol == 0:
        return bytes((0x3B, 0x60 | k, 0x00, 0x00)) + historical
    if protocol == 1:
        body = bytes((0x80 | k, 0x01)) + historical
        tck = 0
        for b in body:
            tck ^= b
        return b"\x3b" + body + bytes((tck,))
    raise MalformedAtr(f"protocol T={protocol} not supported")
