"""Softmax cross-entropy's breakdown gaps predicted from a format's constants (``commands/thresholds.py`` measures
them with a sweep of the rows [g, 0, ..., 0], C = 3 classes).

p is the significand precision (the implicit bit included), eps = 2**(1-p), emax the largest exponent (so that
max = 2**emax·(2 - 2**(1-p))), tiny the smallest subnormal. A breakdown happens at a representable gap, so a real
threshold t becomes the first value of the dtype at or past it. exp(t) is transcendental for rational t != 0, so
the exact values never fall on a tie. Nothing here prints.
"""

from __future__ import annotations

import math

import numpy as np

from stabcli.core.formats import Format, first_at_least, next_up, to_float64
from stabcli.losses.base import Threshold
from stabcli.losses.softmax import DEFAULT_CLASSES

ONE_HOT = (1.0, 0.0, 0.0)  # the probability target of class 0 for C = 3


def _beyond(t, fmt: Format) -> float:
    """The smallest value of ``fmt`` strictly above t (t an mpmath number)."""
    v = first_at_least(t, fmt)
    if v == t:
        v = float(to_float64(next_up(fmt.round(np.array(v)), fmt)))
    return v


def predict(fmt: Format, rtol: float | None = None, classes: int = DEFAULT_CLASSES) -> list[Threshold]:
    """The predicted breakdown gaps of ``fmt`` for rows [g, 0, ..., 0] of ``classes`` classes, each with its formula."""
    import mpmath

    mp = mpmath.mp
    p, eps, name, c = fmt.mantissa_bits, fmt.eps, fmt.name, classes
    emax = math.frexp(fmt.max)[1] - 1
    rtol = fmt.default_rtol if rtol is None else rtol
    fused = fmt.bits == 16  # torch computes float16/bfloat16 softmax in float32 and rounds once
    k = (c - 1) // 2  # exp(g) of at most k·tiny gives p_0 = exp(g)/(C - 1) <= tiny/2, which rounds to 0
    with mpmath.workdps(60):
        ln2 = mp.log(2)
        tiny = mp.mpf(fmt.smallest_subnormal)
        ln_overflow = emax * ln2 + mp.log(2 - mp.mpf(2) ** -p)  # ln(max + ulp(max)/2)
        t_p0_op = mp.log((k + mp.mpf(1) / 2) * tiny)
        t_p0_fused = mp.log((c - 1) * tiny / (2 - tiny))
        t_p1 = mp.log(2 / tiny)
        t_grad_op = p * ln2 - mp.log(1 + mp.mpf(2) ** -p)
        t_grad_fused = mp.log((c - 1) * (mp.mpf(2) ** (p + 1) - 1))
        # rtol = 0 (--rtol 0): no rounding error is within tolerance, e^(eps/0) = inf and the bound is ln 0 = -inf
        lse = float(mp.log((c - 1) / mp.expm1(mp.mpf(eps) / rtol))) if rtol > 0 else -math.inf
        if fmt.has_inf:
            overflow = ("exp(g) overflows: naive's inf/inf is NaN (class 0)",
                        "g ≥ ln(2^emax·(2 - 2^-p)): exp(g) reaches max + ulp(max)/2 and rounds to inf; inf/inf = NaN "
                        "(and p = 1/inf = 0 for the other classes: class 1's loss is inf)")
        else:  # float8_e4m3fn: no inf, an overflow is NaN (ml_dtypes)
            overflow = (f"exp(g) overflows: {name} has no inf, so exp(g) is NaN and so is naive's p (class 0)",
                        "g ≥ ln(2^emax·(2 - 2^-p)): exp(g) reaches max + ulp(max)/2 and, with no inf to round to, is "
                        "NaN (ml_dtypes; torch's cast would saturate it): the sum and every p are NaN")
        out = [
            Threshold(name, *overflow, first_at_least(ln_overflow, fmt), "numpy", "naive", 0, "nonfinite_pos"),
            Threshold(name, "exp(g) is so small that p_0 rounds to 0, op by op (class 0)",
                      f"g < ln((⌊(C-1)/2⌋ + ½)·tiny): exp(g) rounds to at most {k}·tiny, and p_0 = exp(g)/(C-1) "
                      "≤ tiny/2 rounds to 0 (ties to even): log(0) = -inf, the loss inf (naive and log_of_softmax)",
                      -_beyond(-t_p0_op, fmt), "numpy", "naive", 0, "nonfinite_neg"),
        ]
        if fused:
            out.append(Threshold(
                name, "softmax rounds p_0 to 0 once (torch, fused; class 0)",
                "g ≤ ln((C-1)·tiny/(2 - tiny)): p_0 = exp(g)/(exp(g) + C-1) computed in float32 is at most tiny/2 "
                "and rounds to 0 when stored",
                -first_at_least(-t_p0_fused, fmt), "torch", "log_of_softmax", 0, "nonfinite_neg"))
        out += [
            Threshold(name, "exp(-g) underflows: log(softmax) = -inf (class 1)",
                      "g ≥ ln(2/tiny): exp(-g) ≤ tiny/2 rounds to 0, so p_1 = 0 and log(softmax)[1] = -inf: the loss "
                      "is inf where the truth is about g",
                      first_at_least(t_p1, fmt), "numpy", "log_of_softmax", 1, "nonfinite_pos"),
            Threshold(name, "0·(-inf) = NaN: one-hot probability target [1, 0, 0]",
                      "g ≥ ln(2/tiny), as above: log p_1 = -inf, and the target's 0 for class 1 makes "
                      "0·(-inf) = NaN where the truth is about 2·exp(-g)",
                      first_at_least(t_p1, fmt), "numpy", "log_of_softmax", ONE_HOT, "nonfinite_pos"),
            Threshold(name, "logsumexp loses relative accuracy (class 0; an estimate)",
                      "estimate, not a bound: g > ln((C-1)/(e^(eps/rtol) - 1)): 1 + Σ exp(x - m) rounds, costing "
                      "about eps, more than rtol·loss once loss = log(1 + (C-1)·e^-g) < eps/rtol (log1p would not)",
                      lse, "numpy", "logsumexp", 0, "inaccurate_pos"),
            Threshold(name, "gradient d loss/d g vanishes, op by op: 1 + exp(-g) rounds to 1 (class 0)",
                      "g ≥ p·ln 2 - ln(1 + 2^-p): exp(-g) rounds to at most 2^-p = eps/2, so each 1 + exp(-g) of "
                      "the sum rounds to 1 and softmax - onehot = 1/sum - 1 = 0 where the truth is -(C-1)·e^-g",
                      first_at_least(t_grad_op, fmt), "numpy", "logsumexp", 0, "vanished_pos", quantity="gradient"),
        ]
        if fused:
            out.append(Threshold(
                name, "gradient vanishes: softmax rounds p_0 to 1 once (torch, fused; class 0)",
                "g ≥ ln((C-1)·(2^(p+1) - 1)): p_0 = 1/(1 + (C-1)·e^-g) ≥ 1 - 2^-(p+1), half an ulp below 1, so "
                "the stored p_0 is 1 and p_0 - 1 = 0",
                first_at_least(t_grad_fused, fmt), "torch", "log_of_softmax", 0, "vanished_pos", quantity="gradient"))
    if not fmt.has_inf:  # float8_e4m3fn: log(0) is NaN in ml_dtypes, not -inf; the breakdowns stay where they are
        for t in out:
            t.name = t.name.replace("log(softmax) = -inf", "log(softmax) = log(0)").replace("0·(-inf)", "0·log(0)")
            if "-inf" in t.formula:
                t.formula += f" ({name} has no -inf: there log(0) is NaN (ml_dtypes), and so is the loss)"
    return out


def explain(t: Threshold, fmt: Format) -> str:
    """Why a measured threshold differs from its prediction (or that it agrees)."""
    if t.measured is None:
        return "not reached in the swept range"
    if t.measured == t.predicted:
        return "agrees exactly"
    if t.name.startswith("logsumexp") and math.isinf(t.predicted):  # --rtol 0: e^(eps/0) = inf
        return ("with rtol 0 no rounding error is within tolerance, so every gap is predicted; the measured one is "
                "the first whose loss is neither the exact value correctly rounded nor within atol of it")
    if t.name.startswith("logsumexp"):
        return ("the prediction is where a typical error of one eps exceeds the tolerance; the first gap where the "
                "actual rounding errors add up to more lies a little further out")
    return "differs"
