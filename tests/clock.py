"""The tests' time: no test depends on the day it is run (docs/business-rules.md, "Time").

In-process code takes ``pinned_clock`` (``Registry(..., clock=pinned_clock)``); ``sscard``
subprocesses run under libfaketime with ``FAKETIME`` prefixed to their command line: their
clock starts at the same instant and runs on. The ``@`` form keeps the clock running (a frozen
clock breaks socket time-outs); faketime reads the instant in the machine's zone (UTC here).
"""

from __future__ import annotations

from datetime import UTC, datetime

PINNED = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)  # Wednesday, 17:30 in Shanghai
FAKETIME = ("faketime", "-f", "@2026-11-25 09:30:00")


def pinned_clock() -> datetime:
    return PINNED
