"""Settlement as pure arithmetic: seed 000's table, made exact.

With s = settlement long price (WAD), q = quantity, e = entry price, cost = tokens
committed, and every payout rounded down (the pool never pays a fraction it owes
nobody):

| transition  | long                                   | short                                      |
|-------------|----------------------------------------|--------------------------------------------|
| validated   | payout q·s                             | payout 0 (loses cost)                      |
| deprecated  | payout 0 (loses cost)                  | payout q·(1 − s)                           |
| flagged     | 50% of cost back now; q and cost halve | 25% of cost paid as a bonus; stays open    |
| challenged  | frozen                                 | frozen                                     |
| invalid     | what it put in, net of what it got     | what it put in, net of what it got         |

Invalid is N/A (as Manifold's CANCEL): the question is void, so every live position gets
back its cost less what a flag already paid it (a long's half back shrank its cost; a
short's bonus is taken back out of its refund), and its realised P&L over its life is 0.
It is no prediction: nobody's reputation moves.

Profit is payout − cost. A terminal outcome is a prediction: correct when the payout
exceeds the cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from stakeledger.domain.errors import InvalidInputError
from stakeledger.domain.vocabulary import WAD, Reason, Side

VALIDATED, DEPRECATED, FLAGGED, CHALLENGED, LISTED = "validated", "deprecated", "flagged", "challenged", "listed"

PROFIT, LOSS, PARTIAL = Reason.SETTLEMENT_PROFIT, Reason.SETTLEMENT_LOSS, Reason.SETTLEMENT_PARTIAL
REFUND = Reason.SETTLEMENT_REFUND
INVALID = "invalid"


class PositionLike(Protocol):
    side: str
    quantity_units: int
    cost_units: int
    realized_pnl_units: int


@dataclass(frozen=True)
class SettlementOutcome:
    """What settling one position pays and what is left of it."""

    payout_units: int
    pnl_units: int
    reason: str
    terminal: bool
    quantity_left_units: int
    cost_left_units: int

    @property
    def correct(self) -> bool:
        """A terminal settlement is a correct prediction when it paid more than it cost."""
        return self.pnl_units > 0

    @property
    def cost_released_units(self) -> int:
        return self.payout_units - self.pnl_units


def compute_settlement_pnl(position: PositionLike, settlement_price_wad: int, state: str) -> SettlementOutcome:
    """Settle ``position`` for a transition to ``state`` at long price ``settlement_price_wad``.

    Anything but a position-like object, an integer WAD price strictly inside (0, 1) and a state
    is refused with InvalidInputError (``StakeLedger.compute_settlement_pnl`` takes a position id,
    a decimal price and the artifact's own state)."""
    if isinstance(settlement_price_wad, bool) or not isinstance(settlement_price_wad, int):
        raise InvalidInputError(
            f"settlement price must be an integer in WAD (10**18 is 1), got {type(settlement_price_wad).__name__}"
        )
    if not 0 < settlement_price_wad < WAD:
        raise InvalidInputError("settlement price must be strictly between 0 and 1")
    try:
        side = Side(position.side)
        quantity, cost = position.quantity_units, position.cost_units
    except (AttributeError, ValueError):
        raise InvalidInputError(
            "position must have a side ('long' or 'short'), quantity_units and cost_units"
        ) from None
    if any(isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in (quantity, cost)):
        raise InvalidInputError("a position's quantity_units and cost_units are non-negative integers")
    if not isinstance(state, str):
        raise InvalidInputError(f"state must be a lifecycle state name, got {type(state).__name__}")
    if state == VALIDATED:
        payout = quantity * settlement_price_wad // WAD if side == Side.LONG else 0
        return _terminal(payout, cost)
    if state == DEPRECATED:
        payout = quantity * (WAD - settlement_price_wad) // WAD if side == Side.SHORT else 0
        return _terminal(payout, cost)
    if state == FLAGGED:
        if side == Side.LONG:
            refund = cost // 2
            # Half the shares go back with half the cost, so the entry price stays put.
            return SettlementOutcome(refund, 0, PARTIAL, False, quantity - quantity // 2, cost - refund)
        bonus = cost // 4
        return SettlementOutcome(bonus, bonus, PARTIAL, False, quantity, cost)
    if state == INVALID:
        # Whatever a flag paid as profit (a short's bonus) comes back out of the refund.
        refund = max(cost - getattr(position, "realized_pnl_units", 0), 0)
        return SettlementOutcome(refund, refund - cost, REFUND, True, 0, 0)
    raise InvalidInputError(f"a transition to {state!r} settles nothing")


def _terminal(payout_units: int, cost_units: int) -> SettlementOutcome:
    pnl = payout_units - cost_units
    return SettlementOutcome(payout_units, pnl, PROFIT if pnl > 0 else LOSS, True, 0, 0)


# Reputation -----------------------------------------------------------------------------

REPUTATION_START_WAD = WAD // 2
LEARNING_RATE_WAD = WAD // 5  # alpha = 0.2


def stake_weight_wad(stake_units: int, reference_stake_units: int) -> int:
    """w = stake / (stake + reference): small stakes move believability a little, large
    ones up to (but never all of) the learning rate."""
    return stake_units * WAD // (stake_units + reference_stake_units)


def update_believability_wad(before_wad: int, correct: bool, stake_units: int, reference_stake_units: int) -> int:
    """b' = b + alpha·w·(y − b), y = 1 when correct else 0; stays inside [0, 1]."""
    weight = stake_weight_wad(stake_units, reference_stake_units)
    target = WAD if correct else 0
    step = LEARNING_RATE_WAD * weight // WAD * (target - before_wad) // WAD
    after = before_wad + step
    assert 0 <= after <= WAD
    return after
