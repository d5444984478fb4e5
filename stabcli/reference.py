"""Ground truth: the exact loss, computed with mpmath.

reference(x, y, w, pw) = w·(pw·y·softplus(-x) + (1-y)·softplus(x)), softplus(t) = log(1 + exp(t)), evaluated at
the inputs as rounded to the dtype (so the error measures the formula, not the input). Both terms are
non-negative, so the sum loses nothing to cancellation, and mpmath's exponent range is unbounded, so
exp(1e10) is no problem. The working precision is ``PRECISION_BITS`` = 160 bits, 107 beyond float64: far more
than the few bits that rounding log1p/exp at that precision can cost. At x = ±inf the exact limits are used.

mpmath is imported inside the functions, so that ``stabcli --help`` never loads it.
"""

from __future__ import annotations

import math

import numpy as np

PRECISION_BITS = 160


def _softplus(mp, t):
    """log(1 + exp(t)) in mpmath, exact at ±inf."""
    if mp.isinf(t):
        return mp.inf if t > 0 else mp.zero
    if t > 0:  # t + log1p(exp(-t)) keeps the argument of exp small
        return t + mp.log1p(mp.exp(-t))
    return mp.log1p(mp.exp(t))


def _term(mp, coef, value):
    """coef·value with 0·inf taken as 0: a zero coefficient contributes nothing, the exact limit."""
    return mp.zero if coef == 0 else coef * value


def exact_loss(x: float, y: float, w: float = 1.0, pw: float = 1.0):
    """The exact per-element loss as an mpmath number (mpf; inf at the limits; nan for a NaN logit)."""
    import mpmath

    with mpmath.workprec(PRECISION_BITS):
        mp = mpmath.mp
        if math.isnan(x):
            return mp.nan
        xm, ym, wm, pwm = (mp.mpf(float(v)) for v in (x, y, w, pw))
        inner = _term(mp, pwm * ym, _softplus(mp, -xm)) + _term(mp, 1 - ym, _softplus(mp, xm))
        return _term(mp, wm, inner)


def exact_grad(x: float, y: float, w: float = 1.0, pw: float = 1.0):
    """The exact d loss / d x = w·((1-y)·sigmoid(x) - pw·y·sigmoid(-x)) as an mpmath number."""
    import mpmath

    with mpmath.workprec(PRECISION_BITS):
        mp = mpmath.mp
        if math.isnan(x):
            return mp.nan
        xm, ym, wm, pwm = (mp.mpf(float(v)) for v in (x, y, w, pw))

        def sigmoid(t):
            if mp.isinf(t):
                return mp.one if t > 0 else mp.zero
            return 1 / (1 + mp.exp(-t))

        return wm * ((1 - ym) * sigmoid(xm) - pwm * ym * sigmoid(-xm))


def reduce_exact(values: list, reduction: str):
    """Sum or mean of exact values (in mpmath), or the list itself for reduction 'none'."""
    import mpmath

    if reduction == "none":
        return values
    with mpmath.workprec(PRECISION_BITS):
        total = mpmath.fsum(values)
        return total / len(values) if reduction == "mean" else total


def reduce_exact_grad(values: list, reduction: str) -> list:
    """d (reduced loss) / d x_i for each element: divided by the number of elements for 'mean'."""
    import mpmath

    if reduction != "mean":
        return list(values)
    with mpmath.workprec(PRECISION_BITS):
        return [v / len(values) for v in values]


def to_float64_nearest(value) -> float:
    """An mpmath number rounded to the nearest float64 (overflowing to ±inf)."""
    import mpmath

    if mpmath.isnan(value):
        return math.nan
    if mpmath.isinf(value):
        return math.inf if value > 0 else -math.inf
    return float(value)  # mpmath rounds to nearest, ties to even


def to_float64_odd(value) -> float:
    """An mpmath number rounded to float64 *to odd*: exact if representable, else the neighbour with an odd last bit.

    Rounding to odd with 53 bits and then to nearest in a format of at most 51 bits gives the correctly rounded
    result, so the reference can be rounded into float16, bfloat16 or float32 without double rounding.
    """
    import mpmath

    nearest = to_float64_nearest(value)
    if not math.isfinite(nearest):
        if math.isnan(nearest) or mpmath.isinf(value):
            return nearest
        nearest = math.copysign(np.finfo(np.float64).max, nearest)  # truncation of a finite value
        return nearest  # max float64 has an odd last bit
    with mpmath.workprec(PRECISION_BITS):
        exact = mpmath.mpf(nearest) == value
    if exact:
        return nearest
    bits = np.array([nearest]).view(np.int64)[0]
    with mpmath.workprec(PRECISION_BITS):
        too_big = abs(mpmath.mpf(nearest)) > abs(value)
    if too_big:  # step toward zero: the truncated value
        bits -= 1
    return float(np.array([bits | 1], dtype=np.int64).view(np.float64)[0])
