"""TLV codecs.

* **Simple TLV** (ISO/IEC 7816-4 §5.2.2.2, one-byte tag and one-byte length): the form of the
  社保卡 EF05/EF06 records (docs/chip-application.md §1). Tags 00 and FF are invalid; lengths 0..254
  (the three-byte length form ``FF xx xx`` is not used by these cards and is refused).
* **BER-TLV** (ISO/IEC 7816-4 §5.2.2.1, ISO/IEC 8825-1): multi-byte tags, short and long
  definite lengths (``81``, ``82``, ``83``), constructed objects — used for FCI (tag ``6F``).

Truncated or inconsistent input raises :class:`~apdu.errors.TlvError` with the offset.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from apdu.errors import TlvError

# --------------------------------------------------------------------------- simple TLV


def encode_simple(tag: int, value: bytes) -> bytes:
    """One simple TLV object: tag (1 byte), length (1 byte), value."""
    if not 0x01 <= tag <= 0xFE:
        raise TlvError(f"simple-TLV tag must be 01..FE, got {tag:#x}")
    if len(value) > 0xFE:
        raise TlvError(f"simple-TLV value of {len(value)} bytes exceeds 254")
    return bytes((tag, len(value))) + value


def iter_simple(data: bytes) -> Iterator[tuple[int, bytes]]:
    """Yield (tag, value) for each simple TLV object in ``data``."""
    pos = 0
    while pos < len(data):
        tag = data[pos]
        if tag in (0x00, 0xFF):
            raise TlvError(f"invalid simple-TLV tag {tag:02X} at offset {pos}")
        if pos + 1 >= len(data):
            raise TlvError(f"simple-TLV truncated: tag {tag:02X} at offset {pos} has no length")
        length = data[pos + 1]
        if length == 0xFF:
            raise TlvError(f"three-byte simple-TLV length at offset {pos + 1} is not supported")
        end = pos + 2 + length
        if end > len(data):
            raise TlvError(
                f"simple-TLV truncated: tag {tag:02X} at offset {pos} declares {length} bytes, "
                f"{len(data) - pos - 2} present"
            )
        yield tag, bytes(data[pos + 2 : end])
        pos = end


def parse_simple(data: bytes) -> list[tuple[int, bytes]]:
    """All simple TLV objects of ``data`` in order."""
    return list(iter_simple(data))


# --------------------------------------------------------------------------- BER-TLV


def _encode_tag(tag: int) -> bytes:
    if tag <= 0:
        raise TlvError(f"BER-TLV tag must be positive, got {tag}")
    raw = tag.to_bytes((tag.bit_length() + 7) // 8, "big")
    return raw


def _encode_length(length: int) -> bytes:
    if length < 0x80:
        return bytes((length,))
    if length <= 0xFF:
        return bytes((0x81, length))
    if length <= 0xFFFF:
        return b"\x82" + length.to_bytes(2, "big")
    if length <= 0xFFFFFF:
        return b"\x83" + length.to_bytes(3, "big")
    raise TlvError(f"BER-TLV length {length} too large")


def _check_tag_form(raw: bytes) -> None:
    """A tag's bytes must follow ISO/IEC 8825-1 §8.1.2 (continuation bits)."""
    if raw[0] & 0x1F == 0x1F:
        if len(raw) < 2:
            raise TlvError(f"BER-TLV tag {raw.hex().upper()} announces more tag bytes")
        for b in raw[1:-1]:
            if not b & 0x80:
                raise TlvError(f"BER-TLV tag {raw.hex().upper()} is malformed")
        if raw[-1] & 0x80:
            raise TlvError(f"BER-TLV tag {raw.hex().upper()} is malformed")
    elif len(raw) != 1:
        raise TlvError(f"BER-TLV tag {raw.hex().upper()} is malformed")


@dataclass(frozen=True)
class BerTlv:
    """One BER-TLV data object. ``tag`` is the whole tag as an integer (``0x6F``, ``0x9F38``)."""

    tag: int
    value: bytes

    @property
    def constructed(self) -> bool:
        """Bit 6 of the first tag byte (ISO/IEC 8825-1 §8.1.2.5)."""
        first = _encode_tag(self.tag)[0]
        return bool(first & 0x20)

    @property
    def children(self) -> list[BerTlv]:
        """The nested objects of a constructed object."""
        if not self.constructed:
            raise TlvError(f"tag {self.tag:X} is primitive and has no children")
        return parse_ber(self.value)

    def find(self, tag: int) -> BerTlv | None:
        """The first direct child with ``tag``, or None."""
        return next((c for c in self.children if c.tag == tag), None)

    def to_bytes(self) -> bytes:
        return encode_ber(self.tag, self.value)


def encode_ber(tag: int, value: bytes) -> bytes:
    """Encode one BER-TLV object with the shortest definite length."""
    raw_tag = _encode_tag(tag)
    _check_tag_form(raw_tag)
    return raw_tag + _encode_length(len(value)) + value


def encode_ber_constructed(tag: int, children: Iterable[BerTlv]) -> bytes:
    """Encode a constructed object from its children."""
    return encode_ber(tag, b"".join(c.to_bytes() for c in children))


def iter_ber(data: bytes) -> Iterator[BerTlv]:
    """Yield the BER-TLV objects of ``data``; ``00``/``FF`` padding between objects is skipped
    (ISO/IEC 7816-4 §5.2.2.1)."""
    pos, n = 0, len(data)
    while pos < n:
        if data[pos] in (0x00, 0xFF):
            pos += 1
            continue
        start = pos
        pos += 1
        if data[start] & 0x1F == 0x1F:
            while True:
                if pos >= n:
                    raise TlvError(f"BER-TLV truncated in the tag starting at offset {start}")
                pos += 1
                if not data[pos - 1] & 0x80:
                    break
        tag = int.from_bytes(data[start:pos], "big")
        if pos >= n:
            raise TlvError(f"BER-TLV truncated: tag {tag:X} at offset {start} has no length")
        first = data[pos]
        pos += 1
        if first < 0x80:
            length = first
        elif first in (0x81, 0x82, 0x83):
            k = first & 0x7F
            if pos + k > n:
                raise TlvError(f"BER-TLV truncated in the length of tag {tag:X} at {start}")
            length = int.from_bytes(data[pos : pos + k], "big")
            pos += k
        else:
            raise TlvError(f"BER-TLV length byte {first:02X} of tag {tag:X} is not supported")
        if pos + length > n:
            raise TlvError(
                f"BER-TLV truncated: tag {tag:X} at offset {start} declares {length} bytes, "
                f"{n - pos} present"
            )
        yield BerTlv(tag, bytes(data[pos : pos + length]))
        pos += length


def parse_ber(data: bytes) -> list[BerTlv]:
    """All top-level BER-TLV objects of ``data``."""
    return list(iter_ber(data))
