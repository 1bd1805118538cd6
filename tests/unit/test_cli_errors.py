"""How ``sscard`` words a failure (personalize.cli_errors): one line, Chinese first with the
English beside it, the exception's class named; an unexpected error says so and points to
``-v``, which alone adds the traceback; ``--json`` puts the same error on stdout."""

from __future__ import annotations

import json

import pytest

from apdu.errors import ApduError
from personalize.cli_errors import UsageError, describe, report
from personalize.registry import RegistryError


def raised(exc: Exception) -> Exception:
    """``exc`` with a traceback, as ``main`` sees it."""
    try:
        raise exc
    except Exception as caught:
        return caught


def test_a_message_that_starts_in_chinese_is_kept_and_the_class_named() -> None:
    text = describe(RegistryError("卡号 H1 不在登记库中 (unknown card number)"))
    assert text == "卡号 H1 不在登记库中 (unknown card number) [RegistryError]"


def test_an_english_message_gets_the_chinese_name_of_its_kind_first() -> None:
    assert describe(FileNotFoundError(2, "No such file", "x.json")).startswith("文件不存在 (")
    assert describe(ApduError("no smart card inserted")) == (
        "卡片或读卡器错误 (ApduError: no smart card inserted)"
    )
    assert describe(UsageError("argument --serial: 应为 16 位")).startswith("命令用法错误 (")


def test_a_message_on_several_lines_becomes_one() -> None:
    assert "\n" not in describe(ValueError("first\nsecond\n\tthird"))
    assert describe(ValueError("first\nsecond")) == "输入无效 (ValueError: first second)"


def test_an_unexpected_error_is_one_line_with_the_hint_and_no_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = report(raised(KeyError("card_number")), as_json=False, verbose=False)
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("错误：程序内部错误 (unexpected KeyError: 'card_number')")
    assert "-v" in err


def test_verbose_adds_the_traceback_before_the_line(capsys: pytest.CaptureFixture[str]) -> None:
    report(raised(KeyError("card_number")), as_json=False, verbose=True)
    err = capsys.readouterr().err
    assert err.startswith("Traceback") and err.splitlines()[-1].startswith("错误：")


def test_json_puts_the_error_on_stdout_and_usage_errors_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = report(raised(UsageError("unknown option --x")), as_json=True, verbose=False)
    out, err = capsys.readouterr()
    assert code == 2
    assert json.loads(out) == {
        "error": {"type": "UsageError", "message": "命令用法错误 (UsageError: unknown option --x)"}
    }
    assert err == "错误：命令用法错误 (UsageError: unknown option --x)\n"


def test_the_simulators_errors_are_named_without_importing_it_in_production() -> None:
    from simulator.cardfile import CardFileError
    from simulator.pcscd import PcscdError

    assert describe(PcscdError("pcscd is not installed")) == (
        "模拟读卡器服务 pcscd 不可用 (PcscdError: pcscd is not installed)"
    )
    assert describe(CardFileError("card file x does not exist")).startswith("模拟卡文件无效 (")
