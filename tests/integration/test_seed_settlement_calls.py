"""Seed 000's Python calls with the seed's argument shapes: settle_artifact(artifact_id, state),
settle_position(position_id, settlement_price), compute_settlement_pnl(position, settlement_price)
and distribute_bounty(bounty_id, claimants) either work or raise one clear InvalidInputError,
never a bare ValueError or TypeError, and a refusal writes nothing. On memory, SQLite and
PostgreSQL."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from stakeledger.domain.errors import InvalidInputError, LedgerError, UnknownPositionError
from stakeledger.domain.rules.settlement import compute_settlement_pnl
from stakeledger.domain.service.application import StakeLedger
from stakeledger.domain.vocabulary import WAD
from tests.conftest import stored_event_count
from tests.integration.test_settlement import AGENTS, ART, TOKEN, list_market, open_funded, position_of, trade


@pytest.fixture
def market(ledger: StakeLedger) -> tuple[StakeLedger, str, str]:
    open_funded(ledger, *AGENTS)
    list_market(ledger)
    long_id, short_id = trade(ledger, [("alice", "long", 40), ("bob", "short", 20)])
    return ledger, long_id, short_id


@pytest.mark.parametrize("price", ["0.8", Decimal("0.8"), Fraction(4, 5), 8 * WAD // 10])
def test_compute_settlement_pnl_when_no_state_given_then_the_artifacts_own_state_is_used(market, price):
    ledger, long_id, _ = market
    ledger.transition_artifact(ART, "challenged")
    with pytest.raises(InvalidInputError, match="challenged"):  # a challenge settles nothing
        ledger.compute_settlement_pnl(long_id, price)
    ledger.transition_artifact(ART, "listed")
    ledger.transition_artifact(ART, "flagged", price_wad=2 * WAD // 10)
    position = position_of(ledger, long_id)

    by_id = ledger.compute_settlement_pnl(long_id, price)
    by_position = ledger.compute_settlement_pnl(position, price)

    assert by_id == by_position == compute_settlement_pnl(position, 8 * WAD // 10, "flagged")
    assert ledger.compute_settlement_pnl(long_id, price, "validated").payout_units == (
        position.quantity_units * 8 // 10
    )


@pytest.mark.parametrize(
    "call",
    [
        lambda l, p: l.compute_settlement_pnl(p, 0.8),  # a float: no exact binary value
        lambda l, p: l.compute_settlement_pnl(p, "0.8.1"),
        lambda l, p: l.compute_settlement_pnl(p, "1.5"),
        lambda l, p: l.compute_settlement_pnl(p, Decimal("NaN")),
        lambda l, p: l.compute_settlement_pnl(p, Decimal("0.1234567890123456789")),
        lambda l, p: l.compute_settlement_pnl(p, None),
        lambda l, p: l.compute_settlement_pnl(p, True),
        lambda l, p: l.compute_settlement_pnl(42, "0.8"),
        lambda l, p: l.compute_settlement_pnl("not-a-position", "0.8"),
        lambda l, p: l.compute_settlement_pnl(p, "0.8", 7),
        lambda l, p: l.compute_settlement_pnl(p, "0.8", "glorious"),
        lambda l, p: l.settle_position(p, "0.8"),
        lambda l, p: l.settle_position(p, 0.8),
        lambda l, p: l.settle_artifact(ART, 3),
        lambda l, p: l.settle_artifact(17, "validated"),
        lambda l, p: l.settle_artifact(ART, "glorious"),
        lambda l, p: l.distribute_bounty(f"{ART}/b1", "alice"),
        lambda l, p: l.distribute_bounty(f"{ART}/b1", [("alice",)]),
        lambda l, p: l.distribute_bounty(f"{ART}/b1", {"alice": 0.8, "bob": 0.2}),
        lambda l, p: l.distribute_bounty(f"{ART}/b1", {"alice": "lots"}),
        lambda l, p: l.distribute_bounty(f"{ART}/b1", [(3, Fraction(1))]),
    ],
)
def test_seed_calls_when_shapes_are_wrong_then_one_invalid_input_error_and_nothing_written(market, call):
    ledger, long_id, _ = market
    ledger.post_bounty(ART, "carol", 10 * TOKEN)
    events = stored_event_count(ledger)
    with pytest.raises(InvalidInputError) as refused:
        call(ledger, long_id)
    assert isinstance(refused.value, LedgerError) and str(refused.value)
    assert stored_event_count(ledger) == events


def test_compute_settlement_pnl_when_the_position_is_unknown_then_unknown_position(market):
    ledger, _, _ = market
    with pytest.raises(UnknownPositionError):
        ledger.compute_settlement_pnl(f"{ART}/p99", "0.8")


def test_seed_calls_when_shapes_are_right_then_they_work(market):
    ledger, long_id, short_id = market
    bounty = ledger.post_bounty(ART, "carol", 10 * TOKEN)["bounty"]
    shares = ledger.distribute_bounty(bounty, {"alice": "4/5", "bob": Decimal("0.2")})["shares"]
    assert shares == {"alice": str(8 * TOKEN), "bob": str(2 * TOKEN)}
    result = ledger.settle_artifact(ART, "deprecated", price_wad=WAD // 20)
    assert result["to"] == "deprecated"
    assert position_of(ledger, short_id).status == position_of(ledger, long_id).status == "settled"


@pytest.mark.parametrize(
    ("position", "price", "state"),
    [
        (object(), 8 * WAD // 10, "validated"),
        (type("P", (), {"side": "up", "quantity_units": 1, "cost_units": 1})(), 8 * WAD // 10, "validated"),
        (type("P", (), {"side": "long", "quantity_units": "1", "cost_units": 1})(), 8 * WAD // 10, "validated"),
        (type("P", (), {"side": "long", "quantity_units": 1, "cost_units": 1})(), 0.8, "validated"),
        (type("P", (), {"side": "long", "quantity_units": 1, "cost_units": 1})(), 8 * WAD // 10, None),
    ],
)
def test_the_pure_rule_when_given_wrong_shapes_then_invalid_input_not_a_bare_error(position, price, state):
    with pytest.raises(InvalidInputError):
        compute_settlement_pnl(position, price, state)
