"""The ``SecurityModule`` interface: what the card application needs from the keys, never a
key (the GlobalPlatformPro ``GPCardKeys`` boundary). Three backends implement it —
:class:`hsm_stub.local.LocalSecurityModule` (in-process, opens the keystore),
:class:`hsm_stub.client.TcpSecurityModule` (the ``sscard hsm serve`` host protocol) and
:class:`hsm_stub.psam.PsamSecurityModule` (a PSAM card in a reader) — and give byte-identical
results for the same inputs.

``label`` names a *root* key (``mk``, ``update``, ``read``, ``irk``, ``internal``, ``pin``);
the per-card key is derived inside the module from ``card_factors`` (docs/chip-application.md
§4). ``audit`` is the registry's audit-chain key (:meth:`SecurityModule.audit_mac`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self

from hsm_stub.cryptograms import CardFactors

AUDIT_KEY_LABEL = "audit"  # the registry's audit-chain key (usage ``audit-mac``)


class SecurityModule(ABC):
    @abstractmethod
    def external_auth(
        self, label: str, card_factors: CardFactors, challenge: bytes, auth_factor: bytes
    ) -> bytes:
        """``E ‖ A``, the data of EXTERNAL AUTHENTICATE (16 bytes with 3DES)."""

    @abstractmethod
    def command_mac(
        self, label: str, card_factors: CardFactors, challenge: bytes, data: bytes
    ) -> bytes:
        """4-byte MAC of an 84-class command; ``data`` = header with Lc counting the MAC,
        then the command data."""

    @abstractmethod
    def pin_reset_block(
        self, label: str, card_factors: CardFactors, challenge: bytes, pin: str
    ) -> bytes:
        """The data field of PIN RESET: encrypted PIN block ‖ MAC."""

    @abstractmethod
    def internal_auth(self, label: str, card_factors: CardFactors, data: bytes) -> bytes:
        """What a genuine card answers to INTERNAL AUTHENTICATE ``00 88 00 00 Lc data``:
        ``data`` (1 or 2 cipher blocks of the terminal's random) enciphered ECB under the
        card's internal-authentication key (docs/chip-application.md §4, [ours]). The
        terminal compares it with the card's answer (:mod:`sscard.authenticity`)."""

    @abstractmethod
    def card_id_mac(self, label: str, sn: bytes, data12: bytes) -> bytes:
        """4-byte MAC that completes the 卡识别码."""

    @abstractmethod
    def kcv(self, label: str) -> bytes:
        """The root key's check value (3 bytes)."""

    @abstractmethod
    def audit_mac(self, data: bytes, label: str = AUDIT_KEY_LABEL) -> bytes:
        """HMAC-SHA256 (RFC 2104) of ``data`` under the key ``label`` of usage ``audit-mac``:
        it seals the registry's audit chain and its checkpoints (docs/service.md "Audit"), so
        whoever can edit the database but not use this key cannot forge them."""

    def close(self) -> None:  # noqa: B027 - a no-op by default, backends override
        """Release the backend's resources."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
