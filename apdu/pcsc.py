"""PC/SC transport over pyscard's ``smartcard.scard`` (the thin binding of the PC/SC API,
pcsc-lite on Linux).

The reader is chosen by :func:`resolve_reader` — index, exact name or a regular expression
matching exactly one reader — the one rule for every command. Connections are
exclusive by default: nothing else may talk to the card while a job writes it.

pcsc-lite errors (``src/winscard.c``; docs/devices.md §1) become :class:`~apdu.errors.CardRemoved`,
:class:`~apdu.errors.CardReset`, :class:`~apdu.errors.NoCard`, :class:`~apdu.errors.CardMute`
and :class:`~apdu.errors.ReaderUnavailable`. A command torn by a pulled card comes back from
pcsc-lite as *success with no bytes* (hresult 0) and only later calls say
``SCARD_W_REMOVED_CARD`` — so after any failed exchange the transport watches the reader
state (pcscd polls a reader about every 400 ms) to tell a pulled or swapped card from a mute
one, instead of trusting the hresult alone.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from smartcard import scard

from apdu.atr import Atr, MalformedAtr
from apdu.errors import (
    CardMute,
    CardRemoved,
    CardReset,
    NoCard,
    ReaderUnavailable,
    TransportError,
)
from apdu.transport import DEFAULT_MAX_GET_RESPONSE, Transport

ReaderSpec = str | re.Pattern[str] | int
ProtocolChoice = Literal["T0", "T1", "any"]

_PROTOCOLS: dict[str, int] = {
    "T0": scard.SCARD_PROTOCOL_T0,
    "T1": scard.SCARD_PROTOCOL_T1,
    "any": scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1,
}

# How long to watch the reader after a failed exchange: pcscd polls presence every 400 ms.
SETTLE_SECONDS = 1.0

_DIRECT: dict[int, type[TransportError]] = {
    scard.SCARD_W_REMOVED_CARD: CardRemoved,
    scard.SCARD_W_RESET_CARD: CardReset,
    scard.SCARD_E_NO_SMARTCARD: NoCard,
    scard.SCARD_W_UNRESPONSIVE_CARD: CardMute,
    scard.SCARD_W_UNPOWERED_CARD: CardMute,
    scard.SCARD_E_READER_UNAVAILABLE: ReaderUnavailable,
    scard.SCARD_E_UNKNOWN_READER: ReaderUnavailable,
    scard.SCARD_E_NO_READERS_AVAILABLE: ReaderUnavailable,
    scard.SCARD_E_NO_SERVICE: ReaderUnavailable,
    scard.SCARD_E_SERVICE_STOPPED: ReaderUnavailable,
    scard.SCARD_E_SHARING_VIOLATION: ReaderUnavailable,
}


def pcsc_message(hresult: int) -> str:
    """pcsc-lite's text for an hresult, with the code."""
    try:
        text = str(scard.SCardGetErrorMessage(hresult)).strip()
    except Exception:  # pragma: no cover - the binding always has it
        text = "PC/SC error"
    return f"{text} (0x{hresult & 0xFFFFFFFF:08X})"


def error_for(hresult: int, context: str) -> TransportError:
    """The typed error for a PC/SC failure code."""
    cls = _DIRECT.get(hresult, TransportError)
    if hresult == scard.SCARD_E_SHARING_VIOLATION:
        return cls(f"{context}: the reader is in use by another application", hresult=hresult)
    return cls(f"{context}: {pcsc_message(hresult)}", hresult=hresult)


class _Context:
    """A PC/SC resource-manager context (``SCardEstablishContext``)."""

    def __init__(self) -> None:
        hr, self.handle = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if hr != scard.SCARD_S_SUCCESS:
            raise error_for(hr, "cannot reach the PC/SC service (is pcscd running?)")
        self._resolved: dict[ReaderSpec, str] = {}

    def resolve(self, spec: ReaderSpec) -> str:
        """:func:`resolve_reader` over this context's readers, once per ``spec`` for the
        context's life (a context a station keeps, :class:`PcscReader`, is dropped when its
        reader or pcscd goes away)."""
        if spec not in self._resolved:
            self._resolved[spec] = resolve_reader(spec, self.readers())
        return self._resolved[spec]

    def readers(self) -> list[str]:
        hr, names = scard.SCardListReaders(self.handle, [])
        if hr == scard.SCARD_E_NO_READERS_AVAILABLE:
            return []
        if hr != scard.SCARD_S_SUCCESS:
            raise error_for(hr, "cannot list readers")
        return [str(n) for n in names]

    def state(
        self, reader: str, current: int = scard.SCARD_STATE_UNAWARE, timeout_ms: int = 0
    ) -> tuple[int, bytes]:
        """(event state, ATR) of ``reader``; waits up to ``timeout_ms`` for a change."""
        hr, states = scard.SCardGetStatusChange(self.handle, timeout_ms, [(reader, current)])
        if hr == scard.SCARD_E_TIMEOUT:
            return current, b""
        if hr != scard.SCARD_S_SUCCESS:
            raise error_for(hr, f"cannot read the state of reader {reader!r}")
        _, event, atr = states[0]
        return int(event), bytes(atr)

    def release(self) -> None:
        scard.SCardReleaseContext(self.handle)


