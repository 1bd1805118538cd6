"""Card images: what the card factory puts into a blank 社保卡 of one region, as data —
the file tree, each record file's slots (tag, record number, length, encoding), the keys
and who guards which file, the PIN, the spec version — the way a card manufacturer's
personalization script describes a card (docs/chip-application.md, "Card images").

Images are ``simulator/images/NAME.toml`` (``default``, ``hunan``, ``jiangsu``,
``pin-read``: the same names as the host's profiles) or any TOML file of that shape. They
are written from docs/chip-application.md §1 and the public sources it names, never from the
host's profiles or record tables (sscard/), so that the host and the virtual card are two
independent readings of the same facts.

Image quirks (simulator/quirks.py) are applied here: ``pad-20`` and ``pad-ff`` change the
padding of the name slots (``pad-ff`` also keeps only 4 digits of 出生地, padded with FF),
``no-4e`` drops the 姓名扩展 slot and renumbers the records after it, ``id-15`` writes the
社会保障号码 in the 15-digit form of a first-generation card.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from simulator.image_values import ENCODINGS
from simulator.quirks import IMAGE_QUIRKS

IMAGE_DIR = Path(__file__).parent / "images"
SPEC_VERSIONS = ("1.00", "2.00", "3.00")
FileKind = Literal["records", "binary", "dir"]
ReadRule = Literal["free", "pin"]
NAME_FIELDS = ("name", "name_ext")
NAME_EXT_TAG = 0x4E


class ImageError(ValueError):
    """A card image is missing or malformed."""


@dataclass(frozen=True)
class Slot:
    """One record of a record file: a simple TLV ``tag length value``, filled from the
    personalization value ``field``."""

    tag: int
    record: int
    length: int
    encoding: str
    field: str
    pad: int = 0x00
    digits: int | None = None  # bcd: digits kept (the rest of the slot is padding)
    offset: int = 0  # where the value starts in the slot; the bytes before it are padding


@dataclass(frozen=True)
class EfImage:
    """An elementary file. ``records``: linear record file of :class:`Slot`; ``binary``:
    transparent, ``size`` bytes (``content = "photo"`` receives the photo); ``dir``: the
    DIR record file, one application template per DF with an AID."""

    name: str
    fid: int
    sfi: int | None
    kind: FileKind
    slots: tuple[Slot, ...] = ()
    size: int = 0
    content: str | None = None
    update_key: int | None = None
    read: ReadRule = "free"

    @property
    def record_size(self) -> int:
        return 2 + max((s.length for s in self.slots), default=0)


@dataclass(frozen=True)
class DfImage:
    name: str
    fid: int
    aid: bytes | None
    label: str
    files: tuple[EfImage, ...] = ()


@dataclass(frozen=True)
class KeyImage:
    """A card key: its id on the card, the security module's root-key label, its tries."""

    id: int
    label: str
    tries: int


@dataclass(frozen=True)
class CardImage:
    name: str
    description: str
    spec_version: str
    card_type: str
    diversification_levels: int
    extended_apdus: bool
    ssse_aid: bytes
    fci_proprietary: bytes
    files: tuple[EfImage, ...]
    dfs: tuple[DfImage, ...]
    keys: tuple[KeyImage, ...]
    card_id_key: str  # root-key label of the 卡识别码 MAC (IRK): not on the card
    internal_key: KeyImage | None  # INTERNAL AUTHENTICATE, spec-3.00 images only
    pin_key: int
    pin_default: str
    pin_tries: int

    def all_files(self) -> Iterator[EfImage]:
        yield from self.files
        for df in self.dfs:
            yield from df.files

    def file(self, name: str) -> EfImage:
        found = next((f for f in self.all_files() if f.name == name), None)
        if found is None:
            raise KeyError(name)
        return found

    def update_keys(self) -> dict[int, int]:
        """FID → id of the key whose external authentication allows updating it."""
        return {f.fid: f.update_key for f in self.all_files() if f.update_key is not None}

    def read_pin_fids(self) -> tuple[int, ...]:
        """FIDs read only after VERIFY."""
        return tuple(f.fid for f in self.all_files() if f.read == "pin")


