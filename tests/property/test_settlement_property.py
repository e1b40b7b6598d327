"""Random trading followed by a random legal walk through the lifecycle, on the in-memory store,
a SQLite file and PostgreSQL (a fresh store for every example; fewer examples on the durable ones).

Whatever the trades and the walk, the audit stays clean; a refused command writes nothing;
a retried transition is idempotent; a transition whose settlement price (the one given, or the
window's average) misses the market's threshold is refused with THRESHOLD_NOT_MET and writes
nothing, and is then made at a price that meets it; and once the walk reaches a terminal state, per artifact and
to the unit, the positions' realised P&L equals the subsidies minus the tax, every position's P&L
equals the tokens the pool paid it minus the tokens it paid the pool, every agent ends with its
funding plus its P&L, and the pool, the order escrow and the outstanding shares are all zero.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import hypothesis.strategies as st
import psycopg
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import event as note_case

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.domain.errors import FrozenError, InsufficientFundsError, LedgerError, StateError, ThresholdNotMetError
from stakeledger.domain.model.accounts import TREASURY, Account, account_uuid, order_escrow_account_id, pool_account_id
from stakeledger.domain.model.artifacts import ALLOWED_TRANSITIONS
from stakeledger.domain.model.positions import Position, position_uuid
from stakeledger.domain.service.application import StakeLedger
from stakeledger.domain.service.clock import ManualClock
from stakeledger.domain.service.ids import SeededIds
from stakeledger.domain.vocabulary import DEPRECATED, FLAGGED, TERMINAL_STATES, VALIDATED, WAD
from stakeledger.projections.audit import audit
from tests.conftest import BACKENDS, fresh_postgres_url

TOKEN = 10**6
FUNDS_UNITS = 300 * TOKEN
ART = "ART"
POOL = pool_account_id(ART)
ESCROW = order_escrow_account_id(ART)
AGENTS = ("alice", "bob", "carol")

SIDES = st.sampled_from(["long", "short"])
AGENT = st.sampled_from(AGENTS)
ACTIONS = st.one_of(
    st.tuples(st.just("buy"), AGENT, SIDES, st.integers(min_value=1, max_value=120)),
    st.tuples(
        st.just("limit"), AGENT, SIDES, st.integers(min_value=1, max_value=40), st.integers(min_value=5, max_value=95)
    ),
    st.tuples(st.just("close"), st.integers(min_value=0, max_value=50)),
    st.tuples(st.just("cancel"), st.integers(min_value=0, max_value=50)),
)
# Seed 000's thresholds, written out here: validated needs s >= 0.7, deprecated s <= 0.1, flagged s < 0.3.
VALIDATED_MIN, DEPRECATED_MAX, FLAGGED_BELOW = 7 * WAD // 10, WAD // 10, 3 * WAD // 10
BOUNDARIES = [1, DEPRECATED_MAX, DEPRECATED_MAX + 1, FLAGGED_BELOW - 1, FLAGGED_BELOW, VALIDATED_MIN - 1, VALIDATED_MIN]
PRICES = st.one_of(
    st.none(), st.integers(min_value=1, max_value=WAD - 1), st.sampled_from([*BOUNDARIES, WAD // 2, WAD - 1])
)
# A price each thresholded transition accepts, for the retry after a refusal.
MEETING_PRICES = {
    VALIDATED: st.integers(min_value=VALIDATED_MIN, max_value=WAD - 1),
    DEPRECATED: st.integers(min_value=1, max_value=DEPRECATED_MAX),
    FLAGGED: st.integers(min_value=1, max_value=FLAGGED_BELOW - 1),
}


def meets_threshold(to_state: str, price_wad: int) -> bool:
    if to_state == VALIDATED:
        return price_wad >= VALIDATED_MIN
    if to_state == DEPRECATED:
        return price_wad <= DEPRECATED_MAX
    if to_state == FLAGGED:
        return price_wad < FLAGGED_BELOW
    return True


def examples(backend: str, in_memory: int) -> int:
    """A durable store costs a file or a schema, and a round trip per command: run fewer examples there."""
    return in_memory if backend == "memory" else max(8, in_memory // 2)


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Callable[[], str]:
    """The PostgreSQL server's URL, asked for only by a PostgreSQL run."""
    return lambda: request.getfixturevalue("postgres_server")


@contextmanager
def example_store(backend: str, server: Callable[[], str]) -> Iterator[str]:
    """A new empty store for one hypothesis example (pytest fixtures are not reset between examples)."""
    if backend == "memory":
        yield "memory://"
    elif backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="stakeledger-property-") as directory:
            yield f"sqlite:///{directory}/ledger.db"
    else:
        server_url = server()
        url = fresh_postgres_url(server_url)
        try:
            yield url
        finally:
            schema = url.rpartition("schema=")[2]
            with psycopg.connect(server_url, autocommit=True) as connection:
                connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


