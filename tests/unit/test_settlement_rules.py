"""Settlement as pure arithmetic: seed 000's table, row by row, with the numbers worked by hand.

Prices are WAD-scaled (10**18 is 1.0); quantities and costs are base units. Every payout
rounds down, so a fraction of a unit always stays with the pool.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stakeledger.domain.errors import InvalidInputError
from stakeledger.domain.rules.settlement import (
    LEARNING_RATE_WAD,
    LOSS,
    PARTIAL,
    PROFIT,
    REPUTATION_START_WAD,
    compute_settlement_pnl,
    stake_weight_wad,
    update_believability_wad,
)
from stakeledger.domain.vocabulary import WAD


@dataclass(frozen=True)
class FakePosition:
    """The three fields settlement reads; a hand-written fake, not a mock."""

    side: str
    quantity_units: int
    cost_units: int


def price(text: str) -> int:
    """A probability written as a decimal string, in WAD: price("0.9") == 9 * 10**17."""
    whole, _, fraction = text.partition(".")
    return int(whole) * WAD + int(fraction.ljust(18, "0"))


# (case, state, side, quantity, cost, s, payout, pnl, reason, terminal, quantity left, cost left)
SETTLEMENT_TABLE = [
    # validated, long: payout floor(q·s).
    # q=200, cost=120, s=0.9: payout floor(200·0.9) = 180, pnl 180 − 120 = +60.
    ("validated long profits", "validated", "long", 200, 120, price("0.9"), 180, 60, PROFIT, True, 0, 0),
    # q=200, cost=190, s=0.9: payout 180, pnl 180 − 190 = −10 (bought above the settlement price).
    ("validated long bought dear loses", "validated", "long", 200, 190, price("0.9"), 180, -10, LOSS, True, 0, 0),
    # q=7, cost=3, s=0.55: q·s = 3.85, not whole, payout floor = 3; pnl 3 − 3 = 0, which is no profit.
    ("validated long q·s not whole", "validated", "long", 7, 3, price("0.55"), 3, 0, LOSS, True, 0, 0),
    # q=10**18+1, s=0.5: q·s = 500000000000000000.5, payout 500000000000000000; pnl − 4·10**17 cost.
    (
        "validated long 18-decimal rounding",
        "validated",
        "long",
        WAD + 1,
        4 * 10**17,
        price("0.5"),
        5 * 10**17,
        10**17,
        PROFIT,
        True,
        0,
        0,
    ),
    # validated, short: payout 0, pnl −cost.
    # q=200, cost=80, s=0.9: payout 0, pnl −80.
    ("validated short loses cost", "validated", "short", 200, 80, price("0.9"), 0, -80, LOSS, True, 0, 0),
    # deprecated, long: payout 0, pnl −cost.
    # q=200, cost=120, s=0.1: payout 0, pnl −120.
    ("deprecated long loses cost", "deprecated", "long", 200, 120, price("0.1"), 0, -120, LOSS, True, 0, 0),
    # deprecated, short: payout floor(q·(1 − s)).
    # q=200, cost=80, s=0.1: payout floor(200·0.9) = 180, pnl 180 − 80 = +100.
    ("deprecated short profits", "deprecated", "short", 200, 80, price("0.1"), 180, 100, PROFIT, True, 0, 0),
    # q=333, cost=100, s=0.3: q·(1 − s) = 233.1, payout floor = 233, pnl +133.
    ("deprecated short q·(1−s) not whole", "deprecated", "short", 333, 100, price("0.3"), 233, 133, PROFIT, True, 0, 0),
    # q=10, cost=9, s=0.95: q·(1 − s) = 0.5, payout floor = 0, pnl −9.
    ("deprecated short rounds to nothing", "deprecated", "short", 10, 9, price("0.95"), 0, -9, LOSS, True, 0, 0),
    # flagged, long: cost//2 back now; q and cost halve (the remainder stays), entry unchanged; pnl 0.
    # q=200, cost=120: refund 60, 100 shares and 60 cost left.
    ("flagged long halves", "flagged", "long", 200, 120, price("0.2"), 60, 0, PARTIAL, False, 100, 60),
    # q=201, cost=121: refund floor(121/2) = 60; shares left 201 − floor(201/2) = 101; cost left 121 − 60 = 61.
    (
        "flagged long odd halves round for the pool",
        "flagged",
        "long",
        201,
        121,
        price("0.2"),
        60,
        0,
        PARTIAL,
        False,
        101,
        61,
    ),
    # q=1, cost=1: refund floor(1/2) = 0; one share and one unit of cost stay.
    ("flagged long too small to halve", "flagged", "long", 1, 1, price("0.2"), 0, 0, PARTIAL, False, 1, 1),
    # flagged, short: cost//4 paid as a bonus, which is profit; the position stays whole.
    # q=200, cost=120: bonus 30, pnl +30, 200 shares and 120 cost stay.
    ("flagged short gets a quarter", "flagged", "short", 200, 120, price("0.2"), 30, 30, PARTIAL, False, 200, 120),
    # cost=123: bonus floor(123/4) = 30 (not 30.75).
    ("flagged short bonus rounds down", "flagged", "short", 200, 123, price("0.2"), 30, 30, PARTIAL, False, 200, 123),
    # cost=3: bonus floor(3/4) = 0.
    ("flagged short bonus rounds to nothing", "flagged", "short", 9, 3, price("0.2"), 0, 0, PARTIAL, False, 9, 3),
]


@pytest.mark.parametrize(
    ("case", "state", "side", "quantity", "cost", "s", "payout", "pnl", "reason", "terminal", "q_left", "cost_left"),
    SETTLEMENT_TABLE,
    ids=[row[0] for row in SETTLEMENT_TABLE],
)
def test_compute_settlement_pnl_when_table_row_then_hand_worked_outcome(
    case, state, side, quantity, cost, s, payout, pnl, reason, terminal, q_left, cost_left
):
    outcome = compute_settlement_pnl(FakePosition(side, quantity, cost), s, state)
    assert outcome.payout_units == payout
    assert outcome.pnl_units == pnl
    assert outcome.reason == reason
    assert outcome.terminal is terminal
    assert (outcome.quantity_left_units, outcome.cost_left_units) == (q_left, cost_left)
    # What the position gave back to the pool: payout − pnl; a terminal settlement releases the whole cost.
    assert outcome.cost_released_units == payout - pnl
    if terminal:
        assert outcome.cost_released_units == cost
        assert outcome.correct is (payout > cost)


def test_compute_settlement_pnl_when_flagged_then_price_does_not_matter():
    position = FakePosition("long", 201, 121)
    outcomes = {compute_settlement_pnl(position, price(s), "flagged") for s in ("0.01", "0.5", "0.99")}
    assert len(outcomes) == 1


def test_compute_settlement_pnl_when_flagged_long_then_entry_price_stays_put():
    # q=200, cost=120: entry 120/200 = 0.6 before; 60/100 = 0.6 after.
    outcome = compute_settlement_pnl(FakePosition("long", 200, 120), price("0.4"), "flagged")
    assert outcome.cost_left_units * 200 == 120 * outcome.quantity_left_units


def test_compute_settlement_pnl_when_validated_and_deprecated_then_mirror_images():
    # A long settled validated at s pays what a short settled deprecated at 1 − s pays.
    for s in ("0.1", "0.37", "0.5", "0.9"):
        long = compute_settlement_pnl(FakePosition("long", 1_234, 500), price(s), "validated")
        short = compute_settlement_pnl(FakePosition("short", 1_234, 500), WAD - price(s), "deprecated")
        assert long == short


@pytest.mark.parametrize("bad_price_wad", [0, WAD, -1, WAD + 1], ids=["zero", "one", "negative", "above one"])
def test_compute_settlement_pnl_when_price_not_strictly_inside_0_1_then_invalid_input(bad_price_wad):
    for state in ("validated", "deprecated", "flagged"):
        with pytest.raises(InvalidInputError):
            compute_settlement_pnl(FakePosition("long", 200, 120), bad_price_wad, state)


@pytest.mark.parametrize("state", ["challenged", "listed", "archived", ""])
def test_compute_settlement_pnl_when_state_settles_nothing_then_invalid_input(state):
    for side in ("long", "short"):
        with pytest.raises(InvalidInputError):
            compute_settlement_pnl(FakePosition(side, 200, 120), price("0.5"), state)


# Reputation --------------------------------------------------------------------------------

REFERENCE_UNITS = 100


def test_believability_when_new_agent_then_starts_at_one_half():
    assert REPUTATION_START_WAD == WAD // 2
    assert LEARNING_RATE_WAD == price("0.2")


def test_stake_weight_when_stake_equals_reference_then_one_half_and_grows_with_stake():
    # w = stake / (stake + reference): 100/200 = 0.5, 300/400 = 0.75, 0/100 = 0.
    assert stake_weight_wad(100, REFERENCE_UNITS) == price("0.5")
    assert stake_weight_wad(300, REFERENCE_UNITS) == price("0.75")
    assert stake_weight_wad(0, REFERENCE_UNITS) == 0


def test_update_believability_when_correct_with_reference_stake_then_exact_hand_value():
    # b = 0.5, correct (y = 1), stake = reference so w = 0.5:
    # b' = 0.5 + 0.2·0.5·(1 − 0.5) = 0.5 + 0.05 = 0.55.
    assert update_believability_wad(price("0.5"), True, 100, REFERENCE_UNITS) == price("0.55")


def test_update_believability_when_incorrect_with_triple_stake_then_exact_hand_value():
    # b = 0.55, incorrect (y = 0), stake = 3·reference so w = 0.75:
    # b' = 0.55 + 0.2·0.75·(0 − 0.55) = 0.55 − 0.0825 = 0.4675.
    assert update_believability_wad(price("0.55"), False, 300, REFERENCE_UNITS) == price("0.4675")


def test_update_believability_when_correct_then_rises_and_when_incorrect_then_falls():
    for before in (price("0.1"), price("0.5"), price("0.9")):
        assert update_believability_wad(before, True, 50, REFERENCE_UNITS) > before
        assert update_believability_wad(before, False, 50, REFERENCE_UNITS) < before


def test_update_believability_when_larger_stake_then_moves_further():
    before = price("0.5")
    small_up, large_up = (update_believability_wad(before, True, stake, REFERENCE_UNITS) for stake in (10, 1_000))
    small_down, large_down = (update_believability_wad(before, False, stake, REFERENCE_UNITS) for stake in (10, 1_000))
    assert before < small_up < large_up
    assert before > small_down > large_down


def test_update_believability_when_already_at_a_bound_then_stays_there():
    assert update_believability_wad(WAD, True, 10**30, REFERENCE_UNITS) == WAD
    assert update_believability_wad(0, False, 10**30, REFERENCE_UNITS) == 0


@settings(max_examples=300, deadline=None)
@given(
    before=st.integers(min_value=0, max_value=WAD),
    correct=st.booleans(),
    stake=st.integers(min_value=0, max_value=10**40),
    reference=st.integers(min_value=1, max_value=10**30),
)
def test_update_believability_when_any_input_then_stays_in_0_1_and_moves_toward_outcome(
    before, correct, stake, reference
):
    after = update_believability_wad(before, correct, stake, reference)
    assert 0 <= after <= WAD
    if correct:
        assert before <= after
    else:
        assert after <= before
    # The step never exceeds the learning rate's share of the distance to the outcome (plus one unit of rounding).
    distance = (WAD - before) if correct else before
    assert abs(after - before) <= distance * LEARNING_RATE_WAD // WAD + 1
