"""How ``sscard`` reports a failure: one line on stderr, ``错误：<Chinese> (<English>)``.

A message that already starts in Chinese is shown as it is; otherwise the Chinese name of the
error's kind (``OPERATOR_ERRORS``, found along the exception's class hierarchy) comes first
and the English message beside it. The exception's class name is always on the line (scripts
and the test-suite match on it). With ``--json`` the same error is also a JSON object on
stdout: ``{"error": {"type": …, "message": …}}``.

Exit statuses: 1 for an error the operator can act on (card, reader, device, file, registry,
input), 2 for a usage error (unknown command or option, missing argument), 1 for an
unexpected error too — reported on one line with the hint to rerun with ``-v``, which adds
the traceback (``-v`` adds it for every error).
"""

from __future__ import annotations

import json
import re
import sys
import traceback

from apdu.errors import ApduError
from hsm_stub.errors import SecurityModuleError
from personalize.database import DatabaseError
from personalize.jobs import JobError
from personalize.lifecycle import TransitionRefused
from personalize.office import OfficeError
from personalize.operators import OperatorError
from personalize.policy import PolicyError
from personalize.registry import RegistryError
from personalize.station import StationError
from personalize.trackvault import VaultError
from personalize.webhooks import WebhookConfigError
from printer.errors import DeviceError, TrackError
from printer.face import FaceError
from sscard.errors import SocialSecurityCardError

EXIT_ERROR = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """The command line itself is wrong (raised by the parser instead of exiting)."""


# Errors an operator can act on, with the Chinese name of their kind. The most specific
# class along an exception's MRO wins, so a subclass may be listed beside its base.
OPERATOR_ERRORS: dict[type[BaseException], str] = {
    UsageError: "命令用法错误",
    ApduError: "卡片或读卡器错误",
    SocialSecurityCardError: "社保卡数据错误",
    SecurityModuleError: "安全模块错误",
    DeviceError: "设备错误",
    TrackError: "磁道数据无效",
    FaceError: "卡面无效",
    RegistryError: "登记库错误",
    TransitionRefused: "业务规则不允许",
    DatabaseError: "登记库数据库错误",
    JobError: "制卡作业错误",
    VaultError: "磁道密钥错误",
    OfficeError: "街道业务错误",
    OperatorError: "操作员认证错误",
    PolicyError: "地区政策错误",
    StationError: "工作站配置错误",
    WebhookConfigError: "回盘配置错误",
    FileNotFoundError: "文件不存在",
    FileExistsError: "文件已存在",
    PermissionError: "没有权限",
    IsADirectoryError: "这是一个目录",
    OSError: "文件或设备错误",
    json.JSONDecodeError: "不是有效的 JSON",
    UnicodeError: "文本编码错误",
    ValueError: "输入无效",
    EOFError: "输入已结束",
}

# The simulator's own errors, by qualified name: production modules never import the
# simulator (docs/architecture.md); only the ``sim`` and ``demo`` commands raise these.
SIMULATOR_ERRORS: dict[str, str] = {
    "simulator.pcscd.PcscdError": "模拟读卡器服务 pcscd 不可用",
    "simulator.cardfile.CardFileError": "模拟卡文件无效",
}

_CJK = re.compile(r"[\u3400-\u9fff]")
_LATIN = re.compile(r"[A-Za-z]")
RERUN_HINT = "加 -v 重新运行可看到详细信息 (rerun with -v for the details)"


def kind_label(exc: BaseException) -> str | None:
    """The Chinese name of ``exc``'s kind, or None for an unexpected error."""
    for cls in type(exc).__mro__:
        if cls in OPERATOR_ERRORS:
            return OPERATOR_ERRORS[cls]
        label = SIMULATOR_ERRORS.get(f"{cls.__module__}.{cls.__qualname__}")
        if label is not None:
            return label
    return None


def _chinese_first(text: str) -> bool:
    """The message's first word is Chinese (paths and numbers before it do not count)."""
    cjk, latin = _CJK.search(text), _LATIN.search(text)
    return cjk is not None and (latin is None or cjk.start() < latin.start())


def describe(exc: BaseException) -> str:
    """One line, Chinese first and the English beside it (without the ``错误：`` prefix)."""
    text = " ".join(str(exc).split())
    name = type(exc).__name__
    label = kind_label(exc)
    if label is None:
        return f"程序内部错误 (unexpected {name}: {text}) — {RERUN_HINT}"
    if _chinese_first(text):
        return f"{text} [{name}]"
    return f"{label} ({name}: {text})" if text else f"{label} ({name})"


def report(exc: BaseException, *, as_json: bool, verbose: bool) -> int:
    """Print ``exc`` as the command's outcome; return the exit status."""
    message = describe(exc)
    if verbose:
        traceback.print_exception(exc, file=sys.stderr)
    if as_json:
        error = {"type": type(exc).__name__, "message": message}
        print(json.dumps({"error": error}, ensure_ascii=False))
    print(f"错误：{message}", file=sys.stderr)
    return EXIT_USAGE if isinstance(exc, UsageError) else EXIT_ERROR
