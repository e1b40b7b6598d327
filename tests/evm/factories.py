"""Builders and hypothesis strategies shared by the EVM export tests."""

from __future__ import annotations

from uuid import UUID

from hypothesis import strategies as st

from stakeledger.adapters.evm import RawEvent, account_address_bytes, canonical_json
from stakeledger.adapters.evm.records import UINT64_MAX, UINT256_MAX, EventRecord

ACCOUNT_IDS = ("treasury", "agent:alice", "agent:bob", "pool:ART-1", "escrow:bounty:7")


def raw_events(count: int) -> list[RawEvent]:
    """A deterministic run of events that move balances between a few accounts."""
    events = []
    for index in range(count):
        account_id = ACCOUNT_IDS[index % len(ACCOUNT_IDS)]
        amount_units = (index + 1) * 10**18
        events.append(
            RawEvent(
                originator_id=UUID(int=index % 3 + 1),
                originator_version=index // 3 + 1,
                topic="stakeledger:Account.Credited" if index % 2 == 0 else "stakeledger:Account.Debited",
                timestamp_micros=1_700_000_000_000_000 + index,
                account=account_address_bytes(account_id),
                credit=amount_units if index % 2 == 0 else 0,
                debit=0 if index % 2 == 0 else amount_units,
                payload=canonical_json({"account": account_id, "amount": amount_units, "n": index}),
            )
        )
    return events


event_records = st.builds(
    EventRecord,
    seq=st.integers(0, UINT64_MAX),
    prev_hash=st.binary(min_size=32, max_size=32),
    originator_id=st.uuids(),
    originator_version=st.integers(0, UINT64_MAX),
    topic=st.text(max_size=40),
    timestamp_micros=st.integers(0, UINT64_MAX),
    account=st.binary(min_size=20, max_size=20),
    credit=st.one_of(st.just(UINT256_MAX), st.just(0), st.integers(0, UINT256_MAX)),
    debit=st.one_of(st.just(UINT256_MAX), st.just(0), st.integers(0, UINT256_MAX)),
    payload=st.binary(max_size=300),
)
