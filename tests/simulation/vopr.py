"""A deterministic simulation of the whole ledger under injected faults (after TigerBeetle's VOPR).

From one seed, several simulated clients send random commands (every verb of the service
layer and its API-key functions, valid and invalid, most with client command ids) to one
``StakeLedger`` opened on a store URL with a ``ManualClock`` and ``SeededIds``. Meanwhile:

- a fault-injecting wrapper around the store's ``insert_events`` fails saves: *before* the
  write (nothing reaches the store), *torn* (part of the events are written inside the
  transaction, which then aborts; SQLite and PostgreSQL only) and *after* the write (the
  transaction committed but the caller sees a crash, as when a connection drops before the
  acknowledgement arrives), and *lost answer* (the transaction committed but the store
  reports an ``OperationalError``, as a connection lost during COMMIT does);
- the projection runner is stopped part-way, crashed inside a page's transaction, given a
  random page size, catches up to a random position, and is replaced by a new runner (a
  restarted worker); on SQLite and PostgreSQL the ledger process itself is "restarted"
  (closed and opened again with a cold aggregate cache).

After every step the simulation checks:

- the store holds exactly the events of the saves that committed, each once (a torn write
  left nothing behind, a failed save wrote nothing);
- a refused command (``LedgerError``) committed nothing; an acknowledged one committed at
  most one save; a command id, however often retried, committed exactly one save once it is
  acknowledged, and every retry answers what the first acknowledgement said;
- no acknowledged command's events are missing, and its command record still answers;
- ``projections.audit`` finds nothing, and every view equals a fresh replay of the log to
  the view's position (``projections.replay_check``).

Any other exception is a bug in the product. A failure names the seed, backend and step and
prints the last commands; the same seed on the same backend replays the run exactly:

    python -m tests.simulation.vopr --backend sqlite --seed 17 [--steps 60] [-v]
    python -m tests.simulation.vopr --seeds 500 --backend all     # what `make simulate` runs
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from fractions import Fraction
from typing import Any

from eventsourcing.persistence import OperationalError

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.domain.decisions.trading import LimitOrder, MarketOrder
from stakeledger.domain.errors import CommandConflictError, LedgerError
from stakeledger.domain.model.settings import command_uuid
from stakeledger.domain.service import apikeys
from stakeledger.domain.service.application import StakeLedger, TransferRequest
from stakeledger.domain.service.clock import ManualClock
from stakeledger.domain.service.ids import SeededIds
from stakeledger.domain.vocabulary import STATES, WAD, Side
from stakeledger.projections.audit import audit
from stakeledger.projections.replay_check import replay_check
from stakeledger.projections.runner import Runner
from stakeledger.projections.store import ViewStore, open_store

BACKENDS = ("memory", "sqlite", "postgres")
POSTGRES_URL_ENV = "STAKELEDGER_TEST_POSTGRES_URL"
DEFAULT_STEPS = 40
DECIMALS = 6
TOKEN = 10**DECIMALS
START = datetime(2026, 1, 1, tzinfo=timezone.utc)
HISTORY_SHOWN = 25
# Verbs that are functions over the ledger (domain/service/apikeys.py) rather than its methods;
# they take no command id.
FUNCTION_VERBS = {"issue_key": apikeys.issue_key, "revoke_key": apikeys.revoke_key}
NO_COMMAND_ID = {"evaluate_risk", *FUNCTION_VERBS}


class SimulatedCrash(Exception):
    """A fault the simulation injected where a real process would die or lose its connection."""


class SimulationFailure(AssertionError):
    """An invariant broke: the message names the seed, backend and step."""


# Faults at the store ------------------------------------------------------------------------

BEFORE, TORN, AFTER, LOST = "before", "torn", "after", "lost answer"
EventKey = tuple[str, int]  # (originator id, version): unique in a store


@dataclass
class Commit:
    label: int  # the logical command (its index in the simulation's history)
    events: frozenset[EventKey]


class FaultyStore:
    """Wraps the application recorder's ``insert_events`` on one ledger object.

    ``arm(kind)`` makes the next save fail that way. Every save that commits is kept with
    the label of the command that made it, so the simulation knows exactly which events
    the store must hold, and how many saves each command made."""

    def __init__(self, app: StakeLedger, backend: str, commits: list[Commit], counts: Counter[str]) -> None:
        self.app, self.backend, self.commits, self.counts = app, backend, commits, counts
        self.recorder = app.recorder
        self.real = self.recorder.insert_events
        self.armed: list[str] = []
        self.label = -1
        self.recorder.insert_events = self.insert_events

    def arm(self, kinds: list[str]) -> None:
        self.armed = list(kinds)

    def disarm(self) -> None:
        self.armed = []

    def insert_events(self, stored_events: Any, **kwargs: Any) -> Any:
        kind = self.armed.pop(0) if self.armed else None
        if kind is not None and stored_events:
            self.counts[kind] += 1
        if kind == BEFORE or (kind == TORN and self.backend == "memory"):
            raise OperationalError("simulated: the store refused the write before it started")
        if kind == TORN and stored_events:
            try:
                self._torn(stored_events)
            except _Abort:
                pass
            raise OperationalError("simulated: the connection died inside the write's transaction")
        result = self.real(stored_events, **kwargs)
        if stored_events:
            self.commits.append(
                Commit(self.label, frozenset((str(e.originator_id), e.originator_version) for e in stored_events))
            )
        if kind == AFTER and stored_events:
            raise SimulatedCrash("simulated: the write committed, then the connection dropped before the answer")
        if kind == LOST and stored_events:
            # What PostgreSQL's driver reports for a connection lost around COMMIT: the ledger
            # must find out that the save landed instead of deciding the command again.
            raise OperationalError("simulated: the connection was lost during COMMIT (the commit landed)")
        return result

    def _torn(self, stored_events: Any) -> None:
        """Write the first part of the events inside the store's transaction, then abort it."""
        part = stored_events[: max(1, len(stored_events) // 2)]
        recorder = self.recorder
        if self.backend == "sqlite":
            with recorder.datastore.transaction(commit=True) as cursor:
                recorder._insert_events(cursor, part)
                raise _Abort
        rows = [
            recorder.construct_pg_stored_event(e.originator_id, e.originator_version, e.topic, e.state) for e in part
        ]
        with recorder.datastore.get_connection() as connection, connection.transaction(), connection.cursor() as cursor:
            recorder._lock_table(cursor)
            cursor.execute(recorder.sql_invoke_pg_function_insert_events, (rows,), prepare=True)
            raise _Abort


class _Abort(Exception):
    """Raised inside the torn write's transaction, so the store rolls it back."""


# The simulated world --------------------------------------------------------------------------


def _normal(value: Any) -> str:
    """A result as comparable text: enums by value, the rest as JSON would print it."""
    return json.dumps(value, sort_keys=True, default=lambda o: o.value if isinstance(o, Enum) else str(o))


@dataclass
class Op:
    """One logical command: a verb, its arguments, and the client command id, if any."""

    index: int
    client: str
    verb: str
    kwargs: dict[str, Any]
    command_id: str | None = None
    outcome: str = "pending"  # acked, refused, lost (an injected crash: unknown to the client)
    result: str | None = None
    faults: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self.kwargs.items())
        cid = f" [{self.command_id}]" if self.command_id else ""
        faults = f" faults={self.faults}" if self.faults else ""
        return f"#{self.index} {self.client}: {self.verb}({args}){cid}{faults} -> {self.outcome}"


@dataclass
class Knowledge:
    """What the clients learnt from answers: names to aim the next commands at."""

    accounts: list[str] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)
    positions: dict[str, str] = field(default_factory=dict)  # id -> owner
    orders: dict[str, str] = field(default_factory=dict)
    bounties: dict[str, str] = field(default_factory=dict)

    def learn(self, op: Op, result: dict[str, Any]) -> None:
        agent = op.kwargs.get("agent") or op.kwargs.get("name") or op.kwargs.get("sponsor")
        if op.verb == "open_account":
            self.accounts.append(result["account"])
        elif op.verb == "list_artifact":
            self.artifacts.append(result["artifact"])
        elif op.verb == "post_bounty":
            self.bounties[result["bounty"]] = agent
        entries = result.get("results") or [result.get("trade") or result]
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            owner = entry.get("agent", agent)
            if op.verb == "trade_batch":
                owner = op.kwargs["orders"][entries.index(entry)].agent
            if "position" in entry and op.verb in ("open_position", "trade_batch", "kelly_order"):
                self.positions[entry["position"]] = owner
            if "order" in entry and op.verb in ("place_limit_order", "trade_batch"):
                self.orders[entry["order"]] = owner


