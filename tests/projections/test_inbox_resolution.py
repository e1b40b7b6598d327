"""The inbox after a challenge ends, on every backend: a position settled straight from frozen is
told it settled, never that it is "open again"; only a market that trades again (listed or
flagged) reopens its frozen positions."""

from __future__ import annotations

import pytest

from stakeledger.domain.model.positions import Position, position_uuid
from stakeledger.domain.rules.money import format_amount
from stakeledger.domain.service.application import StakeLedger
from stakeledger.domain.vocabulary import WAD
from stakeledger.projections import queries
from stakeledger.projections.runner import Runner
from stakeledger.projections.store import ViewStore

TOKEN = 10**6

# (challenge ends in, at price, each agent's inbox kinds newest first, position events after Frozen)
ENDINGS = [
    ("deprecated", 5 * WAD // 100, ["settled", "frozen"], ["Settled"]),
    ("validated", 8 * WAD // 10, ["settled", "frozen"], ["Settled"]),
    ("listed", None, ["reopened", "frozen"], ["Reopened"]),
    ("flagged", 2 * WAD // 10, ["partially_settled", "reopened", "frozen"], ["Reopened", "PartiallySettled"]),
]


@pytest.mark.parametrize(("to_state", "price_wad", "kinds", "after_freeze"), ENDINGS, ids=[e[0] for e in ENDINGS])
def test_inbox_when_a_challenge_ends_then_each_message_says_what_happened_to_the_position(
    ledger: StakeLedger, store: ViewStore, to_state, price_wad, kinds, after_freeze
):
    for agent in ("ada", "bob"):
        ledger.open_account(agent)
        ledger.mint(agent, 1_000 * TOKEN)
    ledger.list_artifact("ART", "Challenged", 100 * TOKEN, min_hold_days=0)
    ada = ledger.open_position("ada", "ART", "long", 30 * TOKEN)["position"]
    bob = ledger.open_position("bob", "ART", "short", 20 * TOKEN)["position"]
    ledger.transition_artifact("ART", "challenged", reason="disputed")

    ledger.transition_artifact("ART", to_state, price_wad=price_wad)

    Runner(ledger, store, page_size=5).catch_up()
    for agent, position_id in (("ada", ada), ("bob", bob)):
        events = [type(e).__name__ for e in ledger.events.get(position_uuid(position_id))]
        assert events[events.index("Frozen") + 1 :] == after_freeze
        inbox = queries.inbox(store, agent, decimals=6)
        assert [m["kind"] for m in inbox] == kinds, inbox
        if to_state in ("deprecated", "validated"):
            assert not any("open again" in m["message"] for m in inbox)
            position = ledger.repository.get(position_uuid(position_id))
            assert isinstance(position, Position) and position.status == "settled"
            assert inbox[0]["message"].startswith(
                f"Your {position.side} position {position_id} on ART settled: the artifact was {to_state} at p(long) "
            )


@pytest.mark.parametrize(
    ("challenged", "back_in"), [(False, "open"), (True, "frozen")], ids=["from-listed", "from-challenged"]
)
def test_inbox_when_a_resolution_is_reopened_then_each_owner_is_told_the_settlement_was_reversed(
    ledger: StakeLedger, store: ViewStore, challenged, back_in
):
    for agent in ("ada", "bob"):
        ledger.open_account(agent)
        ledger.mint(agent, 1_000 * TOKEN)
    ledger.list_artifact("ART", "Reopened", 100 * TOKEN, min_hold_days=0)
    ada = ledger.open_position("ada", "ART", "long", 30 * TOKEN)["position"]
    ledger.open_position("bob", "ART", "short", 20 * TOKEN)
    if challenged:
        ledger.transition_artifact("ART", "challenged", reason="disputed")
    ledger.transition_artifact("ART", "validated", price_wad=8 * WAD // 10)
    paid = ledger.repository.get(position_uuid(ada)).payout_units

    ledger.reopen_artifact("ART", reason="wrong oracle")

    Runner(ledger, store, page_size=5).catch_up()
    newest = queries.inbox(store, "ada", decimals=6)[0]
    assert newest["kind"] == "settlement_reversed" and newest["state"] == back_in
    assert newest["message"] == (
        f"Your long position {ada} on ART is {back_in} again: the artifact's resolution was reopened and its "
        f"settlement reversed; the payout of {format_amount(paid, 6)} went back to the pool."
    )
    bob_newest = queries.inbox(store, "bob", decimals=6)[0]
    assert bob_newest["kind"] == "settlement_reversed" and "payout of 0 went back" in bob_newest["message"]
