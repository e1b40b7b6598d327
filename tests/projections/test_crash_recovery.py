"""A real worker process, killed with SIGKILL at random moments while it catches up, then
restarted: nothing is applied twice and nothing is lost, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.domain.service.clock import ManualClock
from stakeledger.domain.service.ids import SeededIds
from stakeledger.projections.replay_check import replay_check
from stakeledger.projections.store import open_store
from stakeledger.projections.views import ALL_VIEWS
from tests.projections.scenario import bulk_log, head

ROOT = Path(__file__).resolve().parents[2]
KILLS = 5
# Waits are generous: a loaded machine (the suite on every core) starts a worker slowly,
# and a wait only costs time when the worker is stuck.
PAGE_SIZE = 250


def start_worker(url: str, log_path: Path) -> subprocess.Popen:
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "stakeledger.projections.runner",
                "--db",
                url,
                "--page-size",
                str(PAGE_SIZE),
                "--poll-seconds",
                "0.05",
            ],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )


def lowest_position(store) -> int:
    positions = store.positions()
    return min((positions.get(view.name, 0) for view in ALL_VIEWS), default=0)


def wait_until(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {seconds} s waiting for {what}")
        time.sleep(0.01)


@pytest.mark.slow
def test_worker_when_killed_at_random_moments_then_views_equal_a_fresh_rebuild(durable_store_url, tmp_path):
    clock = ManualClock()
    app = open_ledger(durable_store_url, clock=clock, new_id=SeededIds(5))
    app.initialise(decimals=6)
    bulk_log(app, clock, 20_000)
    store = open_store(app)
    rng = random.Random(2026)
    log_path = tmp_path / "worker.log"
    killed_mid_run = 0
    try:
        for round_number in range(KILLS):
            before = lowest_position(store)
            worker = start_worker(durable_store_url, log_path)
            # The ledger keeps writing while the worker runs and dies.
            writer = threading.Thread(target=bulk_log, args=(app, clock, 1_000), kwargs={"seed": 100 + round_number})
            try:
                wait_until(lambda: lowest_position(store) > before, 180, f"the worker to move past {before}")  # noqa: B023 - called at once
                writer.start()
                time.sleep(rng.uniform(0.0, 0.25))
            finally:
                worker.send_signal(signal.SIGKILL)
                worker.wait(timeout=10)
                if writer.ident is not None:  # started
                    writer.join(timeout=60)
            assert worker.returncode == -signal.SIGKILL
            if lowest_position(store) < head(app):
                killed_mid_run += 1
        assert killed_mid_run >= KILLS - 1, "the kills should land while the worker is catching up"

        worker = start_worker(durable_store_url, log_path)
        try:
            wait_until(lambda: lowest_position(store) == head(app), 120, "the last worker to catch up")
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)
        assert worker.returncode == 0, log_path.read_text()[-2000:]
        assert set(store.positions().values()) == {head(app)}
        assert replay_check(app, store) == []
    finally:
        store.close()
        app.close()
