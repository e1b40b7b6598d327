"""Deterministic account addresses."""

from __future__ import annotations

import pytest
from eth_hash.auto import keccak
from eth_utils import is_checksum_address
from hypothesis import given
from hypothesis import strategies as st

from stakeledger.adapters.evm import AddressCollisionError, account_address, account_address_bytes, address_map


def test_account_address_when_called_twice_then_returns_the_same_20_bytes() -> None:
    first = account_address_bytes("agent:alice")
    assert first == account_address_bytes("agent:alice")
    assert len(first) == 20


def test_account_address_when_computed_then_is_the_tail_of_the_prefixed_keccak() -> None:
    expected = keccak(b"stakeledger:account:pool:ART-1")[-20:]
    assert account_address_bytes("pool:ART-1") == expected
    assert account_address("pool:ART-1") == account_address("pool:ART-1")
    assert account_address("pool:ART-1").lower() == "0x" + expected.hex()
    assert is_checksum_address(account_address("pool:ART-1"))


@given(st.text(min_size=1, max_size=40).filter(lambda text: text == text.strip()))
def test_account_address_when_given_any_id_then_is_a_checksummed_20_byte_address(account_id: str) -> None:
    address = account_address(account_id)
    assert is_checksum_address(address)
    assert bytes.fromhex(address[2:]) == account_address_bytes(account_id)


def test_account_address_when_ids_differ_only_in_case_then_addresses_differ() -> None:
    assert account_address("agent:alice") != account_address("agent:Alice")


@pytest.mark.parametrize("account_id", ["", " agent:alice", "agent:alice\n", "x" * 257])
def test_account_address_when_id_is_malformed_then_raises(account_id: str) -> None:
    with pytest.raises(ValueError):
        account_address(account_id)


def test_address_map_when_given_ids_then_maps_each_in_id_order() -> None:
    mapping = address_map(["treasury", "agent:bob", "agent:alice", "agent:bob"])
    assert list(mapping) == ["agent:alice", "agent:bob", "treasury"]
    assert mapping["treasury"] == account_address("treasury")
    assert len(set(mapping.values())) == 3


def test_address_map_when_two_ids_share_an_address_then_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    import stakeledger.adapters.evm.addresses as addresses

    monkeypatch.setattr(addresses, "account_address", lambda account_id: "0x" + "11" * 20)
    with pytest.raises(AddressCollisionError):
        addresses.address_map(["agent:alice", "agent:bob"])
