"""keccak256, the one hash of the export: records, the chain, both trees and the addresses.

``safe-pysha3`` hashes in C behind a hashlib-style object, about three times faster per
call than eth_hash's pycryptodome backend, whose Python wrapper builds ctypes buffers on
every call; an export of a million records hashes about four million times. Without it,
eth_hash's keccak is used. Both give the same digest (tests/evm/test_export_parallel.py).
"""

from __future__ import annotations

try:
    from sha3 import keccak_256 as _keccak_256
except ImportError:  # pragma: no cover - the dependency is declared; this keeps a bare install working
    from eth_hash.auto import keccak
else:

    def keccak(data: bytes | bytearray | memoryview) -> bytes:
        """keccak256 of ``data`` (the Ethereum hash, not NIST SHA3-256)."""
        return _keccak_256(data).digest()


__all__ = ["keccak"]


def checksum_address(address: bytes) -> str:
    """EIP-55 text of a 20-byte address: lowercase hex, each letter upper-cased where the
    matching hex digit of keccak256(the lowercase hex) is 8 or more. What eth_utils'
    to_checksum_address gives for 20 bytes, without its normalising of every input form
    (a tree of 100,000 balance rows writes 100,000 addresses)."""
    if not isinstance(address, (bytes, bytearray)) or len(address) != 20:
        raise ValueError(f"an address is 20 bytes, not {address!r}")
    digits = address.hex()
    mask = keccak(digits.encode("ascii")).hex()
    return "0x" + "".join(
        digit.upper() if digit > "9" and mask[index] >= "8" else digit for index, digit in enumerate(digits)
    )
