"""Resolution rules on the ledger, on the in-memory store, SQLite and PostgreSQL: each transition
needs a settlement price that meets its market's threshold (validated >= 0.7, deprecated <= 0.1,
flagged < 0.3 by default), the price given or the time-weighted average of p(long) over the
market's window; a price that misses is refused with THRESHOLD_NOT_MET and writes nothing.

Expected averages are worked out here from the recorded trade times and prices (each price holds
until the next, the listing's 0.5 from the listing on), never read back from the code under test.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest
from eventsourcing.domain import Snapshot

from stakeledger.domain.errors import InvalidInputError, ThresholdNotMetError
from stakeledger.domain.model.artifacts import Artifact, artifact_uuid
from stakeledger.domain.rules.resolution import ResolutionRules
from stakeledger.domain.service.application import StakeLedger
from stakeledger.domain.service.clock import ManualClock
from stakeledger.domain.vocabulary import WAD
from stakeledger.projections.audit import audit
from tests.conftest import stored_event_count
from tests.integration.test_settlement import (
    AGENTS,
    ART,
    HALF_WAD,
    POOL,
    TOKEN,
    VALIDATE_WAD,
    assert_settled_market_balances,
    list_market,
    micros_of,
    open_funded,
    position_of,
    price,
    state_of,
    traded,
    transitions,
)

HOUR = 3_600 * 10**6  # microseconds
DAY = 24 * HOUR
WINDOW = 7 * DAY


def text_of(price_wad: int) -> str:
    """A WAD price as the refusal writes it: the decimal digits it has, no trailing zeros."""
    whole, fraction = divmod(price_wad, WAD)
    return f"{whole}.{str(fraction).rjust(18, '0').rstrip('0') or '0'}"


def hand_average(ledger: StakeLedger, now: datetime, artifact_id: str = ART, window: int = WINDOW) -> int:
    """floor of the average p(long) over [now − window, now], from the listing (at 0.5) and the
    Traded events alone: each price holds from its trade until the next."""
    events = list(ledger.events.get(artifact_uuid(artifact_id)))
    listed = events[0]
    assert isinstance(listed, Artifact.Listed)
    points = [(micros_of(listed.timestamp), HALF_WAD)]
    points += [(micros_of(e.timestamp), e.price_long_wad) for e in events if isinstance(e, Artifact.Traded)]
    end = micros_of(now)
    start = max(end - window, points[0][0])
    if end <= start:
        return points[-1][1]
    total = 0
    for (at, p), (until, _) in zip(points, [*points[1:], (end, None)]):
        held = min(until, end) - max(at, start)
        total += p * max(held, 0)
    return total // (end - start)


# The threshold table ----------------------------------------------------------------------------


def held_at(side: str, tokens: int, *, days_held: int = 7) -> Callable[[StakeLedger, ManualClock], None]:
    """A day after listing, one trade moves p(long); then the clock runs ``days_held`` days."""

    def setup(ledger: StakeLedger, clock: ManualClock) -> None:
        clock.advance(days=1)
        ledger.open_position("alice", ART, side, tokens * TOKEN)
        clock.advance(days=days_held)

    return setup


def untraded(ledger: StakeLedger, clock: ManualClock) -> None:
    clock.advance(days=3)  # p(long) 0.5 all along: its average meets no threshold


# b = 100 tokens. A long of 95 tokens takes p(long) to 1 − 0.5·e^−0.95 ≈ 0.807, 40 tokens to ≈ 0.665;
# a short of 170 to 0.5·e^−1.7 ≈ 0.091, 150 to ≈ 0.112, 60 to ≈ 0.274, 40 to ≈ 0.335.
THRESHOLD_CASES = [
    # (case, to state, market, price given (None: the window's average), meets, comparison, bound)
    ("validated at exactly 0.7", "validated", untraded, price("0.7"), True, ">=", "0.7"),
    ("validated just below 0.7", "validated", untraded, price("0.7") - 1, False, ">=", "0.7"),
    ("validated given 0.69, average 0.807", "validated", held_at("long", 95), price("0.69"), False, ">=", "0.7"),
    ("validated at a 0.807 average", "validated", held_at("long", 95), None, True, ">=", "0.7"),
    ("validated at a 0.665 average", "validated", held_at("long", 40), None, False, ">=", "0.7"),
    # Two days old: listed at 0.5 for one day, 0.807 for the next; the average is about 0.653.
    ("validated, young market", "validated", held_at("long", 95, days_held=1), None, False, ">=", "0.7"),
    ("deprecated at exactly 0.1", "deprecated", untraded, price("0.1"), True, "<=", "0.1"),
    ("deprecated just above 0.1", "deprecated", untraded, price("0.1") + 1, False, "<=", "0.1"),
    ("deprecated at a 0.091 average", "deprecated", held_at("short", 170), None, True, "<=", "0.1"),
    ("deprecated at a 0.112 average", "deprecated", held_at("short", 150), None, False, "<=", "0.1"),
    ("flagged just below 0.3", "flagged", untraded, price("0.3") - 1, True, "<", "0.3"),
    ("flagged at exactly 0.3", "flagged", untraded, price("0.3"), False, "<", "0.3"),
    ("flagged at a 0.274 average", "flagged", held_at("short", 60), None, True, "<", "0.3"),
    ("flagged at a 0.335 average", "flagged", held_at("short", 40), None, False, "<", "0.3"),
]


@pytest.mark.parametrize(
    ("case", "to_state", "market", "given", "meets", "comparison", "bound"),
    THRESHOLD_CASES,
    ids=[row[0] for row in THRESHOLD_CASES],
)
def test_transition_when_price_meets_or_misses_the_threshold_then_settles_or_is_refused_writing_nothing(
    ledger, clock, case, to_state, market, given, meets, comparison, bound
):
    open_funded(ledger, *AGENTS)
    list_market(ledger)
    market(ledger, clock)
    average = hand_average(ledger, clock.now())
    settlement = given if given is not None else average
    before = state_of(ledger)

    if not meets:
        with pytest.raises(ThresholdNotMetError) as raised:
            ledger.transition_artifact(ART, to_state, price_wad=given, command_id="resolve")
        error = raised.value
        assert error.code == "THRESHOLD_NOT_MET"
        source = "the given price" if given is not None else "the 7-day average of p(long)"
        assert str(error) == (
            f"artifact {ART!r} cannot become {to_state}: it needs a settlement price {comparison} {bound}, "
            f"and {source} is {text_of(settlement)}"
        )
        assert state_of(ledger) == before  # no event, no balance, no position, no command record
        assert ledger.get_artifact(ART).state == "listed"
        # The refusal recorded nothing under its command id: the same id may resolve at a price that meets.
        meeting = {"validated": VALIDATE_WAD, "deprecated": price("0.05"), "flagged": price("0.2")}[to_state]
        ledger.transition_artifact(ART, to_state, price_wad=meeting, command_id="resolve")
        assert ledger.get_artifact(ART).state == to_state
        return

    result = ledger.transition_artifact(ART, to_state, price_wad=given)

    assert result["price_long_wad"] == str(settlement)
    assert result["window_average_wad"] == str(average)
    (transitioned,) = transitions(ledger)
    assert (transitioned.to_state, transitioned.price_long_wad, transitioned.window_average_wad) == (
        to_state,
        settlement,
        average,
    )
    for position_id in ledger.get_artifact(ART).position_ids:
        position = position_of(ledger, position_id)
        assert position.status == ("partially_settled" if to_state == "flagged" else "settled")
        if to_state == "validated" and position.side == "long":
            assert position.payout_units == position.quantity_units * settlement // WAD
    if to_state == "flagged":
        assert audit(ledger).clean
    else:
        assert_settled_market_balances(ledger)


def test_market_listed_with_its_own_rules_when_resolved_then_its_thresholds_decide_and_are_stored(ledger, clock):
    rules = ResolutionRules(
        validated_min_wad=price("0.6"), deprecated_max_wad=price("0.2"), flagged_below_wad=price("0.4"), window_days=2
    )
    open_funded(ledger, *AGENTS)
    list_market(ledger, rules=rules)
    (listed,) = [e for e in ledger.events.get(artifact_uuid(ART)) if isinstance(e, Artifact.Listed)]
    assert (listed.validated_min_wad, listed.deprecated_max_wad, listed.flagged_below_wad, listed.window_days) == (
        price("0.6"),
        price("0.2"),
        price("0.4"),
        2,
    )
    assert ledger.get_artifact(ART).resolution_rules == rules
    clock.advance(days=1)
    ledger.open_position("alice", ART, "long", 40 * TOKEN)  # p(long) about 0.665
    clock.advance(days=3)  # the 2-day window holds 0.665 only
    average = hand_average(ledger, clock.now(), window=2 * DAY)
    assert price("0.6") <= average < price("0.7")  # enough here, not under seed 000's rules
    before = state_of(ledger)
    with pytest.raises(ThresholdNotMetError, match=r"needs a settlement price <= 0\.2, and the 2-day average"):
        ledger.transition_artifact(ART, "deprecated")
    assert state_of(ledger) == before

    result = ledger.transition_artifact(ART, "validated")

    assert result["price_long_wad"] == str(average)
    assert_settled_market_balances(ledger)


@pytest.mark.parametrize(
    "rules",
    [
        {"flagged_below_wad": price("0.05")},  # below deprecated's 0.1
        {"validated_min_wad": price("0.25")},  # below flagged's 0.3
        {"window_days": 0},
        {"deprecated_max_wad": WAD},
    ],
    ids=["flagged below deprecated", "validated below flagged", "empty window", "price one"],
)
def test_rules_when_out_of_order_or_range_then_refused_before_any_listing(ledger, rules):
    before = stored_event_count(ledger)
    with pytest.raises(InvalidInputError):
        list_market(ledger, rules=ResolutionRules(**rules))
    with pytest.raises(InvalidInputError):
        ledger.list_artifact(ART, "x", 100 * TOKEN, resolution={"window_days": 3})  # type: ignore[arg-type]
    assert stored_event_count(ledger) == before


# The window's average against one late outlier ---------------------------------------------------


def test_validated_when_one_big_trade_just_before_resolution_then_the_average_decides_and_pays_q_times_it(
    ledger, clock
):
    open_funded(ledger, *AGENTS)
    list_market(ledger)
    clock.advance(days=1)
    (long_id,) = [ledger.open_position("alice", ART, "long", 95 * TOKEN)["position"]]  # p(long) about 0.807
    clock.advance(days=6)
    (short_id,) = [ledger.open_position("bob", ART, "short", 250 * TOKEN)["position"]]  # p(long) about 0.066
    clock.advance(seconds=3_600)
    high, low = traded(ledger)
    listed_at = micros_of(ledger.get_artifact(ART).created_on)
    now = micros_of(clock.now())
    # The recorded times: alice a day after the listing, bob six days later, the resolution an hour after.
    assert (micros_of(high.timestamp) - listed_at, micros_of(low.timestamp) - listed_at, now - listed_at) == (
        DAY,
        7 * DAY,
        7 * DAY + HOUR,
    )
    assert high.price_long_wad > price("0.8") and low.price_long_wad < price("0.07")
    # The window [now − 7 days, now] starts an hour after the listing: 0.5 holds for 23 hours of it,
    # alice's price for 144 hours, bob's for the last hour.
    average = (HALF_WAD * 23 * HOUR + high.price_long_wad * 144 * HOUR + low.price_long_wad * HOUR) // (168 * HOUR)
    assert average >= price("0.7")
    pool_price = ledger.get_artifact(ART).price_long_wad
    assert pool_price == low.price_long_wad < price("0.1")  # the pool alone would say deprecated

    # The outlier cannot deprecate the market: the average is far above 0.1.
    before = state_of(ledger)
    with pytest.raises(ThresholdNotMetError, match=f"the 7-day average of p\\(long\\) is {text_of(average)}$"):
        ledger.transition_artifact(ART, "deprecated")
    assert state_of(ledger) == before
    quantity = position_of(ledger, long_id).quantity_units
    alice_before, bob_before = ledger.balance_of("alice"), ledger.balance_of("bob")

    result = ledger.transition_artifact(ART, "validated")

    assert result["price_long_wad"] == result["window_average_wad"] == str(average)
    assert ledger.balance_of("alice") == alice_before + quantity * average // WAD
    assert position_of(ledger, long_id).payout_units == quantity * average // WAD
    assert ledger.balance_of("bob") == bob_before
    assert position_of(ledger, short_id).payout_units == 0
    assert ledger.get_artifact(ART).settlement_price_wad == average
    assert_settled_market_balances(ledger)


# One partial settlement per stake ------------------------------------------------------------------


def test_flagged_again_when_positions_already_partially_settled_then_they_are_paid_nothing_and_a_new_one_is(
    ledger, clock
):
    open_funded(ledger, *AGENTS)
    list_market(ledger)
    long_id = ledger.open_position("alice", ART, "long", 40 * TOKEN)["position"]
    short_id = ledger.open_position("bob", ART, "short", 100 * TOKEN)["position"]
    first = ledger.transition_artifact(ART, "flagged", price_wad=price("0.2"))
    assert first["already_partially_settled"] == 0
    ledger.transition_artifact(ART, "listed")
    carol_id = ledger.open_position("carol", ART, "short", 20 * TOKEN)["position"]
    carol_cost = position_of(ledger, carol_id).cost_units
    balances = {agent: ledger.balance_of(agent) for agent in AGENTS}
    pool_before = ledger.balance_of(POOL)
    kept = {p: (position_of(ledger, p).quantity_units, position_of(ledger, p).cost_units) for p in (long_id, short_id)}

    again = ledger.transition_artifact(ART, "flagged", price_wad=price("0.2"))

    # alice's long and bob's short had their flag: nothing more. carol's short gets its bonus once.
    assert again["already_partially_settled"] == 2
    assert again["paid_units"] == str(carol_cost // 4)
    assert ledger.balance_of("alice") == balances["alice"]
    assert ledger.balance_of("bob") == balances["bob"]
    assert ledger.balance_of("carol") == balances["carol"] + carol_cost // 4
    assert ledger.balance_of(POOL) == pool_before - carol_cost // 4
    for position_id in (long_id, short_id):
        position = position_of(ledger, position_id)
        assert position.partial_settlements == 1
        assert (position.quantity_units, position.cost_units) == kept[position_id]
    assert position_of(ledger, carol_id).partial_settlements == 1
    assert audit(ledger).clean
    ledger.transition_artifact(ART, "deprecated", price_wad=price("0.05"))
    assert_settled_market_balances(ledger)


# Snapshots taken before the rules existed ---------------------------------------------------------


def put_snapshot(ledger: StakeLedger, artifact: Artifact, drop: tuple[str, ...]) -> None:
    """Store a snapshot of ``artifact`` without the attributes in ``drop``, as an older release
    would have taken it, and forget the cached aggregate so the next load starts from it."""
    taken = Snapshot.take(artifact)
    state = {key: value for key, value in taken.state.items() if key not in drop}
    forged = Snapshot(
        originator_id=taken.originator_id,
        originator_version=taken.originator_version,
        timestamp=taken.timestamp,
        topic=taken.topic,
        state=state,
    )
    assert ledger.snapshots is not None
    ledger.snapshots.put([forged])
    cache = ledger.repository.cache
    if cache is not None:
        try:
            cache.get(artifact.id, evict=True)  # (the LRU cache's clear() leaves its entries)
        except KeyError:
            pass


def test_artifact_when_restored_from_a_snapshot_then_its_average_is_the_one_its_events_give(ledger, clock):
    open_funded(ledger, *AGENTS)
    list_market(ledger)
    clock.advance(days=1)
    ledger.open_position("alice", ART, "long", 95 * TOKEN)
    clock.advance(days=2)
    ledger.open_position("bob", ART, "short", 30 * TOKEN)
    clock.advance(days=1)
    replayed = ledger.get_artifact(ART)
    put_snapshot(ledger, replayed, drop=())
    restored = ledger.get_artifact(ART)
    assert restored.window_average_price_wad(clock.now()) == replayed.window_average_price_wad(clock.now())
    assert restored.window_average_price_wad(clock.now()) == hand_average(ledger, clock.now())
    assert restored.resolution_rules == replayed.resolution_rules


def test_artifact_when_restored_from_a_snapshot_without_rules_or_prices_then_it_trades_and_transitions(ledger, clock):
    open_funded(ledger, *AGENTS)
    list_market(ledger)
    clock.advance(days=1)
    ledger.open_position("alice", ART, "long", 95 * TOKEN)
    clock.advance(days=1)
    artifact = ledger.get_artifact(ART)
    old_attributes = ("price_points", "validated_min_wad", "deprecated_max_wad", "flagged_below_wad", "window_days")
    assert all(name in artifact.__dict__ for name in old_attributes)
    put_snapshot(ledger, artifact, drop=old_attributes)

    restored = ledger.get_artifact(ART)
    assert not any(name in restored.__dict__ for name in old_attributes)  # the class defaults stand in
    assert restored.resolution_rules == ResolutionRules()
    held = restored.price_long_wad
    # With no recorded prices, the market is taken to have held its current price since its listing.
    assert restored.window_average_price_wad(clock.now()) == held

    bob_id = ledger.open_position("bob", ART, "long", 10 * TOKEN)["position"]
    after = ledger.get_artifact(ART).price_long_wad
    clock.advance(days=1)
    listed_at = micros_of(restored.created_on)
    now = micros_of(clock.now())
    expected = (held * (now - DAY - listed_at) + after * DAY) // (now - listed_at)  # 3 days old: all of it

    result = ledger.transition_artifact(ART, "validated")

    assert result["window_average_wad"] == result["price_long_wad"] == str(expected)
    assert position_of(ledger, bob_id).status == "settled"
    assert_settled_market_balances(ledger)
