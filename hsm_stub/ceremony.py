"""Key ceremony: a key is never typed whole. Each of at least two custodians enters a
component (hex, not echoed); its KCV is shown and the custodian confirms it against the
sheet; the key is the XOR of the components and its KCV is shown at the end.

The I/O is passed in (``read_secret``, ``confirm``, ``say``) so the CLI prompts on a
terminal and tests drive the same code. Nothing here logs or prints a component.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from hsm_stub.errors import CeremonyError
from hsm_stub.suites import CipherSuite

HEX_RE = re.compile(r"[0-9A-Fa-f]+")
MIN_CUSTODIANS = 2


@dataclass
class CeremonyIO:
    read_secret: Callable[[str], str]
    confirm: Callable[[str], bool]
    say: Callable[[str], None]


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def collect_key(
    io: CeremonyIO, *, custodians: int, length: int, suite: CipherSuite, what: str
) -> bytes:
    """Run the component entry for one key of ``length`` bytes; return the combined key."""
    if custodians < MIN_CUSTODIANS:
        raise CeremonyError(f"a key ceremony needs at least {MIN_CUSTODIANS} custodians")
    combined = bytes(length)
    seen: list[bytes] = []
    for i in range(1, custodians + 1):
        text = (
            io.read_secret(
                f"托管人 {i}/{custodians}，请输入{what}分量 "
                f"(custodian {i} of {custodians}: {what} component, {2 * length} hex digits): "
            )
            .strip()
            .replace(" ", "")
        )
        if len(text) != 2 * length or not HEX_RE.fullmatch(text):
            raise CeremonyError(
                f"component {i} must be {2 * length} hexadecimal digits "
                f"(got {len(text)} characters); nothing was stored"
            )
        component = bytes.fromhex(text)
        if component in seen:
            raise CeremonyError(f"component {i} repeats an earlier one; nothing was stored")
        seen.append(component)
        kcv = suite.kcv(component).hex().upper()
        if not io.confirm(
            f"分量 {i} 的校验值 KCV = {kcv}，与记录一致吗? (component {i} KCV, "
            "matches your sheet?) [y/N] "
        ):
            raise CeremonyError(f"custodian {i} did not confirm the KCV; nothing was stored")
        combined = _xor(combined, component)
    io.say(f"{what}合成校验值 combined KCV = {suite.kcv(combined).hex().upper()}")
    return combined
