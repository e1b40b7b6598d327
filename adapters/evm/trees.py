"""The ledger's two snapshot trees, built from plain data.

- events: one leaf per record, (uint256 seq, bytes32 recordHash), in seq order;
- balances: one leaf per account, (address account, uint256 balance), values in
  account-id order so the same balances always dump the same way.

A uint256 cannot hold a negative balance, so the treasury (whose balance is minus the
total supply) cannot be a row as it stands; the caller leaves it out and the signed
header's totalSupply carries it. Any negative balance is refused here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from stakeledger.adapters.evm.addresses import account_address_bytes
from stakeledger.adapters.evm.merkle import BALANCES_LEAF_ENCODING, EVENTS_LEAF_ENCODING, StandardMerkleTree
from stakeledger.adapters.evm.records import EventRecord


def events_tree(records: Iterable[EventRecord]) -> StandardMerkleTree:
    return StandardMerkleTree.of(((record.seq, record.record_hash()) for record in records), EVENTS_LEAF_ENCODING)


def balances_tree(balances_units: Mapping[str, int]) -> StandardMerkleTree:
    """Balances in base units, keyed by account id."""
    negative = sorted(account_id for account_id, units in balances_units.items() if units < 0)
    if negative:
        raise ValueError(
            f"balances must be non-negative for a uint256 row: {negative}; "
            "leave the treasury out, the header's totalSupply stands for it"
        )
    rows = [(account_address_bytes(account_id), balances_units[account_id]) for account_id in sorted(balances_units)]
    return StandardMerkleTree.of(rows, BALANCES_LEAF_ENCODING)
