"""15-digit ID numbers of first-generation cards (GB 11643-1989) and their upgrade to 18
characters (GB 11643-1999): docs/business-rules.md "15-digit ID numbers"."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.factory import SAMPLE_HOLDER
from sscard.errors import InvalidData
from sscard.identifiers import (
    canonical_ssn,
    first_generation_ssn,
    same_person_ssn,
    ssn_birth_date,
    ssn_gender,
    ssn_valid,
    upgrade_ssn,
    validate_ssn,
    validate_ssn15,
)

# Published upgrades from another implementation: Hutool's IdcardUtilTest.convert15To18Test
# (github.com/dromara/hutool, hutool-core/src/test/java/cn/hutool/core/util/IdcardUtilTest.java)
# and the 370802… example copied in many public ID utilities ("370802940221002 转换为18位后为
# 370802199402210029").
PUBLISHED = [
    ("150102880730303", "150102198807303035"),
    ("330102200403064", "33010219200403064X"),
    ("370802940221002", "370802199402210029"),
]


@pytest.mark.parametrize(("fifteen", "eighteen"), PUBLISHED)
def test_published_upgrades(fifteen: str, eighteen: str) -> None:
    assert upgrade_ssn(fifteen) == eighteen
    assert canonical_ssn(fifteen) == eighteen and canonical_ssn(eighteen) == eighteen
    assert same_person_ssn(fifteen, eighteen) and same_person_ssn(eighteen, fifteen)
    assert ssn_birth_date(fifteen) == ssn_birth_date(eighteen)
    assert ssn_gender(fifteen) == ssn_gender(eighteen)


@pytest.mark.parametrize(("fifteen", "eighteen"), PUBLISHED)
def test_the_first_generation_form_of_a_published_upgrade(fifteen: str, eighteen: str) -> None:
    assert first_generation_ssn(eighteen) == fifteen


@pytest.mark.parametrize(
    "eighteen",
    [
        "11010520000101001" + "X",  # born 2000: no 15-digit form (the check is not reached)
        "150102198807303036",  # a wrong check character: nothing upgrades to it
        "15010219880730303",  # 17 characters
    ],
)
def test_no_first_generation_form(eighteen: str) -> None:
    assert first_generation_ssn(eighteen) is None


def test_the_15_digit_form_of_the_gb11643_example() -> None:
    # GB 11643-1999's example 11010519491231002X without its century and check character.
    assert ssn_birth_date("110105491231002") == date(1949, 12, 31)
    assert ssn_gender("110105491231002") == "2"  # sequence 002: even, a woman
    assert ssn_gender("150102880730303") == "1"  # sequence 303: odd, a man


@pytest.mark.parametrize(
    ("number", "message"),
    [
        ("11010549123100", "15 位数字"),  # 14 digits
        ("11010549123100X", "15 位数字"),  # a check character the form does not have
        ("１１０１０５４９１２３１００２", "15 位数字"),  # full-width digits
        ("110105491331002", "出生日期"),  # month 13
        ("110105490230002", "出生日期"),  # 30 February
        ("999999491231002", "地址码 999999"),
    ],
)
def test_invalid_15_digit_numbers_are_refused(number: str, message: str) -> None:
    with pytest.raises(InvalidData, match=message):
        validate_ssn15(number)
    with pytest.raises(InvalidData, match=message):
        upgrade_ssn(number)
    assert not ssn_valid(number, first_generation=True)
    assert not same_person_ssn(number, "11010519491231002X")


def test_15_digits_only_where_a_first_generation_number_may_be() -> None:
    validate_ssn("110105491231002", first_generation=True)
    assert ssn_valid("110105491231002", first_generation=True)
    # a person is recorded, and a new card written, with 18 characters only
    with pytest.raises(InvalidData, match="18 位"):
        validate_ssn("110105491231002")
    assert not ssn_valid("110105491231002")


def test_another_persons_numbers_do_not_match() -> None:
    assert not same_person_ssn("110105491231002", "370802199402210029")
    assert not same_person_ssn("110105491231004", "11010519491231002X")  # another sequence
    assert not same_person_ssn("110105491231002", "110105194912310021")  # wrong check char


def _iso7064_mod_11_2(digits: str) -> str:
    """The check character computed independently: ISO 7064 MOD 11-2 in its recursive form
    (P = 2·(P + a) mod 11 per digit, check = (12 − P) mod 11, 10 written X), not the
    weight table of sscard.identifiers."""
    p = 0
    for ch in digits:
        p = (p + int(ch)) * 2 % 11
    r = (12 - p) % 11
    return "X" if r == 10 else str(r)


@given(
    region=st.sampled_from(["110105", "150102", "310104", "330102", "440402"]),
    born=st.dates(min_value=date(1900, 1, 1), max_value=date(1999, 12, 31)),
    sequence=st.integers(min_value=0, max_value=999),
)
def test_upgrade_agrees_with_an_independent_computation(
    region: str, born: date, sequence: int
) -> None:
    fifteen = f"{region}{born:%y%m%d}{sequence:03d}"
    first17 = f"{region}{born:%Y%m%d}{sequence:03d}"
    eighteen = first17 + _iso7064_mod_11_2(first17)
    assert upgrade_ssn(fifteen) == eighteen
    assert same_person_ssn(fifteen, eighteen)
    assert ssn_birth_date(fifteen) == born
    assert ssn_gender(fifteen) == ("1" if sequence % 2 else "2")
    next_day = f"{region}{born + timedelta(days=1):%y%m%d}{sequence:03d}"
    assert not same_person_ssn(next_day, eighteen)  # another person's number


def test_a_first_generation_holder_record() -> None:
    # EF06 of a first-generation card: birth date and gender checked against the 15 digits
    card = replace(SAMPLE_HOLDER, ssn="110105491231002")
    card.validate(first_generation=True)
    with pytest.raises(InvalidData, match="第 15 位"):
        replace(card, gender="1").validate(first_generation=True)
    with pytest.raises(InvalidData, match="出生日期"):
        replace(card, birth_date=date(2049, 12, 31)).validate(first_generation=True)
    with pytest.raises(InvalidData, match="升位"):  # a new card or the registry: 18 only
        card.validate()
