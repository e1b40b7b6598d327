"""What every request shares: the ledger, its view store, and the caller's key.

One ``StakeLedger`` serves every request of a worker process; it is safe to share
between threads (each command gets its own unit of work, and the store's connection
pool hands each thread its own connection). Reads of the projection views go through
one view store per process. Before each view read the views are caught up with the
log, so a client reads its own writes; with a projection worker running beside the API
the catch-up usually finds nothing to do. ``catch_up=False`` (or
``STAKELEDGER_API_CATCH_UP=0``) answers from the views as they are instead.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Optional

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from stakeledger.domain.errors import InvalidInputError
from stakeledger.domain.service.apikeys import Principal, authenticate
from stakeledger.domain.service.application import StakeLedger
from stakeledger.projections.runner import Runner
from stakeledger.projections.store import ViewStore, open_store

IDEMPOTENCY_KEY_MAX = 128
_IDEMPOTENCY_KEY = re.compile(rf"^[\x21-\x7e]{{1,{IDEMPOTENCY_KEY_MAX}}}\Z")


@dataclass
class ApiState:
    ledger: StakeLedger
    catch_up: bool = True
    _store: ViewStore | None = field(default=None, repr=False)
    _runner: Runner | None = field(default=None, repr=False)
    _open_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _catch_up_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def decimals(self) -> int:
        return self.ledger.decimals

    def store(self) -> ViewStore:
        with self._open_lock:
            if self._store is None:
                self._store = open_store(self.ledger)
                self._runner = Runner(self.ledger, self._store)
            return self._store

    @contextmanager
    def views(self) -> Iterator[ViewStore]:
        """The view store, first caught up with the log (one catch-up at a time per process)."""
        store = self.store()
        if self.catch_up:
            assert self._runner is not None
            with self._catch_up_lock:
                self._runner.catch_up()
        yield store

    def close(self) -> None:
        with self._open_lock:
            if self._store is not None:
                self._store.close()
                self._store = None
                self._runner = None
        self.ledger.close()


def get_state(request: Request) -> ApiState:
    return request.app.state.api


State = Annotated[ApiState, Depends(get_state)]

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key from `stakeledger apikey create AGENT [--scope trade|admin]`: `Authorization: Bearer sl_...`.",
)


def get_principal(
    state: State, credentials: Annotated[Optional[HTTPAuthorizationCredentials], Depends(bearer)]
) -> Principal:
    return authenticate(state.ledger, credentials.credentials if credentials is not None else None)


Caller = Annotated[Principal, Depends(get_principal)]


def get_command_id(
    caller: Caller,
    idempotency_key: Annotated[
        Optional[str],
        Header(
            alias="Idempotency-Key",
            max_length=IDEMPOTENCY_KEY_MAX,
            description="Makes the request retry-safe: a retry with the same key and body returns the first response; "
            "the same key with another body is refused with 409 IDEMPOTENCY_MISMATCH. 1-128 visible ASCII characters.",
        ),
    ] = None,
) -> str | None:
    """The ledger command id for this request. Keys are scoped to the caller's agent, so
    two agents choosing the same key never see or block each other's commands."""
    if idempotency_key is None:
        return None
    if not _IDEMPOTENCY_KEY.match(idempotency_key):
        raise InvalidInputError(f"Idempotency-Key must be 1-{IDEMPOTENCY_KEY_MAX} visible ASCII characters")
    return f"http:{caller.agent}:{idempotency_key}"


CommandId = Annotated[Optional[str], Depends(get_command_id)]
