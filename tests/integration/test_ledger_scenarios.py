"""The foundation's scenario suite, run on the in-memory store, SQLite and PostgreSQL."""

import pytest

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.domain.errors import (
    AccountExistsError,
    AlreadyInitialisedError,
    CommandConflictError,
    InsufficientFundsError,
    InvalidAmountError,
    InvalidInputError,
    SelfTransferError,
    UnknownAccountError,
)
from stakeledger.domain.model.accounts import TREASURY, Account, account_uuid
from stakeledger.domain.rules.money import MAX_UINT256
from stakeledger.domain.service.application import StakeLedger, TransferRequest
from stakeledger.projections.audit import audit
from tests.conftest import stored_event_count


def open_funded(ledger: StakeLedger, *names: str, amount: int = 1_000) -> None:
    for name in names:
        ledger.open_account(name)
        ledger.mint(name, amount)


def test_mint_then_transfer_when_funded_then_balances_move_and_supply_tracks_treasury(ledger):
    open_funded(ledger, "alice", "bob")
    ledger.transfer("alice", "bob", 250)
    ledger.burn("bob", 50)
    assert ledger.balance_of("alice") == 750
    assert ledger.balance_of("bob") == 1_200
    assert ledger.total_supply() == 1_950
    assert ledger.balance_of(TREASURY) == -1_950
    report = audit(ledger)
    assert report.clean, report.violations
    assert report.transfers == 4
    assert report.total_supply_units == 1_950


def test_transfer_when_both_sides_then_one_debit_and_one_credit_with_same_transfer_id(ledger):
    open_funded(ledger, "alice", "bob")
    result = ledger.transfer("alice", "bob", 10)
    alice_events = list(ledger.events.get(account_uuid("alice")))
    bob_events = list(ledger.events.get(account_uuid("bob")))
    debit = alice_events[-1]
    credit = bob_events[-1]
    assert isinstance(debit, Account.Debited) and isinstance(credit, Account.Credited)
    assert debit.transfer_id == credit.transfer_id == result["transfer_id"]
    assert (debit.counterparty, credit.counterparty) == ("bob", "alice")
    assert debit.amount_units == credit.amount_units == 10


BAD_REQUESTS = [
    ("unknown source", lambda l: l.transfer("nobody", "bob", 1), UnknownAccountError),
    ("unknown destination", lambda l: l.transfer("alice", "nobody", 1), UnknownAccountError),
    ("negative", lambda l: l.transfer("alice", "bob", -1), InvalidAmountError),
    ("zero", lambda l: l.transfer("alice", "bob", 0), InvalidAmountError),
    ("float", lambda l: l.transfer("alice", "bob", 1.5), InvalidAmountError),
    ("bool", lambda l: l.mint("alice", True), InvalidAmountError),
    ("above uint256", lambda l: l.mint("alice", MAX_UINT256 + 1), InvalidAmountError),
    ("self transfer", lambda l: l.transfer("alice", "alice", 1), SelfTransferError),
    ("insufficient funds", lambda l: l.transfer("alice", "bob", 1_001), InsufficientFundsError),
    ("burn more than held", lambda l: l.burn("alice", 1_001), InsufficientFundsError),
    ("reserved reason", lambda l: l.transfer("alice", "bob", 1, reason="mint"), InvalidInputError),
    ("bad agent name", lambda l: l.open_account("has space"), InvalidInputError),
    ("system name", lambda l: l.open_account("sys:treasury"), InvalidInputError),
    ("duplicate account", lambda l: l.open_account("alice"), AccountExistsError),
    ("second init", lambda l: l.initialise(), AlreadyInitialisedError),
    ("empty batch", lambda l: l.transfer_many([]), InvalidInputError),
    (
        "batch with one overdraft",
        lambda l: l.transfer_many([TransferRequest("alice", "bob", 600), TransferRequest("alice", "bob", 600)]),
        InsufficientFundsError,
    ),
]


@pytest.mark.parametrize(("case", "request_", "error"), BAD_REQUESTS, ids=[case for case, _, _ in BAD_REQUESTS])
def test_bad_request_when_refused_then_nothing_written(ledger, case, request_, error):
    open_funded(ledger, "alice", "bob")
    before = stored_event_count(ledger)
    with pytest.raises(error):
        request_(ledger)
    assert stored_event_count(ledger) == before
    assert ledger.balance_of("alice") == 1_000
    assert ledger.balance_of("bob") == 1_000


def test_transfer_many_when_valid_then_all_saved_in_one_batch(ledger):
    open_funded(ledger, "alice", "bob", "carol")
    before = stored_event_count(ledger)
    ledger.transfer_many([TransferRequest("alice", "bob", 100), TransferRequest("bob", "carol", 1_100)])
    assert stored_event_count(ledger) == before + 4
    assert (ledger.balance_of("alice"), ledger.balance_of("bob"), ledger.balance_of("carol")) == (900, 0, 2_100)


def test_command_id_when_retried_with_same_payload_then_first_result_and_nothing_new(ledger):
    open_funded(ledger, "alice", "bob")
    first = ledger.transfer("alice", "bob", 5, command_id="pay-1")
    after_first = stored_event_count(ledger)
    again = ledger.transfer("alice", "bob", 5, command_id="pay-1")
    assert again == first
    assert stored_event_count(ledger) == after_first
    assert ledger.balance_of("bob") == 1_005


def test_command_id_when_reused_with_other_payload_then_conflict_and_nothing_written(ledger):
    open_funded(ledger, "alice", "bob")
    ledger.transfer("alice", "bob", 5, command_id="pay-1")
    before = stored_event_count(ledger)
    with pytest.raises(CommandConflictError):
        ledger.transfer("alice", "bob", 6, command_id="pay-1")
    assert stored_event_count(ledger) == before


def test_reload_when_new_application_instance_then_same_state(durable_store_url, clock):
    ledger = open_ledger(durable_store_url, clock=clock)
    ledger.initialise(decimals=6)
    open_funded(ledger, "alice")
    reopened = open_ledger(durable_store_url, clock=clock)
    assert reopened.decimals == 6
    assert reopened.balance_of("alice") == 1_000


def test_large_amounts_when_near_uint256_then_exact(ledger):
    ledger.open_account("whale")
    ledger.mint("whale", MAX_UINT256 - 1)
    ledger.open_account("minnow")
    ledger.transfer("whale", "minnow", MAX_UINT256 - 2)
    assert ledger.balance_of("minnow") == MAX_UINT256 - 2
    assert audit(ledger).clean


def test_snapshot_when_many_movements_then_reload_matches(ledger, store_url, clock):
    open_funded(ledger, "alice", "bob")
    for _ in range(300):
        ledger.transfer("alice", "bob", 1)
    assert ledger.snapshots is not None
    snapshots = list(ledger.snapshots.get(account_uuid("alice")))
    assert snapshots, "crossing the snapshot interval should have written a snapshot"
    assert ledger.balance_of("alice") == 700
    assert ledger.balance_of(TREASURY) == -2_000
