"""BCE's breakdown logits predicted from a format's constants (``commands/thresholds.py`` measures them).

p is the significand precision (the implicit bit included), eps = 2**(1-p), emax the largest exponent, so that
max = 2**emax·(2 - 2**(1-p)), and tiny the smallest subnormal. "The first value >= t" means the smallest value of
the dtype not below t: a breakdown happens at a representable logit, so a real threshold t becomes that value.
Nothing here prints.
"""

from __future__ import annotations

import math

import numpy as np

from stabcli.core.formats import Format, first_at_least, from_ordinal, next_up, ordinal, to_float64
from stabcli.losses.base import Threshold


def _closest_below(t, fmt: Format, strict: bool = False) -> float:
    """The smallest value of ``fmt`` that is >= t (> t if ``strict``), for a threshold t on |x| that the caller
    mirrors to x <= -t."""
    v = first_at_least(t, fmt)
    if strict and v == t:
        v = float(to_float64(next_up(fmt.round(np.array(v)), fmt)))
    return v


def predict(fmt: Format, rtol: float | None = None) -> list[Threshold]:
    """The predicted breakdown logits of ``fmt`` (tolerance ``rtol``, default 4·eps), each with its formula."""
    import mpmath

    mp = mpmath.mp
    p, eps = fmt.mantissa_bits, fmt.eps
    emax = math.frexp(fmt.max)[1] - 1
    rtol = fmt.default_rtol if rtol is None else rtol
    name = fmt.name
    lse = _lse_estimate(eps, rtol)
    with mpmath.workdps(60):  # exact enough that the first representable value at or above each is right
        ln2 = mp.log(2)
        tiny = mp.mpf(fmt.smallest_subnormal)
        ln_overflow = emax * ln2 + mp.log(2 - mp.mpf(2) ** -p)  # ln(max + ulp(max)/2)
        t_one_op = p * ln2
        t_one_cr = mp.log(mp.mpf(2) ** (p + 1) - 1)
        t_under = mp.log(2 / tiny - 1)
        t_clamp = mp.log(mp.exp(100) - 1)  # 100 - 3.7e-44: -100 itself already clamps in exact arithmetic
        return _table(name, p, fmt, ln_overflow, t_one_op, t_one_cr, t_under, t_clamp, lse)


def _lse_estimate(eps: float, rtol: float) -> float:
    """ln(e^(eps/rtol) - 1), for every rtol >= 0: ln(expm1(a)) overflows from a = 710 and divides by zero at
    rtol = 0, where no rounding error at all is within tolerance, so that the estimate is +inf (every logit)."""
    a = eps / rtol if rtol > 0 else math.inf
    if a > 700:  # ln(e^a - 1) = a + ln(1 - e^-a), and e^-a is below 1e-304: a itself (inf stays inf)
        return a
    return math.log(math.expm1(a))


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
        Threshold(name, "logsumexp loses relative accuracy (target 0; an estimate)",
                  "estimate, not a bound: x < ln(e^(eps/rtol) - 1): the two roundings of 1+e^x and of m + log(...) cost about eps, "
                  "more than rtol·loss once loss = log(1 + e^x) < eps/rtol",
                  lse, "numpy", "logsumexp", 0.0, "inaccurate_neg"),
    ]


