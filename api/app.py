"""The HTTP API: a FastAPI application over the same store as the CLI.

    create_app(url=None, clock=None) -> FastAPI

``url`` defaults to ``STAKELEDGER_DATABASE_URL`` (or ./stakeledger.db), as for the CLI.
``stakeledger serve`` runs it under uvicorn; ``uvicorn --factory api.app:create_app``
does too. OpenAPI is at /openapi.json and the interactive docs at /docs; docs/api.md
describes the endpoints, keys, errors and idempotency.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from stakeledger.adapters.persistence.store_url import open_ledger, resolve_url
from stakeledger.api import accounts, attribution, errors, feed, market, operations, portfolio, prices, settlement, web
from stakeledger.api.limits import BodyLimit
from stakeledger.api.state import ApiState
from stakeledger.domain.service.clock import Clock

CATCH_UP_ENV = "STAKELEDGER_API_CATCH_UP"
DESCRIPTION = """\
Token ledger for prediction markets on research artifacts.

- **Keys**: every write needs `Authorization: Bearer sl_...` (`stakeledger apikey create`). A `trade` key acts
  only for its own agent; an `admin` key acts for any agent and may also list artifacts, mint, transition
  artifacts and distribute or refund bounties. Market data, settlements and reputation are public.
- **Amounts** are decimal strings (`"12.5"`); responses give exact `*_units` strings and human strings.
- **Idempotency**: an `Idempotency-Key` header on a POST or DELETE makes it retry-safe.
- **Errors** are `{"error": CODE, "message": ...}`: 401 no or unknown key, 403 wrong agent or scope,
  404 unknown id, 409 frozen / state conflict / risk rejection / idempotency mismatch, 422 bad input.
"""


def create_app(url: str | None = None, clock: Clock | None = None, *, catch_up: bool | None = None) -> FastAPI:
    """A FastAPI application serving the ledger at ``url``; one ledger per application."""
    ledger = open_ledger(resolve_url(url), clock=clock)
    if catch_up is None:
        catch_up = os.environ.get(CATCH_UP_ENV, "1").strip().lower() not in ("0", "false", "no", "off")
    state = ApiState(ledger, catch_up=catch_up)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        state.close()

    app = FastAPI(title="stakeledger", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    app.state.api = state
    errors.install(app)
    app.add_middleware(BodyLimit)
    for module in (operations, market, prices, settlement, accounts, portfolio, attribution, feed, web):
        app.include_router(module.router)
    return app
