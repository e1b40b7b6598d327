"""``stakeledger audit``: replay the whole log and check the ledger's invariants.

Checks, each over every event from the first:
- versions: every aggregate's versions run 1, 2, 3, ... with no gap;
- balances: no account but the treasury is ever negative, at any version, and all
  balances sum to zero at the end (the treasury holds minus the total supply);
- uint256: the total supply and every balance stay at most 2**256 - 1 base units, at
  any version, so every amount the export writes fits its uint256 field;
- transfers: every transfer has exactly one debit side and one credit side, on the
  two accounts each names, with the same amount, reason and references;
- state: every account's replayed balance equals the balance its aggregate reports.
Later checks (markets, settlement, projections) plug in through ``Check``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

from stakeledger.domain.errors import LedgerError
from stakeledger.domain.model.accounts import FEES, TREASURY, Account
from stakeledger.domain.rules.money import MAX_UINT256
from stakeledger.domain.service.application import StakeLedger
from stakeledger.domain.service.log import iter_events, max_position
from stakeledger.domain.vocabulary import TERMINAL_STATES, Reason
from stakeledger.projections.replay_check import ViewsCheck
from stakeledger.projections.violations import Violation, ViolationCode

MAX_REPORTED = 20


class Check(Protocol):
    name: str

    def observe(self, position: int, event: Any) -> Iterable[Violation]: ...

    def finish(self, app: StakeLedger) -> Iterable[Violation]: ...


class VersionCheck:
    name = "versions"

    def __init__(self) -> None:
        self.versions: dict[UUID, int] = {}

    def observe(self, position: int, event: Any) -> Iterable[Violation]:
        expected = self.versions.get(event.originator_id, 0) + 1
        self.versions[event.originator_id] = event.originator_version
        if event.originator_version != expected:
            yield Violation(
                self.name,
                position,
                f"aggregate {event.originator_id} jumped to version {event.originator_version}, expected {expected}",
                ViolationCode.VERSION_GAP,
            )


@dataclass
class _Side:
    account: str
    counterparty: str
    amount_units: int
    reason: str
    refs: dict[str, str]
    position: int


class BalanceAndTransferCheck:
    name = "balances"

    def __init__(self) -> None:
        self.accounts: dict[UUID, str] = {}
        self.kinds: dict[str, str] = {}
        self.balances: dict[str, int] = {}
        self.open_debits: dict[str, _Side] = {}
        self.open_credits: dict[str, _Side] = {}
        self.transfers = 0

    def observe(self, position: int, event: Any) -> Iterable[Violation]:
        if isinstance(event, Account.Opened):
            self.accounts[event.originator_id] = event.account_id
            self.kinds[event.account_id] = event.kind
            self.balances.setdefault(event.account_id, 0)
            return
        if not isinstance(event, (Account.Debited, Account.Credited)):
            return
        account = self.accounts.get(event.originator_id)
        if account is None:
            yield Violation(
                self.name,
                position,
                f"movement on unopened account aggregate {event.originator_id}",
                ViolationCode.UNOPENED_ACCOUNT,
            )
            return
        side = _Side(account, event.counterparty, event.amount_units, event.reason, dict(event.refs), position)
        if isinstance(event, Account.Debited):
            self.balances[account] -= event.amount_units
            yield from self._pair(event.transfer_id, side, self.open_debits, self.open_credits, debit=True)
        else:
            self.balances[account] += event.amount_units
            yield from self._pair(event.transfer_id, side, self.open_credits, self.open_debits, debit=False)
        if self.balances[account] < 0 and self.kinds.get(account) != "treasury":
            yield Violation(
                self.name,
                position,
                f"account {account!r} went negative: {self.balances[account]} base units",
                ViolationCode.NEGATIVE_BALANCE,
            )
        yield from uint256_violations(self.name, position, account, self.kinds.get(account), self.balances[account])

    def _pair(
        self, transfer_id: str, side: _Side, mine: dict[str, _Side], theirs: dict[str, _Side], *, debit: bool
    ) -> Iterable[Violation]:
        other = theirs.pop(transfer_id, None)
        if other is None:
            if transfer_id in mine:
                yield Violation(
                    self.name,
                    side.position,
                    f"transfer {transfer_id} has two {'debit' if debit else 'credit'} sides",
                    ViolationCode.DUPLICATE_SIDE,
                )
            mine[transfer_id] = side
            return
        self.transfers += 1
        if (side.account, side.counterparty) != (other.counterparty, other.account):
            yield Violation(
                self.name,
                side.position,
                f"transfer {transfer_id}: sides name different accounts",
                ViolationCode.SIDE_ACCOUNTS_DIFFER,
            )
        if (side.amount_units, side.reason, side.refs) != (other.amount_units, other.reason, other.refs):
            yield Violation(
                self.name,
                side.position,
                f"transfer {transfer_id}: sides differ in amount, reason or refs",
                ViolationCode.SIDE_TERMS_DIFFER,
            )

    def finish(self, app: StakeLedger) -> Iterable[Violation]:
        for transfer_id, side in [*self.open_debits.items(), *self.open_credits.items()]:
            yield Violation(
                self.name,
                side.position,
                f"transfer {transfer_id} on {side.account!r} has only one side",
                ViolationCode.ONE_SIDED_TRANSFER,
            )
        total = sum(self.balances.values())
        if total != 0:
            yield Violation(
                self.name, None, f"balances sum to {total} base units, not zero", ViolationCode.BALANCES_NOT_ZERO
            )
        for account, balance in self.balances.items():
            try:
                stored = app.get_account(account).balance_units
            except Exception as error:  # a corrupt history must be reported, not crash the audit
                yield Violation(
                    self.name,
                    None,
                    f"account {account!r} cannot be loaded: {type(error).__name__} {error}",
                    ViolationCode.ACCOUNT_UNREADABLE,
                )
                continue
            if stored != balance:
                yield Violation(
                    self.name,
                    None,
                    f"account {account!r}: replay gives {balance}, aggregate says {stored}",
                    ViolationCode.ACCOUNT_REPLAY_DIFFERS,
                )

    @property
    def total_supply_units(self) -> int:
        return -self.balances.get(TREASURY, 0)


def uint256_violations(
    check: str, position: int | None, account: str, kind: str | None, balance_units: int
) -> Iterable[Violation]:
    """The treasury holds minus the total supply; every other balance is one holding. Either
    above 2**256 - 1 base units cannot be exported (the export writes them as uint256)."""
    if kind == "treasury":
        if -balance_units > MAX_UINT256:
            yield Violation(
                check,
                position,
                f"the total supply reached {-balance_units} base units, above 2**256 - 1",
                ViolationCode.SUPPLY_ABOVE_UINT256,
            )
    elif balance_units > MAX_UINT256:
        yield Violation(
            check,
            position,
            f"account {account!r} reached {balance_units} base units, above 2**256 - 1",
            ViolationCode.BALANCE_ABOVE_UINT256,
        )


@dataclass
class AuditReport:
    events: int = 0
    last_position: int = 0
    accounts: int = 0
    transfers: int = 0
    total_supply_units: int = 0
    fees_units: int = 0  # every trade fee charged, all of which sys:fees holds when clean
    seconds: float = 0.0
    violations: list[Violation] = field(default_factory=list)
    violation_count: int = 0

    @property
    def clean(self) -> bool:
        return self.violation_count == 0

    def add(self, violations: Iterable[Violation]) -> None:
        for violation in violations:
            self.violation_count += 1
            if len(self.violations) < MAX_REPORTED:
                self.violations.append(violation)


def audit(
    app: StakeLedger,
    *,
    extra_checks: Iterable[Check] = (),
    views: Check | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> AuditReport:
    """Replay the whole log through every check. ``progress(done, total)`` is called per page.

    ``views`` compares the read views with a fresh replay; by default, the store's own."""
    started = time.perf_counter()
    report = AuditReport()
    balances = BalanceAndTransferCheck()
    fees = FeeCheck()
    checks: list[Any] = [VersionCheck(), balances, ArtifactCheck(), fees, views or ViewsCheck(), *extra_checks]
    total = max_position(app)
    for position, event in iter_events(app):
        report.events += 1
        report.last_position = position
        for check in checks:
            report.add(check.observe(position, event) or ())
        if progress is not None and report.events % 2_000 == 0:
            progress(position, total)
    for check in checks:
        finish = getattr(check, "finish", None)
        if finish is not None:
            report.add(finish(app) or ())
    if progress is not None:
        progress(total, total)
    report.accounts = len(balances.balances)
    report.transfers = balances.transfers
    report.total_supply_units = balances.total_supply_units
    report.fees_units = fees.charged_units
    report.seconds = time.perf_counter() - started
    return report


