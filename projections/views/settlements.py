"""Settlement history: one row per settled or partially settled position, and one per
claimant paid from a bounty, with the log position of the event that paid it.

A row of kind ``settled`` is a terminal settlement (validated, deprecated or invalid) at the
transition's settlement price; ``partial`` is the flagged half-settlement, priced at the
long price the flagging transition recorded; ``bounty`` is a bounty payout; ``reversed``
is a reopen taking a settlement back: its payout and P&L are the settled row's, negated,
and its ``transition`` is the reopen's (the settled row keeps the resolution's).
"""

from __future__ import annotations

from typing import Any

from stakeledger.domain.model.artifacts import Artifact, artifact_of, artifact_uuid
from stakeledger.domain.model.positions import Position
from stakeledger.domain.vocabulary import TERMINAL_STATES
from stakeledger.projections.store import AMOUNT, INT, TEXT, UUID, Rows, Table
from stakeledger.projections.views.base import View, handles, iso

SETTLEMENTS = Table(
    "settlements",
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
        ("quantity_units", AMOUNT),
        ("cost_units", AMOUNT),
        ("payout_units", AMOUNT),
        ("pnl_units", AMOUNT),
        ("at", TEXT),
    ),
    key=("position", "agent"),
    indexes=(("artifact_id", "position"), ("agent", "position")),
)
# What a settlement row needs to know about the position it settles.
POSITIONS = Table(
    "settlement_positions",
    columns=(
        ("aggregate_id", UUID),
        ("position_id", TEXT),
        ("owner", TEXT),
        ("artifact_id", TEXT),
        ("side", TEXT),
        ("quantity_units", AMOUNT),
        ("cost_units", AMOUNT),
    ),
    key=("aggregate_id",),
)
# The long price each artifact's latest transition recorded: a partial settlement's price.
ARTIFACTS = Table(
    "settlement_artifacts",
    columns=(
        ("aggregate_id", UUID),
        ("artifact_id", TEXT),
        ("state", TEXT),
        ("transition", INT),
        ("price_long_wad", AMOUNT),
        # While resolved: the price the transition before the resolution recorded, for a reopen.
        ("price_before_wad", AMOUNT),
    ),
    key=("aggregate_id",),
)


class SettlementsView(View):
    name = "settlements"
    version = 2
    tables = (SETTLEMENTS, POSITIONS, ARTIFACTS)

    @handles(Artifact.Listed)
    def listed(self, rows: Rows, position: int, event: Any) -> None:
        rows.put(
            "settlement_artifacts",
            {
                "aggregate_id": event.originator_id.int,
                "artifact_id": event.artifact_id,
                "state": "listed",
                "transition": 0,
                "price_long_wad": None,
                "price_before_wad": None,
            },
        )

    @handles(Artifact.Transitioned)
    def transitioned(self, rows: Rows, position: int, event: Any) -> None:
        row = rows.get("settlement_artifacts", event.originator_id.int)
        if row is None:
            return
        row["price_before_wad"] = row["price_long_wad"] if event.to_state in TERMINAL_STATES else None
        row["state"] = event.to_state
        row["transition"] += 1
        row["price_long_wad"] = event.price_long_wad
        rows.put("settlement_artifacts", row)

    @handles(Position.Opened)
    def opened(self, rows: Rows, position: int, event: Any) -> None:
        rows.put(
            "settlement_positions",
            {
                "aggregate_id": event.originator_id.int,
                "position_id": event.position_id,
                "owner": event.owner,
                "artifact_id": event.artifact_id,
                "side": event.side,
                "quantity_units": event.quantity_units,
                "cost_units": event.cost_units,
            },
        )

    @handles(Position.PartiallySettled)
    def partially_settled(self, rows: Rows, position: int, event: Any) -> None:
        held = rows.get("settlement_positions", event.originator_id.int)
        if held is None:
            return
        artifact = rows.get("settlement_artifacts", artifact_uuid(held["artifact_id"]).int)
        rows.append(
            "settlements",
            self._row(
                position,
                event,
                held,
                "partial",
                artifact["price_long_wad"] if artifact else None,
                held["quantity_units"] - event.quantity_left_units,
                held["cost_units"] - event.cost_left_units,
            ),
        )
        held["quantity_units"] = event.quantity_left_units
        held["cost_units"] = event.cost_left_units
        rows.put("settlement_positions", held)

    @handles(Position.Settled)
    def settled(self, rows: Rows, position: int, event: Any) -> None:
        held = rows.get("settlement_positions", event.originator_id.int)
        if held is None:
            return
        rows.append(
            "settlements",
            self._row(
                position, event, held, "settled", event.settlement_price_wad, held["quantity_units"], held["cost_units"]
            ),
        )
        # A settled position has no later events: its helper row is left as it was.

    @handles(Position.SettlementReversed)
    def settlement_reversed(self, rows: Rows, position: int, event: Any) -> None:
        held = rows.get("settlement_positions", event.originator_id.int)
        if held is None:
            return
        row = self._row(position, event, held, "reversed", None, held["quantity_units"], held["cost_units"])
        row.update(state="reopened", payout_units=-event.payout_units, pnl_units=-event.pnl_units)
        rows.append("settlements", row)

    @handles(Artifact.ResolutionReversed)
    def resolution_reversed(self, rows: Rows, position: int, event: Any) -> None:
        row = rows.get("settlement_artifacts", event.originator_id.int)
        if row is None:
            return
        row["state"] = event.to_state
        row["transition"] += 1
        row["price_long_wad"], row["price_before_wad"] = row["price_before_wad"], None
        rows.put("settlement_artifacts", row)

    @staticmethod
    def _row(
        position: int, event: Any, held: dict[str, Any], kind: str, price_wad: int | None, quantity: int, cost: int
    ) -> dict[str, Any]:
        return {
            "position": position,
            "agent": held["owner"],
            "kind": kind,
            "artifact_id": held["artifact_id"],
            "position_id": held["position_id"],
            "bounty_id": None,
            "side": held["side"],
            "transition": event.transition,
            "state": getattr(event, "state", None),
            "price_long_wad": price_wad,
            "quantity_units": quantity,
            "cost_units": cost,
            "payout_units": event.payout_units,
            "pnl_units": event.pnl_units,
            "at": iso(event.timestamp),
        }

    @handles(Artifact.BountyClosed)
    def bounty_closed(self, rows: Rows, position: int, event: Any) -> None:
        if event.how != "distributed":
            return
        artifact_id = artifact_of(event.bounty_id)
        for agent, share_units in sorted(event.shares.items()):
            if share_units <= 0:
                continue
            rows.append(
                "settlements",
                {
                    "position": position,
                    "agent": agent,
                    "kind": "bounty",
                    "artifact_id": artifact_id,
                    "position_id": None,
                    "bounty_id": event.bounty_id,
                    "side": None,
                    "transition": None,
                    "state": None,
                    "price_long_wad": None,
                    "quantity_units": None,
                    "cost_units": 0,
                    "payout_units": share_units,
                    "pnl_units": share_units,
                    "at": iso(event.timestamp),
                },
            )
