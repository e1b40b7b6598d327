"""Injectable time. Commands read the time from a clock they are given, so tests and
the demo can run simulated days and a replay never consults the wall clock."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """The wall clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(tz=timezone.utc)


class ManualClock:
    """A clock that moves only when told to: for tests, the demo and simulations."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=timezone.utc)
        if self._now.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start time")

    def now(self) -> datetime:
        return self._now

    def advance(self, *, days: float = 0, seconds: float = 0) -> datetime:
        self._now += timedelta(days=days, seconds=seconds)
        return self._now

    def set(self, moment: datetime) -> None:
        if moment < self._now:
            raise ValueError("a ManualClock never moves backwards")
        self._now = moment


def to_micros(moment: datetime) -> int:
    """Microseconds since the Unix epoch, exact (no float arithmetic)."""
    delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
