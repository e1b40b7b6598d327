"""Portfolio: every position of every agent with its status, cost still at risk and
realised P&L, mirroring the Position aggregate's own fold event for event; and every
order the risk engine rejected, and every emergency liquidation, with its reason.

Resting orders per agent come from the markets view's order table; unrealised P&L is
marked at read time against the market's current price (projections.queries).
"""

from __future__ import annotations

from typing import Any

from stakeledger.domain.model.portfolio import Portfolio
from stakeledger.domain.model.positions import CLOSED, FROZEN, LIQUIDATED, OPEN, PARTIALLY_SETTLED, SETTLED, Position
from stakeledger.projections.store import AMOUNT, INT, JSON, TEXT, UUID, Rows, Table
from stakeledger.projections.views.base import View, handles, iso

POSITIONS = Table(
    "portfolio_positions",
    columns=(
        ("aggregate_id", UUID),
        ("position_id", TEXT),
        ("owner", TEXT),
        ("artifact_id", TEXT),
        ("side", TEXT),
        ("quantity_units", AMOUNT),
        ("cost_units", AMOUNT),
        ("entry_price_wad", AMOUNT),
        ("order_id", TEXT),
        ("status", TEXT),
        ("status_before_freeze", TEXT),
        ("realized_pnl_units", AMOUNT),
        ("proceeds_units", AMOUNT),
        ("payout_units", AMOUNT),
        ("opened_at", TEXT),
        ("closed_at", TEXT),
        ("opened_position", INT),
        ("updated_position", INT),
        ("rationale", JSON),  # why the order was placed: its event's rationale (ints, text) or None
    ),
    key=("aggregate_id",),
    unique=(("position_id",),),
    indexes=(("owner", "opened_position"), ("artifact_id",)),
)
# Risk decisions: a rejected order (kind "rejected", with its reason code and context) or
# an emergency liquidation (kind "liquidated", reason = its trigger), one row each.
RISK_EVENTS = Table(
    "portfolio_risk_events",
    columns=(
        ("position", INT),
        ("agent", TEXT),
        ("kind", TEXT),
        ("reason", TEXT),
        ("artifact_id", TEXT),
        ("side", TEXT),
        ("tokens_units", AMOUNT),
        ("order_id", TEXT),
        ("context", JSON),
        ("at", TEXT),
    ),
    key=("position",),
    indexes=(("agent", "position"),),
)
# Whose portfolio each Portfolio aggregate is: its later events carry only its id.
AGENTS = Table("portfolio_agents", columns=(("aggregate_id", UUID), ("agent", TEXT)), key=("aggregate_id",))
REJECTED, LIQUIDATED_KIND = "rejected", "liquidated"


