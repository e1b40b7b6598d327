"""Candles and the trade tape: the candles equal an independent fold of the tape, the
tape follows the log's trades, and a rebuild gives the same tables, on every backend."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from itertools import count

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stakeledger.domain.errors import InvalidInputError, UnknownArtifactError
from stakeledger.domain.model.artifacts import Artifact
from stakeledger.domain.model.naming import stable_topic
from stakeledger.domain.rules.lmsr import prices_wad
from stakeledger.domain.service.log import iter_events
from stakeledger.projections import queries
from stakeledger.projections.replay_check import replay_check
from stakeledger.projections.runner import catch_up, rebuild
from stakeledger.projections.views.candles import CANDLES, INTERVALS, InvalidIntervalError
from stakeledger.projections.views.statements import ACCOUNTS
from stakeledger.projections.views.tape import TRADES, TapeView
from tests.integration.test_markets import position_of
from tests.projections.scenario import run_scenario

TOKEN = 10**6
_markets = count(1)

# One trade: buy long or short for some tokens, or sell back the oldest live position;
# then the clock moves on by some seconds (0 keeps trades in one bucket).
trade = st.tuples(
    st.sampled_from(["long", "short", "sell"]),
    st.integers(min_value=1, max_value=40 * TOKEN),
    st.sampled_from([0, 0, 1, 7, 59, 61, 299, 301, 3_599, 3_601, 86_399, 86_401]),
)


def fold(tape: list[dict]) -> dict[tuple[str, str], dict]:
    """Candles from tape rows (oldest first), computed here and not by the view."""
    out: dict[tuple[str, str], dict] = {}
    for row in tape:
        at = datetime.fromisoformat(row["at"])
        for span, seconds in INTERVALS.items():
            epoch = int(at.timestamp()) // seconds * seconds  # whole seconds: bucket starts are exact
            start = (datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=epoch)).isoformat()
            candle = out.get((span, start))
            before, after = row["price_before_wad"], row["price_after_wad"]
            if candle is None:
                out[(span, start)] = {
                    "open_wad": before,
                    "high_wad": max(before, after),
                    "low_wad": min(before, after),
                    "close_wad": after,
                    "volume_units": row["tokens_units"],
                    "trades": 1,
                }
            else:
                candle.update(
                    high_wad=max(candle["high_wad"], after),
                    low_wad=min(candle["low_wad"], after),
                    close_wad=after,
                    volume_units=candle["volume_units"] + row["tokens_units"],
                    trades=candle["trades"] + 1,
                )
    return out


def tape_rows(store, artifact: str) -> list[dict]:
    return store.select(TRADES, "artifact_id = ?", (artifact,), order="position")


def candle_rows(store, artifact: str) -> dict[tuple[str, str], dict]:
    return {
        (row["span"], row["bucket_start"]): {
            name: row[name] for name in ("open_wad", "high_wad", "low_wad", "close_wad", "volume_units", "trades")
        }
        for row in store.select(CANDLES, "artifact_id = ?", (artifact,))
    }


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(trades=st.lists(trade, min_size=1, max_size=14))
def test_candles_when_random_trades_at_random_times_then_they_equal_a_fold_of_the_tape(ledger, clock, store, trades):
    artifact = f"H-{next(_markets)}"
    catch_up(ledger, store)
    if not store.select(ACCOUNTS, "account = ?", ("trader",)):  # the first example on this ledger
        ledger.open_account("trader")
        ledger.mint("trader", 10**6 * TOKEN)
    ledger.list_artifact(artifact, "Hypothesis market", 200 * TOKEN, min_hold_days=0)
    live: list[str] = []
    for action, tokens, seconds in trades:
        if action == "sell" and live:
            ledger.close_position(live.pop(0), agent="trader")
        else:  # a sell with nothing to sell buys long instead
            action = "long" if action == "sell" else action
            live.append(ledger.open_position("trader", artifact, action, tokens)["position"])
        clock.advance(seconds=seconds)
    catch_up(ledger, store)

    tape = tape_rows(store, artifact)
    traded = [
        event
        for _, event in iter_events(ledger, topics=(stable_topic(Artifact.Traded),))
        if event.position_id.startswith(f"{artifact}/")
    ]
    assert len(tape) == len(traded) > 0
    # The tape's price before is the previous price after (no settlement on this market).
    b_units = 200 * TOKEN
    assert tape[0]["price_before_wad"] == prices_wad(0, 0, b_units)[0]
    for earlier, later in zip(tape, tape[1:]):
        assert later["price_before_wad"] == earlier["price_after_wad"]
    assert [row["price_after_wad"] for row in tape] == [event.price_long_wad for event in traded]
    assert [row["tokens_units"] for row in tape] == [abs(event.tokens_delta_units) for event in traded]
    assert candle_rows(store, artifact) == fold(tape)


def test_tape_when_the_scenario_runs_then_kinds_prices_and_settlement_moves_are_recorded(ledger, clock, store):
    run_scenario(ledger, clock)
    catch_up(ledger, store)
    rows = store.select(TRADES, order="position")
    kinds = {row["kind"] for row in rows}
    assert kinds == {"buy", "sell", "limit_fill"}
    assert all(row["order_id"] for row in rows if row["kind"] == "limit_fill")
    assert all(row["price_before_wad"] is not None for row in rows)
    # Every market's candles still equal the fold of its own tape, settlements included.
    for artifact in {row["artifact_id"] for row in rows}:
        assert candle_rows(store, artifact) == fold(tape_rows(store, artifact))
    assert replay_check(ledger, store) == []


def test_rebuild_when_the_views_are_rebuilt_then_tape_and_candles_are_row_for_row_the_same(ledger, clock, store):
    run_scenario(ledger, clock)
    catch_up(ledger, store)
    before = {table.name: store.raw_rows(table) for table in (TRADES, CANDLES)}
    assert before["tape_trades"] and before["candles"]
    from stakeledger.projections.views import views_named

    rebuild(ledger, store, views_named(["tape", "candles"]))
    assert {table.name: store.raw_rows(table) for table in (TRADES, CANDLES)} == before


def test_queries_when_asked_for_pages_and_intervals_then_they_page_by_position_and_refuse_bad_input(
    ledger, clock, store
):
    ledger.open_account("alice")
    ledger.mint("alice", 1_000 * TOKEN)
    ledger.list_artifact("Q-1", "Queries", 100 * TOKEN, min_hold_days=0)
    for number in range(5):
        ledger.open_position("alice", "Q-1", "long" if number % 2 else "short", (number + 1) * TOKEN)
        clock.advance(seconds=3_600)
    catch_up(ledger, store)
    first = queries.trades(store, "Q-1", decimals=6, limit=2)
    assert [trade["tokens"] for trade in first["trades"]] == ["5", "4"]
    second = queries.trades(store, "Q-1", decimals=6, limit=2, before=first["next_before"])
    assert [trade["tokens"] for trade in second["trades"]] == ["3", "2"]
    last = queries.trades(store, "Q-1", decimals=6, limit=2, before=second["next_before"])
    assert [trade["tokens"] for trade in last["trades"]] == ["1"] and last["next_before"] is None

    hourly = queries.candles(store, "Q-1", "1h", decimals=6)["candles"]
    assert [candle["trades"] for candle in hourly] == [1, 1, 1, 1, 1]
    assert [candle["volume"] for candle in hourly] == ["1", "2", "3", "4", "5"]
    assert all(a["close_wad"] == b["open_wad"] for a, b in zip(hourly, hourly[1:]))
    since = datetime.fromisoformat(hourly[2]["start"]) + timedelta(minutes=30)
    assert queries.candles(store, "Q-1", "1h", decimals=6, since=since)["candles"] == hourly[2:]
    daily = queries.candles(store, "Q-1", "1d", decimals=6)["candles"]
    assert sum(candle["trades"] for candle in daily) == 5

    with pytest.raises(InvalidIntervalError):
        queries.candles(store, "Q-1", "2h", decimals=6)
    with pytest.raises(UnknownArtifactError):
        queries.trades(store, "NOPE", decimals=6)
    for limit in (0, -1, queries.MAX_LIMIT + 1):
        with pytest.raises(InvalidInputError):
            queries.trades(store, "Q-1", decimals=6, limit=limit)
    with pytest.raises(InvalidInputError):
        queries.parse_since("yesterday")


def test_tape_when_a_stop_closes_a_position_then_its_sale_is_kind_stop_and_an_owners_close_is_sell(
    ledger, clock, store
):
    for agent in ("alice", "bob"):
        ledger.open_account(agent)
        ledger.mint(agent, 1_000 * TOKEN)
    ledger.list_artifact("S-1", "Stops", 100 * TOKEN, min_hold_days=0)
    ledger.open_position("alice", "S-1", "short", 20 * TOKEN)  # S-1/p1
    ledger.open_position("alice", "S-1", "long", 5 * TOKEN)  # S-1/p2
    ledger.set_stop("S-1/p1", "10")
    trade = ledger.open_position("bob", "S-1", "long", 40 * TOKEN)  # the short price falls: the stop fires
    assert [action["position"] for action in trade["risk_actions"]] == ["S-1/p1"]
    ledger.close_position("S-1/p2", agent="alice")
    catch_up(ledger, store)
    rows = tape_rows(store, "S-1")
    assert [(row["position_id"], row["kind"]) for row in rows] == [
        ("S-1/p1", "buy"),
        ("S-1/p2", "buy"),
        ("S-1/p3", "buy"),
        ("S-1/p1", "stop"),
        ("S-1/p2", "sell"),
    ]
    assert store.count(TapeView.table("tape_closes")) == 0  # every sale found its close
    assert replay_check(ledger, store) == []


def test_tape_when_part_of_a_position_is_sold_before_its_stop_fires_then_each_sale_has_its_own_kind(
    ledger, clock, store
):
    for agent in ("alice", "bob"):
        ledger.open_account(agent)
        ledger.mint(agent, 1_000 * TOKEN)
    ledger.list_artifact("S-2", "Partial sales", 100 * TOKEN, min_hold_days=0)
    ledger.open_position("alice", "S-2", "short", 20 * TOKEN)  # S-2/p1
    held = position_of(ledger, "S-2/p1").quantity_units
    ledger.close_position("S-2/p1", agent="alice", shares_units=held // 3)  # a partial sale
    ledger.set_stop("S-2/p1", "10")
    trade = ledger.open_position("bob", "S-2", "long", 40 * TOKEN)  # the short price falls: the stop fires
    assert [action["position"] for action in trade["risk_actions"]] == ["S-2/p1"]
    catch_up(ledger, store)
    rows = tape_rows(store, "S-2")
    assert [(row["position_id"], row["kind"]) for row in rows] == [
        ("S-2/p1", "buy"),
        ("S-2/p1", "sell"),
        ("S-2/p2", "buy"),
        ("S-2/p1", "stop"),
    ]
    assert store.count(TapeView.table("tape_closes")) == 0  # every sale found its own event
    assert replay_check(ledger, store) == []
