"""An asyncio orchestrator for one agent's multi-market portfolio, in the spirit of seed 001.

Each artifact market plays the part of seed 001's "pair". Signals for many markets are
gathered concurrently; entries are submitted with at most N in flight; price updates
re-evaluate stops and liquidation from recorded prices. The ledger calls block on the
database, so they run in worker threads and the event loop stays responsive.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from stakeledger.domain.errors import InvalidInputError, LedgerError
from stakeledger.domain.rules.risk.config import MarketConfig
from stakeledger.domain.service.application import StakeLedger
from stakeledger.projections import dashboard

Signal = Mapping[str, Any]
SignalFn = Callable[[str], Awaitable[Signal]]
MAX_CONCURRENT_LIMIT = 32


@dataclass(frozen=True)
class Entry:
    side: str
    tokens_units: int


class MultiMarketOrchestrator:
    def __init__(self, app: StakeLedger, agent: str) -> None:
        self.app = app
        self.agent = agent
        self.markets: dict[str, MarketConfig | None] = {}

    def register_market(self, artifact_id: str, config: MarketConfig | None = None) -> None:
        """Follow a market; with a config, record it as the agent's per-market settings."""
        self.app.get_artifact(artifact_id)
        if config is not None:
            self.app.configure_market(
                self.agent,
                artifact_id,
                position_size_pct=config.position_size_pct,
                trail_pct=config.trail_pct,
                correlation_group=config.correlation_group,
            )
        self.markets[artifact_id] = config

    async def check_all_entries(self, signal_fn: SignalFn) -> dict[str, bool]:
        """Ask ``signal_fn`` about every registered market at once; True where it says buy."""
        artifact_ids = list(self.markets)
        signals = await asyncio.gather(*(signal_fn(artifact_id) for artifact_id in artifact_ids))
        return {
            artifact_id: bool(signal.get("should_buy"))
            for artifact_id, signal in zip(artifact_ids, signals, strict=True)
        }

    async def submit_coordinated_entries(
        self, entries: Mapping[str, Entry], max_concurrent: int = 3
    ) -> dict[str, dict[str, Any]]:
        """Place one market order per market, at most ``max_concurrent`` in flight.
        Each result is the trade, a recorded risk rejection, or the error that refused it."""
        if not 1 <= max_concurrent <= MAX_CONCURRENT_LIMIT:
            raise InvalidInputError(f"max_concurrent must be from 1 to {MAX_CONCURRENT_LIMIT}")
        unknown = set(entries) - set(self.markets)
        if unknown:
            raise InvalidInputError(f"markets not registered: {', '.join(sorted(unknown))}")
        gate = asyncio.Semaphore(max_concurrent)
        self.peak_in_flight = 0
        in_flight = 0

        async def submit(artifact_id: str, entry: Entry) -> tuple[str, dict[str, Any]]:
            nonlocal in_flight
            async with gate:
                in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, in_flight)
                try:
                    result = await asyncio.to_thread(
                        self.app.open_position, self.agent, artifact_id, entry.side, entry.tokens_units
                    )
                except LedgerError as error:
                    result = {"error": error.code, "message": str(error)}
                finally:
                    in_flight -= 1
                return artifact_id, result

        results = await asyncio.gather(*(submit(artifact_id, entry) for artifact_id, entry in entries.items()))
        return dict(results)

    async def handle_price_update(self, artifact_id: str, price_wad: int | None = None) -> dict[str, Any]:
        """A tick on a market: re-run its stops and liquidation checks at the recorded pool
        price. A quoted ``price_wad`` from elsewhere is reported, never trusted."""
        result = await asyncio.to_thread(self.app.evaluate_risk, artifact_id)
        if price_wad is not None:
            result["external_price_wad"] = str(price_wad)
        return result

    async def emergency_liquidate_portfolio(self) -> dict[str, Any]:
        return await asyncio.to_thread(self.app.liquidate_portfolio, self.agent)

    def get_portfolio_status(self) -> dict[str, Any]:
        summary = dashboard.summary(self.app, self.agent)
        actions = dashboard.rebalance(self.app, self.agent)
        violations = [a for a in actions if a["reason"] == "MAX_POSITION_PCT"]
        return {
            "pairs_registered": len(self.markets),
            "metrics": summary,
            "risk_violations": violations,
            "rebalance_needed": bool(actions),
            "rebalance_actions": actions,
        }

    async def run_from_feed(
        self,
        base_url: str,
        strategy: Callable[[MultiMarketOrchestrator, Any], Awaitable[Any] | Any],
        *,
        interval: str = "5m",
        after: str | None = None,
        grace: float | None = None,
        stop: asyncio.Event | None = None,
    ) -> Any:
        """Run ``strategy(self, candle)`` on each candle close of the registered markets,
        following the API's live feed at ``base_url`` with reconnect-and-resume (see
        agents/feed.py). Returns the feed follower when ``stop`` is set."""
        from stakeledger.agents.feed import run_on_candle_close

        if not self.markets:
            raise InvalidInputError("register at least one market before running from the feed")
        return await run_on_candle_close(
            base_url,
            list(self.markets),
            lambda candle: strategy(self, candle),
            interval=interval,
            after=after,
            grace=grace,
            stop=stop,
        )
