"""The card's file tree: MF, DFs (with optional AID), transparent and record EFs
(ISO/IEC 7816-4 §5.3 "data structures").

Record files hold one bytes object per record; for the 社保卡 EF05/EF06 each record is a
simple-TLV object and its *record identifier* (ISO/IEC 7816-4 §7.3.1) is the tag, its first
byte. Serialisation to plain dicts (hex for bytes) lets a card persist to JSON.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

MF_FID = 0x3F00


@dataclass
class File:
    fid: int | None
    name: str = ""  # label for humans and JSON ("EF05", "SSSE")
    parent: DedicatedFile | None = field(default=None, repr=False, compare=False)


@dataclass
class DedicatedFile(File):
    aid: bytes | None = None
    children: list[File] = field(default_factory=list)
    proprietary_fci: bytes = b""  # content of tag A5 in the FCI

    def add(self, child: File) -> File:
        child.parent = self
        self.children.append(child)
        return child

    def child_by_fid(self, fid: int) -> File | None:
        return next((c for c in self.children if c.fid == fid), None)

    def ef_by_sfi(self, sfi: int) -> ElementaryFile | None:
        return next(
            (c for c in self.children if isinstance(c, ElementaryFile) and c.sfi == sfi), None
        )

    def walk(self) -> Iterator[File]:
        yield self
        for c in self.children:
            if isinstance(c, DedicatedFile):
                yield from c.walk()
            else:
                yield c


@dataclass
class ElementaryFile(File):
    sfi: int | None = None


@dataclass
class TransparentEF(ElementaryFile):
    size: int = 0
    data: bytearray = field(default_factory=bytearray)

    def __post_init__(self) -> None:
        if len(self.data) < self.size:
            self.data.extend(bytes(self.size - len(self.data)))
        self.size = len(self.data)


@dataclass
class RecordEF(ElementaryFile):
    """A linear record file. ``record_size`` is the maximum length of one record."""

    record_size: int = 254
    records: list[bytearray] = field(default_factory=list)

    def find_by_identifier(self, identifier: int) -> int | None:
        """Index of the first record whose first byte (its TLV tag) is ``identifier``."""
        return next((i for i, rec in enumerate(self.records) if rec and rec[0] == identifier), None)


def _fid_hex(fid: int | None) -> str | None:
    return None if fid is None else f"{fid:04X}"


def to_dict(f: File) -> dict[str, Any]:
    """Plain-data form of a file and its subtree (bytes as upper-case hex)."""
    base: dict[str, Any] = {"fid": _fid_hex(f.fid), "name": f.name}
    if isinstance(f, DedicatedFile):
        base |= {
            "type": "DF",
            "aid": f.aid.hex().upper() if f.aid else None,
            "proprietary_fci": f.proprietary_fci.hex().upper(),
            "children": [to_dict(c) for c in f.children],
        }
    elif isinstance(f, TransparentEF):
        base |= {"type": "transparent", "sfi": f.sfi, "data": f.data.hex().upper()}
    elif isinstance(f, RecordEF):
        base |= {
            "type": "records",
            "sfi": f.sfi,
            "record_size": f.record_size,
            "records": [r.hex().upper() for r in f.records],
        }
    else:  # pragma: no cover - the three kinds above are all there is
        raise TypeError(f"unknown file kind {type(f).__name__}")
    return base


def from_dict(d: dict[str, Any]) -> File:
    """Inverse of :func:`to_dict`."""
    fid = None if d.get("fid") is None else int(d["fid"], 16)
    kind = d["type"]
    if kind == "DF":
        df = DedicatedFile(
            fid,
            d.get("name", ""),
            aid=bytes.fromhex(d["aid"]) if d.get("aid") else None,
            proprietary_fci=bytes.fromhex(d.get("proprietary_fci", "")),
        )
        for c in d.get("children", []):
            df.add(from_dict(c))
        return df
    if kind == "transparent":
        return TransparentEF(
            fid, d.get("name", ""), sfi=d.get("sfi"), data=bytearray.fromhex(d["data"])
        )
    if kind == "records":
        return RecordEF(
            fid,
            d.get("name", ""),
            sfi=d.get("sfi"),
            record_size=d["record_size"],
            records=[bytearray.fromhex(r) for r in d["records"]],
        )
    raise ValueError(f"unknown file type {kind!r} in card file")