def resolve_reader(spec: ReaderSpec, names: list[str]) -> str:
    """Pick one reader — the one rule of every command that takes ``--reader``:

    1. an ``int``, or a string of decimal digits (``"0"``, ``" 1 "``), is an index into
       ``names`` (pcscd's order) — never a pattern, though ``"0"`` occurs in most names;
    2. otherwise a string equal to a reader's name is that reader;
    3. otherwise the string (or a compiled pattern) is a regular expression *searched*
       (``re.search``) in each name, and exactly one reader must match.

    Anything else — no readers, an empty string, an index out of range, an invalid
    pattern, no match or several — raises :class:`ReaderUnavailable` naming the readers,
    before anything is sent to a card."""
    if not names:
        raise ReaderUnavailable("没有读卡器 (no PC/SC readers are connected)")
    listing = f"读卡器 readers: {names}"
    if isinstance(spec, str):
        text = spec.strip()
        if not text:
            raise ReaderUnavailable("未指定读卡器 (the reader name is empty)")
        if text.isascii() and text.isdigit():
            spec = int(text)
    if isinstance(spec, int):
        if not 0 <= spec < len(names):
            raise ReaderUnavailable(f"没有该编号的读卡器 (no reader at index {spec}); {listing}")
        return names[spec]
    if isinstance(spec, str) and spec in names:
        return spec
    try:
        pattern = spec if isinstance(spec, re.Pattern) else re.compile(spec)
    except re.error:
        raise ReaderUnavailable(
            f"没有该名称的读卡器 (no reader named {spec!r} and not a valid pattern); {listing}"
        ) from None
    matches = [n for n in names if pattern.search(n)]
    if len(matches) != 1:
        what = (
            "没有匹配的读卡器 (no reader matches"
            if not matches
            else f"匹配多个读卡器 ({len(matches)} readers match"
        )
        raise ReaderUnavailable(f"{what} {pattern.pattern!r}); {listing}")
    return matches[0]


def list_readers() -> list[str]:
    """Names of the PC/SC readers; ReaderUnavailable when the service does not answer."""
    ctx = _Context()
    try:
        return ctx.readers()
    finally:
        ctx.release()


@dataclass(frozen=True)
class ReaderStatus:
    name: str
    card_present: bool
    atr: bytes
    mute: bool
    in_use: bool


def reader_statuses() -> list[ReaderStatus]:
    """Every PC/SC reader with card presence and ATR (for ``sscard readers``)."""
    ctx = _Context()
    try:
        out = []
        for name in ctx.readers():
            event, atr = ctx.state(name)
            present = bool(event & scard.SCARD_STATE_PRESENT)
            out.append(
                ReaderStatus(
                    name=name,
                    card_present=present,
                    atr=atr if present else b"",
                    mute=bool(event & scard.SCARD_STATE_MUTE),
                    in_use=bool(event & (scard.SCARD_STATE_INUSE | scard.SCARD_STATE_EXCLUSIVE)),
                )
            )
        return out
    finally:
        ctx.release()


