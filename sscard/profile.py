"""Card profiles: what differs between regions' cards, as data (TOML), never as code —
file map with each file's read access, EF06's record numbering and optional elements, name
padding, spec version, key ids and labels, PIN rules (docs/chip-application.md §1-§2 and
"Profiles"), and the card body's geometry that the printed face must respect.
``load_profile("default")`` reads ``sscard/profiles/default.toml``; a path to any TOML file
works too. The tags, lengths and codecs themselves stay in :mod:`sscard.records`.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sscard.errors import ProfileError
from sscard.records import (
    DEFAULT_EF06_RECORDS,
    EF06_TEMPLATE,
    OPTIONAL_EF06_TAGS,
    SPEC_VERSIONS,
    Element,
    ef06_elements,
)

PROFILE_DIR = Path(__file__).parent / "profiles"
# Record-addressing forms (docs/chip-application.md §1): "number" = select, then record number;
# "tag" = select, then tag; "sfi" = tag through the SFI; "sfi-number" = number through the SFI.
ReadForm = Literal["sfi", "tag", "number", "sfi-number"]
READ_FORMS: tuple[ReadForm, ...] = ("sfi", "tag", "number", "sfi-number")
SFI_FORMS: tuple[ReadForm, ...] = ("sfi", "sfi-number")
ReadAccess = Literal["free", "pin"]
READ_ACCESS: tuple[ReadAccess, ...] = ("free", "pin")
PADDINGS = (0x00, 0x20, 0xFF)

__all__ = ["SPEC_VERSIONS", "CardProfile", "load_profile", "profile_from_dict"]


@dataclass(frozen=True)
class FileRef:
    """An EF: its FID, its SFI (None: the card gives it none) and whether VERIFY must come
    before reading it (``read = "pin"``); ``df`` is the FID of the DF under SSSE that holds
    it (None: SSSE itself)."""

    fid: int
    sfi: int | None = None
    read: ReadAccess = "free"
    df: int | None = None


@dataclass(frozen=True)
class DfRef:
    name: str
    fid: int
    aid: bytes | None


@dataclass(frozen=True)
class KeyRef:
    """A card key: its id on the card (None for keys the card does not hold, like the IRK),
    the security module's root-key label, and the card's error-counter limit."""

    id: int | None
    label: str
    tries: int


@dataclass(frozen=True)
class PinRules:
    length: int
    tries: int
    default: str


@dataclass(frozen=True)
class FaceGeometry:
    """The card body, in millimetres from the top-left corner of the front (chip on the
    left); the back is seen turned over about the vertical axis, so its top edge is the same.

    - ``card_width`` × ``card_height``: ISO/IEC 7810 ID-1, 85.60 × 53.98 mm.
    - ``contacts`` (left, top, right, bottom): the field of contacts C1–C8, ISO/IEC 7816-2
      §3 (C1–C4 from 10.25 mm to C5–C8 at 19.87 mm from the left edge; C1/C5 from 19.23 mm
      to C4/C8 at 28.55 mm from the top edge); nothing is printed there or within
      ``contact_margin`` of it (the module's plate is larger than its contacts).
    - ``stripe_bottom``: the magnetic stripe band on the back runs from the top edge down to
      15.82 mm for tracks 1–3 (ISO/IEC 7811-6 with 7811-4/-5; 11.89 mm for tracks 1–2 only);
      nothing is printed there or within ``stripe_margin`` of it.
    - ``edge_margin``: no text or photo closer than this to any edge (print tolerance) [ours].
    """

    card_width: float
    card_height: float
    contacts: tuple[float, float, float, float]
    contact_margin: float
    stripe_bottom: float
    stripe_margin: float
    edge_margin: float


@dataclass(frozen=True)
class CardProfile:
    name: str
    description: str
    spec_version: str
    card_type: str
    algorithm: str
    diversification_levels: int
    name_padding: int
    ssse_aid: bytes
    ssse_fci_proprietary: bytes
    read_forms: tuple[ReadForm, ...]
    photo_size: int
    photo_chunk: int
    ef05: FileRef
    ef06: FileRef
    ef07: FileRef
    ef08: FileRef
    ef0d: FileRef | None  # Jiangsu: EF0D, tags EA/EB
    ef19: FileRef | None  # Hunan: DF03/EF19, 参保地
    ef06_records: tuple[int, ...]  # EF06 tags in record order (record 1 first)
    dfs: tuple[DfRef, ...]
    update_key: KeyRef
    ef0d_key: KeyRef | None  # the update key of EF0D (Jiangsu: 0D)
    read_key: KeyRef
    master_key: KeyRef
    card_id_key: KeyRef
    pin_key: KeyRef
    internal_key: KeyRef | None  # INTERNAL AUTHENTICATE (spec 3.00), P2 = its id
    pin: PinRules
    face: FaceGeometry
    # The card (and the readers it is used in) takes extended APDUs: the photo in one command.
    # False: short APDUs only, decided here once rather than learned from a 6700 on each card.
    extended_apdus: bool = True
    # The card keeps the security state of one key at a time: verification reselects SSSE and
    # authenticates each key anew, even one proven earlier in the session.
    reselect_before_auth: bool = False

    @property
    def external_auth_keys(self) -> tuple[KeyRef, ...]:
        """Every external-authentication key of SSSE (all are checked after personalization,
        as T514-generator ``Script_YK.cpp`` does)."""
        extra = (self.ef0d_key,) if self.ef0d_key is not None else ()
        return (self.update_key, *extra, self.read_key, self.master_key)

    @property
    def ef06_layout(self) -> tuple[Element, ...]:
        """EF06's elements in this profile's record numbering and name padding."""
        return ef06_elements(self.name_padding, self.ef06_records)

    @property
    def has_name_ext(self) -> bool:
        return 0x4E in self.ef06_records

    @property
    def files(self) -> tuple[FileRef, ...]:
        """Every EF the profile names."""
        optional = tuple(f for f in (self.ef0d, self.ef19) if f is not None)
        return (self.ef05, self.ef06, self.ef07, self.ef08, *optional)

    @property
    def read_pin_fids(self) -> tuple[int, ...]:
        """The FIDs of the files read only after VERIFY."""
        return tuple(f.fid for f in self.files if f.read == "pin")

    @property
    def sfi_addressing(self) -> bool:
        """True when the card takes an SFI in READ/UPDATE RECORD and BINARY (ISO/IEC 7816-4
        §11.3: SFI in P2's high bits, or P1 = 80|SFI): the profile reads records through the
        SFI in one of its forms. Files are then written and read without a SELECT."""
        return any(f in SFI_FORMS for f in self.read_forms)

    @property
    def needs_pin(self) -> bool:
        """True when the public data (EF05, EF06) can only be read after VERIFY."""
        return "pin" in (self.ef05.read, self.ef06.read)

    @property
    def card_keys(self) -> tuple[KeyRef, ...]:
        """Keys the card holds (the IRK stays in the security module)."""
        return (*self.external_auth_keys, self.pin_key)


def _key(d: dict[str, Any], name: str) -> KeyRef:
    k = d[name]
    return KeyRef(id=k.get("id"), label=str(k["label"]), tries=int(k.get("tries", 0)))


def _file(files: dict[str, Any], name: str) -> FileRef:
    d = files[name]
    if not isinstance(d, dict):
        raise ProfileError(f"files.{name} 应为表 {{ fid = …, sfi = … }} (a table)")
    unknown = set(d) - {"fid", "sfi", "read", "df"}
    if unknown:
        raise ProfileError(f"files.{name}: 未知的键 {sorted(unknown)} (unknown keys)")
    ref = FileRef(
        fid=int(d["fid"]),
        sfi=None if d.get("sfi") is None else int(d["sfi"]),
        read=d.get("read", "free"),
        df=None if d.get("df") is None else int(d["df"]),
    )
    if ref.read not in READ_ACCESS:
        raise ProfileError(
            f'files.{name}.read 为 "free" 或 "pin"，不是 {ref.read!r} (read_access is '
            '"free" or "pin" per file)'
        )
    if not 0 <= ref.fid <= 0xFFFF or (ref.sfi is not None and not 1 <= ref.sfi <= 30):
        raise ProfileError(f"files.{name}: fid 为 2 字节，sfi 为 1-30 (fid 2 bytes, sfi 1-30)")
    return ref


def _flag(d: dict[str, Any], name: str, default: bool) -> bool:
    value = d.get(name, default)
    if not isinstance(value, bool):
        raise ProfileError(f"{name} 应为 true 或 false ({name} is true or false): {value!r}")
    return value


def _ef06_records(d: dict[str, Any]) -> tuple[int, ...]:
    """``ef06_records``: EF06's tags (hex strings) in record order; every tag of the EF06
    table but the optional ones, each once."""
    raw = d.get("ef06_records")
    if raw is None:
        return DEFAULT_EF06_RECORDS
    known = {e.tag for e in EF06_TEMPLATE}
    try:
        tags = tuple(int(str(t), 16) for t in raw)
    except ValueError:
        raise ProfileError(
            f'ef06_records 应为十六进制标签列表，如 ["08", "09"] (hex tags): {raw!r}'
        ) from None
    unknown = [f"{t:02X}" for t in tags if t not in known]
    missing = [f"{t:02X}" for t in sorted(known - OPTIONAL_EF06_TAGS - set(tags))]
    if unknown or missing or len(set(tags)) != len(tags):
        raise ProfileError(
            f"ef06_records：未知 {unknown}，缺少 {missing}，或有重复 (ef06_records lists "
            "each EF06 tag of docs/chip-application.md §1 once; only 4E may be left out)"
        )
    return tags


def _face(d: dict[str, Any]) -> FaceGeometry:
    left, top, right, bottom = (float(v) for v in d["contacts"])
    face = FaceGeometry(
        card_width=float(d["card_width"]),
        card_height=float(d["card_height"]),
        contacts=(left, top, right, bottom),
        contact_margin=float(d["contact_margin"]),
        stripe_bottom=float(d["stripe_bottom"]),
        stripe_margin=float(d["stripe_margin"]),
        edge_margin=float(d["edge_margin"]),
    )
    if not (0 <= left < right <= face.card_width and 0 <= top < bottom <= face.card_height):
        raise ProfileError("face.contacts must lie on the card: [left, top, right, bottom] mm")
    if not 0 < face.stripe_bottom < face.card_height:
        raise ProfileError("face.stripe_bottom must lie on the card (mm from the top edge)")
    if min(face.contact_margin, face.stripe_margin, face.edge_margin) < 0:
        raise ProfileError("face margins are millimetres ≥ 0")
    return face


def profile_from_dict(d: dict[str, Any]) -> CardProfile:
    try:
        files = d["files"]
        keys = d["keys"]
        profile = CardProfile(
            name=str(d["name"]),
            description=str(d.get("description", "")),
            spec_version=str(d["spec_version"]),
            card_type=str(d["card_type"]),
            algorithm=str(d.get("algorithm", "3DES")),
            diversification_levels=int(d.get("diversification_levels", 3)),
            name_padding=int(d["name_padding"]),
            ssse_aid=bytes.fromhex(d["ssse_aid"]),
            ssse_fci_proprietary=bytes.fromhex(d.get("ssse_fci_proprietary", "")),
            read_forms=tuple(d["read_forms"]),
            photo_size=int(d["photo_size"]),
            photo_chunk=int(d["photo_chunk"]),
            ef05=_file(files, "ef05"),
            ef06=_file(files, "ef06"),
            ef07=_file(files, "ef07"),
            ef08=_file(files, "ef08"),
            ef0d=_file(files, "ef0d") if "ef0d" in files else None,
            ef19=_file(files, "ef19") if "ef19" in files else None,
            ef06_records=_ef06_records(d),
            dfs=tuple(
                DfRef(
                    str(x["name"]), int(x["fid"]), bytes.fromhex(x["aid"]) if "aid" in x else None
                )
                for x in d.get("dfs", [])
            ),
            update_key=_key(keys, "update"),
            ef0d_key=_key(keys, "ef0d") if "ef0d" in keys else None,
            read_key=_key(keys, "read"),
            master_key=_key(keys, "master"),
            card_id_key=_key(keys, "card_id"),
            pin_key=_key(keys, "pin"),
            internal_key=_key(keys, "internal") if "internal" in keys else None,
            pin=PinRules(**d["pin"]),
            face=_face(d["face"]),
            extended_apdus=_flag(d, "extended_apdus", True),
            reselect_before_auth=_flag(d, "reselect_before_auth", False),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ProfileError(
            f"profile is incomplete or malformed: {type(exc).__name__}: {exc}"
        ) from None
    if profile.spec_version not in SPEC_VERSIONS:
        raise ProfileError(f"spec version {profile.spec_version!r} not one of {SPEC_VERSIONS}")
    if profile.internal_key is not None and profile.spec_version != "3.00":
        raise ProfileError(
            "内部认证密钥只属于规范版本 3.00 的卡 "
            "(keys.internal: INTERNAL AUTHENTICATE exists on spec-3.00 cards only)"
        )
    if profile.diversification_levels not in (2, 3):
        raise ProfileError("diversification_levels is 2 (card, city) or 3 (card, city, province)")
    if profile.name_padding not in PADDINGS:
        raise ProfileError("name padding is 0x00, 0x20 or 0xFF")
    if "read_access" in d:
        raise ProfileError(
            'read_access 已改为按文件设置：files.efNN.read = "pin" (read access is set per '
            'file now: files.efNN.read = "pin")'
        )
    if not profile.read_forms or any(f not in READ_FORMS for f in profile.read_forms):
        raise ProfileError(f"read_forms must be drawn from {READ_FORMS}")
    if (profile.ef0d is None) != (profile.ef0d_key is None):
        raise ProfileError("files.ef0d and keys.ef0d go together (EF0D and its update key)")
    if not 1 <= profile.photo_chunk <= 255:
        raise ProfileError("photo_chunk is 1..255 (one short APDU)")
    return profile


def read_named_toml(name_or_path: str | Path, directory: Path, kind: str) -> tuple[Path, Any]:
    """A shipped TOML file by name (``directory/NAME.toml``) or any TOML file by path, parsed;
    FileNotFoundError naming the shipped ones when there is no such file."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = directory / f"{name_or_path}.toml"
    if not path.exists():
        shipped = ", ".join(sorted(p.stem for p in directory.glob("*.toml")))
        raise FileNotFoundError(f"no {kind} {str(name_or_path)!r} (shipped: {shipped})")
    with path.open("rb") as fh:
        return path, tomllib.load(fh)


def load_profile(name_or_path: str | Path) -> CardProfile:
    """A shipped profile by name (``default``, ``pin-read``) or a TOML file by path."""
    try:
        _, data = read_named_toml(name_or_path, PROFILE_DIR, "profile")
    except FileNotFoundError as exc:
        raise ProfileError(str(exc)) from None
    return profile_from_dict(data)
