"""The Position aggregate: shares of one side of one artifact's market, held by one agent.

Entry price is the long-price equivalent: cost/quantity for a long, 1 − cost/quantity
for a short, so positions on both sides compare on one scale.
"""

from datetime import datetime
from functools import lru_cache
from typing import Any, Optional
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from stakeledger.domain.model.copying import CheapCopy
from stakeledger.domain.model.naming import register_aggregate
from stakeledger.domain.model.types import Name, PositiveUnits, SignedUnits, Units
from stakeledger.domain.rules.rationale import RationaleState
from stakeledger.domain.rules.settlement import SettlementOutcome
from stakeledger.domain.vocabulary import WAD, Side

OPEN, FROZEN, PARTIALLY_SETTLED, SETTLED, CLOSED, LIQUIDATED = (
    "open",
    "frozen",
    "partially_settled",
    "settled",
    "closed",
    "liquidated",
)
LIVE_STATUSES = (OPEN, FROZEN, PARTIALLY_SETTLED)

_NAMESPACE = uuid5(NAMESPACE_URL, "https://stakeledger.invalid/position")


@lru_cache(maxsize=65_536)  # a uuid5 (a SHA-1) per lookup cost more than the lookup
def position_uuid(position_id: str) -> UUID:
    return uuid5(_NAMESPACE, position_id)


def entry_price_wad(side: Side, quantity_units: int, cost_units: int) -> int:
    """The long-price equivalent of what was paid per share, in WAD (floored)."""
    paid_wad = cost_units * WAD // quantity_units
    return min(paid_wad, WAD) if side == Side.LONG else max(WAD - paid_wad, 0)


