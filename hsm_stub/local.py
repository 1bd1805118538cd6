"""In-process backend: computes with keys from an opened :class:`Keystore`."""

from __future__ import annotations

from hsm_stub import cryptograms
from hsm_stub.cryptograms import CardFactors
from hsm_stub.keystore import Keystore
from hsm_stub.module import SecurityModule


class LocalSecurityModule(SecurityModule):
    def __init__(self, keystore: Keystore) -> None:
        self.keystore = keystore

    def external_auth(
        self, label: str, card_factors: CardFactors, challenge: bytes, auth_factor: bytes
    ) -> bytes:
        suite, root = self.keystore.use(label, "external-auth")
        card_key = cryptograms.derive_card_key(suite, root, card_factors)
        return cryptograms.external_auth_data(suite, card_key, challenge, auth_factor)

    def command_mac(
        self, label: str, card_factors: CardFactors, challenge: bytes, data: bytes
    ) -> bytes:
        suite, root = self.keystore.use(label, "command-mac")
        card_key = cryptograms.derive_card_key(suite, root, card_factors)
        return cryptograms.command_mac(suite, card_key, challenge, data)

    def pin_reset_block(
        self, label: str, card_factors: CardFactors, challenge: bytes, pin: str
    ) -> bytes:
        suite, root = self.keystore.use(label, "pin-reset")
        card_key = cryptograms.derive_card_key(suite, root, card_factors)
        return cryptograms.pin_reset_data(suite, card_key, challenge, pin)

    def card_id_mac(self, label: str, sn: bytes, data12: bytes) -> bytes:
        suite, root = self.keystore.use(label, "card-id-mac")
        return cryptograms.card_id_mac(suite, root, sn, data12)

    def kcv(self, label: str) -> bytes:
        return self.keystore.info(label).kcv
