"""`thresholds`: the breakdown logits predicted from a format's constants, next to those the sweep measures.

p is the significand precision (the implicit bit included), eps = 2**(1-p), emax the largest exponent, so that
max = 2**emax·(2 - 2**(1-p)), and tiny the smallest subnormal. "The first value >= t" means the smallest value of
the dtype not below t: a breakdown happens at a representable logit, so a real threshold t becomes that value.
Nothing here prints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from stabcli.formats import Format, to_float64
from stabcli.sweep import Grid, make_grid, run_sweep


@dataclass
class Threshold:
    """One predicted breakdown logit, the measurement it is checked against, and what explains a difference."""

    dtype: str
    name: str  # what happens there
    formula: str  # how the prediction follows from the format's constants
    predicted: float
    backend: str  # where it is measured: a sweep row's backend, method, target and breakdown key
    method: str
    target: float
    key: str
    measured: float | None = None
    explanation: str = ""

    @property
    def difference(self) -> float | None:
        return None if self.measured is None else self.measured - self.predicted


def first_at_least(t, fmt: Format) -> float:
    """The smallest value of ``fmt`` that is >= t (t an mpmath number, so float64 thresholds are exact too)."""
    import mpmath

    r = fmt.round(np.array(float(t)))
    if mpmath.mpf(float(to_float64(r))) < t:
        r = np.nextafter(r.astype(np.float64), np.inf) if fmt.bits == 64 else _next_up(r, fmt)
    return float(to_float64(r))


def _closest_below(t, fmt: Format, strict: bool = False) -> float:
    """The largest value of ``fmt`` that is <= t (< t if ``strict``): the mirror image used for x <= -t."""
    v = first_at_least(t, fmt)
    if strict and v == t:
        v = float(to_float64(_next_up(fmt.round(np.array(v)), fmt)))
    return v


def _next_up(r: np.ndarray, fmt: Format) -> np.ndarray:
    from stabcli.formats import ordinal
    from stabcli.sweep import from_ordinal

    return from_ordinal(ordinal(r, fmt) + 1, fmt)


def predict(fmt: Format, rtol: float | None = None) -> list[Threshold]:
    """The predicted breakdown logits of ``fmt`` (tolerance ``rtol``, default 4·eps), each with its formula."""
    import mpmath

    mp = mpmath.mp
    p, eps = fmt.mantissa_bits, fmt.eps
    emax = math.frexp(fmt.max)[1] - 1
    rtol = fmt.default_rtol if rtol is None else rtol
    name = fmt.name
    lse = math.log(math.expm1(eps / rtol))
    with mpmath.workdps(60):  # exact enough that the first representable value at or above each is right
        ln2 = mp.log(2)
        tiny = mp.mpf(fmt.smallest_subnormal)
        ln_overflow = emax * ln2 + mp.log(2 - mp.mpf(2) ** -p)  # ln(max + ulp(max)/2)
        t_one_op = p * ln2
        t_one_cr = mp.log(mp.mpf(2) ** (p + 1) - 1)
        t_under = mp.log(2 / tiny - 1)
        t_clamp = mp.log(mp.exp(100) - 1)  # 100 - 3.7e-44: -100 itself already clamps in exact arithmetic
        return _table(name, p, fmt, ln_overflow, t_one_op, t_one_cr, t_under, t_clamp, lse)


def _table(name, p, fmt, ln_overflow, t_one_op, t_one_cr, t_under, t_clamp, lse) -> list[Threshold]:
    return [
        Threshold(name, "sigmoid rounds to 1.0, op by op",
                  "x ≥ p·ln 2: exp(-x) ≤ 2^-p = eps/2, so 1 + exp(-x) rounds to 1 (ties to even)",
                  first_at_least(t_one_op, fmt), "numpy", "naive", 0.0, "nonfinite_pos"),
        Threshold(name, "sigmoid rounds to 1.0, correctly rounded",
                  "x ≥ ln(2^(p+1) - 1): sigmoid(x) ≥ 1 - 2^-(p+1), half an ulp below 1",
                  first_at_least(t_one_cr, fmt), "torch", "naive", 0.0, "nonfinite_pos"),
        Threshold(name, "exp(-x) overflows, so op-by-op sigmoid is 0",
                  "x ≤ -ln(2^emax·(2 - 2^-p)): exp(-x) reaches max + ulp(max)/2 and rounds to inf",
                  -first_at_least(ln_overflow, fmt), "numpy", "naive", 1.0, "nonfinite_neg"),
        Threshold(name, "sigmoid underflows to 0, correctly rounded",
                  "x ≤ -ln(2/tiny - 1): sigmoid(x) ≤ tiny/2, half the smallest subnormal (ties to even: 0)",
                  -_closest_below(t_under, fmt), "torch", "naive", 1.0, "nonfinite_neg"),
        Threshold(name, "the -100 clamp changes the answer (target 1)",
                  "x < -ln(e^100 - 1) ≈ -100 (log p < -100), or sooner where op-by-op p is 0 (exp overflow)",
                  max(-first_at_least(ln_overflow, fmt), -_closest_below(t_clamp, fmt, strict=True)),
                  "numpy", "clamped", 1.0, "clamped_neg"),
        Threshold(name, "logsumexp loses relative accuracy (target 0)",
                  "x < ln(e^(eps/rtol) - 1): the two roundings of 1+e^x and of m + log(...) cost about eps, "
                  "more than rtol·loss once loss = log(1 + e^x) < eps/rtol",
                  lse, "numpy", "logsumexp", 0.0, "inaccurate_neg"),
    ]


def _explain(t: Threshold, fmt: Format) -> str:
    if t.measured is None:
        return "not reached in the swept range"
    if t.measured == t.predicted:
        return "agrees exactly"
    if t.name.startswith("sigmoid rounds to 1.0, correctly") and fmt.bits >= 32:
        return ("torch's float32/float64 sigmoid computes 1/(1+exp(-x)) in the dtype itself, so it saturates "
                "where the op-by-op form does")
    if t.name.startswith("sigmoid underflows"):
        return ("torch computes sigmoid in float32 (or in float64 itself): its exp(-x) overflows at "
                "88.72 (709.78) first, and 1/(1+inf) = 0 before the underflow is reached")
    if t.name.startswith("the -100 clamp"):
        return ("at the predicted logit the computed log p rounds to exactly -100 (or, in 16 bits, p is "
                "a subnormal whose log lands above -100), which the clamp leaves alone; it acts one step further")
    if t.name.startswith("logsumexp"):
        return ("the prediction is where a typical error of one eps exceeds the tolerance; the first logit "
                "where the actual rounding errors add up to more lies a little further out")
    return "differs"


def run_thresholds(formats: list[Format], rtol: float | None = None, atol: float | None = None,
                   progress=None) -> list[Threshold]:
    """Predict every threshold of ``formats`` and measure it with the sweep engine.

    16-bit formats are swept exhaustively; float32 and float64 on the default grid, whose breakdown search pins
    monotone breakdowns exactly (see ``sweep.py``).
    """
    out: list[Threshold] = []
    for fmt in formats:
        grid: Grid = make_grid(exhaustive=True) if fmt.bits == 16 else make_grid()
        preds = predict(fmt, rtol)
        sw = run_sweep([fmt], ["numpy", "torch"], [0.0, 1.0], grid, rtol=rtol, atol=atol,
                       methods=["naive", "clamped", "logsumexp"], progress=progress)
        rows = {(r.backend, r.method, r.target): r for r in sw.rows}
        for t in preds:
            t.measured = getattr(rows[(t.backend, t.method, t.target)].breakdown, t.key)
            t.explanation = _explain(t, fmt)
            out.append(t)
    return out
