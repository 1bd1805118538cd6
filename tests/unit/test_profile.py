"""Card profiles as data: the shipped ones load, and a broken one is refused clearly."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from sscard.errors import ProfileError
from sscard.profile import PROFILE_DIR, load_profile, profile_from_dict


def test_shipped_profiles_differ_in_read_access_and_padding() -> None:
    default, variant = load_profile("default"), load_profile("pin-read")
    assert (default.read_access, default.name_padding) == ("free", 0x00)
    assert (variant.read_access, variant.name_padding) == ("pin", 0x20)
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
        ({"name_padding": 0xFF}, "padding"),
        ({"read_access": "never"}, "read_access"),
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
    with pytest.raises(ProfileError, match="shipped: default, pin-read"):
        load_profile("atlantis")
