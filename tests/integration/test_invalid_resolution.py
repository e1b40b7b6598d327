"""N/A: `invalid` voids the question. Every live position gets back exactly what it put in, net
of what a flag already paid it; nobody's reputation moves; the pool's funding returns to the
treasury; the market is closed for good. On memory, SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from stakeledger.domain.errors import StateError
from stakeledger.domain.model.accounts import TREASURY
from tests.integration.test_settlement import (
    AGENTS,
    ART,
    FUNDS_UNITS,
    POOL,
    TOKEN,
    assert_settled_market_balances,
    believability,
    go,
    list_market,
    open_funded,
    position_of,
    state_of,
    trade,
)


def test_invalid_when_positions_are_live_then_each_gets_its_cost_back_to_the_unit(ledger):
    open_funded(ledger, *AGENTS)
    list_market(ledger)
    ids = trade(ledger, [("alice", "long", 37), ("bob", "short", 11), ("carol", "long", 5), ("alice", "short", 2)])
    treasury_before = ledger.balance_of(TREASURY)
    pool_funding = ledger.balance_of(POOL)
    costs = {position_id: position_of(ledger, position_id).cost_units for position_id in ids}
    reputation_before = {agent: believability(ledger, agent) for agent in AGENTS}

    result = ledger.transition_artifact(ART, "invalid", reason="the question was ill-posed")

    assert result["to"] == "invalid" and int(result["paid_units"]) == sum(costs.values())
    for position_id, cost in costs.items():
        position = position_of(ledger, position_id)
        assert (position.status, position.payout_units, position.realized_pnl_units) == ("settled", cost, 0)
    assert ledger.balance_of("alice") == FUNDS_UNITS and ledger.balance_of("bob") == FUNDS_UNITS
    assert ledger.balance_of("carol") == FUNDS_UNITS
    # The pool held the subsidy plus every cost; it paid the costs back and returned the rest.
    assert ledger.balance_of(TREASURY) == treasury_before + pool_funding - sum(costs.values())
    assert {agent: believability(ledger, agent) for agent in AGENTS} == reputation_before
    assert_settled_market_balances(ledger)


def test_invalid_when_a_flag_paid_first_then_the_refund_nets_out_what_it_paid(ledger):
    open_funded(ledger, *AGENTS)
    list_market(ledger)
    long_id, short_id = trade(ledger, [("alice", "long", 40), ("bob", "short", 21)])
    long_cost, short_cost = position_of(ledger, long_id).cost_units, position_of(ledger, short_id).cost_units
    go(ledger, "flagged")  # alice gets half her cost back, bob a 25% bonus
    bonus = short_cost // 4

    ledger.transition_artifact(ART, "invalid")

    assert position_of(ledger, long_id).payout_units == long_cost // 2 + (long_cost - long_cost // 2)
    assert position_of(ledger, short_id).payout_units == bonus + (short_cost - bonus)
    for agent in ("alice", "bob"):
        assert ledger.balance_of(agent) == FUNDS_UNITS  # everyone exactly where they started
    assert position_of(ledger, short_id).realized_pnl_units == 0
    assert_settled_market_balances(ledger)


def test_invalid_when_challenged_then_frozen_positions_are_refunded_and_the_market_closes(ledger):
    open_funded(ledger, *AGENTS)
    list_market(ledger)
    trade(ledger, [("alice", "long", 10), ("bob", "short", 10)])
    ledger.transition_artifact(ART, "challenged")
    ledger.transition_artifact(ART, "invalid")
    assert ledger.get_artifact(ART).state == "invalid"
    before = state_of(ledger)
    for refused in (
        lambda: ledger.open_position("alice", ART, "long", TOKEN),
        lambda: ledger.transition_artifact(ART, "listed"),
        lambda: ledger.transition_artifact(ART, "invalid"),
    ):
        with pytest.raises(StateError):
            refused()
    assert state_of(ledger) == before
    assert_settled_market_balances(ledger)
