"""Issue 20, item 5: a cancel that commits while a market order is deciding.

A command loads its aggregates one query at a time. When another writer commits between two
of those loads, the command holds a torn view: here the artifact from before a cancel (the
order still resting) and the order escrow from after it (already emptied). The order must then
be decided again on fresh state, as on a version conflict, never refused with a business
error computed from that view; and no message may name an internal account.

Two applications share one durable store, as two processes would; a hook on the market order's
loads lets the other application commit at exactly the moment that tears the view.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

import pytest

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.domain.errors import ConcurrencyError, InsufficientFundsError, TornReadError
from stakeledger.domain.model.accounts import (
    Account,
    Transfer,
    account_uuid,
    order_escrow_account_id,
    pool_account_id,
)
from stakeledger.domain.model.artifacts import artifact_uuid
from stakeledger.domain.service.application import StakeLedger
from stakeledger.domain.service.clock import ManualClock
from stakeledger.domain.service.ledger import MAX_ATTEMPTS
from stakeledger.domain.vocabulary import WAD
from stakeledger.projections.audit import audit
from tests.conftest import stored_event_count

TOKEN = 10**6
FUNDS_UNITS = 1_000 * TOKEN
LIQUIDITY_UNITS = 100 * TOKEN
ART = "ART-1"
ESCROW = order_escrow_account_id(ART)
POOL = pool_account_id(ART)


@pytest.fixture
def writers(durable_store_url: str) -> Iterator[tuple[StakeLedger, StakeLedger]]:
    """Alice's writer and bob's writer on one store, with a limit order of bob's resting."""
    clock = ManualClock()
    alice_side = open_ledger(durable_store_url, clock=clock)
    alice_side.initialise(decimals=6)
    for agent in ("alice", "bob"):
        alice_side.open_account(agent)
        alice_side.mint(agent, FUNDS_UNITS)
    alice_side.list_artifact(ART, "Contested artifact", LIQUIDITY_UNITS, min_hold_days=0)
    # A trade reads its market, pool and accounts in one statement (UnitOfWork.prefetch), and a
    # commit cannot fall inside one statement; later loads (an order's escrow, positions) and a
    # store without that query still read one aggregate at a time. Alice's writer reads so here,
    # so the other writer can commit between any two of her loads.
    alice_side.recorder.select_events_after = None
    bob_side = open_ledger(durable_store_url, clock=clock)
    yield alice_side, bob_side
    bob_side.close()
    alice_side.close()


class LoadHook:
    """Runs ``action`` once, just before ``app`` loads the account ``account_id``; counts those loads."""

    def __init__(self, app: StakeLedger, account_id: str, action: Callable[[], Any]) -> None:
        self.account_uuid: UUID = account_uuid(account_id)
        self.action = action
        self.loads = 0
        self.events_after_action: int | None = None
        self._app = app
        self._get = app.repository.get
        app.repository.get = self._hooked_get  # type: ignore[method-assign]

    def _hooked_get(self, aggregate_id: UUID, *args: Any, **kwargs: Any) -> Any:
        if aggregate_id == self.account_uuid:
            self.loads += 1
            if self.loads == 1:
                self.action()
                self.events_after_action = stored_event_count(self._app)
        return self._get(aggregate_id, *args, **kwargs)


