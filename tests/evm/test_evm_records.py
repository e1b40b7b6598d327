"""The ABI event record: encoding, hashing and strict decoding."""

from __future__ import annotations

from uuid import UUID

import pytest
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_hash.auto import keccak
from hypothesis import given, settings

from stakeledger.adapters.evm import (
    EVENT_RECORD_ABI_TYPE,
    EVENT_RECORD_FIELDS,
    ZERO_ADDRESS,
    ZERO_HASH,
    EventRecord,
    RecordDecodeError,
    decode_record,
)
from stakeledger.adapters.evm.records import UINT256_MAX
from tests.evm.factories import event_records


def _record(**changes) -> EventRecord:
    fields = dict(
        seq=1,
        prev_hash=ZERO_HASH,
        originator_id=UUID(int=7),
        originator_version=1,
        topic="stakeledger:Account.Credited",
        timestamp_micros=1_700_000_000_000_000,
        account=b"\x11" * 20,
        credit=5,
        debit=0,
        payload=b'{"amount":5}',
    )
    fields.update(changes)
    return EventRecord(**fields)


@settings(max_examples=150, deadline=None)
@given(event_records)
def test_decode_when_given_any_encoded_record_then_returns_the_same_record(record: EventRecord) -> None:
    assert decode_record(record.encode()) == record
    assert EventRecord.decode(record.encode()) == record


def test_encode_when_amounts_are_uint256_max_then_round_trips_them() -> None:
    record = _record(credit=UINT256_MAX, debit=UINT256_MAX)
    decoded = decode_record(record.encode())
    assert (decoded.credit, decoded.debit) == (UINT256_MAX, UINT256_MAX)


def test_encode_when_record_has_dynamic_fields_then_is_one_tuple_with_a_leading_offset() -> None:
    record = _record()
    data = record.encode()
    # A dynamic tuple encoded as one value starts with the offset of its body (0x20):
    # the form abi.decode(data, (Record)) expects.
    assert data[:32] == (32).to_bytes(32, "big")
    assert data == abi_encode([EVENT_RECORD_ABI_TYPE], [record.abi_values()])
    flat = abi_encode([abi_type for _, abi_type in EVENT_RECORD_FIELDS], list(record.abi_values()))
    assert data[32:] == flat


def test_abi_type_when_published_then_lists_the_fields_in_order() -> None:
    assert EVENT_RECORD_ABI_TYPE == ("(uint64,bytes32,bytes16,uint64,string,uint64,address,uint256,uint256,bytes)")
    assert [name for name, _ in EVENT_RECORD_FIELDS] == [
        "seq",
        "prevHash",
        "originatorId",
        "originatorVersion",
        "topic",
        "timestampMicros",
        "account",
        "credit",
        "debit",
        "payload",
    ]


def test_record_hash_when_computed_then_is_keccak_of_the_encoding() -> None:
    record = _record()
    assert record.record_hash() == keccak(record.encode())
    assert len(record.record_hash()) == 32


def test_encode_when_decoded_by_eth_abi_then_fields_match_in_abi_order() -> None:
    record = _record(account=ZERO_ADDRESS, credit=0)
    (values,) = abi_decode([EVENT_RECORD_ABI_TYPE], record.encode())
    assert values[2] == UUID(int=7).bytes
    assert values[4] == "stakeledger:Account.Credited"
    assert values[6] == "0x" + "00" * 20


def test_decode_when_padding_byte_is_flipped_then_raises_record_decode_error() -> None:
    data = bytearray(_record().encode())
    # The seq word is the first head word of the tuple body; its top byte is padding.
    data[32] ^= 0xFF
    with pytest.raises(RecordDecodeError):
        decode_record(bytes(data))


def test_decode_when_bytes_are_truncated_then_raises_record_decode_error() -> None:
    with pytest.raises(RecordDecodeError):
        decode_record(_record().encode()[:-32])


def test_decode_when_trailing_bytes_are_appended_then_raises_record_decode_error() -> None:
    with pytest.raises(RecordDecodeError):
        decode_record(_record().encode() + bytes(32))


@pytest.mark.parametrize(
    "changes, error",
    [
        ({"seq": -1}, ValueError),
        ({"seq": 2**64}, ValueError),
        ({"credit": UINT256_MAX + 1}, ValueError),
        ({"debit": -5}, ValueError),
        ({"account": b"\x11" * 19}, ValueError),
        ({"prev_hash": b"\x00" * 31}, ValueError),
        ({"originator_id": "not-a-uuid"}, TypeError),
        ({"credit": True}, TypeError),
        ({"payload": "text"}, TypeError),
    ],
)
def test_record_when_a_field_is_out_of_range_then_raises(changes: dict, error: type) -> None:
    with pytest.raises(error):
        _record(**changes)
