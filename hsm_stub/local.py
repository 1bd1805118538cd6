"""In-process backend: computes with keys from an opened :class:`Keystore`.

Opened by whoever holds the LMK it is unrestricted; :meth:`LocalSecurityModule.for_role`
gives the view a TCP client of that role gets (``ROLE_USAGES`` in :mod:`hsm_stub.keystore`).
"""

from __future__ import annotations

import hashlib
import hmac

from hsm_stub import cryptograms
from hsm_stub.cryptograms import CardFactors
from hsm_stub.keystore import Keystore, Operation
from hsm_stub.module import AUDIT_KEY_LABEL, SecurityModule
from hsm_stub.suites import CipherSuite


class LocalSecurityModule(SecurityModule):
    def __init__(self, keystore: Keystore, *, role: str | None = None) -> None:
        self.keystore = keystore
        self.role = role

    def for_role(self, role: str) -> LocalSecurityModule:
        """The same keystore, limited to the key usages ``role`` may invoke."""
        return LocalSecurityModule(self.keystore, role=role)

    def _root(self, label: str, operation: Operation) -> tuple[CipherSuite, bytes]:
        return self.keystore.use(label, operation, role=self.role)

    def _card_key(
        self, label: str, operation: Operation, factors: CardFactors
    ) -> tuple[CipherSuite, bytes]:
        """The suite and the per-card key derived from root ``label``, if its usage allows
        ``operation``."""
        suite, root = self._root(label, operation)
        return suite, cryptograms.derive_card_key(suite, root, factors)

    def external_auth(
        self, label: str, card_factors: CardFactors, challenge: bytes, auth_factor: bytes
    ) -> bytes:
        suite, card_key = self._card_key(label, "external-auth", card_factors)
        return cryptograms.external_auth_data(suite, card_key, challenge, auth_factor)

    def command_mac(
        self, label: str, card_factors: CardFactors, challenge: bytes, data: bytes
    ) -> bytes:
        suite, card_key = self._card_key(label, "command-mac", card_factors)
        return cryptograms.command_mac(suite, card_key, challenge, data)

    def pin_reset_block(
        self, label: str, card_factors: CardFactors, challenge: bytes, pin: str
    ) -> bytes:
        suite, card_key = self._card_key(label, "pin-reset", card_factors)
        return cryptograms.pin_reset_data(suite, card_key, challenge, pin)

    def internal_auth(self, label: str, card_factors: CardFactors, data: bytes) -> bytes:
        suite, card_key = self._card_key(label, "internal-auth", card_factors)
        return cryptograms.internal_auth_response(suite, card_key, data)

    def card_id_mac(self, label: str, sn: bytes, data12: bytes) -> bytes:
        suite, root = self._root(label, "card-id-mac")
        return cryptograms.card_id_mac(suite, root, sn, data12)

    def kcv(self, label: str) -> bytes:
        self._root(label, "kcv")
        return self.keystore.info(label).kcv

    def audit_mac(self, data: bytes, label: str = AUDIT_KEY_LABEL) -> bytes:
        _, key = self.keystore.use(label, "audit-mac")
        return hmac.new(key, data, hashlib.sha256).digest()
