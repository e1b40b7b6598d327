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
