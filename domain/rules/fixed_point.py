"""Binary fixed-point e^-x and ln(1+y) on Python ints, each with a proven error bound.

A fixed-point number at precision ``p`` is an int ``V`` standing for ``V / 2**p``. Both
functions work internally at ``w = p + GUARD_BITS`` bits (rounded up to a multiple of 32, so
few tables are built) and return a result at ``p`` bits within ``RESULT_ERROR_ULPS`` (2)
units in the last place of the exact value, for every input. The LMSR (``domain.rules.lmsr``)
turns that bound into certified integer roundings and falls back to its decimal reference
when a certificate fails.

Why the bound holds (ulp_w = 2**-w, the internal unit; every table entry and series
coefficient is rounded to the nearest ulp_w, so each is within 1/2 ulp_w):

``exp_neg(X, p)``, x = X / 2**p >= 0:

1. x = k·ln 2 + r with ``k = floor(x / ln 2)``. When k > p + 1 the answer is below
   2**-(p+1) and 0 is returned. Otherwise the table's ln 2 makes r off by at most
   k/2 <= p/2 + 1 ulp_w.
2. r = j/64 + i/4096 + t with 0 <= t < 2**-12, e^-r = e^(-j/64) · e^(-i/4096) · e^-t; the
   product of the two table entries is floored once (< 2 ulp_w off).
3. e^-t is its Taylor polynomial of degree N (the first omitted term t**(N+1)/(N+1)! is
   below 1 ulp_w by the choice of N) evaluated by Horner's rule; each step floors once and
   earlier errors shrink by t < 2**-12, so the polynomial is within 2 ulp_w.
4. The error of r moves e^-r by at most as much (the derivative is below 1 there). In all
   < p/2 + 8 ulp_w, below 1 ulp_p while p < 2**16; the shift to p bits floors once more.

``ln1p(Y, p)``, y = Y / 2**p in [0, 1]: 1 + y = (1 + j/256)·(1 + v) with 0 <= v < 1/256, and
ln(1 + y) = ln(1 + j/256) + 2·atanh(z), z = v/(2 + v) < 2**-9, found by one floored division
(1 ulp_w, which moves 2·atanh(z) by at most 2.0001 ulp_w). 2·atanh(z) = 2z·(1 + z²/3 + z⁴/5
+ ...) is summed by Horner's rule in z² to K terms (the rest is below 1 ulp_w by the choice
of K); the steps are within 2 ulp_w and the products with z and 2 make that < 5 ulp_w. In
all < 9 ulp_w, below 1 ulp_p; the shift to p bits floors once more.

``tests/unit/test_lmsr_fixed_point.py`` checks both bounds against 160-digit decimal
arithmetic with hypothesis, over precisions up to 400 bits and every argument range.
"""

from __future__ import annotations

import math
from decimal import Context, Decimal
from functools import lru_cache
from typing import NamedTuple

GUARD_BITS = 16
RESULT_ERROR_ULPS = 2
_EXP_STEP_BITS = 6  # e^-r: r = j/64 + i/4096 + t, two tables of 64 entries, t < 2**-12
_EXP_STEPS = 1 << _EXP_STEP_BITS
_LN_STEP_BITS = 8  # ln(1 + y): 1 + y = (1 + j/256)·(1 + v), a table of 257 entries, v < 1/256
_LN_STEPS = 1 << _LN_STEP_BITS


class Tables(NamedTuple):
    """The constants at one internal precision w, each an int within 1/2 ulp_w."""

    ln2: int
    exp_coarse: tuple[int, ...]  # e^(-j/64), j < 64
    exp_fine: tuple[int, ...]  # e^(-i/4096), i < 64
    exp_series: tuple[int, ...]  # 1/n!, n = N ... 0 (Horner order)
    ln_steps: tuple[int, ...]  # ln(1 + j/256), j <= 256
    atanh_series: tuple[int, ...]  # 1/(2k + 1), k = K ... 0 (Horner order)


