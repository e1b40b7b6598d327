"""What every CLI command shares: the chosen store, output mode and the application."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import typer

from domain.application import StakeLedger
from domain.clock import Clock, SystemClock
from domain.store_url import env_for_url, resolve_url


@dataclass
class CliContext:
    url: str
    as_json: bool = False
    clock: Clock = field(default_factory=SystemClock)

    @cached_property
    def app(self) -> StakeLedger:
        return StakeLedger(env_for_url(self.url), clock=self.clock)


def get_context(ctx: typer.Context) -> CliContext:
    obj = ctx.find_root().obj
    if obj is None:  # invoked without the root callback, e.g. from tests of a sub-app
        obj = ctx.find_root().obj = CliContext(resolve_url(None))
    return obj