def _wait(ctx: _Context, reader: ReaderSpec, timeout: float, want_card: bool) -> bytes:
    """Block in ``SCardGetStatusChange`` until the reader holds a card that answered reset
    (its ATR) or, ``want_card`` false, is empty: pcscd reports the change as soon as it
    knows — at once when it already does (``SCARD_STATE_UNAWARE`` asks for the state as it
    stands), else when its presence polling of a reader without events (every ~400 ms:
    vpcd) or the reader's own event (a reader whose driver has a polling thread, e.g. CCID)
    tells it (docs/service.md "Card arrival")."""
    deadline = time.monotonic() + timeout
    name = ctx.resolve(reader)
    current = scard.SCARD_STATE_UNAWARE
    while True:
        event, atr = ctx.state(name, current, 200)
        present = bool(event & scard.SCARD_STATE_PRESENT)
        if want_card and present and atr and not event & scard.SCARD_STATE_MUTE:
            return atr
        if not want_card and event & scard.SCARD_STATE_EMPTY:
            return b""
        current = event & ~scard.SCARD_STATE_CHANGED
        if time.monotonic() > deadline:
            if want_card:
                raise NoCard(f"no card in {name!r} after {timeout:.1f} s")
            raise ReaderUnavailable(f"the card is still in {name!r} after {timeout:.1f} s")


def _waited(reader: ReaderSpec, timeout: float, want_card: bool) -> bytes:
    """:func:`_wait` on a context of its own."""
    ctx = _Context()
    try:
        return _wait(ctx, reader, timeout, want_card)
    finally:
        ctx.release()


def wait_for_card(reader: ReaderSpec, timeout: float = 10.0) -> bytes:
    """Wait until a card that answered reset is in ``reader``; return its ATR."""
    return _waited(reader, timeout, want_card=True)


def wait_for_removal(reader: ReaderSpec, timeout: float = 10.0) -> None:
    """Wait until ``reader`` is empty (pcscd notices a removal within about 400 ms)."""
    _waited(reader, timeout, want_card=False)


