"""The tests' time: no test depends on the day it is run (docs/business-rules.md, "Time").

In-process code takes ``pinned_clock`` (``Registry(..., clock=pinned_clock)``); ``sscard``
subprocesses run under libfaketime with ``FAKETIME`` prefixed to their command line: their
clock starts at the same instant and runs on. The ``@`` form keeps the clock running (a frozen
clock breaks socket time-outs); faketime reads the instant in the machine's zone (UTC here).
"""

from __future__ import annotations

import glob
from datetime import UTC, datetime

PINNED = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)  # Wednesday, 17:30 in Shanghai


def _libfaketime() -> str:
    """Debian's libfaketime (package faketime), wherever the architecture puts it."""
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
    if not found:
        raise RuntimeError("libfaketime not found: install the Debian package faketime")
    return found[0]


# libfaketime preloaded into the sscard process itself rather than through the `faketime`
# wrapper: the wrapper turns a SIGKILL of its child into its own exit status, and nested
# under an outer faketime (a whole-suite run at another date) it warns on stderr.
def faketime_env(instant: str) -> dict[str, str]:
    """Environment that starts a process's clock at ``instant`` (UTC, "YYYY-MM-DD HH:MM:SS",
    or libfaketime's own "@…" form) and lets it run on."""
    return {
        "LD_PRELOAD": _libfaketime(),
        "FAKETIME": instant if instant[0] == "@" else "@" + instant,
    }


def faketime(instant: str) -> tuple[str, ...]:
    """A command prefix (``env …``) running the command with its clock from ``instant``."""
    return ("env", *(f"{k}={v}" for k, v in faketime_env(instant).items()))


FAKETIME_ENV = faketime_env("2026-11-25 09:30:00")
FAKETIME = faketime("2026-11-25 09:30:00")


def pinned_clock() -> datetime:
    return PINNED


class MovingClock:
    """The tests' clock moved on by hand (``clock.now = …``: a day passes, a lease runs
    out); it starts at ``PINNED`` or at ``start``."""

    def __init__(self, start: datetime = PINNED) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def unix(self) -> float:
        """The same instant as a Unix time (a webhook receiver's clock)."""
        return self.now.timestamp()
