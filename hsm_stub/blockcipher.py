"""Block ciphers through ``cryptography``: DES and 3DES (FIPS 46-3 / NIST SP 800-67; single
DES as 3DES with K1 = K2 = K3, two-key 3DES as K1 K2 K1) and SM4 (GB/T 32907-2016), in ECB and
CBC without padding. The only place in the project that builds a cipher object.
"""

from __future__ import annotations

from typing import Literal

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import BlockCipherAlgorithm, Cipher, modes
from cryptography.hazmat.primitives.ciphers.algorithms import SM4

from hsm_stub.errors import BadInput

Algorithm = Literal["DES", "3DES", "SM4"]


def _algorithm(name: Algorithm, key: bytes) -> BlockCipherAlgorithm:
    if name == "SM4":
        if len(key) != 16:
            raise BadInput(f"SM4 keys are 16 bytes, got {len(key)}")
        return SM4(key)
    if len(key) == 8:
        return TripleDES(key * 3)
    if len(key) == 16:
        return TripleDES(key + key[:8])
    if len(key) == 24:
        return TripleDES(key)
    raise BadInput(f"DES/3DES keys are 8, 16 or 24 bytes, got {len(key)}")


def block_size(name: Algorithm) -> int:
    return 16 if name == "SM4" else 8


def _check_blocks(name: Algorithm, data: bytes) -> None:
    if len(data) % block_size(name):
        raise BadInput(f"{name} data must be whole {block_size(name)}-byte blocks")


def ecb_encrypt(name: Algorithm, key: bytes, data: bytes) -> bytes:
    _check_blocks(name, data)
    enc = Cipher(_algorithm(name, key), modes.ECB()).encryptor()
    return enc.update(data) + enc.finalize()


def ecb_decrypt(name: Algorithm, key: bytes, data: bytes) -> bytes:
    _check_blocks(name, data)
    dec = Cipher(_algorithm(name, key), modes.ECB()).decryptor()
    return dec.update(data) + dec.finalize()


def cbc_encrypt(name: Algorithm, key: bytes, data: bytes, iv: bytes | None = None) -> bytes:
    _check_blocks(name, data)
    iv = iv if iv is not None else bytes(block_size(name))
    enc = Cipher(_algorithm(name, key), modes.CBC(iv)).encryptor()
    return enc.update(data) + enc.finalize()


def cbc_decrypt(name: Algorithm, key: bytes, data: bytes, iv: bytes | None = None) -> bytes:
    _check_blocks(name, data)
    iv = iv if iv is not None else bytes(block_size(name))
    dec = Cipher(_algorithm(name, key), modes.CBC(iv)).decryptor()
    return dec.update(data) + dec.finalize()
