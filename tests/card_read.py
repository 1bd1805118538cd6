"""``sscard card read --json`` as a subprocess, for the tests that check what the operator's
reader makes of a card served through pcscd."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any


def card_read_json(reader: str, *extra: str, pin: str | None = None) -> dict[str, Any]:
    """The JSON that ``sscard card read --reader READER --json EXTRA…`` prints; ``pin`` is
    typed at its prompt. The command must succeed."""
    result = subprocess.run(
        [sys.executable, "-m", "personalize.cli", "card", "read", "--reader", reader, "--json",
         *extra],
        input=(pin + "\n") if pin else "",
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return dict(json.loads(result.stdout))
