"""Key ceremony: components XOR into the key, KCVs shown and confirmed, nothing echoed."""

from __future__ import annotations

import pytest

from hsm_stub.ceremony import CeremonyIO, collect_key
from hsm_stub.errors import CeremonyError
from hsm_stub.suites import TDES

C1 = "0123456789ABCDEF0123456789ABCDEF"
C2 = "FEDCBA9876543210FEDCBA9876543210"


class Script:
    def __init__(self, secrets: list[str], answers: list[bool]) -> None:
        self.secrets, self.answers = list(secrets), list(answers)
        self.shown: list[str] = []

    def io(self) -> CeremonyIO:
        def read_secret(prompt: str) -> str:
            self.shown.append(prompt)
            return self.secrets.pop(0)

        def confirm(prompt: str) -> bool:
            self.shown.append(prompt)
            return self.answers.pop(0)

        return CeremonyIO(read_secret=read_secret, confirm=confirm, say=self.shown.append)


def test_two_components_make_the_key() -> None:
    script = Script([C1, C2.lower()], [True, True])
    key = collect_key(script.io(), custodians=2, length=16, suite=TDES, what="LMK")
    assert key == bytes(a ^ b for a, b in zip(bytes.fromhex(C1), bytes.fromhex(C2), strict=True))
    text = "\n".join(script.shown)
    assert TDES.kcv(bytes.fromhex(C1)).hex().upper() in text  # each component's KCV shown
    assert TDES.kcv(key).hex().upper() in text  # and the combined one
    assert C1 not in text and C2 not in text and C2.lower() not in text
    assert key.hex().upper() not in text


@pytest.mark.parametrize(
    ("secrets", "answers", "custodians", "reason"),
    [
        ([C1], [True], 1, "at least 2 custodians"),
        ([C1, "XYZ"], [True], 2, "hexadecimal digits"),
        ([C1, C1[:-2]], [True], 2, "32 hexadecimal digits"),
        ([C1, C2], [True, False], 2, "did not confirm"),
        ([C1, C1], [True], 2, "repeats"),
    ],
)
def test_refusals(secrets: list[str], answers: list[bool], custodians: int, reason: str) -> None:
    with pytest.raises(CeremonyError, match=reason) as info:
        collect_key(
            Script(secrets, answers).io(), custodians=custodians, length=16, suite=TDES, what="LMK"
        )
    assert C1 not in str(info.value) and C2 not in str(info.value)
