"""When a market may resolve, and at what price: thresholds and the window's average price.

Seed 000 resolves an artifact as *validated* at "price > 0.7 sustained", *deprecated* at
"< 0.1 sustained" and *flagged* at "< 0.3". Here each market carries its own
``ResolutionRules`` (seed 000's numbers by default, set at listing):

| transition | the settlement price s must be |
|------------|--------------------------------|
| validated  | s >= validated_min (0.7)        |
| deprecated | s <= deprecated_max (0.1)       |
| flagged    | s <  flagged_below (0.3)        |

The settlement price is the resolver's explicit price when one is given, otherwise the
time-weighted average of p(long) over the market's window (7 days by default, of the
injectable clock) ending at the transition: each recorded price holds from the moment it
was set until the next one, so one trade just before resolution moves the average by its
price times its share of the window, not to its price. A market younger than its window
averages over its whole life (from its listing at 0.5).

Everything is an integer: prices in WAD, times in microseconds since the epoch, and the
average is floored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from stakeledger.domain.errors import InvalidInputError
from stakeledger.domain.vocabulary import DEPRECATED, FLAGGED, VALIDATED, WAD

MICROS_PER_DAY = 86_400 * 10**6
DEFAULT_VALIDATED_MIN_WAD = 7 * WAD // 10
DEFAULT_DEPRECATED_MAX_WAD = WAD // 10
DEFAULT_FLAGGED_BELOW_WAD = 3 * WAD // 10
DEFAULT_WINDOW_DAYS = 7
MAX_WINDOW_DAYS = 3_650
# A terminal transition may be reopened (corrected) for this long after it happened.
DEFAULT_CORRECTION_HOURS = 24
MAX_CORRECTION_HOURS = 24 * 365
# Seed 000 validates at "price > 0.7 sustained" without saying for how long: one day.
DEFAULT_SUSTAINED_HOURS = 24
MAX_SUSTAINED_HOURS = 24 * 365
MICROS_PER_HOUR = 3_600 * 10**6

PricePoint = tuple[int, int]  # (microseconds since the epoch, p(long) in WAD from then on)


@dataclass(frozen=True)
class ResolutionRules:
    """The thresholds and the averaging window of one market."""

    validated_min_wad: int = DEFAULT_VALIDATED_MIN_WAD
    deprecated_max_wad: int = DEFAULT_DEPRECATED_MAX_WAD
    flagged_below_wad: int = DEFAULT_FLAGGED_BELOW_WAD
    window_days: int = DEFAULT_WINDOW_DAYS
    correction_hours: int = DEFAULT_CORRECTION_HOURS
    auto_resolve: bool = False
    sustained_hours: int = DEFAULT_SUSTAINED_HOURS

    def __post_init__(self) -> None:
        for name in ("validated_min_wad", "deprecated_max_wad", "flagged_below_wad"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < WAD:
                raise InvalidInputError(f"{name.removesuffix('_wad')} must be a price strictly between 0 and 1")
        if not self.deprecated_max_wad < self.flagged_below_wad <= self.validated_min_wad:
            raise InvalidInputError(
                "thresholds must be ordered: deprecated at or below < flagged below <= validated at or above"
            )
        days = self.window_days
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_WINDOW_DAYS:
            raise InvalidInputError(f"the averaging window must be 1 to {MAX_WINDOW_DAYS} whole days")
        hours = self.correction_hours
        if isinstance(hours, bool) or not isinstance(hours, int) or not 0 <= hours <= MAX_CORRECTION_HOURS:
            raise InvalidInputError(f"the correction window must be 0 to {MAX_CORRECTION_HOURS} whole hours")
        if not isinstance(self.auto_resolve, bool):
            raise InvalidInputError("auto_resolve must be true or false")
        hours = self.sustained_hours
        if isinstance(hours, bool) or not isinstance(hours, int) or not 1 <= hours <= MAX_SUSTAINED_HOURS:
            raise InvalidInputError(f"the sustained period must be 1 to {MAX_SUSTAINED_HOURS} whole hours")

    @property
    def window_micros(self) -> int:
        return self.window_days * MICROS_PER_DAY

    def bound_for(self, to_state: str) -> tuple[str, int] | None:
        """(comparison, bound) the settlement price must meet for ``to_state``; None if no bound."""
        if to_state == VALIDATED:
            return ">=", self.validated_min_wad
        if to_state == DEPRECATED:
            return "<=", self.deprecated_max_wad
        if to_state == FLAGGED:
            return "<", self.flagged_below_wad
        return None

    def meets(self, to_state: str, price_wad: int) -> bool:
        bound = self.bound_for(to_state)
        if bound is None:
            return True
        comparison, limit = bound
        return {">=": price_wad >= limit, "<=": price_wad <= limit, "<": price_wad < limit}[comparison]

    @property
    def correction_micros(self) -> int:
        return self.correction_hours * MICROS_PER_HOUR

    @property
    def sustained_micros(self) -> int:
        return self.sustained_hours * MICROS_PER_HOUR

    def as_dict(self) -> dict[str, int | bool]:
        return {
            "validated_min_wad": self.validated_min_wad,
            "deprecated_max_wad": self.deprecated_max_wad,
            "flagged_below_wad": self.flagged_below_wad,
            "window_days": self.window_days,
            "correction_hours": self.correction_hours,
            "auto_resolve": self.auto_resolve,
            "sustained_hours": self.sustained_hours,
        }


def window_start(points: Sequence[PricePoint], end_micros: int, window_micros: int) -> int:
    """Where the average starts: the window's start, or the first point (the listing) if later."""
    return max(end_micros - window_micros, points[0][0]) if points else end_micros


