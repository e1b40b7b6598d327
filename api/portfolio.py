"""/api/portfolio: every portfolio and risk verb the CLI has, over HTTP.

Risk limits and per-market settings, Kelly sizing (with a dry run that only sizes),
trailing stops (set, replace, remove), batches of orders, emergency liquidation, the
dashboard (summary, concentration, pairs, rebalance) and the expiry sweep. Reads and writes
for an agent need a key that may act for that agent (the agent's own, or an admin key);
the sweep needs an admin key. Numbers in request bodies are decimal strings, as everywhere
in the API: a JSON number is refused naming the field. Refusals use the one error table
(``api/errors.py``); a risk rejection answers 409 with its reason code, as a single order
does.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Path

from stakeledger.api.errors import responses
from stakeledger.api.inputs import rationale_of
from stakeledger.api.market import PositionPath, rejected_or
from stakeledger.api.models import (
    NAME_PATTERN,
    BatchIn,
    BatchOrderIn,
    KellyIn,
    MarketConfigIn,
    PortfolioConfigIn,
    StopIn,
)
from stakeledger.api.render import human, respond
from stakeledger.api.state import Caller, CommandId, State
from stakeledger.domain.decisions.trading import LimitOrder, MarketOrder, order_lifetime
from stakeledger.domain.errors import InvalidInputError
from stakeledger.domain.model.accounts import agent_account_id
from stakeledger.domain.model.artifacts import check_side
from stakeledger.domain.rules.money import parse_amount, parse_fraction, parse_price_wad
from stakeledger.projections import dashboard

router = APIRouter(tags=["portfolio"])

AgentPath = Annotated[str, Path(pattern=NAME_PATTERN, description="An agent's name.")]
ArtifactPath = Annotated[str, Path(pattern=NAME_PATTERN, description="Artifact id.")]


def _known_agent(state: State, agent: str) -> str:
    """The agent's account id; 404 UNKNOWN_ACCOUNT before any replay of the log."""
    account_id = agent_account_id(agent)
    state.ledger.get_account(account_id)
    return account_id


# Configuration -------------------------------------------------------------------------------


@router.put(
    "/api/portfolio/{agent}/config",
    responses=responses(401, 403, 404),
    summary='Set or change an agent\'s risk limits (percentages as decimal strings: "10" is 10 %)',
)
def configure(agent: AgentPath, body: PortfolioConfigIn, caller: Caller, state: State, command_id: CommandId) -> Any:
    caller.require_agent(agent)
    d = state.decimals
    result = state.ledger.configure_portfolio(
        agent,
        command_id=command_id,
        max_position_size_pct=body.max_position_size_pct,
        max_positions=body.max_positions,
        max_correlated_exposure_pct=body.max_correlated_exposure_pct,
        max_total_exposure_pct=body.max_total_exposure_pct,
        rebalance_threshold_pct=body.rebalance_threshold_pct,
        emergency_liquidation_loss_pct=body.emergency_liquidation_loss_pct,
        min_trade_size_units=parse_amount(body.min_trade_size, d) if body.min_trade_size is not None else None,
    )
    return human(result, d)


@router.put(
    "/api/portfolio/{agent}/markets/{artifact_id}/config",
    responses=responses(401, 403, 404, 409),
    summary="Per-market settings: position size, trailing stop for new positions, correlation group",
)
def configure_market(
    agent: AgentPath,
    artifact_id: ArtifactPath,
    body: MarketConfigIn,
    caller: Caller,
    state: State,
    command_id: CommandId,
) -> Any:
    caller.require_agent(agent)
    result = state.ledger.configure_market(
        agent,
        artifact_id,
        position_size_pct=body.position_size_pct,
        trail_pct=body.trail_pct,
        correlation_group=body.correlation_group,
        command_id=command_id,
    )
    return human(result, state.decimals)


# Kelly ---------------------------------------------------------------------------------------


@router.post(
    "/api/portfolio/{agent}/kelly",
    responses=responses(401, 403, 404, 409),
    summary="Size an order by fractional Kelly under the agent's limits and place it, or only size it (dry_run)",
)
def kelly(agent: AgentPath, body: KellyIn, caller: Caller, state: State, command_id: CommandId) -> Any:
    """With ``dry_run`` the answer is the sized order alone (seed 002's ``size_order``) and
    nothing is written. Otherwise the order is placed: 201 with the trade; a size below the
    minimum or no edge answers 200 with ``placed: false`` and the reason; a risk rejection
    answers 409 with its code."""
    caller.require_agent(agent)
    d = state.decimals
    belief_wad = parse_price_wad(body.belief, "belief")
    fraction = parse_fraction(body.fraction, "fraction")
    if body.dry_run:
        if command_id is not None:
            raise InvalidInputError("a dry run writes nothing: it takes no Idempotency-Key")
        if body.rationale is not None:
            raise InvalidInputError("a dry run places no order: it records no rationale")
        return human(state.ledger.size_order(agent, body.artifact, belief_wad, fraction=fraction), d)
    result = state.ledger.kelly_order(
        agent,
        body.artifact,
        belief_wad,
        fraction=fraction,
        rationale=rationale_of(body.rationale),
        command_id=command_id,
    )
    if result.get("trade") and "rejected" in result["trade"]:
        return rejected_or(result["trade"], d)
    return respond(result, d, 201 if result["placed"] else 200)


# Stops ---------------------------------------------------------------------------------------


