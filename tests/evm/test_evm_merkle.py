"""StandardMerkleTree: layout, proofs, dump and load (no Node.js needed here)."""

from __future__ import annotations

import copy
import json

import pytest
from eth_abi import encode as abi_encode
from hypothesis import given, settings
from hypothesis import strategies as st

from stakeledger.adapters.evm import (
    BALANCES_LEAF_ENCODING,
    EVENTS_LEAF_ENCODING,
    InvalidTreeError,
    LeafValueError,
    StandardMerkleTree,
    balances_tree,
    chain_records,
    events_tree,
    verify,
)
from stakeledger.adapters.evm.abi_values import row_codec
from tests.evm.factories import raw_events

# The example in the @openzeppelin/merkle-tree README, with the tree it documents.
README_VALUES = [
    ["0x1111111111111111111111111111111111111111", "5000000000000000000"],
    ["0x2222222222222222222222222222222222222222", "2500000000000000000"],
]
README_TREE = [
    "0xd4dee0beab2d53f2cc83e567171bd2820e49898130a22622b10ead383e90bd77",
    "0xeb02c421cfa48976e66dfb29120745909ea3a0f843456c263cf8f1253483e283",
    "0xb92c48e9d7abe27fd8dfd6b5dfdbfb1c9a463f80c712b66f3a5180a090cccafc",
]

events_rows = st.lists(
    st.tuples(st.integers(0, 2**256 - 1), st.binary(min_size=32, max_size=32)), min_size=1, max_size=40
)


def test_of_when_given_the_readme_example_then_builds_the_documented_tree() -> None:
    tree = StandardMerkleTree.of(README_VALUES, BALANCES_LEAF_ENCODING)
    assert tree.dump()["tree"] == README_TREE
    assert tree.root == README_TREE[0]
    assert tree.get_proof(0) == [README_TREE[2]]
    assert [entry["treeIndex"] for entry in tree.dump()["values"]] == [1, 2]


@settings(max_examples=60, deadline=None)
@given(events_rows)
def test_get_proof_when_tree_has_1_to_40_leaves_then_every_proof_verifies(rows: list) -> None:
    tree = StandardMerkleTree.of(rows, EVENTS_LEAF_ENCODING)
    for index, row in enumerate(rows):
        assert verify(tree.root, EVENTS_LEAF_ENCODING, row, tree.get_proof(index))
        assert StandardMerkleTree.verify(tree.root_bytes, EVENTS_LEAF_ENCODING, row, tree.get_proof(index))


@settings(max_examples=60, deadline=None)
@given(events_rows, st.data())
def test_verify_when_value_or_proof_is_tampered_then_returns_false(rows: list, data: st.DataObject) -> None:
    tree = StandardMerkleTree.of(rows, EVENTS_LEAF_ENCODING)
    index = data.draw(st.integers(0, len(rows) - 1))
    seq, record_hash = rows[index]
    proof = tree.get_proof(index)
    tampered_value = ((seq + 1) % 2**256, record_hash)
    if tampered_value not in rows:
        assert not verify(tree.root, EVENTS_LEAF_ENCODING, tampered_value, proof)
    if proof:
        position = data.draw(st.integers(0, len(proof) - 1))
        node = bytearray(bytes.fromhex(proof[position][2:]))
        node[data.draw(st.integers(0, 31))] ^= 1 << data.draw(st.integers(0, 7))
        tampered_proof = proof[:position] + ["0x" + node.hex()] + proof[position + 1 :]
        assert not verify(tree.root, EVENTS_LEAF_ENCODING, rows[index], tampered_proof)
    else:
        # A one-leaf tree's root is the leaf, so the only tampering left is an extra node.
        assert not verify(tree.root, EVENTS_LEAF_ENCODING, rows[index], ["0x" + "00" * 32])


@settings(max_examples=40, deadline=None)
@given(events_rows)
def test_load_when_given_a_json_round_trip_of_dump_then_equals_the_original(rows: list) -> None:
    tree = StandardMerkleTree.of(rows, EVENTS_LEAF_ENCODING)
    dump = tree.dump()
    loaded = StandardMerkleTree.load(json.loads(json.dumps(dump)))
    assert loaded.dump() == dump
    assert loaded.root == tree.root


def test_dump_when_built_then_has_sorted_leaves_at_the_end_in_reverse() -> None:
    rows = [(seq, bytes([seq]) * 32) for seq in range(1, 8)]
    tree = StandardMerkleTree.of(rows, EVENTS_LEAF_ENCODING)
    nodes = tree.dump()["tree"]
    leaves = [tree.leaf_hash(row) for row in rows]
    assert len(nodes) == 2 * len(rows) - 1
    assert nodes[len(rows) - 1 :] == ["0x" + leaf.hex() for leaf in sorted(leaves, reverse=True)]


def test_dump_when_values_are_large_ints_then_writes_decimal_strings() -> None:
    tree = StandardMerkleTree.of([(2**256 - 1, b"\xab" * 32)], EVENTS_LEAF_ENCODING)
    (entry,) = tree.dump()["values"]
    assert entry == {"value": [str(2**256 - 1), "0x" + "ab" * 32], "treeIndex": 0}
    assert tree.root == "0x" + tree.leaf_hash((2**256 - 1, b"\xab" * 32)).hex()


def test_load_when_a_leaf_value_is_changed_then_raises_invalid_tree() -> None:
    dump = StandardMerkleTree.of(README_VALUES, BALANCES_LEAF_ENCODING).dump()
    dump["values"][0]["value"][1] = "5000000000000000001"
    with pytest.raises(InvalidTreeError, match="does not hash"):
        StandardMerkleTree.load(dump)