def time_weighted_price_wad(points: Sequence[PricePoint], end_micros: int, window_micros: int) -> int:
    """floor of the average of p(long) over [end − window, end], each point's price holding
    until the next point. ``points`` are in time order and start with the listing; a point
    before the window's start contributes the price it set for the part inside the window."""
    if not points:
        raise ValueError("a market always has its listing price")
    start = window_start(points, end_micros, window_micros)
    if end_micros <= start:  # resolved at the instant of listing: no time has passed
        return points[-1][1]
    weighted = 0
    for index, (at, price) in enumerate(points):
        until = points[index + 1][0] if index + 1 < len(points) else end_micros
        begin, finish = max(at, start), min(until, end_micros)
        if finish > begin:
            weighted += price * (finish - begin)
    return weighted // (end_micros - start)


def prune(points: Sequence[PricePoint], now_micros: int, window_micros: int) -> tuple[PricePoint, ...]:
    """The points any average ending at or after ``now`` still needs: those inside the window,
    and the last one before it (its price holds into the window)."""
    cutoff = now_micros - window_micros
    keep_from = 0
    for index, (at, _) in enumerate(points):
        if at <= cutoff:
            keep_from = index
        else:
            break
    return tuple(points[keep_from:])


def auto_states(from_state: str) -> tuple[str, ...]:
    """The states a market opted into automatic resolution may reach by itself from
    ``from_state``: validated and deprecated from listed or flagged, flagged from listed.
    Terminal states come first: a market both below 0.3 and below 0.1 for the sustained
    period is deprecated, not flagged."""
    if from_state == "listed":
        return (VALIDATED, DEPRECATED, FLAGGED)
    if from_state == FLAGGED:
        return (VALIDATED, DEPRECATED)
    return ()


def distance_to_threshold_wad(rules: ResolutionRules, to_state: str, average_wad: int) -> int:
    """How far the average is from meeting ``to_state``'s bound: 0 when it meets it, else
    the move in p(long) (WAD) still needed (one unit past the bound for a strict '<')."""
    bound = rules.bound_for(to_state)
    if bound is None or rules.meets(to_state, average_wad):
        return 0
    comparison, limit = bound
    if comparison == ">=":
        return limit - average_wad
    if comparison == "<=":
        return average_wad - limit
    return average_wad - limit + 1
