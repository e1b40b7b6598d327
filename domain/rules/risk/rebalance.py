"""Rebalancing advice: positions whose weight drifts from target by more than the threshold."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Any

from stakeledger.domain.rules.risk.numbers import coerce_pct, pct_of_floor, pct_ratio, require_int, require_range

# Rebalancing percentages are exact fractions internally; they are shown with this many
# decimal places so that advice serialises to the same string on every machine.
REBALANCE_PCT_PLACES = Decimal("0.000001")


class RebalanceReason(StrEnum):
    """Why a rebalance is advised, in precedence order: a breach of the hard position
    limit is reported before a drift from the soft target."""

    MAX_POSITION_PCT = "MAX_POSITION_PCT"
    DRIFT = "DRIFT"


class RebalanceDirection(StrEnum):
    REDUCE = "REDUCE"
    INCREASE = "INCREASE"


@dataclass(frozen=True)
class RebalanceAction:
    """Advice for one artifact. Percentages are of equity, rounded to six places.

    ``drift_pct`` is relative to the target: (weight − target) / target · 100, so a
    5% target held at 6% has drifted +20%. It is None when there is no target to be
    relative to (target zero, or only the position limit applies).
    """

    artifact_id: str
    action: RebalanceDirection
    reason: RebalanceReason
    current_pct: Decimal
    target_pct: Decimal | None
    drift_pct: Decimal | None
    amount_units: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "artifact_id": self.artifact_id,
            "action": str(self.action),
            "reason": str(self.reason),
            "current_pct": str(self.current_pct),
            "target_pct": None if self.target_pct is None else str(self.target_pct),
            "drift_pct": None if self.drift_pct is None else str(self.drift_pct),
            "amount_units": self.amount_units,
        }


def _fraction_to_pct(value: Fraction) -> Decimal:
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return exact.quantize(REBALANCE_PCT_PLACES, rounding=ROUND_HALF_EVEN)


def rebalance_actions(
    positions: Sequence[tuple[str, int]],
    equity_units: int,
    targets_pct: Mapping[str, Decimal],
    threshold_pct: Decimal,
    max_position_size_pct: Decimal,
) -> list[RebalanceAction]:
    """Advise how to move positions back to their targets (seed 001 "Rebalancing").

    * ``positions`` are (artifact_id, marked value in units); repeated ids are summed.
    * A position above ``max_position_size_pct`` of equity is always flagged REDUCE,
      down to the smaller of the limit and its target.
    * Otherwise, a position with a target whose relative drift exceeds
      ``threshold_pct`` gets REDUCE or INCREASE towards the target. A target above the
      position limit is only increased up to the limit. A target with no position is a
      drift of −100%. A target of zero means "exit": any holding is reduced to zero.
    * Target values round down, so advice never takes a position above its target.

    Actions are returned sorted by artifact id so that the advice is deterministic.
    """
    if require_int("equity_units", equity_units) <= 0:
        raise ValueError(f"equity_units must be positive to measure weights, got {equity_units}")
    threshold = coerce_pct("threshold_pct", threshold_pct)
    max_pct = coerce_pct("max_position_size_pct", max_position_size_pct)
    assert threshold is not None and max_pct is not None
    if threshold < 0:
        raise ValueError(f"threshold_pct must not be negative, got {threshold}")
    require_range("max_position_size_pct", max_pct, Decimal(0), Decimal(100), low_open=True)

    values: dict[str, int] = {}
    for artifact_id, value_units in positions:
        if require_int("value_units", value_units) < 0:
            raise ValueError(f"marked value of {artifact_id} must not be negative, got {value_units}")
        values[artifact_id] = values.get(artifact_id, 0) + value_units
    targets: dict[str, Decimal] = {}
    for artifact_id, target in targets_pct.items():
        coerced = coerce_pct(f"target_pct[{artifact_id}]", target)
        assert coerced is not None
        require_range(f"target_pct[{artifact_id}]", coerced, Decimal(0), Decimal(100), low_open=False)
        targets[artifact_id] = coerced

    max_value_units = pct_of_floor(equity_units, max_pct)
    actions: list[RebalanceAction] = []
    for artifact_id in sorted(set(values) | set(targets)):
        value_units = values.get(artifact_id, 0)
        target = targets.get(artifact_id)
        current_fraction = Fraction(value_units * 100, equity_units)
        current_pct = _fraction_to_pct(current_fraction)
        target_value_units = None if target is None else pct_of_floor(equity_units, target)

        drift: Fraction | None = None
        if target is not None and target > 0:
            target_fraction = Fraction(*pct_ratio(target))
            drift = (current_fraction - target_fraction) / target_fraction * 100
        drift_pct = None if drift is None else _fraction_to_pct(drift)

        if value_units > max_value_units:
            floor_units = max_value_units if target_value_units is None else min(max_value_units, target_value_units)
            actions.append(
                RebalanceAction(
                    artifact_id,
                    RebalanceDirection.REDUCE,
                    RebalanceReason.MAX_POSITION_PCT,
                    current_pct,
                    target,
                    drift_pct,
                    value_units - floor_units,
                )
            )
            continue
        if target is None:
            continue
        if target == 0:
            if value_units > 0:
                actions.append(
                    RebalanceAction(
                        artifact_id,
                        RebalanceDirection.REDUCE,
                        RebalanceReason.DRIFT,
                        current_pct,
                        target,
                        None,
                        value_units,
                    )
                )
            continue
        assert drift is not None and target_value_units is not None
        threshold_fraction = Fraction(*pct_ratio(threshold))
        if abs(drift) <= threshold_fraction:
            continue
        goal_units = min(target_value_units, max_value_units)
        if goal_units == value_units:
            # The target sits above the position limit and the position is at the
            # limit already: nothing can be done, so nothing is advised.
            continue
        direction = RebalanceDirection.REDUCE if value_units > goal_units else RebalanceDirection.INCREASE
        actions.append(
            RebalanceAction(
                artifact_id,
                direction,
                RebalanceReason.DRIFT,
                current_pct,
                target,
                drift_pct,
                abs(value_units - goal_units),
            )
        )
    return actions
