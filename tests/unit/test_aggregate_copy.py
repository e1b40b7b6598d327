"""The aggregate cache's copy (domain/model/copying.py) shares only what cannot change.

Every aggregate of the demo's log (markets with resting orders, stops, take-profits, bounties
and settled transitions; accounts with expiring escrow; portfolios; positions) is copied as
the cache copies it, and the copy must equal the original and share no mutable object with
it, so a command that changes its copy and then fails leaves the cached original as it was.
The rule the copy relies on is checked too: every tuple in an aggregate's state holds only
immutable values."""

from __future__ import annotations

import contextlib
import copy
import io
from collections.abc import Iterator
from enum import Enum
from typing import Any

import pytest

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.domain.model.copying import IMMUTABLE, copy_state
from stakeledger.domain.rules.rationale import Rationale
from stakeledger.domain.service.application import StakeLedger
from stakeledger.domain.service.clock import ManualClock
from stakeledger.domain.service.ids import SeededIds


@pytest.fixture(scope="module")
def demo() -> Iterator[StakeLedger]:
    from stakeledger.cli.demo import Demo

    clock = ManualClock()
    app = open_ledger("memory://", clock=clock, new_id=SeededIds(2026))
    with contextlib.redirect_stdout(io.StringIO()):
        Demo(app, clock).run()
    # The demo ends with every order filled or gone: rest a few, with their reasons, to copy too.
    why = Rationale(belief_wad=6 * 10**17, reasoning="copy me", features={"feat_mom_lo": 10**17})
    app.open_account("copier")
    app.mint("copier", 1_000 * 10**18)
    opened = app.open_position("copier", "ART-LLM", "long", 10 * 10**18, rationale=why)
    app.place_limit_order("copier", "ART-LLM", "long", 5 * 10**18, 10**17, expires_in_days=3, rationale=why)
    app.place_take_profit(opened["position"], 99 * 10**16)
    yield app
    app.close()


@pytest.fixture(scope="module")
def aggregates(demo: StakeLedger) -> list[Any]:
    ids = dict.fromkeys(n.originator_id for n in demo.recorder.select_notifications(start=1, limit=10**7))
    return [demo.repository.get(aggregate_id) for aggregate_id in ids]


def mutable_parts(value: Any) -> Iterator[Any]:
    """Every object reachable from ``value`` that could change in place."""
    if (type(value) in IMMUTABLE and type(value) is not tuple) or isinstance(value, (Enum, type)):
        return
    if type(value) is not tuple:
        yield value
    children = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple, set)) else ()
    if hasattr(value, "__dict__") and not isinstance(value, type):
        children = [*children, *vars(value).values()]
    for child in children:
        yield from mutable_parts(child)


def test_the_demo_has_the_state_worth_copying(aggregates):
    kinds = {type(aggregate).__name__ for aggregate in aggregates}
    assert {"Account", "Artifact", "Position", "Portfolio"} <= kinds, kinds
    markets = [aggregate for aggregate in aggregates if type(aggregate).__name__ == "Artifact"]
    for held in ("orders", "stops", "take_profits", "bounties", "price_points", "before_resolution"):
        assert any(getattr(market, held) for market in markets), held
    assert any(a.expiring_orders for a in aggregates if type(a).__name__ == "Account")


def test_a_copy_equals_the_original_and_shares_no_mutable_object(aggregates):
    for aggregate in aggregates:
        duplicate = copy.deepcopy(aggregate)
        assert type(duplicate) is type(aggregate) and vars(duplicate) == vars(aggregate), aggregate
        shared = {id(part) for part in mutable_parts(vars(aggregate))} & {
            id(part) for part in mutable_parts(vars(duplicate))
        }
        assert not shared, (type(aggregate).__name__, aggregate.id)


def test_every_tuple_in_an_aggregates_state_holds_only_immutable_values(aggregates):
    def tuples(value: Any) -> Iterator[tuple]:
        if isinstance(value, tuple):
            yield value
        children = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else ()
        for child in children:
            yield from tuples(child)

    for aggregate in aggregates:
        for held in tuples(vars(aggregate)):
            assert not [part for item in held for part in mutable_parts(item)], (type(aggregate).__name__, held)


def test_copy_state_when_values_are_mutable_then_they_are_copied_and_immutable_ones_shared():
    points = ((1, 2), (3, 4))
    state = {"ids": ["a", "b"], "nested": {"x": [1, {"y": 2}]}, "points": points, "odd": {1, 2}}
    duplicate = copy_state(state)
    assert duplicate == state and duplicate["points"] is points
    duplicate["ids"].append("c")
    duplicate["nested"]["x"][1]["y"] = 3
    duplicate["odd"].add(3)
    assert state == {"ids": ["a", "b"], "nested": {"x": [1, {"y": 2}]}, "points": points, "odd": {1, 2}}


def test_a_failed_command_leaves_the_cached_market_as_it_was(demo: StakeLedger):
    market = next(a for a in (demo.repository.get(i) for i in _artifact_ids(demo)) if a.position_ids)
    before = copy.deepcopy(vars(market))
    loaded = demo.repository.get(market.id)  # what a command gets from the cache
    loaded.position_ids.append("P-NEVER")
    loaded.orders["O-NEVER"] = {"status": "open"}
    assert vars(demo.repository.get(market.id)) == before


def _artifact_ids(demo: StakeLedger) -> list[Any]:
    notifications = demo.recorder.select_notifications(start=1, limit=10**7)
    return list(dict.fromkeys(n.originator_id for n in notifications if n.topic.endswith("Artifact.Listed")))
