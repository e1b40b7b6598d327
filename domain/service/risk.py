"""The portfolio and risk verbs of the StakeLedger application."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from stakeledger.domain.decisions.loading import load_artifact, load_position, require_agent
from stakeledger.domain.decisions.risk import (
    configure_market,
    configure_portfolio,
    kelly_sizing,
    liquidate,
    load_portfolio,
    start_stop,
)
from stakeledger.domain.decisions.trading import MarketOrder, expire_agent_orders, open_market_position
from stakeledger.domain.decisions.unit_of_work import UnitOfWork
from stakeledger.domain.errors import InvalidAmountError, InvalidInputError, StateError
from stakeledger.domain.model.accounts import agent_account_id
from stakeledger.domain.model.naming import stable_topic
from stakeledger.domain.model.positions import Position
from stakeledger.domain.rules.rationale import Rationale, rationale_state
from stakeledger.domain.rules.risk.config import MarketConfig, PortfolioConfig
from stakeledger.domain.service.ledger import LedgerCore
from stakeledger.domain.vocabulary import WAD


def _config_error(error: ValueError) -> InvalidInputError:
    return InvalidInputError(f"invalid risk setting: {error}")


def _pct(name: str, value: Any) -> Decimal:
    """A percentage given as text or number; NaN, infinities and junk are refused."""
    if isinstance(value, (bool, float)):
        raise InvalidInputError(f"{name} must be a decimal string, got {value!r}")
    try:
        pct = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidInputError(f"{name} must be a number of percent, got {value!r}") from None
    if not pct.is_finite():
        raise InvalidInputError(f"{name} must be finite, got {value!r}")
    return pct


def _check_kelly(belief_wad: int, fraction: Fraction) -> None:
    if not (isinstance(belief_wad, int) and 0 < belief_wad < WAD):
        raise InvalidAmountError("belief must be strictly between 0 and 1")
    if not 0 < fraction <= 1:
        raise InvalidAmountError("Kelly fraction must be in (0, 1]")


def _kelly_summary(
    agent: str, artifact_id: str, side: str, price_long_wad: int, belief_wad: int, sizing: Any
) -> dict[str, Any]:
    return {
        "agent": agent,
        "artifact": artifact_id,
        "side": side,
        "price_long_wad": str(price_long_wad),
        "belief_wad": str(belief_wad),
        "full_kelly": str(sizing.full_fraction),
        "applied_fraction": str(sizing.applied_fraction),
        "raw_size_units": str(sizing.raw_size_units),
        "size_units": str(sizing.size_units),
        "capped_by": str(sizing.capped_by) if sizing.capped_by else None,
        "should_order": bool(sizing.should_order),
        "reason": str(sizing.reason) if not sizing.should_order else None,
    }


def _stop_pct(name: str, value: Any, *, low_open: bool = True, high_open: bool = False) -> Decimal:
    """A stop's percentage: above (or at least) 0 and below 100, in percent (10 means 10 %)."""
    pct = _pct(name, value)
    if (pct <= 0 if low_open else pct < 0) or (pct >= 100 if high_open else pct > 100):
        low = "above 0" if low_open else "at least 0"
        raise InvalidInputError(f"{name} takes a percentage {low} and below 100 (10 means 10 %), got {value!r}")
    return pct


