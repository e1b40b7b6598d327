"""API keys: shown once, stored as a digest, compared in constant time, listed and revoked
from the command line."""

from __future__ import annotations

import hashlib
import json

import pytest
import typer
from typer.testing import CliRunner

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.cli import api as cli_api
from stakeledger.cli.context import CliContext
from stakeledger.domain.errors import InvalidInputError, StateError, UnknownAccountError
from stakeledger.domain.model.naming import stable_topic
from stakeledger.domain.service import apikeys
from stakeledger.domain.service.application import StakeLedger
from stakeledger.projections.audit import audit


@pytest.fixture
def ledger_url(durable_store_url: str) -> str:
    ledger = open_ledger(durable_store_url)
    ledger.initialise(decimals=6)
    for agent in ("alice", "bob"):
        ledger.open_account(agent)
    ledger.close()
    return durable_store_url


@pytest.fixture
def ledger(ledger: StakeLedger) -> StakeLedger:
    """The shared ledger, with the two agents these keys act for."""
    for agent in ("alice", "bob"):
        ledger.open_account(agent)
    return ledger


def test_issue_when_key_created_then_only_its_sha256_digest_is_stored(ledger):
    issued = apikeys.issue_key(ledger, "alice", apikeys.TRADE)

    stored = [
        n
        for n in ledger.recorder.select_notifications(start=0, limit=1_000)
        if n.topic == stable_topic(apikeys.ApiKey.Issued)
    ]
    assert len(stored) == 1
    state = json.loads(bytes(stored[0].state))
    secret = issued["key"].split("_", 2)[2]
    assert issued["key"].startswith(f"sl_{issued['key_id']}_") and len(secret) >= 43
    assert secret not in bytes(stored[0].state).decode()
    assert state["hash"] == "sha256:" + hashlib.sha256(issued["key"].encode()).hexdigest()
    assert (state["agent"], state["scope"], state["key_id"]) == ("alice", "trade", issued["key_id"])
    assert audit(ledger).clean


def test_authenticate_when_key_presented_then_compared_with_hmac_compare_digest(ledger, monkeypatch):
    issued = apikeys.issue_key(ledger, "alice")
    calls = []
    real = apikeys.hmac.compare_digest
    monkeypatch.setattr(apikeys.hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))

    principal = apikeys.authenticate(ledger, issued["key"])

    assert principal == apikeys.Principal(issued["key_id"], "alice", "trade")
    assert len(calls) == 1


@pytest.mark.parametrize("token", ["", "Bearer x", "sl_short_secret", "sl_0123456789ABCDEF_" + "a" * 43, "x" * 500])
def test_authenticate_when_key_malformed_then_unauthenticated(ledger, token):
    with pytest.raises(apikeys.UnauthenticatedError):
        apikeys.authenticate(ledger, token)


def test_issue_when_scope_or_agent_invalid_then_refused_and_nothing_written(ledger):
    head = ledger.recorder.max_notification_id()

    with pytest.raises(InvalidInputError):
        apikeys.issue_key(ledger, "alice", "root")
    with pytest.raises(InvalidInputError):
        apikeys.issue_key(ledger, "not a name")
    with pytest.raises(UnknownAccountError):
        apikeys.issue_key(ledger, "nobody")  # a trade key acts for an account that must exist

    assert ledger.recorder.max_notification_id() == head


def test_revoke_when_revoked_twice_then_state_conflict(ledger):
    issued = apikeys.issue_key(ledger, "alice")
    apikeys.revoke_key(ledger, issued["key_id"])

    with pytest.raises(StateError):
        apikeys.revoke_key(ledger, issued["key_id"])
    with pytest.raises(apikeys.UnknownKeyError):
        apikeys.revoke_key(ledger, "00000000000000ff")


def _cli(url: str) -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
        ctx.obj = CliContext(url, as_json=as_json)

    cli_api.register(app)
    return app


def test_apikey_cli_when_created_listed_and_revoked_then_list_shows_state_never_the_secret(ledger_url):
    runner, app = CliRunner(), _cli(ledger_url)

    created = runner.invoke(app, ["--json", "apikey", "create", "alice", "--scope", "admin"])
    key = json.loads(created.stdout)
    revoked = runner.invoke(app, ["apikey", "revoke", key["key_id"]])
    listed = runner.invoke(app, ["--json", "apikey", "list"])

    assert created.exit_code == 0 and key["key"].startswith("sl_") and key["scope"] == "admin"
    assert revoked.exit_code == 0 and key["key_id"] in revoked.stdout
    rows = json.loads(listed.stdout)
    assert [(r["key_id"], r["agent"], r["scope"], r["status"]) for r in rows] == [
        (key["key_id"], "alice", "admin", "revoked")
    ]
    assert key["key"].split("_", 2)[2] not in listed.stdout and "sha256" not in listed.stdout


def test_apikey_cli_when_created_for_people_then_the_key_is_the_last_stdout_line(ledger_url):
    runner, app = CliRunner(), _cli(ledger_url)

    created = runner.invoke(app, ["apikey", "create", "bob"])

    token = created.stdout.strip().splitlines()[-1]
    ledger = open_ledger(ledger_url)
    try:
        assert apikeys.authenticate(ledger, token).agent == "bob"
    finally:
        ledger.close()


def test_serve_when_store_is_in_memory_then_refused_before_listening():
    runner, app = CliRunner(), _cli("memory://")

    result = runner.invoke(app, ["serve", "--workers", "2"])

    assert result.exit_code != 0 and isinstance(result.exception, InvalidInputError)


@pytest.mark.parametrize("seconds", ["0", "-5", "3601"])
def test_serve_when_the_worker_healthcheck_is_out_of_range_then_refused_before_listening(ledger_url, seconds):
    runner, app = CliRunner(), _cli(ledger_url)

    result = runner.invoke(app, ["serve", "--worker-healthcheck", seconds])

    assert result.exit_code != 0 and isinstance(result.exception, InvalidInputError)
    assert "worker-healthcheck must be from 1 to 3600" in str(result.exception)
