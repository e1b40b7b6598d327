"""Two OS processes trading on one artifact at the same moment: no lost update.

Every market order reads and writes the same Artifact (its q_long/q_short) and the same pool
account, so two writers race on both. A loser re-decides on fresh state (a bounded number of
times) or gives up with ConcurrencyError; either way every accepted trade must be in the
artifact's outstanding shares and in the pool's balance, and nothing given up may be applied.
"""

import multiprocessing

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.domain.errors import ConcurrencyError
from stakeledger.domain.model.accounts import pool_account_id
from stakeledger.domain.model.positions import Position, position_uuid
from stakeledger.domain.rules.lmsr import max_subsidy_units
from stakeledger.projections.audit import audit

TOKEN = 10**6
LIQUIDITY_UNITS = 100 * TOKEN
FUNDS_UNITS = 1_000 * TOKEN
ORDERS_PER_WORKER = 25
ART = "ART"
SIDE_OF = {"alice": "long", "bob": "short"}


def trade(url: str, agent: str, barrier, results) -> None:
    app = open_ledger(url)
    accepted: list[tuple[str, int, int]] = []
    gave_up = 0
    # Warm the connection and the code paths first, so both processes trade as soon as they meet.
    app.quote(ART, SIDE_OF[agent], tokens_units=TOKEN)
    app.balance_of(agent)
    barrier.wait()
    for attempt in range(ORDERS_PER_WORKER):
        tokens_units = TOKEN + attempt  # distinct sizes, so each trade is recognisable
        try:
            result = app.open_position(agent, ART, SIDE_OF[agent], tokens_units)
        except ConcurrencyError:
            gave_up += 1
            continue
        accepted.append((result["position"], int(result["shares_units"]), int(result["cost_units"])))
    results.put((agent, accepted, gave_up))
    app.close()


def test_two_processes_when_trading_one_artifact_at_once_then_every_accepted_trade_is_applied(durable_store_url):
    ledger = open_ledger(durable_store_url)
    ledger.initialise(decimals=6)
    for agent in SIDE_OF:
        ledger.open_account(agent)
        ledger.mint(agent, FUNDS_UNITS)
    ledger.list_artifact(ART, "Contested artifact", LIQUIDITY_UNITS, min_hold_days=0)

    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(SIDE_OF))
    results = context.Queue()
    workers = [context.Process(target=trade, args=(durable_store_url, agent, barrier, results)) for agent in SIDE_OF]
    for worker in workers:
        worker.start()
    outcomes = {}
    for _ in workers:
        agent, accepted, gave_up = results.get(timeout=120)
        outcomes[agent] = (accepted, gave_up)
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0

    reader = open_ledger(durable_store_url)
    artifact = reader.get_artifact(ART)
    accepted_all = [trade for accepted, _ in outcomes.values() for trade in accepted]
    for agent, (accepted, gave_up) in outcomes.items():
        assert len(accepted) + gave_up == ORDERS_PER_WORKER, (agent, gave_up)
    assert accepted_all, outcomes  # bounded retries let at least some trades through

    # No lost update: the outstanding shares are exactly the sum of what each side was sold.
    assert artifact.q_long == sum(shares for _, shares, _ in outcomes["alice"][0])
    assert artifact.q_short == sum(shares for _, shares, _ in outcomes["bob"][0])
    costs_units = {agent: sum(cost for _, _, cost in accepted) for agent, (accepted, _) in outcomes.items()}
    assert reader.balance_of(pool_account_id(ART)) == max_subsidy_units(LIQUIDITY_UNITS) + sum(costs_units.values())
    for agent in SIDE_OF:
        assert reader.balance_of(agent) == FUNDS_UNITS - costs_units[agent]

    # Every accepted trade is its own position, once; nothing given up left a position behind.
    position_ids = [position_id for position_id, _, _ in accepted_all]
    assert len(set(position_ids)) == len(position_ids)
    assert sorted(artifact.position_ids) == sorted(position_ids)
    for agent, (accepted, _) in outcomes.items():
        for position_id, shares_units, cost_units in accepted:
            position = reader.repository.get(position_uuid(position_id))
            assert isinstance(position, Position)
            assert (position.owner, position.side) == (agent, SIDE_OF[agent])
            assert (position.quantity_units, position.cost_units) == (shares_units, cost_units)

    report = audit(reader)
    assert report.clean, report.violations
    reader.close()
    ledger.close()