class FeeCheck:
    """Trade fees are conserved: every ``trade:fee`` posting pays sys:fees, sys:fees receives
    nothing else and sends nothing, so its balance is exactly the sum of the fees charged."""

    name = "fees"

    def __init__(self) -> None:
        self.charged_units = 0

    def observe(self, position: int, event: Any) -> Iterable[Violation]:
        if not isinstance(event, Account.Debited):  # the payer's side names the fee account
            return
        to_fees = event.counterparty == FEES
        if event.reason == Reason.TRADE_FEE and to_fees:
            self.charged_units += event.amount_units
        elif event.reason == Reason.TRADE_FEE or to_fees:
            where = "pays another account" if not to_fees else f"is paid to {FEES} as {event.reason!r}"
            yield Violation(
                self.name,
                position,
                f"transfer {event.transfer_id} of {event.amount_units} {where}: only trade fees go to {FEES}",
                ViolationCode.SIDE_ACCOUNTS_DIFFER,
            )

    def finish(self, app: StakeLedger) -> Iterable[Violation]:
        try:
            held = app.balance_of(FEES)
        except LedgerError:
            held = 0  # never opened: no fee was ever charged
        if held != self.charged_units:
            yield Violation(
                self.name,
                None,
                f"{FEES} holds {held} base units but {self.charged_units} were charged as trade fees",
                ViolationCode.BALANCES_NOT_ZERO,
            )


