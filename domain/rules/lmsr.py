"""Binary LMSR market maker (Hanson's logarithmic market scoring rule), as pure integer rules.

A market has two outcomes, long and short. The pool has sold ``q_long`` long shares and ``q_short``
short shares; one share pays one token base unit if its side wins, so shares and tokens share units.
With liquidity ``b`` the pool's cost function and prices are::

    C(q)    = b · ln(e^{q_long/b} + e^{q_short/b})
            = b · (m + ln Σ_i e^{q_i/b − m}),   m = max_i q_i/b      (shifted log-sum-exp)
    p_long  = e^{q_long/b} / (e^{q_long/b} + e^{q_short/b})           (softmax of q/b)
    p_short = 1 − p_long

A trade that moves q to q' costs C(q') − C(q). Starting from q = (0, 0) the pool collects at least
C(q) − b·ln 2 ≥ max(q) − b·ln 2, so its worst-case loss is the subsidy b·ln 2 funded at listing.

Numbers: every input and output is an ``int`` in base units, prices are ints scaled by ``WAD``.
Each rounded amount is computed twice over, fast and certain:

- The fast path is binary fixed point on Python ints (``domain.rules.fixed_point``): the spread
  term b·ln(1 + e^{−gap/b}) at ``bits(b) + 32`` bits, as an int in units of 2**-24 base units,
  within 2 of its exact value (``SPREAD_ERROR_BOUND``, proven in ``spread_term_scaled`` from the
  bounds of ``fixed_point``, and tested against 160-digit decimals). A cost is then known to
  lie strictly inside an interval 8 units of 2**-24 wide; when the whole interval rounds to
  the same integer, that integer *is* the exact rounding, whatever the arithmetic's last bits.
- Otherwise (the exact amount lies within 2**-21 of an integer: about one cost in two
  million, or every cost when a price is so close to 0 or 1 that the spread terms vanish
  below 2**-24) the function falls back to the reference:
  ``decimal`` in a local context whose precision grows with the inputs, ``60 + 2·digits``
  significant digits, which keeps the absolute error below 10**-50 base units. The reference
  functions are public (``reference_buy_cost_units`` and friends) as the tests' oracle.

Rounding always favours the pool: a cost rounds up, proceeds round down, shares bought for a token
budget round down. Where a price is so close to 0 or 1 that no finite precision can see the
difference, costs and proceeds are clamped by the exact bounds 0 < amount < shares, so the pool
still never gives a share away or buys one back at par. No float is used anywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import (
    MAX_EMAX,
    MIN_EMIN,
    ROUND_CEILING,
    ROUND_FLOOR,
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    getcontext,
    localcontext,
)
from functools import lru_cache

from stakeledger.domain.rules.fixed_point import exp_neg, ln1p, ln_ratio
from stakeledger.domain.vocabulary import WAD, Side

_Affordable = Callable[[int], bool]


# Significant digits beyond what the magnitudes of the inputs need; the spec asks for at least 60.
_GUARD_DIGITS = 60

# The search that corrects shares_for_tokens doubles its step, so it needs about log2(shares) steps.
# 4096 covers any share count below 2**2048, far beyond uint256.
_SEARCH_STEPS_MAX = 4096


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------


def cost_function(q_long: int, q_short: int, b_units: int) -> Decimal:
    """Return the pool's cost function C(q), unrounded.

    C(q) = b · (m + ln(e^{q_long/b − m} + e^{q_short/b − m})),  m = max(q_long, q_short)/b.
    """
    _require_quantities(q_long, q_short)
    _require_liquidity(b_units)
    with localcontext(_working_context(q_long, q_short, b_units)):
        return _cost(q_long, q_short, b_units)


def prices_wad(q_long: int, q_short: int, b_units: int) -> tuple[int, int]:
    """Return (p_long, p_short) in WAD.

    p_long = floor(WAD / (1 + e^{(q_short − q_long)/b})), clamped into [1, WAD − 1] so a price is
    always strictly inside (0, 1); p_short = WAD − p_long, so the pair sums to WAD exactly.
    """
    _require_quantities(q_long, q_short)
    _require_liquidity(b_units)
    p_long_wad = _fast_price_long_wad(q_long - q_short, b_units)
    if p_long_wad is None:
        p_long_wad = _reference_price_long_wad(q_long, q_short, b_units)
    p_long_wad = min(max(p_long_wad, 1), WAD - 1)
    return p_long_wad, WAD - p_long_wad


def buy_cost_units(q_long: int, q_short: int, b_units: int, side: Side, shares_units: int) -> int:
    """Return the tokens a trader pays to buy ``shares_units`` shares of ``side``, rounded up.

    cost = ceil(C(q + x·e_side) − C(q)), clamped into [1, x].

    Every price is strictly inside (0, 1), so the exact cost is strictly between 0 and x. The clamp
    states that fact: where a price is within 10**-50 of 0 or 1 the cost differs from 0 or x by less
    than the working precision can hold, and plain rounding would hand a share out for free.
    """
    _require_quantities(q_long, q_short)
    _require_liquidity(b_units)
    _require_positive("shares_units", shares_units)
    q_side, q_other = _oriented(q_long, q_short, Side(side))
    return _buy_cost_oriented_units(q_side, q_other, b_units, shares_units)


def sell_proceeds_units(q_long: int, q_short: int, b_units: int, side: Side, shares_units: int) -> int:
    """Return the tokens paid for selling ``shares_units`` shares of ``side``, rounded down.

    proceeds = floor(C(q) − C(q − x·e_side)), clamped into [0, x − 1].

    The exact proceeds are strictly between 0 and x (every price is inside (0, 1)); the clamp keeps
    that true where a price is so close to 1 that x − proceeds is below the working precision.

    The caller guarantees the seller holds the shares; LMSR itself is defined for any q.
    """
    _require_quantities(q_long, q_short)
    _require_liquidity(b_units)
    _require_positive("shares_units", shares_units)
    q_side, q_other = _oriented(q_long, q_short, Side(side))
    # The same (low, high) pair as the buy that created these shares, so a buy followed by an equal
    # sell evaluates the identical Decimal and floor(v) <= ceil(v) holds exactly.
    proceeds_units = _rounded_cost_increase(q_side - shares_units, q_other, b_units, shares_units, up=False)
    return min(max(proceeds_units, 0), shares_units - 1)


def shares_for_tokens(q_long: int, q_short: int, b_units: int, side: Side, tokens_units: int) -> int:
    """Return the most shares of ``side`` that ``tokens_units`` tokens buy, rounded down.

    Closed form for a binary market: with C = C(q) and T = tokens, the shares x solve
    C(q + x·e_side) − C = T, i.e. for long

        x = b · ln(e^{(C+T)/b} − e^{q_short/b}) − q_long
          = b · (L + ln(1 − e^{q_short/b − L})) − q_long,   L = (C + T)/b   (shifted form)

    and symmetrically for short. The closed form is then checked against ``buy_cost_units`` itself,
    so the result x always satisfies

        buy_cost_units(..., x) <= tokens_units < buy_cost_units(..., x + 1)

    and x >= 1, because one share never costs more than one unit.
    """
    _require_quantities(q_long, q_short)
    _require_liquidity(b_units)
    _require_positive("tokens_units", tokens_units)
    q_side, q_other = _oriented(q_long, q_short, Side(side))
    estimate_units = _fast_closed_form_shares(q_side, q_other, b_units, tokens_units)
    return _largest_affordable_shares(q_side, q_other, b_units, tokens_units, estimate_units, _buy_cost_oriented_units)


def shares_for_proceeds(
    q_long: int, q_short: int, b_units: int, side: Side, tokens_units: int, held_units: int
) -> int | None:
    """Return the fewest of ``held_units`` shares of ``side`` whose sale pays at least
    ``tokens_units`` (``sell_proceeds_units``, rounded down, is what is compared), or None when
    selling all of them pays less. Proceeds grow with the shares sold, so a bisection finds it."""
    _require_quantities(q_long, q_short)
    _require_liquidity(b_units)
    _require_positive("tokens_units", tokens_units)
    _require_positive("held_units", held_units)

    def pays(shares_units: int) -> bool:
        return sell_proceeds_units(q_long, q_short, b_units, side, shares_units) >= tokens_units

    if not pays(held_units):
        return None
    # Selling x shares pays less than x, so tokens_units shares never suffice (and, since all
    # held shares do, tokens_units < held_units).
    low, high = tokens_units, held_units
    while high - low > 1:  # invariant: low does not pay, high does
        middle = (low + high) // 2
        low, high = (low, middle) if pays(middle) else (middle, high)
    return high


def max_subsidy_units(b_units: int) -> int:
    """Return the pool's worst-case loss b·ln 2, rounded up: the subsidy funded at listing."""
    _require_liquidity(b_units)
    with localcontext(_working_context(b_units)):
        return _ceil(Decimal(b_units) * Decimal(2).ln())