class RiskCommands(LedgerCore):
    """Mixed into StakeLedger."""

    def agent_position_ids(self, agent: str) -> list[str]:
        """Every position the agent ever opened, oldest first (a scan of Position.Opened)."""
        from stakeledger.domain.service.log import iter_events  # read-side helper: no writes

        return [
            event.position_id
            for _, event in iter_events(self, topics=(stable_topic(Position.Opened),))
            if event.owner == agent
        ]

    def position_owner(self, position_id: str) -> str:
        """Whose position this is (UNKNOWN_POSITION when there is none); reads, writes nothing."""
        unit = UnitOfWork(self, self.clock.now(), self.new_id)
        return load_position(unit, position_id).owner

    def agent_order_artifacts(self, agent: str) -> list[str]:
        """Every market the agent ever placed a limit order on, in order of first placement."""
        from stakeledger.domain.model.artifacts import Artifact, artifact_of
        from stakeledger.domain.service.log import iter_events  # read-side helper: no writes

        seen = {
            artifact_of(event.order_id): None
            for _, event in iter_events(self, topics=(stable_topic(Artifact.OrderPlaced),))
            if event.agent == agent
        }
        return list(seen)

    def configure_portfolio(self, agent: str, *, command_id: str | None = None, **limits: Any) -> dict[str, Any]:
        """Set (or change) an agent's risk limits; unspecified limits keep their value or default."""
        account_id = agent_account_id(agent)
        self.settings  # noqa: B018
        existing = self.agent_position_ids(account_id)

        def decide(unit: UnitOfWork) -> dict[str, Any]:
            expire_agent_orders(unit, account_id)
            portfolio = load_portfolio(unit, account_id)
            base = portfolio.limits.to_dict() if portfolio else PortfolioConfig.default(self.decimals).to_dict()
            try:
                config = PortfolioConfig.from_dict({**base, **{k: v for k, v in limits.items() if v is not None}})
            except ValueError as error:
                raise _config_error(error) from None
            return configure_portfolio(unit, account_id, config, existing)

        payload = {"agent": account_id, **{k: str(v) for k, v in limits.items()}}
        return self.execute("portfolio.config", decide, payload=payload, command_id=command_id)

    def configure_market(
        self,
        agent: str,
        artifact_id: str,
        *,
        position_size_pct: Any = None,
        trail_pct: Any = None,
        correlation_group: str | None = None,
        command_id: str | None = None,
    ) -> dict[str, Any]:
        try:
            config = MarketConfig(position_size_pct, trail_pct, correlation_group)
        except ValueError as error:
            raise _config_error(error) from None
        return self.execute(
            "portfolio.market",
            lambda unit: configure_market(unit, agent, artifact_id, config),
            payload={"agent": agent, "artifact": artifact_id, **config.to_dict()},
            command_id=command_id,
        )

    def set_stop(
        self,
        position_id: str,
        trail_pct: Any,
        min_ratchet_pct: Any = Decimal(0),
        *,
        command_id: str | None = None,
    ) -> dict[str, Any]:
        """Put a trailing stop on a position, or replace the one it has (``replaced`` says which)."""
        trail = _stop_pct("trail_pct", trail_pct, high_open=True)
        ratchet = _stop_pct("min_ratchet_pct", min_ratchet_pct, low_open=False, high_open=True)

        def decide(unit: UnitOfWork) -> dict[str, Any]:
            position = load_position(unit, position_id)
            artifact = load_artifact(unit, position.artifact_id)
            previous = artifact.stops.get(position_id)
            if previous is not None:
                if not position.is_live:
                    raise StateError(f"position {position_id!r} is {position.status}")
                artifact.clear_stop(position_id, "replaced", unit.at)
            result = start_stop(unit, artifact, position, trail, ratchet)
            return {
                **result,
                "replaced": previous is not None,
                "previous_trail_pct": str(previous["stop"]["trail_pct"]) if previous is not None else None,
            }

        return self.execute(
            "trade.stop",
            decide,
            payload={"position": position_id, "trail": str(trail_pct), "ratchet": str(min_ratchet_pct)},
            command_id=command_id,
        )

    def remove_stop(self, position_id: str, *, command_id: str | None = None) -> dict[str, Any]:
        """Take a position's trailing stop away; refused when it has none."""

        def decide(unit: UnitOfWork) -> dict[str, Any]:
            position = load_position(unit, position_id)
            artifact = load_artifact(unit, position.artifact_id)
            entry = artifact.stops.get(position_id)
            if entry is None:
                raise StateError(f"position {position_id!r} has no stop to remove")
            artifact.clear_stop(position_id, "removed", unit.at)
            return {"position": position_id, "removed": True, "trail_pct": str(entry["stop"]["trail_pct"])}

        return self.execute("trade.stop.remove", decide, payload={"position": position_id}, command_id=command_id)

    def evaluate_risk(self, artifact_id: str) -> dict[str, Any]:
        """Re-run the market's stops and its agents' liquidation checks at the recorded price."""
        from stakeledger.domain.decisions.risk import after_price_move

        def decide(unit: UnitOfWork) -> dict[str, Any]:
            artifact = load_artifact(unit, artifact_id)
            return {
                "artifact": artifact_id,
                "price_long_wad": str(artifact.price_long_wad),
                "actions": after_price_move(unit, artifact),
            }

        return self.execute("risk.evaluate", decide, payload={"artifact": artifact_id})

    def liquidate_portfolio(self, agent: str, *, command_id: str | None = None) -> dict[str, Any]:
        """Emergency liquidation by hand: close every position that may be closed now."""

        def decide(unit: UnitOfWork) -> dict[str, Any]:
            portfolio = load_portfolio(unit, agent_account_id(agent))
            if portfolio is None:
                raise StateError(f"agent {agent!r} has no portfolio: nothing to liquidate under limits")
            expire_agent_orders(unit, portfolio.agent)
            actions = liquidate(unit, portfolio, trigger="manual")
            return {"agent": agent, "closed": [a["position"] for a in actions]}

        return self.execute("portfolio.liquidate", decide, payload={"agent": agent}, command_id=command_id)

    def size_order(
        self, agent: str, artifact_id: str, belief_wad: int, *, fraction: Fraction = Fraction(1, 4)
    ) -> dict[str, Any]:
        """The order fractional Kelly would place, under the agent's limits, without placing
        it (seed 002's ``size_order``): writes nothing."""
        _check_kelly(belief_wad, fraction)
        account_id = agent_account_id(agent)
        unit = UnitOfWork(self, self.clock.now(), self.new_id)
        require_agent(unit, account_id)
        artifact = load_artifact(unit, artifact_id)
        side, sizing = kelly_sizing(unit, account_id, artifact, belief_wad, fraction)
        return {
            **_kelly_summary(account_id, artifact_id, side, artifact.price_long_wad, belief_wad, sizing),
            "dry_run": True,
        }

    def kelly_order(
        self,
        agent: str,
        artifact_id: str,
        belief_wad: int,
        *,
        fraction: Fraction = Fraction(1, 4),
        rationale: Rationale | None = None,
        command_id: str | None = None,
    ) -> dict[str, Any]:
        """Size an order by fractional Kelly and place it, or say why not. The position records
        the input belief as its rationale's ``belief_wad``, with the edge, reasoning and
        features of ``rationale`` when given (a belief there must be the same one)."""
        _check_kelly(belief_wad, fraction)
        account_id = agent_account_id(agent)
        given = rationale_state(rationale)  # refuses a non-Rationale before anything runs
        recorded = (rationale if rationale is not None and given is not None else Rationale()).with_belief(belief_wad)

        def decide(unit: UnitOfWork) -> dict[str, Any]:
            artifact = load_artifact(unit, artifact_id)
            side, sizing = kelly_sizing(unit, account_id, artifact, belief_wad, fraction)
            summary = _kelly_summary(account_id, artifact_id, side, artifact.price_long_wad, belief_wad, sizing)
            if not sizing.should_order:
                return {**summary, "placed": False, "reason": str(sizing.reason)}
            from stakeledger.domain.vocabulary import Side

            order = MarketOrder(account_id, artifact_id, Side(side), sizing.size_units, rationale=recorded)
            trade = open_market_position(unit, order)
            return {**summary, "placed": "rejected" not in trade, "trade": trade}

        payload: dict[str, Any] = {
            "agent": account_id,
            "artifact": artifact_id,
            "belief": str(belief_wad),
            "fraction": str(fraction),
        }
        if given is not None:  # the payload of a Kelly order without one stays what it always was
            payload["rationale"] = given
        return self.execute("trade.kelly", decide, payload=payload, command_id=command_id)
