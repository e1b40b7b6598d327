"""Expiry frees escrow at the expiry time (issue 15).

An order past its expiry no longer counts as escrow wherever a user reads (the portfolio
view, the dashboard, the risk engine's available cash), and its release is written by
whichever comes first: the sweep (``expire_orders``), the next trade on the market, or the
next command touching the agent's account. The release is the same whoever writes it and
whenever: replaying the store gives the live state. On memory, SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.domain.decisions.risk import state_of
from stakeledger.domain.decisions.unit_of_work import UnitOfWork
from stakeledger.domain.errors import StateError
from stakeledger.domain.model.accounts import Account, order_escrow_account_id
from stakeledger.domain.model.artifacts import Artifact
from stakeledger.domain.service.application import StakeLedger
from stakeledger.domain.service.clock import ManualClock
from stakeledger.domain.service.ids import SeededIds
from stakeledger.domain.service.log import iter_events
from stakeledger.domain.vocabulary import WAD, Reason
from stakeledger.projections import dashboard, queries
from stakeledger.projections.audit import audit
from stakeledger.projections.runner import Runner
from stakeledger.projections.store import open_store
from tests.conftest import stored_event_count

TOKEN = 10**6
FUNDS = 1_000 * TOKEN
ESCROW = order_escrow_account_id("ART")


def setup_market(ledger: StakeLedger) -> None:
    for name in ("alice", "bob"):
        ledger.open_account(name)
        ledger.mint(name, FUNDS)
    ledger.list_artifact("ART", "Artifact", 100 * TOKEN, min_hold_days=0)
    ledger.list_artifact("OTHER", "Other", 100 * TOKEN, min_hold_days=0)


def place_expiring(ledger: StakeLedger, tokens: int = 10, days: int = 2) -> str:
    """bob rests a long order at 0.3 (the price is 0.5: it does not fill)."""
    return ledger.place_limit_order("bob", "ART", "long", tokens * TOKEN, 3 * WAD // 10, expires_in_days=days)["order"]


def releases(ledger: StakeLedger) -> list[Any]:
    return [e for _, e in iter_events(ledger) if isinstance(e, Artifact.OrderReleased)]


def release_postings(ledger: StakeLedger) -> list[Any]:
    return [
        e
        for _, e in iter_events(ledger)
        if isinstance(e, Account.Credited) and e.reason == Reason.ORDER_RELEASE and e.counterparty == ESCROW
    ]


@pytest.fixture
def market(ledger: StakeLedger) -> StakeLedger:
    setup_market(ledger)
    return ledger


def test_reads_when_order_expired_but_not_released_then_its_escrow_is_free(market, clock):
    order_id = place_expiring(market)
    store = open_store(market)
    try:
        Runner(market, store).catch_up()
        before = queries.portfolio_at_exit(store, "bob", now=clock.now())
        assert [o["order_id"] for o in before["orders"]] == [order_id]
        assert (before["escrow_units"], before["expired_escrow_units"]) == (str(10 * TOKEN), "0")

        clock.advance(days=2)  # exactly at the expiry time: the order is dead
        after = queries.portfolio_at_exit(store, "bob", now=clock.now())
    finally:
        store.close()

    assert after["orders"] == []
    assert (after["escrow_units"], after["expired_escrow_units"]) == ("0", str(10 * TOKEN))
    summary = dashboard.summary(market, "bob")
    assert summary["available_units"] == str(FUNDS) and summary["escrow_units"] == "0"
    assert summary["equity_units"] == str(FUNDS)
    assert market.balance_of("bob") == FUNDS - 10 * TOKEN  # nothing written yet
    assert releases(market) == []


def test_sweep_when_order_expired_then_released_with_its_expiry_time_named(market, clock):
    order_id = place_expiring(market)
    expires_at = market.get_artifact("ART").orders[order_id]["expires_at"]
    clock.advance(days=1)
    count = stored_event_count(market)
    assert market.expire_orders()["expired"] == []  # not due yet: nothing written
    assert stored_event_count(market) == count

    clock.advance(days=3)
    result = market.expire_orders()

    assert result["expired"] == [{"order": order_id, "artifact": "ART"}]
    assert [(e.order_id, e.why, e.released_units) for e in releases(market)] == [(order_id, "expired", 10 * TOKEN)]
    (posting,) = release_postings(market)
    assert posting.refs["expired_at"] == expires_at.isoformat()
    assert market.balance_of("bob") == FUNDS and market.balance_of(ESCROW) == 0
    assert market.expire_orders()["expired"] == []  # a second sweep finds nothing
    assert audit(market).clean


def test_next_command_on_the_account_when_order_expired_then_releases_it_first(market, clock):
    order_id = place_expiring(market, tokens=995)  # bob keeps 5 free tokens
    clock.advance(days=3)

    # 500 tokens is more than bob's free cash, but the dead order's escrow is his again.
    market.transfer("bob", "alice", 500 * TOKEN)

    assert [(e.order_id, e.why) for e in releases(market)] == [(order_id, "expired")]
    assert market.balance_of("bob") == FUNDS - 500 * TOKEN
    assert market.get_account("bob").expiring_orders == {}


def test_trade_on_another_market_when_own_order_expired_then_released_first(market, clock):
    order_id = place_expiring(market, tokens=990)
    clock.advance(days=3)

    trade = market.open_position("bob", "OTHER", "long", 200 * TOKEN)

    assert "position" in trade
    assert [(e.order_id, e.why) for e in releases(market)] == [(order_id, "expired")]
    assert market.balance_of("bob") == FUNDS - 200 * TOKEN


def test_cancel_when_order_expired_then_status_is_expired_not_cancelled(market, clock):
    order_id = place_expiring(market)
    clock.advance(days=3)

    result = market.cancel_order(order_id, "bob")

    assert (result["status"], result["released_units"]) == ("expired", str(10 * TOKEN))
    with pytest.raises(StateError):
        market.cancel_order(order_id, "bob")


def test_risk_available_when_order_expired_then_counts_its_escrow(market, clock):
    market.configure_portfolio("bob")
    place_expiring(market)
    clock.advance(days=3)
    unit = UnitOfWork(market, clock.now(), market.new_id)
    from stakeledger.domain.decisions.risk import load_portfolio

    portfolio = load_portfolio(unit, "bob")
    state = state_of(unit, "bob", portfolio.position_ids, portfolio)

    assert state.available_units == FUNDS
    assert state.equity_units == FUNDS


# Replay ------------------------------------------------------------------------------------


def scripted(url: str, release_by: str) -> dict[str, Any]:
    """The same orders, released by a different writer at a different time."""
    clock = ManualClock()
    app = open_ledger(url, clock=clock, new_id=SeededIds(11))
    try:
        app.initialise(decimals=6)
        setup_market(app)
        first = place_expiring(app, tokens=10, days=2)
        second = place_expiring(app, tokens=20, days=4)
        app.place_limit_order("alice", "ART", "short", 30 * TOKEN, 3 * WAD // 10)  # never expires
        clock.advance(days=5)
        if release_by == "sweep":
            app.expire_orders()
        elif release_by == "account":
            app.mint("bob", 1 * TOKEN)
        else:
            app.open_position("alice", "ART", "long", 1 * TOKEN)
        clock.advance(days=1)
        app.expire_orders()  # whatever is left: nothing
        live = outcome(app, [first, second])
    finally:
        app.close()
    fresh = open_ledger(url, clock=clock)
    try:
        assert outcome(fresh, [first, second]) == live
        assert audit(fresh).clean
    finally:
        fresh.close()
    return live


def outcome(app: StakeLedger, order_ids: list[str]) -> dict[str, Any]:
    by_order = {e.order_id: (e.why, e.released_units) for e in releases(app)}
    return {
        "released": [by_order.get(order_id) for order_id in order_ids],
        "expired_at": sorted(p.refs.get("expired_at") for p in release_postings(app)),
        "escrow": app.balance_of(ESCROW),
        "resting": sorted(app.get_artifact("ART").orders),
    }


@pytest.fixture
def urls(request: pytest.FixtureRequest, tmp_path) -> Iterator[Any]:
    from tests.conftest import make_store_url

    backend = request.param

    def new(name: str) -> str:
        return make_store_url(backend, tmp_path / name, request)

    yield new


@pytest.mark.parametrize("urls", ["sqlite", "postgres"], indirect=True)
def test_replay_when_released_by_sweep_account_or_trade_then_the_same_release(urls, tmp_path):
    outcomes = []
    for how in ("sweep", "account", "trade"):
        (tmp_path / how).mkdir()
        outcomes.append(scripted(urls(how), how))

    assert outcomes[0] == outcomes[1] == outcomes[2]
    assert outcomes[0]["released"] == [("expired", 10 * TOKEN), ("expired", 20 * TOKEN)]
    assert outcomes[0]["escrow"] == 30 * TOKEN  # alice's order without expiry still rests
    assert outcomes[0]["resting"] == ["ART/o3"]
    assert len(outcomes[0]["expired_at"]) == 2 and None not in outcomes[0]["expired_at"]


def test_expiring_orders_index_when_replayed_then_the_live_one(market, clock):
    order_id = place_expiring(market)
    expected = {order_id: {"artifact": "ART", "expires_at": (clock.now() + timedelta(days=2)).isoformat()}}
    assert market.get_account("bob").expiring_orders == expected
    market.cancel_order(order_id, "bob")
    assert market.get_account("bob").expiring_orders == {}
