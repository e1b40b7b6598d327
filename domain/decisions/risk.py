"""Risk decisions against live state: pre-trade checks, stops, emergency liquidation, Kelly.

The pure rules live in ``domain.risk``; this module feeds them the state a unit of work
has loaded and records what they decide as events. Stops and liquidations act only on
recorded prices and the unit's clock, so a replay reaches the same decisions.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

from stakeledger.domain.decisions.loading import load_artifact, load_position
from stakeledger.domain.decisions.pool import close_live_position
from stakeledger.domain.decisions.unit_of_work import UnitOfWork
from stakeledger.domain.errors import InvalidInputError, StateError
from stakeledger.domain.model.accounts import agent_account_id
from stakeledger.domain.model.artifacts import Artifact
from stakeledger.domain.model.portfolio import Portfolio, portfolio_uuid
from stakeledger.domain.model.positions import Position
from stakeledger.domain.rules.risk.config import MarketConfig, PortfolioConfig
from stakeledger.domain.rules.risk.kelly import KellySizing, kelly_order_size_units
from stakeledger.domain.rules.risk.liquidation import should_liquidate
from stakeledger.domain.rules.risk.marks import exit_value_units
from stakeledger.domain.rules.risk.pretrade import OpenExposure, OrderIntent, PortfolioState, Rejection, check_order
from stakeledger.domain.rules.risk.stops import TrailingStop, new_trailing_stop, update_trailing_stop
from stakeledger.domain.vocabulary import CHALLENGED, TRADABLE_STATES, Side

MAX_STOP_ROUNDS = 50


def load_portfolio(unit: UnitOfWork, agent: str) -> Portfolio | None:
    return unit.find(portfolio_uuid(agent), Portfolio)


def group_of(portfolio: Portfolio | None, artifact: Artifact) -> str | None:
    market = portfolio.market_config(artifact.artifact_id) if portfolio else None
    return (market.correlation_group if market and market.correlation_group else None) or artifact.group


def side_price_wad(artifact: Artifact, side: str) -> int:
    return artifact.side_price_wad(Side(side))


def exit_value_of(artifact: Artifact, position: Position) -> int:
    """What closing the position now would pay: the pool's sell-back, rounded down."""
    return exit_value_units(artifact.q_long, artifact.q_short, artifact.b_units, position.side, position.quantity_units)


def live_positions(unit: UnitOfWork, portfolio: Portfolio) -> list[Position]:
    return [position for position in (load_position(unit, pid) for pid in portfolio.position_ids) if position.is_live]


def portfolio_state(unit: UnitOfWork, portfolio: Portfolio) -> PortfolioState:
    return state_of(unit, portfolio.agent, portfolio.position_ids, portfolio)


def state_of(unit: UnitOfWork, agent: str, position_ids: list[str], portfolio: Portfolio | None) -> PortfolioState:
    """Equity = cash + tokens escrowed in the agent's resting orders + every live position
    marked at its exit value (what closing it now would pay). Escrow is still the agent's
    money, only parked; an order past its expiry is free cash, released or not."""
    cash_units = unit.account(agent).balance_units + (escrowed_units(unit, portfolio) if portfolio else 0)
    exposures, marked_units = [], 0
    for position in (load_position(unit, position_id) for position_id in position_ids):
        if not position.is_live:
            continue
        artifact = load_artifact(unit, position.artifact_id)
        marked_units += exit_value_of(artifact, position)
        exposures.append(OpenExposure(artifact.artifact_id, group_of(portfolio, artifact), position.cost_units))
    available_units = unit.account(agent).balance_units + (expired_escrow_units(unit, portfolio) if portfolio else 0)
    return PortfolioState(cash_units + marked_units, available_units, tuple(exposures))


def escrowed_units(unit: UnitOfWork, portfolio: Portfolio) -> int:
    """What the agent's resting limit orders still hold in escrow, expired ones included
    (their tokens are the agent's either way: parked, or free once released)."""
    return sum(order["remaining_units"] for order in _agent_orders(unit, portfolio))


def expired_escrow_units(unit: UnitOfWork, portfolio: Portfolio) -> int:
    """Escrow of the agent's orders past their expiry on the unit's clock but not yet released:
    available to the agent now, as the release will be effective at the expiry time."""
    return sum(
        order["remaining_units"]
        for order in _agent_orders(unit, portfolio)
        if order["expires_at"] is not None and order["expires_at"] <= unit.at
    )


