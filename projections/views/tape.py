"""The trade tape: one row per trade against a pool, keyed by its log position.

A row says who traded (the taker), which side, how many tokens and shares changed hands,
and p(long) before and after. ``Artifact.Traded`` carries only the price after, so the
view keeps each market's outstanding shares and liquidity (``tape_markets``) and knows
the price before: the last trade's price, or, after a settlement handed shares back to
the pool (``SharesRedeemed``), the price those shares leave. ``PriceTracker`` is that
bookkeeping, shared with the candles view, which needs the same price before.

Kinds: ``buy`` (a market order), ``limit_fill`` (a resting limit order filled by the
pool's move), ``sell`` (a position sold back by its owner), ``stop`` and ``liquidation``
(sold back by the risk engine). How a sale happened is in the position's ``Closed`` event,
saved in the same transaction as the trade, before or after it: ``tape_closes`` holds
whichever of the two came first until the other arrives.
"""

from __future__ import annotations

from typing import Any, ClassVar

from stakeledger.domain.model.artifacts import Artifact
from stakeledger.domain.model.positions import Position, position_uuid
from stakeledger.domain.rules.lmsr import prices_wad
from stakeledger.domain.vocabulary import Side
from stakeledger.projections.store import AMOUNT, INT, TEXT, UUID, Rows, Table
from stakeledger.projections.views.base import View, handles, iso

BUY, SELL, LIMIT_FILL, STOP, LIQUIDATION = "buy", "sell", "limit_fill", "stop", "liquidation"
KINDS = (BUY, SELL, LIMIT_FILL, STOP, LIQUIDATION)

TRADES = Table(
    "tape_trades",
    columns=(
        ("position", INT),
        ("artifact_id", TEXT),
        ("at", TEXT),
        ("side", TEXT),
        ("kind", TEXT),
        ("tokens_units", AMOUNT),
        ("shares_units", AMOUNT),
        ("price_before_wad", AMOUNT),
        ("price_after_wad", AMOUNT),
        ("taker", TEXT),
        ("position_id", TEXT),
        ("order_id", TEXT),
    ),
    key=("position",),
    indexes=(("artifact_id", "position"),),
)


# A sale waiting for its other half: the tape row of the trade, or how the position closed.
CLOSES = Table(
    "tape_closes",
    columns=(("aggregate_id", UUID), ("tape_position", INT), ("how", TEXT)),
    key=("aggregate_id",),
)


def market_table(name: str) -> Table:
    """Per artifact: its id, liquidity, outstanding shares and p(long) now."""
    return Table(
        name,
        columns=(
            ("aggregate_id", UUID),
            ("artifact_id", TEXT),
            ("b_units", AMOUNT),
            ("q_long_units", AMOUNT),
            ("q_short_units", AMOUNT),
            ("price_long_wad", AMOUNT),
        ),
        key=("aggregate_id",),
    )


def trade_kind(event: Any) -> str:
    if event.shares_delta_units < 0:
        return SELL
    return LIMIT_FILL if event.order_id else BUY


class PriceTracker:
    """Handlers that keep ``markets_table`` current, and ``_trade`` for a view's own
    Traded handler: it moves the market and returns (artifact id, price before)."""

    markets_table: ClassVar[str]

    @handles(Artifact.Listed)
    def listed(self, rows: Rows, position: int, event: Any) -> None:
        rows.put(
            self.markets_table,
            {
                "aggregate_id": event.originator_id.int,
                "artifact_id": event.artifact_id,
                "b_units": event.b_units,
                "q_long_units": 0,
                "q_short_units": 0,
                "price_long_wad": prices_wad(0, 0, event.b_units)[0],
            },
        )

    @handles(Artifact.SharesRedeemed)
    def redeemed(self, rows: Rows, position: int, event: Any) -> None:
        market = rows.update(self.markets_table, event.originator_id.int)
        if market is None:
            return
        column = "q_long_units" if event.side == Side.LONG else "q_short_units"
        market[column] -= event.shares_units
        market["price_long_wad"] = prices_wad(market["q_long_units"], market["q_short_units"], market["b_units"])[0]

    def _trade(self, rows: Rows, event: Any) -> tuple[str, int | None] | None:
        market = rows.update(self.markets_table, event.originator_id.int)
        if market is None:
            return None  # a trade on a market never listed: not in any log this ledger writes
        before = market["price_long_wad"]
        column = "q_long_units" if event.side == Side.LONG else "q_short_units"
        market[column] += event.shares_delta_units
        market["price_long_wad"] = event.price_long_wad
        return market["artifact_id"], before


def kind_of_close(how: str) -> str:
    return how if how in (STOP, LIQUIDATION) else SELL


class TapeView(PriceTracker, View):
    name = "tape"
    version = 3
    markets_table = "tape_markets"
    tables = (TRADES, market_table("tape_markets"), CLOSES)

    @handles(Artifact.Traded)
    def traded(self, rows: Rows, position: int, event: Any) -> None:
        moved = self._trade(rows, event)
        if moved is None:
            return
        artifact_id, before = moved
        kind = trade_kind(event)
        if kind == SELL:
            key = position_uuid(event.position_id).int
            closed = rows.get("tape_closes", key)
            if closed is None:
                rows.put("tape_closes", {"aggregate_id": key, "tape_position": position, "how": None})
            else:
                kind = kind_of_close(closed["how"])
                rows.delete("tape_closes", key)
        # A buy's row never changes: appended. A sale's row may get its kind from a later
        # Closed event, which finds it among the page's rows: put.
        write = rows.put if kind == SELL else rows.append
        write(
            "tape_trades",
            {
                "position": position,
                "artifact_id": artifact_id,
                "at": iso(event.timestamp),
                "side": event.side,
                "kind": kind,
                "tokens_units": abs(event.tokens_delta_units),
                "shares_units": abs(event.shares_delta_units),
                "price_before_wad": before,
                "price_after_wad": event.price_long_wad,
                "taker": event.agent,
                "position_id": event.position_id,
                "order_id": event.order_id,
            },
        )

    @handles(Position.Closed, Position.PartiallyClosed)
    def closed(self, rows: Rows, position: int, event: Any) -> None:
        """How a sale happened: each sale, whole or partial, has its own event beside its trade."""
        key = event.originator_id.int
        sale = rows.get("tape_closes", key)
        if sale is None:
            rows.put("tape_closes", {"aggregate_id": key, "tape_position": None, "how": event.how})
            return
        rows.delete("tape_closes", key)
        trade = rows.update("tape_trades", sale["tape_position"])
        if trade is not None:
            trade["kind"] = kind_of_close(event.how)