def movements(ledger: StakeLedger, account_id: str) -> list[Any]:
    events = ledger.events.get(account_uuid(account_id))
    return [event for event in events if isinstance(event, (Account.Debited, Account.Credited))]


def balances(ledger: StakeLedger) -> dict[str, int]:
    out = {}
    for account in (*AGENTS, TREASURY, POOL, ESCROW):
        try:
            out[account] = ledger.balance_of(account)
        except LedgerError:
            out[account] = 0
    return out


def snapshot(ledger: StakeLedger) -> tuple[Any, ...]:
    artifact = ledger.get_artifact(ART)
    return (ledger.recorder.max_notification_id(), balances(ledger), artifact.version)


class Run:
    """One example: a ledger, its agents, and the command outcomes the test expects."""

    def __init__(self, url: str, liquidity_units: int) -> None:
        self.clock = ManualClock()
        self.ledger = open_ledger(url, clock=self.clock, new_id=SeededIds(11))
        self.ledger.initialise(decimals=6)
        for agent in AGENTS:
            self.ledger.open_account(agent)
            self.ledger.mint(agent, FUNDS_UNITS)
        self.ledger.list_artifact(ART, "Artifact", liquidity_units, min_hold_days=0)
        self.state = "listed"

    @classmethod
    @contextmanager
    def on(cls, backend: str, server: Callable[[], str], liquidity_units: int) -> Iterator["Run"]:
        with example_store(backend, server) as url:
            run = cls(url, liquidity_units)
            try:
                yield run
            finally:
                run.ledger.close()

    def act(self, action: tuple[Any, ...]) -> None:
        """Run one action, expecting exactly the refusal (or success) the lifecycle model predicts."""
        ledger = self.ledger
        artifact = ledger.get_artifact(ART)
        market_refusal = {
            "challenged": FrozenError,
            "validated": StateError,
            "deprecated": StateError,
            "invalid": StateError,
        }.get(self.state)
        kind = action[0]
        if kind in ("buy", "limit"):
            agent, side, tokens = action[1:4]
            # The market's state is checked before the money: a challenged market refuses even the unaffordable.
            shortfall = InsufficientFundsError if ledger.balance_of(agent) < tokens * TOKEN else None
            if kind == "buy":
                command = lambda: ledger.open_position(agent, ART, side, tokens * TOKEN)  # noqa: E731
            else:
                limit_wad = action[4] * WAD // 100
                command = lambda: ledger.place_limit_order(agent, ART, side, tokens * TOKEN, limit_wad)  # noqa: E731
            self._expect(command, market_refusal or shortfall)
        elif kind == "close":
            if not artifact.position_ids:
                return
            position_id = artifact.position_ids[action[1] % len(artifact.position_ids)]
            position = ledger.repository.get(position_uuid(position_id))
            # A position that is no longer live is refused as such, whatever the market's state.
            expected = StateError if not position.is_live else market_refusal
            self._expect(lambda: ledger.close_position(position_id, agent=position.owner), expected)
        else:
            order_ids = sorted(artifact.order_status)
            if not order_ids:
                return
            order_id = order_ids[action[1] % len(order_ids)]
            resting = artifact.orders.get(order_id)
            owner = resting["agent"] if resting else AGENTS[0]
            expected = StateError if resting is None else market_refusal
            self._expect(lambda: ledger.cancel_order(order_id, owner), expected)

    def _expect(self, command: Any, refusal: type[LedgerError] | None) -> None:
        before = snapshot(self.ledger)
        try:
            command()
        except LedgerError as error:
            assert refusal is not None, f"an allowed command was refused: {error!r}"
            assert type(error) is refusal, f"expected {refusal.__name__}, got {error!r}"
            assert snapshot(self.ledger) == before, "a refused command wrote something"
        else:
            assert refusal is None, f"expected {refusal.__name__ if refusal else None}, but the command was accepted"

    def transition(self, to_state: str, price_wad: int | None, command_id: str) -> bool:
        """Make the transition, or expect its refusal when the settlement price misses the
        threshold (the clock stands still here, so the window's average is the pool's price)."""
        settlement = price_wad if price_wad is not None else self.ledger.get_artifact(ART).price_long_wad
        if not meets_threshold(to_state, settlement):
            before = snapshot(self.ledger)
            try:
                self.ledger.transition_artifact(ART, to_state, price_wad=price_wad, command_id=command_id)
            except ThresholdNotMetError as error:
                assert error.code == "THRESHOLD_NOT_MET"
            else:
                raise AssertionError(f"{to_state} at {settlement} should miss its threshold")
            assert snapshot(self.ledger) == before, "a refused transition wrote something"
            note_case(f"{to_state} refused below its threshold")
            return False
        first = self.ledger.transition_artifact(ART, to_state, price_wad=price_wad, command_id=command_id)
        assert first["price_long_wad"] == str(settlement)
        after = snapshot(self.ledger)
        assert self.ledger.transition_artifact(ART, to_state, price_wad=price_wad, command_id=command_id) == first
        assert snapshot(self.ledger) == after, "a retried transition wrote something"
        self.state = to_state
        return True

    def transition_surely(self, data: st.DataObject, to_state: str, price_wad: int | None, command_id: str) -> None:
        """The transition at ``price_wad``; if that is refused, again at a price that meets the threshold."""
        if not self.transition(to_state, price_wad, command_id):
            retry = data.draw(MEETING_PRICES[to_state], label=f"meeting price for {command_id}")
            assert self.transition(to_state, retry, f"{command_id}-retry")


