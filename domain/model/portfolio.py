"""The Portfolio aggregate: an agent's risk configuration and the risk decisions taken for it.

Risk limits are opt-in: an agent's orders pass the pre-trade checks once the agent
has a portfolio (``portfolio config``). The portfolio records the limits, per-market
overrides, every position opened under them, every rejected order with its reason
code, and every emergency liquidation, so a replay sees exactly what the live run saw.
"""

from datetime import datetime
from functools import lru_cache
from typing import Any, Optional
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from stakeledger.domain.model.copying import CheapCopy
from stakeledger.domain.model.naming import register_aggregate
from stakeledger.domain.model.types import Name, PositiveUnits, SignedUnits, Units
from stakeledger.domain.rules.risk.config import MarketConfig, PortfolioConfig
from stakeledger.domain.rules.risk.pretrade import Rejection

_NAMESPACE = uuid5(NAMESPACE_URL, "https://stakeledger.invalid/portfolio")
MAX_TRACKED_POSITIONS = 100_000


@lru_cache(maxsize=65_536)  # a uuid5 (a SHA-1) per lookup cost more than the lookup
def portfolio_uuid(agent: str) -> UUID:
    return uuid5(_NAMESPACE, agent)


class Portfolio(CheapCopy, Aggregate):
    class Configured(Aggregate.Created):
        agent: Name
        config: dict[str, Any]
        baseline_units: Units
        position_ids: list[str]

    class Reconfigured(Aggregate.Event):
        config: dict[str, Any]

        def apply(self, portfolio: "Portfolio") -> None:
            portfolio.config = dict(self.config)

    class MarketConfigured(Aggregate.Event):
        artifact_id: Name
        config: dict[str, Any]

        def apply(self, portfolio: "Portfolio") -> None:
            portfolio.market_configs[self.artifact_id] = dict(self.config)

    class PositionTracked(Aggregate.Event):
        position_id: Name

        def apply(self, portfolio: "Portfolio") -> None:
            portfolio.position_ids.append(self.position_id)

    class OrdersWatched(Aggregate.Event):
        """The agent rests orders on this artifact: their escrow counts toward equity."""

        artifact_id: Name

        def apply(self, portfolio: "Portfolio") -> None:
            portfolio.order_artifacts.append(self.artifact_id)

    class OrderRejected(Aggregate.Event):
        """A business outcome, not an error: the order broke a limit and was not placed."""

        artifact_id: Name
        side: Name
        tokens_units: PositiveUnits
        reason: Name
        context: dict[str, str]
        order_id: Optional[str]

        def apply(self, portfolio: "Portfolio") -> None:
            portfolio.rejections += 1

    class Liquidated(Aggregate.Event):
        equity_units: SignedUnits
        baseline_units: Units
        trigger: Name
        position_ids: list[str]

        def apply(self, portfolio: "Portfolio") -> None:
            portfolio.liquidations += 1

    def __init__(self, agent: str, config: dict[str, Any], baseline_units: int, position_ids: list[str]) -> None:
        self.agent = agent
        self.config = dict(config)
        self.baseline_units = baseline_units
        self.position_ids = list(position_ids)
        self.market_configs: dict[str, dict[str, Any]] = {}
        self.order_artifacts: list[str] = []
        self.rejections = 0
        self.liquidations = 0

    @classmethod
    def start(
        cls, agent: str, config: PortfolioConfig, baseline_units: int, position_ids: list[str], at: datetime
    ) -> "Portfolio":
        return cls._create(
            cls.Configured,
            id=portfolio_uuid(agent),
            timestamp=at,
            agent=agent,
            config=config.to_dict(),
            baseline_units=baseline_units,
            position_ids=position_ids,
        )

    @property
    def limits(self) -> PortfolioConfig:
        return PortfolioConfig.from_dict(self.config)

    def market_config(self, artifact_id: str) -> Optional[MarketConfig]:
        data = self.market_configs.get(artifact_id)
        return MarketConfig.from_dict(data) if data is not None else None

    def reconfigure(self, config: PortfolioConfig, at: datetime) -> None:
        self.trigger_event(self.Reconfigured, timestamp=at, config=config.to_dict())

    def configure_market(self, artifact_id: str, config: MarketConfig, at: datetime) -> None:
        self.trigger_event(self.MarketConfigured, timestamp=at, artifact_id=artifact_id, config=config.to_dict())

    def track(self, position_id: str, at: datetime) -> None:
        if len(self.position_ids) >= MAX_TRACKED_POSITIONS:
            raise AssertionError("portfolio tracks too many positions")
        self.trigger_event(self.PositionTracked, timestamp=at, position_id=position_id)

    def watch_orders(self, artifact_id: str, at: datetime) -> None:
        if artifact_id not in self.order_artifacts:
            self.trigger_event(self.OrdersWatched, timestamp=at, artifact_id=artifact_id)

    def reject(
        self,
        artifact_id: str,
        side: str,
        tokens_units: int,
        rejection: Rejection,
        order_id: Optional[str],
        at: datetime,
    ) -> None:
        self.trigger_event(
            self.OrderRejected,
            timestamp=at,
            artifact_id=artifact_id,
            side=side,
            tokens_units=tokens_units,
            reason=str(rejection.reason),
            context=dict(rejection.context),
            order_id=order_id,
        )

    def liquidated(self, equity_units: int, trigger: str, position_ids: list[str], at: datetime) -> None:
        self.trigger_event(
            self.Liquidated,
            timestamp=at,
            equity_units=equity_units,
            baseline_units=self.baseline_units,
            trigger=trigger,
            position_ids=position_ids,
        )


register_aggregate(Portfolio)
