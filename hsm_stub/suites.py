"""Cipher suites: the four primitives the 社保卡 key scheme is built from, for 3DES and SM4.

| primitive | 3DES suite (docs/chip-application.md §4) | SM4 suite ([ours], same shape, 16 B) |
|---|---|---|
| ``diversify(K, D)`` | ``3DES_K(D) ‖ 3DES_K(~D)`` (PBOC) | ``SM4_K(D ‖ ~D)`` |
| ``session_key(K, R)`` | ``3DES_K(R)``: an 8-byte single-DES key | ``SM4_K(R ‖ ~R)`` |
| ``encrypt(K, X)`` | ECB; DES when K is 8 bytes | SM4 ECB |
| ``mac(K, X)`` | 8-byte K: algorithm 1 (DES); 16-byte K: algorithm 3 | algorithm 1 (SM4) |

``D`` and ``R`` are 8 bytes in both suites (diversification factors and GET CHALLENGE).
The MAC follows from the key, so a session key (8 bytes) MACs with DES CBC-MAC and a card key
(16 bytes) with the retail MAC, as the public 社保 code does. KCV: the leftmost 3 bytes of the
encryption of a zero block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hsm_stub.blockcipher import Algorithm, ecb_decrypt, ecb_encrypt
from hsm_stub.errors import BadInput
from hsm_stub.mac import mac_algorithm1, mac_algorithm3, pad_method2

SuiteName = Literal["3DES", "SM4"]


_INVERTED = bytes(b ^ 0xFF for b in range(256))


def _invert(data: bytes) -> bytes:
    """~D: every bit flipped."""
    return data.translate(_INVERTED)


def _check8(what: str, data: bytes) -> None:
    if len(data) != 8:
        raise BadInput(f"{what} must be 8 bytes, got {len(data)}")


@dataclass(frozen=True)
class CipherSuite:
    name: SuiteName

    @property
    def block(self) -> int:
        return 16 if self.name == "SM4" else 8

    @property
    def cipher(self) -> Algorithm:
        return "SM4" if self.name == "SM4" else "3DES"

    def encrypt(self, key: bytes, data: bytes) -> bytes:
        """ECB encryption of whole blocks."""
        return ecb_encrypt(self.cipher, key, data)

    def decrypt(self, key: bytes, data: bytes) -> bytes:
        """ECB decryption of whole blocks (the card side of the PIN block)."""
        return ecb_decrypt(self.cipher, key, data)

    def diversify(self, key: bytes, factor: bytes) -> bytes:
        """One diversification step with an 8-byte factor: ``E_K(D ‖ ~D)`` in one ECB call.
        For 3DES that is the two blocks ``3DES_K(D) ‖ 3DES_K(~D)`` of the PBOC rule (ECB
        enciphers each block alone); for SM4 the one 16-byte block."""
        _check8("a diversification factor", factor)
        return self.encrypt(key, factor + _invert(factor))

    def session_key(self, key: bytes, challenge: bytes) -> bytes:
        """The session key for a card challenge R (8 bytes)."""
        _check8("the card challenge", challenge)
        if self.name == "SM4":
            return self.encrypt(key, challenge + _invert(challenge))
        return self.encrypt(key, challenge)

    def mac(self, key: bytes, data: bytes, iv: bytes | None = None) -> bytes:
        """Full-block MAC over ``data`` padded by method 2; the algorithm follows the key."""
        return self.mac_padded(key, pad_method2(data, self.block), iv)

    def mac_padded(self, key: bytes, padded: bytes, iv: bytes | None = None) -> bytes:
        """Full-block MAC over data the caller already padded (as a PSAM receives it)."""
        if self.name == "SM4":
            return mac_algorithm1("SM4", key, padded, iv)
        if len(key) == 8:
            return mac_algorithm1("DES", key, padded, iv)
        if len(key) == 16:
            return mac_algorithm3(key, padded, iv)
        raise BadInput("a 3DES MAC key must be 8 or 16 bytes (24-byte keys cannot MAC here)")

    def kcv(self, key: bytes) -> bytes:
        """Key check value: leftmost 3 bytes of E_K(0…0)."""
        return self.encrypt(key, bytes(self.block))[:3]


TDES = CipherSuite("3DES")
SM4_SUITE = CipherSuite("SM4")
SUITES: dict[str, CipherSuite] = {"3DES": TDES, "SM4": SM4_SUITE}


def suite_for(name: str) -> CipherSuite:
    try:
        return SUITES[name]
    except KeyError:
        raise BadInput(f"unknown algorithm {name!r}; known: {', '.join(SUITES)}") from None
