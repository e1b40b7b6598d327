"""One query brings a command's cached aggregates up to date (UnitOfWork.prefetch and the
recorders' select_events_after), on SQLite and PostgreSQL: what another writer committed since
is seen, an aggregate that does not exist is known absent without a query of its own, and the
cache's objects are never changed in place."""

from __future__ import annotations

import copy
from uuid import uuid4

import pytest

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.domain.decisions.unit_of_work import UnitOfWork
from stakeledger.domain.errors import CommandConflictError
from stakeledger.domain.model.accounts import Account, account_uuid, pool_account_id
from stakeledger.domain.model.artifacts import Artifact, artifact_uuid
from stakeledger.domain.model.portfolio import portfolio_uuid
from stakeledger.domain.model.settings import command_uuid
from stakeledger.domain.service.clock import ManualClock
from stakeledger.projections.audit import audit
from tests.conftest import stored_event_count

TOKEN = 10**18


def two_writers(url: str):
    clock = ManualClock()
    first = open_ledger(url, clock=clock)
    first.initialise(decimals=18)
    for agent in ("alice", "bob"):
        first.open_account(agent)
        first.mint(agent, 1_000 * TOKEN)
    first.list_artifact("ART-P", "prefetched", 100 * TOKEN, min_hold_days=0)
    first.open_position("alice", "ART-P", "long", TOKEN)  # alice, the market and its pool are cached
    return clock, first, open_ledger(url, clock=clock)


@pytest.fixture
def writers(durable_store_url):
    """Two ledgers on one store (see ``two_writers``), closed after the test."""
    clock, first, second = two_writers(durable_store_url)
    yield clock, first, second
    first.close()
    second.close()


def test_select_events_after_returns_the_newer_events_and_the_ids_with_none(writers):
    clock, first, second = writers
    alice, market = account_uuid("alice"), artifact_uuid("ART-P")
    alice_version = first.repository.get(alice).version
    market_version = first.repository.get(market).version
    second.transfer("alice", "bob", TOKEN)
    absent = uuid4()
    events, missing = first.recorder.select_events_after(
        {alice: alice_version, market: market_version, absent: None, account_uuid("bob"): None}
    )
    assert [(e.originator_id, e.originator_version) for e in events] == [(alice, alice_version + 1)]
    assert missing == {absent}
    assert first.recorder.select_events_after({}) == ([], set())


def test_prefetch_when_another_writer_committed_then_the_unit_sees_it_and_the_cache_is_not_changed_in_place(
    writers,
    durable_store_url,
):
    clock, first, second = writers
    alice, pool = account_uuid("alice"), account_uuid(pool_account_id("ART-P"))
    cached_alice = first.repository.cache.get(alice)
    before = copy.deepcopy(vars(cached_alice))
    second.transfer("alice", "bob", 5 * TOKEN)
    second.open_position("bob", "ART-P", "short", 2 * TOKEN)  # the market and its pool move on too
    unit = UnitOfWork(first, clock.now(), lambda: "id")
    unit.prefetch([alice, artifact_uuid("ART-P"), pool, portfolio_uuid("alice"), uuid4()])
    fresh = open_ledger(durable_store_url)
    try:
        assert unit.find(alice, Account).balance_units == fresh.repository.get(alice).balance_units
        assert unit.find(artifact_uuid("ART-P"), Artifact).q_short == fresh.get_artifact("ART-P").q_short > 0
        assert unit.find(pool, Account).balance_units == fresh.repository.get(pool).balance_units
    finally:
        fresh.close()
    assert unit.find(portfolio_uuid("alice"), object) is None  # known absent: no portfolio configured
    assert vars(cached_alice) == before  # the cache's object was copied, not fast-forwarded in place
    assert first.repository.cache.get(alice).balance_units == unit.find(alice, Account).balance_units


def test_orders_from_two_writers_when_prefetched_then_every_cost_reaches_the_pool(writers):
    clock, first, second = writers
    for i in range(6):
        writer = first if i % 2 else second
        writer.open_position("alice" if i % 3 else "bob", "ART-P", "long" if i % 2 else "short", TOKEN)
    pool = first.repository.get(account_uuid(pool_account_id("ART-P"))).balance_units
    assert pool == first.get_artifact("ART-P").subsidy_units + 7 * TOKEN  # the subsidy and seven buys
    assert audit(first).clean


def _counting_single_reads(app):
    """Count the recorder's one-aggregate selects (a command id's look-up is one)."""
    reads = []
    select_events = app.recorder.select_events

    def counted(originator_id, **kwargs):
        reads.append(originator_id)
        return select_events(originator_id, **kwargs)

    app.recorder.select_events = counted
    return reads


def test_order_with_a_new_command_id_when_prefetched_then_the_id_is_asked_about_in_the_same_query(
    writers,
):
    clock, first, second = writers
    reads = _counting_single_reads(first)
    result = first.open_position("alice", "ART-P", "long", TOKEN, command_id="order-1")
    assert command_uuid("order-1") not in reads  # the prefetch answered "absent"
    assert first.repository.get(command_uuid("order-1")).result == result
    # Deciding again under the same id, now that the record exists, gives the first result back.
    count = stored_event_count(first)
    assert first.open_position("alice", "ART-P", "long", TOKEN, command_id="order-1") == result
    assert second.open_position("alice", "ART-P", "long", TOKEN, command_id="order-1") == result
    assert stored_event_count(first) == count


def test_close_with_a_used_command_id_when_the_position_is_gone_then_the_first_result_not_the_refusal(
    writers,
):
    clock, first, second = writers
    opened = first.open_position("bob", "ART-P", "short", TOKEN)
    closed = first.close_position(opened["position"], command_id="close-1")
    count = stored_event_count(first)
    # Deciding the close again would refuse (the position is closed); the id's first result wins.
    assert second.close_position(opened["position"], command_id="close-1") == closed
    assert first.close_position(opened["position"], command_id="close-1") == closed
    with pytest.raises(CommandConflictError):
        second.open_position("bob", "ART-P", "short", TOKEN, command_id="close-1")
    assert stored_event_count(first) == count


def test_order_when_another_writer_records_the_same_command_id_first_then_its_result_comes_back(
    writers,
):
    clock, first, second = writers
    # The other writer saves under the id after this one's prefetch found it absent.
    prefetch = UnitOfWork.prefetch
    theirs = {}

    def prefetch_then_race(unit, ids):
        prefetch(unit, ids)
        if unit.app is first and not theirs:
            theirs.update(second.open_position("bob", "ART-P", "short", TOKEN, command_id="race-1"))
            theirs["events after"] = stored_event_count(second)

    UnitOfWork.prefetch = prefetch_then_race
    try:
        mine = first.open_position("bob", "ART-P", "short", TOKEN, command_id="race-1")
    finally:
        UnitOfWork.prefetch = prefetch
    assert stored_event_count(first) == theirs.pop("events after")  # this writer saved nothing
    assert mine == theirs
    assert audit(first).clean
