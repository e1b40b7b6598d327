"""The asyncio multi-market orchestrator (seed 001's MultiPairOrchestrator over the ledger):
concurrent signal gathering, bounded concurrent entries, price ticks that fire stops,
emergency liquidation and the portfolio status. The in-memory store is enough here.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.agents.orchestrator import Entry, MultiMarketOrchestrator
from stakeledger.domain.errors import InvalidInputError
from stakeledger.domain.model.portfolio import Portfolio, portfolio_uuid
from stakeledger.domain.model.positions import Position, position_uuid
from stakeledger.domain.rules.risk.config import MarketConfig
from stakeledger.domain.service.application import StakeLedger
from stakeledger.domain.service.clock import ManualClock
from stakeledger.domain.service.ids import SeededIds
from stakeledger.domain.service.log import iter_events
from tests.conftest import stored_event_count

TOKEN = 10**6
LIQUIDITY_UNITS = 100 * TOKEN
ALICE, BOB = "alice", "bob"
MARKETS = [f"M{i}" for i in range(1, 9)]
SIGNAL_DELAY_SECONDS = 0.05


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def ledger(clock: ManualClock) -> Iterator[StakeLedger]:
    app = open_ledger("memory://", clock=clock, new_id=SeededIds(11))
    app.initialise(decimals=6)
    for name, tokens in ((ALICE, 1_000), (BOB, 5_000)):
        app.open_account(name)
        app.mint(name, tokens * TOKEN)
    for number, artifact_id in enumerate(MARKETS):
        app.list_artifact(
            artifact_id, f"Market {artifact_id}", LIQUIDITY_UNITS, group=f"g{number % 3}", min_hold_days=0
        )
    app.configure_portfolio(ALICE)
    yield app
    app.close()


@pytest.fixture
def orchestrator(ledger: StakeLedger) -> MultiMarketOrchestrator:
    orchestrator = MultiMarketOrchestrator(ledger, ALICE)
    for artifact_id in MARKETS:
        orchestrator.register_market(artifact_id)
    return orchestrator


def position_of(ledger: StakeLedger, position_id: str) -> Position:
    return ledger.repository.get(position_uuid(position_id))


def events_after(ledger: StakeLedger, after: int) -> list[Any]:
    return [event for _, event in iter_events(ledger, after=after)]


def test_check_all_entries_when_signals_are_slow_then_they_are_gathered_concurrently(orchestrator):
    async def signal(artifact_id: str) -> dict[str, Any]:
        await asyncio.sleep(SIGNAL_DELAY_SECONDS)
        return {"should_buy": artifact_id in ("M2", "M5"), "price": Decimal("0.5")}

    started = time.perf_counter()
    signals = asyncio.run(orchestrator.check_all_entries(signal))
    elapsed = time.perf_counter() - started

    assert signals == {artifact_id: artifact_id in ("M2", "M5") for artifact_id in MARKETS}
    assert elapsed < len(MARKETS) * SIGNAL_DELAY_SECONDS / 2


def test_submit_coordinated_entries_when_many_markets_then_never_more_than_max_concurrent_in_flight(
    ledger, orchestrator
):
    # A hand-written fake around the real command counts the calls that run at once in threads.
    lock, running, peak_running = threading.Lock(), [0], [0]
    real_open_position = ledger.open_position

    def counting_open_position(*args: Any, **kwargs: Any) -> dict[str, Any]:
        with lock:
            running[0] += 1
            peak_running[0] = max(peak_running[0], running[0])
        try:
            time.sleep(0.02)
            return real_open_position(*args, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    ledger.open_position = counting_open_position  # type: ignore[method-assign]
    entries = {artifact_id: Entry("long", 10 * TOKEN) for artifact_id in MARKETS}

    results = asyncio.run(orchestrator.submit_coordinated_entries(entries, max_concurrent=3))

    assert orchestrator.peak_in_flight == 3
    assert 1 < peak_running[0] <= 3
    assert set(results) == set(MARKETS)
    assert all("position" in result for result in results.values()), results
    assert sorted(result["position"] for result in results.values()) == sorted(f"{a}/p1" for a in MARKETS)
    assert ledger.balance_of(ALICE) == 1_000 * TOKEN - 80 * TOKEN


def test_submit_coordinated_entries_when_some_are_refused_then_positions_rejections_and_errors_per_market(
    ledger, orchestrator
):
    ledger.transition_artifact("M3", "validated", reason="replicated", price_wad=8 * 10**17)  # meets >= 0.7
    entries = {
        "M1": Entry("long", 20 * TOKEN),
        "M2": Entry("short", 20 * TOKEN),
        "M4": Entry("long", 60 * TOKEN),  # over the 5% position limit
        "M5": Entry("long", 1 * TOKEN),  # below the 5-token minimum
        "M3": Entry("long", 20 * TOKEN),  # the market has closed
        "M6": Entry("sideways", 20 * TOKEN),  # not a side
    }
    count = stored_event_count(ledger)

    results = asyncio.run(orchestrator.submit_coordinated_entries(entries, max_concurrent=2))

    assert orchestrator.peak_in_flight <= 2
    assert (results["M1"]["position"], results["M2"]["side"]) == ("M1/p1", "short")
    assert results["M4"]["rejected"]["reason"] == "MAX_POSITION_PCT"
    assert results["M5"]["rejected"]["reason"] == "BELOW_MIN_SIZE"
    assert results["M3"]["error"] == "STATE_CONFLICT"
    assert results["M6"]["error"] == "INVALID_INPUT"
    rejections = sorted(e.artifact_id for e in events_after(ledger, count) if isinstance(e, Portfolio.OrderRejected))
    assert rejections == ["M4", "M5"]
    assert ledger.balance_of(ALICE) == 1_000 * TOKEN - 40 * TOKEN


@pytest.mark.parametrize("max_concurrent", [0, 33])
def test_submit_coordinated_entries_when_limit_out_of_range_then_refused_and_nothing_written(
    ledger, orchestrator, max_concurrent
):
    count = stored_event_count(ledger)
    with pytest.raises(InvalidInputError):
        asyncio.run(
            orchestrator.submit_coordinated_entries({"M1": Entry("long", 10 * TOKEN)}, max_concurrent=max_concurrent)
        )
    assert stored_event_count(ledger) == count


def test_submit_coordinated_entries_when_market_not_registered_then_refused_and_nothing_written(ledger):
    orchestrator = MultiMarketOrchestrator(ledger, ALICE)
    orchestrator.register_market("M1")
    count = stored_event_count(ledger)
    with pytest.raises(InvalidInputError):
        asyncio.run(orchestrator.submit_coordinated_entries({"M2": Entry("long", 10 * TOKEN)}))
    assert stored_event_count(ledger) == count


def test_register_market_when_config_given_then_recorded_as_agent_market_settings(ledger):
    orchestrator = MultiMarketOrchestrator(ledger, ALICE)

    orchestrator.register_market(
        "M1", MarketConfig(position_size_pct=Decimal(3), trail_pct=Decimal(10), correlation_group="x")
    )

    portfolio = ledger.repository.get(portfolio_uuid(ALICE))
    assert portfolio.market_config("M1") == MarketConfig(Decimal(3), Decimal(10), "x")
    assert orchestrator.get_portfolio_status()["pairs_registered"] == 1


def test_handle_price_update_when_stop_triggered_inside_hold_then_tick_after_hold_closes_it(ledger, clock):
    ledger.list_artifact("H", "Held market", LIQUIDITY_UNITS, min_hold_days=3)
    orchestrator = MultiMarketOrchestrator(ledger, ALICE)
    orchestrator.register_market("H", MarketConfig(trail_pct=Decimal(10)))
    ledger.open_position(ALICE, "H", "long", 40 * TOKEN)
    ledger.open_position(BOB, "H", "short", 60 * TOKEN)
    assert ledger.get_artifact("H").stops["H/p1"]["triggered"] is True
    assert asyncio.run(orchestrator.handle_price_update("H"))["actions"] == []
    clock.advance(days=4)
    evaluated_wad = ledger.get_artifact("H").price_long_wad

    result = asyncio.run(orchestrator.handle_price_update("H", price_wad=10**17))

    assert [(a["action"], a["position"]) for a in result["actions"]] == [("stop", "H/p1")]
    assert result["external_price_wad"] == str(10**17)
    # The recorded pool price is the one evaluated; the quoted one is only reported.
    assert result["price_long_wad"] == str(evaluated_wad)
    assert [a["price_wad"] for a in result["actions"]] == [str(evaluated_wad)]
    position = position_of(ledger, "H/p1")
    assert (position.status, position.realized_pnl_units < 0) == ("closed", True)


def test_emergency_liquidate_portfolio_when_called_then_every_closable_position_closed(ledger, orchestrator):
    ledger.list_artifact("H", "Held market", LIQUIDITY_UNITS, min_hold_days=90)
    orchestrator.register_market("H")
    for artifact_id in ("M1", "M2", "H"):
        ledger.open_position(ALICE, artifact_id, "long", 30 * TOKEN)
    count = stored_event_count(ledger)

    result = asyncio.run(orchestrator.emergency_liquidate_portfolio())

    assert result["closed"] == ["M1/p1", "M2/p1"]
    assert [position_of(ledger, pid).status for pid in ("M1/p1", "M2/p1", "H/p1")] == [
        "liquidated",
        "liquidated",
        "open",
    ]
    liquidated = [e for e in events_after(ledger, count) if isinstance(e, Portfolio.Liquidated)]
    assert [(e.trigger, e.position_ids) for e in liquidated] == [("manual", ["M1/p1", "M2/p1"])]


def test_get_portfolio_status_when_positions_outgrow_target_then_violations_and_rebalance_advice(ledger, orchestrator):
    status = orchestrator.get_portfolio_status()
    assert set(status) == {"pairs_registered", "metrics", "risk_violations", "rebalance_needed", "rebalance_actions"}
    assert (status["pairs_registered"], status["rebalance_needed"], status["rebalance_actions"]) == (8, False, [])

    ledger.open_position(ALICE, "M1", "long", 50 * TOKEN)  # at the 5% limit at cost
    ledger.open_position(ALICE, "M2", "long", 20 * TOKEN)
    # Marks are at exit value (no gain just for buying): bob's buy lifts M1, and with it what
    # closing alice's position would pay, above the 5% limit.
    ledger.open_position(BOB, "M1", "long", 50 * TOKEN)
    status = orchestrator.get_portfolio_status()

    assert status["metrics"]["active_positions"] == 2
    assert status["metrics"]["agent"] == ALICE
    assert status["rebalance_needed"] is True
    assert [v["artifact_id"] for v in status["risk_violations"]] == ["M1"]
    assert all(v["reason"] == "MAX_POSITION_PCT" for v in status["risk_violations"])
    assert {a["artifact_id"] for a in status["rebalance_actions"]} == {"M1", "M2"}
    assert {a["artifact_id"]: a["action"] for a in status["rebalance_actions"]} == {"M1": "REDUCE", "M2": "INCREASE"}
