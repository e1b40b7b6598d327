"""Events whose shape changed: version 1 records, as the release before the change stored
them, read back as version 2 with the outcome their fold used to decide."""

import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from eventsourcing.persistence import StoredEvent

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.domain.errors import ThresholdNotMetError
from stakeledger.domain.model.artifacts import Artifact, artifact_uuid
from stakeledger.domain.model.positions import Position
from stakeledger.domain.rules.resolution import ResolutionRules
from stakeledger.domain.service.clock import ManualClock
from stakeledger.projections.audit import audit

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "ledger-before-layout.db"


@pytest.fixture
def old_ledger(tmp_path):
    shutil.copyfile(FIXTURE, tmp_path / "old.db")
    app = open_ledger(f"sqlite:///{tmp_path / 'old.db'}")
    yield app
    app.close()


def stored(app, topic: str) -> list:
    return list(app.recorder.select_notifications(start=1, limit=10_000, topics=(topic,)))


@pytest.mark.parametrize(
    "topic, field",
    [
        ("stakeledger:Artifact.Traded", "opens_position"),
        ("stakeledger:Artifact.OrderFilled", "order_status"),
        ("stakeledger:Position.Closed", "status"),
        ("stakeledger:Position.Reopened", "status"),
        ("stakeledger:Artifact.Listed", "validated_min_wad"),
        ("stakeledger:Artifact.Transitioned", "window_average_wad"),
    ],
)
def test_version_1_record_when_read_then_upcast_with_the_new_field(old_ledger, topic, field):
    records = stored(old_ledger, topic)
    assert records, f"the fixture holds no {topic}"
    for record in records:
        state = json.loads(record.state)
        assert field not in state and "class_version" not in state  # written by the old release
        event = old_ledger.mapper.to_domain_event(record)
        assert hasattr(event, field)


def test_version_1_traded_when_upcast_then_buys_open_positions_and_sales_do_not(old_ledger):
    for record in stored(old_ledger, "stakeledger:Artifact.Traded"):
        event = old_ledger.mapper.to_domain_event(record)
        assert event.opens_position == (event.shares_delta_units > 0)


def test_version_1_closed_when_upcast_then_liquidations_say_liquidated(old_ledger):
    statuses = {
        (event.how, event.status)
        for event in map(old_ledger.mapper.to_domain_event, stored(old_ledger, "stakeledger:Position.Closed"))
    }
    assert statuses and all(status == ("liquidated" if how == "liquidation" else "closed") for how, status in statuses)


def test_old_aggregates_when_folded_then_order_and_position_statuses_are_as_before(old_ledger):
    """The legacy fold of v1 OrderFilled and Reopened gives what the old release showed."""
    artifacts = {}
    for record in stored(old_ledger, "stakeledger:Artifact.OrderFilled"):
        artifact = old_ledger.repository.get(record.originator_id)
        assert isinstance(artifact, Artifact)
        artifacts[artifact.artifact_id] = artifact
    assert any(status == "filled" for a in artifacts.values() for status in a.order_status.values())
    for record in stored(old_ledger, "stakeledger:Position.Reopened"):
        position = old_ledger.repository.get(record.originator_id)
        assert isinstance(position, Position) and position.status != "frozen"


def test_new_events_when_saved_then_they_carry_version_2_and_the_decided_outcome(ledger):
    ledger.open_account("alice")
    ledger.mint("alice", 1_000_000_000)
    ledger.list_artifact("ART", "A title", 100_000_000, min_hold_days=0)
    ledger.open_position("alice", "ART", "long", 10_000_000)
    ledger.close_position("ART/p1")
    states = [
        json.loads(n.state)
        for n in ledger.recorder.select_notifications(start=1, limit=100)
        if n.topic in ("stakeledger:Artifact.Traded", "stakeledger:Position.Closed")
    ]
    outcomes = [(s["class_version"], s.get("opens_position"), s.get("status")) for s in states]
    assert sorted(outcomes, key=repr) == sorted([(2, True, None), (2, False, None), (2, None, "closed")], key=repr)


# Resolution rules and the window's average (issue 14) ---------------------------------------------

RULE_FIELDS = ("validated_min_wad", "deprecated_max_wad", "flagged_below_wad", "window_days")


def test_version_1_listed_when_upcast_then_the_market_has_seed_000s_rules(old_ledger):
    defaults = ResolutionRules()
    records = stored(old_ledger, "stakeledger:Artifact.Listed")
    assert len(records) == 13
    for record in records:
        assert not set(RULE_FIELDS) & set(json.loads(record.state))
        event = old_ledger.mapper.to_domain_event(record)
        assert tuple(getattr(event, field) for field in RULE_FIELDS) == (7 * 10**17, 10**17, 3 * 10**17, 7)
        artifact = old_ledger.repository.get(record.originator_id)
        assert artifact.resolution_rules == defaults