class Simulation:
    def __init__(self, seed: int, backend: str, url: str, *, steps: int = DEFAULT_STEPS, verbose: bool = False) -> None:
        self.seed, self.backend, self.url, self.steps, self.verbose = seed, backend, url, steps, verbose
        self.rng = random.Random(seed)
        self.clock = ManualClock(START)
        self.ids = SeededIds(seed)
        self.commits: list[Commit] = []
        self.counts: Counter[str] = Counter()
        self.history: list[Op] = []
        self.known = Knowledge()
        self.clients = [f"c{i}" for i in range(self.rng.randint(2, 4))]
        self.agents = {client: f"a{i}" for i, client in enumerate(self.clients)}
        self.pending: dict[str, list[Op]] = {client: [] for client in self.clients}  # lost, to retry
        self.acked_ids: dict[str, Op] = {}
        self.sequence = Counter()
        self.step = 0
        self.app: StakeLedger = open_ledger(url, clock=self.clock, new_id=self.ids)
        self.faults = FaultyStore(self.app, backend, self.commits, self.counts)
        self.app.initialise(decimals=DECIMALS)
        self.store: ViewStore = open_store(self.app)
        self.runner: Runner | None = None

    # The run ----------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        started = time.process_time()
        try:
            self._bootstrap()
            for step in range(1, self.steps + 1):
                self.step = step
                self._advance_clock()
                self._client_step()
                if self.rng.random() < 0.4:
                    self._runner_step()
                if self.backend != "memory" and self.rng.random() < 0.05:
                    self._restart_ledger()
                self.check()
            self.step = self.steps + 1
            self._drain()
            self._runner_catch_up_fully()
            self.check(final=True)
        finally:
            self.close()
        return {
            "seed": self.seed,
            "backend": self.backend,
            "commands": len(self.history),
            "outcomes": dict(Counter(op.outcome for op in self.history)),
            "faults": dict(self.counts),
            "cpu_seconds": round(time.process_time() - started, 3),
        }

    def close(self) -> None:
        try:
            if not getattr(self.store, "shared", False):
                self.store.close()
        finally:
            self.app.close()

    def fail(self, message: str) -> None:
        shown = "\n".join(f"  {op}" for op in self.history[-HISTORY_SHOWN:])
        raise SimulationFailure(
            f"seed {self.seed} on {self.backend}, step {self.step}: {message}\n"
            f"last commands:\n{shown}\n"
            f"reproduce: python -m tests.simulation.vopr --backend {self.backend} --seed {self.seed} "
            f"--steps {self.steps} -v"
        )

    def _bootstrap(self) -> None:
        """Every client's agent gets an account and tokens, and one market is listed."""
        for client in self.clients:
            agent = self.agents[client]
            self.submit(client, "open_account", {"name": agent}, command_id=self._command_id(client))
            self.submit(client, "mint", {"name": agent, "amount_units": 1_000 * TOKEN}, command_id=None)
        self.submit("op", "list_artifact", self._listing(), command_id="op-boot")

    def _advance_clock(self) -> None:
        roll = self.rng.random()
        if roll < 0.5:
            self.clock.advance(seconds=self.rng.randint(1, 600))
        elif roll < 0.8:
            self.clock.advance(days=self.rng.randint(1, 3))

    def _command_id(self, client: str) -> str:
        self.sequence[client] += 1
        return f"{client}-{self.seed}-{self.sequence[client]}"

    # Clients ------------------------------------------------------------------------------

    def _client_step(self) -> None:
        client = self.rng.choice([*self.clients, "op"])
        if client != "op" and self.pending[client] and self.rng.random() < 0.6:
            self.retry(self.pending[client].pop(0))
            return
        if self.acked_ids and self.rng.random() < 0.08:
            self._replay_acked()
            return
        if self.acked_ids and self.rng.random() < 0.04:
            self._conflicting_id()
            return
        verb, kwargs = self._operator_command() if client == "op" else self._agent_command(client)
        takes_id = verb not in NO_COMMAND_ID
        command_id = self._command_id(client) if takes_id and self.rng.random() < 0.75 else None
        self._arm_faults()
        self.submit(client, verb, kwargs, command_id=command_id)

    def _arm_faults(self) -> None:
        if self.rng.random() < 0.35:
            kinds = [self.rng.choice((BEFORE, TORN, AFTER, LOST)) for _ in range(self.rng.randint(1, 3))]
            self.faults.arm(kinds)

    def submit(self, client: str, verb: str, kwargs: dict[str, Any], *, command_id: str | None) -> Op:
        op = Op(len(self.history), client, verb, kwargs, command_id)
        self.history.append(op)
        self._attempt(op)
        if op.outcome == "lost" and command_id is not None and client in self.pending:
            self.pending[client].append(op)
        elif op.outcome == "lost" and command_id is not None:
            self.pending.setdefault(client, []).append(op)
        return op

    def retry(self, op: Op) -> None:
        """The client sends a command whose answer it never got again, with the same id."""
        self._arm_faults()
        self._attempt(op, retry=True)
        if op.outcome == "lost":
            self.pending[op.client].append(op)

    def _attempt(self, op: Op, *, retry: bool = False) -> None:
        before = len(self.commits)
        armed = list(self.faults.armed)
        self.faults.label = op.index
        call = self._verb(op.verb)
        kwargs = dict(op.kwargs)
        if op.command_id is not None:
            kwargs["command_id"] = op.command_id
        outcome: str
        result: Any = None
        try:
            result = call(**kwargs)
            outcome = "acked"
        except LedgerError as error:
            outcome = "refused"
            result = error
        except SimulatedCrash:
            outcome = "lost"
        except Exception as error:
            self.fail(f"{op} raised {type(error).__name__}: {error}\n{traceback.format_exc()}")
        finally:
            used = len(armed) - len(self.faults.armed)
            op.faults.extend(armed[:used])
            self.faults.disarm()
            self.faults.label = -1
        made = len(self.commits) - before
        op.outcome = outcome
        if outcome == "refused":
            if made:
                self.fail(f"{op} was refused ({result}) but committed {made} save(s)")
            if retry and not isinstance(result, CommandConflictError):
                self.fail(f"retry of {op} was refused ({type(result).__name__}: {result}) after a lost answer")
            return
        if made > 1:
            self.fail(f"{op} committed {made} saves for one call")
        if outcome == "lost":
            return
        if op.verb == "issue_key":
            result = {k: v for k, v in result.items() if k != "key"}  # the secret is random by design
        op.result = _normal(result)
        if op.command_id is not None:
            first = self.acked_ids.get(op.command_id)
            if first is not None and first.result != op.result:
                self.fail(f"retry of {op} answered {op.result}, the first answer was {first.result}")
            self.acked_ids.setdefault(op.command_id, op)
            saves = sum(1 for commit in self.commits if commit.label == op.index)
            if saves != 1:
                self.fail(f"{op} is acknowledged with {saves} committed saves under its command id, not 1")
        if self.verbose:
            print(f"  {op}")
        self.known.learn(op, result)

    def _verb(self, verb: str) -> Callable[..., Any]:
        function = FUNCTION_VERBS.get(verb)
        if function is None:
            return getattr(self.app, verb)
        return lambda **kwargs: function(self.app, **kwargs)

    def _replay_acked(self) -> None:
        """Send an acknowledged command again with its id: the same answer, nothing written."""
        op = self.acked_ids[self.rng.choice(sorted(self.acked_ids))]
        before = len(self.commits)
        kwargs = {**op.kwargs, "command_id": op.command_id}
        try:
            again = _normal(self._verb(op.verb)(**kwargs))
        except LedgerError as error:
            self.fail(f"replaying acknowledged {op} was refused: {type(error).__name__}: {error}")
        if again != op.result:
            self.fail(f"replaying acknowledged {op} answered {again}, the first answer was {op.result}")
        if len(self.commits) != before:
            self.fail(f"replaying acknowledged {op} wrote {len(self.commits) - before} save(s)")

    def _conflicting_id(self) -> None:
        """An acknowledged command id reused for another command is refused and writes nothing."""
        candidates = sorted(cid for cid, op in self.acked_ids.items() if op.verb != "mint")
        if not candidates:
            return
        cid = self.rng.choice(candidates)
        op = self.submit("op", "mint", {"name": self.agents[self.clients[0]], "amount_units": 1}, command_id=cid)
        if op.outcome != "refused":
            self.fail(f"command id {cid!r} of {self.acked_ids[cid]} was reused for a mint and not refused")

    # Commands -----------------------------------------------------------------------------

    def _some(self, known: list[str], junk: list[str]) -> str:
        if known and self.rng.random() < 0.85:
            return self.rng.choice(known)
        return self.rng.choice(junk)

    def _amount(self, low: int = 1, high: int = 200 * TOKEN) -> int:
        roll = self.rng.random()
        if roll < 0.04:
            return self.rng.choice((0, -1, -TOKEN))
        if roll < 0.06:
            return 10**30  # more than anyone holds
        return self.rng.randint(low, high)

    def _agent_name(self, client: str) -> str:
        if self.rng.random() < 0.9:
            return self.agents[client]
        return self.rng.choice([*self.agents.values(), "ghost", "bad name", ""])

    def _artifact(self) -> str:
        return self._some(self.known.artifacts, ["ART-404", "art 1", "ART-1/p1"])

    def _side(self) -> str:
        return self.rng.choice(("long", "short", "long", "short", "sideways"))

    def _listing(self) -> dict[str, Any]:
        number = len(self.known.artifacts) + 1 if self.rng.random() < 0.9 else 1
        return {
            "artifact_id": f"ART-{number}",
            "title": f"artifact {number}",
            "liquidity_units": self.rng.choice((50, 100, 400)) * TOKEN if self.rng.random() < 0.95 else 0,
            "min_hold_days": self.rng.choice((0, 0, 1)),
            "group": self.rng.choice((None, "g1", "g2")),
        }

    def _position(self, client: str) -> str:
        mine = sorted(pid for pid, owner in self.known.positions.items() if owner == self.agents[client])
        every = sorted(self.known.positions)
        return self._some(mine or every, ["ART-1/p999", "nope"])

    def _order(self, client: str) -> str:
        mine = sorted(oid for oid, owner in self.known.orders.items() if owner == self.agents[client])
        return self._some(mine or sorted(self.known.orders), ["ART-1/o999"])

    def _market_order(self, client: str) -> MarketOrder | LimitOrder:
        side = Side(self.rng.choice(("long", "short")))
        agent, artifact = self._agent_name(client), self._artifact()
        if self.rng.random() < 0.7:
            return MarketOrder(agent, artifact, side, self._amount(TOKEN // 10, 30 * TOKEN))
        return LimitOrder(agent, artifact, side, self._amount(TOKEN // 10, 30 * TOKEN), self._price())

    def _price(self) -> int:
        if self.rng.random() < 0.05:
            return self.rng.choice((0, WAD, -1))
        return self.rng.randint(5, 95) * WAD // 100

    def _agent_command(self, client: str) -> tuple[str, dict[str, Any]]:
        agent = self._agent_name(client)
        others = [a for a in self.agents.values() if a != agent] or [agent]
        verb = self.rng.choices(
            [
                "open_position",
                "place_limit_order",
                "cancel_order",
                "close_position",
                "trade_batch",
                "transfer",
                "transfer_many",
                "burn",
                "set_stop",
                "post_bounty",
                "configure_portfolio",
                "configure_market",
                "liquidate_portfolio",
                "kelly_order",
                "open_account",
            ],
            weights=[14, 8, 4, 6, 4, 5, 2, 2, 3, 3, 1, 1, 1, 2, 1],
        )[0]
        art = self._artifact
        if verb == "open_position":
            kwargs: dict[str, Any] = {
                "agent": agent,
                "artifact_id": art(),
                "side": self._side(),
                "tokens_units": self._amount(TOKEN // 10, 50 * TOKEN),
            }
            if self.rng.random() < 0.1:
                kwargs["max_price_wad"] = self._price()
            return verb, kwargs
        if verb == "place_limit_order":
            return verb, {
                "agent": agent,
                "artifact_id": art(),
                "side": self._side(),
                "tokens_units": self._amount(TOKEN // 10, 30 * TOKEN),
                "limit_price_wad": self._price(),
                "expires_in_days": self.rng.choice((None, None, 1, 2)),
            }
        if verb == "cancel_order":
            return verb, {"order_id": self._order(client), "agent": agent}
        if verb == "close_position":
            return verb, {"position_id": self._position(client), "agent": agent}
        if verb == "trade_batch":
            return verb, {"orders": [self._market_order(client) for _ in range(self.rng.randint(1, 4))]}
        if verb == "transfer":
            reason = self.rng.choice(("transfer", "transfer", "transfer:rent", "mint"))
            return verb, {
                "source": agent,
                "destination": self.rng.choice(others),
                "amount_units": self._amount(),
                "reason": reason,
            }
        if verb == "transfer_many":
            requests = [TransferRequest(agent, self.rng.choice(others), self._amount()) for _ in range(2)]
            return verb, {"requests": requests}
        if verb == "burn":
            return verb, {"name": agent, "amount_units": self._amount(1, 20 * TOKEN)}
        if verb == "set_stop":
            trail = self.rng.choice(("5", "10", "25", "0", "-3", "junk"))
            return verb, {"position_id": self._position(client), "trail_pct": trail}
        if verb == "post_bounty":
            return verb, {"artifact_id": art(), "sponsor": agent, "amount_units": self._amount(1, 20 * TOKEN)}
        if verb == "configure_portfolio":
            return verb, {
                "agent": agent,
                "max_positions": self.rng.choice((3, 10, 0)),
                "min_trade_size_units": self.rng.choice((TOKEN // 10, 5 * TOKEN)),
            }
        if verb == "configure_market":
            return verb, {"agent": agent, "artifact_id": art(), "trail_pct": self.rng.choice(("10", "30", None))}
        if verb == "liquidate_portfolio":
            return verb, {"agent": agent}
        if verb == "kelly_order":
            belief = self.rng.randint(1, 99) * WAD // 100 if self.rng.random() < 0.95 else WAD
            return verb, {"agent": agent, "artifact_id": art(), "belief_wad": belief}
        return "open_account", {"name": self.rng.choice([agent, f"x{self.rng.randint(0, 9)}", "bad name"])}

    def _operator_command(self) -> tuple[str, dict[str, Any]]:
        verb = self.rng.choices(
            [
                "mint",
                "list_artifact",
                "transition_artifact",
                "distribute_bounty",
                "refund_bounty",
                "evaluate_risk",
                "issue_key",
                "revoke_key",
            ],
            weights=[5, 3, 3, 2, 1, 2, 1, 1],
        )[0]
        if verb in FUNCTION_VERBS:
            key_id = f"{self.rng.randrange(4):016x}"  # few ids, so some are taken or unknown
            if verb == "revoke_key":
                return verb, {"key_id": key_id if self.rng.random() < 0.9 else "not-a-key"}
            scope = self.rng.choice((apikeys.TRADE, apikeys.ADMIN, "root"))
            return verb, {"agent": self._agent_name(self.clients[0]), "scope": scope, "key_id": key_id}
        if verb == "mint":
            return verb, {"name": self.rng.choice(list(self.agents.values())), "amount_units": self._amount()}
        if verb == "list_artifact":
            return verb, self._listing()
        if verb == "transition_artifact":
            price = None if self.rng.random() < 0.5 else self._price()
            return verb, {"artifact_id": self._artifact(), "new_state": self.rng.choice(STATES), "price_wad": price}
        bounty = self._some(sorted(self.known.bounties), ["ART-1/b999"])
        if verb == "distribute_bounty":
            names = self.rng.sample(list(self.agents.values()), k=min(2, len(self.agents)))
            if self.rng.random() < 0.8:
                weights = [Fraction(1, len(names))] * len(names)
            else:
                weights = [Fraction(2, 3)] * len(names)  # does not sum to 1
            return verb, {"bounty_id": bounty, "claimants": list(zip(names, weights, strict=True))}
        if verb == "refund_bounty":
            return verb, {"bounty_id": bounty}
        return "evaluate_risk", {"artifact_id": self._artifact()}

    # The projection runner and the process ------------------------------------------------

    def _new_runner(self) -> Runner:
        return Runner(self.app, self.store, page_size=self.rng.randint(1, 8))

    def _runner_step(self) -> None:
        """Run the views part of the way, stop them, crash them or start a new runner."""
        kind = self.rng.choice(("partial", "full", "stop", "crash", "restart"))
        if kind == "restart" or self.runner is None:
            self.runner = self._new_runner()
            self.counts["runner restarts"] += 1
            if kind == "restart":
                return
        runner = self.runner
        head = self.app.recorder.max_notification_id() or 0
        if kind == "partial":
            runner.catch_up(until=self.rng.randint(0, head))
        elif kind == "full":
            runner.catch_up()
        elif kind == "stop":
            stop, pages = threading.Event(), self.rng.randint(1, 4)
            calls = Counter()

            def progress(done: int, total: int) -> None:
                calls["pages"] += 1
                if calls["pages"] > pages:
                    stop.set()

            report = runner.catch_up(progress=progress, stop=stop)
            self.counts["runner stops"] += int(report.stopped)
        else:
            self._crash_runner(runner)

    def _crash_runner(self, runner: Runner) -> None:
        """Kill the runner inside the k-th page's view transaction: that page must leave nothing."""
        store, real, deadline = self.store, self.store.set_position, self.rng.randint(1, 3)
        calls = Counter()

        def set_position(view: str, position: int) -> None:
            calls["set"] += 1
            if calls["set"] == deadline:
                raise SimulatedCrash("simulated: the projection worker died inside a page")
            real(view, position)

        store.set_position = set_position  # type: ignore[method-assign]
        try:
            runner.catch_up()
        except SimulatedCrash:
            self.counts["runner crashes"] += 1
            self.runner = None  # the process is gone; the next one starts cold
        finally:
            del store.set_position

    def _runner_catch_up_fully(self) -> None:
        self.runner = self._new_runner()
        self.runner.catch_up()

    def _restart_ledger(self) -> None:
        """Close the ledger and the views and open them again: a cold aggregate cache."""
        self.close()
        self.app = open_ledger(self.url, clock=self.clock, new_id=self.ids)
        self.faults = FaultyStore(self.app, self.backend, self.commits, self.counts)
        self.store = open_store(self.app)
        self.runner = None
        self.counts["ledger restarts"] += 1

    def _drain(self) -> None:
        """Every client retries what it never got an answer to until it gets one (no faults now)."""
        for client in sorted(self.pending):
            while self.pending[client]:
                self.retry_without_faults(self.pending[client].pop(0))

    def retry_without_faults(self, op: Op) -> None:
        self._attempt(op, retry=True)
        if op.outcome != "acked":
            self.fail(f"retry of {op} without faults ended {op.outcome}")

    # Checks -------------------------------------------------------------------------------

    def check(self, *, final: bool = False) -> None:
        self._check_log()
        report = audit(self.app, views=_NoViews())
        if not report.clean:
            self.fail("audit: " + "; ".join(str(v) for v in report.violations))
        differences = replay_check(self.app, self.store)
        if differences:
            self.fail("views differ from a replay: " + "; ".join(str(d) for d in differences[:5]))
        if final:
            self._check_command_records()

    def _check_log(self) -> None:
        """The store holds the events of the committed saves, each once, and nothing else."""
        expected: Counter[EventKey] = Counter()
        for commit in self.commits:
            expected.update(commit.events)
        if expected and max(expected.values()) > 1:
            self.fail("an event was committed twice: " + str(expected.most_common(1)))
        stored = Counter(_stored_keys(self.app))
        missing = expected.keys() - stored.keys()
        extra = stored.keys() - expected.keys()
        if missing:
            owners = sorted({c.label for c in self.commits if c.events & missing})
            self.fail(f"{len(missing)} committed event(s) missing from the store, of commands {owners}")
        if extra:
            self.fail(f"{len(extra)} event(s) in the store that no committed save wrote: {sorted(extra)[:3]}")

    def _check_command_records(self) -> None:
        for command_id, op in sorted(self.acked_ids.items()):
            record = self.app.repository.get(command_uuid(command_id))
            if _normal(record.result) != op.result:
                self.fail(f"the command record of {op} says {_normal(record.result)}, it answered {op.result}")
            saves = [commit for commit in self.commits if commit.label == op.index]
            if len(saves) != 1:
                self.fail(f"{op} has {len(saves)} committed saves, not exactly 1")


class _NoViews:
    """The audit's view check is done separately, without catching the views up."""

    name = "projections"

    def observe(self, position: int, event: Any) -> tuple[()]:
        return ()

    def finish(self, app: Any) -> tuple[()]:
        return ()


def _stored_keys(app: StakeLedger) -> Iterator[EventKey]:
    start = 1
    while True:
        page = app.recorder.select_notifications(start=start, limit=1_000)
        for notification in page:
            yield str(notification.originator_id), notification.originator_version
        if len(page) < 1_000:
            return
        start = page[-1].id + 1


# Running seeds ---------------------------------------------------------------------------------


def store_url_for(backend: str, directory: str, postgres_url: str | None) -> str:
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite:///{os.path.join(directory, f'sim-{uuid.uuid4().hex[:8]}.db')}"
    if not postgres_url:
        raise SystemExit(f"the postgres backend needs {POSTGRES_URL_ENV} (or --postgres-url)")
    import psycopg

    schema = f"sim_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    return f"{postgres_url}?schema={schema}"


def drop_schema(url: str) -> None:
    if not url.startswith("postgres") or "?schema=" not in url:
        return
    import psycopg

    server, schema = url.split("?schema=", 1)
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def run_seed(
    seed: int,
    backend: str,
    *,
    steps: int = DEFAULT_STEPS,
    postgres_url: str | None = None,
    verbose: bool = False,
    make: Callable[..., Simulation] = Simulation,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="vopr-") as directory:
        url = store_url_for(backend, directory, postgres_url or os.environ.get(POSTGRES_URL_ENV))
        try:
            return make(seed, backend, url, steps=steps, verbose=verbose).run()
        finally:
            drop_schema(url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the ledger's fault-injecting simulation from seeds.")
    parser.add_argument("--seed", type=int, help="run this one seed (reproduces a failure exactly)")
    parser.add_argument("--seeds", type=int, default=100, help="run seeds first..first+N-1 (default 100)")
    parser.add_argument("--first", type=int, default=0, help="the first seed of --seeds (default 0)")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="client steps per seed")
    parser.add_argument("--backend", choices=[*BACKENDS, "all"], default="all", help="store to run on")
    parser.add_argument("--postgres-url", help=f"PostgreSQL server (default ${POSTGRES_URL_ENV})")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every acknowledged command")
    args = parser.parse_args(argv)
    backends = BACKENDS if args.backend == "all" else (args.backend,)
    if args.backend == "all" and not (args.postgres_url or os.environ.get(POSTGRES_URL_ENV)):
        backends = ("memory", "sqlite")
        print(f"(no {POSTGRES_URL_ENV}: PostgreSQL skipped)", file=sys.stderr)
    seeds = [args.seed] if args.seed is not None else range(args.first, args.first + args.seeds)
    failures = 0
    totals: Counter[str] = Counter()
    for backend in backends:
        started = time.process_time()
        for seed in seeds:
            try:
                summary = run_seed(
                    seed, backend, steps=args.steps, postgres_url=args.postgres_url, verbose=args.verbose
                )
            except SimulationFailure as failure:
                failures += 1
                print(f"FAIL {failure}", file=sys.stderr)
                continue
            totals.update({f"{backend} {k}": v for k, v in summary["faults"].items()})
            totals[f"{backend} commands"] += summary["commands"]
            if args.verbose or args.seed is not None:
                print(json.dumps(summary))
        print(f"{backend}: {len(seeds)} seeds, {time.process_time() - started:.1f} s CPU")
    print(json.dumps(dict(sorted(totals.items()))))
    print("failures:", failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
