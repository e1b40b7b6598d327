"""Market decisions: listing, market and limit orders, fills, cancels, closes.

Each function takes a unit of work and decides against the state it has loaded, so a
batch of orders runs them one after another in one transaction and each order sees
what the earlier ones did. Money moves only through ``unit.post``; shares move only
through ``Artifact.record_trade``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from stakeledger.domain.decisions.loading import load_artifact, load_position, prefetch_trades, require_agent
from stakeledger.domain.decisions.pool import (
    MAX_FEE_BPS,
    charge_fee,
    close_live_position,
    close_part_of_position,
    fee_units,
    spendable_units,
)
from stakeledger.domain.decisions.risk import after_price_move, load_portfolio, pre_trade_check, track_position
from stakeledger.domain.decisions.settlement import resolve_if_due
from stakeledger.domain.decisions.unit_of_work import UnitOfWork
from stakeledger.domain.errors import (
    ArtifactExistsError,
    HoldPeriodError,
    InvalidAmountError,
    InvalidInputError,
    NotOwnerError,
    SlippageError,
    StateError,
    UnknownOrderError,
)
from stakeledger.domain.model.accounts import TREASURY, agent_account_id, order_escrow_account_id, pool_account_id
from stakeledger.domain.model.artifacts import Artifact, artifact_of, artifact_uuid, check_artifact_id
from stakeledger.domain.model.positions import FROZEN, Position
from stakeledger.domain.rules.lmsr import (
    average_price_wad,
    max_subsidy_units,
    sell_proceeds_units,
    shares_for_proceeds,
    shares_for_tokens,
    shares_to_reach_price,
)
from stakeledger.domain.rules.money import check_units, format_amount
from stakeledger.domain.rules.rationale import Rationale, RationaleState, rationale_state
from stakeledger.domain.rules.resolution import ResolutionRules
from stakeledger.domain.vocabulary import WAD, Reason, Side

MAX_FILLS_PER_TRADE = 500
TAKE_PROFIT = "take_profit"  # how a take-profit's sale is recorded on its position
MAX_HOLD_DAYS = 36_500


@dataclass(frozen=True)
class MarketOrder:
    agent: str
    artifact_id: str
    side: Side
    tokens_units: int
    max_price_wad: int | None = None
    min_shares_units: int | None = None
    rationale: Rationale | None = None  # why it was placed: stored on the position it opens


@dataclass(frozen=True)
class LimitOrder:
    agent: str
    artifact_id: str
    side: Side
    tokens_units: int
    limit_price_wad: int
    expires_in: timedelta | None = None  # a lifetime, counted from the transaction's clock time
    rationale: Rationale | None = None  # why it was placed: stored on the order and every position it fills


MAX_ORDER_LIFETIME_DAYS = 3650


def order_lifetime(days: float | Decimal) -> timedelta:
    """A limit order's lifetime from a number of days (a Decimal is taken exactly, to the
    microsecond): more than 0, at most ten years."""
    valid = isinstance(days, (int, float, Decimal)) and not isinstance(days, bool)
    if valid and isinstance(days, Decimal):
        valid = days.is_finite()
    if not valid or not 0 < days <= MAX_ORDER_LIFETIME_DAYS:
        raise InvalidInputError(
            f"expiry must be more than 0 and at most {MAX_ORDER_LIFETIME_DAYS} days away, got {days!r}"
        )
    if isinstance(days, Decimal):
        lifetime = timedelta(microseconds=int(days * 86_400_000_000))
    else:
        lifetime = timedelta(days=days)
    if lifetime < timedelta(seconds=1):
        raise InvalidInputError(f"expiry must be at least a second away, got {days!r} days")
    return lifetime


# Listing ------------------------------------------------------------------------------------


def list_artifact(
    unit: UnitOfWork,
    artifact_id: str,
    title: str,
    b_units: int,
    group: str | None,
    min_hold_days: int,
    rules: ResolutionRules,
    fee_bps: int = 0,
) -> dict[str, Any]:
    """Open the artifact's binary market, funding its pool with the worst-case loss b·ln 2."""
    check_artifact_id(artifact_id)
    if isinstance(b_units, bool) or not isinstance(b_units, int) or b_units <= 0:
        raise InvalidAmountError(f"liquidity must be a positive amount, got {b_units!r}")
    check_units(b_units)
    if not isinstance(title, str) or not title.strip() or len(title) > 200:
        raise InvalidInputError("title must be 1-200 characters")
    if isinstance(min_hold_days, bool) or not isinstance(min_hold_days, int) or not 0 <= min_hold_days <= MAX_HOLD_DAYS:
        raise InvalidInputError(f"min hold days must be a whole number from 0 to {MAX_HOLD_DAYS}")
    if group is not None and not (isinstance(group, str) and 0 < len(group) <= 64):
        raise InvalidInputError("group must be 1-64 characters")
    if isinstance(fee_bps, bool) or not isinstance(fee_bps, int) or not 0 <= fee_bps <= MAX_FEE_BPS:
        raise InvalidInputError(f"the trade fee must be a whole number of basis points from 0 to {MAX_FEE_BPS}")
    if unit.find(artifact_uuid(artifact_id), Artifact) is not None:
        raise ArtifactExistsError(f"artifact {artifact_id!r} already exists")
    subsidy_units = max_subsidy_units(b_units)
    artifact = unit.add(
        Artifact._create(
            Artifact.Listed,
            id=artifact_uuid(artifact_id),
            timestamp=unit.at,
            artifact_id=artifact_id,
            title=title.strip(),
            group=group,
            b_units=b_units,
            min_hold_days=min_hold_days,
            subsidy_units=subsidy_units,
            **rules.as_dict(),
        )
    )
    if fee_bps:
        artifact.set_fee(fee_bps, unit.at)
    unit.post(TREASURY, pool_account_id(artifact_id), subsidy_units, Reason.AMM_SUBSIDY, artifact=artifact.artifact_id)
    return {"artifact": artifact_id, "b_units": str(b_units), "subsidy_units": str(subsidy_units), "fee_bps": fee_bps}


