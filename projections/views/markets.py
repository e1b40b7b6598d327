"""Markets: one row per artifact (state, outstanding shares, pool, open interest, capital
committed) and every limit order with its status, for the book and ``--by-capital``.

Prices are not stored: the query computes them, and the depth, from q and b with the
LMSR functions, so the fold stays cheap integer arithmetic. Capital committed is the
sum of the cost still at risk in live positions (open, frozen or partially settled).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from stakeledger.domain.model.accounts import Account
from stakeledger.domain.model.artifacts import Artifact, artifact_uuid
from stakeledger.domain.model.positions import Position
from stakeledger.domain.vocabulary import TERMINAL_STATES, Side
from stakeledger.projections.store import AMOUNT, INT, TEXT, UUID, Rows, Table, uuid_text
from stakeledger.projections.views.base import View, handles, iso

ARTIFACTS = Table(
    "market_artifacts",
    columns=(
        ("aggregate_id", UUID),
        ("artifact_id", TEXT),
        ("title", TEXT),
        ("group_name", TEXT),
        ("state", TEXT),
        ("b_units", AMOUNT),
        ("min_hold_days", INT),
        ("subsidy_units", AMOUNT),
        ("q_long_units", AMOUNT),
        ("q_short_units", AMOUNT),
        ("last_price_long_wad", AMOUNT),
        ("pool_units", AMOUNT),
        ("capital_committed_units", AMOUNT),
        ("live_positions", INT),
        ("positions", INT),
        ("resting_orders", INT),
        ("orders_placed", INT),
        ("order_escrow_units", AMOUNT),
        ("open_bounty_units", AMOUNT),
        ("transitions", INT),
        ("settlement_price_wad", AMOUNT),
        ("listed_at", TEXT),
        ("listed_position", INT),
        ("updated_position", INT),
    ),
    key=("aggregate_id",),
    unique=(("artifact_id",),),
)
ORDERS = Table(
    "market_orders",
    columns=(
        ("order_id", TEXT),
        ("artifact_id", TEXT),
        ("agent", TEXT),
        ("side", TEXT),
        ("tokens_units", AMOUNT),
        ("remaining_units", AMOUNT),
        ("filled_units", AMOUNT),
        ("fills", INT),
        ("limit_price_wad", AMOUNT),
        ("expires_at", TEXT),
        ("placed_at", TEXT),
        ("placed_position", INT),
        ("sequence", INT),
        ("status", TEXT),
        ("released_units", AMOUNT),
        ("updated_position", INT),
    ),
    key=("order_id",),
    indexes=(("artifact_id", "status"), ("agent", "status")),
)
# Which artifact each position is on, and the cost it has at risk while it lives (a
# closed or settled position has no later events, so its row is not updated then).
POSITIONS = Table(
    "market_positions",
    columns=(("aggregate_id", UUID), ("artifact_key", UUID), ("cost_units", AMOUNT)),
    key=("aggregate_id",),
)
RESTING = ("open", "partially_filled")


@lru_cache(maxsize=65_536)
def artifact_key(artifact_id: str) -> int:
    return artifact_uuid(artifact_id).int


class MarketsView(View):
    name = "markets"
    version = 2
    tables = (ARTIFACTS, ORDERS, POSITIONS)

    def _artifact(self, rows: Rows, key: int, artifact_id: str | None = None) -> dict[str, Any]:
        """The artifact's row, marked to be written: callers change it in place."""
        row = rows.update("market_artifacts", key)
        if row is None:
            # A movement can name a pool before its artifact's Listed event is seen.
            row = {name: None for name in ARTIFACTS.column_names}
            row.update(
                aggregate_id=key,
                artifact_id=artifact_id or uuid_text(key),
                state=None,
                q_long_units=0,
                q_short_units=0,
                pool_units=0,
                capital_committed_units=0,
                live_positions=0,
                positions=0,
                resting_orders=0,
                orders_placed=0,
                order_escrow_units=0,
                open_bounty_units=0,
                transitions=0,
            )
            rows.put("market_artifacts", row)
        return row

    # Listing and lifecycle -------------------------------------------------------------

    @handles(Artifact.Listed)
    def listed(self, rows: Rows, position: int, event: Any) -> None:
        row = self._artifact(rows, event.originator_id.int, event.artifact_id)
        row.update(
            artifact_id=event.artifact_id,
            title=event.title,
            group_name=event.group,
            state="listed",
            b_units=event.b_units,
            min_hold_days=event.min_hold_days,
            subsidy_units=event.subsidy_units,
            last_price_long_wad=None,
            listed_at=iso(event.timestamp),
            listed_position=position,
            updated_position=position,
        )

    @handles(Artifact.Transitioned)
    def transitioned(self, rows: Rows, position: int, event: Any) -> None:
        row = self._artifact(rows, event.originator_id.int)
        row["state"] = event.to_state
        row["transitions"] += 1
        row["settlement_price_wad"] = event.price_long_wad if event.to_state in TERMINAL_STATES else None
        row["updated_position"] = position

    @handles(Artifact.ResolutionReversed)
    def resolution_reversed(self, rows: Rows, position: int, event: Any) -> None:
        """A reopen: the market trades again with the shares it had, its released orders rest again."""
        row = self._artifact(rows, event.originator_id.int)
        row["state"] = event.to_state
        row["transitions"] += 1
        row["settlement_price_wad"] = None
        row["q_long_units"], row["q_short_units"] = event.q_long_units, event.q_short_units
        for order_id in event.order_ids:
            order = rows.get("market_orders", order_id)
            if order is None:
                continue
            order["remaining_units"] = order["released_units"]
            order["released_units"] = 0
            order["status"] = "partially_filled" if order["fills"] else "open"
            order["updated_position"] = position
            rows.put("market_orders", order)
            row["order_escrow_units"] += order["remaining_units"]
            row["resting_orders"] += 1
        row["updated_position"] = position

    # Shares ---------------------------------------------------------------------------

    @handles(Artifact.Traded)
    def traded(self, rows: Rows, position: int, event: Any) -> None:
        row = self._artifact(rows, event.originator_id.int)
        column = "q_long_units" if event.side == Side.LONG else "q_short_units"
        row[column] += event.shares_delta_units
        row["last_price_long_wad"] = event.price_long_wad
        row["updated_position"] = position

    @handles(Artifact.SharesRedeemed)
    def redeemed(self, rows: Rows, position: int, event: Any) -> None:
        row = self._artifact(rows, event.originator_id.int)
        column = "q_long_units" if event.side == Side.LONG else "q_short_units"
        row[column] -= event.shares_units
        row["updated_position"] = position

    # Pool balance: a pool's movements are the sides whose counterparty is the pool -------

    @handles(Account.Debited, Account.Credited, where=lambda event: event.counterparty.startswith("pool:"))
    def moved(self, rows: Rows, position: int, event: Any) -> None:
        artifact_id = event.counterparty[5:]
        row = self._artifact(rows, artifact_key(artifact_id), artifact_id)
        # The other side debited, so the pool was credited; and the other way round.
        row["pool_units"] += event.amount_units if type(event) is Account.Debited else -event.amount_units
        row["updated_position"] = position

    # Capital committed ----------------------------------------------------------------

    @handles(Position.Opened)
    def position_opened(self, rows: Rows, position: int, event: Any) -> None:
        key = artifact_key(event.artifact_id)
        rows.put(
            "market_positions",
            {"aggregate_id": event.originator_id.int, "artifact_key": key, "cost_units": event.cost_units},
        )
        row = self._artifact(rows, key, event.artifact_id)
        row["capital_committed_units"] += event.cost_units
        row["live_positions"] += 1
        row["positions"] += 1
        row["updated_position"] = position

    @handles(Position.Closed, Position.Settled)
    def position_ended(self, rows: Rows, position: int, event: Any) -> None:
        self._commit_cost(rows, position, event, None)

    @handles(Position.SettlementReversed)
    def position_revived(self, rows: Rows, position: int, event: Any) -> None:
        """A reopened resolution puts the position's cost back at risk (its row kept the cost)."""
        held = rows.get("market_positions", event.originator_id.int)
        if held is None:
            return
        row = self._artifact(rows, held["artifact_key"])
        row["capital_committed_units"] += held["cost_units"]
        row["live_positions"] += 1
        row["updated_position"] = position

    @handles(Position.PartiallySettled, Position.PartiallyClosed)
    def position_halved(self, rows: Rows, position: int, event: Any) -> None:
        """A flag's partial settlement or a partial close: the cost left stays at risk."""
        self._commit_cost(rows, position, event, event.cost_left_units)

    def _commit_cost(self, rows: Rows, position: int, event: Any, cost_left_units: int | None) -> None:
        held = rows.get("market_positions", event.originator_id.int)
        if held is None:
            return
        row = self._artifact(rows, held["artifact_key"])
        if cost_left_units is None:
            # Closed or settled: the position has no later events, so its helper row is
            # not rewritten (a third of this view's writes on a busy market).
            row["capital_committed_units"] -= held["cost_units"]
            row["live_positions"] -= 1
        else:
            row["capital_committed_units"] += cost_left_units - held["cost_units"]
            held["cost_units"] = cost_left_units
            rows.put("market_positions", held)
        row["updated_position"] = position

    # Limit orders ---------------------------------------------------------------------

    @handles(Artifact.OrderPlaced)
    def order_placed(self, rows: Rows, position: int, event: Any) -> None:
        row = self._artifact(rows, event.originator_id.int)
        row["resting_orders"] += 1
        row["orders_placed"] += 1
        row["order_escrow_units"] += event.tokens_units
        row["updated_position"] = position
        rows.put(
            "market_orders",
            {
                "order_id": event.order_id,
                "artifact_id": row["artifact_id"],
                "agent": event.agent,
                "side": event.side,
                "tokens_units": event.tokens_units,
                "remaining_units": event.tokens_units,
                "filled_units": 0,
                "fills": 0,
                "limit_price_wad": event.limit_price_wad,
                "expires_at": iso(event.expires_at),
                "placed_at": iso(event.timestamp),
                "placed_position": position,
                "sequence": row["orders_placed"],
                "status": "open",
                "released_units": 0,
                "updated_position": position,
            },
        )

    @handles(Artifact.OrderFilled)
    def order_filled(self, rows: Rows, position: int, event: Any) -> None:
        order = rows.get("market_orders", event.order_id)
        if order is None:
            return
        order["remaining_units"] -= event.cost_units
        order["filled_units"] += event.cost_units
        order["fills"] += 1
        order["status"] = "filled" if order["remaining_units"] == 0 else "partially_filled"
        order["updated_position"] = position
        rows.put("market_orders", order)
        row = self._artifact(rows, event.originator_id.int)
        row["order_escrow_units"] -= event.cost_units
        if order["status"] == "filled":
            row["resting_orders"] -= 1
        row["updated_position"] = position

    @handles(Artifact.OrderReleased)
    def order_released(self, rows: Rows, position: int, event: Any) -> None:
        order = rows.get("market_orders", event.order_id)
        if order is None:
            return
        order["remaining_units"] = 0
        order["released_units"] = event.released_units
        order["status"] = event.why
        order["updated_position"] = position
        rows.put("market_orders", order)
        row = self._artifact(rows, event.originator_id.int)
        row["order_escrow_units"] -= event.released_units
        row["resting_orders"] -= 1
        row["updated_position"] = position

    # Bounties -------------------------------------------------------------------------

    @handles(Artifact.BountyPosted)
    def bounty_posted(self, rows: Rows, position: int, event: Any) -> None:
        row = self._artifact(rows, event.originator_id.int)
        row["open_bounty_units"] += event.amount_units
        row["updated_position"] = position

    @handles(Artifact.BountyClosed)
    def bounty_closed(self, rows: Rows, position: int, event: Any) -> None:
        row = self._artifact(rows, event.originator_id.int)
        row["open_bounty_units"] -= sum(event.shares.values())
        row["updated_position"] = position
