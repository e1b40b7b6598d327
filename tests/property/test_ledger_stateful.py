"""Random sequences of open, mint, burn and transfer, valid and invalid, against a model."""

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.domain.errors import LedgerError
from stakeledger.domain.model.accounts import TREASURY
from stakeledger.domain.rules.money import MAX_UINT256
from stakeledger.domain.service.clock import ManualClock
from stakeledger.projections.audit import audit

NAMES = st.sampled_from(["alice", "bob", "carol", "dave"])
AMOUNTS = st.one_of(
    st.integers(min_value=1, max_value=2_000),
    st.integers(min_value=-5, max_value=0),
    st.just(MAX_UINT256 + 1),
    st.integers(min_value=1, max_value=MAX_UINT256 // 4),
)


class LedgerMachine(RuleBasedStateMachine):
    """The model is a dict of balances; the ledger must agree with it after every step,
    refuse exactly the requests the model says are invalid, and always audit clean."""

    @initialize()
    def start(self) -> None:
        self.app = open_ledger("memory://", clock=ManualClock())
        self.app.initialise(decimals=0)
        self.balances: dict[str, int] = {}
        self.supply = 0

    def _expect(self, valid: bool, action) -> None:
        before = self.app.recorder.max_notification_id()
        try:
            action()
        except LedgerError:
            assert not valid, "a valid request was refused"
            assert self.app.recorder.max_notification_id() == before, "a refused request wrote events"
        else:
            assert valid, "an invalid request was accepted"

    @staticmethod
    def _amount_ok(amount: int) -> bool:
        return 0 < amount <= MAX_UINT256

    @rule(name=NAMES)
    def open(self, name: str) -> None:
        valid = name not in self.balances
        self._expect(valid, lambda: self.app.open_account(name))
        self.balances.setdefault(name, 0)

    @rule(name=NAMES, amount=AMOUNTS)
    def mint(self, name: str, amount: int) -> None:
        valid = name in self.balances and self._amount_ok(amount) and self.supply + amount <= MAX_UINT256
        self._expect(valid, lambda: self.app.mint(name, amount))
        if valid:
            self.balances[name] += amount
            self.supply += amount

    @rule(name=NAMES, amount=AMOUNTS)
    def burn(self, name: str, amount: int) -> None:
        valid = name in self.balances and self._amount_ok(amount) and self.balances[name] >= amount
        self._expect(valid, lambda: self.app.burn(name, amount))
        if valid:
            self.balances[name] -= amount
            self.supply -= amount

    @rule(source=NAMES, destination=NAMES, amount=AMOUNTS)
    def transfer(self, source: str, destination: str, amount: int) -> None:
        valid = (
            source in self.balances
            and destination in self.balances
            and source != destination
            and self._amount_ok(amount)
            and self.balances[source] >= amount
        )
        self._expect(valid, lambda: self.app.transfer(source, destination, amount))
        if valid:
            self.balances[source] -= amount
            self.balances[destination] += amount

    @invariant()
    def balances_agree_with_model(self) -> None:
        for name, balance in self.balances.items():
            assert self.app.balance_of(name) == balance
        assert -self.app.balance_of(TREASURY) == self.supply

    @precondition(lambda self: True)
    @rule()
    def audit_is_clean(self) -> None:
        report = audit(self.app)
        assert report.clean, report.violations
        assert report.total_supply_units == self.supply

    def teardown(self) -> None:
        report = audit(self.app)
        assert report.clean, report.violations


LedgerMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
test_ledger_state_machine = LedgerMachine.TestCase
