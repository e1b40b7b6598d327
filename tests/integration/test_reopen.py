"""Correcting a wrong resolution: `reopen` within the market's correction window writes reversing
events for every settlement, payout, reputation change, tax and subsidy of the terminal
transition, puts back the orders it released, and returns the market to the state it had
before. On memory, SQLite and PostgreSQL.

"Exactly as before" is checked on every table of every view, split two ways:
- state tables (one row per account, market, position, agent, order) must hold the same rows,
  apart from the columns that count or locate events seen (``BOOKKEEPING``): a reopen is
  itself an event, so "last updated at log position P" and "lines seen" move on;
- history tables (statement lines, settlement rows, reputation changes, inbox messages) keep
  every row they had, and the rows the resolution and its reopen added net to zero.
"""

from __future__ import annotations

from typing import Any

import pytest

from stakeledger.domain.errors import (
    CorrectionWindowClosedError,
    InvalidInputError,
    ReversalNotCoveredError,
    StateError,
)
from stakeledger.domain.model.accounts import TREASURY
from stakeledger.domain.rules.settlement import REPUTATION_START_WAD
from stakeledger.domain.service.application import StakeLedger
from stakeledger.domain.service.clock import ManualClock
from stakeledger.domain.vocabulary import WAD
from stakeledger.projections.audit import audit
from stakeledger.projections.replay_check import view_contents
from stakeledger.projections.runner import Runner
from stakeledger.projections.store import ViewStore, open_store
from stakeledger.projections.views import ALL_VIEWS
from tests.conftest import stored_event_count
from tests.integration.test_settlement import (
    AGENTS,
    ART,
    ESCROW,
    NEAR_EVEN,
    POOL,
    TOKEN,
    balance_or_zero,
    believability,
    list_market,
    open_funded,
    position_of,
    trade,
)

HOUR = 3_600
HISTORY_TABLES = {"statement_lines", "settlements", "reputation_history", "inbox_messages", "portfolio_risk_events"}
# Columns that say which event last touched a row or how many it has seen, not what it holds.
BOOKKEEPING = {"updated_position", "last_position", "lines", "updated_at", "transitions", "transition"}
# The views whose modules fold the reversing events (the others are reported, see views_restored).
RESTORED_VIEWS = ("statements", "markets", "portfolio", "settlements", "reputation", "inbox")

