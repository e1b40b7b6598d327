"""A program's end of the live feed: read /api/stream, reconnect and resume, and turn
trades into candle closes for a strategy (seed 001's "for each 5-min candle close").

    follower = FeedFollower("http://127.0.0.1:8000", topics="trades", artifact="ART-1")
    async for message in follower.messages():     # None while the feed is idle
        ...

``FeedFollower`` remembers the id of the last message it received; when the connection
drops, the server restarts or closes it as a slow consumer, it reconnects with that id
as ``Last-Event-ID`` and so receives every message it missed, none twice.

``CandleTracker`` folds trade messages into candles of one interval per market exactly
as the server's ``candles`` view does (open = p(long) before the bucket's first trade,
close = after its last, volume in base units), and hands back a candle once it is
closed: when a trade of a later bucket arrives, or, with ``grace`` set, when the clock
has passed the bucket's end by that many seconds.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx

INTERVALS = {"1m": 60, "5m": 300, "1h": 3_600, "1d": 86_400}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class FeedRefused(Exception):
    """The server refused the subscription (bad topic, missing or wrong key): retrying
    the same request cannot help."""

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body
        code = body.get("error") if isinstance(body, dict) else None
        super().__init__(f"the feed refused the subscription: {status} {code or body}")


async def sse_events(
    client: httpx.AsyncClient,
    base: str,
    params: dict[str, str],
    *,
    last_id: str | None = None,
    key: str | None = None,
    read_timeout: float = 60.0,
) -> AsyncIterator[tuple[str, Any]]:
    """One connection's events as (kind, data): ("message", dict), ("close", dict) or
    ("keepalive", None)."""
    headers = {"Accept": "text/event-stream"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    if last_id:
        headers["Last-Event-ID"] = last_id
    timeout = httpx.Timeout(10.0, read=read_timeout)
    async with client.stream("GET", f"{base}/api/stream", params=params, headers=headers, timeout=timeout) as answer:
        if answer.status_code != 200:
            text = (await answer.aread()).decode(errors="replace")
            try:
                body: Any = json.loads(text)
            except ValueError:
                body = text
            raise FeedRefused(answer.status_code, body)
        kind, data = "message", []
        async for line in answer.aiter_lines():
            if line == "":
                if data:
                    yield kind, json.loads("\n".join(data))
                kind, data = "message", []
            elif line.startswith(":"):
                yield "keepalive", None
            elif line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
            elif line.startswith("event:"):
                kind = line[6:].strip()


@dataclass
class FeedFollower:
    """Follows /api/stream for good: reconnects after any failure and resumes after the
    last message received. ``after`` starts after a given id (default: the whole log)."""

    base: str
    topics: str = "trades"
    artifact: str | None = None
    account: str | None = None
    key: str | None = None
    after: str | None = None
    retry_seconds: float = 0.2
    max_retry_seconds: float = 5.0
    read_timeout: float = 60.0
    last_id: str | None = None
    connections: int = 0

    def __post_init__(self) -> None:
        if self.last_id is None:
            self.last_id = self.after

    def params(self) -> dict[str, str]:
        params = {"topics": self.topics}
        if self.artifact:
            params["artifact"] = self.artifact
        if self.account:
            params["account"] = self.account
        return params

    async def messages(self, stop: asyncio.Event | None = None) -> AsyncIterator[dict[str, Any] | None]:
        """Every message in log order, with None when the feed is idle (a keep-alive or a
        reconnect), so a caller can look at its clock. Ends when ``stop`` is set."""
        pause = self.retry_seconds
        async with httpx.AsyncClient() as client:
            while stop is None or not stop.is_set():
                self.connections += 1
                try:
                    async for kind, data in sse_events(
                        client,
                        self.base,
                        self.params(),
                        last_id=self.last_id,
                        key=self.key,
                        read_timeout=self.read_timeout,
                    ):
                        pause = self.retry_seconds
                        if kind == "close":
                            break  # a slow consumer: resume from the last id
                        if kind == "keepalive":
                            yield None
                        else:
                            self.last_id = data["id"]
                            yield data
                        if stop is not None and stop.is_set():
                            return
                except FeedRefused:
                    raise
                except (httpx.HTTPError, OSError, ValueError):
                    pass  # the connection or the server went away: resume below
                yield None
                await asyncio.sleep(pause)
                pause = min(pause * 2, self.max_retry_seconds)


@dataclass
class Candle:
    artifact: str
    interval: str
    start: datetime
    open_wad: int
    high_wad: int
    low_wad: int
    close_wad: int
    volume_units: int = 0
    trades: int = 0
    last_position: int = 0

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=INTERVALS[self.interval])

    def to_dict(self) -> dict[str, Any]:
        return {
            "artifact": self.artifact,
            "interval": self.interval,
            "start": self.start.isoformat(),
            "open_wad": str(self.open_wad),
            "high_wad": str(self.high_wad),
            "low_wad": str(self.low_wad),
            "close_wad": str(self.close_wad),
            "volume_units": str(self.volume_units),
            "trades": self.trades,
        }


def bucket_of(at: datetime, seconds: int) -> datetime:
    whole = (at - _EPOCH) // timedelta(microseconds=1)
    return _EPOCH + timedelta(microseconds=whole - whole % (seconds * 1_000_000))


@dataclass
class CandleTracker:
    interval: str = "5m"
    markets: frozenset[str] | None = None
    grace: float | None = None
    open: dict[str, Candle] = field(default_factory=dict)
    late_trades: int = 0

    def __post_init__(self) -> None:
        if self.interval not in INTERVALS:
            raise ValueError(f"interval must be one of {', '.join(INTERVALS)}, got {self.interval!r}")

    def on_message(self, message: dict[str, Any]) -> list[Candle]:
        """Fold a trade message; returns the candle it closed, if any."""
        if message.get("topic") != "trades":
            return []
        artifact = message["artifact"]
        if self.markets is not None and artifact not in self.markets:
            return []
        at = datetime.fromisoformat(message["at"])
        start = bucket_of(at, INTERVALS[self.interval])
        before, after = int(message["price_before_wad"]), int(message["price_after_wad"])
        closed: list[Candle] = []
        candle = self.open.get(artifact)
        if candle is not None and start < candle.start:
            self.late_trades += 1  # a trade of a candle already closed by the clock
            return []
        if candle is not None and start > candle.start:
            closed.append(self.open.pop(artifact))
            candle = None
        if candle is None:
            candle = self.open[artifact] = Candle(
                artifact, self.interval, start, before, max(before, after), min(before, after), after
            )
        candle.high_wad = max(candle.high_wad, after)
        candle.low_wad = min(candle.low_wad, after)
        candle.close_wad = after
        candle.volume_units += int(message["tokens_units"])
        candle.trades += 1
        candle.last_position = message["position"]
        return closed

    def on_clock(self, now: datetime) -> list[Candle]:
        """With ``grace``: the candles whose bucket ended more than ``grace`` seconds ago."""
        if self.grace is None:
            return []
        due = [a for a, c in self.open.items() if now >= c.end + timedelta(seconds=self.grace)]
        return [self.open.pop(artifact) for artifact in due]


CandleCallback = Callable[[Candle], Awaitable[Any] | Any]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


async def run_on_candle_close(
    base: str,
    markets: Iterable[str],
    callback: CandleCallback,
    *,
    interval: str = "5m",
    key: str | None = None,
    after: str | None = None,
    grace: float | None = None,
    clock: Callable[[], datetime] = utc_now,
    stop: asyncio.Event | None = None,
    follower: FeedFollower | None = None,
) -> FeedFollower:
    """Call ``callback(candle)`` (a function or a coroutine function) on each candle close
    of ``markets``, in order, following the feed with reconnect-and-resume until ``stop``."""
    wanted = frozenset(markets)
    if not wanted:
        raise ValueError("name at least one market")
    tracker = CandleTracker(interval, wanted, grace)
    if follower is None:
        only = next(iter(wanted)) if len(wanted) == 1 else None
        follower = FeedFollower(base, topics="trades", artifact=only, key=key, after=after)
    async for message in follower.messages(stop):
        closed = tracker.on_clock(clock()) if message is None else tracker.on_message(message)
        for candle in closed:
            result = callback(candle)
            if inspect.isawaitable(result):
                await result
    return follower