# Market orders ------------------------------------------------------------------------------


def open_market_position(unit: UnitOfWork, order: MarketOrder) -> dict[str, Any]:
    """Buy the shares that ``tokens_units`` pay for, at the pool's price, then fill any
    resting limit orders the move crossed."""
    prefetch_trades(unit, [(order.agent, order.artifact_id)])
    agent = require_agent(unit, order.agent)
    check_units(order.tokens_units)
    rationale = rationale_state(order.rationale)
    artifact = load_artifact(unit, order.artifact_id)
    expire_agent_orders(unit, agent)
    rejection = pre_trade_check(unit, agent, artifact, order.side, order.tokens_units)
    if rejection is not None:
        return {
            "rejected": rejection.to_dict(),
            "artifact": artifact.artifact_id,
            "agent": agent,
            "message": rejection.describe(unit.decimals),
        }
    artifact.require_tradable()
    expire_orders(unit, artifact)
    shares_units = shares_for_tokens(
        artifact.q_long, artifact.q_short, artifact.b_units, order.side, order.tokens_units
    )
    average_wad = average_price_wad(order.tokens_units, shares_units)
    if order.max_price_wad is not None and average_wad > order.max_price_wad:
        raise SlippageError(f"average price {_price(average_wad)} would exceed the bound {_price(order.max_price_wad)}")
    if order.min_shares_units is not None and shares_units < order.min_shares_units:
        d = unit.decimals
        raise SlippageError(
            f"{format_amount(shares_units, d)} shares would fall short of the minimum "
            f"{format_amount(order.min_shares_units, d)}"
        )
    position = _buy(unit, artifact, agent, order.side, shares_units, order.tokens_units, agent, None, rationale)
    fills = fill_crossed_orders(unit, artifact)
    actions = after_price_move(unit, artifact)
    return {
        "position": position.position_id,
        "artifact": artifact.artifact_id,
        "side": order.side.value,
        "shares_units": str(shares_units),
        "cost_units": str(order.tokens_units),
        "fee_units": str(fee_units(order.tokens_units, artifact.fee_bps)),
        "average_price_wad": str(average_wad),
        "price_long_wad": str(artifact.price_long_wad),
        "fills": fills,
        **_risk(actions),
    }


