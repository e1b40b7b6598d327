"""Stored events: stable topics, strict payloads, and reading an old (version 1) record."""

import json

import pytest
from eventsourcing.persistence import StoredEvent

from stakeledger.domain.errors import InvalidInputError
from stakeledger.domain.model.accounts import Account, account_uuid
from stakeledger.domain.model.naming import registered_event_classes
from tests.conftest import stored_event_count

# The stored names are a contract with every ledger already written: renaming or
# moving a class must not change them. Adding a topic is fine; changing one is not.
PINNED_TOPICS = {
    "stakeledger:Account.Opened",
    "stakeledger:Account.Debited",
    "stakeledger:Account.Credited",
    "stakeledger:LedgerSettings.Initialised",
    "stakeledger:CommandRecord.Recorded",
}


def test_registered_topics_when_listed_then_pinned_names_are_all_present():
    assert PINNED_TOPICS <= set(registered_event_classes())


def test_stored_topics_when_saved_then_stable_names_not_module_paths(ledger):
    ledger.open_account("alice")
    ledger.mint("alice", 10, command_id="c1")
    notifications = ledger.recorder.select_notifications(start=1, limit=100)
    topics = {n.topic for n in notifications}
    assert topics == PINNED_TOPICS
    for notification in notifications:
        state = json.loads(notification.state)
        if "originator_topic" in state:
            assert state["originator_topic"].startswith("stakeledger:")
            assert "domain." not in state["originator_topic"]


def test_version_1_opened_record_when_read_then_upcast_to_version_2_with_kind(ledger):
    """Version 1 of Account.Opened had no 'kind'; the upcaster infers it from the id."""
    v1_state = {
        "timestamp": {"_type_": "datetime_iso", "_data_": "2025-06-01T00:00:00+00:00"},
        "originator_topic": "stakeledger:Account",
        "account_id": "pool:legacy-artifact",
    }
    ledger.recorder.insert_events(
        [
            StoredEvent(
                originator_id=account_uuid("pool:legacy-artifact"),
                originator_version=1,
                topic="stakeledger:Account.Opened",
                state=json.dumps(v1_state).encode(),
            )
        ]
    )
    account = ledger.get_account("pool:legacy-artifact")
    assert account.kind == "pool"
    assert account.balance_units == 0
    (event,) = ledger.events.get(account_uuid("pool:legacy-artifact"))
    assert isinstance(event, Account.Opened) and event.kind == "pool"


def test_payload_validation_when_float_amount_then_refused_before_write(ledger):
    ledger.open_account("alice")
    account = ledger.get_account("alice")
    account.trigger_event(
        Account.Credited,
        timestamp=ledger.clock.now(),
        transfer_id="t",
        amount_units=1.5,
        counterparty="x",
        reason="mint",
        refs={},
    )
    before = stored_event_count(ledger)
    with pytest.raises(InvalidInputError, match="amount_units"):
        ledger.save(account)
    assert stored_event_count(ledger) == before
