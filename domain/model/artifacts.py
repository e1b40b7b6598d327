"""The Artifact aggregate: a research artifact's lifecycle and its binary LMSR market.

The artifact holds the market's outstanding shares (q_long, q_short), its resting limit
orders and the ids of every position opened on it, so one load gives a trade or a
settlement everything it needs. Ids of orders and positions are derived from the
artifact id and a counter ("ART-1/o3", "ART-1/p17"): readable, unique and stable.
"""

import re
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, Optional
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from stakeledger.domain.errors import FrozenError, InvalidInputError, StateError
from stakeledger.domain.model.copying import CheapCopy
from stakeledger.domain.model.naming import register_aggregate
from stakeledger.domain.model.types import Name, PositiveUnits, PriceWad, SignedUnits, Units
from stakeledger.domain.rules.lmsr import prices_wad
from stakeledger.domain.rules.rationale import RationaleState
from stakeledger.domain.rules.resolution import (
    DEFAULT_CORRECTION_HOURS,
    DEFAULT_DEPRECATED_MAX_WAD,
    DEFAULT_FLAGGED_BELOW_WAD,
    DEFAULT_SUSTAINED_HOURS,
    DEFAULT_VALIDATED_MIN_WAD,
    DEFAULT_WINDOW_DAYS,
    ResolutionRules,
    auto_states,
    prune,
    time_weighted_price_wad,
)
from stakeledger.domain.vocabulary import (
    CHALLENGED,
    DEPRECATED,
    FLAGGED,
    INVALID,
    LISTED,
    STATES,
    TERMINAL_STATES,
    TRADABLE_STATES,
    VALIDATED,
    Side,
)

ALLOWED_TRANSITIONS = {
    LISTED: {FLAGGED, CHALLENGED, VALIDATED, DEPRECATED, INVALID},
    FLAGGED: {LISTED, CHALLENGED, VALIDATED, DEPRECATED, INVALID},
    CHALLENGED: {LISTED, FLAGGED, VALIDATED, DEPRECATED, INVALID},
    VALIDATED: set(),
    DEPRECATED: set(),
    INVALID: set(),
}

_NAMESPACE = uuid5(NAMESPACE_URL, "https://stakeledger.invalid/artifact")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def micros(at: datetime) -> int:
    """``at`` as whole microseconds since the epoch (integer arithmetic, no float)."""
    return (at - _EPOCH) // _MICROSECOND


def micros_text(at_micros: int) -> str:
    """ISO 8601 text of a time given in microseconds since the epoch."""
    return (_EPOCH + timedelta(microseconds=at_micros)).isoformat()


_ARTIFACT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}\Z")


@lru_cache(maxsize=65_536)  # a uuid5 (a SHA-1) per lookup cost more than the lookup
def artifact_uuid(artifact_id: str) -> UUID:
    return uuid5(_NAMESPACE, artifact_id)


def check_artifact_id(artifact_id: str) -> str:
    if not isinstance(artifact_id, str) or not _ARTIFACT_ID.match(artifact_id):
        raise InvalidInputError(
            f"artifact id must be 1-64 letters, digits, '_', '.' or '-' (starting with a letter or digit): {artifact_id!r}"
        )
    return artifact_id


def artifact_of(child_id: str) -> str:
    """The artifact an order id ("ART-1/o3") or position id ("ART-1/p17") belongs to."""
    artifact_id, slash, rest = child_id.partition("/")
    if not slash or not rest:
        raise InvalidInputError(f"ids of orders and positions look like ARTIFACT/o3 or ARTIFACT/p17, got {child_id!r}")
    return check_artifact_id(artifact_id)


def check_side(side: str) -> Side:
    try:
        return Side(side)
    except ValueError:
        raise InvalidInputError(f"side must be 'long' or 'short', got {side!r}") from None


# A trade's price after is the next trade's price before, and views ask for it again.
_prices = lru_cache(maxsize=4096)(prices_wad)


@lru_cache(maxsize=1024)
def _rules(*fields: Any) -> ResolutionRules:
    """A market's rules, checked once per distinct set (every trade asks for them)."""
    return ResolutionRules(*fields)


