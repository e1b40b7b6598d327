"""Two OS processes draining one account at the same moment: no lost update, no overdraft."""

import multiprocessing

from domain.application import StakeLedger
from domain.errors import ConcurrencyError, InsufficientFundsError
from projections.audit import audit

START_UNITS = 60
ATTEMPTS_PER_WORKER = 45  # 2 x 45 = 90 requested > 60 held: some must be refused


def drain(url: str, destination: str, barrier, results) -> None:
    app = StakeLedger.from_url(url)
    applied = refused = gave_up = 0
    barrier.wait()
    for _ in range(ATTEMPTS_PER_WORKER):
        try:
            app.transfer("alice", destination, 1)
            applied += 1
        except InsufficientFundsError:
            refused += 1
        except ConcurrencyError:
            gave_up += 1
    results.put((destination, applied, refused, gave_up))
    app.close()


def test_two_processes_when_draining_one_account_then_no_lost_update_and_no_overdraft(durable_store_url):
    ledger = StakeLedger.from_url(durable_store_url)
    ledger.initialise(decimals=0)
    for name in ("alice", "bob", "carol"):
        ledger.open_account(name)
    ledger.mint("alice", START_UNITS)

    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    results = context.Queue()
    workers = [context.Process(target=drain, args=(durable_store_url, name, barrier, results)) for name in ("bob", "carol")]
    for worker in workers:
        worker.start()
    outcomes = {}
    for _ in workers:
        destination, applied, refused, gave_up = results.get(timeout=120)
        outcomes[destination] = (applied, refused, gave_up)
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0

    reader = StakeLedger.from_url(durable_store_url)
    applied_total = sum(applied for applied, _, _ in outcomes.values())
    assert applied_total == START_UNITS, outcomes  # every unit moved exactly once, none twice
    assert reader.balance_of("alice") == 0
    for destination, (applied, _, _) in outcomes.items():
        assert reader.balance_of(destination) == applied
    assert sum(refused for _, refused, _ in outcomes.values()) >= 2 * ATTEMPTS_PER_WORKER - START_UNITS - sum(
        gave_up for _, _, gave_up in outcomes.values()
    )
    report = audit(reader)
    assert report.clean, report.violations
