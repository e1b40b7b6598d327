"""Deterministic 20-byte addresses for ledger accounts.

An account id such as ``agent:alice``, ``treasury``, ``pool:ART-1`` or
``escrow:bounty:<id>`` maps to the last 20 bytes of

    keccak256(b"stakeledger:account:" + account_id.encode("utf-8"))

the way Ethereum derives an address from the last 20 bytes of a hash. The prefix keeps
these addresses apart from any other use of keccak256 over the same text. The id is
hashed exactly as given: ``agent:Alice`` and ``agent:alice`` are different accounts.
Nobody holds a private key for these addresses; they only name rows in the balances
tree, and the export ships the id → address mapping so a reader can go back.
"""

from __future__ import annotations

from collections.abc import Iterable

from eth_utils import to_checksum_address

from stakeledger.adapters.evm.hashing import keccak

ACCOUNT_ADDRESS_PREFIX = b"stakeledger:account:"

# Ids are short names; anything longer is a bug upstream, not an account.
ACCOUNT_ID_LENGTH_MAX = 256


class AddressCollisionError(ValueError):
    """Two account ids map to the same address (astronomically unlikely, but checked)."""


def account_address_bytes(account_id: str) -> bytes:
    """The account's 20-byte address."""
    _check_account_id(account_id)
    return keccak(ACCOUNT_ADDRESS_PREFIX + account_id.encode("utf-8"))[-20:]


def account_address(account_id: str) -> str:
    """The account's address as EIP-55 checksummed hex."""
    return to_checksum_address(account_address_bytes(account_id))


def address_map(account_ids: Iterable[str]) -> dict[str, str]:
    """id → checksummed address for every account, in id order, for the export manifest."""
    mapping: dict[str, str] = {}
    owners: dict[str, str] = {}
    for account_id in sorted(set(account_ids)):
        address = account_address(account_id)
        if address in owners:
            raise AddressCollisionError(f"{account_id!r} and {owners[address]!r} share {address}")
        owners[address] = account_id
        mapping[account_id] = address
    return mapping


def _check_account_id(account_id: str) -> None:
    if not isinstance(account_id, str):
        raise TypeError(f"an account id must be a str, not {type(account_id).__name__}")
    if not account_id or account_id != account_id.strip():
        raise ValueError(f"an account id must be non-empty without surrounding spaces: {account_id!r}")
    if len(account_id) > ACCOUNT_ID_LENGTH_MAX:
        raise ValueError(f"an account id is at most {ACCOUNT_ID_LENGTH_MAX} characters")