def test_version_1_transitioned_when_upcast_then_its_window_average_is_its_price(old_ledger):
    records = stored(old_ledger, "stakeledger:Artifact.Transitioned")
    assert len(records) == 7
    for record in records:
        state = json.loads(record.state)
        event = old_ledger.mapper.to_domain_event(record)
        assert event.window_average_wad == event.price_long_wad == state["price_long_wad"]


def test_old_store_when_todays_code_resolves_a_v1_market_then_its_average_meets_or_misses_the_default_bound(
    tmp_path,
):
    shutil.copyfile(FIXTURE, tmp_path / "old.db")
    clock = ManualClock(datetime(2026, 5, 1, tzinfo=timezone.utc))  # after the fixture's last event
    app = open_ledger(f"sqlite:///{tmp_path / 'old.db'}", clock=clock)
    try:
        # Nothing happened on these markets in the last 7 days: each held its pool price all window.
        for artifact_id in ("GEN-1", "MAT-1"):
            assert app.get_artifact(artifact_id).modified_on <= clock.now() - timedelta(days=7)
        held = app.get_artifact("GEN-1").price_long_wad
        assert held <= 10**17
        result = app.transition_artifact("GEN-1", "deprecated")
        assert result["price_long_wad"] == result["window_average_wad"] == str(held)
        assert app.get_artifact("MAT-1").price_long_wad < 7 * 10**17
        events = app.recorder.max_notification_id()
        with pytest.raises(ThresholdNotMetError):
            app.transition_artifact("MAT-1", "validated")
        assert app.recorder.max_notification_id() == events
        report = audit(app)
        assert report.clean, report.violations
    finally:
        app.close()


def as_version_1(record: StoredEvent, originator_id, version: int, drop: tuple[str, ...], **changes) -> StoredEvent:
    """``record`` as the release before issue 14 stored it: no class_version, no ``drop`` fields."""
    state = {key: value for key, value in json.loads(record.state).items() if key not in (*drop, "class_version")}
    state.update(changes)
    return StoredEvent(originator_id, version, record.topic, json.dumps(state).encode())


def test_version_1_records_when_stored_on_any_backend_then_read_with_default_rules_and_average(ledger):
    # Today's code writes a market with its own rules; the same records, stripped to version 1 and
    # stored under another artifact, read back with seed 000's rules and an average equal to the price.
    rules = ResolutionRules(6 * 10**17, 2 * 10**17, 4 * 10**17, 3)
    ledger.list_artifact("NEW", "Today", 100_000_000, min_hold_days=0, resolution=rules)
    ledger.transition_artifact("NEW", "challenged", reason="disputed")
    new_listed, new_transitioned = ledger.recorder.select_events(artifact_uuid("NEW"))
    assert json.loads(new_listed.state)["class_version"] == 3  # version 3 added the correction window
    assert json.loads(new_transitioned.state)["class_version"] == 2
    old_id = artifact_uuid("OLD")
    ledger.recorder.insert_events(
        [
            as_version_1(new_listed, old_id, 1, RULE_FIELDS, artifact_id="OLD"),
            as_version_1(new_transitioned, old_id, 2, ("window_average_wad",), price_long_wad=123 * 10**15),
        ]
    )

    old = ledger.get_artifact("OLD")

    assert old.resolution_rules == ResolutionRules()
    assert ledger.get_artifact("NEW").resolution_rules == rules
    assert (old.state, old.transition_count) == ("challenged", 1)
    listed, transitioned = ledger.events.get(old_id)
    assert tuple(getattr(listed, field) for field in RULE_FIELDS) == (7 * 10**17, 10**17, 3 * 10**17, 7)
    assert transitioned.window_average_wad == transitioned.price_long_wad == 123 * 10**15


def test_version_2_listed_when_upcast_then_the_market_has_a_24_hour_correction_window_and_no_auto_resolution(ledger):
    rules = ResolutionRules(6 * 10**17, 2 * 10**17, 4 * 10**17, 3, correction_hours=5, auto_resolve=True)
    ledger.list_artifact("NEW", "Today", 100_000_000, min_hold_days=0, resolution=rules)
    (new_listed,) = ledger.recorder.select_events(artifact_uuid("NEW"))
    state = {
        key: value
        for key, value in json.loads(new_listed.state).items()
        if key not in ("correction_hours", "auto_resolve", "sustained_hours")
    }
    state["class_version"] = 2
    state["artifact_id"] = "OLD2"
    ledger.recorder.insert_events([StoredEvent(artifact_uuid("OLD2"), 1, new_listed.topic, json.dumps(state).encode())])

    old = ledger.get_artifact("OLD2").resolution_rules

    assert (old.correction_hours, old.auto_resolve, old.sustained_hours) == (24, False, 24)
    assert old.window_days == 3 and old.validated_min_wad == 6 * 10**17  # version 2's own rules stay
    assert ledger.get_artifact("NEW").resolution_rules == rules
