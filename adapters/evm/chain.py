"""Numbering events into a hash chain, and checking a chain.

Each record carries ``seq`` (contiguous from 1) and ``prev_hash``, the keccak256 of the
previous record's encoding (32 zero bytes before seq 1). A verifier holding the last
record's hash, or a Merkle root over the records, can then tell that no record was
dropped, reordered or altered.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from stakeledger.adapters.evm.records import ZERO_ADDRESS, ZERO_HASH, EventRecord


@dataclass(frozen=True)
class RawEvent:
    """A stored event before it has a place in the export chain."""

    originator_id: UUID
    originator_version: int
    topic: str
    timestamp_micros: int
    account: bytes | None
    credit: int
    debit: int
    payload: bytes

    def __post_init__(self) -> None:
        # An amount with nowhere to go would vanish from every balance: refuse it early.
        if self.account is None and (self.credit or self.debit):
            raise ValueError("an event with a credit or debit must name an account")


class ChainErrorCode(StrEnum):
    """Why a chain is broken, in the order the checks run for each record."""

    SEQ_NOT_CONTIGUOUS = "SEQ_NOT_CONTIGUOUS"
    PREV_HASH_MISMATCH = "PREV_HASH_MISMATCH"
    LAST_HASH_MISMATCH = "LAST_HASH_MISMATCH"


@dataclass(frozen=True)
class ChainError:
    """The first place a chain breaks.

    ``seq`` is the sequence number the chain expected at that position: for a gap
    (1, 2, 4) it is 3 and ``actual`` says 4.
    """

    code: ChainErrorCode
    seq: int
    expected: str
    actual: str

    def __str__(self) -> str:
        return f"{self.code} at seq={self.seq}: expected {self.expected}, found {self.actual}"


def chain_records(raw: Iterable[RawEvent], *, after: EventRecord | None = None) -> Iterator[EventRecord]:
    """Number events from 1 (or from after.seq + 1) and link each to its predecessor."""
    seq, prev_hash = _start(after)
    for event in raw:
        record = EventRecord(
            seq=seq,
            prev_hash=prev_hash,
            originator_id=event.originator_id,
            originator_version=event.originator_version,
            topic=event.topic,
            timestamp_micros=event.timestamp_micros,
            account=ZERO_ADDRESS if event.account is None else event.account,
            credit=event.credit,
            debit=event.debit,
            payload=event.payload,
        )
        yield record
        seq += 1
        prev_hash = record.record_hash()


def verify_chain(
    records: Iterable[EventRecord],
    *,
    after: EventRecord | None = None,
    last_hash: bytes | None = None,
) -> ChainError | None:
    """The first break in the chain, or None when it is whole.

    A change to the last record breaks no link after it, so pass ``last_hash`` (from a
    signed snapshot or a Merkle proof) to cover the tail as well.
    """
    seq, prev_hash = _start(after)
    last_seq = seq - 1
    for record in records:
        if record.seq != seq:
            return ChainError(ChainErrorCode.SEQ_NOT_CONTIGUOUS, seq, str(seq), str(record.seq))
        if record.prev_hash != prev_hash:
            return ChainError(
                ChainErrorCode.PREV_HASH_MISMATCH, seq, "0x" + prev_hash.hex(), "0x" + record.prev_hash.hex()
            )
        last_seq = seq
        seq += 1
        prev_hash = record.record_hash()
    if last_hash is not None and prev_hash != last_hash:
        return ChainError(ChainErrorCode.LAST_HASH_MISMATCH, last_seq, "0x" + last_hash.hex(), "0x" + prev_hash.hex())
    return None


def _start(after: EventRecord | None) -> tuple[int, bytes]:
    if after is None:
        return 1, ZERO_HASH
    return after.seq + 1, after.record_hash()
