"""Merkle leaf values: checking them, ABI-encoding them, and their JSON form.

The JSON form is what ``@openzeppelin/merkle-tree`` dumps and loads: integers as
decimal strings (a JavaScript number loses precision above 2**53), addresses as
20-byte 0x-hex (written EIP-55 checksummed; the npm package accepts either case),
fixed bytes and dynamic bytes as full-length lowercase 0x-hex, booleans as JSON
booleans and strings as themselves.

In Python a value is held in one native form per type: int, 20-byte bytes, bytes,
bool or str. Every row is ABI-encoded by eth_abi.

Supported leaf types: uint<N>, int<N>, address, bool, bytes<N>, bytes, string.
Arrays and tuples are not needed by the ledger's trees and are refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import is_checksum_address

from stakeledger.adapters.evm.hashing import checksum_address


class LeafValueError(ValueError):
    """A leaf value does not fit its declared ABI type."""


@dataclass(frozen=True)
class LeafCodec:
    """How one ABI type is checked, encoded and written as JSON."""

    abi_type: str
    native: Callable[[Any], Any]  # JSON or native form -> native form; raises LeafValueError
    to_json: Callable[[Any], Any]  # native -> JSON form


@dataclass(frozen=True)
class RowCodec:
    """The codecs of a whole leaf encoding, e.g. ("address", "uint256")."""

    leaf_encoding: tuple[str, ...]
    codecs: tuple[LeafCodec, ...]

    def native(self, row: Sequence[Any]) -> tuple:
        if isinstance(row, (str, bytes)) or not isinstance(row, Sequence):
            raise LeafValueError(f"a leaf value is a sequence of {len(self.codecs)} items, not {row!r}")
        if len(row) != len(self.codecs):
            raise LeafValueError(f"a leaf value has {len(self.codecs)} items, got {len(row)}: {row!r}")
        return tuple(codec.native(item) for codec, item in zip(self.codecs, row))

    def encode(self, row: tuple) -> bytes:
        """abi.encode of a native row. A row of static types only (every tree the ledger
        writes) is the concatenation of its fields' encodings, made by eth_abi's field
        encoders looked up once: a tree of a million leaves encodes a million rows."""
        encoders = _static_encoders(self.leaf_encoding)
        if encoders is None or len(row) != len(encoders):
            return abi_encode(self.leaf_encoding, row)
        return b"".join([encoder(value) for encoder, value in zip(encoders, row)])

    def to_json(self, row: tuple) -> list:
        return [codec.to_json(item) for codec, item in zip(self.codecs, row)]


@lru_cache(maxsize=64)
def _static_encoders(leaf_encoding: tuple[str, ...]) -> tuple[Any, ...] | None:
    """eth_abi's encoder of each type, when none is dynamic (else None: eth_abi lays it out)."""
    from eth_abi.abi import default_codec

    encoders = tuple(default_codec._registry.get_encoder(abi_type) for abi_type in leaf_encoding)
    if any(getattr(encoder, "is_dynamic", False) for encoder in encoders):
        return None
    return encoders


@lru_cache(maxsize=64)
def row_codec(leaf_encoding: tuple[str, ...]) -> RowCodec:
    if not leaf_encoding:
        raise LeafValueError("a leaf encoding names at least one type")
    return RowCodec(tuple(leaf_encoding), tuple(_codec(abi_type) for abi_type in leaf_encoding))


_INTEGER = re.compile(r"(u?)int([1-9][0-9]{0,2})?")
_FIXED_BYTES = re.compile(r"bytes([1-9]|[12][0-9]|3[0-2])")
_DECIMAL = re.compile(r"-?(0|[1-9][0-9]*)")
_HEX = re.compile(r"0x([0-9a-fA-F]{2})*")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def _codec(abi_type: str) -> LeafCodec:
    if match := _INTEGER.fullmatch(abi_type):
        bits = int(match.group(2) or 256)
        if bits % 8 or bits > 256:
            raise LeafValueError(f"unsupported leaf type {abi_type!r}")
        if match.group(1):
            return _integer_codec(abi_type, 0, 2**bits - 1)
        return _integer_codec(abi_type, -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    if abi_type == "address":
        return LeafCodec(abi_type, _native_address, checksum_address)
    if abi_type == "bool":
        return LeafCodec(abi_type, _native_bool, lambda value: value)
    if match := _FIXED_BYTES.fullmatch(abi_type):
        length = int(match.group(1))
        return LeafCodec(
            abi_type, lambda value: _native_bytes(abi_type, value, length), lambda value: "0x" + value.hex()
        )
    if abi_type == "bytes":
        return LeafCodec(abi_type, lambda value: _native_bytes(abi_type, value, None), lambda value: "0x" + value.hex())
    if abi_type == "string":
        return LeafCodec(abi_type, _native_string, lambda value: value)
    raise LeafValueError(f"unsupported leaf type {abi_type!r}")


def _integer_codec(abi_type: str, minimum: int, maximum: int) -> LeafCodec:
    def native(value: Any) -> int:
        # JSON numbers are accepted on the way in, but only canonical decimal text:
        # "007" or "0x7" would dump back differently from how they were loaded.
        if isinstance(value, str) and _DECIMAL.fullmatch(value) and value != "-0":
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise LeafValueError(f"{abi_type} takes an int or a decimal string, not {value!r}")
        if not minimum <= value <= maximum:
            raise LeafValueError(f"{value} is out of range for {abi_type}")
        return int(value)

    return LeafCodec(abi_type, native, str)


def _native_address(value: Any) -> bytes:
    if isinstance(value, bytes) and len(value) == 20:
        return value
    if isinstance(value, str) and _ADDRESS.fullmatch(value):
        digits = value[2:]
        # Mixed case claims an EIP-55 checksum, so hold it to one; one case claims nothing.
        if digits != digits.lower() and digits != digits.upper() and not is_checksum_address(value):
            raise LeafValueError(f"address {value} has a wrong EIP-55 checksum")
        return bytes.fromhex(digits)
    raise LeafValueError(f"address takes 20 bytes or 0x + 40 hex digits, not {value!r}")


def _native_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise LeafValueError(f"bool takes true or false, not {value!r}")
    return value


def _native_bytes(abi_type: str, value: Any, length: int | None) -> bytes:
    if isinstance(value, str) and _HEX.fullmatch(value):
        value = bytes.fromhex(value[2:])
    if not isinstance(value, bytes):
        raise LeafValueError(f"{abi_type} takes bytes or 0x-hex, not {value!r}")
    # Exact length only: a shorter value would be zero-padded and read back differently.
    if length is not None and len(value) != length:
        raise LeafValueError(f"{abi_type} takes exactly {length} bytes, got {len(value)}")
    return value


def _native_string(value: Any) -> str:
    if not isinstance(value, str):
        raise LeafValueError(f"string takes a str, not {value!r}")
    return value
