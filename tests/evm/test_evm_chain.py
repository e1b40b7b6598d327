"""Numbering events into a hash chain and finding the first break."""

from __future__ import annotations

import dataclasses
from uuid import UUID

import pytest

from stakeledger.adapters.evm import (
    ZERO_ADDRESS,
    ZERO_HASH,
    ChainErrorCode,
    RawEvent,
    chain_records,
    decode_record,
    verify_chain,
)
from tests.evm.factories import raw_events


def test_chain_records_when_given_events_then_numbers_from_one_and_links_hashes() -> None:
    records = list(chain_records(raw_events(5)))
    assert [record.seq for record in records] == [1, 2, 3, 4, 5]
    assert records[0].prev_hash == ZERO_HASH
    for previous, record in zip(records, records[1:]):
        assert record.prev_hash == previous.record_hash()
    assert verify_chain(records) is None


def test_chain_records_when_event_moves_no_account_then_uses_zero_address() -> None:
    event = RawEvent(UUID(int=1), 1, "stakeledger:Artifact.Listed", 0, None, 0, 0, b"{}")
    (record,) = chain_records([event])
    assert record.account == ZERO_ADDRESS


def test_raw_event_when_amount_has_no_account_then_raises() -> None:
    with pytest.raises(ValueError, match="must name an account"):
        RawEvent(UUID(int=1), 1, "stakeledger:Account.Credited", 0, None, 5, 0, b"{}")


def test_chain_records_when_continuing_after_a_record_then_extends_the_same_chain() -> None:
    events = raw_events(6)
    whole = list(chain_records(events))
    head = list(chain_records(events[:4]))
    tail = list(chain_records(events[4:], after=head[-1]))
    assert head + tail == whole
    assert verify_chain(tail, after=head[-1]) is None


def test_verify_chain_when_a_record_is_missing_then_names_the_missing_seq() -> None:
    records = list(chain_records(raw_events(5)))
    del records[2]
    error = verify_chain(records)
    assert error is not None
    assert (error.code, error.seq, error.actual) == (ChainErrorCode.SEQ_NOT_CONTIGUOUS, 3, "4")


def test_verify_chain_when_first_seq_is_not_one_then_names_seq_one() -> None:
    records = list(chain_records(raw_events(3)))
    error = verify_chain(records[1:])
    assert error is not None
    assert (error.code, error.seq) == (ChainErrorCode.SEQ_NOT_CONTIGUOUS, 1)


def test_verify_chain_when_prev_hash_is_wrong_then_names_that_seq() -> None:
    records = list(chain_records(raw_events(5)))
    records[3] = dataclasses.replace(records[3], prev_hash=b"\x01" * 32)
    error = verify_chain(records)
    assert error is not None
    assert (error.code, error.seq) == (ChainErrorCode.PREV_HASH_MISMATCH, 4)
    assert "seq=4" in str(error)


def test_verify_chain_when_a_payload_byte_is_flipped_then_names_the_next_seq() -> None:
    records = list(chain_records(raw_events(5)))
    data = bytearray(records[2].encode())
    position = bytes(data).rindex(records[2].payload)
    data[position + 1] ^= 0x01
    records[2] = decode_record(bytes(data))
    error = verify_chain(records)
    assert error is not None
    # Record 3 was altered; the link that breaks is the one record 4 holds.
    assert (error.code, error.seq) == (ChainErrorCode.PREV_HASH_MISMATCH, 4)


def test_verify_chain_when_last_record_is_altered_and_last_hash_given_then_names_last_seq() -> None:
    records = list(chain_records(raw_events(5)))
    last_hash = records[-1].record_hash()
    records[-1] = dataclasses.replace(records[-1], credit=records[-1].credit + 1)
    assert verify_chain(records) is None
    error = verify_chain(records, last_hash=last_hash)
    assert error is not None
    assert (error.code, error.seq) == (ChainErrorCode.LAST_HASH_MISMATCH, 5)


def test_verify_chain_when_last_hash_matches_then_returns_none() -> None:
    records = list(chain_records(raw_events(5)))
    assert verify_chain(records, last_hash=records[-1].record_hash()) is None
