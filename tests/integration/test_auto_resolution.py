"""Automatic resolution, opt-in per market: when the window's average meets a threshold at every
trade for the market's sustained period, the trade that completes the period also makes the
transition, in the same transaction; it depends only on recorded events and recorded time, so a
replay decides the same. On memory, SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.domain.decisions.settlement import AUTO_ACTOR
from stakeledger.domain.decisions.unit_of_work import replay
from stakeledger.domain.model.artifacts import Artifact, artifact_uuid
from stakeledger.domain.rules.resolution import DEFAULT_SUSTAINED_HOURS, ResolutionRules
from stakeledger.domain.service.application import StakeLedger
from stakeledger.domain.service.clock import ManualClock
from stakeledger.domain.service.ids import SeededIds
from stakeledger.projections.audit import audit
from tests.integration.test_settlement import AGENTS, ART, TOKEN, list_market, open_funded, position_of, trade

HOUR = 3_600
AUTO = ResolutionRules(window_days=1, auto_resolve=True, sustained_hours=6)


def topics(ledger: StakeLedger, artifact_id: str = ART) -> list[str]:
    return [type(event).__name__ for event in ledger.events.get(artifact_uuid(artifact_id))]


def drive(ledger: StakeLedger, clock: ManualClock, steps: list[tuple[int, str, str, int]]) -> list[str]:
    """(hours to wait, agent, side, tokens) per trade, until the market closes; the state of the
    market after each trade made."""
    states: list[str] = []
    for hours, agent, side, tokens in steps:
        if states and states[-1] not in ("listed", "flagged"):
            break
        clock.advance(seconds=hours * HOUR)
        ledger.open_position(agent, ART, side, tokens * TOKEN)
        states.append(ledger.get_artifact(ART).state)
    return states


def test_auto_when_the_average_stays_above_validated_for_the_sustained_period_then_the_trade_completing_it_validates(
    ledger: StakeLedger, clock: ManualClock
):
    open_funded(ledger, *AGENTS)
    list_market(ledger, rules=AUTO)
    clock.advance(seconds=HOUR)
    first = trade(ledger, [("alice", "long", 150)])[0]  # p(long) 0.89; the 1-day average catches up in hours
    artifact = ledger.get_artifact(ART)
    assert "validated" not in (artifact.since_beyond or {})  # the average is still below 0.7
    states = drive(ledger, clock, [(2, "bob", "long", 1)] * 6)
    artifact = ledger.get_artifact(ART)
    met_at = [i for i, s in enumerate(states) if s == "validated"]
    assert met_at, states
    # No transition before the period has passed, then exactly at the first trade after it.
    transition = next(e for e in ledger.events.get(artifact.id) if isinstance(e, Artifact.Transitioned))
    assert transition.actor == AUTO_ACTOR and transition.to_state == "validated"
    assert "for 6 hours" in transition.reason
    last_trade = [e for e in ledger.events.get(artifact.id) if isinstance(e, Artifact.Traded)][-1]
    assert last_trade.timestamp == transition.timestamp  # one command, one transaction
    assert transition.window_average_wad == transition.price_long_wad >= AUTO.validated_min_wad
    assert position_of(ledger, first).status == "settled"
    report = audit(ledger)
    assert report.clean, report.violations


def test_auto_when_the_average_dips_back_before_the_period_ends_then_the_clock_starts_again(
    ledger: StakeLedger, clock: ManualClock
):
    open_funded(ledger, *AGENTS)
    list_market(ledger, rules=AUTO)
    clock.advance(seconds=HOUR)
    trade(ledger, [("alice", "long", 150)])
    drive(ledger, clock, [(3, "bob", "long", 1)])
    since = ledger.get_artifact(ART).since_beyond["validated"]
    # A heavy short drags the price down; the average follows below 0.7 before 6 hours have passed.
    drive(ledger, clock, [(1, "bob", "short", 400), (2, "carol", "long", 1)])
    assert "validated" not in ledger.get_artifact(ART).since_beyond
    assert ledger.get_artifact(ART).state == "listed"
    assert since is not None


@pytest.mark.parametrize(
    ("short_tokens", "expected"),
    [(600, ["flagged", "deprecated"]), (60, ["flagged"])],
    ids=["below-0.1-flags-on-the-way-then-deprecates", "between-0.1-and-0.3-only-flags"],
)
def test_auto_when_the_average_stays_low_then_it_flags_and_deprecates_in_turn(
    ledger: StakeLedger, clock: ManualClock, short_tokens, expected
):
    open_funded(ledger, *AGENTS, amount_units=2_000 * TOKEN)
    list_market(ledger, rules=AUTO)
    clock.advance(seconds=HOUR)
    trade(ledger, [("alice", "short", short_tokens)])
    states = drive(ledger, clock, [(4, "bob", "short", 1)] * 12)
    # The average crosses 0.3 before 0.1: the flag's period ends first; a flagged market still trades.
    seen = [state for index, state in enumerate(states) if index == 0 or state != states[index - 1]]
    assert seen == ["listed", *expected], states
    transitions = [e for e in ledger.events.get(artifact_uuid(ART)) if isinstance(e, Artifact.Transitioned)]
    assert [t.to_state for t in transitions] == expected and {t.actor for t in transitions} == {AUTO_ACTOR}
    report = audit(ledger)
    assert report.clean, report.violations


def test_auto_when_the_market_did_not_opt_in_then_nothing_happens_by_itself(ledger: StakeLedger, clock: ManualClock):
    open_funded(ledger, *AGENTS)
    list_market(ledger, rules=ResolutionRules(window_days=1, sustained_hours=6))
    clock.advance(seconds=HOUR)
    trade(ledger, [("alice", "long", 150)])
    assert drive(ledger, clock, [(4, "bob", "long", 1)] * 8) == ["listed"] * 8
    assert "Transitioned" not in topics(ledger)


def test_auto_default_sustained_period_is_a_day():
    assert ResolutionRules().sustained_hours == DEFAULT_SUSTAINED_HOURS == 24
    assert ResolutionRules().auto_resolve is False


def run_script(store_url: str) -> tuple[StakeLedger, list[tuple[str, dict[str, Any]]]]:
    clock = ManualClock()
    ledger = open_ledger(store_url, clock=clock, new_id=SeededIds(11))
    ledger.initialise(decimals=6)
    open_funded(ledger, *AGENTS)
    list_market(ledger, rules=AUTO)
    clock.advance(seconds=HOUR)
    trade(ledger, [("alice", "long", 150)])
    drive(ledger, clock, [(2, "bob", "long", 1), (3, "carol", "short", 2), (2, "dave", "long", 1)] * 3)
    events = [(type(e).__name__, dict(e.__dict__)) for e in ledger.events.get(artifact_uuid(ART))]
    return ledger, events


def test_auto_when_replayed_then_the_same_events_give_the_same_state_and_the_same_decision(store_url, tmp_path):
    ledger, events = run_script(store_url)
    try:
        assert "Transitioned" in [name for name, _ in events]
        loaded = ledger.get_artifact(ART)
        folded = replay(None, ledger.events.get(artifact_uuid(ART)))
        assert isinstance(folded, Artifact)
        for field in ("state", "q_long", "q_short", "since_beyond", "price_points", "transition_count"):
            assert getattr(folded, field) == getattr(loaded, field), field
        report = audit(ledger)  # the views equal a fresh replay of the log, too
        assert report.clean, report.violations
    finally:
        ledger.close()
    # The same commands at the same recorded times decide the same, event for event.
    again, events_again = run_script(f"sqlite:///{tmp_path / 'again.db'}")
    again.close()
    strip = {"originator_id", "originator_version"}
    assert [(n, {k: v for k, v in s.items() if k not in strip}) for n, s in events] == [
        (n, {k: v for k, v in s.items() if k not in strip}) for n, s in events_again
    ]
