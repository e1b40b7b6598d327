"""Soak: CLI processes and ``stakeledger serve --workers 2`` on one store, with workers SIGKILLed.

For a bounded time (default 5 minutes) on PostgreSQL and on SQLite:

- HTTP clients (threads, one agent each) mint, transfer and buy through ``serve --workers 2``,
  each request with its own ``Idempotency-Key``;
- CLI clients (threads, each running ``stakeledger`` processes one after another, one agent
  each) do the same with ``--command-id``;
- every ``--kill-every`` seconds a random victim is SIGKILLed: one of the server's worker
  processes (uvicorn's supervisor starts a new one) or a running CLI process;
- a client whose request got no answer (a dropped connection, a killed process, a 5xx, a
  409 CONCURRENCY_CONFLICT) sends it again with the same key or command id until it is
  acknowledged or refused; every acknowledged request goes into the client's log.

At the end, with nothing running any more: every acknowledged command's record is in the
store, each agent's balance equals what its acknowledged requests add up to (a command
lost or applied twice shows as a difference), the audit is clean and every view equals a
fresh replay (``projections.audit`` with its views check, which catches the views up first).
It prints requests acknowledged, kills survived, and anything lost (the goal is 0).

    python bench/soak.py [--seconds 300] [--quick] [--backend sqlite|postgresql|both]
                         [--http-clients 3] [--cli-clients 2] [--cli-pause 0.5] [--kill-every 3]
                         [--worker-healthcheck SECONDS] [-v]

On a machine short of CPU, ``--worker-healthcheck 60`` keeps uvicorn's supervisor from killing
workers that are merely slow to start (see docs/simulation.md); the kills are then the soak's own.

PostgreSQL comes from ``STAKELEDGER_BENCH_POSTGRES_URL`` (or a throwaway server, as every
benchmark). Exit status 1 if anything was lost, duplicated or found by the audit.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from _common import ROOT, fresh_store, log, postgres_server

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.domain.errors import LedgerError
from stakeledger.domain.model.settings import command_uuid
from stakeledger.domain.service import apikeys
from stakeledger.projections.audit import audit
from tests.api.serving import free_port, stop, wait_until_serving

DECIMALS = 6
TOKEN = 10**DECIMALS
ART = "SOAK-1"
FUNDING_UNITS = 1_000_000 * TOKEN
START_SECONDS = 180
REQUEST_TIMEOUT = 30
CLI_TIMEOUT = 120
# `stakeledger ARGS...` with uvicorn.run given a longer worker health check: on a CPU-starved
# machine a new worker takes longer than uvicorn's default 5 s to answer its first ping (it
# imports the CLI and the app first), and the supervisor kills it, again and again.
PATIENT_SERVE = (
    "import functools, sys, uvicorn; "
    "uvicorn.run = functools.partial(uvicorn.run, timeout_worker_healthcheck=int(sys.argv[1])); "
    "sys.argv = ['stakeledger', *sys.argv[2:]]; "
    "from stakeledger.cli.main import main; main()"
)
# Answers that say the command may not have run: send it again with the same key.
RETRY_ERRORS = ("CONCURRENCY_CONFLICT", "STORE_ERROR")


@dataclass
class Ack:
    """One acknowledged request: what it should have done to balances."""

    client: str
    command_id: str  # the ledger's command id (HTTP: http:<caller>:<key>)
    verb: str
    agent: str
    other: str | None
    amount_units: int  # minted, sent, or paid for shares
    answer: dict[str, Any]


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    acks: list[Ack] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)
    kills: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    def ack(self, ack: Ack) -> None:
        with self.lock:
            self.acks.append(ack)

    def count(self, counter: Counter[str], key: str) -> None:
        with self.lock:
            counter[key] += 1


# Clients -----------------------------------------------------------------------------------


def _plan(rng: random.Random, agent: str, others: list[str]) -> tuple[str, str | None, int]:
    """The next request: (verb, counterparty, amount in base units)."""
    roll = rng.random()
    if roll < 0.3:
        return "mint", None, rng.randint(1, 50) * TOKEN // 10
    if roll < 0.65:
        return "transfer", rng.choice(others), rng.randint(1, 20) * TOKEN // 100
    return "buy", None, rng.randint(1, 30) * TOKEN // 100


def _tokens(units: int) -> str:
    whole, fraction = divmod(units, TOKEN)
    return f"{whole}.{fraction:06d}" if fraction else str(whole)


class HttpClient(threading.Thread):
    def __init__(
        self,
        name: str,
        agent: str,
        others: list[str],
        base: str,
        key: str,
        tally: Tally,
        stop: threading.Event,
        seed: int,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.agent, self.others, self.base, self.key, self.tally, self.stopping = agent, others, base, key, tally, stop
        self.rng = random.Random(seed)

    def run(self) -> None:
        number = 0
        with httpx.Client(
            base_url=self.base, timeout=REQUEST_TIMEOUT, headers={"Authorization": f"Bearer {self.key}"}
        ) as http:
            while not self.stopping.is_set():
                number += 1
                verb, other, units = _plan(self.rng, self.agent, self.others)
                self.send(http, f"{self.name}-{number}", verb, other, units)

    def send(self, http: httpx.Client, key: str, verb: str, other: str | None, units: int) -> None:
        if verb == "mint":
            path, body = f"/api/accounts/{self.agent}/mint", {"amount": _tokens(units)}
        elif verb == "transfer":
            path, body = f"/api/accounts/{self.agent}/transfers", {"to": other, "amount": _tokens(units)}
        else:
            path = "/api/market/positions"
            body = {
                "agent": self.agent,
                "artifact": ART,
                "side": self.rng.choice(("long", "short")),
                "tokens": _tokens(units),
            }
        while True:  # until acknowledged or refused, even after the run's time is up
            try:
                response = http.post(path, json=body, headers={"Idempotency-Key": key})
            except httpx.TransportError:
                self.tally.count(self.tally.retries, "http: no answer")
                time.sleep(0.1)
                continue
            if response.status_code >= 500:
                self.tally.count(self.tally.retries, f"http: {response.status_code}")
                time.sleep(0.1)
                continue
            answer = response.json()
            if response.status_code >= 400:
                if answer.get("error") in RETRY_ERRORS:
                    self.tally.count(self.tally.retries, f"http: {answer['error']}")
                    time.sleep(0.05)
                    continue
                self.tally.count(self.tally.refused, f"http {verb}: {answer.get('error')}")
                return
            paid = int(answer["cost_units"]) if verb == "buy" else units
            self.tally.ack(Ack(self.name, f"http:operator:{key}", verb, self.agent, other, paid, answer))
            return


class CliClient(threading.Thread):
    def __init__(
        self,
        name: str,
        agent: str,
        others: list[str],
        url: str,
        tally: Tally,
        stop: threading.Event,
        seed: int,
        running: dict[str, subprocess.Popen],
        pause: float,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.agent, self.others, self.url, self.tally, self.stopping = agent, others, url, tally, stop
        self.rng = random.Random(seed)
        self.running = running
        self.pause = pause

    def run(self) -> None:
        number = 0
        while not self.stopping.is_set():
            number += 1
            verb, other, units = _plan(self.rng, self.agent, self.others)
            self.send(f"{self.name}-{number}", verb, other, units)
            self.stopping.wait(self.pause)

    def send(self, command_id: str, verb: str, other: str | None, units: int) -> None:
        if verb == "mint":
            args = ["mint", self.agent, _tokens(units)]
        elif verb == "transfer":
            args = ["transfer", self.agent, other, _tokens(units)]
        else:
            args = [
                "trade",
                "open",
                self.agent,
                ART,
                "--side",
                self.rng.choice(("long", "short")),
                "--tokens",
                _tokens(units),
            ]
        command = [sys.executable, "-m", "stakeledger.cli.main", "--db", self.url, "--json", *args]
        command += ["--command-id", command_id]
        killed = 0
        while True:
            process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            with self.tally.lock:
                self.running[self.name] = process
            try:
                out, err = process.communicate(timeout=CLI_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                out, err = process.communicate()
            finally:
                with self.tally.lock:
                    self.running.pop(self.name, None)
            if process.returncode == 0:
                answer = json.loads(out)
                paid = int(answer["cost_units"]) if verb == "buy" else units
                self.tally.ack(Ack(self.name, command_id, verb, self.agent, other, paid, answer))
                for _ in range(killed):  # the retry after each kill got its answer
                    self.tally.count(self.tally.kills, "cli processes recovered")
                return
            code = err.split(":", 2)[1].strip() if err.startswith("error:") else ""
            killed += process.returncode == -signal.SIGKILL
            if process.returncode < 0 or code in RETRY_ERRORS:
                self.tally.count(self.tally.retries, "cli: killed" if process.returncode < 0 else f"cli: {code}")
                continue
            if process.returncode == 1 and code:
                self.tally.count(self.tally.refused, f"cli {verb}: {code}")
                return
            self.tally.count(self.tally.retries, f"cli: exit {process.returncode}")
            with self.tally.lock:
                if len(self.tally.errors) < 5:
                    self.tally.errors.append(f"{' '.join(args)} exited {process.returncode}: {err.strip()[-300:]}")
            time.sleep(0.2)


# The server and its workers ----------------------------------------------------------------


def children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def server_workers(pid: int) -> list[int]:
    """The uvicorn worker processes under the server (not multiprocessing's helpers)."""
    workers = []
    for child in children(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "resource_tracker" not in cmdline and "semaphore_tracker" not in cmdline:
            workers.append(child)
    return workers


def killer(
    server: subprocess.Popen,
    running: dict[str, subprocess.Popen],
    every: float,
    tally: Tally,
    stop_at: float,
    seed: int,
    base: str,
) -> None:
    """SIGKILL a random worker or CLI process every ``every`` seconds; count a kill as survived
    once the server answers again with two workers."""
    rng = random.Random(seed)
    while time.monotonic() + every < stop_at:
        time.sleep(every * rng.uniform(0.5, 1.5))
        with tally.lock:
            cli = [process for process in running.values() if process.poll() is None]
        workers = server_workers(server.pid)
        if cli and rng.random() < 0.4:
            victim, kind = rng.choice(cli).pid, "cli process"
        elif workers:
            victim, kind = rng.choice(workers), "server worker"
        else:
            continue
        try:
            os.kill(victim, signal.SIGKILL)
        except ProcessLookupError:
            continue
        tally.count(tally.kills, "cli processes killed" if kind == "cli process" else "server workers killed")
        log(f"  {time.monotonic() - stop_at + every:+.0f} s: killed {kind} {victim}")
        if kind == "server worker":
            deadline = time.monotonic() + START_SECONDS
            while time.monotonic() < deadline:
                if len([w for w in server_workers(server.pid) if w != victim]) >= 2 and _healthy(base):
                    tally.count(tally.kills, "server workers replaced")
                    break
                time.sleep(0.2)


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


# A run on one store -------------------------------------------------------------------------


def seed_store(url: str, agents: list[str]) -> str:
    ledger = open_ledger(url)
    try:
        ledger.initialise(DECIMALS)
        for agent in agents:
            ledger.open_account(agent)
            ledger.mint(agent, FUNDING_UNITS)
        ledger.list_artifact(ART, "Soak market", 10_000 * TOKEN, min_hold_days=0)
        return apikeys.issue_key(ledger, "operator", apikeys.ADMIN)["key"]
    finally:
        ledger.close()


def verify(url: str, agents: list[str], tally: Tally) -> dict[str, Any]:
    """Every acknowledged command once in the store; balances as the acknowledgements add up."""
    expected = {agent: FUNDING_UNITS for agent in agents}
    for ack in tally.acks:
        if ack.verb == "mint":
            expected[ack.agent] += ack.amount_units
        elif ack.verb == "transfer":
            expected[ack.agent] -= ack.amount_units
            expected[ack.other] += ack.amount_units
        else:
            expected[ack.agent] -= ack.amount_units
    ledger = open_ledger(url)
    try:
        missing = []
        for ack in tally.acks:
            try:
                record = ledger.repository.get(command_uuid(ack.command_id))
            except Exception:  # noqa: BLE001 - any failure to find it is a loss
                missing.append(ack.command_id)
                continue
            if record.command_id != ack.command_id:
                missing.append(ack.command_id)
        balances = {agent: ledger.balance_of(agent) for agent in agents}
        wrong = {agent: balances[agent] - expected[agent] for agent in agents if balances[agent] != expected[agent]}
        report = audit(ledger)
    finally:
        ledger.close()
    return {
        "acknowledged": len(tally.acks),
        "acknowledged_by_verb": dict(Counter(ack.verb for ack in tally.acks)),
        "refused": dict(tally.refused),
        "client_retries": dict(tally.retries),
        "kills": dict(tally.kills),
        "lost": len(missing),
        "lost_examples": missing[:5],
        "balances_off_units": wrong,
        "audit_events": report.events,
        "audit_violations": report.violation_count,
        "audit_examples": [str(v) for v in report.violations[:5]],
        "client_errors": tally.errors,
    }


def run_backend(backend: str, server_url: str | None, args: argparse.Namespace) -> dict[str, Any]:
    http_agents = [f"h{n}" for n in range(args.http_clients)]
    cli_agents = [f"c{n}" for n in range(args.cli_clients)]
    agents = http_agents + cli_agents
    with fresh_store(backend, server_url, "soak") as url:
        key = seed_store(url, agents)
        tally, stopping, running = Tally(), threading.Event(), {}
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        arguments = ["--db", url, "serve", "--port", str(port), "--workers", "2", "--no-access-log"]
        if args.worker_healthcheck is None:
            command = [sys.executable, "-m", "stakeledger.cli.main", *arguments]
        else:  # the same command, with uvicorn's supervisor told to wait longer for a worker's ping
            command = [sys.executable, "-c", PATIENT_SERVE, str(args.worker_healthcheck), *arguments]
        with tempfile.TemporaryDirectory() as folder:
            server_log = Path(folder) / "server.log"
            with server_log.open("w") as sink:
                server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=sink)
            try:
                wait_until_serving(base, server, server_log, seconds=START_SECONDS)
                log(
                    f"{backend}: serving; {len(http_agents)} HTTP and {len(cli_agents)} CLI clients for {args.seconds} s"
                )
                started = time.monotonic()
                stop_at = started + args.seconds
                clients: list[threading.Thread] = [
                    HttpClient(
                        f"http{n}", agent, [a for a in agents if a != agent], base, key, tally, stopping, args.seed + n
                    )
                    for n, agent in enumerate(http_agents)
                ] + [
                    CliClient(
                        f"cli{n}",
                        agent,
                        [a for a in agents if a != agent],
                        url,
                        tally,
                        stopping,
                        args.seed + 100 + n,
                        running,
                        args.cli_pause,
                    )
                    for n, agent in enumerate(cli_agents)
                ]
                for client in clients:
                    client.start()
                killer(server, running, args.kill_every, tally, stop_at, args.seed, base)
                while time.monotonic() < stop_at:
                    time.sleep(0.2)
                stopping.set()
                for client in clients:  # each finishes (acknowledges or is refused) what it began
                    client.join()
                seconds = time.monotonic() - started
            finally:
                stop(server, signal.SIGINT, seconds=30)
                server_text = server_log.read_text()
                if args.verbose:
                    log(server_text[-3000:])
        # uvicorn's supervisor also kills a worker that misses its 5 s health ping (a CPU-starved one).
        restarted = server_text.count("] died")
        result = verify(url, agents, tally)
        result["kills"]["workers restarted by uvicorn (ours and its own)"] = restarted
        result["seconds"] = round(seconds, 1)
        result["backend"] = backend
        return result


def print_result(result: dict[str, Any]) -> None:
    kills = result["kills"]
    killed = kills.get("server workers killed", 0) + kills.get("cli processes killed", 0)
    survived = kills.get("server workers replaced", 0) + kills.get("cli processes recovered", 0)
    print(
        f"{result['backend']}: {result['acknowledged']} requests acknowledged in {result['seconds']} s "
        f"({result['acknowledged_by_verb']}), {result['audit_events']} events; "
        f"kills {killed} ({kills}), survived {survived}; "
        f"lost {result['lost']}, balances off {len(result['balances_off_units'])}, "
        f"audit violations {result['audit_violations']}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=300, help="how long the clients run per backend (default 300)")
    parser.add_argument("--quick", action="store_true", help="a 20-second smoke run per backend")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both", help="store to soak")
    parser.add_argument("--http-clients", type=int, default=3, help="HTTP client threads (default 3)")
    parser.add_argument("--cli-clients", type=int, default=2, help="CLI client threads (default 2)")
    parser.add_argument(
        "--cli-pause", type=float, default=0.5, help="seconds a CLI client waits between commands (default 0.5)"
    )
    parser.add_argument("--kill-every", type=float, default=3.0, help="seconds between kills, on average (default 3)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the clients' and killer's choices")
    parser.add_argument(
        "--worker-healthcheck",
        type=int,
        help="seconds uvicorn's supervisor waits for a worker's health ping before killing it "
        "(default: uvicorn's 5 s, the plain `stakeledger serve`); raise it on a CPU-starved machine",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print the end of the server's log")
    args = parser.parse_args()
    if args.quick:
        args.seconds = 20
    backends = ["postgresql", "sqlite"] if args.backend == "both" else [args.backend]
    results = []
    with postgres_server() if "postgresql" in backends else _no_server() as server_url:
        for backend in backends:
            result = run_backend(backend, server_url, args)
            print_result(result)
            results.append(result)
    print(json.dumps(results, indent=2))
    bad = any(r["lost"] or r["balances_off_units"] or r["audit_violations"] for r in results)
    return 1 if bad else 0


class _no_server:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


if __name__ == "__main__":
    try:
        sys.exit(main())
    except LedgerError as error:
        log(f"error: {error.code}: {error}")
        sys.exit(1)
