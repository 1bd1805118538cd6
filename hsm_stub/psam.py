"""PSAM backend: the street-office path, a PSAM card in a PC/SC reader computes what the
card center's security module computes (docs/chip-application.md §5).

Flow per operation: SELECT the PSAM application ``D15600000590`` (once per connection);
``BF DE <usage> <key id> Lc <factors card‖city‖province> [<R>]`` loads the key, diversifies
it and — when the card challenge R is given — makes the session key; ``80 FA 00 00 Lc <X>``
encrypts X (answer by GET RESPONSE under T=0), ``80 FA 05 00 Lc <IV> <padded data>`` MACs.
The usage byte is levels << 5 | key type (type 0 master, 1 maintenance, 3 PIN unblock,
6 MAC, 7 encrypt). The label → (type, key id) table is this project's PSAM profile [ours].
INTERNAL AUTHENTICATE's expected answer is the PSAM's ``80 FA 00`` encryption of the
terminal's random under the diversified ``internal`` key (no session key).
"""

from __future__ import annotations

from apdu.command import Command
from apdu.errors import TransportError
from apdu.status import StatusError
from apdu.transport import Transport
from hsm_stub.cryptograms import (
    MAC_LENGTH,
    PIN_RESET_HEADER,
    CardFactors,
    check_internal_auth_data,
    pin_block,
)
from hsm_stub.errors import BadInput, KeyUsageError, SecurityModuleUnavailable, UnknownKey
from hsm_stub.mac import pad_method2
from hsm_stub.module import AUDIT_KEY_LABEL, SecurityModule
from hsm_stub.suites import suite_for

PSAM_AID = bytes.fromhex("D15600000590")

# label → (key type, key id) in the PSAM
PSAM_KEYS: dict[str, tuple[int, int]] = {
    "mk": (0x00, 0x01),
    "update": (0x01, 0x04),
    "read": (0x01, 0x0A),
    "pin": (0x03, 0x01),
    "irk": (0x06, 0x01),
    "internal": (0x07, 0x01),
}


def usage_byte(levels: int, key_type: int) -> int:
    return (levels << 5) | key_type


class PsamSecurityModule(SecurityModule):
    """Drives a PSAM through an :class:`apdu.transport.Transport` (connected by the caller)."""

    def __init__(
        self, transport: Transport, *, algorithm: str = "3DES", owns_transport: bool = False
    ) -> None:
        self.transport = transport
        self.suite = suite_for(algorithm)
        self.owns_transport = owns_transport
        self._selected = False

    def close(self) -> None:
        if self.owns_transport:
            self.transport.disconnect()

    def _send(self, command: Command) -> bytes:
        try:
            return self.transport.send(command).data
        except TransportError as exc:
            self._selected = False
            raise SecurityModuleUnavailable(f"PSAM unavailable: {exc}") from None
        except StatusError as exc:
            if exc.sw in (0x6A88, 0x6A82):
                raise UnknownKey(f"the PSAM has no such key ({exc.sw:04X})") from None
            if exc.sw in (0x6985, 0x6982, 0x6983):
                raise KeyUsageError(f"the PSAM refused the key use ({exc.sw:04X})") from None
            raise BadInput(f"the PSAM refused the command: {exc}") from None

    def _select(self) -> None:
        if not self._selected:
            self._send(Command(0x00, 0xA4, 0x04, 0x00, PSAM_AID, le=256))
            self._selected = True

    def _key(self, label: str) -> tuple[int, int]:
        try:
            return PSAM_KEYS[label]
        except KeyError:
            raise UnknownKey(f"no PSAM key for label {label!r}") from None

    def _init(self, label: str, factors: list[bytes], challenge: bytes | None) -> None:
        self._select()
        key_type, key_id = self._key(label)
        data = b"".join(factors) + (challenge or b"")
        if challenge is not None and len(challenge) != 8:
            raise BadInput("the card challenge must be 8 bytes")
        self._send(Command(0xBF, 0xDE, usage_byte(len(factors), key_type), key_id, data))

    def _encrypt(self, data: bytes) -> bytes:
        return self._send(Command(0x80, 0xFA, 0x00, 0x00, data, le=256))

    def _mac(self, data: bytes) -> bytes:
        iv = bytes(self.suite.block)
        padded = pad_method2(data, self.suite.block)
        return self._send(Command(0x80, 0xFA, 0x05, 0x00, iv + padded, le=256))[:MAC_LENGTH]

    # ----------------------------------------------------------------- interface

    def external_auth(
        self, label: str, card_factors: CardFactors, challenge: bytes, auth_factor: bytes
    ) -> bytes:
        if len(auth_factor) != self.suite.block:
            raise BadInput(f"the authentication factor must be {self.suite.block} bytes")
        self._init(label, list(card_factors.chain()), challenge)
        return self._encrypt(auth_factor) + auth_factor

    def command_mac(
        self, label: str, card_factors: CardFactors, challenge: bytes, data: bytes
    ) -> bytes:
        self._init(label, list(card_factors.chain()), challenge)
        return self._mac(data)

    def pin_reset_block(
        self, label: str, card_factors: CardFactors, challenge: bytes, pin: str
    ) -> bytes:
        block = pin_block(self.suite, pin)
        self._init(label, list(card_factors.chain()), None)
        enc = self._encrypt(block)
        self._init(label, list(card_factors.chain()), challenge)
        lc = len(enc) + MAC_LENGTH
        return enc + self._mac(PIN_RESET_HEADER + bytes((lc,)) + enc)

    def internal_auth(self, label: str, card_factors: CardFactors, data: bytes) -> bytes:
        check_internal_auth_data(self.suite, data)
        self._init(label, list(card_factors.chain()), None)
        return self._encrypt(data)

    def card_id_mac(self, label: str, sn: bytes, data12: bytes) -> bytes:
        if len(data12) != 12:
            raise BadInput(f"the 卡识别码 MAC covers 12 bytes, got {len(data12)}")
        if len(sn) != 8:
            raise BadInput(f"a card serial number is 8 bytes, got {len(sn)}")
        self._init(label, [sn], None)
        return self._mac(data12)

    def audit_mac(self, data: bytes, label: str = AUDIT_KEY_LABEL) -> bytes:
        """A PSAM holds card keys only: the registry's audit key lives in the card center's
        security module (a street office names it as the station's ``audit_hsm``)."""
        raise KeyUsageError(
            "PSAM 不支持审计签名，请在工作站文件中设置 audit_hsm "
            "(a PSAM cannot MAC the audit chain: set audit_hsm in the station file)"
        )

    def kcv(self, label: str) -> bytes:
        self._select()
        key_type, key_id = self._key(label)
        return self._send(Command(0x00, 0xCA, key_type, key_id, le=256))[:3]
