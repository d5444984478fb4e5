"""Ground truth for softmax cross-entropy: exact losses and gradients in mpmath, and the float64 forms sweeps use.

Every method's loss of a row is Σ_c a_c·(-log p_c), with p = softmax(x) and non-negative coefficients a_c:

* class index y: a_c = (1-ε)·w_y·[c = y] + (ε/C)·w_c
* probabilities q: a_c = w_c·((1-ε)·q_c + ε/C)

and -log p_c = (m - x_c) + log(Σ_j exp(x_j - m)), m = max(x), is a sum of two non-negative numbers: nothing
cancels. d loss / d x_c = A·p_c - a_c with A = Σ_c a_c (softmax minus the target distribution, scaled). The exact
values are taken at the inputs as rounded to the dtype, with ε as given, at ``PRECISION_BITS`` = 160 bits.
Limits are exact: a +inf logit takes all the probability (shared among tied +inf logits), a -inf logit none
(-log p = inf), and a zero coefficient contributes exactly 0 (0·inf = 0, the limit); a row of -inf only, or a
NaN, gives NaN.

mpmath is imported inside the functions, so that ``stabcli --help`` never loads it.
"""

from __future__ import annotations

import math

import numpy as np

from stabcli.core.exact import PRECISION_BITS, to_float64_nearest, to_float64_odd


def _mp_coefficients(mp, target, weight, eps):
    n = len(weight)
    w = [mp.mpf(float(v)) for v in weight]
    e = mp.mpf(float(eps))
    if np.ndim(target) == 0:
        y = int(target)
        return [(1 - e) * w[c] * (1 if c == y else 0) + e / n * w[c] for c in range(n)]
    return [w[c] * ((1 - e) * mp.mpf(float(target[c])) + e / n) for c in range(n)]


def _mp_softmax(mp, x):
    """(p_c, -log p_c) per class in mpmath, with the exact limits at infinite logits; None for a NaN row."""
    if any(math.isnan(v) for v in x):
        return None
    top = [c for c, v in enumerate(x) if v == math.inf]
    if top:
        p = [mp.one / len(top) if c in top else mp.zero for c in range(len(x))]
        return p, [mp.log(len(top)) if c in top else mp.inf for c in range(len(x))]
    finite = [mp.mpf(v) for v in x if v != -math.inf]
    if not finite:
        return None  # every logit -inf: softmax is 0/0
    m = max(finite)
    lse = mp.log(mp.fsum(mp.exp(v - m) for v in finite))
    nlp = [mp.inf if v == -math.inf else (m - mp.mpf(v)) + lse for v in x]
    p = [mp.zero if v == mp.inf else mp.exp(-v) for v in nlp]
    return p, nlp


def exact_row(x, target, weight, eps: float = 0.0):
    """The exact loss of one row and its gradient d loss / d x_c per class, as mpmath numbers (NaN for NaN)."""
    import mpmath

    with mpmath.workprec(PRECISION_BITS):
        mp = mpmath.mp
        x = [float(v) for v in np.ravel(x)]
        a = _mp_coefficients(mp, target, weight, eps)
        sm = _mp_softmax(mp, x)
        if sm is None:
            return mp.nan, [mp.nan] * len(x)
        p, nlp = sm
        loss = mp.fsum(mp.zero if ac == 0 else ac * v for ac, v in zip(a, nlp))
        total = mp.fsum(a)
        return loss, [total * pc - ac for pc, ac in zip(p, a)]


def mean_denominator(targets, weight) -> float | None:
    """What torch's mean divides the summed row losses by: Σ w[y] over the rows for class indices, the number of
    rows for probabilities (exact: a sum of values of the dtype, taken in mpmath)."""
    import mpmath

    targets = np.asarray(targets)
    if targets.dtype.kind in "iu":
        with mpmath.workprec(PRECISION_BITS):
            return mpmath.fsum(mpmath.mpf(float(weight[int(t)])) for t in targets.reshape(-1))
    return mpmath.mpf(int(targets.shape[0]))


