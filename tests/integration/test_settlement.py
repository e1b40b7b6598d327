"""Settlement on lifecycle transitions, bounties and reputation, run on the in-memory store,
SQLite and PostgreSQL.

Amounts are base units of a ledger with 6 decimals: ``TOKEN`` is one whole token. Expected
payouts are worked out here from each position's own quantity and the settlement price,
rounded down, never read back from the code under test.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from fractions import Fraction
from typing import Any

import pytest
from eventsourcing.application import AggregateNotFoundError

from stakeledger.api.errors import http_status_for
from stakeledger.domain.errors import (
    CommandConflictError,
    FrozenError,
    HoldPeriodError,
    InsufficientFundsError,
    InvalidAmountError,
    InvalidInputError,
    StateError,
    ThresholdNotMetError,
    UnknownAccountError,
    UnknownArtifactError,
    UnknownBountyError,
)
from stakeledger.domain.model.accounts import (
    TREASURY,
    Account,
    account_uuid,
    bounty_escrow_account_id,
    order_escrow_account_id,
    pool_account_id,
)
from stakeledger.domain.model.artifacts import Artifact, artifact_uuid
from stakeledger.domain.model.positions import Position, position_uuid
from stakeledger.domain.model.reputation import Reputation, reputation_uuid
from stakeledger.domain.rules.resolution import ResolutionRules
from stakeledger.domain.service.application import StakeLedger
from stakeledger.domain.vocabulary import WAD
from stakeledger.projections.audit import audit
from stakeledger.projections.statements import statement_lines
from tests.conftest import stored_event_count

TOKEN = 10**6
FUNDS_UNITS = 1_000 * TOKEN
LIQUIDITY_UNITS = 100 * TOKEN
ART = "ART"
POOL = pool_account_id(ART)
ESCROW = order_escrow_account_id(ART)
AGENTS = ("alice", "bob", "carol", "dave")
HALF_WAD = WAD // 2
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def price(text: str) -> int:
    """A probability written as a decimal string, in WAD: price("0.8") == 8 * 10**17."""
    whole, _, fraction = text.partition(".")
    return int(whole) * WAD + int(fraction.ljust(18, "0"))


# Resolver prices that meet seed 000's thresholds (validated >= 0.7, deprecated <= 0.1, flagged < 0.3),
# for tests that only need some transition to happen.
VALIDATE_WAD, DEPRECATE_WAD, FLAG_WAD = price("0.8"), price("0.05"), price("0.2")
PRICE_FOR = {"validated": VALIDATE_WAD, "deprecated": DEPRECATE_WAD, "flagged": FLAG_WAD}
# Rules close to even odds, for tests that settle at a price a few trades can reach.
NEAR_EVEN = ResolutionRules(
    validated_min_wad=price("0.55"), flagged_below_wad=price("0.5"), deprecated_max_wad=price("0.45")
)


def go(ledger: StakeLedger, state: str, artifact_id: str = ART, **kwargs: Any) -> dict[str, Any]:
    """Transition at a resolver price that meets the default threshold of ``state`` (if it has one)."""
    return ledger.transition_artifact(artifact_id, state, price_wad=PRICE_FOR.get(state), **kwargs)


def open_funded(ledger: StakeLedger, *names: str, amount_units: int = FUNDS_UNITS) -> None:
    for name in names:
        ledger.open_account(name)
        ledger.mint(name, amount_units)


def list_market(
    ledger: StakeLedger,
    artifact_id: str = ART,
    *,
    liquidity_units: int = LIQUIDITY_UNITS,
    min_hold_days: int = 0,
    rules: ResolutionRules | None = None,
) -> None:
    ledger.list_artifact(
        artifact_id, f"Artifact {artifact_id}", liquidity_units, min_hold_days=min_hold_days, resolution=rules
    )


def trade(ledger: StakeLedger, trades: list[tuple[str, str, int]], artifact_id: str = ART) -> list[str]:
    """Market orders (agent, side, whole tokens), in order; the position ids they opened."""
    return [
        ledger.open_position(agent, artifact_id, side, tokens * TOKEN)["position"] for agent, side, tokens in trades
    ]


def position_of(ledger: StakeLedger, position_id: str) -> Position:
    position = ledger.repository.get(position_uuid(position_id))
    assert isinstance(position, Position)
    return position


def balance_or_zero(ledger: StakeLedger, account_id: str) -> int:
    try:
        return ledger.balance_of(account_id)
    except UnknownAccountError:
        return 0  # system accounts are opened on first use


def movements(ledger: StakeLedger, account_id: str) -> list[Any]:
    """Every Debited/Credited event on one account, oldest first."""
    return [
        event
        for event in ledger.events.get(account_uuid(account_id))
        if isinstance(event, (Account.Debited, Account.Credited))
    ]


def transitions(ledger: StakeLedger, artifact_id: str = ART) -> list[Artifact.Transitioned]:
    events = ledger.events.get(artifact_uuid(artifact_id))
    return [event for event in events if isinstance(event, Artifact.Transitioned)]


def traded(ledger: StakeLedger, artifact_id: str = ART) -> list[Artifact.Traded]:
    return [event for event in ledger.events.get(artifact_uuid(artifact_id)) if isinstance(event, Artifact.Traded)]


def micros_of(moment: datetime) -> int:
    """Whole microseconds since the epoch, as the market's window counts time."""
    return (moment - EPOCH) // timedelta(microseconds=1)


