"""One flagged partial settlement per stake, over random flag -> listed cycles, on the in-memory
store, SQLite and PostgreSQL.

Seed 000 pays a flagged short a 25% bonus and hands a flagged long half its cost back. However
many times a market is flagged and listed again (with or without a challenge in between, with
new positions opened between flags), each position gets that once: at the first flag it lives
through. The audit stays clean, and after a final terminal transition the per-artifact identity
holds to the unit (positions' P&L = subsidies − tax, each position's P&L = what the pool paid it
minus what it paid the pool, every agent ends with its funding plus its P&L).
"""

from __future__ import annotations

from collections.abc import Callable

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from stakeledger.domain.model.accounts import Account
from stakeledger.domain.model.positions import Position, position_uuid
from stakeledger.domain.vocabulary import DEPRECATED, FLAGGED, VALIDATED
from stakeledger.projections.audit import audit
from tests.conftest import BACKENDS
from tests.property.test_settlement_property import (
    AGENT,
    ART,
    MEETING_PRICES,
    SIDES,
    TOKEN,
    Run,
    assert_settled_exactly,
    examples,
    movements,
)

TRADE = st.tuples(AGENT, SIDES, st.integers(min_value=1, max_value=40))
CYCLE = st.fixed_dictionaries(
    {
        "trades": st.lists(TRADE, max_size=2),  # opened while listed, before this cycle's flag
        "challenged_first": st.booleans(),  # listed -> challenged -> flagged, or listed -> flagged
        "flag_price": MEETING_PRICES[FLAGGED],
    }
)


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Callable[[], str]:
    """The PostgreSQL server's URL, asked for only by a PostgreSQL run."""
    return lambda: request.getfixturevalue("postgres_server")


def expected_partial_units(position: Position) -> int:
    """What its one flag pays a position: a short cost//4 as a bonus, a long cost//2 back."""
    return position.cost_units // 4 if position.side == "short" else position.cost_units // 2


def partial_events(run: Run, position_id: str) -> list[Position.PartiallySettled]:
    return [
        event
        for event in run.ledger.events.get(position_uuid(position_id))
        if isinstance(event, Position.PartiallySettled)
    ]


def opening_cost(run: Run, position_id: str) -> int:
    (opened,) = [e for e in run.ledger.events.get(position_uuid(position_id)) if isinstance(e, Position.Opened)]
    return opened.cost_units


@pytest.mark.parametrize("backend", BACKENDS)
def test_flag_list_cycles_when_random_then_each_stake_gets_one_partial_settlement_and_the_books_balance(
    backend: str, server: Callable[[], str]
):
    @settings(max_examples=examples(backend, 12), deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        first_trades=st.lists(TRADE, min_size=1, max_size=3),
        cycles=st.lists(CYCLE, min_size=1, max_size=5),
        terminal=st.sampled_from([VALIDATED, DEPRECATED]),
        data=st.data(),
    )
    def example(first_trades, cycles, terminal, data: st.DataObject) -> None:
        with Run.on(backend, server, 20 * TOKEN) as run:
            ledger = run.ledger
            flagged_once: set[str] = set()  # positions that have lived through a flag
            for agent, side, tokens in first_trades:
                run.act(("buy", agent, side, tokens))
            for index, cycle in enumerate(cycles):
                for agent, side, tokens in cycle["trades"]:
                    run.act(("buy", agent, side, tokens))
                if cycle["challenged_first"]:
                    assert run.transition("challenged", None, f"challenge-{index}")
                live = {p: load(run, p) for p in ledger.get_artifact(ART).position_ids}
                owed = {p: 0 if p in flagged_once else expected_partial_units(position) for p, position in live.items()}
                owners = {position.owner for position in live.values()}
                balances = {owner: ledger.balance_of(owner) for owner in owners}

                assert run.transition(FLAGGED, cycle["flag_price"], f"flag-{index}")

                # The command's first result, as a retry with its id returns it.
                summary = ledger.transition_artifact(
                    ART, FLAGGED, price_wad=cycle["flag_price"], command_id=f"flag-{index}"
                )
                assert summary["already_partially_settled"] == sum(p in flagged_once for p in live)
                assert summary["paid_units"] == str(sum(owed.values()))
                for position_id, before in live.items():
                    assert load(run, position_id).partial_settlements == 1
                    (event,) = partial_events(run, position_id)
                    first_cost = opening_cost(run, position_id)
                    assert event.payout_units == (first_cost // 4 if before.side == "short" else first_cost // 2)
                # An agent is paid what the first flags of its positions owe, nothing for earlier ones.
                for owner in owners:
                    due = sum(owed[p] for p, position in live.items() if position.owner == owner)
                    assert ledger.balance_of(owner) == balances[owner] + due
                flagged_once.update(live)
                report = audit(ledger)
                assert report.clean, report.violations
                assert run.transition("listed", None, f"relist-{index}")

            price_wad = data.draw(MEETING_PRICES[terminal], label="terminal price")
            assert run.transition(terminal, price_wad, "end")
            for position_id in ledger.get_artifact(ART).position_ids:
                assert len(partial_events(run, position_id)) == 1
            bonuses = [
                e
                for agent in ("alice", "bob", "carol")
                for e in movements(ledger, agent)
                if isinstance(e, Account.Credited) and e.reason == "settlement:partial"
            ]
            assert len(bonuses) == len(ledger.get_artifact(ART).position_ids)  # one per stake, never more
            assert_settled_exactly(ledger)
            report = audit(ledger)
            assert report.clean, report.violations

    example()


def load(run: Run, position_id: str) -> Position:
    position = run.ledger.repository.get(position_uuid(position_id))
    assert isinstance(position, Position)
    return position
