"""Ground truth: the exact loss, computed with mpmath.

reference(x, y, w, pw) = w·(pw·y·softplus(-x) + (1-y)·softplus(x)), softplus(t) = log(1 + exp(t)), evaluated at
the inputs as rounded to the dtype (so the error measures the formula, not the input). Both terms are
non-negative, so the sum loses nothing to cancellation, and mpmath's exponent range is unbounded, so
exp(1e10) is no problem. The working precision is ``PRECISION_BITS`` = 160 bits, 107 beyond float64: far more
than the few bits that rounding log1p/exp at that precision can cost. At x = ±inf the exact limits are used.

mpmath is imported inside the functions, so that ``stabcli --help`` never loads it.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from stabcli.core.exact import in_mpmath, to_float64_nearest, to_float64_odd


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
    def loss(mp, x, y, w, pw):
        return _term(mp, w, _term(mp, pw * y, _softplus(mp, -x)) + _term(mp, 1 - y, _softplus(mp, x)))

    return in_mpmath(loss, x, y, w, pw)


def exact_grad(x: float, y: float, w: float = 1.0, pw: float = 1.0):
    """The exact d loss / d x = w·((1-y)·sigmoid(x) - pw·y·sigmoid(-x)) as an mpmath number."""
    def grad(mp, x, y, w, pw):
        def sigmoid(t):
            if mp.isinf(t):
                return mp.one if t > 0 else mp.zero
            return 1 / (1 + mp.exp(-t))

        return w * ((1 - y) * sigmoid(x) - pw * y * sigmoid(-x))

    return in_mpmath(grad, x, y, w, pw)


# --- the fast, vectorised reference used by sweeps --------------------------------------------------------------
#
# mpmath costs about 0.1 ms a point, too slow for 65,536 logits × targets × dtypes. For float16, bfloat16 and
# float32 the softplus form evaluated in float64 is accurate enough to round correctly, for this reason:
#
# * softplus(t) = max(t, 0) + log1p(exp(-|t|)): exp's argument is <= 0 (no overflow), numpy's exp and log1p are
#   within 1 float64 ulp, and max(t, 0) is exact, so each softplus is within ~3 ulps (3·2^-53 relative): both
#   terms are non-negative, so the sum cannot amplify their errors.
# * The loss w·(pw·y·softplus(-x) + (1-y)·softplus(x)) adds two non-negative terms and multiplies by non-negative
#   coefficients (y, 1-y, w, pw are exact or within half an ulp): again no cancellation, so the whole is within
#   about 6 float64 ulps of the exact value, i.e. a relative error below 2^-50.
# * A float16/bfloat16/float32 value has at most 24 bits, so rounding the float64 approximation to the dtype gives
#   the correctly rounded exact value unless the exact value lies within 2^-50 (relative) of a rounding boundary
#   (a midpoint between two neighbours of the dtype), where the float64 approximation may fall on the other side.
#   Below float64's normal range (exp(t) for t < -708) the float64 result is subnormal and less precise, but these
#   values are below 2^-1000, far under half the smallest subnormal of every narrower dtype, so they round to 0
#   either way.
# tests/test_sweep.py checks the claim against mpmath on every finite float16 and bfloat16 logit and on a seeded
# sample of float32 bit patterns. For float64 itself there is no wider format to borrow, so sweeps use mpmath.
#
# The exception is not rare for a soft target: (1-y)·x can be exactly a midpoint of the format (0.75·33.34375 =
# 25.0078125 is halfway between two float16 values), the exponential tail that makes the exact loss a hair larger
# is below float64's resolution, and the float64 value sits on the tie, which rounds to even: the wrong neighbour
# (289 float16 logits for y = 0.25, 35 bfloat16, and a few in float8). So :func:`sweep_reference`, given the
# format, certifies each value as the gradient does below: where v - e and v + e (e = FAST_LOSS_REL·|v|, twice the
# bound above, plus FAST_LOSS_ABS for float64's subnormal range) round to different values of the format, mpmath
# decides that point. Hard targets never need it (the loss is softplus of one argument, never near a midpoint).

FAST_LOSS_REL = 2.0**-49  # twice the 2^-50 argued above
FAST_LOSS_ABS = 2.0**-1060  # float64's subnormal range (exp(-745) and below): as FAST_GRAD_ABS

def fast_softplus(t: np.ndarray) -> np.ndarray:
    """softplus(t) = log(1 + exp(t)) in float64 as max(t, 0) + log1p(exp(-|t|)); exact limits at ±inf."""
    t = np.asarray(t, dtype=np.float64)
    with np.errstate(all="ignore"):
        return np.maximum(t, 0.0) + np.log1p(np.exp(-np.abs(t)))


def _fast_term(coef, value: Callable[[], np.ndarray]) -> np.ndarray | None:
    """coef·value(), exactly 0 where coef is 0 (even against an infinite value); None for a scalar coefficient
    of 0, without computing value() at all (a hard target needs one softplus, not two)."""
    with np.errstate(all="ignore"):
        if coef.ndim == 0:
            return None if coef == 0 else coef * value()
        return np.where(coef == 0, 0.0, coef * value())


def fast_loss(x, y, w=1.0, pw=1.0) -> np.ndarray:
    """w·(pw·y·softplus(-x) + (1-y)·softplus(x)) in float64 (see the error argument above); NaN logit gives NaN."""
    x = np.asarray(x, dtype=np.float64)
    y, w, pw = (np.asarray(v, dtype=np.float64) for v in (y, w, pw))
    shape = np.broadcast_shapes(x.shape, y.shape, w.shape, pw.shape)
    with np.errstate(all="ignore"):
        tail = np.log1p(np.exp(-np.abs(x)))  # :func:`fast_softplus`'s second term, the same for x and -x
        # Each term is +0, positive or NaN, so leaving out a term that is exactly 0 changes no bit of the sum.
        terms = [t for t in (_fast_term(pw * y, lambda: np.maximum(-x, 0.0) + tail),
                             _fast_term(1 - y, lambda: np.maximum(x, 0.0) + tail)) if t is not None]
        inner = terms[0] + terms[1] if len(terms) == 2 else terms[0] if terms else np.zeros(shape)
        loss = _fast_term(w, lambda: inner)
        return np.zeros(shape) if loss is None else loss


def sweep_reference(x: np.ndarray, bits: int, y: float, w: float = 1.0, pw: float = 1.0, cache: dict | None = None,
                    fmt=None):
    """The reference for a sweep of logits ``x`` (float64 values of a dtype ``bits`` wide): (nearest, for_rounding).

    ``nearest`` is the exact loss as a float64, ``for_rounding`` the float64 to round into the dtype (see
    ``analysis.measure``). Below 64 bits both are :func:`fast_loss` (correct after rounding to the dtype, see the
    argument above), except, when the format ``fmt`` is given, at the points its error bound cannot certify, where
    they are mpmath's (nearest, and rounded to odd); for float64 they are mpmath's exact value rounded to nearest,
    point by point (~0.1 ms each). ``cache`` (a dict kept by the caller for one y, w and pw) remembers mpmath's
    answers: a breakdown search asks for the same logits for every method.
    """
    x = np.asarray(x, dtype=np.float64)
    if bits < 64:
        ref = fast_loss(x, y, w, pw)
        if fmt is None:
            return ref, ref
        return _certified(x, ref, fmt, y, w, pw, {} if cache is None else cache)
    cache = {} if cache is None else cache

    def nearest(v: float) -> float:
        if v not in cache:
            cache[v] = to_float64_nearest(exact_loss(v, y, w, pw))
        return cache[v]

    ref = np.array([nearest(float(v)) for v in x], dtype=np.float64)
    return ref, ref


def _certified(x: np.ndarray, fast: np.ndarray, fmt, y: float, w: float, pw: float, cache: dict):
    """(nearest, for_rounding): ``fast`` where its error bound certifies the rounding into ``fmt``, mpmath's
    exact value (nearest, and rounded to odd) at the other points (see FAST_LOSS_REL)."""
    from stabcli.core.formats import to_float64

    with np.errstate(all="ignore"):
        e = FAST_LOSS_REL * np.abs(fast) + FAST_LOSS_ABS
        lo, hi = to_float64(fmt.round(fast - e)), to_float64(fmt.round(fast + e))
    unsure = np.flatnonzero((lo != hi) & np.isfinite(fast))
    if not unsure.size:
        return fast, fast
    nearest, for_rounding = fast.copy(), fast.copy()
    for i in unsure:
        v = float(x[i])
        if ("certified", v) not in cache:
            exact = exact_loss(v, y, w, pw)
            cache[("certified", v)] = (to_float64_nearest(exact), to_float64_odd(exact))
        nearest[i], for_rounding[i] = cache[("certified", v)]
    return nearest, for_rounding


# --- the fast, vectorised reference gradient used by sweeps ----------------------------------------------------
#
# grad(x) = w·((1-y)·sigmoid(x) - pw·y·sigmoid(-x)), evaluated in float64. Why its rounding into float16, bfloat16
# or float32 is right except near rounding boundaries, and how the sweep makes it right everywhere:
#
# * sigmoid(t) is computed from e = exp(-|t|) <= 1 (no overflow) as 1/(1+e) for t >= 0 and e/(1+e) for t < 0:
#   no subtraction anywhere. Granting numpy's exp 4 float64 ulps (it is documented within 1; the slack is free),
#   e is within 2^-50 relative, 1 + e and the quotient each add a rounding of 2^-53, so sigmoid is within
#   3·2^-50 relative (below float64's normal range, x < -708, within a few 2^-1074 absolute instead).
# * The coefficients 1-y, pw·y and w are one rounding each (2^-53), so each term w·(1-y)·sigmoid(x) and
#   w·pw·y·sigmoid(-x) is within 2^-48 relative, and the difference within 2^-48·(|term1| + |term2|) absolute.
# * For a hard target (y = 0 or 1) one term is 0: the gradient is a product, within 2^-48 relative, so rounding
#   it into a format of at most 24 bits is correct unless the exact value lies within 2^-48 (relative) of a
#   rounding boundary of that format, where the float64 value may fall on the other side. (sigmoid(x) is
#   transcendental for x != 0, so it never sits on a boundary; the exceptions are rare coincidences.)
# * A soft target cancels: near x = logit(y/(pw·y + 1 - y)) the two terms are nearly equal and the relative
#   error of the difference grows as (|term1| + |term2|)/|grad|. The absolute bound still holds there.
# * One soft case cancels everywhere near 0: (1-y) = pw·y (y = 0.5 with pw = 1) puts the root at x = 0, where every
#   tiny logit of the format (half of all bfloat16 values) would need mpmath. There the gradient is
#   w·(1-y)·tanh(x/2) exactly, which numpy computes without cancellation (tanh within a few ulps, x/2 exact):
#   within 2^-48 relative again, and the sweep uses that form for |x| < 1.
#
# So :func:`fast_grad_bound` gives, per point, e = 2^-47·(|term1| + |term2|) plus a tiny absolute term for
# float64's subnormal range (twice the bound above, which also covers the rounding of v ± e): the exact gradient
# lies in [v - e, v + e]. Where both ends round to the same value of the format, so does the exact gradient
# (rounding is monotone): the fast value is certified. Elsewhere, near a rounding boundary or where a soft target
# cancels, :func:`sweep_grad_reference` asks mpmath (``exact_grad``) for that point alone. The result is the
# correctly rounded gradient at every point, at numpy speed except for a handful of points.
# tests/test_sweep_grad.py checks this against mpmath on every finite float16 and bfloat16 value for targets 0 and
# 1. For float64 there is no wider format to borrow, so sweeps use mpmath point by point (as for the loss).

FAST_GRAD_REL = 2.0**-47  # relative bound on the float64 terms (see above), with a factor 2 of slack
FAST_GRAD_ABS = 2.0**-1060  # float64's subnormal range: exp(-745) and below is not relative-accurate


def fast_sigmoid(t) -> np.ndarray:
    """sigmoid(t) in float64 without overflow or subtraction: 1/(1+e) or e/(1+e), e = exp(-|t|); exact at ±inf."""
    t = np.asarray(t, dtype=np.float64)
    with np.errstate(all="ignore"):
        e = np.exp(-np.abs(t))
        return np.where(t >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _grad_terms(x, y, w, pw):
    x = np.asarray(x, dtype=np.float64)
    y, w, pw = (np.asarray(v, dtype=np.float64) for v in (y, w, pw))
    with np.errstate(all="ignore"):
        return w * ((1 - y) * fast_sigmoid(x)), w * ((pw * y) * fast_sigmoid(-x))


def fast_grad(x, y, w=1.0, pw=1.0) -> np.ndarray:
    """d loss / d x = w·((1-y)·sigmoid(x) - pw·y·sigmoid(-x)) in float64; exact limits at ±inf, NaN for NaN."""
    return _fast_grad_and_bound(x, y, w, pw)[0]


def fast_grad_bound(x, y, w=1.0, pw=1.0) -> np.ndarray:
    """An upper bound on |fast_grad(x, ...) - exact gradient| (see the argument above)."""
    return _fast_grad_and_bound(x, y, w, pw)[1]


def _fast_grad_and_bound(x, y, w, pw) -> tuple[np.ndarray, np.ndarray]:
    """:func:`fast_grad` and :func:`fast_grad_bound` from one evaluation of the two terms."""
    t1, t2 = _grad_terms(x, y, w, pw)
    y, w, pw = (np.asarray(v, dtype=np.float64) for v in (y, w, pw))
    with np.errstate(all="ignore"):
        return t1 - t2, FAST_GRAD_REL * (np.abs(t1) + np.abs(t2)) + FAST_GRAD_ABS * (1 + np.abs(w) * (1 + np.abs(pw * y)))


def sweep_grad_reference(x: np.ndarray, fmt, y: float, w: float = 1.0, pw: float = 1.0, cache: dict | None = None):
    """The reference gradient for a sweep of logits ``x`` (float64 values of ``fmt``): (nearest, for_rounding).

    As :func:`sweep_reference`: ``for_rounding`` is the float64 to round into ``fmt`` (``analysis.measure``),
    ``nearest`` stands for the exact value in float64. Below 64 bits both are :func:`fast_grad` where its error
    bound certifies the rounding into ``fmt``, and mpmath's exact value (nearest, and rounded to odd) at the few
    points where it does not; float64 is mpmath's value at every point (~0.07 ms each). ``cache`` (a dict kept by
    the caller for one dtype, y, w and pw) remembers mpmath's answers, since a breakdown search asks again.

    Where mpmath is needed: float64 always; below it, points near a rounding boundary, near the root of a soft
    target, and, when 1-y or pw·y is itself a midpoint of the format (y = 0.3 in float16 is 0.300048828125, and
    1 - y = 0.699951171875 is halfway between two float16 values), the saturated tails, whose exact gradient lies
    a hair inside that midpoint where float64 cannot see it.
    """
    x = np.asarray(x, dtype=np.float64)
    cache = {} if cache is None else cache

    def exact_pair(v: float) -> tuple[float, float]:
        if v not in cache:
            exact = exact_grad(v, y, w, pw)
            nearest = to_float64_nearest(exact)
            cache[v] = (nearest, nearest if fmt.bits == 64 else to_float64_odd(exact))
        return cache[v]

    if fmt.bits == 64:
        ref = np.array([exact_pair(float(v))[0] for v in x], dtype=np.float64)
        return ref, ref
    from fractions import Fraction

    from stabcli.core.formats import to_float64

    fast, bound = _fast_grad_and_bound(x, y, w, pw)
    with np.errstate(all="ignore"):
        if 1 - Fraction(y) == Fraction(pw) * Fraction(y):  # exactly: the root is at 0 (see the argument above)
            near0 = np.abs(x) < 1
            half = w * ((1 - y) * np.tanh(x[near0] / 2))
            fast[near0] = half
            bound[near0] = FAST_GRAD_REL * np.abs(half) + FAST_GRAD_ABS * (1 + abs(w))
        lo, hi = to_float64(fmt.round(fast - bound)), to_float64(fmt.round(fast + bound))
    unsure = np.flatnonzero(~(lo == hi))  # NaN compares unequal, so a NaN logit goes to mpmath too
    nearest, for_rounding = fast.copy(), fast.copy()
    for i in unsure:
        nearest[i], for_rounding[i] = exact_pair(float(x[i]))
    return nearest, for_rounding


# --- references for a file of logits and targets (``stabcli check``) ------------------------------------------
#
# A check has a target per element. The float64 forms above take arrays of targets as they are (their error
# arguments hold element by element); the certification asks mpmath, element by element with that element's own
# target, wherever the bound cannot decide the rounding into the format. float64 itself has no wider format to
# borrow: there the fast forms are used as they are (within ~6 float64 ulps, said in the check's notes).

def check_reference(x, y, fmt, w: float = 1.0, pw: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(nearest, for_rounding) of the loss at logits ``x`` and targets ``y`` (float64 values of ``fmt``, one each),
    certified for rounding into ``fmt`` below 64 bits (mpmath at the few points the bound cannot certify)."""
    from stabcli.core.formats import to_float64

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    fast = fast_loss(x, y, w, pw)
    if fmt.bits == 64:
        return fast, fast
    with np.errstate(all="ignore"):
        e = FAST_LOSS_REL * np.abs(fast) + FAST_LOSS_ABS
        lo, hi = to_float64(fmt.round(fast - e)), to_float64(fmt.round(fast + e))
    unsure = np.flatnonzero((lo != hi) & np.isfinite(fast))  # NaN at a NaN logit, and the limits at ±inf, are exact
    nearest, for_rounding = fast.copy(), fast.copy()
    for i in unsure:
        exact = exact_loss(float(x[i]), float(y[i]), w, pw)
        nearest[i], for_rounding[i] = to_float64_nearest(exact), to_float64_odd(exact)
    return nearest, for_rounding