class PcscReader:
    """One reader held by a long-lived program — a station's contact reader: one PC/SC
    context and the reader's name resolved once, for every wait and connection of every job,
    instead of a context established, its readers listed and released around each (round
    trips to pcscd: issue 14, "a station without fixed costs"). An error that is not the
    card's (pcscd restarted, the reader gone) drops the context; the next call establishes
    a new one. ``with PcscReader(spec) as reader:``; nothing is opened before the first
    call, so an absent reader or pcscd is reported where it is used, as with the
    functions above."""

    def __init__(self, spec: ReaderSpec) -> None:
        self.spec = spec
        self._ctx: _Context | None = None

    @contextmanager
    def _context(self) -> Iterator[_Context]:
        if self._ctx is None:
            self._ctx = _Context()
        try:
            yield self._ctx
        except (NoCard, CardMute, CardRemoved, CardReset):
            raise  # the card's state, not the context's
        except TransportError:
            self.close()
            raise

    def wait_for_card(self, timeout: float = 10.0) -> bytes:
        """:func:`wait_for_card` on the kept context."""
        with self._context() as ctx:
            return _wait(ctx, self.spec, timeout, want_card=True)

    def wait_for_removal(self, timeout: float = 10.0) -> None:
        """:func:`wait_for_removal` on the kept context."""
        with self._context() as ctx:
            _wait(ctx, self.spec, timeout, want_card=False)

    def connect(self) -> PcscTransport:
        """A :class:`PcscTransport` (exclusive, T=0 or T=1) to the card, connected, on the
        kept context (its ``disconnect`` leaves the context to this reader)."""
        with self._context() as ctx:
            transport = PcscTransport(self.spec, context=ctx)
            transport.connect()
            return transport

    def close(self) -> None:
        if self._ctx is not None:
            self._ctx.release()
            self._ctx = None

    def __enter__(self) -> PcscReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PcscTransport(Transport):
    """A connection to the card in one PC/SC reader."""

    def __init__(
        self,
        reader: ReaderSpec = 0,
        *,
        exclusive: bool = True,
        protocol: ProtocolChoice = "any",
        t0_handling: bool = True,
        max_get_response: int = DEFAULT_MAX_GET_RESPONSE,
        context: _Context | None = None,
    ) -> None:
        """``context``: a PC/SC context to borrow (:meth:`PcscReader.connect`), left
        established at :meth:`disconnect`; by default the transport has its own."""
        super().__init__(t0_handling=t0_handling, max_get_response=max_get_response)
        self.reader_spec = reader
        self.exclusive = exclusive
        self.protocol = protocol
        self.reader: str | None = None
        self._ctx = context
        self._own_context = context is None
        self._card: Any = None
        self._active_protocol = 0
        self._atr = b""

    @property
    def _share(self) -> int:
        share: int = scard.SCARD_SHARE_EXCLUSIVE if self.exclusive else scard.SCARD_SHARE_SHARED
        return share

    @property
    def active_protocol(self) -> str:
        """``"T0"`` or ``"T1"`` once connected."""
        return "T1" if self._active_protocol == scard.SCARD_PROTOCOL_T1 else "T0"

    def connect(self) -> None:
        if self._ctx is None:
            self._ctx = _Context()
        self.reader = self._ctx.resolve(self.reader_spec)
        hr, card, proto = scard.SCardConnect(
            self._ctx.handle, self.reader, self._share, _PROTOCOLS[self.protocol]
        )
        if hr == scard.SCARD_E_PROTO_MISMATCH and not self._atr_is_valid():
            raise CardMute(
                f"the card in {self.reader!r} answered reset with an invalid ATR", hresult=hr
            )
        if hr != scard.SCARD_S_SUCCESS:
            raise error_for(hr, f"cannot connect to the card in {self.reader!r}")
        self._card, self._active_protocol = card, int(proto)
        self._atr = self._read_atr()
        self.sessions += 1

    def _atr_is_valid(self) -> bool:
        assert self._ctx is not None and self.reader is not None
        _, atr = self._ctx.state(self.reader)
        try:
            Atr.parse(atr)
        except MalformedAtr:
            return False
        return True

    def _read_atr(self) -> bytes:
        hr, _reader, _state, _proto, atr = scard.SCardStatus(self._card)
        if hr != scard.SCARD_S_SUCCESS:
            raise error_for(hr, f"cannot read the card status in {self.reader!r}")
        return bytes(atr)

    def disconnect(self) -> None:
        if self._card is not None:
            scard.SCardDisconnect(self._card, scard.SCARD_LEAVE_CARD)
            self._card = None
        if self._ctx is not None and self._own_context:
            self._ctx.release()
            self._ctx = None

    def reconnect(self, *, reset: bool = True) -> None:
        if self._card is None:
            self.connect()
            return
        init = scard.SCARD_RESET_CARD if reset else scard.SCARD_LEAVE_CARD
        hr, proto = scard.SCardReconnect(self._card, self._share, _PROTOCOLS[self.protocol], init)
        if hr != scard.SCARD_S_SUCCESS:
            # A pulled-and-reinserted card needs a fresh connection.
            scard.SCardDisconnect(self._card, scard.SCARD_LEAVE_CARD)
            self._card = None
            self.connect()
            return
        self._active_protocol = int(proto)
        self._atr = self._read_atr()
        self.sessions += 1

    @property
    def atr(self) -> bytes:
        return self._atr

    def _exchange(self, raw: bytes) -> bytes:
        if self._card is None:
            raise NoCard("not connected to a card")
        hr, response = scard.SCardTransmit(self._card, self._active_protocol, list(raw))
        if hr == scard.SCARD_S_SUCCESS and len(response) >= 2:
            return bytes(response)
        if hr in _DIRECT:
            raise error_for(hr, f"exchange with the card in {self.reader!r} failed")
        raise self._diagnose_failure(hr)

    def _diagnose_failure(self, hr: int) -> TransportError:
        """A torn exchange: watch the reader until it says whether the card left."""
        assert self._ctx is not None and self.reader is not None
        what = "no valid response" if hr == scard.SCARD_S_SUCCESS else pcsc_message(hr)
        deadline = time.monotonic() + SETTLE_SECONDS
        current = scard.SCARD_STATE_UNAWARE
        while True:
            try:
                event, atr = self._ctx.state(self.reader, current, 100)
            except TransportError as exc:
                return exc
            if event & scard.SCARD_STATE_EMPTY:
                return CardRemoved(
                    f"card removed from {self.reader!r} during a command ({what}); "
                    "the command's outcome is unknown",
                    hresult=hr,
                )
            if event & scard.SCARD_STATE_PRESENT and atr and atr != self._atr:
                return CardRemoved(
                    f"the card in {self.reader!r} was swapped during a command ({what})",
                    hresult=hr,
                )
            if event & scard.SCARD_STATE_MUTE:
                return CardMute(f"the card in {self.reader!r} is mute ({what})", hresult=hr)
            if time.monotonic() > deadline:
                return CardMute(
                    f"the card in {self.reader!r} gave {what} and is still present",
                    hresult=hr,
                )
            current = event & ~scard.SCARD_STATE_CHANGED