class PortfolioView(View):
    name = "portfolio"
    version = 5
    tables = (POSITIONS, RISK_EVENTS, AGENTS)

    @handles(Portfolio.Configured)
    def configured(self, rows: Rows, position: int, event: Any) -> None:
        rows.put("portfolio_agents", {"aggregate_id": event.originator_id.int, "agent": event.agent})

    def _risk_event(self, rows: Rows, position: int, event: Any, **fields: Any) -> None:
        owner = rows.get("portfolio_agents", event.originator_id.int)
        if owner is None:
            return
        row = {
            "position": position,
            "agent": owner["agent"],
            "artifact_id": None,
            "side": None,
            "tokens_units": None,
            "order_id": None,
            "context": {},
            "at": iso(event.timestamp),
        }
        row.update(fields)
        rows.append("portfolio_risk_events", row)

    @handles(Portfolio.OrderRejected)
    def order_rejected(self, rows: Rows, position: int, event: Any) -> None:
        self._risk_event(
            rows,
            position,
            event,
            kind=REJECTED,
            reason=event.reason,
            artifact_id=event.artifact_id,
            side=event.side,
            tokens_units=event.tokens_units,
            order_id=event.order_id,
            context=dict(event.context),
        )

    @handles(Portfolio.Liquidated)
    def liquidated(self, rows: Rows, position: int, event: Any) -> None:
        self._risk_event(
            rows,
            position,
            event,
            kind=LIQUIDATED_KIND,
            reason=event.trigger,
            context={
                "equity_units": str(event.equity_units),
                "baseline_units": str(event.baseline_units),
                "positions": ",".join(event.position_ids),
            },
        )

    @handles(Position.Opened)
    def opened(self, rows: Rows, position: int, event: Any) -> None:
        rows.put(
            "portfolio_positions",
            {
                "aggregate_id": event.originator_id.int,
                "position_id": event.position_id,
                "owner": event.owner,
                "artifact_id": event.artifact_id,
                "side": event.side,
                "quantity_units": event.quantity_units,
                "cost_units": event.cost_units,
                "entry_price_wad": event.entry_price_wad,
                "order_id": event.order_id,
                "status": OPEN,
                "status_before_freeze": None,
                "realized_pnl_units": 0,
                "proceeds_units": 0,
                "payout_units": 0,
                "opened_at": iso(event.timestamp),
                "closed_at": None,
                "opened_position": position,
                "updated_position": position,
                "rationale": getattr(event, "rationale", None) or None,
            },
        )

    def _position(self, rows: Rows, event: Any) -> dict[str, Any] | None:
        return rows.get("portfolio_positions", event.originator_id.int)

    @handles(Position.Closed)
    def closed(self, rows: Rows, position: int, event: Any) -> None:
        row = self._position(rows, event)
        if row is None:
            return
        row["status"] = LIQUIDATED if event.how == "liquidation" else CLOSED
        row["closed_at"] = iso(event.timestamp)
        row["realized_pnl_units"] += event.pnl_units
        row["proceeds_units"] += event.proceeds_units
        row["updated_position"] = position
        rows.put("portfolio_positions", row)

    @handles(Position.PartiallyClosed)
    def partially_closed(self, rows: Rows, position: int, event: Any) -> None:
        """Part sold back: the rest stays live with the cost it still carries."""
        row = self._position(rows, event)
        if row is None:
            return
        row["quantity_units"] = event.quantity_left_units
        row["cost_units"] = event.cost_left_units
        row["realized_pnl_units"] += event.pnl_units
        row["proceeds_units"] += event.proceeds_units
        row["updated_position"] = position
        rows.put("portfolio_positions", row)

    @handles(Position.PartiallySettled)
    def partially_settled(self, rows: Rows, position: int, event: Any) -> None:
        row = self._position(rows, event)
        if row is None:
            return
        row["status"] = PARTIALLY_SETTLED
        row["quantity_units"] = event.quantity_left_units
        row["cost_units"] = event.cost_left_units
        row["realized_pnl_units"] += event.pnl_units
        row["payout_units"] += event.payout_units
        row["updated_position"] = position
        rows.put("portfolio_positions", row)

    @handles(Position.Settled)
    def settled(self, rows: Rows, position: int, event: Any) -> None:
        row = self._position(rows, event)
        if row is None:
            return
        row["status_before_freeze"] = None
        row["status"] = SETTLED
        row["closed_at"] = iso(event.timestamp)
        row["realized_pnl_units"] += event.pnl_units
        row["payout_units"] += event.payout_units
        row["updated_position"] = position
        rows.put("portfolio_positions", row)

    @handles(Position.SettlementReversed)
    def settlement_reversed(self, rows: Rows, position: int, event: Any) -> None:
        """A reopened resolution: the position is live again in the status it had before, its
        payout and the P&L that payout realised taken back (quantity and cost were never touched)."""
        row = self._position(rows, event)
        if row is None:
            return
        row["status"] = event.status
        row["status_before_freeze"] = event.status_before_freeze
        row["closed_at"] = None
        row["realized_pnl_units"] -= event.pnl_units
        row["payout_units"] -= event.payout_units
        row["updated_position"] = position
        rows.put("portfolio_positions", row)

    @handles(Position.Frozen)
    def frozen(self, rows: Rows, position: int, event: Any) -> None:
        row = self._position(rows, event)
        if row is None:
            return
        row["status_before_freeze"] = row["status"]
        row["status"] = FROZEN
        row["updated_position"] = position
        rows.put("portfolio_positions", row)

    @handles(Position.Reopened)
    def reopened(self, rows: Rows, position: int, event: Any) -> None:
        row = self._position(rows, event)
        if row is None:
            return
        row["status"] = row["status_before_freeze"] or OPEN
        row["status_before_freeze"] = None
        row["updated_position"] = position
        rows.put("portfolio_positions", row)
