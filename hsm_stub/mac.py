"""ISO/IEC 9797-1:2011 padding method 2 and MAC algorithms 1 and 3.

* Padding method 2: append ``80`` then ``00`` up to a whole block (always at least one byte).
* MAC algorithm 1: CBC-MAC under the whole key, IV zero unless given; output = last block.
* MAC algorithm 3 ("retail MAC", ANSI X9.19): CBC with single DES under the left key half,
  then the last block decrypted under the right half and encrypted again under the left.
"""

from __future__ import annotations

from hsm_stub.blockcipher import Algorithm, block_size, cbc_encrypt, ecb_decrypt, ecb_encrypt
from hsm_stub.errors import BadInput


def pad_method2(data: bytes, block: int = 8) -> bytes:
    """ISO/IEC 9797-1 padding method 2."""
    padded = data + b"\x80"
    return padded + bytes(-len(padded) % block)


def unpad_method2(data: bytes, block: int = 8) -> bytes:
    """Inverse of :func:`pad_method2`; BadInput when the padding is not there."""
    if not data or len(data) % block:
        raise BadInput("padded data must be whole blocks")
    stripped = data.rstrip(b"\x00")
    if not stripped.endswith(b"\x80") or len(data) - len(stripped) >= block:
        raise BadInput("ISO/IEC 9797-1 method-2 padding not found")
    return stripped[:-1]


def mac_algorithm1(name: Algorithm, key: bytes, padded: bytes, iv: bytes | None = None) -> bytes:
    """MAC algorithm 1 over already padded data: the last CBC block."""
    if not padded:
        raise BadInput("nothing to MAC")
    return cbc_encrypt(name, key, padded, iv)[-block_size(name) :]


def mac_algorithm3(key: bytes, padded: bytes, iv: bytes | None = None) -> bytes:
    """MAC algorithm 3 (retail MAC) with a 16-byte DES key pair, over padded data."""
    if len(key) != 16:
        raise BadInput(f"MAC algorithm 3 needs a 16-byte double-length key, got {len(key)}")
    left, right = key[:8], key[8:]
    h = mac_algorithm1("DES", left, padded, iv)
    return ecb_encrypt("DES", left, ecb_decrypt("DES", right, h))
