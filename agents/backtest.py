"""Backtesting: a strategy replayed over recorded history, through the interface the live
orchestrator gives it (issue 19), against an in-memory copy of the ledger.

    result = run_backtest(source, load_strategy("momentum.py"), start=120, end=900, agent="alice")

The copy is a fresh in-memory ``StakeLedger`` holding the source's stored events at log
positions <= ``start``, inserted verbatim, with a ``ManualClock`` the backtest moves; the
source is only read. Then each recorded event at ``start < p <= end`` is replayed in order
with the copy's clock at the event's time:

- a trade by anyone but the backtested agent on a selected market is re-executed by one
  flow account (``backtest-flow``, funded by mints inside the copy). A buy of X shares
  pays what the recorded tokens pay if they still buy X shares on the copy's pool, else
  the pool's cost for X shares there ("about X": tokens buy whole runs of shares). A sale
  of X shares sells exactly X shares of the same position in the copy: the position
  itself when it was opened before ``start``, else the flow's mirror of it. Buying X
  shares of the other side instead, which moves the price as far, is only the fallback
  when the copy has no such shares: a token budget cannot buy exactly X shares about half
  the time, a sale is exact.
- other agents' resting limit orders, take-profits and trailing stops live on in the copy
  and act by its rules, so a strategy's trade may fill or trigger them as it would have
  live; those placed later are placed again (limit orders by the flow, with the same
  budget, limit and expiry), those cancelled or removed are cancelled or removed, and
  their recorded fills and stop or take-profit sales are not replayed a second time.
  Their emergency liquidation is turned off (-100 %): their equity in the copy is not what
  it was, and each liquidation they had is in the log as sales, replayed as sales.
- listings, lifecycle transitions (at the recorded settlement price: the outcome is the
  world's, not the pool's) and reopens are re-executed through the same service calls,
  so settlement pays the strategy's positions by the same rules;
- the ledger's initialisation, the agent's account and mints or transfers to the agent
  (its capital, counted as deposits, not returns) are replayed; other mints and
  transfers, bounties and other agents' settings are not. The backtested agent's own
  recorded orders, closes, stops and settings are skipped: the strategy decides again.

Without strategy trades every pool then moves exactly as recorded: prices, volumes and
trade counts (tests/integration/test_backtest.py compares the candles).

After each replayed event the copy's new trades (the flow's and the strategy's own)
become feed messages, folded by a ``CandleTracker``; each candle close calls
``strategy(orchestrator, candle)`` (awaited if it returns an awaitable), with a
``MultiMarketOrchestrator`` over the copy, at the clock time of the trade that closed it,
exactly as ``run_from_feed`` does with ``grace=None``. Trades before ``start`` warm the
tracker up (their closes were the live run's). Candles still open at ``end`` are closed
without calling the strategy: live, no later trade came to close them.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal, localcontext
from fractions import Fraction
from pathlib import Path
from types import ModuleType
from typing import Any

from eventsourcing.persistence import StoredEvent

from stakeledger.adapters.persistence.store_url import env_for_url
from stakeledger.agents.feed import INTERVALS, CandleTracker
from stakeledger.agents.orchestrator import MultiMarketOrchestrator
from stakeledger.domain.decisions.pool import fee_units
from stakeledger.domain.decisions.settlement import AUTO_ACTOR
from stakeledger.domain.errors import InvalidInputError, LedgerError, UnknownAccountError, UnknownArtifactError
from stakeledger.domain.model.accounts import Account, account_uuid, agent_account_id
from stakeledger.domain.model.artifacts import Artifact
from stakeledger.domain.model.naming import stable_topic
from stakeledger.domain.model.positions import Position, position_uuid
from stakeledger.domain.model.settings import LedgerSettings
from stakeledger.domain.rules.lmsr import buy_cost_units, shares_for_tokens
from stakeledger.domain.rules.resolution import ResolutionRules
from stakeledger.domain.service.application import StakeLedger
from stakeledger.domain.service.clock import ManualClock
from stakeledger.domain.service.ids import SeededIds
from stakeledger.domain.service.log import iter_events, iter_notifications, max_position
from stakeledger.domain.vocabulary import Reason, Side, is_user_transfer_reason
from stakeledger.projections import dashboard, queries
from stakeledger.projections.runner import Runner
from stakeledger.projections.store import ViewStore, memory_store
from stakeledger.projections.views import views_named
from stakeledger.projections.views.tape import TRADES

FLOW_AGENT = "backtest-flow"
# The views api/feed.py builds its messages from (its FEED_VIEWS): kept current in the copy.
FEED_VIEWS = ("tape", "markets", "settlements", "statements", "inbox")
INSERT_PAGE = 2_000
MAX_DRAIN_ROUNDS = 1_000  # strategy trades feeding closes feeding trades: bounded
RATIO_PLACES = Decimal("0.000000000001")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

Strategy = Callable[[MultiMarketOrchestrator, Any], Any]
# (copy, its view store, after, until) -> (messages of the positions in (after, until], position reached)
FeedBuilder = Callable[[StakeLedger, ViewStore, int, int], tuple[list[dict[str, Any]], int]]
Progress = Callable[[int, int], None]


class BacktestInputError(InvalidInputError):
    code = "INVALID_BACKTEST"


class StrategyFailedError(LedgerError):
    code = "STRATEGY_FAILED"


# Loading a strategy -----------------------------------------------------------------------------


def load_strategy(path: str | Path) -> ModuleType:
    """STRATEGY.py as a module: it must define ``strategy(orchestrator, candle)``, and may
    define ``setup(orchestrator)``. Refused clearly when the file or the function is missing."""
    file = Path(path)
    if file.suffix != ".py":
        raise BacktestInputError(f"a strategy is a Python file (STRATEGY.py), got {str(path)!r}")
    if not file.is_file():
        raise BacktestInputError(f"no strategy file at {str(path)!r}")
    digest = hashlib.sha256(str(file.resolve()).encode()).hexdigest()[:16]
    name = f"stakeledger_backtest_strategy_{digest}"
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py file always has a loader
        raise BacktestInputError(f"cannot load {str(path)!r} as Python")
    module = importlib.util.module_from_spec(spec)
    # Registered while it runs, as an import would: dataclasses and pickling look it up there.
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # noqa: BLE001 - the user's file: report what it raised
        sys.modules.pop(name, None)
        raise BacktestInputError(f"loading {str(path)!r} raised {type(error).__name__}: {error}") from None
    check_strategy(module, str(path))
    return module


def check_strategy(module: Any, where: str = "the strategy module") -> None:
    if not callable(getattr(module, "strategy", None)):
        raise BacktestInputError(f"{where} defines no function strategy(orchestrator, candle)")
    setup = getattr(module, "setup", None)
    if setup is not None and not callable(setup):
        raise BacktestInputError(f"{where}: setup must be a function setup(orchestrator)")


# Feed messages ----------------------------------------------------------------------------------


def trade_messages(ledger: StakeLedger, store: ViewStore, after: int, until: int) -> tuple[list[dict[str, Any]], int]:
    """The ``trades`` messages of positions in (after, until], as api/feed.py builds them
    (its ``build_messages`` is the CLI's builder; tests check the two agree). agents/ may
    not import api/ (tests/architecture), so this builds the one topic candles need."""
    decimals = ledger.decimals
    with store.read():
        rows = store.select(TRADES, "position > ? AND position <= ?", (after, until), order="position")
    messages = []
    for row in rows:
        trade = queries.tape_trade(row, decimals)
        trade.update(
            topic="trades", agent=row["taker"], p_long=trade["price_after"], p_long_wad=trade["price_after_wad"]
        )
        messages.append(trade)
    return messages, until


class CopyFeed:
    """An app's new feed messages, read from views kept in a private in-memory store."""

    def __init__(self, app: StakeLedger, builder: FeedBuilder = trade_messages) -> None:
        self.app = app
        self.builder = builder
        self.store = memory_store()
        self.runner = Runner(app, self.store, views_named(FEED_VIEWS))
        self.cursor = 0

    def new_messages(self) -> list[dict[str, Any]]:
        head = max_position(self.app)
        if head <= self.cursor:
            return []
        self.runner.catch_up(until=head)
        messages: list[dict[str, Any]] = []
        while self.cursor < head:
            page, reached = self.builder(self.app, self.store, self.cursor, head)
            messages.extend(page)
            if reached <= self.cursor:  # pragma: no cover - a builder that does not move
                raise RuntimeError("the feed builder did not advance")
            self.cursor = reached
        return messages

    def close(self) -> None:
        self.store.close()


class CandleDriver:
    """What ``run_from_feed`` does, in process: each new message of the app, in log order,
    goes to the tracker, and each candle it closes calls ``strategy(orchestrator, candle)``.
    The live test drives a live ledger with it; the backtest drives the copy."""

    def __init__(
        self,
        feed: CopyFeed,
        tracker: CandleTracker,
        orchestrator: MultiMarketOrchestrator,
        strategy: Strategy,
        *,
        on_close: Callable[[Any], None] | None = None,
        deciding: Callable[[bool], None] | None = None,
    ) -> None:
        self.feed = feed
        self.tracker = tracker
        self.orchestrator = orchestrator
        self.strategy = strategy
        self.on_close = on_close
        self.deciding = deciding or (lambda flag: None)
        self.closed: list[Any] = []

    def warm_up(self) -> None:
        """Fold what the log holds now without calling the strategy (those closes are past)."""
        for message in self.feed.new_messages():
            self.tracker.on_message(message)

    async def run_until_idle(self) -> None:
        """Hand every new message to the tracker until the log stops growing (the strategy's
        own trades are messages too)."""
        for _ in range(MAX_DRAIN_ROUNDS):
            messages = self.feed.new_messages()
            if not messages:
                return
            for message in messages:
                for candle in self.tracker.on_message(message):
                    await self._call(candle)
        raise RuntimeError(f"the strategy kept trading for {MAX_DRAIN_ROUNDS} rounds without the log settling")

    async def _call(self, candle: Any) -> None:
        self.closed.append(candle)
        self.deciding(True)
        try:
            outcome = self.strategy(self.orchestrator, candle)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception as error:  # noqa: BLE001 - the user's strategy: say where it failed
            what = f"{error.code}: {error}" if isinstance(error, LedgerError) else f"{type(error).__name__}: {error}"
            raise StrategyFailedError(
                f"the strategy raised {what} (candle {candle.artifact} {candle.start.isoformat()})"
            ) from error
        finally:
            self.deciding(False)
        if self.on_close is not None:
            self.on_close(candle)


# The copy ---------------------------------------------------------------------------------------


def _result_summary(result: dict[str, Any]) -> dict[str, Any]:
    if "rejected" in result:
        return {"rejected": result["rejected"].get("reason"), "message": result.get("message")}
    keep = ("position", "shares_units", "cost_units", "fee_units", "order", "status", "proceeds_units", "pnl_units")
    summary = {key: result[key] for key in keep if key in result}
    if "trade" in result:  # a Kelly order: what it placed
        summary.update(_result_summary(result["trade"]) if isinstance(result["trade"], dict) else {})
    if result.get("placed") is False:
        summary["not_placed"] = result.get("reason")
    return summary


class BacktestLedger(StakeLedger):
    """The in-memory copy: a StakeLedger that writes down each order the strategy places
    (while ``deciding``), with the copy's time, whatever the ledger answers."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deciding = False
        self.decisions: list[dict[str, Any]] = []

    def _decided(self, kind: str, market: str, side: str | None, tokens_units: int | None, outcome: Any) -> None:
        if not self.deciding:
            return
        if isinstance(outcome, LedgerError):
            result = {"error": outcome.code, "message": str(outcome)}
        else:
            result = _result_summary(outcome)
        self.decisions.append(
            {
                "at": self.clock.now().isoformat(),
                "kind": kind,
                "market": market,
                "side": side,
                "tokens_units": None if tokens_units is None else str(tokens_units),
                "result": result,
            }
        )

    def _recorded(self, kind: str, market: str, side: str | None, tokens: int | None, call: Callable[[], Any]) -> Any:
        try:
            outcome = call()
        except LedgerError as error:
            self._decided(kind, market, side, tokens, error)
            raise
        self._decided(kind, market, side, tokens, outcome)
        return outcome

    def open_position(
        self, agent: str, artifact_id: str, side: str, tokens_units: int, **kwargs: Any
    ) -> dict[str, Any]:
        call = lambda: super(BacktestLedger, self).open_position(agent, artifact_id, side, tokens_units, **kwargs)  # noqa: E731
        return self._recorded("market", artifact_id, side, tokens_units, call)

    def place_limit_order(
        self, agent: str, artifact_id: str, side: str, tokens_units: int, limit_price_wad: int, **kwargs: Any
    ) -> dict[str, Any]:
        def call() -> dict[str, Any]:
            return super(BacktestLedger, self).place_limit_order(
                agent, artifact_id, side, tokens_units, limit_price_wad, **kwargs
            )

        return self._recorded("limit", artifact_id, side, tokens_units, call)

    def close_position(self, position_id: str, **kwargs: Any) -> dict[str, Any]:
        call = lambda: super(BacktestLedger, self).close_position(position_id, **kwargs)  # noqa: E731
        market = position_id.partition("/")[0]
        return self._recorded("close", market, None, kwargs.get("tokens_units"), call)

    def kelly_order(self, agent: str, artifact_id: str, belief_wad: int, **kwargs: Any) -> dict[str, Any]:
        call = lambda: super(BacktestLedger, self).kelly_order(agent, artifact_id, belief_wad, **kwargs)  # noqa: E731
        return self._recorded("kelly", artifact_id, None, None, call)


def copy_at(source: StakeLedger, start: int) -> tuple[BacktestLedger, ManualClock, dict[str, Any]]:
    """A fresh in-memory ledger holding the source's stored events at positions <= start,
    verbatim; its clock at the latest of their times. Returns what the copy knows of
    them: artifact ids by aggregate id, the accounts opened, the latest time."""
    events: list[StoredEvent] = []
    known: dict[str, Any] = {"artifacts": {}, "accounts": set(), "latest": _EPOCH}
    clock = ManualClock(_EPOCH)
    copy = BacktestLedger(env_for_url("memory://"), clock=clock, new_id=SeededIds(19))
    to_domain_event = source.mapper.to_domain_event
    for notification in iter_notifications(source, until=start) if start > 0 else ():
        events.append(
            StoredEvent(
                notification.originator_id, notification.originator_version, notification.topic, notification.state
            )
        )
        event = to_domain_event(notification)
        _know(known, event)
        if len(events) >= INSERT_PAGE:
            copy.recorder.insert_events(events)
            events = []
    if events:
        copy.recorder.insert_events(events)
    clock.set(known["latest"])
    return copy, clock, known


def _know(known: dict[str, Any], event: Any) -> None:
    known["latest"] = max(known["latest"], event.timestamp)
    if isinstance(event, Artifact.Listed):
        known["artifacts"][event.originator_id] = event.artifact_id
    elif isinstance(event, Account.Opened):
        known["accounts"].add(event.account_id)


# The result -------------------------------------------------------------------------------------


@dataclass
class BacktestResult:
    agent: str
    start: int
    end: int
    interval: str
    markets: list[str] | None
    decisions: list[dict[str, Any]]
    equity: list[dict[str, Any]]
    candles: list[dict[str, Any]]
    replayed: dict[str, int]
    notes: list[dict[str, Any]]
    statistics: dict[str, Any]
    decimals: int = 18
    events: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "from": self.start,
            "to": self.end,
            "interval": self.interval,
            "markets": self.markets,
            "events": self.events,
            "replayed": dict(sorted(self.replayed.items())),
            "statistics": self.statistics,
            "decisions": self.decisions,
            "equity": self.equity,
            "candles": self.candles,
            "notes": self.notes,
        }


# Statistics: exact until the last step --------------------------------------------------------


def period_returns(equity: list[dict[str, Any]]) -> list[Fraction]:
    """Per-candle returns net of deposits: r = (E_t − deposited in the period) / E_(t−1) − 1;
    periods that start at no equity have none."""
    returns = []
    for previous, current in zip(equity, equity[1:]):
        before = int(previous["equity_units"])
        if before <= 0:
            continue
        deposited = int(current["deposits_units"]) - int(previous["deposits_units"])
        returns.append(Fraction(int(current["equity_units"]) - deposited, before) - 1)
    return returns


def _decimal(value: Fraction) -> str:
    """A ratio as plain decimal text with 12 places, rounded half-even."""
    with localcontext() as context:
        context.prec = 40
        return f"{(Decimal(value.numerator) / Decimal(value.denominator)).quantize(RATIO_PLACES):f}"


def _sqrt(value: Fraction) -> Decimal:
    with localcontext() as context:
        context.prec = 40
        return (Decimal(value.numerator) / Decimal(value.denominator)).sqrt()


def _ratio(numerator: Fraction, denominator: Decimal) -> str:
    with localcontext() as context:
        context.prec = 40
        mean = Decimal(numerator.numerator) / Decimal(numerator.denominator)
        return f"{(mean / denominator).quantize(RATIO_PLACES):f}"


def statistics(
    equity: list[dict[str, Any]], finished_pnls: list[int], exposure_end: dict[str, int], exposure_peak: dict[str, int]
) -> dict[str, Any]:
    """Return, Sharpe and Sortino on per-candle returns (not annualised: candles are not
    evenly spaced in time), max drawdown of the compounded curve, win rate, exposure."""
    returns = period_returns(equity)
    n = len(returns)
    level, peak, worst = Fraction(1), Fraction(1), Fraction(0)
    for value in returns:
        level *= 1 + value
        peak = max(peak, level)
        worst = min(worst, (level - peak) / peak)
    sharpe = sortino = None
    if n >= 2:
        mean = sum(returns, Fraction(0)) / n
        variance = sum(((value - mean) ** 2 for value in returns), Fraction(0)) / (n - 1)
        if variance > 0:
            sharpe = _ratio(mean, _sqrt(variance))
        downside = sum((min(value, Fraction(0)) ** 2 for value in returns), Fraction(0)) / n
        if downside > 0:
            sortino = _ratio(mean, _sqrt(downside))
    wins = sum(1 for pnl in finished_pnls if pnl > 0)
    return {
        "periods": n,
        "return": (_decimal(level - 1)) if n else None,
        "sharpe": sharpe,
        "sortino": sortino,
        "max_drawdown": (_decimal(worst)) if n else None,
        "win_rate": (_decimal(Fraction(wins, len(finished_pnls)))) if finished_pnls else None,
        "wins": wins,
        "closed": len(finished_pnls),
        "start_equity_units": equity[0]["equity_units"] if equity else None,
        "end_equity_units": equity[-1]["equity_units"] if equity else None,
        "deposits_units": equity[-1]["deposits_units"] if equity else "0",
        "exposure_by_group_units": {group: str(units) for group, units in sorted(exposure_end.items())},
        "peak_exposure_by_group_units": {group: str(units) for group, units in sorted(exposure_peak.items())},
        "annualised": False,
    }


# The run ----------------------------------------------------------------------------------------


@dataclass
class _Replay:
    """One backtest's state: the copy, the flow's mirrors, what was replayed and noted."""

    source: StakeLedger
    copy: BacktestLedger
    clock: ManualClock
    agent: str
    markets: frozenset[str] | None
    known: dict[str, Any]
    window: list[tuple[int, Any]]
    replayed: dict[str, int] = field(default_factory=dict)
    notes: list[dict[str, Any]] = field(default_factory=list)
    mirrors: dict[str, str] = field(default_factory=dict)  # recorded position id -> copy position id
    opened_in_window: set[str] = field(default_factory=set)
    fees_at_listing: dict[Any, int] = field(default_factory=dict)
    orders: dict[str, str] = field(default_factory=dict)  # recorded order id -> the flow's copy of it
    sold_how: dict[Any, list[tuple[datetime, str]]] = field(default_factory=dict)  # position uuid -> sales
    recorded_fills: dict[str, list[str]] = field(default_factory=dict)  # order id -> recorded fill positions
    copy_fills: dict[str, list[str]] = field(default_factory=dict)  # copy order id -> its fills in the copy
    fills_cursor: int = 0
    deposits_units: int = 0
    flow_open: bool = False

    def count(self, what: str) -> None:
        self.replayed[what] = self.replayed.get(what, 0) + 1

    def note(self, position: int, what: str, error: LedgerError) -> None:
        self.notes.append({"position": position, "what": what, "error": error.code, "message": str(error)})

    def artifact_id(self, originator_id: Any) -> str | None:
        return self.known["artifacts"].get(originator_id)

    # At the start ------------------------------------------------------------------------

    def quiet_other_agents(self) -> None:
        """Turn other agents' emergency liquidation off in the copy: their equity there is
        not what it was (their later positions are the flow's), and the log holds each
        liquidation they had as trades, replayed as such."""
        risk_agents: set[str] = set()
        for artifact_id in sorted(self.known["artifacts"].values()):
            risk_agents.update(self.copy.get_artifact(artifact_id).risk_agents)
        for other in sorted(risk_agents - {self.agent}):
            self._quietly(
                "liquidation_off",
                lambda o=other: self.copy.configure_portfolio(o, emergency_liquidation_loss_pct="-100"),
            )

    def _quietly(self, what: str, call: Callable[[], Any]) -> None:
        try:
            call()
            self.count(f"start:{what}")
        except LedgerError as error:
            self.note(0, what, error)

    # Each recorded event -----------------------------------------------------------------

    def replay(self, position: int, event: Any) -> bool:
        """Re-execute what the copy needs of one recorded event; True when it wrote."""
        _know(self.known, event)
        self.clock.set(max(self.clock.now(), event.timestamp))
        what, call = self._plan(event)
        if call is None:
            self.count(what)
            return False
        try:
            call()
        except LedgerError as error:
            self.note(position, what, error)
            self.count(f"refused:{what}")
            return False
        self.count(what)
        return True

    def _plan(self, event: Any) -> tuple[str, Callable[[], Any] | None]:
        copy = self.copy
        if isinstance(event, LedgerSettings.Initialised):
            return "initialise", lambda: copy.initialise(decimals=event.decimals, name=event.name)
        if isinstance(event, Account.Opened):
            if event.account_id == self.agent:
                return "agent_account", lambda: copy.open_account(self.agent)
            return "skipped:account", None
        if isinstance(event, Account.Credited):
            if event.originator_id == account_uuid(self.agent) and (
                event.reason == Reason.MINT or is_user_transfer_reason(event.reason)
            ):
                return "deposit", lambda: self._deposit(event.amount_units)
            return "skipped:movement", None
        if isinstance(event, Artifact.Listed):
            return "listing", lambda: self._list(event)
        if isinstance(event, (Artifact.Traded, Artifact.Transitioned, Artifact.ResolutionReversed)):
            if self.artifact_id(event.originator_id) is None:
                return "skipped:unknown_market", None
        if isinstance(event, Artifact.Traded):
            return self._plan_trade(event)
        if isinstance(event, _RESTING_EVENTS):
            return self._plan_resting(event)
        if isinstance(event, Artifact.Transitioned):
            artifact_id = self.artifact_id(event.originator_id)
            if event.actor == AUTO_ACTOR and copy.get_artifact(artifact_id).state == event.to_state:
                return "skipped:already_resolved", None  # the copy's own trades resolved it
            return "transition", lambda: copy.transition_artifact(
                artifact_id, event.to_state, actor=event.actor, reason=event.reason, price_wad=event.price_long_wad
            )
        if isinstance(event, Artifact.ResolutionReversed):
            artifact_id = self.artifact_id(event.originator_id)
            return "reopen", lambda: copy.reopen_artifact(artifact_id, reason=event.reason, actor=event.actor)
        return "skipped:other", None

    def _deposit(self, amount_units: int) -> None:
        self.copy.mint(self.agent, amount_units)
        self.deposits_units += amount_units

    def _list(self, event: Any) -> None:
        rules = ResolutionRules(
            event.validated_min_wad,
            event.deprecated_max_wad,
            event.flagged_below_wad,
            event.window_days,
            event.correction_hours,
            event.auto_resolve,
            event.sustained_hours,
        )
        self.copy.list_artifact(
            event.artifact_id,
            event.title,
            event.b_units,
            group=event.group,
            min_hold_days=event.min_hold_days,
            resolution=rules,
            fee_bps=self.fees_at_listing.get(event.originator_id, 0),
        )

    def _plan_trade(self, event: Any) -> tuple[str, Callable[[], Any] | None]:
        artifact_id = self.artifact_id(event.originator_id)
        if event.agent == self.agent:
            return "skipped:own_trade", None
        if self.markets is not None and artifact_id not in self.markets:
            return "skipped:other_market", None
        side = Side(event.side)
        if event.order_id is not None:
            self._map_fill(event)
            return "skipped:limit_fill", None  # the copy fills the resting order by its own rules
        if event.shares_delta_units < 0 and self._automatic_sale(event):
            return "skipped:stop_or_take_profit", None  # so does it sell for stops and take-profits
        if event.shares_delta_units > 0:
            return "flow:buy", lambda: self._flow_buy(
                artifact_id, side, event.shares_delta_units, event.tokens_delta_units, event.position_id
            )
        return "flow:sell", lambda: self._flow_sell(artifact_id, side, -event.shares_delta_units, event.position_id)

    def _ensure_flow(self) -> None:
        if self.flow_open:
            return
        try:
            self.copy.get_account(FLOW_AGENT)
        except UnknownAccountError:
            self.copy.open_account(FLOW_AGENT)
        self.flow_open = True

    def _flow_buy(
        self, artifact_id: str, side: Side, shares_units: int, tokens_units: int | None, recorded_id: str | None
    ) -> None:
        self._ensure_flow()
        artifact = self.copy.get_artifact(artifact_id)
        q_long, q_short, b = artifact.q_long, artifact.q_short, artifact.b_units
        if tokens_units is None or shares_for_tokens(q_long, q_short, b, side, tokens_units) != shares_units:
            tokens_units = buy_cost_units(q_long, q_short, b, side, shares_units)
        needed = tokens_units + fee_units(tokens_units, artifact.fee_bps)
        balance = self.copy.balance_of(FLOW_AGENT)
        if balance < needed:
            self.copy.mint(FLOW_AGENT, needed - balance)
        result = StakeLedger.open_position(self.copy, FLOW_AGENT, artifact_id, side.value, tokens_units)
        if recorded_id is not None and "position" in result:
            self.mirrors[recorded_id] = result["position"]

    def _map_fill(self, event: Any) -> None:
        """The recorded fill's position is the copy's fill of the same order, the n-th for
        the n-th: a later sale of it sells that one."""
        recorded = self.recorded_fills.setdefault(event.order_id, [])
        recorded.append(event.position_id)
        order_id = self.orders.get(event.order_id, event.order_id)
        for position, filled in iter_events(self.copy, after=self.fills_cursor, topics=_FILLED_TOPICS):
            self.fills_cursor = position
            self.copy_fills.setdefault(filled.order_id, []).append(filled.position_id)
        fills = self.copy_fills.get(order_id, [])
        if len(fills) >= len(recorded):
            self.mirrors[event.position_id] = fills[len(recorded) - 1]

    def _automatic_sale(self, event: Any) -> bool:
        """Whether this recorded sale was a stop's or a take-profit's (its position's Closed or
        PartiallyClosed event of the same moment says how it was sold)."""
        sales = self.sold_how.get(position_uuid(event.position_id), [])
        for index, (at, how) in enumerate(sales):
            if at == event.timestamp:
                del sales[index]
                return how in ("stop", "take_profit")
        return False

    def _mirror(self, position_id: str) -> str | None:
        """The copy's position for a recorded one: the flow's mirror, or itself when it was
        opened before the start; None when the copy has neither."""
        if position_id in self.mirrors:
            return self.mirrors[position_id]
        return None if position_id in self.opened_in_window else position_id

    def _plan_resting(self, event: Any) -> tuple[str, Callable[[], Any] | None]:
        """Other agents' resting orders, take-profits and stops live on in the copy and act by
        its rules (a strategy's trade may fill them, as live); those placed later are placed
        again there (orders by the flow), and those cancelled are cancelled."""
        copy = self.copy
        artifact_id = self.artifact_id(event.originator_id)
        if self.markets is not None and artifact_id not in self.markets:
            return "skipped:other_market", None
        if isinstance(event, Artifact.OrderPlaced):
            if event.agent == self.agent:
                return "skipped:own_order", None
            return "flow:limit_order", lambda: self._flow_order(artifact_id, event)
        if isinstance(event, Artifact.TakeProfitPlaced):
            position_id = self._mirror(event.position_id)
            if event.agent == self.agent or position_id is None:
                return "skipped:take_profit", None

            def place() -> None:
                placed = copy.place_take_profit(
                    position_id, event.limit_price_wad, expires_in_days=self._days_until(event.expires_at)
                )
                self.orders[event.order_id] = placed["order"]

            return "take_profit", place
        if isinstance(event, (Artifact.OrderReleased, Artifact.TakeProfitEnded)):
            why = event.why
            order_id = self.orders.get(event.order_id)
            if why != "cancelled" or (
                order_id is None and not self._others_pre_start_order(artifact_id, event.order_id)
            ):
                return "skipped:order_end", None
            return "cancel", lambda: copy.cancel_order(order_id or event.order_id)
        if isinstance(event, Artifact.StopSet):
            position_id = self._mirror(event.position_id)
            if event.owner == self.agent or position_id is None:
                return "skipped:stop", None
            stop = event.stop
            return "stop", lambda: copy.set_stop(position_id, stop["trail_pct"], stop["min_ratchet_pct"])
        assert isinstance(event, Artifact.StopCleared)
        position_id = self._mirror(event.position_id)
        if event.why != "removed" or position_id is None:
            return "skipped:stop_end", None
        entry = copy.get_artifact(artifact_id).stops.get(position_id)
        if entry is None or entry["owner"] == self.agent:
            return "skipped:stop_end", None
        return "stop_removed", lambda: copy.remove_stop(position_id)

    def _others_pre_start_order(self, artifact_id: str, order_id: str) -> bool:
        artifact = self.copy.get_artifact(artifact_id)
        order = artifact.orders.get(order_id) or artifact.take_profits.get(order_id)
        return order is not None and order["agent"] != self.agent

    def _days_until(self, expires_at: datetime | None) -> Decimal | None:
        """An expiry time as the lifetime from now in days, exact to the microsecond."""
        if expires_at is None:
            return None
        micros = (expires_at - self.clock.now()) // timedelta(microseconds=1)
        if micros <= 0:
            return None
        with localcontext() as context:
            context.prec = 40
            return (Decimal(micros) + Decimal("0.5")) / Decimal(86_400_000_000)

    def _flow_order(self, artifact_id: str, event: Any) -> None:
        """Another agent's limit order, placed again by the flow with the same budget, limit
        and expiry; its fills are the copy's."""
        self._ensure_flow()
        balance = self.copy.balance_of(FLOW_AGENT)
        if balance < event.tokens_units:
            self.copy.mint(FLOW_AGENT, event.tokens_units - balance)
        placed = StakeLedger.place_limit_order(
            self.copy,
            FLOW_AGENT,
            artifact_id,
            event.side,
            event.tokens_units,
            event.limit_price_wad,
            expires_in_days=self._days_until(event.expires_at),
        )
        if "order" in placed:
            self.orders[event.order_id] = placed["order"]

    def _flow_sell(self, artifact_id: str, side: Side, shares_units: int, recorded_id: str) -> None:
        copy_id = self._mirror(recorded_id)
        position = self._live_position(copy_id) if copy_id is not None else None
        if position is None or position.side != side.value:
            # No such shares to sell in the copy: move the price as far by buying the other side.
            self.count("flow:sell_as_buy")
            self._flow_buy(artifact_id, _other(side), shares_units, None, None)
            return
        assert copy_id is not None
        sold = min(shares_units, position.quantity_units)
        StakeLedger.close_position(self.copy, copy_id, shares_units=None if sold == position.quantity_units else sold)

    def _live_position(self, position_id: str) -> Position | None:
        from eventsourcing.application import AggregateNotFoundError

        try:
            position = self.copy.repository.get(position_uuid(position_id))
        except AggregateNotFoundError:
            return None
        return position if position.is_live else None

    # Equity ------------------------------------------------------------------------------

    def equity_point(self) -> tuple[dict[str, Any], dict[str, int]]:
        try:
            summary = dashboard.summary(self.copy, self.agent)
        except (UnknownAccountError, LedgerError):
            summary = {"equity_units": "0", "exposure_by_group_units": {}}
        exposure = {group: int(units) for group, units in summary["exposure_by_group_units"].items()}
        point = {
            "at": self.clock.now().isoformat(),
            "equity_units": str(summary["equity_units"]),
            "deposits_units": str(self.deposits_units),
        }
        return point, exposure


_FILLED_TOPICS = (stable_topic(Artifact.OrderFilled),)
_RESTING_EVENTS = (
    Artifact.OrderPlaced,
    Artifact.OrderReleased,
    Artifact.TakeProfitPlaced,
    Artifact.TakeProfitEnded,
    Artifact.StopSet,
    Artifact.StopCleared,
)


def _other(side: Side) -> Side:
    return Side.SHORT if side == Side.LONG else Side.LONG


def _check_positions(source: StakeLedger, start: Any, end: Any) -> tuple[int, int]:
    head = max_position(source)
    for name, value in (("--from", start), ("--to", end)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise BacktestInputError(f"{name} must be a log position (a whole number, 0 or more), got {value!r}")
        if value > head:
            raise BacktestInputError(f"{name} {value} is beyond the log, whose last position is {head}")
    if start > end:
        raise BacktestInputError(f"--from {start} is after --to {end}")
    return start, end


def run_backtest(
    source: StakeLedger,
    strategy_module: Any,
    *,
    start: int,
    end: int,
    agent: str,
    markets: Iterable[str] | None = None,
    interval: str = "5m",
    feed: FeedBuilder = trade_messages,
    progress: Progress | None = None,
    capital_units: int | None = None,
) -> BacktestResult:
    """Replay the source's history in (start, end] through the strategy; see the module doc.
    ``capital_units``: minted to the agent in the copy at the start (its account opened
    there if it has none), so a fresh agent can be backtested. Refuses
    (BacktestInputError, UnknownAccountError, UnknownArtifactError) before any work when
    an input is wrong; never writes to ``source``."""
    check_strategy(strategy_module)
    if interval not in INTERVALS:
        raise BacktestInputError(f"interval must be one of {', '.join(INTERVALS)}, got {interval!r}")
    agent = agent_account_id(agent)
    if agent == FLOW_AGENT:
        raise BacktestInputError(f"{FLOW_AGENT!r} is the backtest's own flow account: backtest another agent")
    start, end = _check_positions(source, start, end)
    copy, clock, known = copy_at(source, start)
    window = list(_window(source, start, end))
    replay = _Replay(source, copy, clock, agent, None, known, window, fills_cursor=max_position(copy))
    _scan_window(replay, window)
    wanted = _check_markets(replay, markets)
    replay.markets = wanted
    if capital_units is not None:
        if isinstance(capital_units, bool) or not isinstance(capital_units, int) or capital_units <= 0:
            raise BacktestInputError(f"capital must be a positive amount, got {capital_units!r}")
        if not copy.is_initialised():
            raise BacktestInputError("capital is minted at the start: --from must be at or after the ledger's init")
    elif agent not in known["accounts"] and not any(
        isinstance(e, Account.Opened) and e.account_id == agent for _, e in window
    ):
        raise UnknownAccountError(f"unknown agent {agent!r}: it has no account up to position {end}")
    try:
        if capital_units is not None:
            if agent not in known["accounts"]:
                copy.open_account(agent)
            copy.mint(agent, capital_units)
        return _run(replay, strategy_module, start, end, interval, feed, progress)
    finally:
        copy.close()


def _window(source: StakeLedger, start: int, end: int) -> Iterable[tuple[int, Any]]:
    to_domain_event = source.mapper.to_domain_event
    for notification in iter_notifications(source, after=start, until=end):
        yield notification.id, to_domain_event(notification)


def _scan_window(replay: _Replay, window: list[tuple[int, Any]]) -> None:
    """What the replay must know ahead: positions opened in the window, listing fees, ids."""
    listed_at: dict[Any, Any] = {}
    for _, event in window:
        if isinstance(event, Artifact.Listed):
            listed_at[event.originator_id] = event.timestamp
        elif isinstance(event, Artifact.FeeSet) and listed_at.get(event.originator_id) == event.timestamp:
            replay.fees_at_listing[event.originator_id] = event.fee_bps
        elif isinstance(event, Artifact.Traded) and event.opens_position:
            replay.opened_in_window.add(event.position_id)
        elif isinstance(event, (Position.Closed, Position.PartiallyClosed)):
            replay.sold_how.setdefault(event.originator_id, []).append((event.timestamp, event.how))


def _check_markets(replay: _Replay, markets: Iterable[str] | None) -> frozenset[str] | None:
    if markets is None:
        return None
    names = [name.strip() for name in ([markets] if isinstance(markets, str) else markets)]
    names = [name for name in names if name]
    if not names:
        raise BacktestInputError("--markets names at least one market (A,B,...)")
    listed = set(replay.known["artifacts"].values()) | {
        event.artifact_id for _, event in replay.window if isinstance(event, Artifact.Listed)
    }
    unknown = sorted(set(names) - listed)
    if unknown:
        raise UnknownArtifactError(f"unknown market {unknown[0]!r}: not listed up to position {replay_end(replay)}")
    return frozenset(names)


def replay_end(replay: _Replay) -> int:
    return replay.window[-1][0] if replay.window else max_position(replay.copy)


def _run(
    replay: _Replay,
    strategy_module: Any,
    start: int,
    end: int,
    interval: str,
    feed_builder: FeedBuilder,
    progress: Progress | None,
) -> BacktestResult:
    copy, agent = replay.copy, replay.agent
    if copy.is_initialised():
        replay.quiet_other_agents()
    feed = CopyFeed(copy, feed_builder)
    orchestrator = MultiMarketOrchestrator(copy, agent)
    tracker = CandleTracker(interval, replay.markets)
    equity: list[dict[str, Any]] = []
    peak: dict[str, int] = {}
    last_exposure: dict[str, int] = {}

    def sample(candle: Any = None) -> None:
        nonlocal last_exposure
        point, exposure = replay.equity_point()
        equity.append(point)
        for group, units in exposure.items():
            peak[group] = max(peak.get(group, 0), units)
        last_exposure = exposure

    def deciding(flag: bool) -> None:
        copy.deciding = flag

    driver = CandleDriver(feed, tracker, orchestrator, strategy_module.strategy, on_close=sample, deciding=deciding)
    finished_at_start = _finished_positions(copy, agent)
    # One worker thread: the orchestrator's concurrent entries reach the copy in the order
    # they were submitted, so two runs write the same log.
    loop = asyncio.new_event_loop()
    loop.set_default_executor(ThreadPoolExecutor(max_workers=1, thread_name_prefix="backtest"))

    async def run() -> None:
        setup = getattr(strategy_module, "setup", None)
        if setup is not None and copy.is_initialised():
            copy.deciding = True  # an order setup places is a decision too
            try:
                outcome = setup(orchestrator)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception as error:  # noqa: BLE001 - the user's setup
                what = (
                    f"{error.code}: {error}" if isinstance(error, LedgerError) else f"{type(error).__name__}: {error}"
                )
                raise StrategyFailedError(f"the strategy's setup raised {what}") from error
            finally:
                copy.deciding = False
        if copy.is_initialised():
            driver.warm_up()
        sample()
        total = len(replay.window)
        for done, (position, event) in enumerate(replay.window, start=1):
            if replay.replay(position, event) and copy.is_initialised():
                await driver.run_until_idle()
            if progress is not None:
                progress(done, total)
        if copy.is_initialised():
            await driver.run_until_idle()
        sample()

    try:
        loop.run_until_complete(run())
    finally:
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
        feed.close()
    candles = [{**candle.to_dict(), "closed_by": "trade"} for candle in driver.closed]
    for artifact in sorted(tracker.open):
        candles.append({**tracker.open[artifact].to_dict(), "closed_by": "end"})
    finished = [pnl for pid, pnl in _finished_positions(copy, agent).items() if pid not in finished_at_start]
    stats = statistics(equity, finished, last_exposure, peak)
    return BacktestResult(
        agent=agent,
        start=start,
        end=end,
        interval=interval,
        markets=sorted(replay.markets) if replay.markets is not None else None,
        decisions=copy.decisions,
        equity=equity,
        candles=candles,
        replayed=replay.replayed,
        notes=replay.notes,
        statistics=stats,
        decimals=copy.decimals if copy.is_initialised() else 18,
        events=len(replay.window),
    )


def _finished_positions(copy: StakeLedger, agent: str) -> dict[str, int]:
    """The agent's closed or settled positions in the copy, with their realised P&L."""
    if not copy.is_initialised():
        return {}
    finished = {}
    for position_id in copy.agent_position_ids(agent):
        position = copy.repository.get(position_uuid(position_id))
        if not position.is_live:
            finished[position_id] = position.realized_pnl_units
    return finished


__all__ = [
    "FLOW_AGENT",
    "BacktestInputError",
    "BacktestLedger",
    "BacktestResult",
    "CandleDriver",
    "CopyFeed",
    "StrategyFailedError",
    "copy_at",
    "load_strategy",
    "run_backtest",
    "statistics",
    "trade_messages",
]
