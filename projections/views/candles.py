"""Price history: open, high, low and close of p(long), volume and trade count per
market, in 1-minute, 5-minute, 1-hour and 1-day buckets of recorded trade time (UTC).

A candle folds the trades whose timestamps fall in its bucket. Its open is p(long) just
before the bucket's first trade and its close the price after the last, so consecutive
candles join up even when a settlement moved the price between them; high and low
cover the open and every trade's price after. Volume is the tokens that changed hands
(paid for buys, received for sells), in base units. Buckets without trades have no row.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from stakeledger.domain.errors import InvalidInputError
from stakeledger.domain.model.artifacts import Artifact, micros
from stakeledger.projections.store import AMOUNT, INT, TEXT, Rows, Table
from stakeledger.projections.views.base import View, handles
from stakeledger.projections.views.tape import PriceTracker, market_table

# Bucket name -> its length in seconds.
INTERVALS = {"1m": 60, "5m": 300, "1h": 3_600, "1d": 86_400}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

CANDLES = Table(
    "candles",
    columns=(
        ("artifact_id", TEXT),
        ("span", TEXT),
        ("bucket_start", TEXT),
        ("open_wad", AMOUNT),
        ("high_wad", AMOUNT),
        ("low_wad", AMOUNT),
        ("close_wad", AMOUNT),
        ("volume_units", AMOUNT),
        ("trades", INT),
        ("first_position", INT),
        ("last_position", INT),
    ),
    key=("artifact_id", "span", "bucket_start"),
)


class InvalidIntervalError(InvalidInputError):
    code = "INVALID_INTERVAL"


def check_interval(interval: str) -> int:
    """The bucket length in seconds of an interval name, or INVALID_INTERVAL."""
    seconds = INTERVALS.get(interval) if isinstance(interval, str) else None
    if seconds is None:
        raise InvalidIntervalError(f"interval must be one of {', '.join(INTERVALS)}, got {interval!r}")
    return seconds


def bucket_start(at: datetime, seconds: int) -> str:
    """ISO text of the UTC start of the bucket of ``seconds`` holding ``at``: the same
    text for every moment of the bucket, so text order is time order."""
    whole = micros(at)
    return (_EPOCH + timedelta(microseconds=whole - whole % (seconds * 1_000_000))).isoformat()


@lru_cache(maxsize=1)
def bucket_starts(at: datetime) -> tuple[tuple[str, str], ...]:
    """(interval name, ``bucket_start``) for every interval. The trades of one batch share
    their timestamp, so the last answer is remembered."""
    return tuple((span, bucket_start(at, seconds)) for span, seconds in INTERVALS.items())


class CandlesView(PriceTracker, View):
    name = "candles"
    version = 1
    markets_table = "candle_markets"
    tables = (CANDLES, market_table("candle_markets"))

    @handles(Artifact.Traded)
    def traded(self, rows: Rows, position: int, event: Any) -> None:
        moved = self._trade(rows, event)
        if moved is None:
            return
        artifact_id, before = moved
        after = event.price_long_wad
        open_wad = after if before is None else before
        volume = abs(event.tokens_delta_units)
        for span, start in bucket_starts(event.timestamp):
            key = (artifact_id, span, start)
            candle = rows.update("candles", key)
            if candle is None:
                rows.put(
                    "candles",
                    {
                        "artifact_id": artifact_id,
                        "span": span,
                        "bucket_start": key[2],
                        "open_wad": open_wad,
                        "high_wad": max(open_wad, after),
                        "low_wad": min(open_wad, after),
                        "close_wad": after,
                        "volume_units": volume,
                        "trades": 1,
                        "first_position": position,
                        "last_position": position,
                    },
                )
                continue
            candle["high_wad"] = max(candle["high_wad"], after)
            candle["low_wad"] = min(candle["low_wad"], after)
            candle["close_wad"] = after
            candle["volume_units"] += volume
            candle["trades"] += 1
            candle["last_position"] = position