def exact_reference(logits, targets, weight, eps, reduction: str):
    """(losses: per row, or the reduced value; gradient d (reduced loss) / d x per logit, row-major) in mpmath."""
    import mpmath

    logits = np.asarray(logits, dtype=np.float64)
    losses, grads = [], []
    for n in range(logits.shape[0]):
        loss, grad = exact_row(logits[n], targets[n], weight, eps)
        losses.append(loss)
        grads.extend(grad)
    if reduction == "none":
        return losses, grads
    with mpmath.workprec(PRECISION_BITS):
        total = mpmath.fsum(losses)
        if reduction == "sum":
            return [total], grads
        d = mean_denominator(targets, weight)
        if d == 0:
            return [mpmath.mp.nan], [mpmath.mp.nan] * len(grads)
        return [total / d], [g / d for g in grads]


# --- the fast, vectorised reference used by sweeps --------------------------------------------------------------
#
# A sweep evaluates rows x = [b + g, b, ..., b] at tens of thousands of gaps g. mpmath costs ~0.1 ms a row, so for
# float16, bfloat16 and float32 the loss is computed in float64 instead, in a form with no cancellation:
#
# * m = max(x); z_c = x_c - m <= 0 (one rounding at most); rest = Σ_{c ≠ argmax} exp(z_c), a sum of C-1 positive
#   terms each within an ulp or two; -log p_c = -z_c + log1p(rest): two non-negative terms, so within a few ulps.
# * the loss Σ a_c·(-log p_c) adds non-negative terms with non-negative coefficients: within ~10 float64 ulps,
#   a relative error below 2^-49. Rounded into a format of at most 24 bits it is the correctly rounded exact value
#   unless that lies within 2^-49 (relative) of a rounding boundary of the format (tests/test_softmax.py checks
#   this against mpmath on every finite float16 value).
# * the gradient with respect to x_0 (the swept logit), A·p_0 - a_0, is written as (A - a_0)·p_0 - a_0·(1 - p_0)
#   with 1 - p_0 = Σ_{c≠0} exp(z_c) / (1 + rest): for a hard target one of the two terms is 0, so nothing cancels;
#   a soft target can cancel near the root. As for BCE (``bce/reference.py``), a bound 2^-47·(|t1| + |t2|)
#   certifies the rounding into the dtype, and mpmath decides the few points it cannot certify.
# Rows holding inf or NaN take mpmath's limits. float64 sweeps use mpmath at every point.

FAST_REL = 2.0**-47
FAST_ABS = 2.0**-1060


def _columns_max(x: np.ndarray):
    """The largest value of each row and where it is (the first on ties), one column at a time: for a handful of
    classes, C element-wise passes are several times faster than numpy's reduction over a short last axis."""
    m, top = x[:, 0].copy(), np.zeros(x.shape[0], dtype=np.intp)
    for c in range(1, x.shape[1]):
        bigger = x[:, c] > m
        m = np.where(bigger, x[:, c], m)
        top[bigger] = c
    return m, top


def _fast_parts(x: np.ndarray):
    """For finite rows (points, C): (z = x - max as columns, exp(z) as columns with the top class's set to 0,
    rest = Σ_{c≠argmax} exp(z_c), argmax)."""
    m, top = _columns_max(x)
    z = [x[:, c] - m for c in range(x.shape[1])]
    e = [np.where(top == c, 0.0, np.exp(zc)) for c, zc in enumerate(z)]
    rest = e[0]
    for ec in e[1:]:
        rest = rest + ec
    return z, e, rest, top


def _finite_rows(x: np.ndarray) -> np.ndarray:
    finite = np.isfinite(x[:, 0])
    for c in range(1, x.shape[1]):
        finite &= np.isfinite(x[:, c])
    return finite