def _buy(
    unit: UnitOfWork,
    artifact: Artifact,
    agent: str,
    side: Side,
    shares_units: int,
    cost_units: int,
    payer_account: str,
    order_id: str | None,
    rationale: RationaleState | None = None,
) -> Position:
    position_id = artifact.next_position_id()
    unit.post(
        payer_account,
        pool_account_id(artifact.artifact_id),
        cost_units,
        Reason.TRADE_OPEN,
        artifact=artifact.artifact_id,
        position=position_id,
        order=order_id,
    )
    charge_fee(
        unit, artifact.artifact_id, artifact.fee_bps, payer_account, cost_units, position=position_id, order=order_id
    )
    artifact.record_trade(side, shares_units, cost_units, position_id, agent, order_id, unit.at)
    position = unit.add(
        Position.open(
            position_id, agent, artifact.artifact_id, side, shares_units, cost_units, order_id, unit.at, rationale
        )
    )
    track_position(unit, position, artifact)
    return position


def close_position(
    unit: UnitOfWork,
    position_id: str,
    *,
    how: str = "close",
    owner: str | None = None,
    shares_units: int | None = None,
    tokens_units: int | None = None,
) -> dict[str, Any]:
    """Sell the position's shares back to the pool at market: all of them, ``shares_units`` of
    them, or the fewest whose sale pays at least ``tokens_units``. A part sold realises its
    share of the cost basis (pro rata, floored); the rest stays open with the remaining cost."""
    if shares_units is not None and tokens_units is not None:
        raise InvalidInputError("give the shares to sell or the tokens wanted, not both")
    if shares_units is not None:
        check_units(shares_units)
    if tokens_units is not None:
        check_units(tokens_units)
    position, artifact = _live_position_to_sell(unit, position_id, owner)
    if not artifact.may_close_at(unit.at):
        raise HoldPeriodError(
            f"artifact {artifact.artifact_id!r} must be listed longer than {artifact.min_hold_days} days before closing"
        )
    expire_orders(unit, artifact)
    sold_units = _shares_to_sell(unit, artifact, position, shares_units, tokens_units)
    cost_units = position.cost_units
    if sold_units == position.quantity_units:
        proceeds_units = close_live_position(unit, position, how=how)
        released_units = cost_units
    else:
        released_units = position.cost_of_shares(sold_units)
        proceeds_units = close_part_of_position(unit, position, sold_units, how=how)
    fills = fill_crossed_orders(unit, artifact)
    actions = after_price_move(unit, artifact)
    return {
        "position": position_id,
        "shares_sold_units": str(sold_units),
        "shares_left_units": str(position.quantity_units if position.is_live else 0),
        "proceeds_units": str(proceeds_units),
        "cost_released_units": str(released_units),
        "fee_units": str(fee_units(proceeds_units, artifact.fee_bps)),
        "pnl_units": str(proceeds_units - released_units),
        "status": position.status,
        "price_long_wad": str(artifact.price_long_wad),
        "fills": fills,
        **_risk(actions),
    }


def _live_position_to_sell(unit: UnitOfWork, position_id: str, owner: str | None) -> tuple[Position, Artifact]:
    """The position a close or a take-profit sells, checked: the owner's (when one is named),
    live, on a market that trades; the owner's expired orders are released first."""
    position = load_position(unit, position_id)
    prefetch_trades(unit, [(position.owner, position.artifact_id)])
    if owner is not None and position.owner != owner:
        raise NotOwnerError(f"position {position_id!r} belongs to another agent")
    if not position.is_live:
        raise StateError(f"position {position_id!r} is {position.status}")
    artifact = load_artifact(unit, position.artifact_id)
    artifact.require_tradable()
    expire_agent_orders(unit, position.owner)
    return position, artifact