def believability(ledger: StakeLedger, agent: str) -> int | None:
    try:
        reputation = ledger.repository.get(reputation_uuid(agent))
    except AggregateNotFoundError:
        return None  # no settled prediction yet
    return reputation.believability_wad


def state_of(ledger: StakeLedger, artifact_id: str = ART, extra_accounts: tuple[str, ...] = ()) -> dict[str, Any]:
    """Everything a refused command must leave as it was."""
    artifact = ledger.get_artifact(artifact_id)
    accounts = (*AGENTS, TREASURY, pool_account_id(artifact_id), order_escrow_account_id(artifact_id), *extra_accounts)
    positions = [position_of(ledger, position_id) for position_id in artifact.position_ids]
    return {
        "events": stored_event_count(ledger),
        "balances": {account: balance_or_zero(ledger, account) for account in accounts},
        "artifact": (artifact.version, artifact.state, artifact.q_long, artifact.q_short, artifact.transition_count),
        "orders": (dict(artifact.order_status), {o: order["remaining_units"] for o, order in artifact.orders.items()}),
        "bounties": {bounty_id: dict(bounty) for bounty_id, bounty in artifact.bounties.items()},
        "positions": [(p.position_id, p.version, p.status, p.quantity_units, p.cost_units) for p in positions],
        "reputation": {agent: believability(ledger, agent) for agent in AGENTS},
    }


def realised_pnl_from_events(ledger: StakeLedger, artifact_id: str = ART) -> int:
    """The sum of every Closed, PartiallySettled and Settled P&L on the artifact's positions."""
    total = 0
    for position_id in ledger.get_artifact(artifact_id).position_ids:
        for event in ledger.events.get(position_uuid(position_id)):
            if isinstance(event, (Position.Closed, Position.PartiallySettled, Position.Settled)):
                total += event.pnl_units
    return total


def net_subsidy_from_pool(ledger: StakeLedger, artifact_id: str = ART) -> int:
    """Subsidies minted into the pool minus the tax it returned, read off the pool's own events."""
    net = 0
    for event in movements(ledger, pool_account_id(artifact_id)):
        if event.reason == "amm:subsidy" and isinstance(event, Account.Credited):
            assert event.counterparty == TREASURY
            net += event.amount_units
        elif event.reason == "amm:tax" and isinstance(event, Account.Debited):
            assert event.counterparty == TREASURY
            net -= event.amount_units
    return net


def assert_settled_market_balances(ledger: StakeLedger, artifact_id: str = ART) -> None:
    """After a terminal settlement: positions' P&L = subsidies − tax, to the unit; pool and escrow empty."""
    assert realised_pnl_from_events(ledger, artifact_id) == net_subsidy_from_pool(ledger, artifact_id)
    assert ledger.balance_of(pool_account_id(artifact_id)) == 0
    assert balance_or_zero(ledger, order_escrow_account_id(artifact_id)) == 0
    report = audit(ledger)
    assert report.clean, report.violations


def settlement_credits(ledger: StakeLedger, agent: str) -> list[Any]:
    return [
        event
        for event in movements(ledger, agent)
        if isinstance(event, Account.Credited) and event.reason.startswith("settlement:")
    ]


# Terminal settlements -------------------------------------------------------------------------

# alice buys long high; carol's short pulls the price down; bob buys long lower; dave shorts a little.
# Validated at the final price (about 0.57, which NEAR_EVEN's 0.55 allows), alice's long loses and
# bob's long profits.
VALIDATED_TRADES = [("alice", "long", 100), ("carol", "short", 60), ("bob", "long", 40), ("dave", "short", 10)]
# The mirror image: carol's short bought dear loses, dave's cheaper short profits (deprecated at about 0.43).
DEPRECATED_TRADES = [("carol", "short", 100), ("alice", "long", 60), ("dave", "short", 40), ("bob", "long", 10)]


