"""Resolution rules as pure arithmetic: thresholds per transition and the window's average price."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stakeledger.domain.errors import InvalidInputError
from stakeledger.domain.rules.resolution import (
    MICROS_PER_DAY,
    ResolutionRules,
    auto_states,
    distance_to_threshold_wad,
    prune,
    time_weighted_price_wad,
)
from stakeledger.domain.vocabulary import WAD

HOUR = 3_600 * 10**6
WEEK = 7 * MICROS_PER_DAY


def wad(text: str) -> int:
    whole, _, fraction = text.partition(".")
    return int(whole) * WAD + int(fraction.ljust(18, "0"))


@pytest.mark.parametrize(
    ("to_state", "price", "meets"),
    [
        ("validated", "0.7", True),
        ("validated", "0.699999999999999999", False),
        ("validated", "0.516", False),
        ("deprecated", "0.1", True),
        ("deprecated", "0.100000000000000001", False),
        ("flagged", "0.299999999999999999", True),
        ("flagged", "0.3", False),
        ("challenged", "0.99", True),
        ("listed", "0.01", True),
    ],
)
def test_default_rules_when_a_price_is_checked_then_seed_000_thresholds_decide(
    to_state: str, price: str, meets: bool
) -> None:
    assert ResolutionRules().meets(to_state, wad(price)) is meets


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"validated_min_wad": 0}, "validated_min must be a price"),
        ({"deprecated_max_wad": WAD}, "deprecated_max must be a price"),
        ({"flagged_below_wad": wad("0.05")}, "thresholds must be ordered"),
        ({"validated_min_wad": wad("0.2")}, "thresholds must be ordered"),
        ({"window_days": 0}, "averaging window"),
        ({"window_days": 10_000}, "averaging window"),
        ({"window_days": True}, "averaging window"),
    ],
)
def test_rules_when_out_of_range_or_unordered_then_refused_by_name(fields: dict, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        ResolutionRules(**fields)


def test_average_when_one_trade_lands_just_before_the_end_then_it_barely_moves_the_price() -> None:
    listed = 0
    points = [(listed, wad("0.5")), (1 * MICROS_PER_DAY, wad("0.8")), (WEEK - HOUR, wad("0.2"))]
    average = time_weighted_price_wad(points, WEEK, WEEK)
    # 1 day at 0.5, 6 days less an hour at 0.8, one hour at 0.2, over 7 days.
    expected = (wad("0.5") * MICROS_PER_DAY + wad("0.8") * (6 * MICROS_PER_DAY - HOUR) + wad("0.2") * HOUR) // WEEK
    assert average == expected
    assert wad("0.75") < average < wad("0.76")  # the last trade's 0.2 is not the settlement price


def test_average_when_the_market_is_younger_than_its_window_then_it_covers_the_market_s_life() -> None:
    points = [(10 * MICROS_PER_DAY, wad("0.5")), (11 * MICROS_PER_DAY, wad("0.9"))]
    assert time_weighted_price_wad(points, 12 * MICROS_PER_DAY, WEEK) == wad("0.7")


def test_average_when_older_points_precede_the_window_then_their_price_holds_into_it() -> None:
    points = [(0, wad("0.5")), (1 * MICROS_PER_DAY, wad("0.9")), (20 * MICROS_PER_DAY, wad("0.1"))]
    # Window [14, 21] days: 6 days at 0.9 (set on day 1), 1 day at 0.1.
    assert time_weighted_price_wad(points, 21 * MICROS_PER_DAY, WEEK) == (wad("0.9") * 6 + wad("0.1")) // 7


def test_average_when_resolved_at_the_instant_of_listing_then_the_listing_price() -> None:
    assert time_weighted_price_wad([(5, wad("0.5"))], 5, WEEK) == wad("0.5")


points_strategy = st.lists(
    st.tuples(st.integers(min_value=0, max_value=30 * MICROS_PER_DAY), st.integers(min_value=1, max_value=WAD - 1)),
    min_size=1,
    max_size=30,
).map(lambda raw: sorted(raw, key=lambda point: point[0]))


@settings(max_examples=200, deadline=None)
@given(points_strategy, st.integers(min_value=0, max_value=10 * MICROS_PER_DAY), st.integers(1, 10))
def test_prune_when_applied_at_the_last_point_then_every_later_average_is_unchanged(
    points: list[tuple[int, int]], later: int, window_days: int
) -> None:
    window = window_days * MICROS_PER_DAY
    pruned = prune(points, points[-1][0], window)
    end = points[-1][0] + later
    if end - window >= points[0][0]:  # the listing left the window: the average no longer depends on it
        assert time_weighted_price_wad(pruned, end, window) == time_weighted_price_wad(points, end, window)
    assert pruned[-1] == points[-1] and len(pruned) <= len(points)


@settings(max_examples=200, deadline=None)
@given(points_strategy, st.integers(min_value=1, max_value=10 * MICROS_PER_DAY))
def test_average_when_any_history_then_between_the_lowest_and_highest_price_in_play(
    points: list[tuple[int, int]], later: int
) -> None:
    end = points[-1][0] + later
    average = time_weighted_price_wad(points, end, WEEK)
    in_play = [price for at, price in points if at >= end - WEEK] + [price for at, price in points if at < end - WEEK][
        -1:
    ]
    assert min(in_play) <= average <= max(in_play)


# Automatic resolution and the correction window ---------------------------------------------------


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("listed", ("validated", "deprecated", "flagged")),  # terminal first: both due means deprecated
        ("flagged", ("validated", "deprecated")),
        ("challenged", ()),
        ("validated", ()),
        ("invalid", ()),
    ],
)
def test_auto_states_when_asked_per_state_then_terminal_states_come_first(state, expected):
    assert auto_states(state) == expected


@pytest.mark.parametrize(
    ("to_state", "average", "distance"),
    [
        ("validated", 69 * WAD // 100, WAD // 100),
        ("validated", 7 * WAD // 10, 0),
        ("deprecated", 15 * WAD // 100, 5 * WAD // 100),
        ("deprecated", WAD // 10, 0),
        ("flagged", 3 * WAD // 10, 1),  # strictly below: one unit past the bound
        ("flagged", 3 * WAD // 10 - 1, 0),
        ("listed", WAD // 2, 0),
    ],
)
def test_distance_to_threshold_when_missed_then_the_move_still_needed(to_state, average, distance):
    assert distance_to_threshold_wad(ResolutionRules(), to_state, average) == distance


@pytest.mark.parametrize(
    ("field", "value"),
    [("correction_hours", -1), ("correction_hours", 24 * 366), ("correction_hours", True), ("sustained_hours", 0),
     ("sustained_hours", 1.5), ("auto_resolve", "yes")],
)  # fmt: skip
def test_rules_when_the_window_or_period_is_bad_then_refused_with_invalid_input(field, value):
    with pytest.raises(InvalidInputError):
        ResolutionRules(**{field: value})