def load_image(name_or_path: str | Path) -> CardImage:
    """A shipped image by name (``simulator/images/NAME.toml``) or a TOML file by path."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = IMAGE_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        shipped = ", ".join(shipped_images())
        raise ImageError(
            f"没有卡片映像 {str(name_or_path)!r}（可选：{shipped}）"
            f"(no card image {str(name_or_path)!r}; shipped: {shipped})"
        )
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ImageError(f"卡片映像 {path} 无法读取 (unreadable card image): {exc}") from None
    try:
        return image_from_dict(data)
    except ImageError as exc:
        raise ImageError(f"卡片映像 {path}：{exc}") from None


def shipped_images() -> list[str]:
    return sorted(p.stem for p in IMAGE_DIR.glob("*.toml"))


def image_from_dict(d: dict[str, Any]) -> CardImage:
    try:
        ssse = d["ssse"]
        pin = d["pin"]
        internal = d.get("internal_key")
        image = CardImage(
            name=str(d["name"]),
            description=str(d.get("description", "")),
            spec_version=str(d["spec_version"]),
            card_type=str(d["card_type"]),
            diversification_levels=int(d["diversification_levels"]),
            extended_apdus=bool(d["extended_apdus"]),
            ssse_aid=bytes.fromhex(ssse["aid"]),
            fci_proprietary=bytes.fromhex(ssse["fci_proprietary"]),
            files=tuple(_ef(f) for f in ssse.get("files", [])),
            dfs=tuple(_df(x) for x in ssse.get("dfs", [])),
            keys=tuple(_key(k) for k in d["keys"]),
            card_id_key=str(d["card_id_key"]),
            internal_key=_key({"id": 0, **internal}) if internal is not None else None,
            pin_key=int(pin["key"]),
            pin_default=str(pin["default"]),
            pin_tries=int(pin["tries"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ImageError(
            f"不完整或格式错误 (incomplete or malformed): {type(exc).__name__}: {exc}"
        ) from None
    _check(image)
    return image


def _ef(d: dict[str, Any]) -> EfImage:
    slots = tuple(
        Slot(
            tag=int(s["tag"]),
            record=int(s["record"]),
            length=int(s["length"]),
            encoding=str(s["encoding"]),
            field=str(s["field"]),
            pad=int(s.get("pad", 0)),
            digits=int(s["digits"]) if "digits" in s else None,
            offset=int(s.get("offset", 0)),
        )
        for s in d.get("records", [])
    )
    return EfImage(
        name=str(d["name"]),
        fid=int(d["fid"]),
        sfi=int(d["sfi"]) if "sfi" in d else None,
        kind=d["kind"],
        slots=slots,
        size=int(d.get("size", 0)),
        content=d.get("content"),
        update_key=int(d["update_key"]) if "update_key" in d else None,
        read=d.get("read", "free"),
    )


def _df(d: dict[str, Any]) -> DfImage:
    return DfImage(
        name=str(d["name"]),
        fid=int(d["fid"]),
        aid=bytes.fromhex(d["aid"]) if "aid" in d else None,
        label=str(d.get("label", "")),
        files=tuple(_ef(f) for f in d.get("files", [])),
    )


def _key(d: dict[str, Any]) -> KeyImage:
    return KeyImage(id=int(d["id"]), label=str(d["label"]), tries=int(d["tries"]))


def _check(image: CardImage) -> None:
    """What a card OS would refuse at personalization: every rule of the image holds."""
    problems: list[str] = []
    if image.spec_version not in SPEC_VERSIONS:
        problems.append(f"spec_version {image.spec_version!r} not one of {SPEC_VERSIONS}")
    if image.diversification_levels not in (2, 3):
        problems.append("diversification_levels is 2 (card, city) or 3 (card, city, province)")
    if (image.internal_key is not None) != (image.spec_version == "3.00"):
        problems.append("internal_key is on spec-3.00 images, and only there")
    key_ids = {k.id for k in image.keys}
    if len(key_ids) != len(image.keys):
        problems.append("key ids repeat")
    if image.pin_key not in key_ids:
        problems.append(f"pin.key {image.pin_key:#04x} is not one of the keys")
    fids = [f.fid for f in image.all_files()]
    if len(set(fids)) != len(fids):
        problems.append("file ids repeat")
    for f in image.all_files():
        problems += _file_problems(f, key_ids)
    if problems:
        raise ImageError("; ".join(problems))


def _file_problems(f: EfImage, key_ids: set[int]) -> list[str]:
    problems: list[str] = []
    if f.kind not in ("records", "binary", "dir"):
        problems.append(f"{f.name}: kind is records, binary or dir")
    if f.read not in ("free", "pin"):
        problems.append(f"{f.name}: read is free or pin")
    if f.update_key is not None and f.update_key not in key_ids:
        problems.append(f"{f.name}: update_key {f.update_key:#04x} is not one of the keys")
    if f.kind == "binary" and f.size <= 0:
        problems.append(f"{f.name}: a binary file needs a size")
    if [s.record for s in f.slots] != list(range(1, len(f.slots) + 1)):
        problems.append(f"{f.name}: records are numbered 1, 2, … in order")
    tags = [s.tag for s in f.slots]
    if len(set(tags)) != len(tags):
        problems.append(f"{f.name}: record tags repeat")
    for s in f.slots:
        if s.encoding not in ENCODINGS:
            problems.append(f"{f.name} tag {s.tag:02X}: encoding is one of {ENCODINGS}")
        if not 0 < s.length <= 253:
            problems.append(f"{f.name} tag {s.tag:02X}: length 1-253")
        if not 0 <= s.offset < s.length:
            problems.append(f"{f.name} tag {s.tag:02X}: offset within the slot")
    return problems


# ----------------------------------------------------------------- quirks


def with_quirks(image: CardImage, quirk_names: tuple[str, ...]) -> CardImage:
    """The image as the factory writes it with the image quirks among ``quirk_names``
    (other quirks are the card OS's business and leave the image alone)."""
    for name in quirk_names:
        if name == "pad-20":
            image = _map_slots(image, lambda s: _repad(s, 0x20))
        elif name == "pad-ff":
            image = _map_slots(image, _pad_ff)
        elif name == "no-4e":
            image = _without_tag(image, NAME_EXT_TAG)
        elif name == "id-15":
            image = _map_slots(image, _first_generation_id)
        else:
            assert name not in IMAGE_QUIRKS, f"image quirk {name} has no effect"
    return image


def _repad(s: Slot, pad: int) -> Slot:
    return replace(s, pad=pad) if s.field in NAME_FIELDS else s


def _pad_ff(s: Slot) -> Slot:
    if s.field == "birthplace":  # 出生地: 4 digits, then FF (docs/chip-application.md §1)
        return replace(s, digits=4, pad=0xFF)
    return _repad(s, 0xFF)


def _first_generation_id(s: Slot) -> Slot:
    """社会保障号码 in the 15-digit form of a first-generation card (image_values ``id15``)."""
    return replace(s, encoding="id15") if s.field == "ssn" else s


def _map_files(image: CardImage, change: Callable[[EfImage], EfImage]) -> CardImage:
    return replace(
        image,
        files=tuple(change(f) for f in image.files),
        dfs=tuple(replace(df, files=tuple(change(f) for f in df.files)) for df in image.dfs),
    )


def _map_slots(image: CardImage, change: Callable[[Slot], Slot]) -> CardImage:
    return _map_files(image, lambda f: replace(f, slots=tuple(change(s) for s in f.slots)))


def _without_tag(image: CardImage, tag: int) -> CardImage:
    def drop(f: EfImage) -> EfImage:
        kept = [s for s in f.slots if s.tag != tag]
        return replace(f, slots=tuple(replace(s, record=i) for i, s in enumerate(kept, 1)))

    return _map_files(image, drop)