@router.put(
    "/api/portfolio/stops/{position_id:path}",
    responses=responses(401, 403, 404, 409),
    summary="Put a trailing stop on a position, or replace the one it has",
)
def set_stop(position_id: PositionPath, body: StopIn, caller: Caller, state: State, command_id: CommandId) -> Any:
    _require_owner(state, caller, position_id)
    result = state.ledger.set_stop(position_id, body.trail_pct, body.min_ratchet_pct, command_id=command_id)
    return human(result, state.decimals)


@router.delete(
    "/api/portfolio/stops/{position_id:path}",
    responses=responses(401, 403, 404, 409),
    summary="Remove a position's trailing stop",
)
def remove_stop(position_id: PositionPath, caller: Caller, state: State, command_id: CommandId) -> Any:
    _require_owner(state, caller, position_id)
    return human(state.ledger.remove_stop(position_id, command_id=command_id), state.decimals)


def _require_owner(state: State, caller: Caller, position_id: str) -> None:
    """A trade key may change only its own agent's stops (403 otherwise); 404 for no such position."""
    caller.require_agent(state.ledger.position_owner(position_id))


# Batches, liquidation, the sweep ------------------------------------------------------------------


@router.post(
    "/api/portfolio/orders/batch",
    status_code=201,
    responses=responses(401, 403, 404, 409),
    summary="Many market and limit orders in one transaction; risk rejections are listed by row",
)
def batch(body: BatchIn, caller: Caller, state: State, command_id: CommandId) -> Any:
    """Bad input anywhere refuses the whole batch (nothing is written). An order the risk
    limits reject is recorded and listed in ``rejected`` (row, code, message) while the
    others are placed: 201 when every order was placed, 207 when any was rejected."""
    d = state.decimals
    orders = [_order(row, index, d) for index, row in enumerate(body.orders, start=1)]
    for agent in sorted({order.agent for order in orders}):
        caller.require_agent(agent)
    result = state.ledger.trade_batch(orders, command_id=command_id)
    rejected = [
        {"row": index, "reason": r["rejected"]["reason"], "message": r.get("message")}
        for index, r in enumerate(result["results"], start=1)
        if "rejected" in r
    ]
    summary = {**result, "placed": len(result["results"]) - len(rejected), "rejected": rejected}
    return respond(summary, d, 207 if rejected else 201)


def _order(row: BatchOrderIn, index: int, decimals: int) -> MarketOrder | LimitOrder:
    side = check_side(row.side)
    tokens = parse_amount(row.tokens, decimals)
    rationale = rationale_of(row.rationale, f"order {index}: rationale")
    if row.limit_price is None:
        if row.expires_in_days is not None:
            raise InvalidInputError(f"order {index}: expires_in_days applies to limit orders only")
        return MarketOrder(
            row.agent,
            row.artifact,
            side,
            tokens,
            parse_price_wad(row.max_price, "max_price") if row.max_price is not None else None,
            parse_amount(row.min_shares, decimals) if row.min_shares is not None else None,
            rationale,
        )
    if row.max_price is not None or row.min_shares is not None:
        raise InvalidInputError(f"order {index}: max_price and min_shares apply to market orders only")
    lifetime = order_lifetime(Decimal(row.expires_in_days)) if row.expires_in_days is not None else None
    return LimitOrder(
        row.agent,
        row.artifact,
        side,
        tokens,
        parse_price_wad(row.limit_price, "limit_price"),
        expires_in=lifetime,
        rationale=rationale,
    )


@router.post(
    "/api/portfolio/{agent}/liquidate",
    responses=responses(401, 403, 404, 409),
    summary="Emergency liquidation by hand: close every position that may be closed now",
)
def liquidate(agent: AgentPath, caller: Caller, state: State, command_id: CommandId) -> Any:
    caller.require_agent(agent)
    return human(state.ledger.liquidate_portfolio(agent, command_id=command_id), state.decimals)


@router.post(
    "/api/orders/expire",
    responses=responses(401, 403),
    summary="Release the escrow of every order past its expiry, on every market (admin)",
)
def expire_orders(caller: Caller, state: State, command_id: CommandId) -> Any:
    caller.require_admin("sweeping expired orders")
    return human(state.ledger.expire_orders(command_id=command_id), state.decimals)


# The dashboard -----------------------------------------------------------------------------------


@router.get(
    "/api/portfolio/{agent}/summary",
    responses=responses(401, 403, 404),
    summary="Equity, available cash, escrow, deployed capital, P&L at exit value, concentration, exposure",
)
def summary(agent: AgentPath, caller: Caller, state: State) -> Any:
    caller.require_agent(agent)
    return human(dashboard.summary(state.ledger, _known_agent(state, agent)), state.decimals)


@router.get(
    "/api/portfolio/{agent}/concentration",
    responses=responses(401, 403, 404),
    summary="Positions ranked by exit value with their cumulative share of equity",
)
def concentration(agent: AgentPath, caller: Caller, state: State) -> Any:
    caller.require_agent(agent)
    return human(dashboard.concentration(state.ledger, _known_agent(state, agent)), state.decimals)


@router.get(
    "/api/portfolio/{agent}/pairs",
    responses=responses(401, 403, 404),
    summary="Per market: active and closed positions, capital deployed, exit value and return",
)
def pairs(agent: AgentPath, caller: Caller, state: State) -> Any:
    caller.require_agent(agent)
    return human(dashboard.pairs(state.ledger, _known_agent(state, agent)), state.decimals)


@router.get(
    "/api/portfolio/{agent}/rebalance",
    responses=responses(401, 403, 404),
    summary="Recommended actions for positions that drifted from their target weight",
)
def rebalance(agent: AgentPath, caller: Caller, state: State) -> Any:
    caller.require_agent(agent)
    return human(dashboard.rebalance(state.ledger, _known_agent(state, agent)), state.decimals)
