"""Our dumps against OpenZeppelin's own @openzeppelin/merkle-tree (run under Node.js).

These tests fail, never skip, when tools/ozverify/node_modules is missing:
`make test` installs it with `npm ci --prefix tools/ozverify`.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from stakeledger.adapters.evm import (
    StandardMerkleTree,
    balances_tree,
    chain_records,
    events_tree,
)
from tests.evm.conftest import BUILD_TREE_SCRIPT, VERIFY_SCRIPT, node_with_ozverify
from tests.evm.factories import ACCOUNT_IDS, raw_events

NODE_TIMEOUT_SECONDS = 60


def _run_verify(
    node: str,
    tmp_path: Path,
    tree: StandardMerkleTree,
    index: int,
    root: str | None = None,
    proof: list[str] | None = None,
) -> tuple[int, dict]:
    dump_path = tmp_path / "tree.json"
    dump_path.write_text(json.dumps(tree.dump()))
    proof_path = tmp_path / "proof.json"
    proof_path.write_text(json.dumps(tree.get_proof(index) if proof is None else proof))
    completed = subprocess.run(
        [
            node,
            str(VERIFY_SCRIPT),
            "--dump",
            str(dump_path),
            "--root",
            root or tree.root,
            "--index",
            str(index),
            "--proof",
            str(proof_path),
        ],
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT_SECONDS,
        check=False,
    )
    assert completed.stdout, f"verify.mjs printed nothing; stderr: {completed.stderr}"
    return completed.returncode, json.loads(completed.stdout)


def _npm_dump(node: str, tmp_path: Path, values: list, leaf_encoding: list[str]) -> dict:
    input_path = tmp_path / "values.json"
    input_path.write_text(json.dumps({"values": values, "leafEncoding": leaf_encoding}))
    completed = subprocess.run(
        [node, str(BUILD_TREE_SCRIPT), str(input_path)],
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT_SECONDS,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def _balances() -> dict[str, int]:
    balances = {account_id: (index + 1) * 10**18 for index, account_id in enumerate(ACCOUNT_IDS)}
    balances.pop("treasury")
    balances["agent:whale"] = 2**256 - 1
    return balances


def test_verify_script_when_given_our_balances_dump_then_root_and_proof_verify(tmp_path: Path) -> None:
    node = node_with_ozverify()
    tree = balances_tree(_balances())
    for index in range(len(tree)):
        code, result = _run_verify(node, tmp_path, tree, index)
        assert code == 0, result
        assert result["ok"] is True
        assert result["checks"]["suppliedProofEqualsDerived"] is True
        assert result["root"] == tree.root


def test_verify_script_when_given_our_events_dump_then_root_and_proof_verify(tmp_path: Path) -> None:
    node = node_with_ozverify()
    tree = events_tree(chain_records(raw_events(13)))
    code, result = _run_verify(node, tmp_path, tree, 6)
    assert code == 0, result
    assert result["checks"] == {
        "validate": True,
        "root": True,
        "derivedProofVerifies": True,
        "suppliedProofEqualsDerived": True,
        "suppliedProofVerifies": True,
    }
    assert result["value"] == tree.dump()["values"][6]["value"]


def test_verify_script_when_proof_is_tampered_then_exits_non_zero(tmp_path: Path) -> None:
    node = node_with_ozverify()
    tree = events_tree(chain_records(raw_events(13)))
    proof = tree.get_proof(2)
    proof[0] = "0x" + "00" * 32
    code, result = _run_verify(node, tmp_path, tree, 2, proof=proof)
    assert code == 1
    assert result["ok"] is False
    assert result["checks"]["suppliedProofVerifies"] is False


def test_verify_script_when_expected_root_is_wrong_then_exits_non_zero(tmp_path: Path) -> None:
    node = node_with_ozverify()
    tree = balances_tree(_balances())
    code, result = _run_verify(node, tmp_path, tree, 0, root="0x" + "11" * 32)
    assert code == 1
    assert result["checks"]["root"] is False


def test_dump_when_npm_builds_from_the_same_values_then_dumps_are_equal(tmp_path: Path) -> None:
    node = node_with_ozverify()
    for tree in (balances_tree(_balances()), events_tree(chain_records(raw_events(21)))):
        dump = tree.dump()
        values = [entry["value"] for entry in dump["values"]]
        assert _npm_dump(node, tmp_path, values, dump["leafEncoding"]) == dump


def test_load_when_npm_built_a_tree_with_lowercase_addresses_and_mixed_types_then_roots_match(tmp_path: Path) -> None:
    node = node_with_ozverify()
    leaf_encoding = ["address", "int256", "bool", "bytes16", "bytes", "string"]
    values = [
        [
            "0x" + f"{index:02x}" * 20,
            str(-(10**30) * index),
            index % 2 == 0,
            "0x" + "ef" * 16,
            "0x" + "01" * index,
            f"topic-{index}-ë",
        ]
        for index in range(1, 12)
    ]
    npm_dump = _npm_dump(node, tmp_path, values, leaf_encoding)
    loaded = StandardMerkleTree.load(npm_dump)
    ours = StandardMerkleTree.of(values, leaf_encoding)
    assert loaded.root == ours.root == npm_dump["tree"][0]
    assert ours.dump()["tree"] == npm_dump["tree"]
    for index in range(len(values)):
        assert loaded.get_proof(index) == ours.get_proof(index)
