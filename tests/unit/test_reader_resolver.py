"""apdu.pcsc.resolve_reader: the one rule every command uses to pick a PC/SC reader — a
decimal string or int is an index, else an exact name, else a regular expression searched
in the names that must match exactly one reader."""

from __future__ import annotations

import re

import pytest

from apdu.errors import ReaderUnavailable
from apdu.pcsc import resolve_reader

TWO = ["Virtual PCD 00 00", "Virtual PCD 00 01"]


@pytest.mark.parametrize(("spec", "index"), [("0", 0), ("1", 1), (0, 0), (1, 1), (" 1 ", 1)])
def test_a_decimal_is_an_index_never_a_pattern(spec: str | int, index: int) -> None:
    # "0" and "1" also occur in both names: read as patterns they would match both.
    assert resolve_reader(spec, TWO) == TWO[index]


def test_an_exact_name_wins_over_a_pattern_matching_more() -> None:
    names = ["ACS ACR39U", "ACS ACR39U 01"]
    assert resolve_reader("ACS ACR39U", names) == "ACS ACR39U"


def test_a_pattern_matching_one_reader() -> None:
    assert resolve_reader("00 01$", TWO) == TWO[1]
    assert resolve_reader(re.compile(r"PCD 00 00"), TWO) == TWO[0]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("Virtual PCD", "2 readers match"),
        ("No Such Reader", "no reader matches"),
        ("7", "no reader at index 7"),
        (-1, "no reader at index -1"),
        ("", "empty"),
        ("   ", "empty"),
        ("[", "not a valid pattern"),
    ],
)
def test_anything_else_is_refused_and_names_the_readers(spec: str | int, message: str) -> None:
    with pytest.raises(ReaderUnavailable, match=re.escape(message)) as caught:
        resolve_reader(spec, TWO)
    text = str(caught.value)
    assert "读卡器" in text and text.index("读卡器") < text.index(message)  # Chinese first
    if message != "empty":
        assert all(name in text for name in TWO)


def test_no_readers_at_all() -> None:
    with pytest.raises(ReaderUnavailable, match="no PC/SC readers"):
        resolve_reader("0", [])