def fast_loss(x: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Σ_c a_c·(-log p_c) in float64 for rows ``x`` (points, C) and coefficients ``a`` (C,); NaN for a row with a
    non-finite logit (callers take mpmath's limits there)."""
    with np.errstate(all="ignore"):
        finite = _finite_rows(x)
        z, _, rest, _ = _fast_parts(x if finite.all() else np.where(finite[:, None], x, 0.0))
        lp1 = np.log1p(rest)
        loss = np.zeros(x.shape[0])
        for c, zc in enumerate(z):
            if a[c] != 0:  # a zero coefficient contributes exactly 0, even against an infinite -log p
                loss = loss + a[c] * (lp1 - zc)
        loss[~finite] = np.nan
    return loss


def fast_grad0(x: np.ndarray, a: np.ndarray):
    """d loss / d x_0 = (A - a_0)·p_0 - a_0·(1 - p_0) in float64, and a bound on its error (see above)."""
    with np.errstate(all="ignore"):
        finite = _finite_rows(x)
        z, e, rest, top = _fast_parts(x if finite.all() else np.where(finite[:, None], x, 0.0))
        denom = 1.0 + rest
        e0 = np.where(top == 0, 1.0, e[0])  # exp(z_0)
        # Σ_{c≠0} exp(z_c): rest itself when x_0 is the largest, else the top class's 1 and the others but x_0
        others = np.where(top == 0, rest, sum(e[1:]) + 1.0)
        t1 = a[1:].sum() * (e0 / denom)
        t2 = a[0] * (others / denom)
        grad = t1 - t2
        bound = FAST_REL * (np.abs(t1) + np.abs(t2)) + FAST_ABS * (1.0 + a.sum())
        grad[~finite] = np.nan
    return grad, bound


def sweep_reference(x: np.ndarray, bits: int, target, weight, eps, cache: dict | None = None):
    """The reference loss of sweep rows ``x`` (float64 (points, C), values of a dtype ``bits`` wide): (nearest,
    for_rounding), as ``bce.reference.sweep_reference``. ``cache`` keeps mpmath's answers by the row's first logit."""
    cache = {} if cache is None else cache
    a = np.asarray(_float_coefficients(x.shape[-1], target, weight, eps))

    def exact(i: int) -> float:
        key = tuple(x[i])
        if key not in cache:
            cache[key] = to_float64_nearest(exact_row(x[i], target, weight, eps)[0])
        return cache[key]

    if bits == 64:
        ref = np.array([exact(i) for i in range(x.shape[0])], dtype=np.float64)
        return ref, ref
    ref = fast_loss(x, a)
    for i in np.flatnonzero(~_finite_rows(x)):
        ref[i] = exact(int(i))
    return ref, ref


def sweep_grad_reference(x: np.ndarray, fmt, target, weight, eps, cache: dict | None = None):
    """The reference d loss / d x_0 of sweep rows ``x``: (nearest, for_rounding), certified as
    ``bce.reference.sweep_grad_reference`` (mpmath where the float64 bound cannot decide the rounding)."""
    cache = {} if cache is None else cache

    def exact_pair(i: int) -> tuple[float, float]:
        key = tuple(x[i])
        if key not in cache:
            g = exact_row(x[i], target, weight, eps)[1][0]
            nearest = to_float64_nearest(g)
            cache[key] = (nearest, nearest if fmt.bits == 64 else to_float64_odd(g))
        return cache[key]

    if fmt.bits == 64:
        ref = np.array([exact_pair(i)[0] for i in range(x.shape[0])], dtype=np.float64)
        return ref, ref
    from stabcli.core.formats import to_float64

    a = np.asarray(_float_coefficients(x.shape[-1], target, weight, eps))
    fast, bound = fast_grad0(x, a)
    with np.errstate(all="ignore"):
        lo, hi = to_float64(fmt.round(fast - bound)), to_float64(fmt.round(fast + bound))
    unsure = np.flatnonzero(~(lo == hi))  # NaN compares unequal: non-finite rows go to mpmath too
    nearest, for_rounding = fast.copy(), fast.copy()
    for i in unsure:
        nearest[i], for_rounding[i] = exact_pair(int(i))
    return nearest, for_rounding


def _float_coefficients(n_classes: int, target, weight, eps) -> list[float]:
    """The a_c in float64 (exact for a hard target with unit weights; a few ulps otherwise, inside the bounds)."""
    w = np.broadcast_to(np.asarray(weight, dtype=np.float64), (n_classes,))
    if np.ndim(target) == 0:
        y = int(target)
        return [(1 - eps) * w[c] * (c == y) + eps / n_classes * w[c] for c in range(n_classes)]
    q = np.asarray(target, dtype=np.float64)
    return [w[c] * ((1 - eps) * q[c] + eps / n_classes) for c in range(n_classes)]


def exact_grad0_points(x: np.ndarray, target, weight, eps) -> np.ndarray:
    """d loss / d x_0 at each row from mpmath, rounded to float64 (figures: a few hundred rows)."""
    return np.array([to_float64_nearest(exact_row(row, target, weight, eps)[1][0]) for row in x])
