"""BCE's breakdown logits predicted from a format's constants (``commands/thresholds.py`` measures them).

p is the significand precision (the implicit bit included), eps = 2**(1-p), max the largest finite value and
ulp(max) its ulp (max + ulp(max)/2 is where overflow starts: ``core.floats``), and tiny the smallest subnormal. "The first value >= t" means the smallest value of
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
    """The predicted breakdown logits of ``fmt`` (tolerance ``rtol``, default the format's), each with its formula.

    The format facts (where exp overflows, where sigmoid rounds to 1) are ``core.floats``'; in float8_e4m3fn,
    which has no inf, three of the events show differently and are measured where they do show (see ``_table``).
    """
    import mpmath

    from stabcli.core import floats

    mp = mpmath.mp
    rtol = fmt.default_rtol if rtol is None else rtol
    lse = _lse_estimate(fmt.eps, rtol)
    with mpmath.workdps(60):  # exact enough that the first representable value at or above each is right
        tiny = mp.mpf(fmt.smallest_subnormal)
        t_under = mp.log(2 / tiny - 1)
        t_clamp = mp.log(mp.exp(100) - 1)  # 100 - 3.7e-44: -100 itself already clamps in exact arithmetic
        under = -_closest_below(t_under, fmt)
        clamp = -_closest_below(t_clamp, fmt, strict=True)
    return _table(fmt, floats.sigmoid_one_logit(fmt, op_by_op=True), floats.sigmoid_one_logit(fmt),
                  -floats.exp_overflow_logit(fmt), under, clamp, lse)


def _lse_estimate(eps: float, rtol: float) -> float:
    """ln(e^(eps/rtol) - 1), for every rtol >= 0: ln(expm1(a)) overflows from a = 710 and divides by zero at
    rtol = 0, where no rounding error at all is within tolerance, so that the estimate is +inf (every logit)."""
    a = eps / rtol if rtol > 0 else math.inf
    if a > 700:  # ln(e^a - 1) = a + ln(1 - e^-a), and e^-a is below 1e-304: a itself (inf stays inf)
        return a
    return math.log(math.expm1(a))


def _table(fmt: Format, one_op, one_cr, overflow, under, clamp, lse) -> list[Threshold]:
    name = fmt.name
    rows = [
        Threshold(name, "sigmoid rounds to 1.0, op by op",
                  "x ≥ p·ln 2 - ln(1 + 2^-p): exp(-x) rounds to at most 2^-p = eps/2, so 1 + exp(-x) rounds to 1 "
                  "(ties to even)",
                  one_op, "numpy", "naive", 0.0, "nonfinite_pos"),
    ]
    if fmt.has_inf:
        rows += [
            Threshold(name, "sigmoid rounds to 1.0, correctly rounded",
                      "x ≥ ln(2^(p+1) - 1): sigmoid(x) ≥ 1 - 2^-(p+1), half an ulp below 1",
                      one_cr, "torch", "naive", 0.0, "nonfinite_pos"),
            Threshold(name, "exp(-x) overflows, so op-by-op sigmoid is 0",
                      "x ≤ -ln(max + ulp(max)/2): exp(-x) rounds past the largest value, to inf",
                      overflow, "numpy", "naive", 1.0, "nonfinite_neg"),
            Threshold(name, "sigmoid underflows to 0, correctly rounded",
                      "x ≤ -ln(2/tiny - 1): sigmoid(x) ≤ tiny/2, half the smallest subnormal (ties to even: 0)",
                      under, "torch", "naive", 1.0, "nonfinite_neg"),
            Threshold(name, "the -100 clamp changes the answer (target 1)",
                      "x < -ln(e^100 - 1) ≈ -100 (log p < -100), or sooner where op-by-op p is 0 (exp overflow)",
                      max(overflow, clamp), "numpy", "clamped", 1.0, "clamped_neg"),
        ]
    else:
        # float8_e4m3fn: no inf. In numpy (ml_dtypes) an overflow and log(0) are NaN; torch's cast saturates them
        # to ±448, so where p is exactly 0 or 1 torch's naive loss is a finite, wrong 448 rather than inf.
        saturates = ("; torch's float8_e4m3fn cast saturates log(0) = -inf to -448, so the loss is a finite 448, "
                     "out of tolerance, not inf")
        rows += [
            Threshold(name, "sigmoid rounds to 1.0, correctly rounded",
                      "x ≥ ln(2^(p+1) - 1): sigmoid(x) ≥ 1 - 2^-(p+1), half an ulp below 1" + saturates,
                      one_cr, "torch", "naive", 0.0, "inaccurate_pos"),
            Threshold(name, "exp(-x) overflows to NaN, so op-by-op sigmoid is NaN",
                      "x ≤ -ln(max + ulp(max)/2): exp(-x) exceeds 448 + 32/2 = 464 and, with no inf in "
                      "float8_e4m3fn, is NaN (ml_dtypes), and so is 1/(1 + NaN)",
                      overflow, "numpy", "naive", 1.0, "nonfinite_neg"),
            Threshold(name, "sigmoid underflows to 0, correctly rounded",
                      "x ≤ -ln(2/tiny - 1): sigmoid(x) ≤ tiny/2, half the smallest subnormal (ties to even: 0)"
                      + saturates,
                      under, "torch", "naive", 1.0, "inaccurate_neg"),
            Threshold(name, "the -100 clamp changes the answer (target 1; torch)",
                      "x ≤ -ln(2/tiny - 1): p is 0 and log(0) = -inf saturates to -448, below the clamp (-100 is "
                      "-96 in float8_e4m3fn). In numpy the clamp never fires: log(0) is NaN there, and "
                      "max(NaN, -100) is NaN",
                      max(under, clamp), "torch", "clamped", 1.0, "clamped_neg"),
        ]
    rows.append(
        Threshold(name, "logsumexp loses relative accuracy (target 0; an estimate)",
                  "estimate, not a bound: x < ln(e^(eps/rtol) - 1): the two roundings of 1+e^x and of m + log(...) cost "
                  "about eps, more than rtol·loss once loss = log(1 + e^x) < eps/rtol",
                  lse, "numpy", "logsumexp", 0.0, "inaccurate_neg"))
    return rows


def predict_grad(fmt: Format, rtol: float | None = None) -> list[Threshold]:
    """Where BCELoss's gradient collapses in ``fmt``: the events of ``grad_thresholds``, as logits of the dtype.

    ``grad_thresholds`` says which events occur (ε = 0 in float16 turns a collapse into NaN) and where, in float64;
    here the same formulas are evaluated in mpmath, so that the first logit of the dtype past each is exact. torch
    computes float16/bfloat16 sigmoid in float32 and rounds once (fused), float32/float64 op by op.
    """
    import mpmath

    from stabcli.losses.bce import grad_thresholds as tg

    if fmt.bits == 8:
        return _predict_grad_float8(fmt)
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
        out.append(_clamped_saturates(fmt))
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


def _clamped_saturates(fmt: Format) -> Threshold:
    """numpy's op-by-op p reaches 1 (``core.floats.sigmoid_one_logit``): log1p(-p) = -inf, clamped to -100, whose
    derivative is 0; in float8_e4m3fn log1p(-1) is NaN (no -inf), and so is max(NaN, -100) and its derivative."""
    from stabcli.core import floats

    at = floats.sigmoid_one_logit(fmt, op_by_op=True)
    if fmt.has_inf:
        return Threshold(fmt.name, "clamped's gradient 0: p saturates (target 0)",
                         "x ≥ p·ln 2 - ln(1 + 2^-p) (op by op): log1p(-p) = -inf is clamped to -100, whose "
                         "derivative is 0", at, "numpy", "clamped", 0.0, "vanished_pos", quantity="gradient")
    return Threshold(fmt.name, "clamped's gradient NaN: p saturates (target 0)",
                     "x ≥ p·ln 2 - ln(1 + 2^-p) (op by op): log1p(-p) = log(0) is NaN in float8_e4m3fn (no -inf, "
                     "ml_dtypes), the clamp max(NaN, -100) passes the NaN, and so does its derivative",
                     at, "numpy", "clamped", 0.0, "nan_pos", quantity="gradient")


def _predict_grad_float8(fmt: Format) -> list[Threshold]:
    """BCELoss's gradient in float8 under the torch backend (``backends.TorchFloat8Ops``).

    Its backward kernel runs in float32, so the guard ε = 1e-12 is not 0 there (as it is in float16), and only
    the kernel's result dL/dp = (p-y)/max(p(1-p), ε) is rounded to float8. Where p is exactly 1 (target 0) or 0
    (target 1) that is ±1/ε = ±1e12: inf in float8_e5m2, whose product with sigmoid's p(1-p) = 0 is NaN; ±448 in
    float8_e4m3fn (torch's cast saturates), whose product with 0 is 0: the gradient vanishes. p is torch.sigmoid's,
    computed in float32 and rounded once. Before p reaches 0, -1/p overflows float8_e5m2 too (-inf, as in
    float16); in float8_e4m3fn it saturates to -448 and the gradient -448·p(1-p) stays within tolerance.
    """
    import mpmath

    from stabcli.core import floats

    mp = mpmath.mp
    name = fmt.name
    sat = floats.sigmoid_one_logit(fmt)  # fused
    nan = fmt.has_inf
    big = "inf" if nan else "448 (saturated)"
    then = "times p(1-p) = 0: NaN" if nan else "times p(1-p) = 0: 0 where the truth is ±1"
    out = [Threshold(
        name, f"BCELoss gradient {'NaN' if nan else '0'}: p saturates (target 0)",
        f"x ≥ ln(2^(p+1) - 1) (torch.sigmoid in float32, rounded once): p = 1, the float32 backward gives "
        f"(p-y)/max(0, 1e-12) = 1e12, which rounds to {big} in {name}; {then}",
        sat, "torch", "torch_bce", 0.0, "nan_pos" if nan else "vanished_pos", quantity="gradient"),
        _clamped_saturates(fmt)]
    with mpmath.workdps(60):
        t_under = mp.log(2 / mp.mpf(fmt.smallest_subnormal) - 1)
        under = -_closest_below(t_under, fmt)
        out.append(Threshold(
            name, f"BCELoss gradient {'NaN' if nan else '0'}: p underflows (target 1)",
            f"x ≤ -ln(2/tiny - 1): p = 0, the float32 backward gives (p-1)/max(0, 1e-12) = -1e12, which rounds to "
            f"-{big} in {name}; {then}",
            under, "torch", "torch_bce", 1.0, "nan_neg" if nan else "vanished_neg", quantity="gradient"))
        if nan:
            limit = mp.mpf(float(floats.overflow_threshold(fmt)))  # max + ulp(max)/2: rounds to inf
            p_star = _largest_at_most(1 / limit, fmt)  # the largest p with 1/p >= limit
            p_next = mp.mpf(float(to_float64(next_up(fmt.round(np.array(p_star)), fmt))))
            boundary = (mp.mpf(p_star) + p_next) / 2  # sigmoid(x) below this rounds to p_star or less
            t_inf = mp.log(boundary / (1 - boundary))
            out.append(Threshold(
                name, "BCELoss gradient -inf: -1/p overflows (target 1)",
                f"x < logit(p*), p* = {p_star:g} the largest {name} with 1/p* ≥ max + ulp(max)/2 = {float(limit):g}: "
                "(p-1)/(p(1-p)) ≈ -1/p rounds to -inf",
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
    if t.name.startswith("logsumexp") and math.isinf(t.predicted):  # --rtol 0: e^(eps/0) = inf
        return ("with rtol 0 no rounding error is within tolerance, so every logit is predicted; the measured one is "
                "the first whose loss is neither the exact value correctly rounded nor within atol of it")
    if t.name.startswith("BCELoss gradient collapses: p(1-p)"):
        return ("the clamp fires at the predicted logit, but there the gradient -(1-p)·p(1-p)/ε is still within rtol "
                "of -1; it leaves the tolerance once p(1-p)/ε < 1 - rtol, about rtol (an ulp or two) further out")
    if t.name.startswith("BCELoss gradient collapses: 1-p"):
        return ("p is rounded before 1 - p is taken: near 1, torch's 1/(1+exp(-x)) moves in steps of 2^-52, so "
                "1 - p jumps past ε only where exp(-x) falls below the half-step under ε (2.2e-5 further out), and "
                "the gradient then drops by more than rtol at once")
    if (not fmt.has_inf and t.key.startswith("inaccurate") and t.name.startswith("sigmoid")
            and abs(t.measured) < abs(t.predicted)):
        # float8_e4m3fn: torch's saturated 448 is measured as the first logit out of tolerance, and a tolerance
        # tighter than the default (--rtol/--atol; 0 with --rtol 0 --atol 0) is left by rounding errors first
        return (f"{fmt.name} has no inf, so this shows as a finite, saturated {fmt.max:g} and is measured as the "
                "first logit out of tolerance; torch's naive loss leaves this tolerance (tighter than the default: "
                "--rtol/--atol) through its ordinary rounding errors before p saturates")
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
                "where the actual rounding errors add up to more lies further out" +
                (f" ({fmt.name}'s few bits round e^x itself coarsely: well beyond)" if fmt.bits == 8 else ""))
    return "differs"
