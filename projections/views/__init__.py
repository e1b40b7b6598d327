"""The read models: one module per view. ``ALL_VIEWS`` is the list the runner keeps current."""

from __future__ import annotations

from stakeledger.domain.errors import InvalidInputError
from stakeledger.projections.views.base import View, handles
from stakeledger.projections.views.candles import CandlesView
from stakeledger.projections.views.inbox import InboxView
from stakeledger.projections.views.markets import MarketsView
from stakeledger.projections.views.portfolio import PortfolioView
from stakeledger.projections.views.reputation import ReputationView
from stakeledger.projections.views.settlements import SettlementsView
from stakeledger.projections.views.statements import StatementsView
from stakeledger.projections.views.tape import TapeView

ALL_VIEWS: tuple[View, ...] = (
    StatementsView(),
    MarketsView(),
    PortfolioView(),
    SettlementsView(),
    ReputationView(),
    InboxView(),
    TapeView(),
    CandlesView(),
)


def view_names() -> tuple[str, ...]:
    return tuple(view.name for view in ALL_VIEWS)


def views_named(names: list[str] | tuple[str, ...] | None) -> tuple[View, ...]:
    """The views with these names, in ALL_VIEWS order; every view when ``names`` is None."""
    if names is None:
        return ALL_VIEWS
    unknown = sorted(set(names) - set(view_names()))
    if unknown:
        raise InvalidInputError(f"unknown view {unknown[0]!r}: views are {', '.join(view_names())}")
    return tuple(view for view in ALL_VIEWS if view.name in names)


__all__ = ["ALL_VIEWS", "View", "handles", "view_names", "views_named"]