def assert_settled_exactly(ledger: StakeLedger) -> None:
    artifact = ledger.get_artifact(ART)
    pnl_by_position: dict[str, int] = {}
    owner_of: dict[str, str] = {}
    for position_id in artifact.position_ids:
        for event in ledger.events.get(position_uuid(position_id)):
            if isinstance(event, Position.Opened):
                owner_of[position_id] = event.owner
                pnl_by_position[position_id] = 0
            elif isinstance(event, (Position.Closed, Position.PartiallySettled, Position.Settled)):
                pnl_by_position[position_id] += event.pnl_units
        assert not ledger.repository.get(position_uuid(position_id)).is_live

    # The pool's own movements, split by what they reference.
    net_subsidy, paid_to_position = 0, dict.fromkeys(pnl_by_position, 0)
    for event in movements(ledger, POOL):
        sign = 1 if isinstance(event, Account.Debited) else -1
        if event.reason == "amm:subsidy":
            assert sign == -1 and event.counterparty == TREASURY
            net_subsidy += event.amount_units
        elif event.reason == "amm:tax":
            assert sign == 1 and event.counterparty == TREASURY
            net_subsidy -= event.amount_units
        else:
            paid_to_position[event.refs["position"]] += sign * event.amount_units

    # Long profits + short profits − losses = subsidies − tax, to the unit.
    assert sum(pnl_by_position.values()) == net_subsidy
    # Each position's P&L is exactly what the pool paid it minus what it paid the pool.
    assert pnl_by_position == paid_to_position
    # Every agent ends with its funding plus its positions' P&L: escrowed tokens all came back or bought positions.
    for agent in AGENTS:
        pnl = sum(p for position_id, p in pnl_by_position.items() if owner_of[position_id] == agent)
        assert ledger.balance_of(agent) == FUNDS_UNITS + pnl
    assert ledger.balance_of(POOL) == 0
    assert balances(ledger)[ESCROW] == 0
    assert (artifact.q_long, artifact.q_short, artifact.orders) == (0, 0, {})


def describe(ledger: StakeLedger) -> None:
    """Label the example for --hypothesis-show-statistics: did the walk exercise what it should?"""
    artifact = ledger.get_artifact(ART)
    reasons = {event.reason for event in movements(ledger, POOL)}
    count = len(artifact.position_ids)
    note_case(f"terminal with {'5+' if count >= 5 else count} positions")
    for reason in ("trade:close", "settlement:partial", "settlement:profit", "settlement:loss"):
        if reason in reasons:
            note_case(reason)
    if any(status == "filled" or status == "partially_filled" for status in artifact.order_status.values()):
        note_case("a limit order filled")
    if sum(e.reason == "amm:subsidy" for e in movements(ledger, POOL)) > 1:
        note_case("shortfall minted")


# Each test runs a hypothesis property built inside it, so the number of examples can follow the
# backend; every example opens (and afterwards drops) a store of its own.


@pytest.mark.parametrize("backend", BACKENDS)
def test_random_trades_and_transitions_when_run_then_audit_clean_and_terminal_identity_exact(backend, server):
    @settings(
        max_examples=examples(backend, 60),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=st.data())
    def example(data: st.DataObject) -> None:
        liquidity_units = data.draw(st.sampled_from([1, 20, 100]), label="liquidity tokens") * TOKEN
        with Run.on(backend, server, liquidity_units) as run:
            random_walk(data, run)

    example()