def predict_grad(fmt: Format, rtol: float | None = None) -> list[Threshold]:
    """Where BCELoss's gradient collapses in ``fmt``: the events of ``thresholds_grad``, as logits of the dtype.

    ``thresholds_grad`` says which events occur (ε = 0 in float16 turns a collapse into NaN) and where, in float64;
    here the same formulas are evaluated in mpmath, so that the first logit of the dtype past each is exact. torch
    computes float16/bfloat16 sigmoid in float32 and rounds once (fused), float32/float64 op by op.
    """
    import mpmath

    from stabcli.losses.bce import grad_thresholds as tg

    mp = mpmath.mp
    fused = fmt.bits == 16
    pred = tg.predicted(fmt, fused)
    eps, p, name = pred["grad_epsilon"], fmt.mantissa_bits, fmt.name
    out: list[Threshold] = []
    with mpmath.workdps(60):
        ln2 = mp.log(2)
        sat_op = p * ln2  # tg.saturation_logit: 1 + exp(-x) rounds to 1 once exp(-x) <= 2^-p
        sat_torch = mp.log(mp.mpf(2) ** (p + 1) - 1) if fused else sat_op  # tg.saturation_logit(fused=True)
        how = "fused: sigmoid in float32, rounded once" if fused else "op by op, as torch computes it in this dtype"
        if eps > 0:
            out.append(Threshold(
                name, "BCELoss gradient 0: p saturates (target 0)",
                f"x ≥ saturation ({how}): p(1-p) = 0 < ε, so (p-y)/ε·p(1-p) = 0 where the truth is 1",
                first_at_least(sat_torch, fmt), "torch", "torch_bce", 0.0, "vanished_pos", quantity="gradient"))
        else:
            out.append(Threshold(
                name, "BCELoss gradient NaN: p saturates, ε = 0 (target 0)",
                f"x ≥ saturation ({how}): 1e-12 is 0 in float16, so p(1-p) = 0 leaves max(0, 0) = 0: (p-y)/0 = inf, "
                "times p(1-p) = 0: NaN",
                first_at_least(sat_torch, fmt), "torch", "torch_bce", 0.0, "nan_pos", quantity="gradient"))
        out.append(Threshold(
            name, "clamped's gradient 0: p saturates (target 0)",
            "x ≥ p·ln 2 (op by op): log1p(-p) = -inf is clamped to -100, whose derivative is 0",
            first_at_least(sat_op, fmt), "numpy", "clamped", 0.0, "vanished_pos", quantity="gradient"))
        if eps > 0:
            e = mp.mpf(eps)
            t = mp.log(((1 - 2 * e) - mp.sqrt(1 - 4 * e)) / (2 * e))  # sigmoid(t)·sigmoid(-t) = ε, t < 0
            out.append(Threshold(
                name, "BCELoss gradient collapses: p(1-p) < 1e-12 (target 1)",
                f"x < t, sigmoid(t)·sigmoid(-t) = ε = {eps:.10g} (t ≈ ln ε): the denominator is clamped and the "
                "gradient becomes (p-1)·p(1-p)/ε ≈ -p/ε",
                -_closest_below(-t, fmt, strict=True), "torch", "torch_bce", 1.0, "inaccurate_neg", quantity="gradient"))
            if pred["grad_clamp_pos"] < pred["saturation"]:  # float64: 1 - p resolves 1e-12 before p saturates
                out.append(Threshold(
                    name, "BCELoss gradient collapses: 1-p < 1e-12 (target 0)",
                    "x > -t (the mirror image): p(1-p) ≈ 1-p < ε, the gradient becomes p·p(1-p)/ε ≈ (1-p)/ε",
                    _closest_below(-t, fmt, strict=True), "torch", "torch_bce", 0.0, "inaccurate_pos",
                    quantity="gradient"))
        else:
            tiny = mp.mpf(fmt.smallest_subnormal)
            t_under = mp.log(2 / tiny - 1)  # tg.underflow_logit: sigmoid(x) <= tiny/2 rounds to 0
            out.append(Threshold(
                name, "BCELoss gradient NaN: p underflows, ε = 0 (target 1)",
                "x ≤ -ln(2/tiny - 1): p = 0, so p(1-p) = 0, and with no guard (ε = 0) the gradient is inf·0 = NaN",
                -_closest_below(t_under, fmt), "torch", "torch_bce", 1.0, "nan_neg", quantity="gradient"))
            emax = math.frexp(fmt.max)[1] - 1
            limit = mp.mpf(fmt.max) + mp.mpf(fmt.eps) * mp.mpf(2) ** emax / 2  # max + ulp(max)/2: rounds to inf
            p_star = _largest_at_most(1 / limit, fmt)  # the largest p with 1/p >= limit
            p_next = mp.mpf(float(to_float64(next_up(fmt.round(np.array(p_star)), fmt))))
            boundary = (mp.mpf(p_star) + p_next) / 2  # sigmoid(x) below this rounds to p_star or less
            t_inf = mp.log(boundary / (1 - boundary))  # tg.grad_inf_logit_neg, with p rounded
            out.append(Threshold(
                name, "BCELoss gradient -inf: -1/p overflows (target 1)",
                f"x < logit(p*), p* = {p_star:g} the largest float16 with 1/p* ≥ max + ulp(max)/2 = {float(limit):g}: "
                "with no guard (ε = 0), (p-1)/(p(1-p)) ≈ -1/p rounds to -inf",
                -_closest_below(-t_inf, fmt, strict=True), "torch", "torch_bce", 1.0, "nonfinite_neg",
                quantity="gradient"))
    return out


def _largest_at_most(t, fmt: Format) -> float:
    """The largest value of ``fmt`` that is <= t (t a positive mpmath number)."""
    import mpmath

    v = first_at_least(t, fmt)
    if mpmath.mpf(v) > t:
        v = float(to_float64(from_ordinal(ordinal(fmt.round(np.array(v)), fmt) - 1, fmt)))
    return v


def explain(t: Threshold, fmt: Format) -> str:
    """Why a measured threshold differs from its prediction (or that it agrees)."""
    if t.measured is None:
        return "not reached in the swept range"
    if t.measured == t.predicted:
        return "agrees exactly"
    if t.name.startswith("BCELoss gradient collapses: p(1-p)"):
        return ("the clamp fires at the predicted logit, but there the gradient -(1-p)·p(1-p)/ε is still within rtol "
                "of -1; it leaves the tolerance once p(1-p)/ε < 1 - rtol, about rtol (an ulp or two) further out")
    if t.name.startswith("BCELoss gradient collapses: 1-p"):
        return ("p is rounded before 1 - p is taken: near 1, torch's 1/(1+exp(-x)) moves in steps of 2^-52, so "
                "1 - p jumps past ε only where exp(-x) falls below the half-step under ε (2.2e-5 further out), and "
                "the gradient then drops by more than rtol at once")
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
