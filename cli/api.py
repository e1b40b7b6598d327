"""The HTTP API from the command line: ``serve`` and ``apikey create|list|revoke``."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from stakeledger.adapters.persistence.store_url import URL_ENV
from stakeledger.cli.context import get_context
from stakeledger.cli.output import emit_json, error_console, redact_url, say, table
from stakeledger.domain.errors import InvalidInputError, NotInitialisedError
from stakeledger.domain.service import apikeys

apikey_app = typer.Typer(help="API keys for the HTTP API: create (shown once), list, revoke.", no_args_is_help=True)

MAX_WORKERS = 64


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.add_typer(apikey_app, name="apikey")


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes; each serves the same store.")] = 1,
    access_log: Annotated[bool, typer.Option("--access-log/--no-access-log", help="Log every request.")] = True,
    worker_healthcheck: Annotated[
        int,
        typer.Option(
            help="Seconds a worker may take to answer the supervisor's health check (and to start) "
            "before it is restarted; uvicorn's own 5 s restarts slow-starting workers on a busy machine forever."
        ),
    ] = 60,
) -> None:
    """Serve the HTTP API (FastAPI under uvicorn) over this store: OpenAPI at /openapi.json, docs at /docs."""
    if not 1 <= port <= 65_535:
        raise InvalidInputError(f"port must be from 1 to 65535, got {port}")
    if not 1 <= workers <= MAX_WORKERS:
        raise InvalidInputError(f"workers must be from 1 to {MAX_WORKERS}, got {workers}")
    if not 1 <= worker_healthcheck <= 3_600:
        raise InvalidInputError(f"worker-healthcheck must be from 1 to 3600 seconds, got {worker_healthcheck}")
    context = get_context(ctx)
    if context.url.split("://", 1)[0].lower() == "memory":
        raise InvalidInputError("serve needs a store other processes can open: sqlite:///path.db or postgresql://…")
    ledger = context.app
    if not ledger.is_initialised():
        raise NotInitialisedError("this ledger is not initialised: run 'stakeledger init' first")
    ledger.close()
    import uvicorn

    # Worker processes build their own application from the environment, as the CLI does.
    os.environ[URL_ENV] = context.url
    error_console.print(
        f"serving {redact_url(context.url)} on http://{host}:{port} with {workers} worker(s)",
        highlight=False,
        markup=False,
    )
    uvicorn.run(
        "stakeledger.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=access_log,
        proxy_headers=False,
        server_header=False,
        timeout_worker_healthcheck=worker_healthcheck,
    )


@apikey_app.command("create")
def create(
    ctx: typer.Context,
    agent: str,
    scope: Annotated[
        str, typer.Option(help="trade: acts only for AGENT; admin: acts for every agent.")
    ] = apikeys.TRADE,
) -> None:
    """Issue a key. It is shown once: only its SHA-256 digest is stored."""
    context = get_context(ctx)
    result = apikeys.issue_key(context.app, agent, scope)
    if context.as_json:
        emit_json(result)
        return
    say(f"Key {result['key_id']} for {result['agent']} (scope {result['scope']}):")
    # The key on a line of its own, so `| tail -1` captures it.
    typer.echo(result["key"])
    error_console.print("Store it now: it cannot be shown again.", highlight=False, markup=False)


@apikey_app.command("list")
def list_keys(ctx: typer.Context) -> None:
    """Every key with its agent, scope and state (never the secret)."""
    context = get_context(ctx)
    rows = apikeys.list_keys(context.app)
    if context.as_json:
        emit_json(rows)
        return
    table(
        "API keys",
        ["key id", "agent", "scope", "status", "created", "revoked"],
        [
            [r["key_id"], r["agent"], r["scope"], r["status"], r["created"][:19], (r["revoked_at"] or "")[:19]]
            for r in rows
        ],
    )


@apikey_app.command("revoke")
def revoke(ctx: typer.Context, key_id: Annotated[str, typer.Argument(metavar="KEY_ID")]) -> None:
    """Revoke a key: every worker refuses it from its next request on."""
    context = get_context(ctx)
    result = apikeys.revoke_key(context.app, key_id)
    emit_json(result) if context.as_json else say(f"Revoked key {key_id} of {result['agent']}.")