class ArtifactCheck:
    """Per artifact, to the unit: every position's realised P&L sums to the subsidies the
    pool received minus the tax it returned, and a terminal market's pool is empty. Per
    position: what its events say it was paid (settlement payouts, sale proceeds) is what the
    pool's transfers naming it paid its owner. A reopened resolution's reversals count
    against what they reverse: a reversed settlement's P&L and payout, the subsidy returned
    and the tax put back (``settlement:reversal``, ``amm:subsidy_reversal``,
    ``amm:tax_reversal``), and a reopened market is not terminal until it resolves again."""

    name = "markets"
    _PAYING_REASONS = (
        Reason.SETTLEMENT_PROFIT,
        Reason.SETTLEMENT_LOSS,
        Reason.SETTLEMENT_PARTIAL,
        Reason.SETTLEMENT_REFUND,
        Reason.TRADE_CLOSE,
    )

    def __init__(self) -> None:
        from stakeledger.domain.model.artifacts import Artifact
        from stakeledger.domain.model.positions import Position

        self._artifact_events = Artifact
        self._position_events = Position
        self.terminal: dict[str, int] = {}
        self.positions: dict[UUID, tuple[str, str, str]] = {}  # uuid -> (position id, owner, artifact)
        self.pnl_units: dict[str, int] = {}
        self.subsidy_units: dict[str, int] = {}
        self.tax_units: dict[str, int] = {}
        self.artifacts_by_uuid: dict[UUID, str] = {}
        # Keyed by (position id, owner): what the position's events say it was paid (and the log
        # position of the first such event), and what the pool's transfers naming it paid.
        self.owed_units: dict[tuple[str, str], tuple[int, int]] = {}
        self.paid_units: dict[tuple[str, str], int] = {}
        self.partially_settled: set[UUID] = set()  # positions a flag has already settled partially
        self._repeated: list[Violation] = []

    def observe(self, position: int, event: Any) -> Iterable[Violation]:
        artifact_events, position_events = self._artifact_events, self._position_events
        if isinstance(event, artifact_events.Listed):
            self.artifacts_by_uuid[event.originator_id] = event.artifact_id
        elif isinstance(event, artifact_events.Transitioned) and event.to_state in TERMINAL_STATES:
            artifact_id = self.artifacts_by_uuid.get(event.originator_id)
            if artifact_id is None:
                return [
                    Violation(
                        self.name,
                        position,
                        f"artifact {event.originator_id} transitions but was never listed",
                        ViolationCode.ARTIFACT_NEVER_LISTED,
                    )
                ]
            self.terminal[artifact_id] = position
        elif isinstance(event, artifact_events.ResolutionReversed):
            # Reopened: the market is live again; its pool need not be empty until it resolves anew.
            self.terminal.pop(self.artifacts_by_uuid.get(event.originator_id, ""), None)
        elif isinstance(event, position_events.SettlementReversed):
            known = self.positions.get(event.originator_id)
            if known is None:
                return [
                    Violation(
                        self.name,
                        position,
                        f"position {event.originator_id} has a settlement reversed but was never opened",
                        ViolationCode.POSITION_NEVER_OPENED,
                    )
                ]
            position_id, owner, artifact_id = known
            self.pnl_units[artifact_id] -= event.pnl_units
            owed, first = self.owed_units.get((position_id, owner), (0, position))
            self.owed_units[(position_id, owner)] = (owed - event.payout_units, first)
        elif isinstance(event, position_events.Opened):
            self.positions[event.originator_id] = (event.position_id, event.owner, event.artifact_id)
            self.pnl_units.setdefault(event.artifact_id, 0)
        elif isinstance(
            event,
            (
                position_events.Closed,
                position_events.PartiallyClosed,
                position_events.PartiallySettled,
                position_events.Settled,
            ),
        ):
            known = self.positions.get(event.originator_id)
            if known is None:
                return [
                    Violation(
                        self.name,
                        position,
                        f"position {event.originator_id} settles or closes but was never opened",
                        ViolationCode.POSITION_NEVER_OPENED,
                    )
                ]
            position_id, owner, artifact_id = known
            if isinstance(event, position_events.PartiallySettled):
                if event.originator_id in self.partially_settled:
                    # Recorded, then the books still follow it: the P&L and payments below are real.
                    found = Violation(
                        self.name,
                        position,
                        f"position {position_id!r} of {owner!r} was settled partially a second time "
                        f"(transition {event.transition}): a flag pays each stake once",
                        ViolationCode.PARTIAL_SETTLEMENT_REPEATED,
                    )
                    self._repeated.append(found)
                self.partially_settled.add(event.originator_id)
            self.pnl_units[artifact_id] += event.pnl_units
            sold = isinstance(event, (position_events.Closed, position_events.PartiallyClosed))
            paid = event.proceeds_units if sold else event.payout_units
            owed, first = self.owed_units.get((position_id, owner), (0, position))
            self.owed_units[(position_id, owner)] = (owed + paid, first)
        elif isinstance(event, (Account.Credited, Account.Debited)):
            if event.reason == Reason.AMM_SUBSIDY and isinstance(event, Account.Credited):
                artifact_id = event.refs.get("artifact", "")
                self.subsidy_units[artifact_id] = self.subsidy_units.get(artifact_id, 0) + event.amount_units
            elif event.reason == Reason.AMM_TAX and isinstance(event, Account.Debited):
                artifact_id = event.refs.get("artifact", "")
                self.tax_units[artifact_id] = self.tax_units.get(artifact_id, 0) + event.amount_units
            elif event.reason in self._PAYING_REASONS and isinstance(event, Account.Debited):  # the pool's side
                key = (str(event.refs.get("position", "")), event.counterparty)
                self.paid_units[key] = self.paid_units.get(key, 0) + event.amount_units
            # A reopen's reversals count against what they reverse, on the pool's side too.
            elif event.reason == Reason.AMM_SUBSIDY_REVERSAL and isinstance(event, Account.Debited):
                artifact_id = event.refs.get("artifact", "")
                self.subsidy_units[artifact_id] = self.subsidy_units.get(artifact_id, 0) - event.amount_units
            elif event.reason == Reason.AMM_TAX_REVERSAL and isinstance(event, Account.Credited):
                artifact_id = event.refs.get("artifact", "")
                self.tax_units[artifact_id] = self.tax_units.get(artifact_id, 0) - event.amount_units
            elif event.reason == Reason.SETTLEMENT_REVERSAL and isinstance(event, Account.Credited):
                key = (str(event.refs.get("position", "")), event.counterparty)
                self.paid_units[key] = self.paid_units.get(key, 0) - event.amount_units
        return ()

    def finish(self, app: StakeLedger) -> Iterable[Violation]:
        yield from self._repeated
        for artifact_id, position in self.terminal.items():
            pnl = self.pnl_units.get(artifact_id, 0)
            net_subsidy = self.subsidy_units.get(artifact_id, 0) - self.tax_units.get(artifact_id, 0)
            if pnl != net_subsidy:
                yield Violation(
                    self.name,
                    position,
                    f"artifact {artifact_id!r}: positions' P&L {pnl} != subsidies − tax {net_subsidy}",
                    ViolationCode.ARTIFACT_IDENTITY,
                )
            pool = app.balance_of(f"pool:{artifact_id}")
            if pool != 0:
                yield Violation(
                    self.name,
                    position,
                    f"artifact {artifact_id!r} is settled but its pool holds {pool}",
                    ViolationCode.SETTLED_POOL_NOT_EMPTY,
                )
        for (position_id, owner), (owed, first) in self.owed_units.items():
            paid = self.paid_units.pop((position_id, owner), 0)
            if paid != owed:
                yield Violation(
                    self.name,
                    first,
                    f"position {position_id!r}: its events pay {owed}, the pool's transfers to its owner pay {paid}",
                    ViolationCode.POSITION_PAYOUT_DIFFERS,
                )
        for (position_id, owner), paid in self.paid_units.items():
            named = f"for position {position_id!r}" if position_id else "naming no position"
            yield Violation(
                self.name,
                None,
                f"a pool paid {paid} to {owner!r} {named} as a settlement or sale "
                "that no position's events account for",
                ViolationCode.UNEXPLAINED_POOL_PAYMENT,
            )
