"""Agent inbox: one notification per affected agent for each settlement, partial
settlement, freeze and reopening of one of their positions, and for each bounty payout
or refund they receive. The readable message is written by the query from these fields.
"""

from __future__ import annotations

from typing import Any

from stakeledger.domain.model.artifacts import Artifact, artifact_of
from stakeledger.domain.model.positions import Position
from stakeledger.projections.store import AMOUNT, INT, TEXT, UUID, Rows, Table
from stakeledger.projections.views.base import View, handles, iso

MESSAGES = Table(
    "inbox_messages",
    columns=(
        ("position", INT),
        ("agent", TEXT),
        ("kind", TEXT),
        ("artifact_id", TEXT),
        ("position_id", TEXT),
        ("bounty_id", TEXT),
        ("side", TEXT),
        ("transition", INT),
        ("state", TEXT),
        ("price_long_wad", AMOUNT),
        ("payout_units", AMOUNT),
        ("pnl_units", AMOUNT),
        ("at", TEXT),
    ),
    key=("position", "agent"),
    indexes=(("agent", "position"),),
)
# Whose position each position aggregate is.
OWNERS = Table(
    "inbox_positions",
    columns=(("aggregate_id", UUID), ("position_id", TEXT), ("owner", TEXT), ("artifact_id", TEXT), ("side", TEXT)),
    key=("aggregate_id",),
)
SETTLED, PARTIALLY_SETTLED, FROZEN, REOPENED, BOUNTY_PAYOUT, BOUNTY_REFUND = (
    "settled",
    "partially_settled",
    "frozen",
    "reopened",
    "bounty_payout",
    "bounty_refund",
)
SETTLEMENT_REVERSED = "settlement_reversed"  # a reopen took the settlement back: the position lives again


class InboxView(View):
    name = "inbox"
    version = 2
    tables = (MESSAGES, OWNERS)

    @handles(Position.Opened)
    def opened(self, rows: Rows, position: int, event: Any) -> None:
        rows.put(
            "inbox_positions",
            {
                "aggregate_id": event.originator_id.int,
                "position_id": event.position_id,
                "owner": event.owner,
                "artifact_id": event.artifact_id,
                "side": event.side,
            },
        )

    def _notify(self, rows: Rows, position: int, event: Any, kind: str, **fields: Any) -> None:
        owner = rows.get("inbox_positions", event.originator_id.int)
        if owner is None:
            return
        message = {
            "position": position,
            "agent": owner["owner"],
            "kind": kind,
            "artifact_id": owner["artifact_id"],
            "position_id": owner["position_id"],
            "bounty_id": None,
            "side": owner["side"],
            "transition": event.transition,
            "state": None,
            "price_long_wad": None,
            "payout_units": None,
            "pnl_units": None,
            "at": iso(event.timestamp),
        }
        message.update(fields)
        rows.append("inbox_messages", message)

    @handles(Position.Settled)
    def settled(self, rows: Rows, position: int, event: Any) -> None:
        self._notify(
            rows,
            position,
            event,
            SETTLED,
            state=event.state,
            price_long_wad=event.settlement_price_wad,
            payout_units=event.payout_units,
            pnl_units=event.pnl_units,
        )

    @handles(Position.PartiallySettled)
    def partially_settled(self, rows: Rows, position: int, event: Any) -> None:
        self._notify(
            rows,
            position,
            event,
            PARTIALLY_SETTLED,
            state=event.state,
            payout_units=event.payout_units,
            pnl_units=event.pnl_units,
        )

    @handles(Position.Frozen)
    def frozen(self, rows: Rows, position: int, event: Any) -> None:
        self._notify(rows, position, event, FROZEN, state="challenged")

    @handles(Position.Reopened)
    def reopened(self, rows: Rows, position: int, event: Any) -> None:
        self._notify(rows, position, event, REOPENED)

    @handles(Position.SettlementReversed)
    def settlement_reversed(self, rows: Rows, position: int, event: Any) -> None:
        # ``state`` is the status the position is back in (open, frozen or partially settled);
        # the amounts are the settlement's, negated: what the position was paid, taken back.
        self._notify(
            rows,
            position,
            event,
            SETTLEMENT_REVERSED,
            state=event.status,
            payout_units=-event.payout_units,
            pnl_units=-event.pnl_units,
        )

    @handles(Artifact.BountyClosed)
    def bounty_closed(self, rows: Rows, position: int, event: Any) -> None:
        kind = BOUNTY_PAYOUT if event.how == "distributed" else BOUNTY_REFUND
        for agent, share_units in sorted(event.shares.items()):
            if share_units <= 0:
                continue
            rows.append(
                "inbox_messages",
                {
                    "position": position,
                    "agent": agent,
                    "kind": kind,
                    "artifact_id": artifact_of(event.bounty_id),
                    "position_id": None,
                    "bounty_id": event.bounty_id,
                    "side": None,
                    "transition": None,
                    "state": None,
                    "price_long_wad": None,
                    "payout_units": share_units,
                    "pnl_units": None,
                    "at": iso(event.timestamp),
                },
            )
