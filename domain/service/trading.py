"""The market verbs of the StakeLedger application: list, quote, trade, cancel, close, batch,
and one position's history (with the rationale its order recorded)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Union

from stakeledger.domain.decisions.loading import prefetch_trades
from stakeledger.domain.decisions.pool import fee_units
from stakeledger.domain.decisions.trading import (
    LimitOrder,
    MarketOrder,
    cancel_order,
    close_position,
    expire_due_orders,
    list_artifact,
    open_market_position,
    order_lifetime,
    place_limit_order,
    place_take_profit,
)
from stakeledger.domain.decisions.unit_of_work import UnitOfWork
from stakeledger.domain.errors import InvalidInputError, UnknownArtifactError, UnknownPositionError
from stakeledger.domain.model.accounts import pool_account_id
from stakeledger.domain.model.artifacts import Artifact, artifact_of, artifact_uuid, check_artifact_id, check_side
from stakeledger.domain.model.naming import stable_topic
from stakeledger.domain.model.positions import position_uuid
from stakeledger.domain.rules.lmsr import average_price_wad, buy_cost_units, depth, prices_wad, shares_for_tokens
from stakeledger.domain.rules.money import check_units
from stakeledger.domain.rules.rationale import Rationale, rationale_state
from stakeledger.domain.rules.resolution import ResolutionRules
from stakeledger.domain.service.ledger import LedgerCore
from stakeledger.domain.vocabulary import MAX_BATCH_ORDERS, Side

Order = Union[MarketOrder, LimitOrder]


class MarketCommands(LedgerCore):
    """Mixed into StakeLedger; every write goes through ``execute`` (one transaction)."""

    def list_artifact(
        self,
        artifact_id: str,
        title: str,
        liquidity_units: int,
        *,
        group: str | None = None,
        min_hold_days: int = 0,
        resolution: ResolutionRules | None = None,
        fee_bps: int = 0,
        command_id: str | None = None,
    ) -> dict[str, Any]:
        """List a market. ``resolution``: its thresholds and averaging window (seed 000's by default)."""
        self.settings  # noqa: B018 - refuse before writing when not initialised
        if resolution is not None and not isinstance(resolution, ResolutionRules):
            raise InvalidInputError("resolution must be a ResolutionRules")
        payload = {
            "artifact": artifact_id,
            "title": title,
            "b": str(liquidity_units),
            "group": group,
            "hold": min_hold_days,
        }
        if resolution is not None:  # the payload of a default listing stays what it always was
            payload["rules"] = resolution.as_dict()
        if fee_bps != 0:
            payload["fee_bps"] = fee_bps
        rules = resolution or ResolutionRules()
        return self.execute(
            "artifact.add",
            lambda unit: list_artifact(unit, artifact_id, title, liquidity_units, group, min_hold_days, rules, fee_bps),
            payload=payload,
            command_id=command_id,
        )

    def open_position(
        self,
        agent: str,
        artifact_id: str,
        side: str,
        tokens_units: int,
        *,
        max_price_wad: int | None = None,
        min_shares_units: int | None = None,
        rationale: Rationale | None = None,
        command_id: str | None = None,
    ) -> dict[str, Any]:
        """Buy at market; ``rationale`` (why) is stored on the position the order opens."""
        order = MarketOrder(
            agent,
            artifact_id,
            check_side(side),
            check_units(tokens_units),
            max_price_wad,
            min_shares_units,
            _checked(rationale),
        )
        return self.execute(
            "trade.open",
            lambda unit: open_market_position(unit, order),
            payload=_order_payload(order),
            command_id=command_id,
        )

    def place_limit_order(
        self,
        agent: str,
        artifact_id: str,
        side: str,
        tokens_units: int,
        limit_price_wad: int,
        *,
        expires_in_days: float | Decimal | None = None,
        rationale: Rationale | None = None,
        command_id: str | None = None,
    ) -> dict[str, Any]:
        """Rest a limit order; ``rationale`` (why) is stored on the order and on every position it fills."""
        lifetime = order_lifetime(expires_in_days) if expires_in_days is not None else None
        checked = _checked(rationale)

        def decide(unit: UnitOfWork) -> dict[str, Any]:
            order = LimitOrder(
                agent,
                artifact_id,
                check_side(side),
                check_units(tokens_units),
                limit_price_wad,
                expires_in=lifetime,
                rationale=checked,
            )
            return place_limit_order(unit, order)

        payload = {
            "agent": agent,
            "artifact": artifact_id,
            "side": side,
            "tokens": str(tokens_units),
            "limit": str(limit_price_wad),
            "expires_in_days": expires_in_days if not isinstance(expires_in_days, Decimal) else str(expires_in_days),
        }
        if checked is not None:  # the payload of an order without one stays what it always was
            payload["rationale"] = rationale_state(checked)
        return self.execute("trade.limit", decide, payload=payload, command_id=command_id)

    def cancel_order(self, order_id: str, agent: str | None = None, *, command_id: str | None = None) -> dict[str, Any]:
        """Cancel a resting order; with ``agent``, only if that agent placed it."""
        return self.execute(
            "trade.cancel",
            lambda unit: cancel_order(unit, order_id, agent),
            payload={"order": order_id, "agent": agent},
            command_id=command_id,
        )

    def close_position(
        self,
        position_id: str,
        *,
        agent: str | None = None,
        shares_units: int | None = None,
        tokens_units: int | None = None,
        command_id: str | None = None,
    ) -> dict[str, Any]:
        """Sell a position back at market: all of it, ``shares_units`` of its shares, or the
        fewest shares whose sale pays at least ``tokens_units``."""
        payload: dict[str, Any] = {"position": position_id, "agent": agent}
        if shares_units is not None:  # a full close's payload stays what it always was
            payload["shares"] = str(shares_units)
        if tokens_units is not None:
            payload["tokens"] = str(tokens_units)
        return self.execute(
            "trade.close",
            lambda unit: close_position(
                unit, position_id, owner=agent, shares_units=shares_units, tokens_units=tokens_units
            ),
            payload=payload,
            command_id=command_id,
        )

    def place_take_profit(
        self,
        position_id: str,
        limit_price_wad: int,
        *,
        agent: str | None = None,
        expires_in_days: float | Decimal | None = None,
        command_id: str | None = None,
    ) -> dict[str, Any]:
        """Rest a sell of the position that fills while its side's price is above the limit;
        ``trade cancel`` (cancel_order) removes it."""
        lifetime = order_lifetime(expires_in_days) if expires_in_days is not None else None
        payload = {
            "position": position_id,
            "agent": agent,
            "limit": str(limit_price_wad),
            "expires_in_days": expires_in_days if not isinstance(expires_in_days, Decimal) else str(expires_in_days),
        }
        return self.execute(
            "trade.take_profit",
            lambda unit: place_take_profit(unit, position_id, limit_price_wad, lifetime, owner=agent),
            payload=payload,
            command_id=command_id,
        )

    def trade_batch(self, orders: Sequence[Order], *, command_id: str | None = None) -> dict[str, Any]:
        """Many orders in one transaction, each against the state the earlier ones left."""
        if not orders:
            raise InvalidInputError("a batch needs at least one order")
        if len(orders) > MAX_BATCH_ORDERS:
            raise InvalidInputError(f"a batch holds at most {MAX_BATCH_ORDERS} orders, got {len(orders)}")
        runners: list[Callable[[UnitOfWork], dict[str, Any]]] = []
        for order in orders:
            check_units(order.tokens_units)
            _checked(order.rationale)
            if isinstance(order, MarketOrder):
                runners.append(lambda unit, o=order: open_market_position(unit, o))
            else:
                runners.append(lambda unit, o=order: place_limit_order(unit, o))

        def decide(unit: UnitOfWork) -> dict[str, Any]:
            prefetch_trades(unit, [(order.agent, order.artifact_id) for order in orders])
            return {"results": [run(unit) for run in runners]}

        payload = {"orders": [_order_payload(order) for order in orders]}
        return self.execute("trade.batch", decide, payload=payload, command_id=command_id)

    def expire_orders(self, *, command_id: str | None = None) -> dict[str, Any]:
        """The sweep: release every resting order whose expiry has passed, on every market.

        Markets holding orders with an expiry are found from the log, incrementally (each
        sweep reads only the events since the last); a market leaves the list once the
        latest expiry seen on it has passed and been swept."""
        now = self.clock.now()
        candidates = self._expiring_markets()

        def decide(unit: UnitOfWork) -> dict[str, Any]:
            due = sorted(artifact_id for artifact_id, latest in candidates.items() if min(latest) <= unit.at)
            released = expire_due_orders(unit, due)
            return {"at": unit.at.isoformat(), "markets": len(due), "expired": released}

        result = self.execute("orders.expire", decide, payload={"at": now.isoformat()}, command_id=command_id)
        swept_at = datetime.fromisoformat(result["at"])
        for artifact_id in list(candidates):
            expiries = [moment for moment in candidates[artifact_id] if moment > swept_at]
            if expiries:
                candidates[artifact_id] = expiries
            else:
                del candidates[artifact_id]
        return result

    def _expiring_markets(self) -> dict[str, list[datetime]]:
        """artifact -> the expiry times of its orders placed since the last sweep was read."""
        from stakeledger.domain.service.log import iter_events  # read-side helper: no writes

        state = self.__dict__.setdefault("_expiry_scan", {"after": 0, "markets": {}})
        markets: dict[str, list[datetime]] = state["markets"]
        for position, event in iter_events(self, after=state["after"], topics=(stable_topic(Artifact.OrderPlaced),)):
            state["after"] = position
            if event.expires_at is not None:
                markets.setdefault(artifact_of(event.order_id), []).append(event.expires_at)
        return markets

    # Reads --------------------------------------------------------------------------------

    def position_history(self, position_id: str) -> list[dict[str, Any]]:
        """The position's events, oldest first, as plain dicts: ``event`` (its name, e.g.
        "Opened"), ``version``, ``at`` (the event's time) and the event's own fields (ints in
        base units and WAD, text). The first is always "Opened", whose ``rationale`` is the
        dict its order stored (``domain.rules.rationale``) or None. Writes nothing."""
        if not isinstance(position_id, str):
            raise InvalidInputError(f"a position id is text, got {type(position_id).__name__}")
        artifact_of(position_id)  # refuses a malformed id before any read
        history = [_history_row(event) for event in self.events.get(position_uuid(position_id))]
        if not history:
            raise UnknownPositionError(f"unknown position {position_id!r}")
        return history

    def position_view(self, position_id: str) -> dict[str, Any]:
        """One position for the people and programs that read it: who holds what, its status
        now, the rationale its order recorded (ints at 10**18, or None) and its history
        (``position_history``). Every number is an exact int. Writes nothing."""
        history = self.position_history(position_id)
        opened = history[0]
        position = self.repository.get(position_uuid(position_id))
        return {
            "position": position_id,
            "owner": opened["owner"],
            "artifact": opened["artifact_id"],
            "side": opened["side"],
            "order": opened["order_id"],
            "status": position.status,
            "quantity_units": position.quantity_units,
            "cost_units": position.cost_units,
            "realized_pnl_units": position.realized_pnl_units,
            "rationale": opened["rationale"],
            "events": history,
        }

    def position_rationale(self, position_id: str) -> Rationale | None:
        """Why the position's order was placed, or None when it recorded nothing."""
        return Rationale.from_event(self.position_history(position_id)[0]["rationale"])

    def get_artifact(self, artifact_id: str) -> Artifact:
        from eventsourcing.application import AggregateNotFoundError

        try:
            artifact = self.repository.get(artifact_uuid(check_artifact_id(artifact_id)))
        except AggregateNotFoundError:
            raise UnknownArtifactError(f"unknown artifact {artifact_id!r}") from None
        assert isinstance(artifact, Artifact)
        return artifact

    def quote(
        self,
        artifact_id: str,
        side: str,
        *,
        shares_units: int | None = None,
        tokens_units: int | None = None,
    ) -> dict[str, Any]:
        """Cost, average price and price after, for buying shares or spending tokens; writes nothing."""
        if (shares_units is None) == (tokens_units is None):
            raise InvalidInputError("quote needs exactly one of shares or tokens")
        artifact = self.get_artifact(artifact_id)
        chosen = check_side(side)
        q_long, q_short, b = artifact.q_long, artifact.q_short, artifact.b_units
        if shares_units is not None:
            shares = check_units(shares_units)
            cost = buy_cost_units(q_long, q_short, b, chosen, shares)
        else:
            cost = check_units(tokens_units)
            shares = shares_for_tokens(q_long, q_short, b, chosen, cost)
        after = (q_long + shares, q_short) if chosen == Side.LONG else (q_long, q_short + shares)
        return {
            "artifact": artifact_id,
            "side": chosen.value,
            "shares_units": str(shares),
            "cost_units": str(cost),
            # Charged on top of the cost: a buy needs cost + fee in the account.
            "fee_bps": artifact.fee_bps,
            "fee_units": str(fee_units(cost, artifact.fee_bps)),
            "total_units": str(cost + fee_units(cost, artifact.fee_bps)),
            "average_price_wad": str(average_price_wad(cost, shares)),
            "price_long_before_wad": str(artifact.price_long_wad),
            "price_long_after_wad": str(prices_wad(*after, b)[0]),
        }

    def market_depth(self, artifact_id: str) -> list[dict[str, str]]:
        """The cost to move the long price to 0.1, 0.2, ... 0.9 from where it stands."""
        artifact = self.get_artifact(artifact_id)
        return depth(artifact.q_long, artifact.q_short, artifact.b_units)

    def artifact_state(self, artifact_id: str) -> dict[str, Any]:
        """An artifact and its market straight from the aggregate (always current, no view):
        lifecycle state, outstanding shares, prices, the settlement price once settled, the
        window's average p(long) now and the resolution rules, pool balance, open interest,
        bounties."""
        artifact = self.get_artifact(artifact_id)
        long_wad, short_wad = artifact.prices()
        rules = artifact.resolution_rules
        settled = artifact.settlement_price_wad
        return {
            "artifact": artifact.artifact_id,
            "title": artifact.title,
            "group": artifact.group,
            "state": artifact.state,
            "liquidity_units": str(artifact.b_units),
            "min_hold_days": artifact.min_hold_days,
            "fee_bps": artifact.fee_bps,
            "listed_at": artifact.listed_at.isoformat(),
            "q_long_units": str(artifact.q_long),
            "q_short_units": str(artifact.q_short),
            "price_long_wad": str(long_wad),
            "price_short_wad": str(short_wad),
            # A settled market's price is the one it settled at; the pool's quote no longer trades.
            "settlement_price_wad": None if settled is None else str(settled),
            "window_average_wad": None
            if settled is not None
            else str(artifact.window_average_price_wad(max(self.clock.now(), artifact.modified_on))),
            "resolution": {
                "validated_min_wad": str(rules.validated_min_wad),
                "deprecated_max_wad": str(rules.deprecated_max_wad),
                "flagged_below_wad": str(rules.flagged_below_wad),
                "window_days": rules.window_days,
            },
            "pool_units": str(self.balance_of(pool_account_id(artifact.artifact_id))),
            "open_interest_units": str(artifact.q_long + artifact.q_short),
            "resting_orders": len(artifact.orders),
            "positions": len(artifact.position_ids),
            "bounties": {
                bounty_id: {"status": b["status"], "sponsor": b["sponsor"], "amount_units": str(b["amount_units"])}
                for bounty_id, b in artifact.bounties.items()
            },
        }


def _order_payload(order: Order) -> dict[str, Any]:
    fields = {
        key: (value.isoformat() if hasattr(value, "isoformat") else value)
        for key, value in vars(order).items()
        if key != "rationale"
    }
    payload = {
        "kind": type(order).__name__,
        **{key: str(value) if isinstance(value, int) else value for key, value in fields.items()},
    }
    if order.rationale is not None:  # the payload of an order without one stays what it always was
        payload["rationale"] = rationale_state(order.rationale)
    return payload


def _checked(rationale: Rationale | None) -> Rationale | None:
    """``rationale`` when it is one with something in it, None for none or an empty one;
    anything else is refused before a command runs."""
    return None if rationale_state(rationale) is None else rationale


_BASE_FIELDS = ("originator_id", "originator_version", "timestamp", "originator_topic")


def _history_row(event: Any) -> dict[str, Any]:
    fields = {key: value for key, value in vars(event).items() if key not in _BASE_FIELDS}
    return {
        "event": type(event).__name__,
        "version": event.originator_version,
        "at": event.timestamp.isoformat(),
        **fields,
    }
