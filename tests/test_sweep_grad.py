"""Gradients in sweeps and thresholds: the fast reference gradient, counts, exact gradient breakdowns, output.

Where the numbers come from:
* mpmath: the exact gradient w·((1-y)·sigmoid(x) - pw·y·sigmoid(-x)) (``reference.exact_grad``); for a hard target
  it is sigmoid(x) (y = 0) or -sigmoid(-x) (y = 1), computed here for every finite 16-bit value with

      with mpmath.workprec(200):
          s = 1 / (1 + mpmath.exp(-mpmath.mpf(x)))     # then rounded to odd in float64, then into the dtype

* DESIGN.md, "Facts with their sources": where sigmoid first rounds to 1.0 (16.63553237915039 in float32, op by
  op and torch alike; 8.3203125 in torch float16), and BCELoss's backward (p-y)/max(p(1-p), 1e-12).
* Format constants (eps, smallest subnormal) from ``Format`` (ml_dtypes.finfo).
"""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest

from stabcli import reference
from stabcli.formats import FORMATS, round_float64, to_float64

F16, BF16, F32, F64 = (FORMATS[n] for n in ("float16", "bfloat16", "float32", "float64"))


# --- the fast reference gradient against mpmath --------------------------------------------------------------

def _odd(v) -> float:
    """An mpmath number rounded to odd in float64 (see reference.to_float64_odd), compared at 200 bits.

    (The comparison must run at high precision: abs(v) at mpmath's default 53 bits rounds v first.)
    """
    import mpmath

    with mpmath.workprec(200):
        f = float(v)
        if not math.isfinite(f) or mpmath.mpf(f) == v:
            return f
        if abs(mpmath.mpf(f)) > abs(v):
            f = math.nextafter(f, 0.0)
    (bits,) = struct.unpack("<q", struct.pack("<d", f))
    return struct.unpack("<d", struct.pack("<q", bits | 1))[0]


def _exact_in_dtype(values, fmt) -> np.ndarray:
    return to_float64(round_float64(np.array([_odd(v) for v in values]), fmt))


@pytest.fixture(scope="module")
def sigmoid16():
    """Per 16-bit format: every finite value (float64) and mpmath's sigmoid there, correctly rounded to the dtype."""
    import mpmath

    out = {}
    for fmt in (F16, BF16):
        xs = to_float64(fmt.all_finite())
        with mpmath.workprec(200):
            exact = [1 / (1 + mpmath.exp(-mpmath.mpf(float(x)))) for x in xs]
        out[fmt.name] = (xs, _exact_in_dtype(exact, fmt))
    return out


@pytest.mark.parametrize("fmt", [F16, BF16], ids=["float16", "bfloat16"])
def test_fast_grad_reference_rounds_like_mpmath_on_every_finite_value(sigmoid16, fmt):
    xs, sig = sigmoid16[fmt.name]
    # target 0: grad = sigmoid(x); target 1: grad = -sigmoid(-x), and the finite values are symmetric about 0
    for y, want in ((0.0, sig), (1.0, -sig[::-1])):
        fast = reference.fast_grad(xs, y)
        assert np.array_equal(to_float64(fmt.round(fast)), want), (fmt.name, y)
        # the error bound certifies every point, so a hard-target sweep never needs mpmath in 16 bits ...
        bound = reference.fast_grad_bound(xs, y)
        assert np.array_equal(to_float64(fmt.round(fast - bound)), to_float64(fmt.round(fast + bound)))
        # ... and the sweep's reference is that value, rounding into the dtype exactly as mpmath's does
        nearest, for_rounding = reference.sweep_grad_reference(xs, fmt, y, cache=(cache := {}))
        assert not cache and np.array_equal(to_float64(round_float64(for_rounding, fmt)), want)
        assert np.array_equal(nearest, fast)


@pytest.mark.parametrize("fmt, y, w, pw", [
    # float16(0.3) = 0.300048828125, so 1 - y = 0.699951171875 is a float16 midpoint (halfway between 1433 and
    # 1434 · 2^-11): the saturated tail's exact gradient lies just below it, which float64 cannot see (mpmath).
    (F16, 0.3, 1.0, 1.0),
    # y = 0.5: the root is at x = 0 and the sum cancels for every tiny logit (the tanh form takes over).
    (BF16, 0.5, 1.0, 1.0),
    # 1 - y = pw·y = 0.75: the root is at 0 again, with a weight
    (F16, 0.25, 0.5, 3.0),
])
def test_sweep_grad_reference_is_exact_for_soft_targets(fmt, y, w, pw):
    y, w, pw = (float(to_float64(fmt.round(np.array(v)))) for v in (y, w, pw))
    xs = np.unique(to_float64(fmt.all_finite()))[::23]  # every 23rd distinct value: ~2,800 logits
    want = _exact_in_dtype([reference.exact_grad(float(x), y, w, pw) for x in xs], fmt)
    nearest, for_rounding = reference.sweep_grad_reference(xs, fmt, y, w, pw)
    assert np.array_equal(to_float64(round_float64(for_rounding, fmt)), want)
    # the plain float64 formula alone misrounds in each case (they were chosen to need the certificate)
    assert not np.array_equal(to_float64(fmt.round(reference.fast_grad(xs, y, w, pw))), want)


def test_sweep_grad_reference_float32_sample_and_float64():
    rng = np.random.default_rng(20240602)
    xs = rng.integers(0, 2**32, size=1500, dtype=np.uint64).astype(np.uint32).view(np.float32)
    xs = xs[np.isfinite(xs)].astype(np.float64)
    for y in (0.0, 1.0, float(np.float32(0.3))):
        want = _exact_in_dtype([reference.exact_grad(float(x), y) for x in xs], F32)
        _, for_rounding = reference.sweep_grad_reference(xs, F32, y)
        assert np.array_equal(to_float64(round_float64(for_rounding, F32)), want), y
    # float64: mpmath's value, nearest, at every point
    xs64 = np.array([-800.0, -40.0, -1e-300, 0.0, 2.5, 36.75, 1e308])
    nearest, _ = reference.sweep_grad_reference(xs64, F64, 1.0)
    assert nearest.tolist() == [reference.to_float64_nearest(reference.exact_grad(x, 1.0)) for x in xs64]
