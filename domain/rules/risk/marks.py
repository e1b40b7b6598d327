"""Marks at exit value: a live position is worth what selling it back to the pool now pays.

The pool's price is the price of the next infinitesimal share; selling a whole position walks
down the curve and pays less. Marking at the price would show a gain right after every buy
(the buyer paid the average price on the way up and is credited the higher price at the
top). Marking at the sell-back, rounded down as the pool pays it, shows minus the round trip
instead: ``exit_value(buy(x)) <= cost`` for every buy, to the base unit.

Each position is marked alone against the pool as it stands, which is exactly what
``trade close`` on that position would pay now.
"""

from __future__ import annotations

from stakeledger.domain.rules.lmsr import sell_proceeds_units
from stakeledger.domain.vocabulary import Side


def exit_value_units(q_long: int, q_short: int, b_units: int, side: Side | str, quantity_units: int) -> int:
    """Tokens that selling ``quantity_units`` shares of ``side`` to the pool at (q_long, q_short)
    would pay now, rounded down (in the pool's favour); 0 for no shares or a pool without liquidity."""
    if quantity_units <= 0 or b_units <= 0:
        return 0
    return sell_proceeds_units(q_long, q_short, b_units, Side(side), quantity_units)


def unrealised_pnl_units(value_units: int, cost_units: int) -> int:
    """Exit value less the cost still at risk."""
    return value_units - cost_units
