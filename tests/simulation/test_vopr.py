"""The fault-injecting simulation (tests/simulation/vopr.py) in CI: a few hundred seeds in all.

Each seed runs short here (``CI_STEPS`` client steps, every check after each one); ``make
simulate SEEDS=N`` runs more seeds, longer. A failure prints the seed, the backend, the step
and the command that reproduces it.
"""

from __future__ import annotations

import pytest
from eventsourcing.persistence import OperationalError

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.domain.service.clock import ManualClock
from stakeledger.domain.service.ids import SeededIds
from tests.conftest import stored_event_count
from tests.simulation import vopr

CI_STEPS = 10
# Seeds per backend: PostgreSQL costs most per seed (a schema and its tables each).
CI_SEEDS = {"memory": 100, "sqlite": 50, "postgres": 30}


def _url(backend: str, request: pytest.FixtureRequest) -> str | None:
    return request.getfixturevalue("postgres_server") if backend == "postgres" else None


@pytest.mark.parametrize(
    ("backend", "seed"), [(backend, seed) for backend, count in CI_SEEDS.items() for seed in range(count)]
)
def test_seed_keeps_every_invariant(backend: str, seed: int, request: pytest.FixtureRequest) -> None:
    summary = vopr.run_seed(seed, backend, steps=CI_STEPS, postgres_url=_url(backend, request))
    # The run did work: commands were answered (a seed that refused everything proves little).
    assert summary["outcomes"].get("acked", 0) >= 5, summary


def test_a_seed_replays_exactly() -> None:
    first = vopr.Simulation(5, "memory", "memory://", steps=20)
    first.run()
    second = vopr.Simulation(5, "memory", "memory://", steps=20)
    second.run()
    assert [str(op) for op in first.history] == [str(op) for op in second.history]
    assert [op.result for op in first.history] == [op.result for op in second.history]
    assert first.counts == second.counts


def test_every_kind_of_fault_is_injected(request: pytest.FixtureRequest) -> None:
    totals = {}
    for backend in ("memory", "sqlite"):
        for seed in range(6):
            summary = vopr.run_seed(seed, backend, steps=30)
            for kind, count in summary["faults"].items():
                totals[f"{backend} {kind}"] = totals.get(f"{backend} {kind}", 0) + count
    for backend in ("memory", "sqlite"):
        for kind in ("before", "after", "lost answer", "runner crashes", "runner stops", "runner restarts"):
            assert totals.get(f"{backend} {kind}", 0) > 0, (backend, kind, totals)
    assert totals.get("sqlite torn", 0) > 0 and totals.get("sqlite ledger restarts", 0) > 0, totals


class _LeakyTorn(vopr.Simulation):
    """A store whose torn write keeps its first half: the log check must see it."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self._leak()

    def _restart_ledger(self) -> None:
        super()._restart_ledger()
        self._leak()

    def _leak(self) -> None:
        faults = self.faults

        def leaky(stored_events: object) -> None:
            part = stored_events[:1]
            with faults.recorder.datastore.transaction(commit=True) as cursor:
                faults.recorder._insert_events(cursor, part)

        faults._torn = leaky


def test_the_checks_catch_a_torn_write_that_leaks() -> None:
    # Whichever check sees it first (an event nobody committed, a command id whose save is not its own).
    with pytest.raises(vopr.SimulationFailure, match=r"seed \d+ on sqlite, step \d+: .*(no committed save|saves)"):
        for seed in range(10):
            vopr.run_seed(seed, "sqlite", steps=30, make=_LeakyTorn)


class _DoubleApply(vopr.Simulation):
    """A ledger that applies every mint without a command id twice: the save count must see it."""

    def _attempt(self, op: vopr.Op, *, retry: bool = False) -> None:
        if op.verb != "mint" or op.command_id is not None:
            return super()._attempt(op, retry=retry)
        real = self.app.mint

        def mint_twice(*args: object, **kwargs: object) -> object:
            real(*args, **kwargs)
            return real(*args, **kwargs)

        self.app.mint = mint_twice
        try:
            return super()._attempt(op, retry=retry)
        finally:
            del self.app.mint


def test_the_checks_catch_a_command_applied_twice() -> None:
    with pytest.raises(
        vopr.SimulationFailure, match=r"seed 0 on memory, step 0: .*mint.* committed 2 saves for one call"
    ):
        vopr.run_seed(0, "memory", steps=5, make=_DoubleApply)


def test_a_commit_whose_answer_is_lost_is_not_applied_again(store_url: str) -> None:
    """Found by the simulation (an 'after' fault raised as OperationalError instead of a crash)."""
    ledger = open_ledger(store_url, clock=ManualClock(), new_id=SeededIds(3))
    try:
        ledger.initialise(decimals=6)
        ledger.open_account("alice")
        real = ledger.recorder.insert_events
        lost = []

        def commit_then_lose_the_answer(stored_events, **kwargs):
            result = real(stored_events, **kwargs)
            if not lost:
                lost.append(True)
                raise OperationalError("server closed the connection unexpectedly (after COMMIT)")
            return result

        ledger.recorder.insert_events = commit_then_lose_the_answer
        events = stored_event_count(ledger)
        ledger.mint("alice", 5_000_000)
        assert ledger.balance_of("alice") == 5_000_000
        assert stored_event_count(ledger) == events + 2  # one debit, one credit
    finally:
        ledger.close()