class Position(CheapCopy, Aggregate):
    # A position lives for a few events: loading it never needs a snapshot.
    short_history = True

    class Opened(Aggregate.Created):
        position_id: Name
        owner: Name
        artifact_id: Name
        side: str
        quantity_units: PositiveUnits
        cost_units: PositiveUnits
        entry_price_wad: Units
        order_id: Optional[str]
        rationale: Optional[RationaleState]  # why the order was placed (domain.rules.rationale)

        # Version 1 records carried no rationale: none was recorded for them.
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["rationale"] = None

    class Closed(Aggregate.Event):
        """Sold back to the pool at market: by the owner, a stop or a liquidation."""

        proceeds_units: Units
        price_long_wad: Units
        pnl_units: SignedUnits
        how: Name
        status: Name

        # Version 1 records left the status to the fold: a liquidation's close is
        # "liquidated", any other close "closed".
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["status"] = LIQUIDATED if state["how"] == "liquidation" else CLOSED

        def apply(self, position: "Position") -> None:
            position.status = self.status
            position.closed_at = self.timestamp
            position.realized_pnl_units += self.pnl_units
            position.proceeds_units += self.proceeds_units

    class PartiallyClosed(Aggregate.Event):
        """Part of the shares sold back to the pool: the cost they carried (pro rata, floored)
        is realised against the proceeds and the rest stays open with the remaining cost."""

        quantity_sold_units: PositiveUnits
        proceeds_units: Units
        cost_released_units: Units
        pnl_units: SignedUnits
        price_long_wad: Units
        quantity_left_units: PositiveUnits
        cost_left_units: PositiveUnits
        how: Name

        def apply(self, position: "Position") -> None:
            position.quantity_units = self.quantity_left_units
            position.cost_units = self.cost_left_units
            position.realized_pnl_units += self.pnl_units
            position.proceeds_units += self.proceeds_units

    class PartiallySettled(Aggregate.Event):
        """Flagged: a long gets half its cost back for half its shares; a short gets a bonus."""

        transition: int
        state: Name
        payout_units: Units
        pnl_units: SignedUnits
        quantity_left_units: PositiveUnits
        cost_left_units: PositiveUnits

        def apply(self, position: "Position") -> None:
            position.status = PARTIALLY_SETTLED
            position.partial_settlements += 1
            position.quantity_units = self.quantity_left_units
            position.cost_units = self.cost_left_units
            position.realized_pnl_units += self.pnl_units
            position.payout_units += self.payout_units

    class Settled(Aggregate.Event):
        """Validated or deprecated: the position pays out (or not) and is done."""

        transition: int
        state: Name
        settlement_price_wad: Units
        payout_units: Units
        pnl_units: SignedUnits

        def apply(self, position: "Position") -> None:
            # Kept so a reopen of this transition can put the position back exactly as it was.
            position.before_settlement = {
                "transition": self.transition,
                "status": position.status,
                "status_before_freeze": position.status_before_freeze,
            }
            position.status_before_freeze = None
            position.status = SETTLED
            position.closed_at = self.timestamp
            position.realized_pnl_units += self.pnl_units
            position.payout_units += self.payout_units
            position.last_settlement = {"payout_units": self.payout_units, "pnl_units": self.pnl_units}

    class SettlementReversed(Aggregate.Event):
        """The resolution that settled this position was reopened: its payout went back to
        the pool and the position is live again, in the status it had before."""

        transition: int
        reversed_transition: int
        status: Name
        status_before_freeze: Optional[str]
        payout_units: Units
        pnl_units: SignedUnits

        def apply(self, position: "Position") -> None:
            position.status = self.status
            position.status_before_freeze = self.status_before_freeze
            position.closed_at = None
            position.realized_pnl_units -= self.pnl_units
            position.payout_units -= self.payout_units
            position.before_settlement = None
            position.last_settlement = None

    class Frozen(Aggregate.Event):
        transition: int

        def apply(self, position: "Position") -> None:
            position.status_before_freeze = position.status
            position.status = FROZEN

    class Reopened(Aggregate.Event):
        transition: int
        status: Optional[str]

        # Version 2 records carry the status the position returns to. Version 1 records
        # did not; for them alone the fold restores the status saved when it froze.
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["status"] = None

        def apply(self, position: "Position") -> None:
            position.status = self.status or position.status_before_freeze or OPEN
            position.status_before_freeze = None

    # Positions opened before reopens existed have no record of their settlement's past.
    before_settlement = None
    last_settlement = None
    rationale: Optional[dict[str, Any]] = None

    def __init__(
        self,
        position_id: str,
        owner: str,
        artifact_id: str,
        side: str,
        quantity_units: int,
        cost_units: int,
        entry_price_wad: int,
        order_id: Optional[str],
        rationale: Optional[dict[str, Any]] = None,
    ) -> None:
        self.position_id = position_id
        self.owner = owner
        self.artifact_id = artifact_id
        self.side = side
        self.quantity_units = quantity_units
        self.cost_units = cost_units
        self.entry_price_wad = entry_price_wad
        self.order_id = order_id
        # The order's audit metadata as stored (ints at 10**18 and text), or None.
        self.rationale = rationale
        self.status = OPEN
        self.realized_pnl_units = 0
        self.proceeds_units = 0
        self.payout_units = 0
        self.closed_at: Optional[datetime] = None
        self.status_before_freeze: Optional[str] = None
        self.partial_settlements = 0  # a flag settles a position partially once in its life
        self.before_settlement: Optional[dict[str, Any]] = None
        self.last_settlement: Optional[dict[str, int]] = None

    @classmethod
    def open(
        cls,
        position_id: str,
        owner: str,
        artifact_id: str,
        side: Side,
        quantity_units: int,
        cost_units: int,
        order_id: Optional[str],
        at: datetime,
        rationale: Optional[RationaleState] = None,
    ) -> "Position":
        return cls._create(
            cls.Opened,
            id=position_uuid(position_id),
            timestamp=at,
            position_id=position_id,
            owner=owner,
            artifact_id=artifact_id,
            side=side.value,
            quantity_units=quantity_units,
            cost_units=cost_units,
            entry_price_wad=entry_price_wad(side, quantity_units, cost_units),
            order_id=order_id,
            rationale=rationale,
        )

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_STATUSES

    def partially_settle(self, transition: int, state: str, outcome: "SettlementOutcome", at: datetime) -> None:
        self.trigger_event(
            self.PartiallySettled,
            timestamp=at,
            transition=transition,
            state=state,
            payout_units=outcome.payout_units,
            pnl_units=outcome.pnl_units,
            quantity_left_units=outcome.quantity_left_units,
            cost_left_units=outcome.cost_left_units,
        )

    def settle(self, transition: int, state: str, price_wad: int, outcome: "SettlementOutcome", at: datetime) -> None:
        assert self.is_live
        self.trigger_event(
            self.Settled,
            timestamp=at,
            transition=transition,
            state=state,
            settlement_price_wad=price_wad,
            payout_units=outcome.payout_units,
            pnl_units=outcome.pnl_units,
        )

    def settled_by(self, transition: int) -> bool:
        """Whether ``transition`` settled this position (and it was not reopened since)."""
        before = self.before_settlement
        return self.status == SETTLED and before is not None and before["transition"] == transition

    def reverse_settlement(self, transition: int, reversed_transition: int, at: datetime) -> int:
        """Undo the settlement by ``reversed_transition``; returns the payout to take back."""
        assert self.settled_by(reversed_transition)
        before, settled = self.before_settlement, self.last_settlement
        assert before is not None and settled is not None
        self.trigger_event(
            self.SettlementReversed,
            timestamp=at,
            transition=transition,
            reversed_transition=reversed_transition,
            status=before["status"],
            status_before_freeze=before["status_before_freeze"],
            payout_units=settled["payout_units"],
            pnl_units=settled["pnl_units"],
        )
        return settled["payout_units"]

    def freeze(self, transition: int, at: datetime) -> None:
        if self.status != FROZEN:
            self.trigger_event(self.Frozen, timestamp=at, transition=transition)

    def reopen(self, transition: int, at: datetime) -> None:
        if self.status == FROZEN:
            status = self.status_before_freeze or OPEN
            self.trigger_event(self.Reopened, timestamp=at, transition=transition, status=status)

    def cost_of_shares(self, shares_units: int) -> int:
        """The part of the cost basis that ``shares_units`` of this position carry, floored (the
        remaining shares keep the rounding, so the cost is never split into more than it was)."""
        return self.cost_units * shares_units // self.quantity_units

    def close_part(self, shares_units: int, proceeds_units: int, price_long_wad: int, how: str, at: datetime) -> None:
        assert self.is_live and self.status != FROZEN and 0 < shares_units < self.quantity_units
        released_units = self.cost_of_shares(shares_units)
        self.trigger_event(
            self.PartiallyClosed,
            timestamp=at,
            quantity_sold_units=shares_units,
            proceeds_units=proceeds_units,
            cost_released_units=released_units,
            pnl_units=proceeds_units - released_units,
            price_long_wad=price_long_wad,
            quantity_left_units=self.quantity_units - shares_units,
            cost_left_units=self.cost_units - released_units,
            how=how,
        )

    def close(self, proceeds_units: int, price_long_wad: int, how: str, at: datetime) -> None:
        assert self.is_live and self.status != FROZEN
        self.trigger_event(
            self.Closed,
            timestamp=at,
            proceeds_units=proceeds_units,
            price_long_wad=price_long_wad,
            pnl_units=proceeds_units - self.cost_units,
            how=how,
            status=LIQUIDATED if how == "liquidation" else CLOSED,
        )


register_aggregate(Position)
