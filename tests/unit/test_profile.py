"""Card profiles as data: the shipped ones load, and a broken one is refused clearly."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from sscard.errors import ProfileError
from sscard.profile import PROFILE_DIR, load_profile, profile_from_dict

with (PROFILE_DIR / "default.toml").open("rb") as _fh:
    FILES = tomllib.load(_fh)["files"]


def test_shipped_profiles_differ_in_read_access_and_padding() -> None:
    default, variant = load_profile("default"), load_profile("pin-read")
    assert (default.read_pin_fids, default.name_padding) == ((), 0x00)
    # pin-read guards the holder data and the photo, not EF05 (docs/chip-application.md §1)
    assert (variant.read_pin_fids, variant.name_padding) == ((0xEF06, 0xEF08), 0x20)
    assert variant.ef05.read == "free" and variant.needs_pin and not default.needs_pin
    assert default.ssse_aid.decode("gbk") == "sx1.sh.社会保障"
    assert [k.id for k in default.external_auth_keys] == [0x04, 0x0A, 0x00]
    assert default.card_id_key.id is None and default.card_id_key.label == "irk"
    assert next(df.aid for df in default.dfs if df.name == "DF04") == bytes.fromhex("D15600000503")


def test_profile_by_path(tmp_path: Path) -> None:
    text = (PROFILE_DIR / "default.toml").read_text().replace('name = "default"', 'name = "x"')
    path = tmp_path / "x.toml"
    path.write_text(text)
    assert load_profile(path).name == "x"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"spec_version": "4.00"}, "spec version"),
        ({"name_padding": 0x30}, "padding"),
        ({"read_access": "pin"}, "per file"),
        ({"files": {**FILES, "ef06": {"fid": 0xEF06, "sfi": 6, "read": "never"}}}, "read"),
        ({"files": {**FILES, "ef06": {"fid": 0xEF06, "sfi": 6, "acl": "x"}}}, "unknown keys"),
        ({"files": {**FILES, "ef0d": {"fid": 0xEF0D, "sfi": 13}}}, "keys.ef0d"),
        ({"ef06_records": ["08", "09", "0A", "0B", "0C"]}, r"缺少 \['0D'\]"),
        ({"ef06_records": ["08", "09", "0A", "0B", "0C", "0D", "0D"]}, "重复"),
        ({"ef06_records": ["08", "09", "0A", "0B", "0C", "0D", "EA"]}, r"未知 \['EA'\]"),
        ({"ef06_records": ["08", "zz"]}, "hex tags"),
        ({"read_forms": ["sideways"]}, "read_forms"),
        ({"photo_chunk": 300}, "photo_chunk"),
        ({"files": {}}, "incomplete"),
    ],
)
def test_bad_profiles(change: dict[str, object], reason: str) -> None:
    with (PROFILE_DIR / "default.toml").open("rb") as fh:
        d = tomllib.load(fh)
    d.update(change)
    with pytest.raises(ProfileError, match=reason):
        profile_from_dict(d)


def test_unknown_profile_lists_the_shipped_ones() -> None:
    with pytest.raises(ProfileError, match="shipped: default, hunan, jiangsu, pin-read"):
        load_profile("atlantis")


def test_region_profiles_say_what_public_code_shows() -> None:
    """Each region's layout as docs/chip-application.md §1 states it, with its source."""
    default, hunan, jiangsu = (load_profile(n) for n in ("default", "hunan", "jiangsu"))
    # Z390Kylin writer: 0A, 0B, 0D at records 4, 5, 7
    assert [(e.tag, e.record) for e in default.ef06_layout] == [
        (0x08, 1), (0x09, 2), (0x4E, 3), (0x0A, 4), (0x0B, 5), (0x0C, 6), (0x0D, 7)
    ]  # fmt: skip
    # HDOS_VC6 WAPP.CPP: tags 08, 09, 0A, 0B, 0C, 0D as records 1-6, no 4E
    assert [(e.tag, e.record) for e in hunan.ef06_layout] == [
        (0x08, 1), (0x09, 2), (0x0A, 3), (0x0B, 4), (0x0C, 5), (0x0D, 6)
    ]  # fmt: skip
    assert not hunan.has_name_ext and default.has_name_ext
    assert hunan.ef19 is not None and (hunan.ef19.df, hunan.ef19.fid) == (0xDF03, 0xEF19)
    assert hunan.ef19.read == "pin" and not hunan.needs_pin and hunan.spec_version == "2.00"
    # JSCardKiosks: EF0D under SSSE, written after key 0D; BFDE 48 = two levels
    assert jiangsu.ef0d is not None and jiangsu.ef0d.fid == 0xEF0D
    assert jiangsu.ef0d_key is not None and jiangsu.ef0d_key.id == 0x0D
    assert jiangsu.diversification_levels == 2 and default.diversification_levels == 3
    assert 0x0D in [k.id for k in jiangsu.external_auth_keys]
    assert jiangsu.ef06_records == default.ef06_records


def test_every_read_form_is_selectable() -> None:
    assert set(load_profile("default").read_forms) == {"sfi", "tag", "number", "sfi-number"}


def test_an_internal_key_only_on_spec_300_profiles() -> None:
    data = tomllib.loads((PROFILE_DIR / "default.toml").read_text("utf-8"))
    assert load_profile("default").internal_key is not None
    assert load_profile("hunan").internal_key is None
    data["spec_version"] = "2.00"
    with pytest.raises(ProfileError, match=r"3\.00"):
        profile_from_dict(data)
