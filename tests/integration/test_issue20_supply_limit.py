"""Issue 20, item 6: the total supply and every balance stay within uint256.

With 0 decimals a single mint may be 2**256 - 1 base units; a second one would take the
supply past what the export (and any ERC-20 contract) can represent. Every movement that would
take the supply or one balance above 2**256 - 1 is refused, writing nothing, and the audit
reports a log that holds such a balance anyway.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.domain.errors import InvalidAmountError, SupplyLimitError, UnknownArtifactError
from stakeledger.domain.model.accounts import TREASURY, Account, Transfer
from stakeledger.domain.rules.money import MAX_UINT256
from stakeledger.domain.service.application import StakeLedger
from stakeledger.domain.service.clock import ManualClock
from stakeledger.domain.service.ids import SeededIds
from stakeledger.projections.audit import audit, uint256_violations
from stakeledger.projections.violations import ViolationCode
from tests.conftest import stored_event_count


@pytest.fixture
def whole_ledger(store_url: str) -> Iterator[StakeLedger]:
    """A ledger with 0 decimals: one base unit is one token, so uint256 is reachable by typing."""
    app = open_ledger(store_url, clock=ManualClock(), new_id=SeededIds(20))
    app.initialise(decimals=0)
    for agent in ("alice", "bob"):
        app.open_account(agent)
    yield app
    app.close()


def assert_unchanged(ledger: StakeLedger, events: int, supply_units: int) -> None:
    assert stored_event_count(ledger) == events
    assert ledger.total_supply() == supply_units


def test_mint_when_it_would_take_supply_above_uint256_then_refused_and_nothing_written(whole_ledger):
    whole_ledger.mint("alice", MAX_UINT256)
    events = stored_event_count(whole_ledger)

    with pytest.raises(SupplyLimitError) as refused:
        whole_ledger.mint("bob", MAX_UINT256)

    assert refused.value.code == InvalidAmountError.code == "INVALID_AMOUNT"
    assert "2**256 - 1" in str(refused.value)
    assert "sys:treasury" not in str(refused.value)
    assert_unchanged(whole_ledger, events, MAX_UINT256)
    assert whole_ledger.balance_of("bob") == 0
    report = audit(whole_ledger)
    assert report.clean, report.violations
    assert report.total_supply_units == MAX_UINT256


def test_mint_when_supply_reaches_exactly_uint256_then_accepted_and_one_more_unit_is_refused(whole_ledger):
    whole_ledger.mint("alice", MAX_UINT256 - 5)
    whole_ledger.mint("bob", 5)
    assert whole_ledger.total_supply() == MAX_UINT256
    events = stored_event_count(whole_ledger)

    with pytest.raises(SupplyLimitError):
        whole_ledger.mint("bob", 1)

    assert_unchanged(whole_ledger, events, MAX_UINT256)
    # Burning frees room again: the limit is on the supply, not on how much was ever minted.
    whole_ledger.burn("alice", 1)
    whole_ledger.mint("bob", 1)
    assert whole_ledger.total_supply() == MAX_UINT256
    assert audit(whole_ledger).clean


def test_transfer_when_supply_is_at_uint256_then_balances_move_within_it(whole_ledger):
    whole_ledger.mint("alice", MAX_UINT256)

    whole_ledger.transfer("alice", "bob", MAX_UINT256)

    assert (whole_ledger.balance_of("alice"), whole_ledger.balance_of("bob")) == (0, MAX_UINT256)
    assert audit(whole_ledger).clean


def test_listing_when_its_subsidy_would_take_supply_above_uint256_then_refused_and_nothing_written(whole_ledger):
    whole_ledger.mint("alice", MAX_UINT256 - 10)
    events = stored_event_count(whole_ledger)

    with pytest.raises(SupplyLimitError):
        whole_ledger.list_artifact("ART-1", "Funded from a full treasury", 1_000, min_hold_days=0)

    assert_unchanged(whole_ledger, events, MAX_UINT256 - 10)
    with pytest.raises(UnknownArtifactError):
        whole_ledger.get_artifact("ART-1")
    report = audit(whole_ledger)
    assert report.clean, report.violations


def test_credit_when_balance_would_exceed_uint256_then_refused_and_account_unchanged():
    at = ManualClock().now()
    account = Account.open("alice", at)
    account.credit(Transfer("t-1", TREASURY, "alice", MAX_UINT256, "mint"), at)

    with pytest.raises(SupplyLimitError) as refused:
        account.credit(Transfer("t-2", "bob", "alice", 1, "transfer"), at)

    assert "'alice'" in str(refused.value)
    assert (account.balance_units, account.version) == (MAX_UINT256, 2)


def test_credit_when_a_system_account_would_exceed_uint256_then_the_message_names_no_internal_account():
    at = ManualClock().now()
    pool = Account.open("pool:ART-1", at)
    pool.credit(Transfer("t-1", TREASURY, "pool:ART-1", MAX_UINT256, "amm:subsidy"), at)

    with pytest.raises(SupplyLimitError) as refused:
        pool.credit(Transfer("t-2", "alice", "pool:ART-1", 1, "trade:open"), at)

    assert "pool:" not in str(refused.value)
    assert pool.balance_units == MAX_UINT256


def test_treasury_debit_when_supply_would_exceed_uint256_then_refused_and_treasury_unchanged():
    at = ManualClock().now()
    treasury = Account.open(TREASURY, at)
    treasury.debit(Transfer("t-1", TREASURY, "alice", MAX_UINT256, "mint"), at)

    with pytest.raises(SupplyLimitError):
        treasury.debit(Transfer("t-2", TREASURY, "bob", 1, "mint"), at)

    assert (treasury.balance_units, treasury.version) == (-MAX_UINT256, 2)


# The audit ------------------------------------------------------------------------------------


def forge_mint(ledger: StakeLedger, agent: str, amount_units: int) -> None:
    """Write both sides of a mint straight to the store, past the account's own checks, as a
    ledger written by an older version (or edited by hand) might hold."""
    at = ledger.clock.now()
    treasury, holder = ledger.get_account(TREASURY), ledger.get_account(agent)
    transfer_id = f"forged-{stored_event_count(ledger)}"
    for account, event_class, counterparty in (
        (treasury, Account.Debited, agent),
        (holder, Account.Credited, TREASURY),
    ):
        account.trigger_event(
            event_class,
            timestamp=at,
            transfer_id=transfer_id,
            amount_units=amount_units,
            counterparty=counterparty,
            reason="mint",
            refs={},
        )
    ledger.save(treasury, holder)


def test_audit_when_log_holds_supply_and_a_balance_above_uint256_then_both_are_reported(whole_ledger):
    whole_ledger.mint("alice", MAX_UINT256)
    assert audit(whole_ledger).clean

    forge_mint(whole_ledger, "alice", 1)

    report = audit(whole_ledger)
    codes = [violation.code for violation in report.violations]
    assert codes == [ViolationCode.SUPPLY_ABOVE_UINT256, ViolationCode.BALANCE_ABOVE_UINT256]
    assert "'alice'" in report.violations[1].message
    assert report.total_supply_units == MAX_UINT256 + 1


def test_audit_when_supply_exceeds_uint256_spread_over_accounts_then_only_supply_is_reported(whole_ledger):
    whole_ledger.mint("alice", MAX_UINT256)
    forge_mint(whole_ledger, "bob", 7)

    report = audit(whole_ledger)

    assert [violation.code for violation in report.violations] == [ViolationCode.SUPPLY_ABOVE_UINT256]
    assert report.violations[0].position is not None


@pytest.mark.parametrize(
    ("kind", "balance_units", "codes"),
    [
        ("treasury", -MAX_UINT256, []),
        ("treasury", -MAX_UINT256 - 1, [ViolationCode.SUPPLY_ABOVE_UINT256]),
        ("treasury", MAX_UINT256 + 1, []),  # a positive treasury is another check's business
        ("agent", MAX_UINT256, []),
        ("agent", MAX_UINT256 + 1, [ViolationCode.BALANCE_ABOVE_UINT256]),
        ("pool", MAX_UINT256 + 1, [ViolationCode.BALANCE_ABOVE_UINT256]),
        ("escrow", -MAX_UINT256 - 1, []),  # negative: reported as NEGATIVE_BALANCE instead
    ],
)
def test_uint256_check_when_given_a_balance_then_reports_exactly_what_is_above_the_limit(kind, balance_units, codes):
    found = list(uint256_violations("balances", 3, "x", kind, balance_units))

    assert [violation.code for violation in found] == codes
    assert all(violation.position == 3 for violation in found)