def test_load_when_an_internal_node_is_changed_then_raises_invalid_tree() -> None:
    rows = [(seq, bytes([seq]) * 32) for seq in range(1, 6)]
    dump = StandardMerkleTree.of(rows, EVENTS_LEAF_ENCODING).dump()
    dump["tree"][1] = "0x" + "00" * 32
    with pytest.raises(InvalidTreeError, match="children"):
        StandardMerkleTree.load(dump)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.update(format="standard-v2"), "format"),
        (lambda d: d["tree"].pop(), "odd"),
        (lambda d: d["values"].pop(), "values"),
        (lambda d: d["values"][1].update(treeIndex=d["values"][0]["treeIndex"]), "treeIndex"),
        (lambda d: d["values"][0].update(treeIndex=0), "treeIndex"),
        (lambda d: d["tree"].__setitem__(0, d["tree"][0].upper().replace("0X", "0x")), "lowercase"),
        (lambda d: d["values"][0]["value"].__setitem__(1, "0x10"), "decimal"),
    ],
)
def test_load_when_dump_is_malformed_then_raises_invalid_tree(mutate, message: str) -> None:
    dump = copy.deepcopy(
        StandardMerkleTree.of(README_VALUES + [["0x" + "33" * 20, "7"]], BALANCES_LEAF_ENCODING).dump()
    )
    mutate(dump)
    with pytest.raises(InvalidTreeError, match=message):
        StandardMerkleTree.load(dump)


def test_of_when_given_no_values_then_raises_invalid_tree() -> None:
    with pytest.raises(InvalidTreeError):
        StandardMerkleTree.of([], EVENTS_LEAF_ENCODING)


@pytest.mark.parametrize(
    "row",
    [
        (-1, b"\x00" * 32),
        (2**256, b"\x00" * 32),
        (1, b"\x00" * 31),
        (True, b"\x00" * 32),
        (1,),
    ],
)
def test_of_when_a_value_does_not_fit_the_encoding_then_raises_leaf_value_error(row: tuple) -> None:
    with pytest.raises(LeafValueError):
        StandardMerkleTree.of([row], EVENTS_LEAF_ENCODING)


def test_of_when_address_has_a_bad_checksum_then_raises_leaf_value_error() -> None:
    good = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
    StandardMerkleTree.of([[good, "1"]], BALANCES_LEAF_ENCODING)
    StandardMerkleTree.of([[good.lower(), "1"]], BALANCES_LEAF_ENCODING)
    with pytest.raises(LeafValueError, match="checksum"):
        StandardMerkleTree.of([[good.replace("a", "A", 1), "1"]], BALANCES_LEAF_ENCODING)


LEAF_TYPES = ("uint8", "int256", "address", "bool", "bytes16", "bytes", "string", "uint64")


@settings(max_examples=80, deadline=None)
@given(
    st.tuples(
        st.integers(0, 255),
        st.integers(-(2**255), 2**255 - 1),
        st.binary(min_size=20, max_size=20),
        st.booleans(),
        st.binary(min_size=16, max_size=16),
        st.binary(max_size=70),
        st.text(max_size=30),
        st.integers(0, 2**64 - 1),
    )
)
def test_leaf_encoding_when_types_are_mixed_then_equals_eth_abi_encode(row: tuple) -> None:
    codec = row_codec(LEAF_TYPES)
    native = codec.native(row)
    assert codec.encode(native) == abi_encode(list(LEAF_TYPES), list(row))
    static_types = ["uint8", "int256", "address", "bool", "bytes16"]
    assert row_codec(tuple(static_types)).encode(native[:5]) == abi_encode(static_types, list(row[:5]))
    assert codec.native(codec.to_json(native)) == native


def test_index_of_when_value_is_in_the_tree_then_returns_its_index() -> None:
    tree = StandardMerkleTree.of(README_VALUES, BALANCES_LEAF_ENCODING)
    assert tree.index_of(README_VALUES[1]) == 1
    with pytest.raises(KeyError):
        tree.index_of(["0x" + "33" * 20, "1"])


def test_events_tree_when_built_from_records_then_leaves_are_seq_and_record_hash() -> None:
    records = list(chain_records(raw_events(9)))
    tree = events_tree(records)
    assert tree.leaf_encoding == ("uint256", "bytes32")
    for index, record in enumerate(records):
        assert tree.at(index) == (record.seq, record.record_hash())
        assert verify(tree.root, EVENTS_LEAF_ENCODING, [str(record.seq), record.record_hash()], tree.get_proof(index))


def test_balances_tree_when_a_balance_is_negative_then_raises() -> None:
    with pytest.raises(ValueError, match="treasury"):
        balances_tree({"treasury": -10, "agent:alice": 10})


def test_balances_tree_when_input_order_differs_then_dump_is_the_same() -> None:
    balances = {"agent:alice": 7, "pool:ART-1": 3, "agent:bob": 0}
    reordered = dict(reversed(list(balances.items())))
    assert balances_tree(balances).dump() == balances_tree(reordered).dump()


@pytest.mark.parametrize("leaf_type", ["uint7", "uint264", "int0", "address[]", "(uint256,bool)", "bytes33"])
def test_of_when_leaf_type_is_unsupported_then_raises_leaf_value_error(leaf_type: str) -> None:
    with pytest.raises(LeafValueError, match="unsupported"):
        StandardMerkleTree.of([[1]], [leaf_type])


def test_verify_when_a_proof_node_is_not_32_bytes_then_raises_value_error() -> None:
    tree = StandardMerkleTree.of(README_VALUES, BALANCES_LEAF_ENCODING)
    with pytest.raises(ValueError):
        verify(tree.root, BALANCES_LEAF_ENCODING, README_VALUES[0], ["0x1234"])
