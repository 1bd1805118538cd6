"""APDU trace: one event per raw exchange on the wire, with secrets redacted.

The data field of commands that carry PINs or key material is never kept: VERIFY (``20``),
CHANGE REFERENCE DATA (``24``; also the 社保卡 PIN unblock/reset ``84 24``), RESET RETRY
COUNTER (``2C``), the 社保卡 CHANGE PIN (``80 5E``), EXTERNAL AUTHENTICATE (``82``), key
loads (``D4``, ``D8``) and the PSAM's encrypt/MAC (``80 FA``, whose input can be a PIN
block) — docs/chip-application.md §2, §5; docs/architecture.md "Conventions". Header, lengths, SW,
latency stay, so a trace still shows what happened. Redaction happens when the event is
built: a :class:`TraceEvent` never holds the secret bytes, whatever observer receives it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from apdu.status import describe

SECRET_INS: frozenset[int] = frozenset({0x20, 0x24, 0x2C, 0x5E, 0x82, 0xD4, 0xD8, 0xFA})

TraceObserver = Callable[["TraceEvent"], None]


def _command_body(raw: bytes) -> tuple[int, int]:
    """(offset of the data field, its length) in a C-APDU, best effort for tracing."""
    if len(raw) <= 5:
        return len(raw), 0
    if raw[4] != 0:
        return 5, min(raw[4], len(raw) - 5)
    if len(raw) > 7:
        return 7, min(int.from_bytes(raw[5:7], "big"), len(raw) - 7)
    return len(raw), 0


def redact_command(raw: bytes) -> str:
    """Hex of a C-APDU, with the data field replaced by ``<N bytes redacted>`` when the INS
    carries a secret."""
    if len(raw) >= 2 and raw[1] in SECRET_INS:
        start, n = _command_body(raw)
        if n:
            head, tail = raw[:start].hex().upper(), raw[start + n :].hex().upper()
            return f"{head} <{n} bytes redacted> {tail}".rstrip()
    return raw.hex().upper()


@dataclass(frozen=True)
class TraceEvent:
    """One command/response exchange as it crossed the transport."""

    command: str  # hex, redacted where needed
    response: str  # hex of the R-APDU data (redacted when the command was) and SW
    ins: int
    command_length: int
    response_length: int
    sw: int | None  # None when the exchange failed
    latency_ms: float
    error: str | None = None

    def render(self) -> str:
        sw = "----" if self.sw is None else f"{self.sw:04X}"
        meaning = self.error if self.error else (describe(self.sw) if self.sw is not None else "")
        return (
            f"> {self.command}\n< {self.response} [{sw}] {meaning} "
            f"(C {self.command_length} B, R {self.response_length} B, {self.latency_ms:.3f} ms)"
        )


def make_event(
    command: bytes, response: bytes | None, latency_s: float, error: str | None = None
) -> TraceEvent:
    """Build a redacted event from the raw bytes of one exchange."""
    ins = command[1] if len(command) >= 2 else -1
    secret = ins in SECRET_INS
    if response is None:
        rtext, sw, rlen = "", None, 0
    else:
        sw = int.from_bytes(response[-2:], "big") if len(response) >= 2 else None
        body = response[:-2]
        rtext = f"<{len(body)} bytes redacted>" if secret and body else body.hex().upper()
        rlen = len(response)
    return TraceEvent(
        command=redact_command(command),
        response=rtext,
        ins=ins,
        command_length=len(command),
        response_length=rlen,
        sw=sw,
        latency_ms=latency_s * 1000.0,
        error=error,
    )


class LoggingTrace:
    """An observer that writes each event to a :mod:`logging` logger (``apdu.trace``)."""

    def __init__(self, logger: logging.Logger | None = None, level: int = logging.DEBUG) -> None:
        self.logger = logger or logging.getLogger("apdu.trace")
        self.level = level

    def __call__(self, event: TraceEvent) -> None:
        self.logger.log(self.level, "%s", event.render())


class RecordingTrace:
    """An observer that keeps events in memory (for reports, the demo and tests)."""

    def __init__(self) -> None:
        self.events: list[TraceEvent] = []

    def __call__(self, event: TraceEvent) -> None:
        self.events.append(event)
