"""The API's holder lookup with a first-generation card's 15-digit ID number, through a real
``sscard serve`` on SQLite and PostgreSQL: the counter's system reads the old card and finds
the holder recorded under the upgraded 18-character number (docs/business-rules.md "15-digit
ID numbers", docs/api.md)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from personalize.roles import ApiRole
from tests.conftest import NewDatabase
from tests.integration.api_fixture import Api, card_number, holder, served_api


@pytest.fixture
def api(new_db: NewDatabase) -> Iterator[Api]:
    yield from served_api(new_db("api"))


def fifteen(eighteen: str) -> str:
    """The 15-digit form of a number of the 1900s, written out here: without 19 and the
    check character."""
    return eighteen[:6] + eighteen[8:17]


def test_a_15_digit_number_finds_its_holder(api: Api) -> None:
    person = holder(1)
    answer = api.as_(ApiRole.COUNTER).get(
        f"/v1/persons/{fifteen(person.ssn)}", params={"reveal": "true"}
    )
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert found["id_number"] == person.ssn  # the recorded number, upgraded
    assert [c["card_number"] for c in found["cards"]] == [card_number(1)]


@pytest.mark.parametrize(
    ("number", "status", "says"),
    [
        ("110105491231008", 404, "no-person"),  # a valid number whose upgrade matches nobody
        ("110105491331002", 422, "出生日期"),  # month 13
        ("1101054912310021", 422, ""),  # 16 digits: neither form
    ],
)
def test_bad_15_digit_numbers(api: Api, number: str, status: int, says: str) -> None:
    answer = api.as_(ApiRole.COUNTER).get(f"/v1/persons/{number}")
    assert answer.status_code == status, answer.text
    assert says in answer.text