def _shares_to_sell(
    unit: UnitOfWork, artifact: Artifact, position: Position, shares_units: int | None, tokens_units: int | None
) -> int:
    held_units = position.quantity_units
    d = unit.decimals
    if shares_units is not None:
        if shares_units > held_units:
            raise InvalidAmountError(
                f"position {position.position_id!r} holds {format_amount(held_units, d)} shares; "
                f"cannot sell {format_amount(shares_units, d)}"
            )
        return shares_units
    if tokens_units is None:
        return held_units
    side = Side(position.side)
    needed = shares_for_proceeds(artifact.q_long, artifact.q_short, artifact.b_units, side, tokens_units, held_units)
    if needed is None:
        everything = sell_proceeds_units(artifact.q_long, artifact.q_short, artifact.b_units, side, held_units)
        raise InvalidAmountError(
            f"selling all {format_amount(held_units, d)} shares of {position.position_id!r} pays "
            f"{format_amount(everything, d)} tokens, less than the {format_amount(tokens_units, d)} asked"
        )
    return needed


# Limit orders -------------------------------------------------------------------------------


def place_limit_order(unit: UnitOfWork, order: LimitOrder) -> dict[str, Any]:
    """Escrow the tokens and rest the order until the side's price falls below its limit."""
    prefetch_trades(unit, [(order.agent, order.artifact_id)])
    agent = require_agent(unit, order.agent)
    check_units(order.tokens_units)
    rationale = rationale_state(order.rationale)
    if not 0 < order.limit_price_wad < WAD:
        raise InvalidAmountError("limit price must be strictly between 0 and 1")
    expires_at = unit.at + order.expires_in if order.expires_in is not None else None
    if expires_at is not None and expires_at <= unit.at:
        raise InvalidInputError("an order must expire in the future")
    artifact = load_artifact(unit, order.artifact_id)
    expire_agent_orders(unit, agent)
    order_id = artifact.next_order_id()
    rejection = pre_trade_check(unit, agent, artifact, order.side, order.tokens_units, order_id)
    if rejection is not None:
        return {
            "rejected": rejection.to_dict(),
            "artifact": artifact.artifact_id,
            "agent": agent,
            "message": rejection.describe(unit.decimals),
        }
    artifact.require_tradable()
    expire_orders(unit, artifact)
    unit.post(
        agent,
        order_escrow_account_id(artifact.artifact_id),
        order.tokens_units,
        Reason.ORDER_ESCROW,
        artifact=artifact.artifact_id,
        order=order_id,
        # The agent's account keeps an index of its expiring escrow from this reference, so
        # the next command touching the account releases what expired (expire_agent_orders).
        expires_at=expires_at.isoformat() if expires_at is not None else None,
    )
    placed = artifact.place_order(
        agent, order.side, order.tokens_units, order.limit_price_wad, expires_at, unit.at, rationale
    )
    assert placed == order_id
    portfolio = load_portfolio(unit, agent)
    if portfolio is not None:
        portfolio.watch_orders(artifact.artifact_id, unit.at)
    fills = fill_crossed_orders(unit, artifact)
    actions = after_price_move(unit, artifact)
    return {"order": order_id, "status": artifact.order_status[order_id], "fills": fills, **_risk(actions)}


