"""The shared argument types (personalize/cli_types.py) as the commands use them: a bad
value is refused by argparse with the Chinese reason and the value, before anything runs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from personalize.cli_types import positive_count, positive_seconds


@pytest.mark.parametrize(("text", "value"), [("1", 1), ("8", 8)])
def test_a_positive_count_is_taken(text: str, value: int) -> None:
    assert positive_count(text) == value


@pytest.mark.parametrize("text", ["0", "-3", "2.5", "eight", ""])
def test_anything_else_is_not_a_count(text: str) -> None:
    with pytest.raises(Exception, match="须为正整数"):
        positive_count(text)


@pytest.mark.parametrize(("text", "value"), [("0.2", 0.2), ("3", 3.0)])
def test_positive_seconds_are_taken(text: str, value: float) -> None:
    assert positive_seconds(text) == value


@pytest.mark.parametrize("text", ["0", "-1", "nan", "soon"])
def test_anything_else_is_not_seconds(text: str) -> None:
    with pytest.raises(Exception, match="须为正数秒"):
        positive_seconds(text)


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["station", "run", "--station", "s.toml", "--lease", "0"], "须为正数秒"),
        (["outbox", "dispatch", "--config", "o.toml", "--poll", "-1"], "须为正数秒"),
        (["sim", "center", "--stations", "0"], "须为正整数"),
        (["hsm", "serve", "--workers", "many"], "须为正整数"),
    ],
)
def test_each_command_refuses_a_bad_value_with_its_reason(argv: list[str], reason: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "personalize.cli", *argv], capture_output=True, text=True
    )
    assert done.returncode == 2 and reason in done.stderr, done.stderr
