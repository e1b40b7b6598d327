"""EVM-compatible export: ABI event records in a hash chain, OpenZeppelin Merkle trees
over records and balances, deterministic account addresses and the EIP-712 snapshot header.

Pure functions over plain data: nothing here reads a database or a clock.
"""

from stakeledger.adapters.evm.abi_values import LeafValueError
from stakeledger.adapters.evm.addresses import (
    ACCOUNT_ADDRESS_PREFIX,
    AddressCollisionError,
    account_address,
    account_address_bytes,
    address_map,
)
from stakeledger.adapters.evm.canonical import canonical_json, is_canonical_json, timestamp_micros
from stakeledger.adapters.evm.chain import ChainError, ChainErrorCode, RawEvent, chain_records, verify_chain
from stakeledger.adapters.evm.eip712 import (
    Eip712Domain,
    SnapshotHeader,
    domain_separator,
    hash_struct,
    header_digest,
    recover_signer,
    sign_header,
    typed_data,
)
from stakeledger.adapters.evm.merkle import (
    BALANCES_LEAF_ENCODING,
    EVENTS_LEAF_ENCODING,
    InvalidTreeError,
    StandardMerkleTree,
    verify,
)
from stakeledger.adapters.evm.records import (
    EVENT_RECORD_ABI_TYPE,
    EVENT_RECORD_FIELDS,
    ZERO_ADDRESS,
    ZERO_HASH,
    EventRecord,
    RecordDecodeError,
    decode_record,
)
from stakeledger.adapters.evm.trees import balances_tree, events_tree

__all__ = [
    "ACCOUNT_ADDRESS_PREFIX",
    "BALANCES_LEAF_ENCODING",
    "EVENTS_LEAF_ENCODING",
    "EVENT_RECORD_ABI_TYPE",
    "EVENT_RECORD_FIELDS",
    "ZERO_ADDRESS",
    "ZERO_HASH",
    "AddressCollisionError",
    "ChainError",
    "ChainErrorCode",
    "Eip712Domain",
    "EventRecord",
    "InvalidTreeError",
    "LeafValueError",
    "RawEvent",
    "RecordDecodeError",
    "SnapshotHeader",
    "StandardMerkleTree",
    "account_address",
    "account_address_bytes",
    "address_map",
    "balances_tree",
    "canonical_json",
    "chain_records",
    "decode_record",
    "domain_separator",
    "events_tree",
    "hash_struct",
    "header_digest",
    "is_canonical_json",
    "recover_signer",
    "sign_header",
    "timestamp_micros",
    "typed_data",
    "verify",
    "verify_chain",
]
