"""Backtesting (issue 19, part 2): a strategy replayed over recorded history against an
in-memory copy of the ledger. Without strategy trades the copy's pools move exactly as
recorded (candle for candle); a fixed strategy gives the same numbers twice; and a backtest
of a strategy that ran live, from before its first decision, makes the live run's
decisions. The source store is only read. On memory, SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.agents.backtest import (
    FEED_VIEWS,
    FLOW_AGENT,
    BacktestInputError,
    CandleDriver,
    CopyFeed,
    StrategyFailedError,
    load_strategy,
    period_returns,
    run_backtest,
    statistics,
)
from stakeledger.agents.feed import CandleTracker
from stakeledger.agents.orchestrator import MultiMarketOrchestrator
from stakeledger.api import feed as api_feed
from stakeledger.api.state import ApiState
from stakeledger.domain.errors import UnknownAccountError, UnknownArtifactError
from stakeledger.domain.model.artifacts import Artifact
from stakeledger.domain.model.positions import position_uuid
from stakeledger.domain.rules.lmsr import prices_wad
from stakeledger.domain.rules.metrics import sharpe_ratio, sortino_ratio
from stakeledger.domain.service.application import StakeLedger
from stakeledger.domain.service.clock import ManualClock
from stakeledger.domain.service.ids import SeededIds
from stakeledger.domain.service.log import iter_events
from stakeledger.projections import dashboard
from tests.conftest import make_store_url, stored_event_count

ROOT = Path(__file__).resolve().parents[2]
MOMENTUM = ROOT / "docs" / "examples" / "momentum_strategy.py"
TOKEN = 10**6
MARKETS = ("ART-A", "ART-B")
TRADERS = ("bob", "carol")


def idle(orchestrator: MultiMarketOrchestrator, candle: Any) -> None:
    """A strategy that never trades."""


IDLE = SimpleNamespace(strategy=idle)


class Recording:
    """The live app as the live strategy sees it, writing down each order it places."""

    def __init__(self, app: StakeLedger) -> None:
        self._app = app
        self.decisions: list[tuple[Any, ...]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._app, name)

    def open_position(self, agent: str, artifact_id: str, side: str, tokens_units: int, **kwargs: Any) -> Any:
        result = self._app.open_position(agent, artifact_id, side, tokens_units, **kwargs)
        outcome = result.get("shares_units") or result["rejected"]["reason"]
        self.decisions.append(
            (self._app.clock.now().isoformat(), "market", artifact_id, side, str(tokens_units), outcome)
        )
        return result

    def close_position(self, position_id: str, **kwargs: Any) -> Any:
        result = self._app.close_position(position_id, **kwargs)
        market = position_id.partition("/")[0]
        self.decisions.append(
            (self._app.clock.now().isoformat(), "close", market, None, None, result["proceeds_units"])
        )
        return result


def backtest_decisions(result: Any) -> list[tuple[Any, ...]]:
    rows = []
    for decision in result.decisions:
        outcome = decision["result"]
        if decision["kind"] == "close":
            value = outcome["proceeds_units"]
        else:
            value = outcome.get("shares_units") or outcome.get("rejected")
        rows.append(
            (decision["at"], decision["kind"], decision["market"], decision["side"], decision["tokens_units"], value)
        )
    return rows


def build_history(
    ledger: StakeLedger, clock: ManualClock, *, trades: int = 70, seed: int = 19, live: Any = None
) -> dict[str, Any]:
    """bob and carol trade two markets at random minutes: buys, partial and whole closes, a
    trailing stop and a limit order that fills. With ``live`` (a strategy module), alice runs
    it in process as the trades happen, the way run_from_feed would. Returns the log head
    before each random trade and alice's recorded decisions."""
    rng = random.Random(seed)
    for name in ("alice", *TRADERS):
        ledger.open_account(name)
        ledger.mint(name, 20_000 * TOKEN)
    ledger.configure_portfolio("alice")
    for artifact, group in zip(MARKETS, ("biology", "physics"), strict=True):
        ledger.list_artifact(artifact, f"{artifact} holds", 1_000 * TOKEN, group=group)
    clock.advance(seconds=61)
    stopped = ledger.open_position("bob", "ART-A", "long", 60 * TOKEN)["position"]
    ledger.set_stop(stopped, "3")
    ledger.place_limit_order("carol", "ART-A", "long", 50 * TOKEN, WAD // 100 * 48)
    recording = Recording(ledger)
    driver = loop = None
    if live is not None:
        orchestrator = MultiMarketOrchestrator(recording, "alice")  # type: ignore[arg-type]
        driver = CandleDriver(CopyFeed(ledger), CandleTracker("5m"), orchestrator, live.strategy)
        driver.warm_up()
        loop = asyncio.new_event_loop()
        loop.set_default_executor(ThreadPoolExecutor(max_workers=1))
    heads, decided = [], []
    try:
        for step in range(trades):
            clock.advance(seconds=rng.randrange(30, 200))
            heads.append(stored_event_count(ledger))
            if step == 10:  # a limit that rests below the price, to be filled by later trades
                below = ledger.get_artifact("ART-B").price_long_wad - WAD // 50
                ledger.place_limit_order("bob", "ART-B", "long", 40 * TOKEN, below)
            trader, artifact = rng.choice(TRADERS), rng.choice(MARKETS)
            live_ids = [
                h.position.position_id
                for h in dashboard.holdings(ledger, trader)[0]
                if h.artifact.artifact_id == artifact
            ]
            if live_ids and rng.random() < 0.35:
                position_id = rng.choice(live_ids)
                held = ledger.repository.get(position_uuid(position_id)).quantity_units
                shares = None if rng.random() < 0.5 else max(held // rng.randrange(2, 5), 1)
                ledger.close_position(position_id, agent=trader, shares_units=shares)
            else:
                side = rng.choice(("long", "short"))
                ledger.open_position(trader, artifact, side, rng.randrange(5, 90) * TOKEN + rng.randrange(TOKEN))
            if driver is not None:
                assert loop is not None
                loop.run_until_complete(driver.run_until_idle())
            decided.append(len(recording.decisions))
    finally:
        if loop is not None:
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()
        if driver is not None:
            driver.feed.close()
    return {"heads": heads, "decided": decided, "decisions": recording.decisions}


WAD = 10**18


def recorded_candles(ledger: StakeLedger, start: int, interval: str = "5m") -> list[dict[str, Any]]:
    """The candles of the source's own trades after ``start``: closed ones, then the open ones."""
    feed = CopyFeed(ledger)
    feed.new_messages() if start == 0 else None
    feed.runner.catch_up(until=start)
    feed.cursor = start
    tracker = CandleTracker(interval)
    closed = []
    for message in feed.new_messages():
        closed.extend(tracker.on_message(message))
    feed.close()
    rows = [{**candle.to_dict(), "closed_by": "trade"} for candle in closed]
    return rows + [{**tracker.open[a].to_dict(), "closed_by": "end"} for a in sorted(tracker.open)]


def open_source(url: str, clock: ManualClock) -> StakeLedger:
    app = open_ledger(url, clock=clock, new_id=SeededIds(7))
    app.initialise(decimals=6)
    return app


@pytest.fixture(params=["memory", "sqlite"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path, clock: ManualClock) -> Iterator[StakeLedger]:
    """The recorded history's store: memory and SQLite here, PostgreSQL in one test below."""
    app = open_source(make_store_url(request.param, tmp_path, request), clock)
    yield app
    app.close()


@pytest.fixture
def memory_ledger(clock: ManualClock) -> Iterator[StakeLedger]:
    app = open_source("memory://", clock)
    yield app
    app.close()


@pytest.fixture
def history(ledger: StakeLedger, clock: ManualClock) -> dict[str, Any]:
    return build_history(ledger, clock)


def _by_market(candles: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for candle in candles:
        grouped.setdefault(candle["artifact"], []).append(candle)
    return grouped


# The copy's pools move as recorded -------------------------------------------------------


def test_backtest_when_the_strategy_never_trades_then_every_candle_equals_the_recorded_one(
    ledger: StakeLedger, history: dict[str, Any]
):
    start = history["heads"][0]
    result = run_backtest(ledger, IDLE, start=start, end=stored_event_count(ledger), agent="alice")
    recorded = recorded_candles(ledger, start)
    # The backtest's tracker was warmed up with the trades before start: a candle open at the
    # start holds those too, so the first recorded candle of each market agrees on its close.
    ours, theirs = _by_market(result.candles), _by_market(recorded)
    assert set(ours) == set(MARKETS) == set(theirs)
    for market in MARKETS:
        by_start = {candle["start"]: candle for candle in ours[market]}
        first, *rest = theirs[market]
        assert len(rest) >= 5
        assert [by_start[candle["start"]] for candle in rest] == rest
        assert by_start[first["start"]]["close_wad"] == first["close_wad"]
    assert result.replayed["flow:sell"] > 5 and result.replayed["flow:buy"] > 20
    # The resting limits of before and after the start filled in the copy by its own rules, as
    # bob's stop sold there: their recorded trades were not replayed a second time.
    assert result.replayed["flow:limit_order"] == 1 and result.replayed["skipped:limit_fill"] >= 2
    assert result.replayed["skipped:stop_or_take_profit"] >= 1
    assert result.decisions == [] and result.notes == []
    assert "flow:sell_as_buy" not in result.replayed


def test_backtest_from_the_first_position_when_idle_then_the_candles_are_the_recorded_ones_from_the_start(
    ledger: StakeLedger, history: dict[str, Any]
):
    """From position 0 even the initialisation, the accounts and the listings are replayed."""
    result = run_backtest(ledger, IDLE, start=0, end=stored_event_count(ledger), agent="alice")
    assert result.candles == recorded_candles(ledger, 0)
    assert result.replayed["initialise"] == 1 and result.replayed["listing"] == 2
    assert result.replayed["deposit"] == 1
    assert result.statistics["deposits_units"] == str(20_000 * TOKEN)


@given(
    st.integers(1, 400 * TOKEN),
    st.integers(0, 5_000 * TOKEN),
    st.integers(0, 5_000 * TOKEN),
    st.integers(1, 10**4),
)
def test_a_sale_replayed_as_a_buy_of_the_other_side_moves_the_price_the_same(
    x: int, long_left: int, q_short: int, b_tokens: int
):
    """LMSR prices depend only on q_long − q_short: selling x long shares and buying x short
    ones leave the same price, and symmetrically (the copy's fallback for a sale it cannot sell)."""
    b, q_long = b_tokens * TOKEN, long_left + x
    assert prices_wad(q_long - x, q_short, b) == prices_wad(q_long, q_short + x, b)
    assert prices_wad(q_short, q_long - x, b) == prices_wad(q_short + x, q_long, b)


# Deterministic --------------------------------------------------------------------------------


def test_backtest_when_run_twice_then_every_number_is_the_same(ledger: StakeLedger, history: dict[str, Any]):
    check_twice(ledger, history)


def test_backtest_of_a_postgresql_store_when_run_twice_then_every_number_is_the_same(
    request: pytest.FixtureRequest, tmp_path: Path, clock: ManualClock
):
    ledger = open_source(make_store_url("postgres", tmp_path, request), clock)
    try:
        check_twice(ledger, build_history(ledger, clock))
    finally:
        ledger.close()


def check_twice(ledger: StakeLedger, history: dict[str, Any]) -> None:
    strategy = load_strategy(MOMENTUM)
    end = stored_event_count(ledger)
    first = run_backtest(ledger, strategy, start=history["heads"][0], end=end, agent="alice")
    second = run_backtest(ledger, strategy, start=history["heads"][0], end=end, agent="alice")
    assert first.to_dict() == second.to_dict()
    assert len(first.decisions) >= 3
    stats = first.statistics
    assert stats["periods"] >= 10 and stats["return"] is not None and stats["sharpe"] is not None
    assert set(stats["exposure_by_group_units"]) <= {"biology", "physics"}
    assert stored_event_count(ledger) == end  # the source was only read


# Live and backtest make the same decisions ------------------------------------------------------


def test_backtest_of_a_strategy_that_ran_live_when_started_before_its_first_decision_then_it_decides_the_same(
    ledger: StakeLedger, clock: ManualClock
):
    strategy = load_strategy(MOMENTUM)
    live = build_history(ledger, clock, live=strategy, trades=80)
    decisions = live["decisions"]
    assert len(decisions) >= 4 and any(d[1] == "close" for d in decisions)
    end = stored_event_count(ledger)
    # The latest start that still sees the first decision: the log head just before the
    # trade that closed the candle it was made on.
    first = next(k for k, count in enumerate(live["decided"]) if count > 0)
    start = live["heads"][first]
    assert start > live["heads"][0]
    result = run_backtest(ledger, strategy, start=start, end=end, agent="alice")
    assert backtest_decisions(result) == decisions
    assert stored_event_count(ledger) == end
    # From just after the closing trade, the copy holds it already: that decision is missed.
    closing = next(p for p, e in iter_events(ledger, after=start) if isinstance(e, Artifact.Traded))
    late = run_backtest(ledger, strategy, start=closing, end=end, agent="alice")
    assert backtest_decisions(late) != decisions


def test_backtest_when_a_market_resolves_and_the_agent_gets_a_transfer_then_both_are_replayed(
    memory_ledger: StakeLedger, clock: ManualClock
):
    ledger = memory_ledger
    strategy = load_strategy(MOMENTUM)
    build_history(ledger, clock, trades=40, live=strategy)
    start = stored_event_count(ledger)
    ledger.transfer("bob", "alice", 300 * TOKEN)
    for _ in range(6):
        clock.advance(seconds=400)
        ledger.open_position("carol", "ART-A", "long", 30 * TOKEN)
    ledger.transition_artifact("ART-A", "validated", reason="replicated", price_wad=WAD // 10 * 9)
    result = run_backtest(ledger, strategy, start=start, end=stored_event_count(ledger), agent="alice")
    assert result.replayed["deposit"] == 1 and result.replayed["transition"] == 1
    assert result.statistics["deposits_units"] == str(300 * TOKEN)
    assert result.notes == []  # the copy validated ART-A too, at the recorded price
    assert result.statistics["closed"] >= 1  # alice's ART-A positions settled in the copy


# Refusals ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"start": 5, "end": 4}, BacktestInputError, "after"),
        ({"start": 0, "end": 10**6}, BacktestInputError, "beyond the log"),
        ({"start": -1, "end": 3}, BacktestInputError, "log position"),
        ({"agent": "nobody"}, UnknownAccountError, "nobody"),
        ({"agent": FLOW_AGENT}, BacktestInputError, "flow"),
        ({"markets": ["ART-A", "ART-Z"]}, UnknownArtifactError, "ART-Z"),
        ({"interval": "7m"}, BacktestInputError, "interval"),
    ],
)
def test_backtest_when_an_input_is_wrong_then_it_is_refused_and_nothing_is_written(
    memory_ledger: StakeLedger, clock: ManualClock, kwargs: dict[str, Any], error: type, words: str
):
    ledger = memory_ledger
    build_history(ledger, clock, trades=5)
    events = stored_event_count(ledger)
    arguments = {"start": 0, "end": events, "agent": "alice", **kwargs}
    with pytest.raises(error, match=words):
        run_backtest(ledger, IDLE, **arguments)
    assert stored_event_count(ledger) == events


def test_load_strategy_when_the_file_or_the_function_is_missing_then_it_says_which(tmp_path: Path):
    with pytest.raises(BacktestInputError, match="no strategy file"):
        load_strategy(tmp_path / "missing.py")
    (tmp_path / "empty.py").write_text("X = 1\n")
    with pytest.raises(BacktestInputError, match="defines no function strategy"):
        load_strategy(tmp_path / "empty.py")
    (tmp_path / "broken.py").write_text("raise RuntimeError('boom')\n")
    with pytest.raises(BacktestInputError, match="boom"):
        load_strategy(tmp_path / "broken.py")


def test_backtest_when_the_strategy_raises_then_it_is_reported_with_the_candle(
    memory_ledger: StakeLedger, clock: ManualClock
):
    ledger = memory_ledger
    build_history(ledger, clock, trades=20)

    def failing(orchestrator: Any, candle: Any) -> None:
        raise ZeroDivisionError("oops")

    end = stored_event_count(ledger)
    with pytest.raises(StrategyFailedError, match=r"ZeroDivisionError: oops \(candle ART-"):
        run_backtest(ledger, SimpleNamespace(strategy=failing), start=0, end=end, agent="alice")

    def refused(orchestrator: Any, candle: Any) -> None:
        orchestrator.app.close_position("ART-A/p999", agent="alice")

    with pytest.raises(StrategyFailedError, match="UNKNOWN_POSITION"):
        run_backtest(ledger, SimpleNamespace(strategy=refused), start=0, end=end, agent="alice")
    assert stored_event_count(ledger) == end


# The feed and the statistics -------------------------------------------------------------------


def test_the_backtest_trade_messages_are_the_live_feeds(memory_ledger: StakeLedger, clock: ManualClock):
    ledger = memory_ledger
    build_history(ledger, clock)
    assert FEED_VIEWS == api_feed.FEED_VIEWS
    ours = CopyFeed(ledger)
    theirs = CopyFeed(
        ledger, lambda app, store, after, until: api_feed.build_messages(ApiState(app, False), store, after, until)
    )
    mine = ours.new_messages()
    feeds = [m for m in theirs.new_messages() if m["topic"] == "trades"]
    ours.close(), theirs.close()
    assert len(mine) > 50
    assert mine == [{k: v for k, v in m.items() if k not in ("_key", "id")} for m in feeds]


def test_statistics_when_checked_against_the_float_metrics_then_they_agree():
    equity = [
        {"equity_units": str(units), "deposits_units": str(deposit)}
        for units, deposit in ((1000, 0), (1100, 0), (990, 0), (1500, 500), (1485, 500), (1600, 500))
    ]
    returns = period_returns(equity)
    assert returns[2] == Fraction(1500 - 500, 990) - 1  # a deposit is no return
    stats = statistics(equity, [5, -3, 0, 7], {"g": 3}, {"g": 9})
    floats = [float(r) for r in returns]
    assert float(stats["sharpe"]) == pytest.approx(sharpe_ratio(floats, periods_per_year=1), rel=1e-9)
    assert float(stats["sortino"]) == pytest.approx(sortino_ratio(floats, periods_per_year=1), rel=1e-9)
    assert stats["win_rate"] == "0.500000000000"
    assert float(stats["max_drawdown"]) == pytest.approx(990 / 1100 - 1)
    level = 1.0
    for value in floats:
        level *= 1 + value
    assert float(stats["return"]) == pytest.approx(level - 1)
    assert stats["peak_exposure_by_group_units"] == {"g": "9"}


# The demo's history -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One demo build for the module (the demo is seeded: the same log every time)."""
    from stakeledger.cli.demo import Demo

    url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'demo.db'}"
    clock = ManualClock()
    app = open_ledger(url, clock=clock, new_id=SeededIds(2026))
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        Demo(app, clock).run()
    app.close()
    yield url


def test_backtest_over_the_demo_when_run_twice_then_the_same_numbers_and_the_store_is_untouched(demo_store: str):
    path = Path(demo_store.removeprefix("sqlite:///"))
    before = path.read_bytes()
    source = open_ledger(demo_store)
    try:
        end = stored_event_count(source)
        strategy = load_strategy(MOMENTUM)
        runs = [run_backtest(source, strategy, start=60, end=end, agent="ada", interval="1d") for _ in range(2)]
    finally:
        source.close()
    assert runs[0].to_dict() == runs[1].to_dict()
    assert runs[0].decisions and runs[0].statistics["return"] is not None
    assert runs[0].replayed["transition"] >= 5
    assert path.read_bytes() == before
    check = open_ledger(demo_store)
    assert stored_event_count(check) == end
    check.close()


def test_backtest_started_on_the_demo_store_writes_at_its_time(demo_store: str):
    source = open_ledger(demo_store)
    try:
        result = run_backtest(source, IDLE, start=100, end=200, agent="ada", markets=["ART-LLM"], interval="1h")
    finally:
        source.close()
    assert result.markets == ["ART-LLM"]
    assert all(candle["artifact"] == "ART-LLM" for candle in result.candles)
    assert result.equity[0]["at"] <= result.equity[-1]["at"]
    assert datetime.fromisoformat(result.equity[-1]["at"]) < datetime(2027, 1, 1, tzinfo=timezone.utc)
