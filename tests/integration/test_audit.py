"""The audit must notice a dirty log, not just bless a clean one."""

import json

from eventsourcing.persistence import StoredEvent

from stakeledger.domain.model.accounts import account_uuid
from stakeledger.projections.audit import audit


def forged(account: str, version: int, topic: str, transfer_id: str, amount: int, counterparty: str) -> StoredEvent:
    state = {
        "timestamp": {"_type_": "datetime_iso", "_data_": "2026-01-01T00:00:00+00:00"},
        "transfer_id": transfer_id,
        "amount_units": amount,
        "counterparty": counterparty,
        "reason": "transfer",
        "refs": {},
    }
    return StoredEvent(account_uuid(account), version, topic, json.dumps(state).encode())


def test_audit_when_credit_side_missing_then_one_sided_transfer_and_nonzero_sum_reported(ledger):
    ledger.open_account("alice")
    ledger.open_account("bob")
    ledger.mint("alice", 100)
    version = ledger.get_account("alice").version
    ledger.recorder.insert_events([forged("alice", version + 1, "stakeledger:Account.Debited", "forged-1", 40, "bob")])
    report = audit(ledger)
    assert not report.clean
    messages = " ".join(str(v) for v in report.violations)
    assert "only one side" in messages
    assert "sum to" in messages


def test_audit_when_agent_overdrawn_by_forged_events_then_negative_balance_reported(ledger):
    ledger.open_account("alice")
    ledger.open_account("bob")
    alice, bob = ledger.get_account("alice").version, ledger.get_account("bob").version
    ledger.recorder.insert_events(
        [
            forged("alice", alice + 1, "stakeledger:Account.Debited", "forged-2", 5, "bob"),
            forged("bob", bob + 1, "stakeledger:Account.Credited", "forged-2", 5, "alice"),
        ]
    )
    report = audit(ledger)
    assert any("went negative" in str(v) for v in report.violations)


def test_audit_when_version_gap_then_reported(ledger):
    ledger.open_account("alice")
    ledger.open_account("bob")
    ledger.mint("alice", 100)
    version = ledger.get_account("alice").version
    ledger.recorder.insert_events(
        [
            forged("alice", version + 2, "stakeledger:Account.Debited", "forged-3", 1, "bob"),
            forged("bob", 3, "stakeledger:Account.Credited", "forged-3", 1, "alice"),
        ]
    )
    report = audit(ledger)
    assert any("jumped to version" in str(v) for v in report.violations)


def test_audit_when_clean_ledger_then_counts_events_and_supply(ledger):
    ledger.open_account("alice")
    ledger.mint("alice", 100)
    report = audit(ledger)
    assert report.clean
    assert report.events == ledger.recorder.max_notification_id()
    assert report.total_supply_units == 100