def place_take_profit(
    unit: UnitOfWork,
    position_id: str,
    limit_price_wad: int,
    expires_in: timedelta | None = None,
    *,
    owner: str | None = None,
) -> dict[str, Any]:
    """Rest a sell of the whole position that fills while its side's price is above the limit
    (at once, if it already is), in the same transaction as the trade that moved the price."""
    if isinstance(limit_price_wad, bool) or not isinstance(limit_price_wad, int) or not 0 < limit_price_wad < WAD:
        raise InvalidAmountError("limit price must be strictly between 0 and 1")
    expires_at = unit.at + expires_in if expires_in is not None else None
    if expires_at is not None and expires_at <= unit.at:
        raise InvalidInputError("an order must expire in the future")
    position, artifact = _live_position_to_sell(unit, position_id, owner)
    expire_orders(unit, artifact)
    for resting in artifact.resting_take_profits():
        if resting["position_id"] == position_id and (resting["expires_at"] is None or resting["expires_at"] > unit.at):
            raise StateError(
                f"position {position_id!r} already has take-profit {resting['order_id']!r}; cancel it first"
            )
    order_id = artifact.place_take_profit(
        position_id, position.owner, Side(position.side), limit_price_wad, expires_at, unit.at
    )
    fills = fill_crossed_orders(unit, artifact)
    actions = after_price_move(unit, artifact)
    return {
        "order": order_id,
        "position": position_id,
        "limit_price_wad": str(limit_price_wad),
        "status": artifact.take_profits[order_id]["status"],
        "fills": fills,
        **_risk(actions),
    }


def _cancel_take_profit(unit: UnitOfWork, artifact: Artifact, order_id: str, agent: str | None) -> dict[str, Any]:
    order = artifact.take_profits[order_id]
    if order["status"] not in ("open", "partially_filled"):
        raise StateError(f"order {order_id!r} is already {order['status']}")
    if agent is not None and order["agent"] != agent_account_id(agent):
        raise NotOwnerError(f"order {order_id!r} belongs to another agent")
    if order["expires_at"] is not None and order["expires_at"] <= unit.at:
        artifact.end_take_profit(order_id, "expired", unit.at)
        return {"order": order_id, "status": "expired", "released_units": "0"}
    artifact.require_tradable()  # a challenged market freezes cancels too
    artifact.end_take_profit(order_id, "cancelled", unit.at)
    return {"order": order_id, "status": "cancelled", "released_units": "0"}


def cancel_order(unit: UnitOfWork, order_id: str, agent: str | None) -> dict[str, Any]:
    """Release a resting order's escrow (a take-profit holds none); ``agent``, when given, must
    be the one who placed it."""
    artifact = load_artifact(unit, artifact_of(order_id))
    if order_id in artifact.take_profits:
        return _cancel_take_profit(unit, artifact, order_id, agent)
    status = artifact.order_status.get(order_id)
    if status is None:
        raise UnknownOrderError(f"unknown order {order_id!r}")
    order = artifact.orders.get(order_id)
    if order is None:
        raise StateError(f"order {order_id!r} is already {status}")
    if agent is not None and order["agent"] != agent_account_id(agent):
        raise NotOwnerError(f"order {order_id!r} belongs to another agent")
    if order["expires_at"] is not None and order["expires_at"] <= unit.at:
        # It died at its expiry time: the release says so, whoever asked first.
        released_units = _release(unit, artifact, order_id, "expired")
        return {"order": order_id, "status": "expired", "released_units": str(released_units)}
    artifact.require_tradable()  # a challenged market freezes cancels too
    released_units = _release(unit, artifact, order_id, "cancelled")
    return {"order": order_id, "status": "cancelled", "released_units": str(released_units)}


def expire_orders(unit: UnitOfWork, artifact: Artifact) -> list[str]:
    """Release every resting order whose expiry has passed on the unit's clock.

    Nothing can fill an order after its expiry (every fill and trade expires first), so what
    is released is exactly what the order held at its expiry time, whenever the release is
    written: the worker, the sweep, the next trade on the market or the next command on the
    agent's account all write the same amounts. The posting names the expiry time
    (``expired_at``); readers treat the escrow as free from then on."""
    expired = [
        order_id
        for order_id, order in artifact.orders.items()
        if order["expires_at"] is not None and order["expires_at"] <= unit.at
    ]
    for order_id in sorted(expired, key=lambda o: (artifact.orders[o]["expires_at"], o)):
        _release(unit, artifact, order_id, "expired")
    return expired


def expire_agent_orders(unit: UnitOfWork, agent: str) -> list[str]:
    """Release the agent's orders that expired by the unit's clock, on every market: the
    first thing a command touching the agent's account does."""
    released = []
    for artifact_id, order_id in unit.account(agent).orders_due(unit.at):
        artifact = load_artifact(unit, artifact_id)
        order = artifact.orders.get(order_id)
        if order is not None and order["expires_at"] is not None and order["expires_at"] <= unit.at:
            _release(unit, artifact, order_id, "expired")
            released.append(order_id)
    return released