def test_market_order_when_cancel_commits_between_artifact_and_escrow_loads_then_it_fills_on_fresh_state(writers):
    alice_side, bob_side = writers
    # Bob's long limit rests below the price; alice's short pushes the long price through it.
    order_id = bob_side.place_limit_order("bob", ART, "long", 50 * TOKEN, 4 * WAD // 10)["order"]
    assert alice_side.balance_of(ESCROW) == 50 * TOKEN
    alice_side.get_artifact(ART)  # alice's writer has the artifact, order resting, in its cache
    hook = LoadHook(alice_side, ESCROW, lambda: bob_side.cancel_order(order_id, "bob"))

    result = alice_side.open_position("alice", ART, "short", 30 * TOKEN)

    # The first attempt loaded the escrow after the cancel (torn); the second decided afresh.
    assert hook.loads >= 1 and hook.events_after_action is not None
    assert result["fills"] == []
    assert int(result["cost_units"]) == 30 * TOKEN
    artifact = alice_side.get_artifact(ART)
    assert artifact.order_status[order_id] == "cancelled"
    assert artifact.orders == {}
    assert artifact.position_ids == [result["position"]]
    assert (artifact.q_long, artifact.q_short) == (0, int(result["shares_units"]))
    assert alice_side.balance_of("bob") == FUNDS_UNITS
    assert alice_side.balance_of(ESCROW) == 0
    assert alice_side.balance_of("alice") == FUNDS_UNITS - 30 * TOKEN
    report = audit(alice_side)
    assert report.clean, report.violations


def test_market_order_when_cancel_tears_its_view_and_funds_are_truly_short_then_refused_naming_the_agent_only(
    writers,
):
    alice_side, bob_side = writers
    order_id = bob_side.place_limit_order("bob", ART, "long", 50 * TOKEN, 4 * WAD // 10)["order"]
    alice_side.get_artifact(ART)
    # The cancel lands while alice's order loads the pool, after it loaded the artifact.
    hook = LoadHook(alice_side, POOL, lambda: bob_side.cancel_order(order_id, "bob"))

    with pytest.raises(InsufficientFundsError) as refused:
        alice_side.open_position("alice", ART, "short", FUNDS_UNITS + 1)

    assert "alice" in str(refused.value)
    assert "escrow:" not in str(refused.value) and "pool:" not in str(refused.value)
    # Refused on a consistent view (decided again after the torn one): alice wrote nothing.
    assert hook.loads == 2
    assert stored_event_count(alice_side) == hook.events_after_action
    assert alice_side.get_artifact(ART).order_status[order_id] == "cancelled"
    assert alice_side.balance_of("alice") == FUNDS_UNITS
    report = audit(alice_side)
    assert report.clean, report.violations


def test_market_order_when_view_is_torn_on_every_attempt_then_it_gives_up_retryably_and_writes_nothing(writers):
    alice_side, bob_side = writers
    # Every attempt of alice's order loads the artifact just after bob placed an order, and
    # the escrow just after bob cancelled it: each attempt's view is torn, none may decide.
    placed: list[str] = []
    artifact_id, escrow = artifact_uuid(ART), account_uuid(ESCROW)
    original_get = alice_side.repository.get
    attempts = {"torn": 0}

    def racing_get(aggregate_id: UUID, *args: Any, **kwargs: Any) -> Any:
        if aggregate_id == artifact_id:
            placed.append(bob_side.place_limit_order("bob", ART, "long", 5 * TOKEN, 4 * WAD // 10)["order"])
        elif aggregate_id == escrow:
            bob_side.cancel_order(placed[-1], "bob")
            attempts["torn"] += 1
        return original_get(aggregate_id, *args, **kwargs)

    alice_side.repository.get = racing_get  # type: ignore[method-assign]
    alice_before = alice_side.balance_of("alice")

    with pytest.raises(ConcurrencyError) as gave_up:
        alice_side.open_position("alice", ART, "short", 30 * TOKEN)

    assert attempts["torn"] == MAX_ATTEMPTS
    assert gave_up.value.code == "CONCURRENCY_CONFLICT"
    assert "escrow:" not in str(gave_up.value)
    alice_side.repository.get = original_get  # type: ignore[method-assign]
    # Alice's order wrote nothing: no position, her balance untouched; only bob's orders moved.
    artifact = alice_side.get_artifact(ART)
    assert artifact.position_ids == []
    assert (artifact.q_long, artifact.q_short) == (0, 0)
    assert alice_side.balance_of("alice") == alice_before
    assert set(artifact.order_status.values()) == {"cancelled"}
    assert alice_side.balance_of(ESCROW) == 0
    report = audit(alice_side)
    assert report.clean, report.violations


def test_system_account_shortfall_when_debited_then_the_refusal_is_retryable_and_names_no_account():
    escrow = Account.open(ESCROW, ManualClock().now())
    transfer = Transfer("t-1", ESCROW, "alice", 1, "order:release")

    with pytest.raises(TornReadError) as refused:
        escrow.debit(transfer, ManualClock().now())

    assert refused.value.code == "CONCURRENCY_CONFLICT"
    assert "escrow" not in str(refused.value) and ART not in str(refused.value)
    assert escrow.balance_units == 0 and escrow.version == 1
