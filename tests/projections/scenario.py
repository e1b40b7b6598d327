"""The histories the projection tests run: a small scenario that touches every view, and a
bulk log of tens of thousands of events for crash and concurrency tests.

Amounts are base units of a ledger with 6 decimals: ``TOKEN`` is one whole token.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from stakeledger.domain.decisions.trading import LimitOrder, MarketOrder
from stakeledger.domain.service.application import StakeLedger, TransferRequest
from stakeledger.domain.service.clock import ManualClock
from stakeledger.domain.vocabulary import WAD, Side
from stakeledger.projections.replay_check import view_contents
from stakeledger.projections.store import ViewStore

TOKEN = 10**6
AGENTS = ("ada", "bob", "cy", "dee")
FLAG_PRICE_WAD = 2 * WAD // 10
VALIDATE_PRICE_WAD = 8 * WAD // 10
DEPRECATE_PRICE_WAD = 5 * WAD // 100
# Each transition the bulk log picks, with a settlement price that meets its threshold.
BULK_TRANSITIONS = (("validated", VALIDATE_PRICE_WAD), ("deprecated", DEPRECATE_PRICE_WAD), ("flagged", FLAG_PRICE_WAD))


@dataclass
class Scenario:
    """Log positions worth asserting on, noted while the scenario ran."""

    after_mints: int
    after_transfer: int
    closed_position: str
    filled_order: str
    resting_order: str
    bounty: str


def head(app: StakeLedger) -> int:
    return app.recorder.max_notification_id() or 0


def run_scenario(app: StakeLedger, clock: ManualClock) -> Scenario:
    """Accounts, mints, transfers; a market with market and limit orders and a close; a
    flagged -> challenged -> listed -> validated life; a deprecated artifact with longs
    and shorts; a bounty distributed by weight."""
    for name in AGENTS:
        app.open_account(name)
        app.mint(name, 1_000 * TOKEN)
    after_mints = head(app)
    app.transfer("ada", "bob", 25 * TOKEN)
    after_transfer = head(app)
    clock.advance(days=1)

    app.list_artifact("MKT", "Market with orders", 100 * TOKEN, group="physics", min_hold_days=0)
    app.open_position("ada", "MKT", "long", 40 * TOKEN)
    app.open_position("bob", "MKT", "short", 20 * TOKEN)
    filled = app.place_limit_order("cy", "MKT", "long", 30 * TOKEN, 700_000_000_000_000_000)["order"]
    resting = app.place_limit_order("dee", "MKT", "short", 15 * TOKEN, 100_000_000_000_000_000)["order"]
    clock.advance(days=1)
    app.close_position("MKT/p2")

    app.list_artifact("LIFE", "Flagged then validated", 100 * TOKEN, group="biology", min_hold_days=0)
    app.open_position("ada", "LIFE", "long", 30 * TOKEN)
    app.open_position("bob", "LIFE", "short", 30 * TOKEN)
    app.open_position("cy", "LIFE", "long", 10 * TOKEN)
    clock.advance(days=1)
    # The resolver's prices meet seed 000's thresholds (flagged < 0.3, validated >= 0.7,
    # deprecated <= 0.1): the pool's own average after these few trades meets none of them.
    app.transition_artifact("LIFE", "flagged", reason="replication doubts", price_wad=FLAG_PRICE_WAD)
    app.transition_artifact("LIFE", "challenged")
    app.transition_artifact("LIFE", "listed")
    app.transition_artifact("LIFE", "validated", price_wad=VALIDATE_PRICE_WAD)

    app.list_artifact("DEP", "Deprecated", 100 * TOKEN, min_hold_days=0)
    app.open_position("ada", "DEP", "long", 10 * TOKEN)
    app.open_position("cy", "DEP", "short", 25 * TOKEN)
    app.open_position("dee", "DEP", "short", 5 * TOKEN)
    bounty = app.post_bounty("DEP", "bob", 30 * TOKEN)["bounty"]
    clock.advance(days=1)
    app.transition_artifact("DEP", "deprecated", price_wad=DEPRECATE_PRICE_WAD)
    app.distribute_bounty(bounty, [("ada", Fraction(1)), ("cy", Fraction(2))])
    return Scenario(after_mints, after_transfer, "MKT/p2", filled, resting, bounty)


def bulk_log(app: StakeLedger, clock: ManualClock, events: int, *, seed: int = 11) -> None:
    """At least ``events`` more events: batched trades on a few markets, settlements, and
    batched transfers. ``app`` must be initialised."""
    rng = random.Random(seed)
    agents = [f"bulk-{i:03d}" for i in range(60)]
    if not _exists(app, agents[0]):
        for name in agents:
            app.open_account(name)
            app.mint(name, 10**6 * TOKEN)
    target = head(app) + events
    market = 0
    while head(app) < target:
        market += 1
        artifact = f"BULK-{seed}-{market}"
        app.list_artifact(artifact, artifact, 500 * TOKEN, min_hold_days=0)
        orders: list[MarketOrder | LimitOrder] = []
        for i in range(150):
            side = rng.choice((Side.LONG, Side.SHORT))
            if i % 10 == 9:
                orders.append(
                    LimitOrder(
                        rng.choice(agents), artifact, side, rng.randint(1, 20) * TOKEN, rng.randint(30, 70) * WAD // 100
                    )
                )
            else:
                orders.append(MarketOrder(rng.choice(agents), artifact, side, rng.randint(1, 20) * TOKEN))
        app.trade_batch(orders)
        clock.advance(seconds=60)
        to_state, price_wad = rng.choice(BULK_TRANSITIONS)
        app.transition_artifact(artifact, to_state, price_wad=price_wad)
        requests = [TransferRequest(*rng.sample(agents, 2), rng.randint(1, 1000)) for _ in range(1000)]
        app.transfer_many(requests)


def _exists(app: StakeLedger, name: str) -> bool:
    from stakeledger.domain.errors import UnknownAccountError

    try:
        app.get_account(name)
    except UnknownAccountError:
        return False
    return True


def view_rows(store: ViewStore) -> dict[str, Any]:
    """Every view table's rows as stored, keyed by primary key, plus the tracking positions."""
    tables: dict[str, Any] = view_contents(store)
    tables["positions"] = store.positions()
    return tables