def _agent_orders(unit: UnitOfWork, portfolio: Portfolio) -> list[dict[str, Any]]:
    orders = []
    for artifact_id in sorted(portfolio.order_artifacts):
        artifact = load_artifact(unit, artifact_id)
        orders.extend(order for order in artifact.orders.values() if order["agent"] == portfolio.agent)
    return orders


# Pre-trade checks ---------------------------------------------------------------------------


def pre_trade_check(
    unit: UnitOfWork,
    agent: str,
    artifact: Artifact,
    side: Side,
    tokens_units: int,
    order_id: str | None = None,
    *,
    adding_to_order: bool = False,
) -> Rejection | None:
    """Check an order against the agent's limits; a rejection is recorded as an event.
    Agents without a portfolio have no limits."""
    portfolio = load_portfolio(unit, agent)
    if portfolio is None:
        return None
    market = portfolio.market_config(artifact.artifact_id)
    intent = OrderIntent(
        artifact.artifact_id,
        side.value,
        tokens_units,
        group_of(portfolio, artifact),
        market_frozen=artifact.state == CHALLENGED,
        allow_add_to_existing=adding_to_order,
    )
    state = portfolio_state(unit, portfolio)
    if order_id is not None and adding_to_order:
        # A fill is paid from the order's escrow, not from free cash.
        state = PortfolioState(state.equity_units, state.available_units + tokens_units, state.open_positions)
    rejection = check_order(portfolio.limits, state, intent, _without_group(market))
    if rejection is not None:
        portfolio.reject(artifact.artifact_id, side.value, tokens_units, rejection, order_id, unit.at)
        unit.note_refusal()
    return rejection


def _without_group(market: MarketConfig | None) -> MarketConfig | None:
    # The group is resolved by group_of (market override, else the artifact's group).
    if market is None or market.correlation_group is None:
        return market
    return MarketConfig(market.position_size_pct, market.trail_pct, None)


def track_position(unit: UnitOfWork, position: Position, artifact: Artifact) -> None:
    """Remember a position opened under risk limits; start its stop if the market has a trail."""
    portfolio = load_portfolio(unit, position.owner)
    if portfolio is None:
        return
    portfolio.track(position.position_id, unit.at)
    artifact.watch_risk(position.owner, unit.at)
    market = portfolio.market_config(artifact.artifact_id)
    if market is not None and market.trail_pct is not None:
        start_stop(unit, artifact, position, market.trail_pct, Decimal(0))


# Trailing stops -----------------------------------------------------------------------------


def start_stop(
    unit: UnitOfWork, artifact: Artifact, position: Position, trail_pct: Decimal, min_ratchet_pct: Decimal
) -> dict[str, Any]:
    if not position.is_live:
        raise StateError(f"position {position.position_id!r} is {position.status}")
    try:
        stop = new_trailing_stop(side_price_wad(artifact, position.side), trail_pct, min_ratchet_pct)
    except ValueError as error:
        raise InvalidInputError(str(error)) from None
    artifact.set_stop(position.position_id, position.owner, position.side, stop.to_dict(), unit.at)
    return {"position": position.position_id, **{k: str(v) for k, v in stop.to_dict().items()}}


def after_price_move(unit: UnitOfWork, artifact: Artifact) -> list[dict[str, str]]:
    """Re-evaluate the market's stops and its risk-limited agents after the price moved."""
    # Closing a position here moves the price again, but nothing below calls back into this
    # function: the stop loop re-reads every stop itself (bounded by MAX_STOP_ROUNDS).
    actions = _run_stops(unit, artifact)
    for agent in list(artifact.risk_agents):
        actions.extend(check_liquidation(unit, agent, trigger=f"price:{artifact.artifact_id}"))
    return actions


def _run_stops(unit: UnitOfWork, artifact: Artifact) -> list[dict[str, str]]:
    actions: list[dict[str, str]] = []
    for _ in range(MAX_STOP_ROUNDS):
        closed_one = False
        for position_id in sorted(artifact.stops):
            entry = artifact.stops[position_id]
            position = load_position(unit, position_id)
            if not position.is_live:
                artifact.clear_stop(position_id, position.status, unit.at)
                continue
            price_wad = side_price_wad(artifact, entry["side"])
            update = update_trailing_stop(TrailingStop.from_dict(entry["stop"]), price_wad)
            if update.ratcheted:
                artifact.ratchet_stop(position_id, price_wad, update.stop.to_dict(), unit.at)
            if update.triggered and not entry["triggered"]:
                artifact.trigger_stop(position_id, price_wad, unit.at)
            if artifact.stops[position_id]["triggered"] and _may_close(unit, artifact, position):
                close_live_position(unit, position, how="stop")
                artifact.clear_stop(position_id, "closed", unit.at)
                actions.append({"action": "stop", "position": position_id, "price_wad": str(price_wad)})
                closed_one = True
                break  # the close moved the price: evaluate every stop again
        if not closed_one:
            break
    return actions