@pytest.mark.parametrize(
    ("state", "trades", "winning_side"),
    [("validated", VALIDATED_TRADES, "long"), ("deprecated", DEPRECATED_TRADES, "short")],
    ids=["validated", "deprecated"],
)
def test_terminal_transition_when_longs_and_shorts_then_winners_paid_floor_of_q_times_price_losers_nothing(
    ledger, state, trades, winning_side
):
    open_funded(ledger, *AGENTS)
    list_market(ledger, rules=NEAR_EVEN)
    position_ids = trade(ledger, trades)
    s = ledger.get_artifact(ART).price_long_wad  # the resolver settles at the pool's last price
    before = {p: position_of(ledger, p) for p in position_ids}
    balances_before = {agent: ledger.balance_of(agent) for agent in AGENTS}
    pool_before = ledger.balance_of(POOL)

    result = ledger.transition_artifact(ART, state, actor="reviewer", reason="replicated", price_wad=s)

    # A winner's share pays s (long, validated) or 1 − s (short, deprecated), rounded down.
    per_share_wad = s if winning_side == "long" else WAD - s
    expected_payout = {
        p: (position.quantity_units * per_share_wad // WAD if position.side == winning_side else 0)
        for p, position in before.items()
    }
    reasons_seen = set()
    for position_id, position in before.items():
        payout, cost = expected_payout[position_id], position.cost_units
        assert ledger.balance_of(position.owner) == balances_before[position.owner] + payout
        settled = position_of(ledger, position_id)
        assert settled.status == "settled"
        assert settled.payout_units == payout
        assert settled.realized_pnl_units == payout - cost
        credits = settlement_credits(ledger, position.owner)
        if payout == 0:
            assert credits == []  # a loser's cost already sits in the pool: no movement, the Settled event says so
        else:
            (credit,) = credits
            assert credit.amount_units == payout
            assert credit.counterparty == POOL
            assert credit.reason == ("settlement:profit" if payout > cost else "settlement:loss")
            assert credit.refs == {"artifact": ART, "position": position_id, "transition": "1"}
            reasons_seen.add(credit.reason)
    # The scenario is built so that one winner profits and one winner loses.
    assert reasons_seen == {"settlement:profit", "settlement:loss"}
    # The statement projection shows the same line with its running balance.
    bob_lines = [line for line in statement_lines(ledger, "bob") if line.reason.startswith("settlement:")]
    bob_payouts = [payout for pid, payout in expected_payout.items() if before[pid].owner == "bob" and payout]
    assert [line.delta_units for line in bob_lines] == bob_payouts

    total_paid = sum(expected_payout.values())
    tax = pool_before - total_paid
    assert tax > 0
    assert result["paid_units"] == str(total_paid)
    assert result["tax_units"] == str(tax)
    assert result["positions"] == len(trades)
    (tax_debit,) = [event for event in movements(ledger, POOL) if event.reason == "amm:tax"]
    assert isinstance(tax_debit, Account.Debited)
    assert (tax_debit.amount_units, tax_debit.counterparty) == (tax, TREASURY)
    assert tax_debit.refs == {"artifact": ART, "transition": "1"}
    # No subsidy was needed at settlement: only the listing's.
    assert [e.reason for e in movements(ledger, POOL) if e.reason == "amm:subsidy"] == ["amm:subsidy"]
    artifact = ledger.get_artifact(ART)
    assert artifact.state == state
    assert (artifact.q_long, artifact.q_short) == (0, 0)  # every share went back to the pool
    (transitioned,) = transitions(ledger)
    assert (transitioned.from_state, transitioned.to_state, transitioned.actor, transitioned.reason) == (
        "listed",
        state,
        "reviewer",
        "replicated",
    )
    assert transitioned.price_long_wad == s
    # Long profits + short profits − losses = subsidy − tax, to the unit.
    assert sum(p - before[pid].cost_units for pid, p in expected_payout.items()) == net_subsidy_from_pool(ledger)
    assert_settled_market_balances(ledger)


def test_flagged_then_listed_then_validated_when_longs_and_shorts_then_partial_now_rest_at_validation(ledger):
    open_funded(ledger, *AGENTS)
    list_market(ledger)
    long_id, short_id = trade(ledger, [("alice", "long", 61), ("bob", "short", 33)])
    long_before, short_before = position_of(ledger, long_id), position_of(ledger, short_id)
    q_long_before = ledger.get_artifact(ART).q_long
    alice_before, bob_before = ledger.balance_of("alice"), ledger.balance_of("bob")

    flagged = go(ledger, "flagged", reason="suspicious")

    # Long: cost//2 back now, keeps q − q//2 shares and cost − cost//2; the released shares leave the market.
    refund = long_before.cost_units // 2
    # Short: cost//4 as a bonus, keeps everything.
    bonus = short_before.cost_units // 4
    assert flagged["paid_units"] == str(refund + bonus)
    assert ledger.balance_of("alice") == alice_before + refund
    assert ledger.balance_of("bob") == bob_before + bonus
    long_after, short_after = position_of(ledger, long_id), position_of(ledger, short_id)
    assert long_after.status == short_after.status == "partially_settled"
    assert long_after.quantity_units == long_before.quantity_units - long_before.quantity_units // 2
    assert long_after.cost_units == long_before.cost_units - refund
    assert long_after.realized_pnl_units == 0
    assert short_after.quantity_units == short_before.quantity_units
    assert short_after.cost_units == short_before.cost_units
    assert short_after.realized_pnl_units == bonus
    assert ledger.get_artifact(ART).q_long == q_long_before - long_before.quantity_units // 2
    for agent, position_id, amount in (("alice", long_id, refund), ("bob", short_id, bonus)):
        (credit,) = settlement_credits(ledger, agent)
        assert (credit.reason, credit.amount_units, credit.counterparty) == ("settlement:partial", amount, POOL)
        assert credit.refs == {"artifact": ART, "position": position_id, "transition": "1"}
    assert audit(ledger).clean

    ledger.transition_artifact(ART, "listed", reason="cleared")

    # Listed again: the positions are live, the market trades again.
    assert position_of(ledger, long_id).is_live and position_of(ledger, short_id).is_live
    assert ledger.get_artifact(ART).state == "listed"
    (carol_id,) = trade(ledger, [("carol", "long", 5)])
    s = VALIDATE_WAD
    carol_position = position_of(ledger, carol_id)
    alice_mid, bob_mid, carol_mid = (ledger.balance_of(a) for a in ("alice", "bob", "carol"))

    ledger.transition_artifact(ART, "validated", price_wad=s)

    alice_payout = long_after.quantity_units * s // WAD
    carol_payout = carol_position.quantity_units * s // WAD
    assert ledger.balance_of("alice") == alice_mid + alice_payout
    assert ledger.balance_of("bob") == bob_mid
    assert ledger.balance_of("carol") == carol_mid + carol_payout
    settled_long, settled_short = position_of(ledger, long_id), position_of(ledger, short_id)
    assert settled_long.status == settled_short.status == "settled"
    # Over both steps: alice got refund + payout for her original cost; bob got the bonus for his.
    assert settled_long.realized_pnl_units == refund + alice_payout - long_before.cost_units
    assert settled_short.realized_pnl_units == bonus - short_before.cost_units
    assert [e.to_state for e in transitions(ledger)] == ["flagged", "listed", "validated"]
    assert_settled_market_balances(ledger)


# Challenged: frozen -----------------------------------------------------------------------------


def test_challenged_when_closing_or_cancelling_then_frozen_error_and_nothing_written_until_listed_again(ledger, clock):
    open_funded(ledger, *AGENTS)
    list_market(ledger, min_hold_days=5)
    (position_id,) = trade(ledger, [("alice", "long", 50)])
    order_id = ledger.place_limit_order("carol", ART, "long", 20 * TOKEN, price("0.3"))["order"]
    clock.advance(days=6)  # past the hold period: only the challenge stands in the way

    result = ledger.transition_artifact(ART, "challenged", reason="debate opened")

    assert result["positions"] == 1
    assert position_of(ledger, position_id).status == "frozen"
    refusals = [
        lambda: ledger.close_position(position_id, agent="alice"),
        lambda: ledger.cancel_order(order_id, "carol"),
        lambda: ledger.open_position("bob", ART, "short", 10 * TOKEN),
        lambda: ledger.place_limit_order("bob", ART, "short", 10 * TOKEN, price("0.4")),
    ]
    for refuse in refusals:
        before = state_of(ledger)
        with pytest.raises(FrozenError) as raised:
            refuse()
        assert http_status_for(raised.value) == 409
        assert state_of(ledger) == before

    ledger.transition_artifact(ART, "listed", reason="debate closed")

    assert position_of(ledger, position_id).status == "open"
    alice_before = ledger.balance_of("alice")
    closed = ledger.close_position(position_id, agent="alice")
    assert position_of(ledger, position_id).status == "closed"
    assert ledger.balance_of("alice") == alice_before + int(closed["proceeds_units"])
    cancelled = ledger.cancel_order(order_id, "carol")
    assert cancelled["released_units"] == str(20 * TOKEN)
    assert ledger.balance_of("carol") == FUNDS_UNITS
    assert audit(ledger).clean


def test_close_when_listed_again_but_within_min_hold_days_then_hold_period_error_until_clock_passes_it(ledger, clock):
    open_funded(ledger, *AGENTS)
    list_market(ledger, min_hold_days=5)
    (position_id,) = trade(ledger, [("alice", "long", 50)])
    ledger.transition_artifact(ART, "challenged")
    ledger.transition_artifact(ART, "listed")
    clock.advance(days=5)  # exactly min_hold_days: not yet "longer than"
    before = state_of(ledger)
    with pytest.raises(HoldPeriodError):
        ledger.close_position(position_id, agent="alice")
    assert state_of(ledger) == before

    clock.advance(seconds=1)
    ledger.close_position(position_id, agent="alice")

    assert position_of(ledger, position_id).status == "closed"
    assert audit(ledger).clean


def test_resting_order_when_artifact_challenged_then_never_fills_and_terminal_settlement_releases_escrow(ledger):
    open_funded(ledger, *AGENTS)
    list_market(ledger)
    (alice_id,) = trade(ledger, [("alice", "long", 10)])
    order_id = ledger.place_limit_order("carol", ART, "long", 20 * TOKEN, price("0.45"))["order"]
    # Listed, bob's 50-token short would pull the long price well below carol's 0.45 and fill her order.
    assert int(ledger.quote(ART, "short", tokens_units=50 * TOKEN)["price_long_after_wad"]) < price("0.45")
    assert ledger.balance_of(ESCROW) == 20 * TOKEN

    ledger.transition_artifact(ART, "challenged")
    before = state_of(ledger)
    with pytest.raises(FrozenError):
        ledger.open_position("bob", ART, "short", 50 * TOKEN)
    assert state_of(ledger) == before
    artifact = ledger.get_artifact(ART)
    assert artifact.order_status[order_id] == "open"
    assert artifact.orders[order_id]["remaining_units"] == 20 * TOKEN
    assert artifact.position_ids == [alice_id]

    result = go(ledger, "deprecated")

    artifact = ledger.get_artifact(ART)
    assert artifact.orders == {}
    assert artifact.order_status[order_id] == "settled"
    assert artifact.position_ids == [alice_id]  # the order never filled
    assert ledger.balance_of(ESCROW) == 0
    assert ledger.balance_of("carol") == FUNDS_UNITS
    (release,) = [event for event in movements(ledger, "carol") if event.reason == "order:release"]
    assert (release.amount_units, release.counterparty) == (20 * TOKEN, ESCROW)
    assert release.refs == {"artifact": ART, "order": order_id}
    assert position_of(ledger, alice_id).status == "settled"  # the frozen position settled too
    assert result["from"] == "challenged"
    assert_settled_market_balances(ledger)


# Refused transitions ----------------------------------------------------------------------------

REFUSED_TRANSITIONS = [
    # (case, states reached first, the refused call, error). The refused calls give prices that meet
    # the thresholds, and the lifecycle refuses them anyway; without a price the lifecycle is asked
    # first too (a settled market's average, 0.5, would miss every threshold).
    ("validated then deprecated", ["validated"], lambda l: go(l, "deprecated"), StateError),
    ("validated then validated", ["validated"], lambda l: go(l, "validated"), StateError),
    ("deprecated then validated", ["deprecated"], lambda l: go(l, "validated"), StateError),
    ("validated then listed", ["validated"], lambda l: go(l, "listed"), StateError),
    ("validated then flagged", ["validated"], lambda l: go(l, "flagged"), StateError),
    (
        "validated then deprecated, no price",
        ["validated"],
        lambda l: l.transition_artifact(ART, "deprecated"),
        StateError,
    ),
    ("listed then listed", [], lambda l: go(l, "listed"), StateError),
    ("flagged then flagged", ["flagged"], lambda l: go(l, "flagged"), StateError),
    ("flagged then flagged, no price", ["flagged"], lambda l: l.transition_artifact(ART, "flagged"), StateError),
    ("challenged then challenged", ["challenged"], lambda l: go(l, "challenged"), StateError),
    ("unknown state", [], lambda l: go(l, "archived"), InvalidInputError),
    ("unknown artifact", [], lambda l: go(l, "validated", "NOPE"), UnknownArtifactError),
    ("price zero", [], lambda l: l.transition_artifact(ART, "validated", price_wad=0), InvalidAmountError),
    ("price one", [], lambda l: l.transition_artifact(ART, "validated", price_wad=WAD), InvalidAmountError),
    ("price not int", [], lambda l: l.transition_artifact(ART, "validated", price_wad=0.5), InvalidAmountError),
    ("reason too long", [], lambda l: go(l, "flagged", reason="x" * 501), InvalidInputError),
    (
        "settle_artifact alias, terminal",
        ["deprecated"],
        lambda l: l.settle_artifact(ART, "validated", price_wad=VALIDATE_WAD),
        StateError,
    ),
]


@pytest.mark.parametrize(
    ("case", "path", "refused", "error"), REFUSED_TRANSITIONS, ids=[row[0] for row in REFUSED_TRANSITIONS]
)
def test_transition_when_not_allowed_then_error_and_nothing_written(ledger, case, path, refused, error):
    open_funded(ledger, *AGENTS)
    list_market(ledger)
    trade(ledger, [("alice", "long", 20), ("bob", "short", 10)])
    ledger.place_limit_order("carol", ART, "long", 5 * TOKEN, price("0.2"))
    for state in path:
        go(ledger, state)
    before = state_of(ledger)
    with pytest.raises(error) as raised:
        refused(ledger)
    assert not isinstance(raised.value, ThresholdNotMetError)  # the lifecycle, not the price, refuses these
    assert state_of(ledger) == before
    assert audit(ledger).clean


# Idempotency ------------------------------------------------------------------------------------


def test_transition_when_repeated_with_same_command_id_then_first_result_and_nothing_new_written(ledger):
    open_funded(ledger, *AGENTS)
    list_market(ledger)
    trade(ledger, [("alice", "long", 20), ("bob", "short", 10)])
    flagged = go(ledger, "flagged", command_id="flag-1")
    after_flag = state_of(ledger)
    assert go(ledger, "flagged", command_id="flag-1") == flagged
    assert state_of(ledger) == after_flag  # no second refund, no second bonus

    validated = go(ledger, "validated", command_id="settle-1")
    after_first = state_of(ledger)

    again = go(ledger, "validated", command_id="settle-1")

    assert again == validated
    assert state_of(ledger) == after_first
    assert_settled_market_balances(ledger)


def test_transition_when_command_id_reused_for_other_state_then_conflict_and_nothing_written(ledger):
    open_funded(ledger, *AGENTS)
    list_market(ledger)
    trade(ledger, [("alice", "long", 20), ("bob", "short", 10)])
    go(ledger, "flagged", command_id="t-1")
    before = state_of(ledger)
    with pytest.raises(CommandConflictError):
        go(ledger, "validated", command_id="t-1")
    assert state_of(ledger) == before
    with pytest.raises(CommandConflictError):
        ledger.transition_artifact(ART, "flagged", price_wad=price("0.1"), command_id="t-1")
    assert state_of(ledger) == before


# The settlement price ---------------------------------------------------------------------------


def test_validated_when_price_given_then_positions_settle_at_it_not_at_the_pool_price(ledger):
    open_funded(ledger, *AGENTS)
    list_market(ledger)
    long_id, short_id = trade(ledger, [("alice", "long", 30), ("bob", "short", 10)])
    given = price("0.8")
    assert ledger.get_artifact(ART).price_long_wad != given
    quantity = position_of(ledger, long_id).quantity_units
    alice_before = ledger.balance_of("alice")

    result = ledger.transition_artifact(ART, "validated", price_wad=given)

    assert result["price_long_wad"] == str(given)
    assert ledger.balance_of("alice") == alice_before + quantity * given // WAD
    (transitioned,) = transitions(ledger)
    assert transitioned.price_long_wad == given
    settled = [e for e in ledger.events.get(position_uuid(long_id)) if isinstance(e, Position.Settled)]
    assert [e.settlement_price_wad for e in settled] == [given]
    assert ledger.get_artifact(ART).settlement_price_wad == given
    assert_settled_market_balances(ledger)


def test_deprecated_when_no_price_given_then_positions_settle_at_the_window_average_of_p_long(ledger, clock):
    # Listed at 0.5; a day later bob's short takes p(long) near 0.06; four days later alice's long lifts
    # it a little; four days after that the 7-day window starts two days after bob's trade, so the
    # listing's 0.5 has left it: bob's price holds for 3 days of it, alice's for 4.
    open_funded(ledger, *AGENTS)
    list_market(ledger)
    clock.advance(days=1)
    (short_id,) = trade(ledger, [("bob", "short", 210)])
    clock.advance(days=4)
    (long_id,) = trade(ledger, [("alice", "long", 3)])
    clock.advance(days=4)
    bob_trade, alice_trade = traded(ledger)
    day = 86_400 * 10**6
    now = micros_of(clock.now())
    assert micros_of(alice_trade.timestamp) - micros_of(bob_trade.timestamp) == 4 * day
    assert now - micros_of(alice_trade.timestamp) == 4 * day
    average = (bob_trade.price_long_wad * 3 * day + alice_trade.price_long_wad * 4 * day) // (7 * day)
    assert average <= price("0.1")  # it meets deprecated's bound
    assert average != ledger.get_artifact(ART).price_long_wad
    quantity = position_of(ledger, short_id).quantity_units
    bob_before, alice_before = ledger.balance_of("bob"), ledger.balance_of("alice")

    result = ledger.settle_artifact(ART, "deprecated")

    assert result["price_long_wad"] == result["window_average_wad"] == str(average)
    assert ledger.balance_of("bob") == bob_before + quantity * (WAD - average) // WAD
    assert ledger.balance_of("alice") == alice_before
    (transitioned,) = transitions(ledger)
    assert transitioned.price_long_wad == transitioned.window_average_wad == average
    assert ledger.get_artifact(ART).settlement_price_wad == average
    assert position_of(ledger, long_id).status == "settled"
    assert_settled_market_balances(ledger)


def test_validated_when_price_given_then_the_window_average_is_recorded_beside_it(ledger, clock):
    open_funded(ledger, *AGENTS)
    list_market(ledger)
    clock.advance(days=2)
    trade(ledger, [("alice", "long", 30)])
    clock.advance(days=1)
    (alice_trade,) = traded(ledger)
    # Listed at 0.5 two days before alice's trade; the market is 3 days old, younger than its window.
    average = (HALF_WAD * 2 + alice_trade.price_long_wad * 1) // 3

    result = ledger.transition_artifact(ART, "validated", price_wad=VALIDATE_WAD)

    assert (result["price_long_wad"], result["window_average_wad"]) == (str(VALIDATE_WAD), str(average))
    (transitioned,) = transitions(ledger)
    assert (transitioned.price_long_wad, transitioned.window_average_wad) == (VALIDATE_WAD, average)
    assert_settled_market_balances(ledger)


# Shortfall --------------------------------------------------------------------------------------


def test_deprecated_after_flagged_when_pool_cannot_cover_payout_then_treasury_mints_shortfall_as_subsidy(ledger):
    # An LMSR pool alone always covers a terminal payout: it has collected C(q) ≥ max(q) ≥ q·s.
    # A flag breaks that: the short's 25% bonus leaves the pool while all its shares stay. With
    # b = 1 token, a 500-token short holds ~500.69 shares; after the 125-token bonus the pool
    # holds ~375.69 tokens, and deprecating at s = 10**-6 owes ~500.69: the pool is short ~125.
    open_funded(ledger, *AGENTS)
    list_market(ledger, liquidity_units=1 * TOKEN)
    (short_id,) = trade(ledger, [("bob", "short", 500)])
    ledger.transition_artifact(ART, "flagged")
    quantity = position_of(ledger, short_id).quantity_units
    pool_before = ledger.balance_of(POOL)
    supply_before = ledger.total_supply()
    s = 10**12  # 0.000001
    payout = quantity * (WAD - s) // WAD
    shortfall = payout - pool_before
    assert shortfall > 100 * TOKEN

    result = ledger.transition_artifact(ART, "deprecated", price_wad=s)

    assert result["paid_units"] == str(payout)
    assert result["tax_units"] == "0"
    subsidies = [e for e in movements(ledger, POOL) if e.reason == "amm:subsidy"]
    assert len(subsidies) == 2  # the listing's, then the shortfall's
    minted = subsidies[-1]
    assert isinstance(minted, Account.Credited)
    assert (minted.amount_units, minted.counterparty) == (shortfall, TREASURY)
    assert minted.refs == {"artifact": ART, "transition": "2"}
    assert not [e for e in movements(ledger, POOL) if e.reason == "amm:tax"]
    assert ledger.total_supply() == supply_before + shortfall
    assert_settled_market_balances(ledger)


def test_close_after_flagged_when_pool_short_of_proceeds_then_shortfall_minted_and_close_succeeds(ledger):
    # b = 1 token, listing subsidy b·ln 2 = 693,147 units. alice's 3-token short buys 3,667,938 shares;
    # the pool holds 3,693,147. The flag pays her 3,000,000 // 4 = 750,000 as a bonus and takes no
    # shares back: the pool holds 2,943,148. Selling all her shares back to the LMSR returns what they
    # cost, 2,999,999 (rounded down): 56,851 more than the pool holds. The pool is the counterparty,
    # so the shortfall is minted into it (amm:subsidy), as for a settlement payout, and the close goes through.
    open_funded(ledger, *AGENTS)
    list_market(ledger, liquidity_units=1 * TOKEN)
    (short_id,) = trade(ledger, [("alice", "short", 3)])
    go(ledger, "flagged")
    assert ledger.balance_of(POOL) == 2_943_148
    alice_before = ledger.balance_of("alice")

    closed = ledger.close_position(short_id, agent="alice")

    assert closed["proceeds_units"] == "2999999"
    assert ledger.balance_of("alice") == alice_before + 2_999_999
    assert position_of(ledger, short_id).status == "closed"
    minted = [e for e in movements(ledger, POOL) if e.reason == "amm:subsidy"][1:]
    assert [e.amount_units for e in minted] == [2_999_999 - 2_943_148]
    assert audit(ledger).clean
    go(ledger, "deprecated")
    assert_settled_market_balances(ledger)


# Bounties ---------------------------------------------------------------------------------------


def test_bounty_when_posted_then_escrowed_and_when_distributed_by_weight_then_13_1_1(ledger):
    open_funded(ledger, *AGENTS)
    list_market(ledger)
    alice_before = ledger.balance_of("alice")

    posted = ledger.post_bounty(ART, "alice", 15)

    bounty_id = posted["bounty"]
    escrow = bounty_escrow_account_id(bounty_id)
    assert bounty_id == f"{ART}/b1"
    assert ledger.balance_of("alice") == alice_before - 15
    assert ledger.balance_of(escrow) == 15
    (fund,) = movements(ledger, escrow)
    assert (fund.reason, fund.counterparty) == ("bounty:fund", "alice")
    assert fund.refs == {"artifact": ART, "bounty": bounty_id}
    balances_before = {agent: ledger.balance_of(agent) for agent in ("bob", "carol", "dave")}

    # 15 split 4/5, 2/25, 3/25: floors 12, 1 (1.2) and 1 (1.8) make 14; the leftover unit goes to
    # the first claimant in the declared order: 13, 1, 1.
    result = ledger.distribute_bounty(
        bounty_id, [("bob", Fraction(4, 5)), ("carol", Fraction(2, 25)), ("dave", Fraction(3, 25))]
    )

    assert result["shares"] == {"bob": "13", "carol": "1", "dave": "1"}
    for agent, share in (("bob", 13), ("carol", 1), ("dave", 1)):
        assert ledger.balance_of(agent) == balances_before[agent] + share
        (payout,) = [e for e in movements(ledger, agent) if e.reason == "bounty:payout"]
        assert (payout.amount_units, payout.counterparty) == (share, escrow)
        assert payout.refs == {"artifact": ART, "bounty": bounty_id}
    assert ledger.balance_of(escrow) == 0
    assert ledger.get_artifact(ART).bounties[bounty_id]["status"] == "distributed"
    assert audit(ledger).clean


def test_bounty_when_refunded_then_sponsor_gets_the_escrow_back(ledger):
    open_funded(ledger, *AGENTS)
    list_market(ledger)
    bounty_id = ledger.post_bounty(ART, "carol", 40 * TOKEN)["bounty"]
    assert ledger.balance_of("carol") == FUNDS_UNITS - 40 * TOKEN

    result = ledger.refund_bounty(bounty_id)

    assert result == {"bounty": bounty_id, "refunded_units": str(40 * TOKEN), "sponsor": "carol"}
    assert ledger.balance_of("carol") == FUNDS_UNITS
    assert ledger.balance_of(bounty_escrow_account_id(bounty_id)) == 0
    (refund,) = [e for e in movements(ledger, "carol") if e.reason == "bounty:refund"]
    assert refund.amount_units == 40 * TOKEN
    assert ledger.get_artifact(ART).bounties[bounty_id]["status"] == "refunded"
    assert audit(ledger).clean


THIRDS = [("bob", Fraction(1, 3)), ("carol", Fraction(1, 3)), ("dave", Fraction(1, 3))]
BOUNTY_REFUSALS = [
    ("distribute twice", lambda l: l.distribute_bounty(f"{ART}/b1", THIRDS), StateError),
    ("refund after distribution", lambda l: l.refund_bounty(f"{ART}/b1"), StateError),
    ("distribute after refund", lambda l: l.distribute_bounty(f"{ART}/b2", THIRDS), StateError),
    ("refund twice", lambda l: l.refund_bounty(f"{ART}/b2"), StateError),
    ("unknown bounty", lambda l: l.distribute_bounty(f"{ART}/b9", THIRDS), UnknownBountyError),
    ("refund unknown bounty", lambda l: l.refund_bounty(f"{ART}/b9"), UnknownBountyError),
    ("bounty of unknown artifact", lambda l: l.refund_bounty("NOPE/b1"), UnknownArtifactError),
    ("malformed bounty id", lambda l: l.refund_bounty("b1"), InvalidInputError),
    ("unknown claimant", lambda l: l.distribute_bounty(f"{ART}/b3", [("zed", Fraction(1))]), UnknownAccountError),
    ("duplicate claimant", lambda l: l.distribute_bounty(f"{ART}/b3", [("bob", 1), ("bob", 1)]), InvalidInputError),
    ("no claimants", lambda l: l.distribute_bounty(f"{ART}/b3", []), InvalidInputError),
    ("negative weight", lambda l: l.distribute_bounty(f"{ART}/b3", [("bob", Fraction(-1))]), InvalidAmountError),
    ("weights sum to zero", lambda l: l.distribute_bounty(f"{ART}/b3", [("bob", Fraction(0))]), InvalidAmountError),
    ("post more than held", lambda l: l.post_bounty(ART, "dave", FUNDS_UNITS + 1), InsufficientFundsError),
    ("post zero", lambda l: l.post_bounty(ART, "dave", 0), InvalidAmountError),
    ("post on unknown artifact", lambda l: l.post_bounty("NOPE", "dave", 5), UnknownArtifactError),
    ("post by unknown sponsor", lambda l: l.post_bounty(ART, "zed", 5), UnknownAccountError),
]


@pytest.mark.parametrize(("case", "refused", "error"), BOUNTY_REFUSALS, ids=[row[0] for row in BOUNTY_REFUSALS])
def test_bounty_when_refused_then_error_and_nothing_written(ledger, case, refused, error):
    open_funded(ledger, *AGENTS)
    list_market(ledger)
    first = ledger.post_bounty(ART, "alice", 15)["bounty"]
    ledger.distribute_bounty(first, [("bob", Fraction(4, 5)), ("carol", Fraction(1, 5))])
    refunded = ledger.post_bounty(ART, "alice", 20)["bounty"]
    ledger.refund_bounty(refunded)
    still_open = ledger.post_bounty(ART, "alice", 30)["bounty"]
    assert (first, refunded, still_open) == (f"{ART}/b1", f"{ART}/b2", f"{ART}/b3")
    escrows = tuple(bounty_escrow_account_id(b) for b in (first, refunded, still_open))
    before = state_of(ledger, extra_accounts=escrows)
    with pytest.raises(error):
        refused(ledger)
    assert state_of(ledger, extra_accounts=escrows) == before


# Reputation -------------------------------------------------------------------------------------


def test_validated_when_predictions_right_or_wrong_then_believability_moves_and_names_its_settlement(ledger):
    open_funded(ledger, *AGENTS)
    list_market(ledger, rules=NEAR_EVEN)
    position_ids = trade(ledger, VALIDATED_TRADES)
    owners = {position_of(ledger, p).owner: p for p in position_ids}
    costs = {agent: position_of(ledger, p).cost_units for agent, p in owners.items()}
    assert all(believability(ledger, agent) is None for agent in AGENTS)  # nobody has predicted yet

    ledger.transition_artifact(ART, "validated", price_wad=ledger.get_artifact(ART).price_long_wad)

    # bob's long paid more than it cost: correct, above 0.5. carol's and dave's shorts: wrong, below 0.5.
    assert believability(ledger, "bob") > HALF_WAD
    assert believability(ledger, "carol") < HALF_WAD
    assert believability(ledger, "dave") < HALF_WAD
    # alice's long (bought dear, so a loss) with a stake of exactly the 100-token reference:
    # w = 100/(100 + 100) = 0.5, b' = 0.5 + 0.2·0.5·(0 − 0.5) = 0.45.
    assert costs["alice"] == 100 * TOKEN
    assert believability(ledger, "alice") == price("0.45")
    # A bigger wrong stake moves further: carol staked 60 tokens, dave 10.
    assert believability(ledger, "carol") < believability(ledger, "dave")
    for agent, position_id in owners.items():
        adjusted = [e for e in ledger.events.get(reputation_uuid(agent)) if isinstance(e, Reputation.Adjusted)]
        assert len(adjusted) == 1
        (event,) = adjusted
        assert (event.position_id, event.artifact_id, event.transition) == (position_id, ART, 1)
        assert event.correct is (agent == "bob")
        assert event.stake_units == costs[agent]
        assert (event.before_wad, event.after_wad) == (HALF_WAD, believability(ledger, agent))


def test_flagged_when_positions_partially_settle_then_reputation_does_not_move(ledger):
    open_funded(ledger, *AGENTS)
    list_market(ledger)
    trade(ledger, [("alice", "long", 20), ("bob", "short", 10)])
    go(ledger, "flagged")
    assert believability(ledger, "alice") is None
    assert believability(ledger, "bob") is None
