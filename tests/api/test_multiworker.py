"""The API as deployed: ``stakeledger serve --workers 3`` in its own process over PostgreSQL,
20 concurrent clients sending 400 market orders on loopback, all on one market. Writers in different
processes race for the same artifact and pool; the ledger's optimistic concurrency must
turn every race into a retry, never into a lost update. How fast that goes is bench/api.py's
question; here the time limit only stops a hang."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.domain.model.accounts import pool_account_id
from stakeledger.domain.model.naming import stable_topic
from stakeledger.domain.model.positions import Position
from stakeledger.domain.service import apikeys
from stakeledger.domain.service.application import StakeLedger
from stakeledger.domain.service.log import iter_events
from stakeledger.projections.audit import audit
from tests.api.serving import free_port, stop, wait_until_serving
from tests.conftest import fresh_postgres_url

ROOT = Path(__file__).resolve().parents[2]
TOKEN = 10**6
CLIENTS = 20
ORDERS_PER_CLIENT = 20
WORKERS = 3
ART = "LOAD-1"
MAX_ATTEMPTS = 30
HANG_LIMIT_SECONDS = 600  # a guard against a deadlock, not a speed requirement


@dataclass
class Outcome:
    accepted: dict[str, dict] = field(default_factory=dict)  # position id -> response body
    refused: list[tuple[int, str]] = field(default_factory=list)
    retries: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def server(postgres_server: str, tmp_path: Path) -> Iterator[tuple[str, StakeLedger, dict[str, str], subprocess.Popen]]:
    url = fresh_postgres_url(postgres_server)
    ledger = open_ledger(url)
    ledger.initialise(decimals=6)
    agents = [f"agent-{number}" for number in range(CLIENTS)]
    for agent in agents:
        ledger.open_account(agent)
        ledger.mint(agent, 10_000 * TOKEN)
    ledger.list_artifact(ART, "Load test", 5_000 * TOKEN, min_hold_days=0)
    keys = {agent: apikeys.issue_key(ledger, agent)["key"] for agent in agents}
    port = free_port()
    log = open(tmp_path / "serve.log", "w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stakeledger.cli.main",
            "--db",
            url,
            "serve",
            "--port",
            str(port),
            "--workers",
            str(WORKERS),
            "--no-access-log",
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base, process, tmp_path / "serve.log")
        yield base, ledger, keys, process
    finally:
        stop(process, signal.SIGINT)
        log.close()
        ledger.close()


def _client(base: str, agent: str, key: str, number: int, outcome: Outcome) -> None:
    with httpx.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {key}"}) as client:
        for index in range(ORDERS_PER_CLIENT):
            side = "long" if (index + number) % 2 else "short"
            body = {"agent": agent, "artifact": ART, "side": side, "tokens": f"{1 + index % 5}.5"}
            for attempt in range(MAX_ATTEMPTS):
                try:
                    # The same Idempotency-Key on every attempt: a retry after a lost
                    # response returns the first result instead of trading twice.
                    response = client.post(
                        "/api/market/positions", json=body, headers={"Idempotency-Key": f"{agent}-{index}"}
                    )
                except httpx.TransportError:
                    response = None
                if response is not None and response.status_code == 201:
                    with outcome.lock:
                        outcome.accepted[response.json()["position"]] = response.json()
                    break
                if response is None or (
                    response.status_code in (409, 503)
                    and response.json()["error"] in ("CONCURRENCY_CONFLICT", "STORE_UNAVAILABLE")
                ):
                    with outcome.lock:
                        outcome.retries += 1
                    time.sleep(0.01 * (attempt + 1))
                    continue
                with outcome.lock:
                    outcome.refused.append((response.status_code, response.text))
                break


@pytest.mark.slow
@pytest.mark.postgres
def test_market_orders_when_20_clients_hit_3_workers_then_every_accepted_trade_is_in_the_log_and_audit_is_clean(server):
    base, ledger, keys, process = server
    workers = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
    outcome = Outcome()
    started = time.monotonic()

    threads = [
        threading.Thread(target=_client, args=(base, agent, key, number, outcome))
        for number, (agent, key) in enumerate(keys.items())
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(0.0, started + HANG_LIMIT_SECONDS - time.monotonic()))
    elapsed = time.monotonic() - started

    assert len(workers) >= WORKERS  # the uvicorn supervisor's children (workers, plus its resource tracker)
    assert not any(thread.is_alive() for thread in threads)
    assert outcome.refused == []
    assert len(outcome.accepted) == CLIENTS * ORDERS_PER_CLIENT
    logged = {event.position_id: event for _, event in iter_events(ledger, topics=(stable_topic(Position.Opened),))}
    assert set(logged) == set(outcome.accepted)
    assert all(logged[pid].quantity_units == int(body["shares_units"]) for pid, body in outcome.accepted.items())
    artifact = ledger.get_artifact(ART)
    for side, q_units in (("long", artifact.q_long), ("short", artifact.q_short)):
        assert q_units == sum(int(b["shares_units"]) for b in outcome.accepted.values() if b["side"] == side)
    costs = sum(int(body["cost_units"]) for body in outcome.accepted.values())
    assert ledger.balance_of(pool_account_id(ART)) == artifact.subsidy_units + costs
    report = audit(ledger)
    assert report.clean, [str(violation) for violation in report.violations]
    print(
        f"\n{len(outcome.accepted)} trades in {elapsed:.1f} s ({len(outcome.accepted) / elapsed:.0f}/s), "
        f"{outcome.retries} client retries"
    )