def expire_due_orders(unit: UnitOfWork, artifact_ids: list[str]) -> list[dict[str, str]]:
    """The sweep: release every expired order on the named markets."""
    released = []
    for artifact_id in artifact_ids:
        artifact = load_artifact(unit, artifact_id)
        for order_id in expire_orders(unit, artifact):
            released.append({"order": order_id, "artifact": artifact_id})
    return released


def release_all_orders(unit: UnitOfWork, artifact: Artifact, why: str) -> int:
    return sum(_release(unit, artifact, order_id, why) for order_id in list(artifact.orders))


def _release(unit: UnitOfWork, artifact: Artifact, order_id: str, why: str) -> int:
    order = artifact.orders[order_id]
    released_units = artifact.release_order(order_id, why, unit.at)
    if released_units > 0:
        expired_at = order["expires_at"].isoformat() if why == "expired" else None
        unit.post(
            order_escrow_account_id(artifact.artifact_id),
            order["agent"],
            released_units,
            Reason.ORDER_RELEASE,
            artifact=artifact.artifact_id,
            order=order_id,
            expired_at=expired_at,
        )
    return released_units


def fill_crossed_orders(unit: UnitOfWork, artifact: Artifact) -> list[dict[str, str]]:
    """Fill what the last price move crossed: resting buy limits whose side's price is now
    below their limit, and take-profits whose side's price is now above theirs. A take-profit's
    sale moves the price back, which may cross buy limits again: the two alternate until
    neither fills."""
    if artifact.state not in ("listed", "flagged"):
        return []
    fills: list[dict[str, str]] = []
    for _ in range(MAX_FILLS_PER_TRADE):
        fills += _fill_buy_orders(unit, artifact)
        sold = _fill_take_profits(unit, artifact)
        if not sold:
            break
        fills += sold
    resolve_if_due(unit, artifact)  # the one hook of automatic resolution (opt-in per market)
    return fills


def _fill_buy_orders(unit: UnitOfWork, artifact: Artifact) -> list[dict[str, str]]:
    """Fill resting orders whose side's price is now below their limit, best limit first,
    then oldest first. A fill buys only up to the limit price, so its average price never
    exceeds the limit; what it cannot spend keeps resting."""
    fills: list[dict[str, str]] = []
    skipped: set[str] = set()
    for _ in range(MAX_FILLS_PER_TRADE):
        crossed = [
            order
            for order in artifact.orders.values()
            if order["order_id"] not in skipped
            and artifact.side_price_wad(Side(order["side"])) < order["limit_price_wad"]
        ]
        if not crossed:
            break
        order = min(crossed, key=lambda o: (-o["limit_price_wad"], o["sequence"]))
        side = Side(order["side"])
        target_long_wad = order["limit_price_wad"] if side == Side.LONG else WAD - order["limit_price_wad"]
        move_side, shares_to_limit, cost_to_limit_units = shares_to_reach_price(
            artifact.q_long, artifact.q_short, artifact.b_units, target_long_wad
        )
        if move_side != side or shares_to_limit == 0:
            skipped.add(order["order_id"])
            continue
        fee_bps = artifact.fee_bps  # the escrow pays the fee too: what it holds covers both
        if order["remaining_units"] >= cost_to_limit_units + fee_units(cost_to_limit_units, fee_bps):
            # Buy exactly the shares that lift the price to the limit: the order stops crossing.
            shares_units, spend_units = shares_to_limit, cost_to_limit_units
        else:
            spend_units = spendable_units(order["remaining_units"], fee_bps)
            shares_units = (
                shares_for_tokens(artifact.q_long, artifact.q_short, artifact.b_units, side, spend_units)
                if spend_units > 0
                else 0
            )
        if shares_units == 0 or spend_units * WAD > order["limit_price_wad"] * shares_units:
            # Dust: rounding a few base units up would pay more than the limit per share.
            skipped.add(order["order_id"])
            continue
        if pre_trade_check(unit, order["agent"], artifact, side, spend_units, order["order_id"], adding_to_order=True):
            # The agent's limits no longer allow this fill: the order leaves the book.
            _release(unit, artifact, order["order_id"], "rejected")
            continue
        position = _buy(
            unit,
            artifact,
            order["agent"],
            side,
            shares_units,
            spend_units,
            order_escrow_account_id(artifact.artifact_id),
            order["order_id"],
            order.get("rationale"),
        )
        spent_units = spend_units + fee_units(spend_units, fee_bps)
        artifact.fill_order(order["order_id"], position.position_id, shares_units, spent_units, unit.at)
        fills.append(
            {
                "order": order["order_id"],
                "position": position.position_id,
                "shares_units": str(shares_units),
                "cost_units": str(spend_units),
                "fee_units": str(fee_units(spend_units, fee_bps)),
            }
        )
    return fills


