"""A momentum strategy for ``stakeledger backtest`` and for ``run_from_feed`` alike.

On a candle that moved p(long) by at least one point on at least two trades, it closes the
agent's positions against the move, then buys the side that rose with 2 % of its cash.
Every close first re-checks the agent's stops and liquidation at the recorded price.

    stakeledger backtest docs/examples/momentum_strategy.py --agent alice --interval 1h
"""

from __future__ import annotations

from stakeledger.agents.feed import Candle
from stakeledger.agents.orchestrator import Entry, MultiMarketOrchestrator
from stakeledger.domain.vocabulary import WAD
from stakeledger.projections import dashboard

MOVE_WAD = WAD // 100  # one point of probability
MIN_TRADES = 2
STAKE_BPS = 200  # 2 % of the cash the agent holds


def setup(orchestrator: MultiMarketOrchestrator) -> None:
    """Nothing to configure: markets are followed as their candles arrive."""


async def strategy(orchestrator: MultiMarketOrchestrator, candle: Candle) -> None:
    if candle.artifact not in orchestrator.markets:
        orchestrator.register_market(candle.artifact)
    await orchestrator.handle_price_update(candle.artifact)  # stops and liquidation first
    moved = candle.close_wad - candle.open_wad
    if candle.trades < MIN_TRADES or abs(moved) < MOVE_WAD:
        return
    side = "long" if moved > 0 else "short"
    app, agent = orchestrator.app, orchestrator.agent
    live, _ = dashboard.holdings(app, agent)
    for holding in live:
        if holding.artifact.artifact_id == candle.artifact and holding.position.side != side:
            app.close_position(holding.position.position_id, agent=agent)
    tokens_units = app.balance_of(agent) * STAKE_BPS // 10_000
    if tokens_units > 0:
        await orchestrator.submit_coordinated_entries({candle.artifact: Entry(side, tokens_units)})
