"""docker-compose.yml without a Docker engine: the file is checked, and every service's
command is run as its container would run it, against a fresh PostgreSQL schema.

This machine has the Docker client but no engine, so ``docker compose up`` itself cannot
run here. What can go wrong short of the engine is checked: the services and their order,
the image holding every package the commands import, the init command creating a ledger
(and doing nothing the second time), the API answering and a projection worker catching
up with a write made through it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.domain.service import apikeys
from stakeledger.projections.runner import Runner
from stakeledger.projections.store import open_store
from stakeledger.projections.views import view_names
from tests.api.serving import free_port, stop, wait_until_serving
from tests.conftest import fresh_postgres_url

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_compose_when_read_then_postgres_init_api_and_worker_start_in_order():
    assert set(SERVICES) == {"postgres", "init", "api", "projections"}
    assert SERVICES["init"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for service in ("api", "projections"):
        assert SERVICES[service]["depends_on"] == {"init": {"condition": "service_completed_successfully"}}
        assert SERVICES[service]["environment"] == SERVICES["init"]["environment"]
    assert SERVICES["api"]["ports"] == ["127.0.0.1:8000:8000"]  # loopback only
    assert SERVICES["projections"]["command"] == ["stakeledger", "projections", "run"]
    url = SERVICES["init"]["environment"]["STAKELEDGER_DATABASE_URL"]
    user, password, db = (
        SERVICES["postgres"]["environment"][k] for k in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB")
    )
    assert url == f"postgresql://{user}:{password}@postgres:5432/{db}"


def test_dockerfile_when_read_then_the_image_holds_every_package_the_console_script_imports():
    copied = set(re.findall(r"^COPY (\S+) \1$", (ROOT / "Dockerfile").read_text(), flags=re.M))
    packages = {path.parent.name for path in ROOT.glob("*/__init__.py")} - {"tests"}
    assert packages and packages <= copied, packages - copied
    for service in ("init", "api", "projections"):
        assert SERVICES[service]["build"] == "."


def _as_in_the_container(command: list[str]) -> list[str]:
    """The container's ``stakeledger`` and ``python`` are this virtual environment's."""
    tools = {
        "python": sys.executable,
        "stakeledger": shutil.which("stakeledger", path=str(Path(sys.executable).parent)),
    }
    return [tools.get(command[0], command[0]), *command[1:]]


def _with_option(command: list[str], option: str, value: str) -> list[str]:
    """The command with ``option``'s value replaced (the container's port is this test's)."""
    at = command.index(option) + 1
    return [*command[:at], value, *command[at + 1 :]]


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        _as_in_the_container(command), cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT
    )


def test_compose_commands_when_run_against_postgres_then_api_serves_and_worker_keeps_views_current(
    postgres_server, tmp_path
):
    url = fresh_postgres_url(postgres_server)
    env = {**os.environ, "STAKELEDGER_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    init = _as_in_the_container(SERVICES["init"]["command"])
    for _ in range(2):  # a restart of the stack runs init again: it must leave the ledger as it is
        done = subprocess.run(init, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    ledger = open_ledger(url)
    assert ledger.is_initialised() and ledger.decimals == 18
    settings_events = ledger.recorder.max_notification_id()

    port = free_port()
    api_command = _with_option(_with_option(SERVICES["api"]["command"], "--port", str(port)), "--host", "127.0.0.1")
    api = _start(api_command, env, tmp_path / "api.log")
    worker = _start(SERVICES["projections"]["command"], env, tmp_path / "worker.log")
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_serving(base, api, tmp_path / "api.log")
        key = apikeys.issue_key(ledger, "operator", scope="admin")["key"]
        headers = {"Authorization": f"Bearer {key}"}
        assert httpx.post(f"{base}/api/accounts", json={"agent": "alice"}, headers=headers).status_code == 201
        minted = httpx.post(f"{base}/api/accounts/alice/mint", json={"amount": "12.5"}, headers=headers)
        assert minted.status_code == 200, minted.text

        head = ledger.recorder.max_notification_id()
        assert head > settings_events
        store = open_store(ledger)
        try:
            deadline = time.monotonic() + 120
            while _lowest_position(store) < head:  # the worker, not this test, catches up
                assert worker.poll() is None, (tmp_path / "worker.log").read_text()
                assert time.monotonic() < deadline, f"the worker did not catch up: {store.positions()} < {head}"
                time.sleep(0.2)
            assert {status.view: status.lag for status in Runner(ledger, store).status()} == dict.fromkeys(
                view_names(), 0
            )
        finally:
            store.close()
        statement = httpx.get(f"{base}/api/accounts/alice/statement", headers=headers).json()
        assert statement["balance_units"] == str(12_500_000_000_000_000_000)
    finally:
        worker_exit, api_exit = stop(worker), stop(api)
        ledger.close()
    assert worker_exit == 0, (tmp_path / "worker.log").read_text()
    assert api_exit == 0, (tmp_path / "api.log").read_text()


def _lowest_position(store) -> int:
    with store.read():
        return min(store.positions().values(), default=0)
