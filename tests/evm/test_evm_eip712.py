"""The EIP-712 snapshot header: digest, typed data, signing and recovery."""

from __future__ import annotations

import dataclasses
import json

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_hash.auto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from stakeledger.adapters.evm import (
    Eip712Domain,
    SnapshotHeader,
    header_digest,
    recover_signer,
    sign_header,
    typed_data,
)

# A fixed, well-known test key (Hardhat/Anvil account #0); never holds value.
PRIVATE_KEY_HEX = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
SIGNER_ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"

HEADER = SnapshotHeader(
    snapshot_id=b"\x01" * 32,
    last_seq=42,
    events_root="0x" + "ab" * 32,
    balances_root=b"\xcd" * 32,
    total_supply=10**24,
)

headers = st.builds(
    SnapshotHeader,
    snapshot_id=st.binary(min_size=32, max_size=32),
    last_seq=st.integers(0, 2**64 - 1),
    events_root=st.binary(min_size=32, max_size=32),
    balances_root=st.binary(min_size=32, max_size=32),
    total_supply=st.one_of(st.just(2**256 - 1), st.integers(0, 2**256 - 1)),
)
domains = st.builds(
    Eip712Domain,
    name=st.text(max_size=20),
    version=st.sampled_from(["1", "2", "1.0.0"]),
    chain_id=st.integers(0, 2**64),
    verifying_contract=st.binary(min_size=20, max_size=20).map(lambda raw: "0x" + raw.hex()),
)


@settings(max_examples=60, deadline=None)
@given(headers, domains)
def test_header_digest_when_computed_by_hand_then_equals_eth_account_typed_data_hash(
    header: SnapshotHeader, domain: Eip712Domain
) -> None:
    signable = encode_typed_data(full_message=json.loads(json.dumps(typed_data(header, domain))))
    eth_account_digest = keccak(b"\x19" + signable.version + signable.header + signable.body)
    assert header_digest(header, domain) == eth_account_digest


def test_sign_header_when_signed_then_recovers_the_eip712_signer() -> None:
    domain = Eip712Domain()
    signature, signer = sign_header(HEADER, domain, PRIVATE_KEY_HEX)
    assert signer == SIGNER_ADDRESS
    assert len(bytes.fromhex(signature[2:])) == 65
    assert recover_signer(HEADER, domain, signature) == SIGNER_ADDRESS
    assert recover_signer(HEADER, domain, bytes.fromhex(signature[2:])) == SIGNER_ADDRESS


def test_recover_signer_when_header_is_altered_then_returns_another_address() -> None:
    domain = Eip712Domain()
    signature, _ = sign_header(HEADER, domain, PRIVATE_KEY_HEX)
    altered = dataclasses.replace(HEADER, total_supply=HEADER.total_supply + 1)
    assert recover_signer(altered, domain, signature) != SIGNER_ADDRESS


def test_recover_signer_when_domain_chain_differs_then_returns_another_address() -> None:
    signature, _ = sign_header(HEADER, Eip712Domain(chain_id=1), PRIVATE_KEY_HEX)
    assert recover_signer(HEADER, Eip712Domain(chain_id=10), signature) != SIGNER_ADDRESS


def test_sign_header_when_signed_by_eth_account_directly_then_signatures_agree() -> None:
    domain = Eip712Domain(chain_id=5, verifying_contract="0x" + "42" * 20)
    signature, _ = sign_header(HEADER, domain, PRIVATE_KEY_HEX)
    direct = Account.sign_typed_data(PRIVATE_KEY_HEX, full_message=typed_data(HEADER, domain))
    assert signature == "0x" + bytes(direct.signature).hex()
    assert bytes(direct.message_hash) == header_digest(HEADER, domain)


def test_typed_data_when_built_then_has_the_standard_structure_with_decimal_strings() -> None:
    data = typed_data(HEADER, Eip712Domain())
    assert data["primaryType"] == "SnapshotHeader"
    assert [field["name"] for field in data["types"]["SnapshotHeader"]] == [
        "snapshotId",
        "lastSeq",
        "eventsRoot",
        "balancesRoot",
        "totalSupply",
    ]
    assert data["domain"] == {
        "name": "stakeledger",
        "version": "1",
        "chainId": 1,
        "verifyingContract": "0x" + "00" * 20,
    }
    assert data["message"]["totalSupply"] == str(10**24)
    assert data["message"]["eventsRoot"] == "0x" + "ab" * 32
    json.dumps(data)


@pytest.mark.parametrize(
    "changes",
    [
        {"last_seq": 2**64},
        {"total_supply": -1},
        {"events_root": b"\x00" * 31},
        {"snapshot_id": "0x12"},
    ],
)
def test_snapshot_header_when_a_field_is_out_of_range_then_raises(changes: dict) -> None:
    with pytest.raises(ValueError):
        dataclasses.replace(HEADER, **changes)


def test_domain_when_verifying_contract_has_a_bad_checksum_then_raises() -> None:
    with pytest.raises(ValueError):
        Eip712Domain(verifying_contract="0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")