def check_grad_reference(x, y, fmt, w: float = 1.0, pw: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(nearest, for_rounding) of d loss / d x at logits ``x`` and targets ``y``, certified as
    :func:`sweep_grad_reference` certifies it, with each element's own target (the tanh form near 0 wherever
    1 - y = pw·y, exactly: y and pw are values of a format of at most 24 bits, so both sides are exact in float64)."""
    from stabcli.core.formats import to_float64

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    fast, bound = _fast_grad_and_bound(x, y, w, pw)
    if fmt.bits == 64:
        return fast, fast
    with np.errstate(all="ignore"):
        near0 = ((1 - y) == pw * y) & (np.abs(x) < 1)
        if near0.any():
            half = w * ((1 - y[near0]) * np.tanh(x[near0] / 2))
            fast[near0] = half
            bound[near0] = FAST_GRAD_REL * np.abs(half) + FAST_GRAD_ABS * (1 + abs(w))
        lo, hi = to_float64(fmt.round(fast - bound)), to_float64(fmt.round(fast + bound))
    unsure = np.flatnonzero(~(lo == hi) & ~np.isnan(x))  # a NaN logit's gradient is NaN
    nearest, for_rounding = fast.copy(), fast.copy()
    for i in unsure:
        exact = exact_grad(float(x[i]), float(y[i]), w, pw)
        nearest[i], for_rounding[i] = to_float64_nearest(exact), to_float64_odd(exact)
    return nearest, for_rounding
