# pragma version 0.4.3
"""
@title Checks stakeledger export data on chain (test contract)
@notice Verifies balance and event-record Merkle proofs the way OpenZeppelin's
        MerkleProof does (sorted-pair keccak256, double-hashed leaves), decodes one
        ABI-encoded event record into its fields, and recovers the signer of an
        EIP-712 snapshot header bound to this contract and chain.
"""

# Bounds for the test: a topic is a short stable name, a payload a small JSON object.
MAX_TOPIC: constant(uint256) = 128
MAX_PAYLOAD: constant(uint256) = 2048
MAX_RECORD: constant(uint256) = 2720
MAX_PROOF: constant(uint256) = 32

DOMAIN_TYPEHASH: constant(bytes32) = keccak256(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
HEADER_TYPEHASH: constant(bytes32) = keccak256(
    "SnapshotHeader(bytes32 snapshotId,uint64 lastSeq,bytes32 eventsRoot,bytes32 balancesRoot,uint256 totalSupply)"
)
DOMAIN_NAME_HASH: constant(bytes32) = keccak256("stakeledger")
DOMAIN_VERSION_HASH: constant(bytes32) = keccak256("1")


struct EventRecord:
    seq: uint64
    prevHash: bytes32
    originatorId: bytes16
    originatorVersion: uint64
    topic: String[MAX_TOPIC]
    timestampMicros: uint64
    account: address
    credit: uint256
    debit: uint256
    payload: Bytes[MAX_PAYLOAD]


@internal
@pure
def _process_proof(leaf: bytes32, proof: DynArray[bytes32, MAX_PROOF]) -> bytes32:
    computed: bytes32 = leaf
    for sibling: bytes32 in proof:
        # Hash the pair in ascending order, so a proof needs no left/right flags.
        if convert(computed, uint256) < convert(sibling, uint256):
            computed = keccak256(concat(computed, sibling))
        else:
            computed = keccak256(concat(sibling, computed))
    return computed


@external
@pure
def verify_balance(root: bytes32, account: address, balance: uint256,
                   proof: DynArray[bytes32, MAX_PROOF]) -> bool:
    # Leaf of StandardMerkleTree with leaf encoding ["address", "uint256"].
    leaf: bytes32 = keccak256(keccak256(abi_encode(account, balance)))
    return self._process_proof(leaf, proof) == root


@external
@pure
def verify_event(root: bytes32, record: Bytes[MAX_RECORD],
                 proof: DynArray[bytes32, MAX_PROOF]) -> bool:
    # Leaf with leaf encoding ["uint256", "bytes32"]: (seq, keccak256(record)).
    decoded: EventRecord = abi_decode(record, EventRecord)
    seq: uint256 = convert(decoded.seq, uint256)
    leaf: bytes32 = keccak256(keccak256(abi_encode(seq, keccak256(record))))
    return self._process_proof(leaf, proof) == root


@external
@pure
def decode_record(record: Bytes[MAX_RECORD]) -> EventRecord:
    return abi_decode(record, EventRecord)


@external
@pure
def record_hash(record: Bytes[MAX_RECORD]) -> bytes32:
    return keccak256(record)


@external
@view
def domain_separator() -> bytes32:
    return keccak256(abi_encode(DOMAIN_TYPEHASH, DOMAIN_NAME_HASH, DOMAIN_VERSION_HASH, chain.id, self))


@external
@view
def header_signer(snapshot_id: bytes32, last_seq: uint64, events_root: bytes32,
                  balances_root: bytes32, total_supply: uint256, signature: Bytes[65]) -> address:
    domain: bytes32 = keccak256(
        abi_encode(DOMAIN_TYPEHASH, DOMAIN_NAME_HASH, DOMAIN_VERSION_HASH, chain.id, self)
    )
    struct_hash: bytes32 = keccak256(
        abi_encode(HEADER_TYPEHASH, snapshot_id, last_seq, events_root, balances_root, total_supply)
    )
    digest: bytes32 = keccak256(concat(x"1901", domain, struct_hash))
    r: bytes32 = extract32(signature, 0)
    s: bytes32 = extract32(signature, 32)
    v: uint256 = convert(slice(signature, 64, 1), uint256)
    return ecrecover(digest, v, r, s)


@external
@view
def chain_id() -> uint256:
    return chain.id