class Artifact(CheapCopy, Aggregate):
    class Listed(Aggregate.Created):
        artifact_id: Name
        title: Name
        group: Optional[str]
        b_units: PositiveUnits
        min_hold_days: int
        subsidy_units: PositiveUnits
        validated_min_wad: PriceWad = DEFAULT_VALIDATED_MIN_WAD
        deprecated_max_wad: PriceWad = DEFAULT_DEPRECATED_MAX_WAD
        flagged_below_wad: PriceWad = DEFAULT_FLAGGED_BELOW_WAD
        window_days: int = DEFAULT_WINDOW_DAYS
        correction_hours: int = DEFAULT_CORRECTION_HOURS
        auto_resolve: bool = False
        sustained_hours: int = DEFAULT_SUSTAINED_HOURS

        # Version 1 listings had no resolution rules: they get seed 000's. Version 2 listings
        # had no correction window and no automatic resolution: 24 hours, and off.
        class_version = 3

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["validated_min_wad"] = DEFAULT_VALIDATED_MIN_WAD
            state["deprecated_max_wad"] = DEFAULT_DEPRECATED_MAX_WAD
            state["flagged_below_wad"] = DEFAULT_FLAGGED_BELOW_WAD
            state["window_days"] = DEFAULT_WINDOW_DAYS

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            state["correction_hours"] = DEFAULT_CORRECTION_HOURS
            state["auto_resolve"] = False
            state["sustained_hours"] = DEFAULT_SUSTAINED_HOURS

    class Traded(Aggregate.Event):
        """Shares bought (positive) or sold back (negative) against the pool."""

        side: str
        shares_delta_units: SignedUnits
        tokens_delta_units: SignedUnits
        position_id: Name
        agent: Name
        order_id: Optional[str]
        price_long_wad: PriceWad
        opens_position: bool

        # Version 1 records did not say whether the trade opened a position; every buy did.
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["opens_position"] = state["shares_delta_units"] > 0

        def apply(self, artifact: "Artifact") -> None:
            artifact.record_price_point(self.timestamp, self.price_long_wad)
            if self.side == Side.LONG:
                artifact.q_long += self.shares_delta_units
            else:
                artifact.q_short += self.shares_delta_units
            if self.opens_position:
                artifact.position_ids.append(self.position_id)
                artifact.position_count += 1
            artifact.observe_average(self.timestamp)

    class OrderPlaced(Aggregate.Event):
        order_id: Name
        agent: Name
        side: str
        tokens_units: PositiveUnits
        limit_price_wad: PriceWad
        expires_at: Optional[datetime]
        rationale: Optional[RationaleState]  # why it was placed; every position it fills carries it

        # Version 1 records carried no rationale: none was recorded for them.
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["rationale"] = None

        def apply(self, artifact: "Artifact") -> None:
            artifact.order_count += 1
            artifact.orders[self.order_id] = {
                "order_id": self.order_id,
                "agent": self.agent,
                "side": self.side,
                "remaining_units": self.tokens_units,
                "limit_price_wad": self.limit_price_wad,
                "expires_at": self.expires_at,
                "placed_at": self.timestamp,
                "sequence": artifact.order_count,
            }
            if self.rationale is not None:  # an order without one rests exactly as before
                artifact.orders[self.order_id]["rationale"] = self.rationale
            artifact.order_status[self.order_id] = "open"

    class OrderFilled(Aggregate.Event):
        order_id: Name
        position_id: Name
        shares_units: PositiveUnits
        cost_units: PositiveUnits
        order_status: Optional[str]

        # Version 2 records carry the order's status after the fill ("filled" or
        # "partially_filled"). Version 1 records did not; for them alone the fold derives
        # it from what the order had left, exactly as version 1 did.
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["order_status"] = None

        def apply(self, artifact: "Artifact") -> None:
            order = artifact.orders[self.order_id]
            order["remaining_units"] -= self.cost_units
            status = self.order_status or ("filled" if order["remaining_units"] == 0 else "partially_filled")
            artifact.order_status[self.order_id] = status
            if status == "filled":
                del artifact.orders[self.order_id]

    class OrderReleased(Aggregate.Event):
        """A resting order left the book: cancelled, expired or released by settlement."""

        order_id: Name
        released_units: Units
        why: Name

        def apply(self, artifact: "Artifact") -> None:
            order = artifact.orders.pop(self.order_id)
            if self.why == "settled" and artifact.before_resolution is not None:
                # Kept with the resolution, so a reopen can put the order back as it rested.
                artifact.before_resolution["orders"][self.order_id] = {
                    **order,
                    "status": artifact.order_status.get(self.order_id, "open"),
                }
            artifact.order_status[self.order_id] = self.why

    class SharesRedeemed(Aggregate.Event):
        """Shares handed back to the pool by a settlement, at the settlement's terms:
        one event per side per transition, however many positions took part."""

        side: str
        shares_units: PositiveUnits
        transition: int

        def apply(self, artifact: "Artifact") -> None:
            q_long = artifact.q_long - (self.shares_units if self.side == Side.LONG else 0)
            q_short = artifact.q_short - (self.shares_units if self.side == Side.SHORT else 0)
            artifact.record_price_point(self.timestamp, prices_wad(q_long, q_short, artifact.b_units)[0])
            artifact.q_long, artifact.q_short = q_long, q_short

    class BountyPosted(Aggregate.Event):
        bounty_id: Name
        sponsor: Name
        amount_units: PositiveUnits

        def apply(self, artifact: "Artifact") -> None:
            artifact.bounty_count += 1
            artifact.bounties[self.bounty_id] = {
                "sponsor": self.sponsor,
                "amount_units": self.amount_units,
                "status": "open",
            }

    class BountyClosed(Aggregate.Event):
        """Distributed among claimants by weight, or refunded to the sponsor."""

        bounty_id: Name
        how: Name
        shares: dict[str, int]

        def apply(self, artifact: "Artifact") -> None:
            artifact.bounties[self.bounty_id]["status"] = self.how

    class StopSet(Aggregate.Event):
        """A trailing stop on one position, on the price of the position's own side."""

        position_id: Name
        owner: Name
        side: str
        stop: dict[str, Any]

        def apply(self, artifact: "Artifact") -> None:
            artifact.stops[self.position_id] = {
                "owner": self.owner,
                "side": self.side,
                "stop": dict(self.stop),
                "triggered": False,
            }

    class StopRatcheted(Aggregate.Event):
        position_id: Name
        price_wad: PriceWad
        stop: dict[str, Any]

        def apply(self, artifact: "Artifact") -> None:
            artifact.stops[self.position_id]["stop"] = dict(self.stop)

    class StopTriggered(Aggregate.Event):
        """The price touched the trigger; the position closes now, or as soon as it may."""

        position_id: Name
        price_wad: PriceWad

        def apply(self, artifact: "Artifact") -> None:
            artifact.stops[self.position_id]["triggered"] = True

    class StopCleared(Aggregate.Event):
        position_id: Name
        why: Name

        def apply(self, artifact: "Artifact") -> None:
            del artifact.stops[self.position_id]

    class FeeSet(Aggregate.Event):
        """The market's trade fee in basis points, written right after a listing that has one
        (a listing without a fee writes no such event: its fee is 0)."""

        fee_bps: int

        def apply(self, artifact: "Artifact") -> None:
            artifact.fee_bps = self.fee_bps

    class TakeProfitPlaced(Aggregate.Event):
        """A resting sell of one position: it sells while the side's price is above the limit."""

        order_id: Name
        position_id: Name
        agent: Name
        side: str
        limit_price_wad: PriceWad
        expires_at: Optional[datetime]

        def apply(self, artifact: "Artifact") -> None:
            artifact.take_profit_count += 1
            artifact.take_profits = {
                **artifact.take_profits,
                self.order_id: {
                    "order_id": self.order_id,
                    "position_id": self.position_id,
                    "agent": self.agent,
                    "side": self.side,
                    "limit_price_wad": self.limit_price_wad,
                    "expires_at": self.expires_at,
                    "placed_at": self.timestamp,
                    "sequence": artifact.take_profit_count,
                    "status": "open",
                    "sold_units": 0,
                    "proceeds_units": 0,
                },
            }

    class TakeProfitFilled(Aggregate.Event):
        order_id: Name
        shares_units: PositiveUnits
        proceeds_units: Units
        status: Name  # "filled" when the position is sold out, else "partially_filled"

        def apply(self, artifact: "Artifact") -> None:
            order = dict(artifact.take_profits[self.order_id])
            order["sold_units"] += self.shares_units
            order["proceeds_units"] += self.proceeds_units
            order["status"] = self.status
            artifact.take_profits = {**artifact.take_profits, self.order_id: order}

    class TakeProfitEnded(Aggregate.Event):
        """Left the book unfilled (or part filled): cancelled, expired, or its position ended."""

        order_id: Name
        why: Name

        def apply(self, artifact: "Artifact") -> None:
            order = {**artifact.take_profits[self.order_id], "status": self.why}
            artifact.take_profits = {**artifact.take_profits, self.order_id: order}

    class RiskWatched(Aggregate.Event):
        """An agent with risk limits holds a position here: price moves re-check its equity."""

        agent: Name

        def apply(self, artifact: "Artifact") -> None:
            artifact.risk_agents.append(self.agent)

    class Transitioned(Aggregate.Event):
        from_state: Name
        to_state: Name
        actor: Name
        reason: str
        price_long_wad: PriceWad
        window_average_wad: PriceWad  # the window's average p(long) at the transition

        # Version 1 records did not keep the window's average; their price stands in for it.
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["window_average_wad"] = state["price_long_wad"]

        def apply(self, artifact: "Artifact") -> None:
            artifact.state = self.to_state
            artifact.transition_count += 1
            artifact.settlement_price_wad = self.price_long_wad if self.to_state in TERMINAL_STATES else None
            artifact.since_beyond = {}  # a new state starts its sustained periods afresh
            if self.to_state in TERMINAL_STATES:
                # What a reopen restores: the market as it stood just before this resolution.
                artifact.before_resolution = {
                    "transition": artifact.transition_count,
                    "state": self.from_state,
                    "resolved_at": self.timestamp,
                    "q_long": artifact.q_long,
                    "q_short": artifact.q_short,
                    "price_points": [list(point) for point in artifact.price_points],
                    "orders": {},
                    "subsidy_units": 0,
                    "tax_units": 0,
                    "booked": False,
                }
            else:
                artifact.before_resolution = None

    class ResolutionBooked(Aggregate.Event):
        """What a settling transition (flagged or terminal) moved through the pool: what it
        paid the positions, the shortfall minted into it and what it returned to the treasury.
        A reopen of a terminal transition reverses all three; ``artifact history`` shows them."""

        transition: int
        paid_units: Units
        subsidy_units: Units
        tax_units: Units

        def apply(self, artifact: "Artifact") -> None:
            if artifact.before_resolution is not None:
                artifact.before_resolution.update(
                    subsidy_units=self.subsidy_units, tax_units=self.tax_units, booked=True
                )

    class ResolutionReversed(Aggregate.Event):
        """A wrong resolution corrected: the market is back in the state it had before the
        terminal transition ``reversed_transition``, with the shares its settlement redeemed
        and the orders it released; trading resumes. Both stay in the log."""

        reversed_transition: int
        from_state: Name
        to_state: Name
        actor: Name
        reason: str
        q_long_units: Units
        q_short_units: Units
        order_ids: list[str]
        reversed_payout_units: Units
        reversed_subsidy_units: Units
        reversed_tax_units: Units

        def apply(self, artifact: "Artifact") -> None:
            before = artifact.before_resolution
            assert before is not None and before["transition"] == self.reversed_transition
            artifact.state = self.to_state
            artifact.transition_count += 1
            artifact.settlement_price_wad = None
            artifact.q_long, artifact.q_short = self.q_long_units, self.q_short_units
            # While resolved the market did not trade: its price held where it was before.
            artifact.price_points = tuple(tuple(point) for point in before["price_points"])
            artifact.record_price_point(self.timestamp, artifact.price_long_wad)
            for order_id in self.order_ids:
                order = dict(before["orders"][order_id])
                artifact.order_status[order_id] = order.pop("status")
                artifact.orders[order_id] = order
            artifact.before_resolution = None
            artifact.since_beyond = {}

    # Class-level defaults: an artifact restored from a snapshot taken before these existed
    # has seed 000's rules and no recorded prices (its average then starts at its next trade).
    validated_min_wad = DEFAULT_VALIDATED_MIN_WAD
    deprecated_max_wad = DEFAULT_DEPRECATED_MAX_WAD
    flagged_below_wad = DEFAULT_FLAGGED_BELOW_WAD
    window_days = DEFAULT_WINDOW_DAYS
    correction_hours = DEFAULT_CORRECTION_HOURS
    auto_resolve = False
    sustained_hours = DEFAULT_SUSTAINED_HOURS
    price_points: tuple[tuple[int, int], ...] = ()
    # Take-profit orders by id, resting or ended (an artifact from an older snapshot has none).
    # Events replace the dict rather than change it, so the class default is never shared-mutated.
    take_profits = {}  # type: ignore[var-annotated]
    take_profit_count = 0
    fee_bps = 0  # trade fee in basis points: charged on top of a buy's cost, withheld from a sale
    # The last terminal transition, while it may still be reopened (None otherwise).
    before_resolution = None
    # For automatic resolution: since when (microseconds) the window's average has stayed
    # beyond each state's threshold, sampled at every trade. Empty when none is crossed.
    since_beyond = None

    def __init__(
        self,
        artifact_id: str,
        title: str,
        group: Optional[str],
        b_units: int,
        min_hold_days: int,
        subsidy_units: int,
        validated_min_wad: int = DEFAULT_VALIDATED_MIN_WAD,
        deprecated_max_wad: int = DEFAULT_DEPRECATED_MAX_WAD,
        flagged_below_wad: int = DEFAULT_FLAGGED_BELOW_WAD,
        window_days: int = DEFAULT_WINDOW_DAYS,
        correction_hours: int = DEFAULT_CORRECTION_HOURS,
        auto_resolve: bool = False,
        sustained_hours: int = DEFAULT_SUSTAINED_HOURS,
    ) -> None:
        self.validated_min_wad = validated_min_wad
        self.deprecated_max_wad = deprecated_max_wad
        self.flagged_below_wad = flagged_below_wad
        self.window_days = window_days
        self.correction_hours = correction_hours
        self.auto_resolve = auto_resolve
        self.sustained_hours = sustained_hours
        self.before_resolution = None
        self.since_beyond = {}
        self.price_points = ()
        self.artifact_id = artifact_id
        self.title = title
        self.group = group
        self.b_units = b_units
        self.min_hold_days = min_hold_days
        self.subsidy_units = subsidy_units
        self.state = LISTED
        self.q_long = 0
        self.q_short = 0
        self.orders: dict[str, dict[str, Any]] = {}
        self.order_status: dict[str, str] = {}
        self.order_count = 0
        self.position_ids: list[str] = []
        self.position_count = 0
        self.transition_count = 0
        self.settlement_price_wad: Optional[int] = None
        self.bounties: dict[str, dict[str, Any]] = {}
        self.bounty_count = 0
        self.stops: dict[str, dict[str, Any]] = {}
        self.risk_agents: list[str] = []
        self.take_profits = {}
        self.take_profit_count = 0

    @property
    def listed_at(self) -> datetime:
        return self.created_on

    @property
    def price_long_wad(self) -> int:
        """The pool's current long price, from the outstanding shares."""
        return self.prices()[0]

    @property
    def resolution_rules(self) -> ResolutionRules:
        return _rules(
            self.validated_min_wad,
            self.deprecated_max_wad,
            self.flagged_below_wad,
            self.window_days,
            self.correction_hours,
            self.auto_resolve,
            self.sustained_hours,
        )

    def observe_average(self, at: datetime) -> None:
        """Sample the window's average at ``at`` (called by apply only): start, keep or end
        each state's sustained period. Only markets that opted in keep track."""
        if not self.auto_resolve:
            return
        now = micros(at)
        average = self.window_average_price_wad(at)
        since = dict(self.since_beyond or {})
        for state in auto_states(self.state):
            if self.resolution_rules.meets(state, average):
                since.setdefault(state, now)
            else:
                since.pop(state, None)
        self.since_beyond = {state: since[state] for state in sorted(since) if state in auto_states(self.state)}

    def due_auto_transition(self, at: datetime) -> Optional[str]:
        """The state this market resolves to by itself at ``at``: the one whose threshold the
        window's average has met for the whole sustained period (terminal states first)."""
        if not self.auto_resolve or self.state not in TRADABLE_STATES:
            return None
        now = micros(at)
        for state in auto_states(self.state):
            since = (self.since_beyond or {}).get(state)
            if since is not None and now - since >= self.resolution_rules.sustained_micros:
                return state
        return None

    def may_reopen_until(self) -> Optional[datetime]:
        """Until when the last terminal transition may be reopened; None if none may be."""
        before = self.before_resolution
        if before is None or self.state not in TERMINAL_STATES:
            return None
        return before["resolved_at"] + timedelta(hours=self.correction_hours)

    def record_price_point(self, at: datetime, price_after_wad: int) -> None:
        """Remember that p(long) became ``price_after_wad`` at ``at`` (called by apply only).

        The first point is the price the market had before (0.5 for a fresh market, set at
        its listing); points older than the window are dropped except the last of them."""
        window = self.resolution_rules.window_micros
        points = self.price_points
        if not points:
            points = ((micros(self.created_on), self.price_long_wad),)
        now = micros(at)
        kept = prune(points, now, window)
        if len(kept) > 1 and kept[-1][0] == now:
            # A price that held for no time weighs nothing in any average: the trades of one
            # instant (a batch's) leave one point, not one each.
            kept = kept[:-1]
        self.price_points = (*kept, (now, price_after_wad))

    def window_average_price_wad(self, at: datetime) -> int:
        """The time-weighted average of p(long) over the market's window ending at ``at``."""
        points = self.price_points or ((micros(self.created_on), self.price_long_wad),)
        return time_weighted_price_wad(points, micros(at), self.resolution_rules.window_micros)

    # Decisions --------------------------------------------------------------------------

    def prices(self) -> tuple[int, int]:
        return _prices(self.q_long, self.q_short, self.b_units)

    def side_price_wad(self, side: Side) -> int:
        long_wad, short_wad = self.prices()
        return long_wad if side == Side.LONG else short_wad

    def require_tradable(self) -> None:
        if self.state == CHALLENGED:
            raise FrozenError(f"artifact {self.artifact_id!r} is challenged: its positions and orders are frozen")
        if self.state not in TRADABLE_STATES:
            raise StateError(f"artifact {self.artifact_id!r} is {self.state}: its market is closed")

    def may_close_at(self, now: datetime) -> bool:
        return now - self.listed_at > timedelta(days=self.min_hold_days) if self.min_hold_days else True

    def next_position_id(self) -> str:
        return f"{self.artifact_id}/p{self.position_count + 1}"

    def next_order_id(self) -> str:
        return f"{self.artifact_id}/o{self.order_count + 1}"

    def record_trade(
        self,
        side: Side,
        shares_delta_units: int,
        tokens_delta_units: int,
        position_id: str,
        agent: str,
        order_id: Optional[str],
        at: datetime,
    ) -> None:
        q_long = self.q_long + (shares_delta_units if side == Side.LONG else 0)
        q_short = self.q_short + (shares_delta_units if side == Side.SHORT else 0)
        assert q_long >= 0 and q_short >= 0, "the pool never holds negative outstanding shares"
        price_long_wad, _ = _prices(q_long, q_short, self.b_units)
        # A buy always opens the market's next position (a scan of position_ids would cost a
        # market with many positions more than the rest of the trade).
        opens_position = shares_delta_units > 0
        assert not opens_position or position_id == self.next_position_id(), "a buy opens the next position"
        assert opens_position or shares_delta_units < 0, "a trade moves shares"
        self.trigger_event(
            self.Traded,
            timestamp=at,
            side=side.value,
            shares_delta_units=shares_delta_units,
            tokens_delta_units=tokens_delta_units,
            position_id=position_id,
            agent=agent,
            order_id=order_id,
            price_long_wad=price_long_wad,
            opens_position=opens_position,
        )

    def place_order(
        self,
        agent: str,
        side: Side,
        tokens_units: int,
        limit_price_wad: int,
        expires_at: Optional[datetime],
        at: datetime,
        rationale: Optional[RationaleState] = None,
    ) -> str:
        order_id = self.next_order_id()
        self.trigger_event(
            self.OrderPlaced,
            timestamp=at,
            order_id=order_id,
            agent=agent,
            side=side.value,
            tokens_units=tokens_units,
            limit_price_wad=limit_price_wad,
            expires_at=expires_at,
            rationale=rationale,
        )
        return order_id

    def fill_order(self, order_id: str, position_id: str, shares_units: int, cost_units: int, at: datetime) -> None:
        remaining_units = self.orders[order_id]["remaining_units"]
        assert cost_units <= remaining_units
        order_status = "filled" if cost_units == remaining_units else "partially_filled"
        self.trigger_event(
            self.OrderFilled,
            timestamp=at,
            order_id=order_id,
            position_id=position_id,
            shares_units=shares_units,
            cost_units=cost_units,
            order_status=order_status,
        )

    def release_order(self, order_id: str, why: str, at: datetime) -> int:
        released_units = self.orders[order_id]["remaining_units"]
        self.trigger_event(self.OrderReleased, timestamp=at, order_id=order_id, released_units=released_units, why=why)
        return released_units

    def redeem_shares(self, side: Side, shares_units: int, at: datetime) -> None:
        if shares_units:
            self.trigger_event(
                self.SharesRedeemed,
                timestamp=at,
                side=side.value,
                shares_units=shares_units,
                transition=self.transition_count,
            )
        assert self.q_long >= 0 and self.q_short >= 0

    def post_bounty(self, sponsor: str, amount_units: int, at: datetime) -> str:
        bounty_id = f"{self.artifact_id}/b{self.bounty_count + 1}"
        self.trigger_event(
            self.BountyPosted, timestamp=at, bounty_id=bounty_id, sponsor=sponsor, amount_units=amount_units
        )
        return bounty_id

    def close_bounty(self, bounty_id: str, how: str, shares: dict[str, int], at: datetime) -> None:
        self.trigger_event(self.BountyClosed, timestamp=at, bounty_id=bounty_id, how=how, shares=shares)

    # Risk: the agents whose limits watch this market, and the trailing stops on it -----------

    def set_fee(self, fee_bps: int, at: datetime) -> None:
        self.trigger_event(self.FeeSet, timestamp=at, fee_bps=fee_bps)

    def next_take_profit_id(self) -> str:
        return f"{self.artifact_id}/t{self.take_profit_count + 1}"

    def resting_take_profits(self) -> list[dict[str, Any]]:
        return [order for order in self.take_profits.values() if order["status"] in ("open", "partially_filled")]

    def place_take_profit(
        self,
        position_id: str,
        agent: str,
        side: Side,
        limit_price_wad: int,
        expires_at: Optional[datetime],
        at: datetime,
    ) -> str:
        assert position_id in self.position_ids, "a take-profit sells a position of this market"
        order_id = self.next_take_profit_id()
        self.trigger_event(
            self.TakeProfitPlaced,
            timestamp=at,
            order_id=order_id,
            position_id=position_id,
            agent=agent,
            side=side.value,
            limit_price_wad=limit_price_wad,
            expires_at=expires_at,
        )
        return order_id

    def fill_take_profit(self, order_id: str, shares_units: int, proceeds_units: int, done: bool, at: datetime) -> None:
        self.trigger_event(
            self.TakeProfitFilled,
            timestamp=at,
            order_id=order_id,
            shares_units=shares_units,
            proceeds_units=proceeds_units,
            status="filled" if done else "partially_filled",
        )

    def end_take_profit(self, order_id: str, why: str, at: datetime) -> None:
        assert self.take_profits[order_id]["status"] in ("open", "partially_filled")
        self.trigger_event(self.TakeProfitEnded, timestamp=at, order_id=order_id, why=why)

    def watch_risk(self, agent: str, at: datetime) -> None:
        """Price moves here re-check ``agent``'s equity from now on (once per agent)."""
        if agent not in self.risk_agents:
            self.trigger_event(self.RiskWatched, timestamp=at, agent=agent)

    def set_stop(self, position_id: str, owner: str, side: str, stop: dict[str, Any], at: datetime) -> None:
        assert position_id in self.position_ids, "a stop guards a position of this market"
        self.trigger_event(self.StopSet, timestamp=at, position_id=position_id, owner=owner, side=side, stop=stop)

    def ratchet_stop(self, position_id: str, price_wad: int, stop: dict[str, Any], at: datetime) -> None:
        assert position_id in self.stops
        self.trigger_event(self.StopRatcheted, timestamp=at, position_id=position_id, price_wad=price_wad, stop=stop)

    def trigger_stop(self, position_id: str, price_wad: int, at: datetime) -> None:
        assert position_id in self.stops and not self.stops[position_id]["triggered"]
        self.trigger_event(self.StopTriggered, timestamp=at, position_id=position_id, price_wad=price_wad)

    def clear_stop(self, position_id: str, why: str, at: datetime) -> None:
        assert position_id in self.stops
        self.trigger_event(self.StopCleared, timestamp=at, position_id=position_id, why=why)

    def require_transition(self, to_state: str) -> None:
        """Refuse a transition the lifecycle does not allow from the current state."""
        if to_state not in STATES:
            raise InvalidInputError(f"state must be one of {', '.join(STATES)}, got {to_state!r}")
        if to_state == self.state or to_state not in ALLOWED_TRANSITIONS[self.state]:
            raise StateError(f"artifact {self.artifact_id!r} cannot go from {self.state} to {to_state}")

    def transition(
        self, to_state: str, actor: str, reason: str, price_long_wad: int, at: datetime, *, average_wad: int
    ) -> str:
        self.require_transition(to_state)
        from_state = self.state
        self.trigger_event(
            self.Transitioned,
            timestamp=at,
            from_state=from_state,
            to_state=to_state,
            actor=actor,
            reason=reason,
            price_long_wad=price_long_wad,
            window_average_wad=average_wad,
        )
        return from_state

    def book_resolution(self, paid_units: int, subsidy_units: int, tax_units: int, at: datetime) -> None:
        assert self.state in (*TERMINAL_STATES, FLAGGED)
        self.trigger_event(
            self.ResolutionBooked,
            timestamp=at,
            transition=self.transition_count,
            paid_units=paid_units,
            subsidy_units=subsidy_units,
            tax_units=tax_units,
        )

    def reverse_resolution(self, actor: str, reason: str, payout_units: int, at: datetime) -> dict[str, Any]:
        """Reopen the last terminal transition; returns what it had booked (the caller has
        checked the window and the accounts)."""
        before = self.before_resolution
        assert before is not None and before["booked"] and self.state in TERMINAL_STATES
        booked = dict(before)
        self.trigger_event(
            self.ResolutionReversed,
            timestamp=at,
            reversed_transition=before["transition"],
            from_state=self.state,
            to_state=before["state"],
            actor=actor,
            reason=reason,
            q_long_units=before["q_long"],
            q_short_units=before["q_short"],
            order_ids=sorted(before["orders"], key=lambda order_id: before["orders"][order_id]["sequence"]),
            reversed_payout_units=payout_units,
            reversed_subsidy_units=before["subsidy_units"],
            reversed_tax_units=before["tax_units"],
        )
        return booked


register_aggregate(Artifact)
