"""The portfolio dashboard: capital, P&L, concentration, per-market figures, rebalancing
advice and performance metrics for one agent (seed 001's dashboard, over the ledger).

Everything here reads; nothing writes. Positions are marked at their exit value: what
selling each back to the pool now would pay (``domain.rules.risk.marks``), never the pool's
price, so a position just bought shows minus its round trip. Equity is cash, plus escrow in
live resting orders, plus marks; an order past its expiry is free cash from its expiry time,
whether or not its release is written yet. The equity curve replays the log and samples the
agent's equity at the end of each day.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from stakeledger.domain.model.accounts import Account, account_uuid, agent_account_id
from stakeledger.domain.model.artifacts import Artifact
from stakeledger.domain.model.portfolio import Portfolio, portfolio_uuid
from stakeledger.domain.model.positions import Position, position_uuid
from stakeledger.domain.rules.metrics import max_drawdown, returns_from_equity, sharpe_ratio, sortino_ratio, win_rate
from stakeledger.domain.rules.risk.config import PortfolioConfig
from stakeledger.domain.rules.risk.marks import exit_value_units
from stakeledger.domain.rules.risk.rebalance import rebalance_actions
from stakeledger.domain.service.application import StakeLedger
from stakeledger.domain.service.log import iter_events
from stakeledger.domain.vocabulary import Reason


@dataclass(frozen=True)
class Holding:
    position: Position
    artifact: Artifact
    group: str | None
    value_units: int


def _portfolio(app: StakeLedger, agent: str) -> Portfolio | None:
    from eventsourcing.application import AggregateNotFoundError

    try:
        return app.repository.get(portfolio_uuid(agent))
    except AggregateNotFoundError:
        return None


def _positions(app: StakeLedger, agent: str) -> list[Position]:
    return [app.repository.get(position_uuid(pid)) for pid in app.agent_position_ids(agent)]


@dataclass(frozen=True)
class Escrow:
    """The agent's resting limit orders: ``live_units`` still parked, ``expired_units``
    in orders past their expiry whose release is not written yet (already the agent's)."""

    live_units: int
    expired_units: int


def escrow(app: StakeLedger, agent: str) -> Escrow:
    now = app.clock.now()
    live = expired = 0
    for artifact_id in app.agent_order_artifacts(agent):
        for order in app.get_artifact(artifact_id).orders.values():
            if order["agent"] != agent:
                continue
            if order["expires_at"] is not None and order["expires_at"] <= now:
                expired += order["remaining_units"]
            else:
                live += order["remaining_units"]
    return Escrow(live, expired)


def holdings(app: StakeLedger, agent: str) -> tuple[list[Holding], list[Position]]:
    """Live positions marked at exit value, and every position the agent ever held."""
    portfolio = _portfolio(app, agent)
    positions = _positions(app, agent)
    artifacts: dict[str, Artifact] = {}
    live = []
    for position in positions:
        if not position.is_live:
            continue
        artifact = artifacts.get(position.artifact_id) or artifacts.setdefault(
            position.artifact_id, app.get_artifact(position.artifact_id)
        )
        market = portfolio.market_config(artifact.artifact_id) if portfolio else None
        group = (market.correlation_group if market and market.correlation_group else None) or artifact.group
        value = exit_value_units(
            artifact.q_long, artifact.q_short, artifact.b_units, position.side, position.quantity_units
        )
        live.append(Holding(position, artifact, group, value))
    return live, positions


def summary(app: StakeLedger, agent: str) -> dict[str, Any]:
    agent = agent_account_id(agent)
    parked = escrow(app, agent)
    cash = app.balance_of(agent) + parked.expired_units
    live, positions = holdings(app, agent)
    deployed = sum(h.position.cost_units for h in live)
    marked = sum(h.value_units for h in live)
    equity = cash + parked.live_units + marked
    portfolio = _portfolio(app, agent)
    baseline = portfolio.baseline_units if portfolio else None
    realized = sum(p.realized_pnl_units for p in positions)
    unrealized = marked - deployed
    finished = [p for p in positions if not p.is_live]
    values = sorted((h.value_units for h in live), reverse=True)
    by_group: dict[str, int] = defaultdict(int)
    for h in live:
        by_group[h.group or "(none)"] += h.position.cost_units
    return {
        "agent": agent,
        "cash_units": str(cash),
        "equity_units": str(equity),
        "deployed_units": str(deployed),
        "available_units": str(cash),
        "escrow_units": str(parked.live_units),
        "marked_units": str(marked),
        "baseline_units": str(baseline) if baseline is not None else None,
        "active_positions": len(live),
        "closed_positions": len(finished),
        "realized_pnl_units": str(realized),
        "unrealized_pnl_units": str(unrealized),
        "total_pnl_units": str(realized + unrealized),
        "total_return_pct": _pct(equity - baseline, baseline) if baseline else None,
        "concentration_top1_pct": _pct(sum(values[:1]), equity),
        "concentration_top3_pct": _pct(sum(values[:3]), equity),
        "win_rate_pct": _pct(sum(1 for p in finished if p.realized_pnl_units > 0), len(finished)) if finished else None,
        "exposure_by_group_units": {group: str(units) for group, units in sorted(by_group.items())},
        "risk_limited": portfolio is not None,
        "rejections": portfolio.rejections if portfolio else 0,
        "liquidations": portfolio.liquidations if portfolio else 0,
    }


def concentration(app: StakeLedger, agent: str) -> list[dict[str, Any]]:
    """Positions ranked by marked value, with cumulative share of equity."""
    agent = agent_account_id(agent)
    live, _ = holdings(app, agent)
    equity = _equity(app, agent, live)
    rows, cumulative = [], 0
    for h in sorted(live, key=lambda h: (-h.value_units, h.position.position_id)):
        cumulative += h.value_units
        rows.append(
            {
                "position": h.position.position_id,
                "artifact": h.artifact.artifact_id,
                "side": h.position.side,
                "value_units": str(h.value_units),
                "share_pct": _pct(h.value_units, equity),
                "cumulative_pct": _pct(cumulative, equity),
            }
        )
    return rows


def _equity(app: StakeLedger, agent: str, live: list[Holding]) -> int:
    """Cash, escrow (live or expired: the agent's either way) and positions at exit value."""
    parked = escrow(app, agent)
    return app.balance_of(agent) + parked.live_units + parked.expired_units + sum(h.value_units for h in live)


def pairs(app: StakeLedger, agent: str) -> list[dict[str, Any]]:
    """Per market: positions, capital deployed, marked value and return."""
    agent = agent_account_id(agent)
    live, positions = holdings(app, agent)
    rows: dict[str, dict[str, Any]] = {}
    for position in positions:
        row = rows.setdefault(
            position.artifact_id,
            {
                "artifact": position.artifact_id,
                "active": 0,
                "closed": 0,
                "deployed_units": 0,
                "value_units": 0,
                "realized_units": 0,
            },
        )
        row["realized_units"] += position.realized_pnl_units
        if not position.is_live:
            row["closed"] += 1
    for h in live:
        row = rows[h.artifact.artifact_id]
        row["active"] += 1
        row["deployed_units"] += h.position.cost_units
        row["value_units"] += h.value_units
    result = []
    for row in rows.values():
        gain = row["value_units"] - row["deployed_units"]
        result.append(
            {
                **row,
                "return_pct": _pct(gain, row["deployed_units"]) if row["deployed_units"] else None,
                **{k: str(row[k]) for k in ("deployed_units", "value_units", "realized_units")},
            }
        )
    return sorted(result, key=lambda r: r["artifact"])


def rebalance(app: StakeLedger, agent: str) -> list[dict[str, Any]]:
    """Recommended actions for positions whose weight drifted past the threshold."""
    agent = agent_account_id(agent)
    portfolio = _portfolio(app, agent)
    config = portfolio.limits if portfolio else PortfolioConfig.default(app.decimals)
    live, _ = holdings(app, agent)
    equity = _equity(app, agent, live)
    values: dict[str, int] = defaultdict(int)
    targets: dict[str, Decimal] = {}
    for h in live:
        values[h.artifact.artifact_id] += h.value_units
        market = portfolio.market_config(h.artifact.artifact_id) if portfolio else None
        targets[h.artifact.artifact_id] = (
            market.position_size_pct if market and market.position_size_pct else config.max_position_size_pct
        )
    if equity <= 0:
        return []
    actions = rebalance_actions(
        sorted(values.items()), equity, targets, config.rebalance_threshold_pct, config.max_position_size_pct
    )
    return [action.to_dict() for action in actions]


def equity_curve(app: StakeLedger, agent: str) -> list[tuple[date, int]]:
    """The agent's equity at the end of each day with activity, replayed from the log."""
    agent = agent_account_id(agent)
    account = account_uuid(agent)
    cash = 0
    q: dict[str, tuple[int, int, int]] = {}  # artifact -> (q_long, q_short, b)
    artifact_ids: dict[Any, str] = {}
    mine: dict[Any, dict[str, Any]] = {}  # position uuid -> position facts
    parked: dict[str, int] = {}  # order id -> tokens still in the agent's escrow
    curve: list[tuple[date, int]] = []

    def equity() -> int:
        marked = 0
        for facts in mine.values():
            if facts["live"]:
                q_long, q_short, b = q[facts["artifact"]]
                marked += exit_value_units(q_long, q_short, b, facts["side"], facts["quantity"])
        return cash + sum(parked.values()) + marked

    for _, event in iter_events(app):
        day = event.timestamp.date()
        if isinstance(event, Artifact.Listed):
            artifact_ids[event.originator_id] = event.artifact_id
            q[event.artifact_id] = (0, 0, event.b_units)
        elif isinstance(event, (Artifact.Traded, Artifact.SharesRedeemed)):
            artifact_id = artifact_ids[event.originator_id]
            q_long, q_short, b = q[artifact_id]
            delta = event.shares_delta_units if isinstance(event, Artifact.Traded) else -event.shares_units
            q[artifact_id] = (q_long + delta, q_short, b) if event.side == "long" else (q_long, q_short + delta, b)
        elif isinstance(event, Position.Opened) and event.owner == agent:
            mine[event.originator_id] = {
                "artifact": event.artifact_id,
                "side": event.side,
                "quantity": event.quantity_units,
                "live": True,
            }
        elif isinstance(event, (Position.Closed, Position.Settled)) and event.originator_id in mine:
            mine[event.originator_id]["live"] = False
        elif isinstance(event, Position.PartiallySettled) and event.originator_id in mine:
            mine[event.originator_id]["quantity"] = event.quantity_left_units
        elif isinstance(event, Artifact.OrderFilled) and event.order_id in parked:
            parked[event.order_id] -= event.cost_units  # escrow became a position's cost
        elif isinstance(event, (Account.Credited, Account.Debited)) and event.originator_id == account:
            cash += event.amount_units if isinstance(event, Account.Credited) else -event.amount_units
            # Escrow stays the agent's money while it rests: it leaves cash, not equity.
            order_id = event.refs.get("order")
            if event.reason == Reason.ORDER_ESCROW and order_id:
                parked[order_id] = parked.get(order_id, 0) + event.amount_units
            elif event.reason == Reason.ORDER_RELEASE and order_id in parked:
                parked[order_id] -= event.amount_units
        else:
            continue
        if cash == 0 and not mine:
            continue
        value = equity()
        if curve and curve[-1][0] == day:
            curve[-1] = (day, value)
        else:
            curve.append((day, value))
    return curve


def metrics(app: StakeLedger, agent: str, *, periods_per_year: int = 365) -> dict[str, Any]:
    """Sharpe, Sortino and max drawdown on daily equity (empyrical's conventions), win rate, returns."""
    curve = equity_curve(app, agent)
    equity = [float(units) for _, units in curve]
    returns = returns_from_equity(equity) if len(equity) > 1 else []
    _, positions = holdings(app, agent_account_id(agent))
    finished = [p.realized_pnl_units for p in positions if not p.is_live]
    return {
        "agent": agent,
        "days": len(curve),
        "sharpe": _finite(sharpe_ratio(returns, periods_per_year=periods_per_year)) if len(returns) > 1 else None,
        "sortino": _finite(sortino_ratio(returns, periods_per_year=periods_per_year)) if len(returns) > 1 else None,
        "max_drawdown_pct": _finite(max_drawdown(returns) * 100) if returns else None,
        "win_rate_pct": _finite(win_rate(finished)) if finished else None,
        "total_return_pct": _pct(curve[-1][1] - curve[0][1], curve[0][1]) if len(curve) > 1 and curve[0][1] else None,
        "periods_per_year": periods_per_year,
    }


def _pct(part: int, whole: int) -> str | None:
    if not whole:
        return None
    return str((Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.01")))


def _finite(value: float) -> float | None:
    return None if value != value or value in (float("inf"), float("-inf")) else round(value, 6)