def _may_close(unit: UnitOfWork, artifact: Artifact, position: Position) -> bool:
    return position.status != "frozen" and artifact.state in TRADABLE_STATES and artifact.may_close_at(unit.at)


# Emergency liquidation ----------------------------------------------------------------------


def check_liquidation(unit: UnitOfWork, agent: str, *, trigger: str) -> list[dict[str, str]]:
    portfolio = load_portfolio(unit, agent)
    if portfolio is None:
        return []
    state = portfolio_state(unit, portfolio)
    if not should_liquidate(
        state.equity_units, portfolio.baseline_units, portfolio.limits.emergency_liquidation_loss_pct
    ):
        return []
    return liquidate(unit, portfolio, trigger=trigger, equity_units=state.equity_units)


def liquidate(
    unit: UnitOfWork, portfolio: Portfolio, *, trigger: str, equity_units: int | None = None
) -> list[dict[str, str]]:
    """Close every position that may be closed now; record the liquidation."""
    if equity_units is None:
        equity_units = portfolio_state(unit, portfolio).equity_units
    closed = []
    for position in live_positions(unit, portfolio):
        artifact = load_artifact(unit, position.artifact_id)
        if _may_close(unit, artifact, position):
            close_live_position(unit, position, how="liquidation")
            closed.append(position.position_id)
    if closed or trigger == "manual":
        # Below the breaker with nothing closable, later price moves try again; only an
        # actual liquidation (or an operator's request) is recorded.
        portfolio.liquidated(equity_units, trigger, closed, unit.at)
    return [{"action": "liquidation", "agent": portfolio.agent, "position": position_id} for position_id in closed]


# Configuration and Kelly --------------------------------------------------------------------


def configure_portfolio(
    unit: UnitOfWork, agent: str, config: PortfolioConfig, existing_position_ids: list[str]
) -> dict[str, Any]:
    account_id = agent_account_id(agent)
    unit.account(account_id)
    portfolio = load_portfolio(unit, account_id)
    if portfolio is None:
        # The baseline is the equity when limits were first set: cash plus positions at exit value.
        baseline_units = max(state_of(unit, account_id, existing_position_ids, None).equity_units, 0)
        portfolio = unit.add(Portfolio.start(account_id, config, baseline_units, existing_position_ids, unit.at))
    else:
        portfolio.reconfigure(config, unit.at)
    return {"agent": account_id, "config": portfolio.config, "baseline_units": str(portfolio.baseline_units)}


def configure_market(unit: UnitOfWork, agent: str, artifact_id: str, config: MarketConfig) -> dict[str, Any]:
    load_artifact(unit, artifact_id)
    portfolio = load_portfolio(unit, agent_account_id(agent))
    if portfolio is None:
        raise StateError(f"agent {agent!r} has no portfolio yet: run 'portfolio config {agent}' first")
    portfolio.configure_market(artifact_id, config, unit.at)
    return {"agent": agent, "artifact": artifact_id, "config": config.to_dict()}


def kelly_sizing(
    unit: UnitOfWork, agent: str, artifact: Artifact, belief_wad: int, fraction: Fraction
) -> tuple[str, KellySizing]:
    """Pick the side with the edge and size it by fractional Kelly under the agent's limits."""
    portfolio = load_portfolio(unit, agent)
    config = portfolio.limits if portfolio else PortfolioConfig.default(unit.decimals)
    if portfolio is not None:
        state = portfolio_state(unit, portfolio)
    else:
        cash = unit.account(agent).balance_units
        state = PortfolioState(cash, cash, ())
    long_wad = artifact.price_long_wad
    side = "long" if belief_wad > long_wad else "short"
    market = portfolio.market_config(artifact.artifact_id) if portfolio else None
    group = group_of(portfolio, artifact)
    sizing_market = MarketConfig(market.position_size_pct if market else None, None, group)
    sizing = kelly_order_size_units(config, state, long_wad, belief_wad, side, fraction, sizing_market)
    return side, sizing
