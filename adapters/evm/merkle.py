"""OpenZeppelin's StandardMerkleTree (format "standard-v1"), byte-for-byte.

Same hashes, layout and dump as ``@openzeppelin/merkle-tree`` (checked against 1.0.8):

- leaf = keccak256(keccak256(abi.encode(leafEncoding, value))); hashing twice keeps a
  leaf from ever equalling a 64-byte internal node preimage;
- node = keccak256(a ‖ b) with the pair sorted as unsigned 256-bit numbers, so a proof
  needs no left/right flags (this is what OpenZeppelin's ``MerkleProof`` checks);
- n leaves are sorted by hash and stored in a flat array of 2n − 1 nodes, the
  complete binary tree with children of i at 2i + 1 and 2i + 2, root at 0, and the
  k-th smallest leaf at index 2n − 2 − k (leaves at the end, in reverse);
- ``values`` keep the caller's order; each records the ``treeIndex`` of its leaf, so a
  value's index in ``values`` is what ``get_proof`` takes.

Loading is stricter than the npm package, never looser: every tree node must be
lowercase 0x + 64 hex digits (the npm package compares leaves as strings, so other
spellings fail there too), and ``values`` must cover every leaf exactly once.

The ledger's two trees use these leaf encodings:
EVENTS_LEAF_ENCODING = ("uint256", "bytes32"), a leaf per record: (seq, recordHash);
BALANCES_LEAF_ENCODING = ("address", "uint256"), a leaf per account: (address, balance).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from stakeledger.adapters.evm.abi_values import LeafValueError, RowCodec, row_codec
from stakeledger.adapters.evm.hashing import keccak

FORMAT = "standard-v1"
EVENTS_LEAF_ENCODING: tuple[str, ...] = ("uint256", "bytes32")
BALANCES_LEAF_ENCODING: tuple[str, ...] = ("address", "uint256")

# A limit on everything: 2**24 leaves is far beyond a ledger snapshot and keeps a
# hostile dump from asking for an unbounded build.
LEAVES_MAX = 2**24

_NODE_HEX = re.compile(r"0x[0-9a-f]{64}")


class InvalidTreeError(ValueError):
    """A dump or tree does not hold together (format, layout or a hash)."""


class StandardMerkleTree:
    """A built or loaded tree. Make one with ``of`` or ``load``."""

    def __init__(
        self, tree: list[bytes], values: list[tuple], tree_indices: list[int], leaf_encoding: tuple[str, ...]
    ) -> None:
        self._tree = tree
        self._values = values
        self._tree_indices = tree_indices
        self._codec: RowCodec = row_codec(tuple(leaf_encoding))
        self._index_by_leaf: dict[bytes, int] | None = None

    @classmethod
    def of(cls, values: Iterable[Sequence[Any]], leaf_encoding: Sequence[str]) -> StandardMerkleTree:
        """Build a tree over the values, leaves sorted by hash as the npm package does."""
        codec = row_codec(tuple(leaf_encoding))
        rows = [codec.native(row) for row in values]
        count = len(rows)
        if count == 0:
            raise InvalidTreeError("a tree needs at least one value")
        if count > LEAVES_MAX:
            raise InvalidTreeError(f"a tree holds at most {LEAVES_MAX} values")
        return cls._build(rows, [_leaf_hash(codec, row) for row in rows], codec)

    @classmethod
    def of_record_hashes(cls, record_hashes: Sequence[bytes]) -> StandardMerkleTree:
        """The events tree: ``of`` over (seq, recordHash) for seq 1, 2, ..., each leaf hashed
        from the ABI encoding written out (a uint256 word, then the 32 bytes), the same bytes
        eth_abi gives for these two static types, without a codec call per leaf."""
        codec = row_codec(EVENTS_LEAF_ENCODING)
        if not record_hashes:
            raise InvalidTreeError("a tree needs at least one value")
        if len(record_hashes) > LEAVES_MAX:
            raise InvalidTreeError(f"a tree holds at most {LEAVES_MAX} values")
        if any(not isinstance(h, bytes) or len(h) != 32 for h in record_hashes):
            raise InvalidTreeError("a record hash is 32 bytes")
        rows = list(enumerate(record_hashes, start=1))
        leaf_hashes = [keccak(keccak(seq.to_bytes(32, "big") + h)) for seq, h in rows]
        return cls._build(rows, leaf_hashes, codec)

    @classmethod
    def _build(cls, rows: list[tuple], leaf_hashes: list[bytes], codec: RowCodec) -> StandardMerkleTree:
        count = len(rows)
        # sorted() is stable, as is JavaScript's sort, so equal leaves keep the same order.
        order = sorted(range(count), key=leaf_hashes.__getitem__)
        size = 2 * count - 1
        tree: list[bytes] = [b""] * (count - 1) + [leaf_hashes[j] for j in reversed(order)]
        tree_indices = [0] * count
        for rank, value_index in enumerate(order):
            tree_indices[value_index] = size - 1 - rank
        _fill_internal_nodes(tree, count)
        return cls(tree, rows, tree_indices, codec.leaf_encoding)

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> StandardMerkleTree:
        """Read a dump (ours or the npm package's) and validate every hash."""
        if not isinstance(data, Mapping):
            raise InvalidTreeError(f"a dump is a JSON object, not {type(data).__name__}")
        if data.get("format") != FORMAT:
            raise InvalidTreeError(f"unknown format {data.get('format')!r}, expected {FORMAT!r}")
        leaf_encoding = data.get("leafEncoding")
        if not isinstance(leaf_encoding, list) or not all(isinstance(t, str) for t in leaf_encoding):
            raise InvalidTreeError("leafEncoding must be a list of ABI type names")
        nodes, entries = data.get("tree"), data.get("values")
        if not isinstance(nodes, list) or not isinstance(entries, list):
            raise InvalidTreeError("tree and values must be lists")
        if len(nodes) > 2 * LEAVES_MAX - 1:
            raise InvalidTreeError("tree is larger than the leaf limit allows")
        try:
            codec = row_codec(tuple(leaf_encoding))
            tree = [_node_bytes(node) for node in nodes]
            rows: list[tuple] = []
            tree_indices: list[int] = []
            for entry in entries:
                if not isinstance(entry, Mapping) or set(entry) != {"value", "treeIndex"}:
                    raise InvalidTreeError(f"a values entry has exactly value and treeIndex: {entry!r}")
                tree_index = entry["treeIndex"]
                if isinstance(tree_index, bool) or not isinstance(tree_index, int):
                    raise InvalidTreeError(f"treeIndex must be an integer: {tree_index!r}")
                rows.append(codec.native(entry["value"]))
                tree_indices.append(tree_index)
        except LeafValueError as error:
            raise InvalidTreeError(str(error)) from error
        loaded = cls(tree, rows, tree_indices, codec.leaf_encoding)
        loaded.validate()
        return loaded

    def dump(self) -> dict[str, Any]:
        """The JSON-ready dump, key for key what the npm package's dump() returns."""
        return {
            "format": FORMAT,
            "leafEncoding": list(self._codec.leaf_encoding),
            "tree": ["0x" + node.hex() for node in self._tree],
            "values": [
                {"value": self._codec.to_json(row), "treeIndex": tree_index}
                for row, tree_index in zip(self._values, self._tree_indices)
            ],
        }

    @property
    def root(self) -> str:
        return "0x" + self._tree[0].hex()

    @property
    def root_bytes(self) -> bytes:
        return self._tree[0]

    @property
    def leaf_encoding(self) -> tuple[str, ...]:
        return self._codec.leaf_encoding

    def __len__(self) -> int:
        return len(self._values)

    def at(self, index: int) -> tuple:
        """The value at ``index`` in native form (int, bytes, bool, str)."""
        return self._values[index]

    def entries(self) -> Iterator[tuple[int, tuple]]:
        return enumerate(self._values)

    def leaf_hash(self, value: Sequence[Any]) -> bytes:
        return _leaf_hash(self._codec, self._codec.native(value))

    def index_of(self, value: Sequence[Any]) -> int:
        """The index in ``values`` of a value, for get_proof."""
        if self._index_by_leaf is None:
            self._index_by_leaf = {self._tree[t]: i for i, t in reversed(list(enumerate(self._tree_indices)))}
        try:
            return self._index_by_leaf[self.leaf_hash(value)]
        except KeyError:
            raise KeyError(f"{list(value)!r} is not in the tree") from None

    def get_proof(self, index: int) -> list[str]:
        """Sibling hashes from the leaf of values[index] up to the root, as 0x-hex."""
        if not 0 <= index < len(self._values):
            raise IndexError(f"value index {index} is out of range 0..{len(self._values) - 1}")
        node = self._tree_indices[index]
        proof: list[str] = []
        while node > 0:
            # The left child of a parent has an odd index, its sibling the next one.
            sibling = node + 1 if node % 2 else node - 1
            proof.append("0x" + self._tree[sibling].hex())
            node = (node - 1) // 2
        return proof

    def validate(self) -> None:
        """Check layout, every value's leaf and every internal node; raise InvalidTreeError."""
        tree, size = self._tree, len(self._tree)
        # A complete tree of n leaves has 2n - 1 nodes: an even size would leave a node
        # with a left child and no right one, which the npm package rejects too.
        if size == 0 or size % 2 == 0:
            raise InvalidTreeError(f"a tree has an odd, non-zero number of nodes, not {size}")
        leaf_count = (size + 1) // 2
        if len(self._values) != leaf_count:
            raise InvalidTreeError(f"{leaf_count} leaves but {len(self._values)} values")
        first_leaf = leaf_count - 1
        seen: set[int] = set()
        for value_index, (row, tree_index) in enumerate(zip(self._values, self._tree_indices)):
            if not first_leaf <= tree_index < size or tree_index in seen:
                raise InvalidTreeError(f"values[{value_index}] has a bad or repeated treeIndex {tree_index}")
            seen.add(tree_index)
            if tree[tree_index] != _leaf_hash(self._codec, row):
                raise InvalidTreeError(f"values[{value_index}] does not hash to tree[{tree_index}]")
        for parent in range(first_leaf - 1, -1, -1):
            left, right = tree[2 * parent + 1], tree[2 * parent + 2]
            if tree[parent] != keccak(left + right if left <= right else right + left):
                raise InvalidTreeError(f"tree[{parent}] is not the hash of its children")

    @staticmethod
    def verify(
        root: str | bytes, leaf_encoding: Sequence[str], value: Sequence[Any], proof: Sequence[str | bytes]
    ) -> bool:
        return verify(root, leaf_encoding, value, proof)


def verify(root: str | bytes, leaf_encoding: Sequence[str], value: Sequence[Any], proof: Sequence[str | bytes]) -> bool:
    """Whether ``proof`` links ``value`` to ``root``, as OpenZeppelin's MerkleProof checks.

    Malformed input (a node that is not 32 bytes, a value that does not fit its type)
    raises ValueError; a well-formed proof that does not match returns False.
    """
    codec = row_codec(tuple(leaf_encoding))
    computed = _leaf_hash(codec, codec.native(value))
    for sibling in proof:
        sibling_bytes = _proof_node_bytes(sibling)
        computed = keccak(computed + sibling_bytes if computed <= sibling_bytes else sibling_bytes + computed)
    return computed == _proof_node_bytes(root)


def _leaf_hash(codec: RowCodec, row: tuple) -> bytes:
    return keccak(keccak(codec.encode(row)))


def _fill_internal_nodes(tree: list[bytes], leaf_count: int) -> None:
    # Bytes compare lexicographically, which for equal lengths is the unsigned
    # big-endian order the npm package and MerkleProof sort pairs by.
    for parent in range(leaf_count - 2, -1, -1):
        left, right = tree[2 * parent + 1], tree[2 * parent + 2]
        tree[parent] = keccak(left + right if left <= right else right + left)


def _node_bytes(node: Any) -> bytes:
    if not isinstance(node, str) or not _NODE_HEX.fullmatch(node):
        raise InvalidTreeError(f"a tree node is lowercase 0x + 64 hex digits, not {node!r}")
    return bytes.fromhex(node[2:])


def _proof_node_bytes(node: str | bytes) -> bytes:
    if isinstance(node, str) and re.fullmatch(r"0x[0-9a-fA-F]{64}", node):
        return bytes.fromhex(node[2:])
    if isinstance(node, bytes) and len(node) == 32:
        return node
    raise ValueError(f"a Merkle node is 32 bytes or 0x + 64 hex digits, not {node!r}")
