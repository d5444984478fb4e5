"""Where the gradient of BCELoss(sigmoid(x), y) is predicted to collapse, as pure functions of the format.

torch's BCELoss backward is (p-y)/max(p(1-p), ε) with ε = 1e-12 in the dtype, chained through torch.sigmoid's
backward p(1-p) (``gradients.BCE_GRAD_EPSILON``). So the gradient is exact-ish while p(1-p) >= ε and becomes
(p-y)·p(1-p)/ε, shrinking toward 0, once p(1-p) < ε. Two things push p(1-p) below ε:

* p saturates: 1 + exp(-x) rounds to 1 (op by op, a rounding of the sum: exp(-x) < eps/2, x > ln(2/eps)), or the
  fused sigmoid's exact value rounds to 1 (computed wider and rounded once: 1 - p < eps/4, x > ln(4/eps));
  then p(1-p) = 0 and the target-0 gradient (true value ≈ 1) is 0, or NaN when ε itself is 0.
* p is small: p(1-p) ≈ p ≈ exp(x) < ε for x < ln ε ≈ -27.63: the target-1 gradient (true ≈ -1) is
  -p/ε, which decays like exp(x - ln ε). On the positive side 1 - p < ε likewise for x > -ln ε when the format
  can hold such a 1 - p (float64 only: elsewhere p saturates first).

In float16, ε = 1e-12 rounds to 0: there is no guard at all, and the gradient is NaN ((p-y)/0 is inf or 0/0, then times p(1-p) = 0) wherever p(1-p)
rounds to 0: from saturation on the positive side, and where p underflows (exp(x) below half the smallest
subnormal) on the negative side. Before that, for target 1, (p-1)/(p(1-p)) ≈ -1/p overflows float16 once
p < 1/65520, so the gradient is -inf from x ≈ -11.09 and NaN only from -17.33.

Every function returns a float logit (or None when the event does not occur); nothing is measured here.
"""

from __future__ import annotations

import math

from stabcli.losses.bce.gradients import BCE_GRAD_EPSILON
from stabcli.core.formats import Format


def grad_epsilon(fmt: Format) -> float:
    """BCELoss's backward guard as stored in ``fmt``: torch's float constant 1e-12 (9.999999960041972e-13, also in
    float64), rounded to the dtype (0 in float16, whose smallest subnormal is 6e-8)."""
    return float(fmt.round(BCE_GRAD_EPSILON))


def saturation_logit(fmt: Format, fused: bool = False) -> float:
    """The logit from which sigmoid(x) rounds to exactly 1.0.

    Op by op (``fused=False``), 1 + exp(-x) rounds to 1 once exp(-x) <= eps/2 (a tie goes to the even 1):
    x >= ln(2/eps). A fused sigmoid computed wider and rounded once (torch's float16/bfloat16 kernels) gives 1
    once 1 - p < eps/4: x > ln(4/eps). These are the values before rounding x to the format.
    """
    return math.log((4.0 if fused else 2.0) / fmt.eps)


def underflow_logit(fmt: Format) -> float:
    """The logit below which sigmoid(x) ≈ exp(x) rounds to 0 (under half the smallest subnormal)."""
    return math.log(fmt.smallest_subnormal) - math.log(2.0)  # log of 2**-1075 underflows in float64


def denominator_clamp_logit_neg(fmt: Format) -> float | None:
    """Target 1: the logit below which p(1-p) ≈ exp(x) < ε, so the gradient collapses from -1 toward 0.

    None in float16, where ε is 0 and the guard never fires (see :func:`grad_nan_logit_neg`).
    """
    eps = grad_epsilon(fmt)
    return math.log(eps) if eps > 0 else None


def denominator_clamp_logit_pos(fmt: Format, fused: bool = False) -> float | None:
    """Target 0: the logit from which p(1-p) < ε, so the gradient collapses from 1 toward 0.

    Either 1 - p ≈ exp(-x) < ε (x > -ln ε, when the format resolves such a 1 - p) or p saturates to 1, whichever
    comes first. None in float16 (no guard: the gradient is NaN from saturation on).
    """
    eps = grad_epsilon(fmt)
    if eps == 0:
        return None
    return min(-math.log(eps), saturation_logit(fmt, fused))


def grad_nan_logit_neg(fmt: Format) -> float | None:
    """Target 1, float16 only (ε = 0): the logit below which p(1-p) is 0 and the gradient (p-y)/0·p(1-p) = inf·0 = NaN."""
    return underflow_logit(fmt) if grad_epsilon(fmt) == 0 else None


def grad_nan_logit_pos(fmt: Format, fused: bool = False) -> float | None:
    """Target 0, float16 only (ε = 0): the logit from which p = 1, p(1-p) = 0 and the gradient (p-y)/0·p(1-p) = inf·0 = NaN."""
    return saturation_logit(fmt, fused) if grad_epsilon(fmt) == 0 else None


def grad_inf_logit_neg(fmt: Format) -> float | None:
    """Target 1, float16 only (ε = 0): the logit below which the unguarded (p-1)/(p(1-p)) ≈ -1/p overflows to -inf.

    1/p rounds to inf once it reaches max + ulp(max)/2 (65520 in float16), so p <= 1/65520: x < ln(p/(1-p)) there
    (ignoring that p itself is rounded, which moves the logit by less than float16's spacing near -11). Further
    out, where p underflows to 0 (:func:`grad_nan_logit_neg`), -inf·0 becomes NaN.
    """
    if grad_epsilon(fmt) != 0:
        return None
    emax = math.frexp(fmt.max)[1] - 1
    p = 1.0 / (fmt.max + fmt.eps * 2.0**emax / 2)
    return math.log(p / (1 - p))


def predicted(fmt: Format, fused: bool = False) -> dict:
    """All of the above for one format, for the ``thresholds`` table (keys are stable for JSON)."""
    return {
        "grad_epsilon": grad_epsilon(fmt),
        "saturation": saturation_logit(fmt, fused),
        "underflow": underflow_logit(fmt),
        "grad_clamp_neg": denominator_clamp_logit_neg(fmt),
        "grad_clamp_pos": denominator_clamp_logit_pos(fmt, fused),
        "grad_nan_neg": grad_nan_logit_neg(fmt),
        "grad_nan_pos": grad_nan_logit_pos(fmt, fused),
        "grad_inf_neg": grad_inf_logit_neg(fmt),
    }
