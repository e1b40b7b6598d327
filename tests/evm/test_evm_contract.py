"""A Vyper contract (run locally by titanoboa on py-evm) checks exported data on chain."""

from __future__ import annotations

import dataclasses

import boa
import pytest
from eth_utils import to_checksum_address

from stakeledger.adapters.evm import (
    Eip712Domain,
    SnapshotHeader,
    account_address,
    balances_tree,
    chain_records,
    domain_separator,
    events_tree,
    sign_header,
)
from tests.evm.conftest import CONTRACT_PATH
from tests.evm.factories import raw_events

PRIVATE_KEY_HEX = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"

BALANCES = {f"agent:{index}": index * 10**18 + 7 for index in range(11)} | {"agent:max": 2**256 - 1}


@pytest.fixture(scope="module")
def contract():
    return boa.load(str(CONTRACT_PATH))


def _row(tree, index: int) -> tuple[str, int]:
    # titanoboa takes addresses as hex text; the tree holds them as 20 raw bytes.
    address, balance = tree.at(index)
    return to_checksum_address(address), balance


def _proof_bytes(proof: list[str]) -> list[bytes]:
    return [bytes.fromhex(node[2:]) for node in proof]


def test_verify_balance_when_proof_is_real_then_contract_accepts(contract) -> None:
    tree = balances_tree(BALANCES)
    for index in range(len(tree)):
        address, balance = _row(tree, index)
        assert contract.verify_balance(tree.root_bytes, address, balance, _proof_bytes(tree.get_proof(index)))


def test_verify_balance_when_balance_is_wrong_then_contract_rejects(contract) -> None:
    tree = balances_tree(BALANCES)
    index = tree.index_of((account_address("agent:3"), BALANCES["agent:3"]))
    proof = _proof_bytes(tree.get_proof(index))
    address, balance = _row(tree, index)
    assert contract.verify_balance(tree.root_bytes, address, balance, proof)
    assert not contract.verify_balance(tree.root_bytes, address, balance + 1, proof)
    assert not contract.verify_balance(tree.root_bytes, account_address("agent:4"), balance, proof)


def test_verify_balance_when_a_proof_element_is_wrong_then_contract_rejects(contract) -> None:
    tree = balances_tree(BALANCES)
    address, balance = _row(tree, 5)
    proof = _proof_bytes(tree.get_proof(5))
    for position in range(len(proof)):
        tampered = list(proof)
        tampered[position] = bytes([proof[position][0] ^ 0x80]) + proof[position][1:]
        assert not contract.verify_balance(tree.root_bytes, address, balance, tampered)


def test_decode_record_when_given_an_exported_record_then_fields_match_python(contract) -> None:
    records = list(chain_records(raw_events(4)))
    record = records[3]
    decoded = contract.decode_record(record.encode())
    assert decoded.seq == record.seq == 4
    assert decoded.prevHash == record.prev_hash == records[2].record_hash()
    assert decoded.originatorId == record.originator_id.bytes
    assert decoded.originatorVersion == record.originator_version
    assert decoded.topic == record.topic
    assert decoded.timestampMicros == record.timestamp_micros
    assert str(decoded.account).lower() == "0x" + record.account.hex()
    assert (decoded.credit, decoded.debit) == (record.credit, record.debit)
    assert decoded.payload == record.payload
    assert contract.record_hash(record.encode()) == record.record_hash()


def test_decode_record_when_amounts_are_uint256_max_then_contract_reads_them(contract) -> None:
    (record,) = chain_records(raw_events(1))
    record = dataclasses.replace(record, credit=2**256 - 1, debit=2**256 - 1)
    decoded = contract.decode_record(record.encode())
    assert (decoded.credit, decoded.debit) == (2**256 - 1, 2**256 - 1)


def test_verify_event_when_record_is_in_the_events_tree_then_contract_accepts_and_rejects_altered(contract) -> None:
    records = list(chain_records(raw_events(9)))
    tree = events_tree(records)
    for index, record in enumerate(records):
        assert contract.verify_event(tree.root_bytes, record.encode(), _proof_bytes(tree.get_proof(index)))
    altered = dataclasses.replace(records[4], debit=records[4].debit + 1)
    assert not contract.verify_event(tree.root_bytes, altered.encode(), _proof_bytes(tree.get_proof(4)))


def test_header_signer_when_header_is_signed_for_this_contract_then_contract_recovers_the_signer(contract) -> None:
    domain = Eip712Domain(chain_id=contract.chain_id(), verifying_contract=str(contract.address))
    assert contract.domain_separator() == domain_separator(domain)
    header = SnapshotHeader(b"\x07" * 32, 9, b"\x01" * 32, b"\x02" * 32, 10**24)
    signature, signer = sign_header(header, domain, PRIVATE_KEY_HEX)
    fields = (header.snapshot_id, header.last_seq, header.events_root, header.balances_root, header.total_supply)
    assert contract.header_signer(*fields, bytes.fromhex(signature[2:])) == signer
    altered = fields[:4] + (header.total_supply + 1,)
    assert contract.header_signer(*altered, bytes.fromhex(signature[2:])) != signer