def shares_to_reach_price(q_long: int, q_short: int, b_units: int, target_long_wad: int) -> tuple[Side, int, int]:
    """Return (side to buy, shares, cost rounded up) that move p_long to ``target_long_wad``.

    p_long = p exactly when q_long − q_short = g* = b · ln(p / (1 − p)). With g = q_long − q_short:

        g < g*  →  buy long,  x = ceil(g* − g)   (the price ends at or above the target)
        g > g*  →  buy short, x = ceil(g − g*)   (the price ends at or below the target)

    x is the fewest whole shares that reach the target. When the quoted p_long already equals the
    target the answer is (Side.LONG, 0, 0).
    """
    _require_quantities(q_long, q_short)
    _require_liquidity(b_units)
    _require_target(target_long_wad)
    quoted_long_wad, _ = prices_wad(q_long, q_short, b_units)
    if quoted_long_wad == target_long_wad:
        return Side.LONG, 0, 0

    side = Side.LONG if quoted_long_wad < target_long_wad else Side.SHORT
    shares_units = _fast_shares_to_gap(q_long - q_short, b_units, target_long_wad, side)
    if shares_units is None:
        shares_units = _reference_shares_to_gap(q_long, q_short, b_units, target_long_wad, side)
    # The quoted price differs from the target, so at least one share is needed; max() only guards
    # against a rounding accident in the last of 60+ digits.
    shares_units = max(shares_units, 1)
    return side, shares_units, buy_cost_units(q_long, q_short, b_units, side, shares_units)


