"""The snapshot header as EIP-712 typed data: hash, sign and recover.

    SnapshotHeader(bytes32 snapshotId,uint64 lastSeq,bytes32 eventsRoot,
                   bytes32 balancesRoot,uint256 totalSupply)

signed under the domain (name, version, chainId, verifyingContract). The digest is
keccak256(0x19 0x01 ‖ domainSeparator ‖ hashStruct(header)), computed here from the
definitions with eth_abi and keccak256 so a contract can reproduce it field for field;
signing goes through eth_account's typed-data encoder, and the two are checked to agree
on every signature.

In the JSON typed data, uint64/uint256 message fields are decimal strings, because a
JavaScript number loses precision above 2**53; chainId stays a JSON number, the form
wallets compare with the active chain.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from eth_abi import encode as abi_encode

# eth_account imports py_ecc, whose package __init__ raises the interpreter's recursion
# limit to 100,000 for its own recursive field arithmetic. With that limit, json.loads of
# 200,000 nested brackets (a hostile manifest.json, batch file or request body) no longer
# raises RecursionError: it recurses until the C stack overflows and the process dies with
# SIGSEGV. Nothing of eth_account that this project calls needs the deep limit, so the
# limit the interpreter had is put back as soon as the import is done (py_ecc sets it once,
# at import; every later import of it is a cache hit). This module is the only place the
# project imports eth_account (the package __init__ imports it first), so the guard holds
# for every process that loads the EVM adapters.
_RECURSION_LIMIT = sys.getrecursionlimit()
try:
    from eth_account import Account
    from eth_account.messages import SignableMessage, encode_typed_data
finally:
    sys.setrecursionlimit(_RECURSION_LIMIT)
from eth_hash.auto import keccak  # noqa: E402
from eth_utils import is_checksum_address, is_hex_address, to_checksum_address  # noqa: E402

from stakeledger.adapters.evm.records import UINT64_MAX, UINT256_MAX  # noqa: E402

DOMAIN_FIELDS: tuple[tuple[str, str], ...] = (
    ("name", "string"),
    ("version", "string"),
    ("chainId", "uint256"),
    ("verifyingContract", "address"),
)
SNAPSHOT_HEADER_FIELDS: tuple[tuple[str, str], ...] = (
    ("snapshotId", "bytes32"),
    ("lastSeq", "uint64"),
    ("eventsRoot", "bytes32"),
    ("balancesRoot", "bytes32"),
    ("totalSupply", "uint256"),
)
PRIMARY_TYPE = "SnapshotHeader"


def _type_string(name: str, fields: tuple[tuple[str, str], ...]) -> str:
    return f"{name}(" + ",".join(f"{abi_type} {field}" for field, abi_type in fields) + ")"


DOMAIN_TYPE = _type_string("EIP712Domain", DOMAIN_FIELDS)
SNAPSHOT_HEADER_TYPE = _type_string(PRIMARY_TYPE, SNAPSHOT_HEADER_FIELDS)
DOMAIN_TYPEHASH = keccak(DOMAIN_TYPE.encode())
SNAPSHOT_HEADER_TYPEHASH = keccak(SNAPSHOT_HEADER_TYPE.encode())

ZERO_ADDRESS_HEX = "0x" + "00" * 20


class SignatureMismatchError(RuntimeError):
    """eth_account signed a different digest than this module computes (a bug, never input)."""


@dataclass(frozen=True)
class Eip712Domain:
    name: str = "stakeledger"
    version: str = "1"
    chain_id: int = 1
    verifying_contract: str = ZERO_ADDRESS_HEX

    def __post_init__(self) -> None:
        if (
            isinstance(self.chain_id, bool)
            or not isinstance(self.chain_id, int)
            or not 0 <= self.chain_id <= UINT256_MAX
        ):
            raise ValueError(f"chain_id must be a uint256, got {self.chain_id!r}")
        contract = self.verifying_contract
        if not isinstance(contract, str) or not is_hex_address(contract):
            raise ValueError(f"verifying_contract must be a 0x address, got {contract!r}")
        digits = contract[2:]
        # Mixed case claims an EIP-55 checksum, so hold it to one; one case claims nothing.
        if digits not in (digits.lower(), digits.upper()) and not is_checksum_address(contract):
            raise ValueError(f"verifying_contract has a wrong EIP-55 checksum: {contract}")
        object.__setattr__(self, "verifying_contract", to_checksum_address(contract))


@dataclass(frozen=True)
class SnapshotHeader:
    """Roots and ids are 32 bytes; a 0x-hex root (as StandardMerkleTree.root gives) is accepted."""

    snapshot_id: bytes
    last_seq: int
    events_root: bytes
    balances_root: bytes
    total_supply: int

    def __post_init__(self) -> None:
        for name in ("snapshot_id", "events_root", "balances_root"):
            object.__setattr__(self, name, _bytes32(name, getattr(self, name)))
        _check_uint("last_seq", self.last_seq, UINT64_MAX)
        _check_uint("total_supply", self.total_supply, UINT256_MAX)


def domain_separator(domain: Eip712Domain) -> bytes:
    return keccak(
        abi_encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [
                DOMAIN_TYPEHASH,
                keccak(domain.name.encode()),
                keccak(domain.version.encode()),
                domain.chain_id,
                domain.verifying_contract,
            ],
        )
    )


def hash_struct(header: SnapshotHeader) -> bytes:
    return keccak(
        abi_encode(
            ["bytes32", "bytes32", "uint64", "bytes32", "bytes32", "uint256"],
            [
                SNAPSHOT_HEADER_TYPEHASH,
                header.snapshot_id,
                header.last_seq,
                header.events_root,
                header.balances_root,
                header.total_supply,
            ],
        )
    )


def header_digest(header: SnapshotHeader, domain: Eip712Domain) -> bytes:
    """The 32-byte EIP-712 digest a signer signs and ecrecover takes."""
    return keccak(b"\x19\x01" + domain_separator(domain) + hash_struct(header))


def typed_data(header: SnapshotHeader, domain: Eip712Domain) -> dict[str, Any]:
    """The standard JSON typed-data structure (eth_signTypedData_v4)."""
    return {
        "types": {
            "EIP712Domain": [{"name": field, "type": abi_type} for field, abi_type in DOMAIN_FIELDS],
            PRIMARY_TYPE: [{"name": field, "type": abi_type} for field, abi_type in SNAPSHOT_HEADER_FIELDS],
        },
        "primaryType": PRIMARY_TYPE,
        "domain": {
            "name": domain.name,
            "version": domain.version,
            "chainId": domain.chain_id,
            "verifyingContract": domain.verifying_contract,
        },
        "message": {
            "snapshotId": "0x" + header.snapshot_id.hex(),
            "lastSeq": str(header.last_seq),
            "eventsRoot": "0x" + header.events_root.hex(),
            "balancesRoot": "0x" + header.balances_root.hex(),
            "totalSupply": str(header.total_supply),
        },
    }


def sign_header(header: SnapshotHeader, domain: Eip712Domain, private_key_hex: str) -> tuple[str, str]:
    """(65-byte r‖s‖v signature as 0x-hex, checksummed signer address)."""
    signed = Account.sign_message(encode_typed_data(full_message=typed_data(header, domain)), private_key_hex)
    # Two independent encoders must agree, or a contract rebuilding the digest from
    # these definitions would reject a signature that eth_account produced.
    if bytes(signed.message_hash) != header_digest(header, domain):
        raise SignatureMismatchError("eth_account's typed-data digest differs from header_digest")
    signer = signer_address(private_key_hex)
    return "0x" + bytes(signed.signature).hex(), signer


def signer_address(private_key_hex: str) -> str:
    """The checksummed address of a private key; ValueError for a key outside the curve order."""
    return Account.from_key(private_key_hex).address


def recover_signer(header: SnapshotHeader, domain: Eip712Domain, signature: str | bytes) -> str:
    """The checksummed address that signed this header under this domain."""
    # version 0x01 with (domainSeparator, hashStruct) is EIP-191's typed-data message, so
    # recovery runs over this module's own hashes through eth_account's public API.
    message = SignableMessage(b"\x01", domain_separator(domain), hash_struct(header))
    return Account.recover_message(message, signature=signature)


def _bytes32(name: str, value: bytes | str) -> bytes:
    if isinstance(value, str) and value.startswith("0x") and len(value) == 66:
        try:
            return bytes.fromhex(value[2:])
        except ValueError:
            pass
    if isinstance(value, bytes) and len(value) == 32:
        return value
    raise ValueError(f"{name} must be 32 bytes or 0x + 64 hex digits, got {value!r}")


def _check_uint(name: str, value: int, maximum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise ValueError(f"{name} must be an int within 0..{maximum}, got {value!r}")
