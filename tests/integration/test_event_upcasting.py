"""Events whose shape changed: version 1 records, as the release before the change stored
them, read back as version 2 with the outcome their fold used to decide."""

import json
import shutil
from pathlib import Path

import pytest

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.domain.model.artifacts import Artifact
from stakeledger.domain.model.positions import Position

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