def average_price_wad(cost_units: int, shares_units: int) -> int:
    """Return the average price paid per share in WAD, rounded up: ceil(cost · WAD / shares)."""
    _require_positive("cost_units", cost_units)
    _require_positive("shares_units", shares_units)
    return -(-(cost_units * WAD) // shares_units)


# --------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------


DEPTH_TARGETS_WAD = tuple(k * WAD // 10 for k in range(1, 10))


def depth(q_long: int, q_short: int, b_units: int) -> list[dict[str, str]]:
    """For each target long price 0.1 … 0.9: the side to buy, and the shares and cost that get there."""
    rows = []
    for target in DEPTH_TARGETS_WAD:
        side, shares, cost = shares_to_reach_price(q_long, q_short, b_units, target)
        rows.append(
            {"target_long_wad": str(target), "side": side.value, "shares_units": str(shares), "cost_units": str(cost)}
        )
    return rows


def _require_int(name: str, value: int) -> None:
    # bool is an int subclass and float would slip into Decimal silently; both are caller bugs.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int in base units, got {type(value).__name__}")


def _require_quantities(q_long: int, q_short: int) -> None:
    _require_int("q_long", q_long)
    _require_int("q_short", q_short)


def _require_positive(name: str, value: int) -> None:
    _require_int(name, value)
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")


def _require_liquidity(b_units: int) -> None:
    _require_int("b_units", b_units)
    if b_units <= 0:
        raise ValueError(f"b_units (liquidity) must be positive, got {b_units}")


def _require_target(target_long_wad: int) -> None:
    _require_int("target_long_wad", target_long_wad)
    if not 0 < target_long_wad < WAD:
        raise ValueError(f"target_long_wad must be strictly between 0 and {WAD}, got {target_long_wad}")


# --------------------------------------------------------------------------------------------------
# Decimal machinery (callers open the context; these helpers use whatever context is current)
# --------------------------------------------------------------------------------------------------


def _working_context(*magnitudes_units: int) -> Context:
    """Return a context precise to far below one base unit for amounts of the given magnitudes.

    Differences of two costs of size |q| lose |q|'s digits, and the closed form for shares divides
    by a gap as small as 1/b, which loses b's digits again; hence two times the digits.
    """
    digits = max(len(str(abs(magnitude))) for magnitude in magnitudes_units)
    return _context_of_precision(_GUARD_DIGITS + 2 * digits)


def _context_of_precision(prec: int) -> Context:
    return Context(
        prec=prec,
        rounding=ROUND_HALF_EVEN,
        Emax=MAX_EMAX,
        Emin=MIN_EMIN,
        # Underflow is deliberately not trapped: e^{-huge} becoming 0 is the right answer.
        traps=[InvalidOperation, DivisionByZero, Overflow],
    )


def _ceil(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_CEILING))


def _floor(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


def _oriented(q_long: int, q_short: int, side: Side) -> tuple[int, int]:
    """Return (q of the traded side, q of the other side); C is symmetric, so order suffices."""
    return (q_long, q_short) if side is Side.LONG else (q_short, q_long)


def _cost(q_a: int, q_b: int, b_units: int) -> Decimal:
    """C(q) by the shifted log-sum-exp, in the current context.

    With m = max(q_a, q_b)/b the two shifted exponents are 0 and −|q_a − q_b|/b, so

        C(q) = b·m + b · ln(1 + e^{−|q_a − q_b|/b}),   b·m = max(q_a, q_b)

    b·m is kept as the exact integer max(q) rather than rounded through q/b: C(q) >= max(q) then
    holds exactly, and only the bounded term b·ln(1 + …) <= b·ln 2 carries rounding error.
    """
    return max(q_a, q_b) + _spread_term(q_a, q_b, b_units)


def _spread_term(q_a: int, q_b: int, b_units: int) -> Decimal:
    """b · ln(1 + e^{−|q_a − q_b|/b}) = C(q) − max(q), in (0, b·ln 2].

    It depends on q only through the gap |q_a − q_b|. A trade evaluates it at the same points
    several times (the closed form, the affordability check, the cost it then charges, and the next
    trade starts where this one ended), so the values are remembered per gap and context. The
    arithmetic is deterministic, so a remembered value is exactly the value recomputed.
    """
    return _spread_term_at(abs(q_a - q_b), b_units, getcontext().prec)


@lru_cache(maxsize=4096)
def _spread_term_at(gap_units: int, b_units: int, prec: int) -> Decimal:
    """_spread_term in the working context of precision ``prec`` (the only contexts it runs in)."""
    with localcontext(_context_of_precision(prec)):
        b = Decimal(b_units)
        shifted_gap = Decimal(gap_units) / b
        return b * (1 + (-shifted_gap).exp()).ln()


def _sigmoid(z: Decimal) -> Decimal:
    """1 / (1 + e^{−z}), written so the exponent is never positive."""
    if z >= 0:
        return 1 / (1 + (-z).exp())
    e_z = z.exp()
    return e_z / (1 + e_z)


def _log_odds(probability_wad: int) -> Decimal:
    """ln(p / (1 − p)) for p = probability_wad / WAD, from exact integers."""
    return Decimal(probability_wad).ln() - Decimal(WAD - probability_wad).ln()


def _cost_increase(q_side_low: int, q_other: int, b_units: int, shares_units: int) -> Decimal:
    """C(q_side_low + x, q_other) − C(q_side_low, q_other), unrounded.

    The precision depends only on the (low, high) pair, so a buy and the sell that undoes it
    compute exactly the same number.
    """
    q_side_high = q_side_low + shares_units
    context = _working_context(q_side_low, q_side_high, q_other, b_units)
    # Subtract the integer parts max(q) exactly and the spread terms separately: when a trade only
    # mirrors the gap (|q_long − q_short| unchanged) the exact cost is an integer and must stay one.
    max_increase_units = max(q_side_high, q_other) - max(q_side_low, q_other)
    with localcontext(context):
        spread_increase = _spread_term(q_side_high, q_other, b_units) - _spread_term(q_side_low, q_other, b_units)
        return max_increase_units + spread_increase


def _buy_cost_oriented_units(q_side: int, q_other: int, b_units: int, shares_units: int) -> int:
    """ceil(C(q_side + x, q_other) − C(q_side, q_other)), clamped into [1, x]; see buy_cost_units."""
    cost_units = _rounded_cost_increase(q_side, q_other, b_units, shares_units, up=True)
    return min(max(cost_units, 1), shares_units)


def _reference_buy_cost_oriented_units(q_side: int, q_other: int, b_units: int, shares_units: int) -> int:
    """_buy_cost_oriented_units in decimal only: the oracle."""
    cost_units = _ceil(_cost_increase(q_side, q_other, b_units, shares_units))
    return min(max(cost_units, 1), shares_units)


def _closed_form_shares(q_side: int, q_other: int, b_units: int, tokens_units: int) -> int:
    """The closed-form estimate of shares_for_tokens, floored; 0 if it is not positive and finite.

    e^{(q_side + x)/b} + e^{q_other/b} = e^{(C + T)/b}
        ⇒  x = (C + T) + b · ln(1 − e^{(q_other − C − T)/b}) − q_side
    """
    with localcontext(_working_context(q_side, q_other, b_units, tokens_units)):
        b = Decimal(b_units)
        budget = _cost(q_side, q_other, b_units) + tokens_units
        # C >= q_other, so the exponent is at most −T/b < 0 and the argument of ln is in (0, 1).
        remainder = 1 - ((q_other - budget) / b).exp()
        if remainder <= 0:
            return 0
        shares = budget + b * remainder.ln() - q_side
        return max(_floor(shares), 0)


def _largest_affordable_shares(
    q_side: int,
    q_other: int,
    b_units: int,
    tokens_units: int,
    estimate_units: int,
    cost_of: Callable[[int, int, int, int], int],
) -> int:
    """Return x with cost(x) <= T < cost(x + 1), starting the search at the closed-form estimate.

    Usually the estimate is right and this costs two evaluations. Otherwise a doubling search finds
    a bracket [affordable, unaffordable] and bisection narrows it to adjacent integers; the answer
    satisfies both inequalities by construction, whatever the last digit of the arithmetic did.
    """

    def affordable(shares_units: int) -> bool:
        if shares_units == 0:
            return True
        return cost_of(q_side, q_other, b_units, shares_units) <= tokens_units

    if affordable(estimate_units):
        low_units, high_units = _bracket_upward(affordable, estimate_units)
    else:
        low_units, high_units = _bracket_downward(affordable, estimate_units)
    return _bisect(affordable, low_units, high_units)


def _bracket_upward(affordable: _Affordable, start_units: int) -> tuple[int, int]:
    """From an affordable start, double the step until an unaffordable count is found."""
    low_units, step_units = start_units, 1
    for _ in range(_SEARCH_STEPS_MAX):
        high_units = low_units + step_units
        if not affordable(high_units):
            return low_units, high_units
        low_units, step_units = high_units, step_units * 2
    raise ArithmeticError("shares_for_tokens: upward search did not terminate")


def _bracket_downward(affordable: _Affordable, start_units: int) -> tuple[int, int]:
    """From an unaffordable start, double the step down until an affordable count is found.

    Zero shares are always affordable, so the search ends at the latest when it reaches 0.
    """
    high_units, step_units = start_units, 1
    for _ in range(_SEARCH_STEPS_MAX):
        low_units = max(high_units - step_units, 0)
        if affordable(low_units):
            return low_units, high_units
        high_units, step_units = low_units, step_units * 2
    raise ArithmeticError("shares_for_tokens: downward search did not terminate")


def _bisect(affordable: _Affordable, low_units: int, high_units: int) -> int:
    """Narrow affordable(low) and not affordable(high) to high == low + 1; return low."""
    for _ in range(_SEARCH_STEPS_MAX):
        if high_units - low_units <= 1:
            return low_units
        middle_units = (low_units + high_units) // 2
        if affordable(middle_units):
            low_units = middle_units
        else:
            high_units = middle_units
    raise ArithmeticError("shares_for_tokens: bisection did not terminate")


# --------------------------------------------------------------------------------------------------
# Reference oracle: the same functions in decimal only (the tests compare the fast path with these)
# --------------------------------------------------------------------------------------------------


def reference_prices_wad(q_long: int, q_short: int, b_units: int) -> tuple[int, int]:
    """prices_wad computed in decimal only."""
    _require_quantities(q_long, q_short)
    _require_liquidity(b_units)
    p_long_wad = min(max(_reference_price_long_wad(q_long, q_short, b_units), 1), WAD - 1)
    return p_long_wad, WAD - p_long_wad


def reference_buy_cost_units(q_long: int, q_short: int, b_units: int, side: Side, shares_units: int) -> int:
    """buy_cost_units computed in decimal only."""
    _require_quantities(q_long, q_short)
    _require_liquidity(b_units)
    _require_positive("shares_units", shares_units)
    q_side, q_other = _oriented(q_long, q_short, Side(side))
    return _reference_buy_cost_oriented_units(q_side, q_other, b_units, shares_units)


def reference_sell_proceeds_units(q_long: int, q_short: int, b_units: int, side: Side, shares_units: int) -> int:
    """sell_proceeds_units computed in decimal only."""
    _require_quantities(q_long, q_short)
    _require_liquidity(b_units)
    _require_positive("shares_units", shares_units)
    q_side, q_other = _oriented(q_long, q_short, Side(side))
    exact_units = _cost_increase(q_side - shares_units, q_other, b_units, shares_units)
    return min(max(_floor(exact_units), 0), shares_units - 1)


def reference_shares_for_tokens(q_long: int, q_short: int, b_units: int, side: Side, tokens_units: int) -> int:
    """shares_for_tokens computed in decimal only (estimate and search)."""
    _require_quantities(q_long, q_short)
    _require_liquidity(b_units)
    _require_positive("tokens_units", tokens_units)
    q_side, q_other = _oriented(q_long, q_short, Side(side))
    estimate_units = _closed_form_shares(q_side, q_other, b_units, tokens_units)
    return _largest_affordable_shares(
        q_side, q_other, b_units, tokens_units, estimate_units, _reference_buy_cost_oriented_units
    )


def reference_shares_to_reach_price(
    q_long: int, q_short: int, b_units: int, target_long_wad: int
) -> tuple[Side, int, int]:
    """shares_to_reach_price computed in decimal only."""
    _require_quantities(q_long, q_short)
    _require_liquidity(b_units)
    _require_target(target_long_wad)
    quoted_long_wad, _ = reference_prices_wad(q_long, q_short, b_units)
    if quoted_long_wad == target_long_wad:
        return Side.LONG, 0, 0
    side = Side.LONG if quoted_long_wad < target_long_wad else Side.SHORT
    shares_units = max(_reference_shares_to_gap(q_long, q_short, b_units, target_long_wad, side), 1)
    return side, shares_units, reference_buy_cost_units(q_long, q_short, b_units, side, shares_units)


def _reference_price_long_wad(q_long: int, q_short: int, b_units: int) -> int:
    with localcontext(_working_context(q_long, q_short, b_units, WAD)):
        return _floor(_sigmoid(Decimal(q_long - q_short) / Decimal(b_units)) * WAD)


def _reference_shares_to_gap(q_long: int, q_short: int, b_units: int, target_long_wad: int, side: Side) -> int:
    with localcontext(_working_context(q_long, q_short, b_units, WAD)):
        target_gap = Decimal(b_units) * _log_odds(target_long_wad)
        current_gap = Decimal(q_long - q_short)
        return _ceil(target_gap - current_gap) if side is Side.LONG else _ceil(current_gap - target_gap)


# --------------------------------------------------------------------------------------------------
# Fixed-point fast path: certified roundings, or None (the caller then asks the reference)
# --------------------------------------------------------------------------------------------------

# Spread terms are ints in units of 2**-SPREAD_SCALE_BITS base units, each strictly within
# SPREAD_ERROR_BOUND of the exact value times 2**SPREAD_SCALE_BITS.
SPREAD_SCALE_BITS = 24
SPREAD_ERROR_BOUND = 2
# Working precision beyond the bits of b: b · 5 ulp at bits(b) + 32 bits is below 2**-29 units.
_EXTRA_BITS = SPREAD_SCALE_BITS + 8
_PRICE_BITS = WAD.bit_length() + _EXTRA_BITS


def spread_term_scaled(gap_units: int, b_units: int) -> int:
    """b · ln(1 + e^{−gap/b}) · 2**24, within SPREAD_ERROR_BOUND of the exact value.

    x = gap/b is floored to p = bits(b) + 32 bits (1 ulp, which moves e^-x by at most 1 ulp),
    e^-x and ln(1 + y) are each within 2 ulp (``fixed_point``), and ln(1 + y) moves by at most
    as much as y does: 5 ulp in all. Times b that is below 5 · b · 2**-p < 5 · 2**-32 base
    units, i.e. below 0.02 in units of 2**-24; the final floor adds less than 1.
    """
    return _spread_term_scaled(gap_units, b_units)


@lru_cache(maxsize=4096)
def _spread_term_scaled(gap_units: int, b_units: int) -> int:
    p = b_units.bit_length() + _EXTRA_BITS
    y = min(exp_neg((gap_units << p) // b_units, p), 1 << p)
    return (b_units * ln1p(y, p)) >> (p - SPREAD_SCALE_BITS)


def _rounded_cost_increase(q_side_low: int, q_other: int, b_units: int, shares_units: int, *, up: bool) -> int:
    """ceil (up) or floor of C(q_side_low + x, q_other) − C(q_side_low, q_other), exactly."""
    q_side_high = q_side_low + shares_units
    max_increase_units = max(q_side_high, q_other) - max(q_side_low, q_other)
    gap_high, gap_low = abs(q_side_high - q_other), abs(q_side_low - q_other)
    if gap_high == gap_low:  # the spread terms cancel: the exact increase is an integer
        return max_increase_units
    scaled = (
        (max_increase_units << SPREAD_SCALE_BITS)
        + _spread_term_scaled(gap_high, b_units)
        - _spread_term_scaled(gap_low, b_units)
    )
    # The exact increase · 2**24 lies strictly within 2 · SPREAD_ERROR_BOUND of ``scaled``.
    low, high = scaled - 2 * SPREAD_ERROR_BOUND, scaled + 2 * SPREAD_ERROR_BOUND
    if up:
        low_units, high_units = -(-low >> SPREAD_SCALE_BITS), -(-high >> SPREAD_SCALE_BITS)
    else:
        low_units, high_units = low >> SPREAD_SCALE_BITS, high >> SPREAD_SCALE_BITS
    if low_units == high_units:
        return low_units
    exact = _cost_increase(q_side_low, q_other, b_units, shares_units)
    return _ceil(exact) if up else _floor(exact)


def _fast_price_long_wad(gap_units: int, b_units: int) -> int | None:
    """floor(WAD · p_long) for gap = q_long − q_short, or None when it cannot be certified.

    With y = e^{−|gap|/b} within 3 ulp (1 from flooring |gap|/b), p_long is 1/(1 + y) for
    gap >= 0 and y/(1 + y) otherwise; both move by at most as much as y, and the division
    floors once more: within 4 ulp at bits(WAD) + 32 bits, far below 1/WAD.
    """
    p = _PRICE_BITS
    one = 1 << p
    y = min(exp_neg((abs(gap_units) << p) // b_units, p), one)
    probability = (one << p) // (one + y) if gap_units >= 0 else (y << p) // (one + y)
    low, high = (WAD * (probability - 4)) >> p, (WAD * (probability + 4)) >> p
    return low if low == high else None


def _fast_shares_to_gap(gap_units: int, b_units: int, target_long_wad: int, side: Side) -> int | None:
    """ceil(b · ln(p/(1 − p)) − gap) for LONG, ceil(gap − b · ln(p/(1 − p))) for SHORT, or None.

    ln(p/(1 − p)) = ±ln(larger/smaller) is within 4 ulp at bits(b) + 32 bits (``ln_ratio``);
    times b that is below 2**-26 base units, and the floor to 2**-24 units adds below 1.
    """
    p = b_units.bit_length() + _EXTRA_BITS
    other_wad = WAD - target_long_wad
    larger, smaller = max(target_long_wad, other_wad), min(target_long_wad, other_wad)
    target_gap = (b_units * ln_ratio(larger, smaller, p)) >> (p - SPREAD_SCALE_BITS)
    if target_long_wad < other_wad:
        target_gap = -target_gap - 1  # floor of the negated value: still within 2 of exact
    gap_scaled = gap_units << SPREAD_SCALE_BITS
    scaled = target_gap - gap_scaled if side is Side.LONG else gap_scaled - target_gap
    low, high = -(-(scaled - 2) >> SPREAD_SCALE_BITS), -(-(scaled + 2) >> SPREAD_SCALE_BITS)
    return low if low == high else None


def _fast_closed_form_shares(q_side: int, q_other: int, b_units: int, tokens_units: int) -> int:
    """The closed-form estimate of shares_for_tokens in fixed point (see _closed_form_shares).

    Only a starting point: shares_for_tokens checks it against the certified costs, so its
    last digits decide how many costs the search evaluates, never the answer.
    """
    p = b_units.bit_length() + _EXTRA_BITS
    one = 1 << p
    budget = (
        (max(q_side, q_other) << SPREAD_SCALE_BITS)
        + _spread_term_scaled(abs(q_side - q_other), b_units)
        + (tokens_units << SPREAD_SCALE_BITS)
    )
    exponent = ((budget - (q_other << SPREAD_SCALE_BITS)) << p) // (b_units << SPREAD_SCALE_BITS)
    remainder = one - exp_neg(max(exponent, 0), p)
    if remainder <= 0:
        return _closed_form_shares(q_side, q_other, b_units, tokens_units)
    log_remainder = (b_units * ln_ratio(one, remainder, p)) >> (p - SPREAD_SCALE_BITS)  # −b·ln(1 − e^...)
    shares = (budget - log_remainder - (q_side << SPREAD_SCALE_BITS)) >> SPREAD_SCALE_BITS
    return max(shares, 0)