def _fill_take_profits(unit: UnitOfWork, artifact: Artifact) -> list[dict[str, str]]:
    """Sell for take-profits whose side's price is above their limit, lowest limit first, then
    oldest: each sells only down to its limit (so its average price is at least the limit),
    at most the shares its position holds; what it cannot sell now keeps resting."""
    fills: list[dict[str, str]] = []
    skipped: set[str] = set()
    for order in sorted(artifact.resting_take_profits(), key=lambda o: o["sequence"]):
        if order["expires_at"] is not None and order["expires_at"] <= unit.at:
            artifact.end_take_profit(order["order_id"], "expired", unit.at)
    for _ in range(MAX_FILLS_PER_TRADE):
        crossed = [
            order
            for order in artifact.resting_take_profits()
            if order["order_id"] not in skipped
            and artifact.side_price_wad(Side(order["side"])) > order["limit_price_wad"]
        ]
        if not crossed:
            break
        order = min(crossed, key=lambda o: (o["limit_price_wad"], o["sequence"]))
        order_id, side = order["order_id"], Side(order["side"])
        position = load_position(unit, order["position_id"])
        if not position.is_live:
            artifact.end_take_profit(order_id, f"position_{position.status}", unit.at)
            continue
        if position.status == FROZEN or not artifact.may_close_at(unit.at):
            skipped.add(order_id)  # rests until its position may be sold
            continue
        target_long_wad = order["limit_price_wad"] if side == Side.LONG else WAD - order["limit_price_wad"]
        move_side, shares_to_limit, _ = shares_to_reach_price(
            artifact.q_long, artifact.q_short, artifact.b_units, target_long_wad
        )
        if move_side == side or shares_to_limit == 0:
            skipped.add(order_id)
            continue
        shares_units = min(shares_to_limit, position.quantity_units)
        proceeds_units = sell_proceeds_units(artifact.q_long, artifact.q_short, artifact.b_units, side, shares_units)
        if proceeds_units * WAD < order["limit_price_wad"] * shares_units:
            skipped.add(order_id)  # dust: rounding down would sell below the limit
            continue
        done = shares_units == position.quantity_units
        if done:
            proceeds_units = close_live_position(unit, position, how=TAKE_PROFIT)
        else:
            proceeds_units = close_part_of_position(unit, position, shares_units, how=TAKE_PROFIT)
        artifact.fill_take_profit(order_id, shares_units, proceeds_units, done, unit.at)
        fills.append(
            {
                "order": order_id,
                "kind": TAKE_PROFIT,
                "position": position.position_id,
                "shares_units": str(shares_units),
                "proceeds_units": str(proceeds_units),
            }
        )
    return fills


def _risk(actions: list[dict[str, str]]) -> dict[str, Any]:
    """Stops and liquidations a trade set off, when there were any."""
    return {"risk_actions": actions} if actions else {}


def _price(wad: int) -> str:
    return str((Decimal(wad) / WAD).quantize(Decimal("0.000001")))
