"""Fixtures the CLI tests share."""

from __future__ import annotations

import pytest

from stakeledger.domain.service.clock import ManualClock, SystemClock


@pytest.fixture
def wall(monkeypatch) -> ManualClock:
    """The CLI's system clock, held still (tests move it): window averages depend on how long
    each price stood, which on the real clock depends on how fast the machine runs the steps."""
    clock = ManualClock()
    monkeypatch.setattr(SystemClock, "now", lambda self: clock.now())
    return clock
