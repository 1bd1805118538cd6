"""Card profiles: what differs between regions' cards, as data (TOML), never as code —
file map, read access, name padding, spec version, key ids and labels, PIN rules
(docs/chip-application.md §1-§2). ``load_profile("default")`` reads ``profiles/default.toml``; a
path to any TOML file works too.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sscard.errors import ProfileError

PROFILE_DIR = Path(__file__).parent / "profiles"
ReadForm = Literal["sfi", "tag", "number"]
READ_FORMS: tuple[ReadForm, ...] = ("sfi", "tag", "number")
SPEC_VERSIONS = ("1.00", "2.00", "3.00")


@dataclass(frozen=True)
class FileRef:
    fid: int
    sfi: int


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
class CardProfile:
    name: str
    description: str
    spec_version: str
    card_type: str
    algorithm: str
    name_padding: int
    read_access: Literal["free", "pin"]
    ssse_aid: bytes
    ssse_fci_proprietary: bytes
    read_forms: tuple[ReadForm, ...]
    photo_size: int
    photo_chunk: int
    ef05: FileRef
    ef06: FileRef
    ef07: FileRef
    ef08: FileRef
    dfs: tuple[DfRef, ...]
    update_key: KeyRef
    read_key: KeyRef
    master_key: KeyRef
    card_id_key: KeyRef
    pin_key: KeyRef
    pin: PinRules

    @property
    def external_auth_keys(self) -> tuple[KeyRef, ...]:
        """Every external-authentication key of SSSE (all are checked after personalization,
        as T514-generator ``Script_YK.cpp`` does)."""
        return (self.update_key, self.read_key, self.master_key)

    @property
    def card_keys(self) -> tuple[KeyRef, ...]:
        """Keys the card holds (the IRK stays in the security module)."""
        return (*self.external_auth_keys, self.pin_key)


def _key(d: dict[str, Any], name: str) -> KeyRef:
    k = d[name]
    return KeyRef(id=k.get("id"), label=str(k["label"]), tries=int(k.get("tries", 0)))


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
            name_padding=int(d["name_padding"]),
            read_access=d["read_access"],
            ssse_aid=bytes.fromhex(d["ssse_aid"]),
            ssse_fci_proprietary=bytes.fromhex(d.get("ssse_fci_proprietary", "")),
            read_forms=tuple(d["read_forms"]),
            photo_size=int(d["photo_size"]),
            photo_chunk=int(d["photo_chunk"]),
            ef05=FileRef(**files["ef05"]),
            ef06=FileRef(**files["ef06"]),
            ef07=FileRef(**files["ef07"]),
            ef08=FileRef(**files["ef08"]),
            dfs=tuple(
                DfRef(
                    str(x["name"]), int(x["fid"]), bytes.fromhex(x["aid"]) if "aid" in x else None
                )
                for x in d.get("dfs", [])
            ),
            update_key=_key(keys, "update"),
            read_key=_key(keys, "read"),
            master_key=_key(keys, "master"),
            card_id_key=_key(keys, "card_id"),
            pin_key=_key(keys, "pin"),
            pin=PinRules(**d["pin"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ProfileError(
            f"profile is incomplete or malformed: {type(exc).__name__}: {exc}"
        ) from None
    if profile.spec_version not in SPEC_VERSIONS:
        raise ProfileError(f"spec version {profile.spec_version!r} not one of {SPEC_VERSIONS}")
    if profile.name_padding not in (0x00, 0x20):
        raise ProfileError("name padding is 0x00 or 0x20")
    if profile.read_access not in ("free", "pin"):
        raise ProfileError("read_access is 'free' or 'pin'")
    if not profile.read_forms or any(f not in READ_FORMS for f in profile.read_forms):
        raise ProfileError(f"read_forms must be drawn from {READ_FORMS}")
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
