"""Shared fixtures: every storage test runs on the in-memory store, a SQLite file and a
real PostgreSQL server (started by `make test`, or by this file when run bare)."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import settings

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.domain.service.application import StakeLedger
from stakeledger.domain.service.clock import ManualClock
from stakeledger.domain.service.ids import SeededIds

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL_ENV = "STAKELEDGER_TEST_POSTGRES_URL"
BACKENDS = ["memory", "sqlite", "postgres"]

# The suite runs on every core beside servers and browsers: a property's examples are judged by
# what they assert, not by how fast a loaded machine runs one (hypothesis' 200 ms deadline).
settings.register_profile("stakeledger", deadline=None)
settings.load_profile("stakeledger")
FILE_BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of a PostgreSQL server: the one `make test` started, or a throwaway one."""
    url = os.environ.get(POSTGRES_URL_ENV)
    if url:
        yield url
        return
    data_dir = f"/tmp/stakeledger-pytest-pg-{os.getpid()}"
    port = str(56000 + os.getpid() % 1000)
    started = subprocess.run(
        [str(ROOT / ".ci" / "postgres.sh"), "start", data_dir, port], capture_output=True, text=True
    )
    if started.returncode != 0:
        pytest.fail(f"could not start PostgreSQL for the tests:\n{started.stderr}")
    try:
        yield started.stdout.strip()
    finally:
        subprocess.run([str(ROOT / ".ci" / "postgres.sh"), "stop", data_dir], capture_output=True)


def fresh_postgres_url(server_url: str) -> str:
    """A new empty schema on the server, so each test starts from an empty store."""
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    return f"{server_url}?schema={schema}"


def make_store_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return fresh_postgres_url(request.getfixturevalue("postgres_server"))


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return make_store_url(request.param, tmp_path, request)


@pytest.fixture(params=FILE_BACKENDS)
def durable_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store that other OS processes can open too."""
    return make_store_url(request.param, tmp_path, request)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def ledger(store_url: str, clock: ManualClock) -> Iterator[StakeLedger]:
    app = open_ledger(store_url, clock=clock, new_id=SeededIds(7))
    app.initialise(decimals=6)
    yield app
    app.close()


def stored_event_count(app: StakeLedger) -> int:
    return app.recorder.max_notification_id() or 0
