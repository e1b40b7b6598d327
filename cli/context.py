"""What every CLI command shares: the chosen store, output mode and the application."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property

import typer

from stakeledger.adapters.persistence.store_url import env_for_url, resolve_url
from stakeledger.domain.errors import NotInitialisedError
from stakeledger.domain.service.application import StakeLedger
from stakeledger.domain.service.clock import Clock, SystemClock


@dataclass
class CliContext:
    url: str
    as_json: bool = False
    clock: Clock = field(default_factory=SystemClock)
    creating: bool = False

    @cached_property
    def app(self) -> StakeLedger:
        env = env_for_url(self.url)
        # Only `init` (and the demo) may create a store; anything else pointed at a
        # missing SQLite file would otherwise leave an empty database behind.
        path = env.get("SQLITE_DBNAME")
        if path and path != ":memory:" and not self.creating and not os.path.exists(path):
            raise NotInitialisedError(f"no ledger at {path}: run 'stakeledger init' first (or pass --db)")
        app = StakeLedger(env, clock=self.clock)
        _opened[:] = [app]
        return app


# The application the running command opened, so a refusal that reaches ``main`` can show
# its amounts in the ledger's decimals (``opened_decimals``).
_opened: list[StakeLedger] = []


def forget_opened() -> None:
    """Called as a command starts: a refusal of this command never uses an earlier one's ledger."""
    _opened.clear()


def close_opened() -> None:
    """Called as a command ends: close the ledger it opened (its connections, its files), so a
    process that runs many commands (the tests, a script calling ``main``) holds none open."""
    while _opened:
        app = _opened.pop()
        try:
            app.close()
        except Exception:  # noqa: BLE001 - the command's answer is given; closing cannot change it
            pass


def opened_decimals() -> int | None:
    """The decimals of the ledger this command opened, or None if it opened none (or the
    store is not initialised)."""
    if not _opened:
        return None
    try:
        return _opened[0].decimals
    except Exception:  # noqa: BLE001 - a refusal is being reported; its amounts stay as they are
        return None


def get_context(ctx: typer.Context) -> CliContext:
    obj = ctx.find_root().obj
    if obj is None:  # invoked without the root callback, e.g. from tests of a sub-app
        obj = ctx.find_root().obj = CliContext(resolve_url(None))
    return obj