@lru_cache(maxsize=32)
def tables(w: int) -> Tables:
    """The tables at precision ``w``, computed once with decimal at w·log10(2) + 20 digits
    (an error below 10**-20 ulp_w before the rounding to an int)."""
    context = Context(prec=int(w * 0.30103) + 20)
    scale = context.power(Decimal(2), w)

    def fixed(value: Decimal) -> int:
        return int(context.multiply(value, scale).to_integral_value())

    def exp_steps(steps: int) -> tuple[int, ...]:
        return tuple(fixed(context.exp(context.divide(-j, steps))) for j in range(_EXP_STEPS))

    # Degree N: t**(N+1)/(N+1)! < 2**-w for t < 2**-12. Terms K: z**(2K) < 2**-w for z < 2**-9.
    degree = next(n for n in range(1, w) if 12 * (n + 1) + math.lgamma(n + 2) / math.log(2) > w + 1)
    terms = -(-(w + 1) // (2 * (_LN_STEP_BITS + 1)))
    one = 1 << w
    return Tables(
        ln2=fixed(context.ln(Decimal(2))),
        exp_coarse=exp_steps(_EXP_STEPS),
        exp_fine=exp_steps(_EXP_STEPS * _EXP_STEPS),
        exp_series=tuple((2 * one + math.factorial(n)) // (2 * math.factorial(n)) for n in range(degree, -1, -1)),
        ln_steps=tuple(fixed(context.ln(context.add(1, context.divide(j, _LN_STEPS)))) for j in range(_LN_STEPS + 1)),
        atanh_series=tuple((2 * one + 2 * k + 1) // (2 * (2 * k + 1)) for k in range(terms, -1, -1)),
    )


def table_precision(p: int) -> int:
    """The internal precision for results at ``p`` bits (rounded up, so few tables are built)."""
    return -(-(p + GUARD_BITS) // 32) * 32


def exp_neg(x_fixed: int, p: int) -> int:
    """e^-x at ``p`` bits for x = x_fixed / 2**p >= 0, within RESULT_ERROR_ULPS ulp_p."""
    if x_fixed < 0:
        raise ValueError("exp_neg takes x >= 0")
    w = table_precision(p)
    table = tables(w)
    k, r = divmod(x_fixed << (w - p), table.ln2)
    if k > p + 1:  # e^-x < 2**-(p + 1): half an ulp_p at most
        return 0
    j = r >> (w - _EXP_STEP_BITS)
    i = (r >> (w - 2 * _EXP_STEP_BITS)) & (_EXP_STEPS - 1)
    t = r & ((1 << (w - 2 * _EXP_STEP_BITS)) - 1)
    series = iter(table.exp_series)
    total = next(series)
    for coefficient in series:  # e^-t = 1 - t·(1/1! - t·(1/2! - ...))
        total = coefficient - ((total * t) >> w)
    value = (((table.exp_coarse[j] * table.exp_fine[i]) >> w) * total) >> w
    return value >> (k + w - p)


def ln1p(y_fixed: int, p: int) -> int:
    """ln(1 + y) at ``p`` bits for y = y_fixed / 2**p in [0, 1], within RESULT_ERROR_ULPS ulp_p."""
    if not 0 <= y_fixed <= 1 << p:
        raise ValueError("ln1p takes y in [0, 1]")
    w = table_precision(p)
    table = tables(w)
    one = 1 << w
    u = one + (y_fixed << (w - p))
    j = (u - one) >> (w - _LN_STEP_BITS)
    c = one + (j << (w - _LN_STEP_BITS))
    z = ((u - c) << w) // (u + c)
    z2 = (z * z) >> w
    series = iter(table.atanh_series)
    total = next(series)
    for coefficient in series:  # atanh(z)/z = 1 + z²·(1/3 + z²·(1/5 + ...))
        total = coefficient + ((total * z2) >> w)
    return (table.ln_steps[j] + 2 * ((total * z) >> w)) >> (w - p)


def ln_ratio(numerator: int, denominator: int, p: int) -> int:
    """ln(numerator / denominator) at ``p`` bits for numerator >= denominator > 0, within
    RESULT_ERROR_ULPS + 2 ulp_p: ratio = 2**k · (1 + f) with f in [0, 1), ln = k·ln 2 + ln1p(f),
    where f is one floored division (1 ulp_p, the derivative of ln1p is at most 1) and k·ln 2
    comes from the table to k/2 ulp_W, far below one ulp_p for any k below 2**GUARD_BITS."""
    if not numerator >= denominator > 0:
        raise ValueError("ln_ratio takes numerator >= denominator > 0")
    k = numerator.bit_length() - denominator.bit_length()
    if (denominator << k) > numerator:
        k -= 1
    f = ((numerator << p) // (denominator << k)) - (1 << p)
    w = table_precision(p)
    ln2 = tables(w).ln2
    return ((k * ln2) >> (w - p)) + ln1p(f, p)