RESOLUTIONS = [
    ("validated", 8 * WAD // 10),
    ("deprecated", 5 * WAD // 100),
    ("invalid", None),
]


def balances(ledger: StakeLedger) -> dict[str, int]:
    accounts = [*AGENTS, TREASURY, POOL, ESCROW, f"pool:{ART}"]
    return {account: balance_or_zero(ledger, account) for account in accounts}


def reputations(ledger: StakeLedger) -> dict[str, int]:
    """Each agent's believability; one never scored reads as the starting 0.5, as the reputation
    query says (a reopen cannot un-create the aggregate its resolution started, only zero it)."""
    return {agent: believability(ledger, agent) or REPUTATION_START_WAD for agent in AGENTS}


def snapshot(ledger: StakeLedger, store: ViewStore) -> dict[str, dict[tuple[Any, ...], dict[str, Any]]]:
    """Every table of every view, as rows keyed by primary key (column name -> value)."""
    Runner(ledger, store, page_size=7).catch_up()
    contents = view_contents(store)
    tables = {table.name: table for view in ALL_VIEWS for table in view.tables}
    return {
        name: {key: dict(zip(tables[name].column_names, row, strict=True)) for key, row in rows.items()}
        for name, rows in contents.items()
    }


def state_of_table(rows: dict[tuple[Any, ...], dict[str, Any]]) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {key: {c: v for c, v in row.items() if c not in BOOKKEEPING} for key, row in rows.items()}


def assert_views_restored(before: dict, after: dict, views: tuple[str, ...]) -> None:
    names = {table.name for view in ALL_VIEWS if view.name in views for table in view.tables}
    for name in sorted(names):
        if name in HISTORY_TABLES:
            kept = {key: row for key, row in after[name].items() if key in before[name]}
            assert kept == before[name], f"{name}: a row it had changed"
            added = [row for key, row in after[name].items() if key not in before[name]]
            for column in ("delta_units", "payout_units", "pnl_units"):
                if added and column in added[0]:
                    assert sum(int(row[column] or 0) for row in added) == 0, f"{name}.{column} does not net out"
            if name == "reputation_history":
                # Each change the resolution made is taken back, step for step.
                steps = sum(int(row["after_wad"]) - int(row["before_wad"]) for row in added)
                assert steps == 0 and sum(row["reverted"] for row in added) == len(added) // 2
        elif name == "reputation_agents":
            started = {
                key: row
                for key, row in after[name].items()
                if key not in before[name]
                and tuple(int(row[c]) for c in ("believability_wad", "predictions", "correct"))
                == (REPUTATION_START_WAD, 0, 0)
            }
            kept = {key: row for key, row in after[name].items() if key not in started}
            assert state_of_table(kept) == state_of_table(before[name]), f"{name} differs"
        else:
            assert state_of_table(after[name]) == state_of_table(before[name]), f"{name} differs"


def build_market(ledger: StakeLedger, clock: ManualClock) -> list[str]:
    """Longs and shorts, a flag that settles them partly, a resting order, and a challenge."""
    open_funded(ledger, *AGENTS)
    list_market(ledger, rules=NEAR_EVEN)
    clock.advance(seconds=1 * HOUR)
    ids = trade(ledger, [("alice", "long", 60), ("bob", "short", 25), ("carol", "long", 7), ("dave", "short", 30)])
    clock.advance(seconds=1 * HOUR)
    ledger.transition_artifact(ART, "flagged", price_wad=3 * WAD // 10)  # first partial settlement
    ledger.transition_artifact(ART, "listed")
    ledger.place_limit_order("carol", ART, "short", 4 * TOKEN, WAD // 10)  # rests: the short costs more
    ids += trade(ledger, [("dave", "long", 12)])
    clock.advance(seconds=1 * HOUR)
    return ids


@pytest.mark.parametrize(("to_state", "price_wad"), RESOLUTIONS, ids=[r[0] for r in RESOLUTIONS])
@pytest.mark.parametrize("challenged_first", [False, True], ids=["from-listed", "from-challenged"])
def test_reopen_when_within_the_window_then_balances_positions_views_and_reputation_are_as_before(
    ledger: StakeLedger, clock: ManualClock, to_state, price_wad, challenged_first
):
    ids = build_market(ledger, clock)
    if challenged_first:
        ledger.transition_artifact(ART, "challenged", reason="disputed")
    store = open_store(ledger)
    try:
        before_views = snapshot(ledger, store)
        before_balances = balances(ledger)
        before_positions = {i: vars(position_of(ledger, i)).copy() for i in ids}
        before_reputation = reputations(ledger)
        before_state = ledger.get_artifact(ART).state
        before_orders = dict(ledger.get_artifact(ART).orders)
        before_quote = ledger.get_artifact(ART).prices()

        resolved = ledger.transition_artifact(ART, to_state, price_wad=price_wad, reason="oracle said so")
        assert balances(ledger) != before_balances  # the resolution moved money
        assert ledger.get_artifact(ART).orders == {}
        clock.advance(seconds=23 * HOUR)

        result = ledger.reopen_artifact(ART, reason="the oracle was wrong", actor="ops")

        assert (result["from"], result["to"], result["reverses"]) == (to_state, before_state, resolved["transition"])
        assert result["payouts_reversed_units"] == resolved["paid_units"]
        assert result["tax_reversed_units"] == resolved["tax_units"]
        assert result["subsidy_reversed_units"] == resolved["subsidy_units"]
        assert balances(ledger) == before_balances
        artifact = ledger.get_artifact(ART)
        assert (artifact.state, artifact.settlement_price_wad) == (before_state, None)
        assert artifact.prices() == before_quote and artifact.orders == before_orders
        for position_id, was in before_positions.items():
            now = vars(position_of(ledger, position_id))
            for field in ("status", "status_before_freeze", "quantity_units", "cost_units", "realized_pnl_units"):
                assert now[field] == was[field], (position_id, field)
            assert (now["payout_units"], now["closed_at"]) == (was["payout_units"], was["closed_at"])
        assert reputations(ledger) == before_reputation
        assert_views_restored(before_views, snapshot(ledger, store), RESTORED_VIEWS)
        report = audit(ledger)
        assert report.clean, report.violations
        # Both stay in the log: the resolution's events, then the reversal's.
        topics = [type(e).__name__ for e in ledger.events.get(artifact.id)]
        assert topics[-1] == "ResolutionReversed" and "ResolutionBooked" in topics
    finally:
        store.close()


def test_reopen_when_trading_resumes_then_the_market_trades_and_resolves_again_with_a_clean_audit(
    ledger: StakeLedger, clock: ManualClock
):
    build_market(ledger, clock)
    ledger.transition_artifact(ART, "validated", price_wad=8 * WAD // 10)
    ledger.reopen_artifact(ART, reason="premature")
    clock.advance(seconds=1 * HOUR)

    extra = trade(ledger, [("bob", "short", 9)])
    assert position_of(ledger, extra[0]).status == "open"
    final = ledger.transition_artifact(ART, "deprecated", price_wad=WAD // 20)

    assert final["from"] == "listed" and int(final["positions"]) == 6
    assert balance_or_zero(ledger, POOL) == 0
    report = audit(ledger)
    assert report.clean, report.violations
    # A second resolution can be corrected too.
    ledger.reopen_artifact(ART, reason="again wrong")
    assert ledger.get_artifact(ART).state == "listed"
    assert audit(ledger).clean


def test_reopen_when_a_payout_was_spent_then_it_is_refused_naming_the_accounts_and_nothing_is_written(
    ledger: StakeLedger, clock: ManualClock
):
    build_market(ledger, clock)
    ledger.transition_artifact(ART, "validated", price_wad=8 * WAD // 10)
    for spender in ("alice", "carol"):  # both longs were paid; both spend everything
        ledger.transfer(spender, "bob", ledger.balance_of(spender))
    events = stored_event_count(ledger)

    with pytest.raises(ReversalNotCoveredError) as refused:
        ledger.reopen_artifact(ART, reason="wrong")

    assert refused.value.code == "REVERSAL_NOT_COVERED"
    message = str(refused.value)
    assert "alice holds 0 tokens" in message and "carol holds 0 tokens" in message
    assert "bob" not in message and "dave" not in message
    assert stored_event_count(ledger) == events
    assert ledger.get_artifact(ART).state == "validated"


def test_reopen_when_past_the_window_then_refused_with_a_stable_code_and_nothing_written(
    ledger: StakeLedger, clock: ManualClock
):
    open_funded(ledger, *AGENTS)
    list_market(ledger, rules=NEAR_EVEN.__class__(**{**NEAR_EVEN.as_dict(), "correction_hours": 2}))
    trade(ledger, [("alice", "long", 30)])
    ledger.transition_artifact(ART, "validated", price_wad=8 * WAD // 10)
    clock.advance(seconds=7201)
    events = stored_event_count(ledger)

    with pytest.raises(CorrectionWindowClosedError) as refused:
        ledger.reopen_artifact(ART, reason="too late")

    assert refused.value.code == "CORRECTION_WINDOW_CLOSED" and "2-hour correction window" in str(refused.value)
    assert stored_event_count(ledger) == events


def test_reopen_when_exactly_at_the_end_of_the_window_then_allowed(ledger: StakeLedger, clock: ManualClock):
    open_funded(ledger, *AGENTS)
    list_market(ledger)
    trade(ledger, [("alice", "long", 30)])
    ledger.transition_artifact(ART, "validated", price_wad=8 * WAD // 10)
    clock.advance(seconds=24 * HOUR)
    assert ledger.reopen_artifact(ART, reason="just in time")["to"] == "listed"


@pytest.mark.parametrize(
    ("setup", "error", "code"),
    [
        ("listed", StateError, "STATE_CONFLICT"),
        ("reopened", StateError, "STATE_CONFLICT"),
        ("zero-window", CorrectionWindowClosedError, "CORRECTION_WINDOW_CLOSED"),
    ],
)
def test_reopen_when_nothing_to_reopen_then_refused_and_nothing_written(
    ledger: StakeLedger, clock: ManualClock, setup, error, code
):
    open_funded(ledger, *AGENTS)
    hours = 0 if setup == "zero-window" else 24
    list_market(ledger, rules=NEAR_EVEN.__class__(**{**NEAR_EVEN.as_dict(), "correction_hours": hours}))
    trade(ledger, [("alice", "long", 30)])
    if setup != "listed":
        ledger.transition_artifact(ART, "validated", price_wad=8 * WAD // 10)
        clock.advance(seconds=1)
    if setup == "reopened":
        ledger.reopen_artifact(ART, reason="first")
    events = stored_event_count(ledger)
    with pytest.raises(error) as refused:
        ledger.reopen_artifact(ART, reason="again")
    assert refused.value.code == code
    assert stored_event_count(ledger) == events


@pytest.mark.parametrize("reason", ["", "   ", "x" * 501, 7])
def test_reopen_when_the_reason_is_missing_or_too_long_then_refused_before_anything_is_read(ledger, reason):
    events = stored_event_count(ledger)
    with pytest.raises(InvalidInputError):
        ledger.reopen_artifact(ART, reason=reason)
    assert stored_event_count(ledger) == events


def test_reopen_when_exported_then_verify_passes_and_an_import_replays_both_the_resolution_and_its_reversal(
    ledger: StakeLedger, clock: ManualClock, tmp_path
):
    from stakeledger.adapters.evm.export import export_ledger
    from stakeledger.adapters.evm.importer import import_export
    from stakeledger.adapters.evm.verification import verify_export
    from stakeledger.adapters.persistence.store_url import open_ledger

    build_market(ledger, clock)
    ledger.transition_artifact(ART, "validated", price_wad=8 * WAD // 10)
    ledger.reopen_artifact(ART, reason="the oracle was wrong")
    expected = balances(ledger)
    out = tmp_path / "export"

    export_ledger(ledger, out)

    verified = verify_export(out)
    assert verified.events_root
    exported = (out / "events.jsonl").read_text()
    for reason in ("settlement:profit", "amm:tax", "settlement:reversal", "amm:tax_reversal", "order:escrow"):
        assert f'"{reason}"' in exported, reason
    target = f"sqlite:///{tmp_path / 'imported.db'}"
    summary = import_export(out, target)
    assert summary.audit_clean is True
    imported = open_ledger(target)
    try:
        assert balances(imported) == expected
        artifact = imported.get_artifact(ART)
        assert artifact.state == "listed" and artifact.before_resolution is None
        names = [type(e).__name__ for e in imported.events.get(artifact.id)]
        assert names.count("Transitioned") == 3 and names[-1] == "ResolutionReversed"
    finally:
        imported.close()


def test_reopen_when_the_resolved_market_was_restored_from_a_snapshot_then_it_reverses_the_same(
    ledger: StakeLedger, clock: ManualClock
):
    from tests.integration.test_resolution import put_snapshot

    build_market(ledger, clock)
    before_orders = dict(ledger.get_artifact(ART).orders)
    before_balances = balances(ledger)
    ledger.transition_artifact(ART, "deprecated", price_wad=WAD // 20)
    resolved = ledger.get_artifact(ART)
    assert resolved.before_resolution is not None and resolved.before_resolution["orders"]
    put_snapshot(ledger, resolved, drop=())  # taken while resolved: the stash travels in the snapshot

    restored = ledger.get_artifact(ART)
    assert restored.before_resolution["booked"] is True
    ledger.reopen_artifact(ART, reason="wrong")

    artifact = ledger.get_artifact(ART)
    assert artifact.orders == before_orders and balances(ledger) == before_balances
    assert audit(ledger).clean
