"""Exact arithmetic shared by every loss family: mpmath's working precision, reductions of exact values, and
rounding an exact value to float64 (to nearest, and to odd for a second rounding into a narrower format).

mpmath is imported inside the functions, so that ``stabcli --help`` never loads it.
"""

from __future__ import annotations

import math

import numpy as np

PRECISION_BITS = 160  # 107 bits beyond float64: far more than rounding log1p/exp at that precision can cost


def in_mpmath(formula, *values):
    """``formula(mp, *values)`` at :data:`PRECISION_BITS`, each value as an mpmath number; NaN (mpmath's) when the
    first value, the one a loss is a function of (a logit, a probability), is NaN."""
    import mpmath

    with mpmath.workprec(PRECISION_BITS):
        mp = mpmath.mp
        if math.isnan(values[0]):
            return mp.nan
        return formula(mp, *(mp.mpf(float(v)) for v in values))


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


def is_finite(value) -> bool:
    """Whether an exact (mpmath) value is finite: neither inf nor NaN, however large (1e400 is finite)."""
    import mpmath

    return bool(mpmath.isfinite(value))


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