def random_walk(data: st.DataObject, run: Run) -> None:
    detours = data.draw(st.integers(min_value=0, max_value=3), label="non-terminal transitions")
    ends_terminal = data.draw(st.integers(min_value=0, max_value=4), label="ends terminal unless 0") > 0
    for step in range(detours + 1):
        for action in data.draw(st.lists(ACTIONS, min_size=1, max_size=8), label=f"actions {step}"):
            run.act(action)
        last = step == detours
        if last and not ends_terminal:
            break
        choices = sorted(ALLOWED_TRANSITIONS[run.state])
        if not last:
            choices = [state for state in choices if state not in TERMINAL_STATES]
        else:
            choices = [state for state in choices if state in TERMINAL_STATES]
        to_state = data.draw(st.sampled_from(choices), label=f"to {step}")
        price_wad = data.draw(PRICES, label=f"price {step}")
        run.transition_surely(data, to_state, price_wad, command_id=f"t-{step}")
        report = audit(run.ledger)
        assert report.clean, report.violations
        if to_state in TERMINAL_STATES:
            assert_settled_exactly(run.ledger)
            describe(run.ledger)
    # Nothing trades, and nothing is written, after the walk ends in a terminal state.
    if ends_terminal:
        for action in data.draw(st.lists(ACTIONS, max_size=3), label="actions after the end"):
            run.act(action)
        assert_settled_exactly(run.ledger)
    report = audit(run.ledger)
    assert report.clean, report.violations


TERMINAL_PATHS = st.sampled_from(
    [
        ["validated"],
        ["deprecated"],
        ["flagged", "validated"],
        ["flagged", "deprecated"],
        ["challenged", "flagged", "listed", "deprecated"],
        ["flagged", "listed", "flagged", "validated"],
    ]
)


@pytest.mark.parametrize("backend", BACKENDS)
def test_market_orders_then_a_terminal_path_when_any_price_then_identity_exact(backend, server):
    @settings(max_examples=examples(backend, 25), deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        trades=st.lists(st.tuples(AGENT, SIDES, st.integers(min_value=1, max_value=120)), min_size=1, max_size=10),
        path=TERMINAL_PATHS,
        price_wad=PRICES,
        flag_price_wad=st.one_of(st.none(), MEETING_PRICES[FLAGGED]),
        data=st.data(),
    )
    def example(
        trades: list[tuple[str, str, int]],
        path: list[str],
        price_wad: int | None,
        flag_price_wad: int | None,
        data: st.DataObject,
    ) -> None:
        with Run.on(backend, server, 20 * TOKEN) as run:
            for agent, side, tokens in trades:
                run.act(("buy", agent, side, tokens))
            for index, to_state in enumerate(path):
                given_price = (
                    price_wad if to_state in TERMINAL_STATES else flag_price_wad if to_state == FLAGGED else None
                )
                run.transition_surely(data, to_state, given_price, command_id=f"t-{index}")
            assert_settled_exactly(run.ledger)
            describe(run.ledger)
            report = audit(run.ledger)
            assert report.clean, report.violations

    example()


@pytest.mark.parametrize("backend", BACKENDS)
def test_flagged_then_closing_every_live_position_when_market_listed_again_then_each_close_succeeds(backend, server):
    # After a flag every position is still live and "may close at the current market price".
    # The flag paid refunds and bonuses out of the pool, so a close may owe more than the pool
    # holds; as with a settlement payout, the pool is the counterparty and the close must go through.

    # No shrinking here: tests/integration/test_settlement.py holds the minimal example by hand.
    @settings(
        max_examples=examples(backend, 25),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
        phases=(Phase.explicit, Phase.reuse, Phase.generate),
    )
    @given(
        liquidity_tokens=st.sampled_from([1, 20, 100]),
        trades=st.lists(st.tuples(AGENT, SIDES, st.integers(min_value=1, max_value=90)), min_size=1, max_size=8),
        terminal=st.sampled_from(sorted(TERMINAL_STATES)),
        price_wad=PRICES,
        flag_price_wad=MEETING_PRICES[FLAGGED],
        data=st.data(),
    )
    def example(
        liquidity_tokens: int,
        trades: list[tuple[str, str, int]],
        terminal: str,
        price_wad: int | None,
        flag_price_wad: int,
        data: st.DataObject,
    ) -> None:
        with Run.on(backend, server, liquidity_tokens * TOKEN) as run:
            for agent, side, tokens in trades:
                run.act(("buy", agent, side, tokens))
            assert run.transition("flagged", flag_price_wad, command_id="flag")
            assert run.transition("listed", None, command_id="relist")
            for index, position_id in enumerate(run.ledger.get_artifact(ART).position_ids):
                run.act(("close", index))
                assert run.ledger.repository.get(position_uuid(position_id)).status == "closed"
            run.transition_surely(data, terminal, price_wad, command_id="end")
            assert_settled_exactly(run.ledger)
            report = audit(run.ledger)
            assert report.clean, report.violations

    example()
