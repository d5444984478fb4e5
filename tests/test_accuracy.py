"""Accuracy properties of `softplus` against mpmath over whole formats and over bit-pattern samples.

The bound established here: `softplus` is within 2 ulps of the correctly rounded exact loss (error_bits <=
log2(1 + 2)) and never inf or NaN, in both backends, for targets 0, 1 and 0.25. Why 2: softplus(t) =
max(t, 0) + log1p(exp(-|t|)) rounds exp, log1p and the sum (each within half an ulp, the log1p term being
small against max(t, 0) where the sum matters), and a soft target adds two products and a sum of two
non-negative terms, which cannot cancel. Measured: at most 1 ulp for hard targets, 2 for 0.25.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from stabcli.losses.bce import reference
from stabcli.core.analysis import Tolerance
from stabcli.core.formats import FORMATS, round_float64, to_float64
from stabcli.commands.sweep import classify
from stabcli.losses.bce import SweepCase as Scalars

BOUND_BITS = math.log2(1 + 2)  # 2 ulps
TARGETS = (0.0, 1.0, 0.25)


def _bit_pattern_sample(fmt, n: int, seed: int) -> np.ndarray:
    """n logits drawn uniformly over bit patterns (as Herbie samples), finite ones kept, in the dtype."""
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2**fmt.bits, size=n, dtype=np.uint64)
    xs = (bits.astype(np.uint32) if fmt.bits == 32 else bits).view(fmt.np_dtype)
    return xs[np.isfinite(xs)]


@pytest.mark.parametrize("name", ["float16", "bfloat16"])
@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("y", TARGETS)
def test_softplus_within_2_ulps_on_every_finite_16_bit_value(name, backend, y):
    fmt = FORMATS[name]
    xs = fmt.all_finite()
    c = classify(backend, fmt, "softplus", xs, Scalars(fmt, y, 1.0, 1.0), Tolerance.for_format(fmt))
    assert not c.nonfinite.any()
    assert c.error_bits.max() <= BOUND_BITS


def test_fast_reference_is_correctly_rounded_for_the_soft_target():
    # The sweeps' float64 reference, proved here against mpmath for y = 0.25 on every 16th finite float16 value
    # and a float32 sample (test_sweep.py does targets 0 and 1 on every value).
    for fmt, xs in ((FORMATS["float16"], FORMATS["float16"].all_finite()[::16]),
                    (FORMATS["float32"], _bit_pattern_sample(FORMATS["float32"], 3000, 11))):
        x64 = to_float64(xs)
        y = float(to_float64(fmt.round(np.array(0.25))))
        fast = round_float64(reference.fast_loss(x64, y), fmt)
        exact = round_float64(np.array([reference.to_float64_odd(reference.exact_loss(float(v), y)) for v in x64]),
                              fmt)
        assert np.array_equal(to_float64(fast), to_float64(exact))


# float64 is judged against mpmath point by point (~0.1 ms each, times 3 targets): 20,000 bit patterns keep this
# test near 6 s; float32 uses the certified float64 reference and affords 100,000.
@pytest.mark.parametrize("name, n", [("float32", 100_000), ("float64", 20_000)])
def test_softplus_within_2_ulps_on_a_bit_pattern_sample(name, n):
    fmt = FORMATS[name]
    xs = _bit_pattern_sample(fmt, n, seed=20261122)
    assert xs.size > 0.99 * n  # few patterns are inf/NaN
    for y in TARGETS:
        s = Scalars(fmt, y, 1.0, 1.0)
        ref = reference.sweep_reference(to_float64(xs), fmt.bits, *s.wide())  # mpmath point by point for float64
        for backend in ("numpy", "torch"):
            c = classify(backend, fmt, "softplus", xs, s, Tolerance.for_format(fmt), ref)
            assert not c.nonfinite.any(), (backend, y)
            assert c.error_bits.max() <= BOUND_BITS, (backend, y, c.error_bits.max())


@pytest.mark.parametrize("name", [n for n, f in FORMATS.items() if f.has_inf])  # float8_e4m3fn has no inf
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_exact_limits_at_infinity(name, backend):
    # DESIGN.md: loss(+inf, y) is 0 for y = 1 and +inf otherwise; loss(-inf, y) is 0 for y = 0, +inf otherwise.
    # softplus claims them; the mpmath reference has them too (test_reference.py).
    fmt = FORMATS[name]
    xs = fmt.round(np.array([math.inf, -math.inf]))
    for y, want in ((1.0, [0.0, math.inf]), (0.0, [math.inf, 0.0]), (0.25, [math.inf, math.inf])):
        c = classify(backend, fmt, "softplus", xs, Scalars(fmt, y, 1.0, 1.0), Tolerance.for_format(fmt))
        assert list(c.loss) == want
        assert list(c.status) == ["ok", "ok"]


@pytest.mark.parametrize("name", ["float16", "bfloat16"])
def test_sweep_reference_is_correctly_rounded_at_soft_target_ties(name):
    # y = 0.25: 0.75·x is often exactly a midpoint of the format, and the tail e^-x that makes the exact loss a
    # hair larger is below float64's resolution, so plain float64 rounds the tie to even, the wrong side, at 289
    # float16 and 35 bfloat16 logits (0.75·33.34375 = 25.0078125, halfway between 25 and 25.015625). The sweep's
    # reference certifies each point and asks mpmath where it cannot. Checked against mpmath at every logit
    # within 2^-30 (relative) of a tie of the format, far wider than the code's own 2^-49, and at every 64th.
    fmt = FORMATS[name]
    x64 = to_float64(fmt.all_finite())
    y = float(to_float64(fmt.round(np.array(0.25))))
    fast = reference.fast_loss(x64, y)
    with np.errstate(all="ignore"):
        near_tie = to_float64(round_float64(fast * (1 - 2.0**-30), fmt)) != to_float64(
            round_float64(fast * (1 + 2.0**-30), fmt))
    pick = np.flatnonzero(near_tie | (np.arange(x64.size) % 64 == 0))
    _, for_rounding = reference.sweep_reference(x64[pick], fmt.bits, y, fmt=fmt)
    exact = round_float64(np.array([reference.to_float64_odd(reference.exact_loss(float(v), y)) for v in x64[pick]]),
                          fmt)
    assert np.array_equal(to_float64(round_float64(for_rounding, fmt)), to_float64(exact))
    plain = to_float64(round_float64(fast[pick], fmt))
    assert not np.array_equal(plain, to_float64(exact))  # the test can fail: plain float64 is wrong here
