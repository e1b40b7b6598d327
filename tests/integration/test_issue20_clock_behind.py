"""Issue 20, the clocks: a writer whose clock runs behind must not write before history.

Commands take their time from an injectable clock. A writer whose clock reads earlier than the
last event of an aggregate the command would change (a trade before the artifact's listing) is
refused with CLOCK_BEHIND and writes nothing. A writer whose clock is right but merely took its
time before another writer's commit decides again at its new time.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.domain.errors import ClockBehindError
from stakeledger.domain.service.application import StakeLedger
from stakeledger.domain.service.clock import ManualClock
from stakeledger.projections.audit import audit
from tests.conftest import stored_event_count

TOKEN = 10**6
ART = "ART-1"
LISTED_AT = datetime(2026, 3, 1, tzinfo=timezone.utc)


class SteppingClock:
    """Reads each of ``readings`` in turn, then the last one for ever."""

    def __init__(self, *readings: datetime) -> None:
        self.readings = list(readings)

    def now(self) -> datetime:
        return self.readings.pop(0) if len(self.readings) > 1 else self.readings[0]


@pytest.fixture
def listed(ledger: StakeLedger, clock: ManualClock) -> StakeLedger:
    """Alice funded and bob opened on 1 January; ART-1 listed on 1 March."""
    ledger.open_account("alice")
    ledger.open_account("bob")
    ledger.mint("alice", 100 * TOKEN)
    clock.set(LISTED_AT)
    ledger.list_artifact(ART, "Listed in March", 20 * TOKEN, min_hold_days=0)
    return ledger


def test_trade_when_writer_clock_is_before_the_listing_then_clock_behind_and_nothing_written(listed):
    events = stored_event_count(listed)
    listed.clock = ManualClock(LISTED_AT - timedelta(days=1))

    with pytest.raises(ClockBehindError) as refused:
        listed.open_position("alice", ART, "long", TOKEN)

    assert refused.value.code == "CLOCK_BEHIND"
    assert LISTED_AT.isoformat() in str(refused.value)
    assert stored_event_count(listed) == events
    artifact = listed.get_artifact(ART)
    assert (artifact.position_ids, artifact.q_long) == ([], 0)
    assert listed.balance_of("alice") == 100 * TOKEN
    assert audit(listed).clean


def test_limit_order_and_mint_when_writer_clock_is_behind_then_both_refused_and_nothing_written(listed):
    events = stored_event_count(listed)
    listed.clock = ManualClock(LISTED_AT - timedelta(microseconds=1))

    with pytest.raises(ClockBehindError):
        listed.place_limit_order("alice", ART, "long", TOKEN, 4 * 10**17)
    with pytest.raises(ClockBehindError):
        listed.mint("alice", TOKEN)  # the treasury's last event is the listing's subsidy

    assert stored_event_count(listed) == events


def test_command_when_clock_reads_exactly_the_last_event_time_then_accepted(listed):
    listed.clock = ManualClock(LISTED_AT)

    result = listed.open_position("alice", ART, "long", TOKEN)

    assert listed.get_artifact(ART).position_ids == [result["position"]]


def test_command_when_it_writes_only_aggregates_older_than_its_clock_then_accepted(listed):
    # Alice's and bob's accounts last moved on 1 January; a clock at 1 February may write them.
    events = stored_event_count(listed)
    listed.clock = ManualClock(datetime(2026, 2, 1, tzinfo=timezone.utc))

    listed.transfer("alice", "bob", TOKEN)

    assert stored_event_count(listed) == events + 2
    assert listed.balance_of("bob") == TOKEN


def test_command_when_its_time_was_taken_before_another_commit_but_clock_is_right_then_decided_again(listed):
    # The first reading predates the listing (as when another writer commits between this
    # writer reading its clock and loading); read again, the clock has passed it.
    later = LISTED_AT + timedelta(seconds=1)
    listed.clock = SteppingClock(LISTED_AT - timedelta(seconds=1), later)

    result = listed.open_position("alice", ART, "long", TOKEN)

    artifact = listed.get_artifact(ART)
    assert artifact.position_ids == [result["position"]]
    assert artifact.modified_on == later
    assert audit(listed).clean


def test_second_writer_when_its_clock_runs_behind_the_first_then_it_cannot_trade_before_the_listing(
    durable_store_url,
):
    ahead = open_ledger(durable_store_url, clock=ManualClock(LISTED_AT))
    ahead.initialise(decimals=6)
    ahead.open_account("alice")
    ahead.mint("alice", 100 * TOKEN)
    ahead.list_artifact(ART, "Listed by the writer whose clock is right", 20 * TOKEN, min_hold_days=0)
    behind = open_ledger(durable_store_url, clock=ManualClock(LISTED_AT - timedelta(hours=1)))
    events = stored_event_count(behind)

    with pytest.raises(ClockBehindError):
        behind.open_position("alice", ART, "short", TOKEN)

    assert stored_event_count(behind) == events
    assert ahead.get_artifact(ART).position_ids == []
    ahead.open_position("alice", ART, "short", TOKEN)  # the writer whose clock is right still trades
    assert len(ahead.get_artifact(ART).position_ids) == 1
    behind.close()
    ahead.close()
