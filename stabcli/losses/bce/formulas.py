"""The six binary cross-entropy methods of DESIGN.md, each written once for both backends.

x is the logit, y the target in [0, 1], w the per-element weight, pw the pos_weight, lw = 1 + (pw - 1)·y.
Every function takes an operation set from ``backends.py`` and inputs already rounded to the dtype, and returns
an :class:`~stabcli.losses.base.Evaluation`: the per-element loss and the named intermediate steps, so that a trace can show what
each operation did. Nothing here prints; the notes on the steps are written in ``notes.py``.

Where the -100 clamp lives: :func:`clamped` (and, inside torch, ``torch_bce``), with ``LOG_CLAMP`` below.
"""

from __future__ import annotations

from typing import Callable

from stabcli.losses.base import Evaluation

LOG_CLAMP = -100.0  # torch.nn.BCELoss clamps both logs to >= -100 (documented; aten/src/ATen/native/Loss.cpp)

METHOD_NAMES: tuple[str, ...] = (
    "naive",
    "clamped",
    "logsumexp",
    "softplus",
    "torch_bce",
    "torch_bce_with_logits",
)
TORCH_ONLY: frozenset[str] = frozenset({"torch_bce", "torch_bce_with_logits"})
INPUT_KEYS: tuple[str, ...] = ("logits", "targets", "weight", "pos_weight")  # the order every method takes


def naive(ops, x, y, w, pw) -> Evaluation:
    """p = sigmoid(x); loss = -w·(pw·y·log p + (1-y)·log(1-p)), exactly as the seed articles write it.

    No guard: once sigmoid rounds to exactly 1.0 (or 0.0) a log is -inf, and a zero target weight turns
    0·(-inf) into NaN.
    """
    ev = Evaluation(None)
    p = ev.step("p = sigmoid(x)", ops.sigmoid(x), "sigmoid", x)
    return naive_from_p(ev, ops, p, y, w, pw)


def naive_from_p(ev: Evaluation, ops, p, y, w, pw) -> Evaluation:
    """:func:`naive` from the probability p on: -w·(pw·y·log p + (1-y)·log(1-p)) (``--probs`` starts here)."""
    log_p = ev.step("log(p)", ops.log(p), "log", p)
    one_minus_p = ev.step("1 - p", 1 - p, "sub", p)
    log_1mp = ev.step("log(1 - p)", ops.log(one_minus_p), "log", one_minus_p)
    pos = ev.step("pw·y·log(p)", (pw * y) * log_p, "mul", pw * y, log_p)
    neg = ev.step("(1-y)·log(1-p)", (1 - y) * log_1mp, "mul", 1 - y, log_1mp)
    ev.loss = ev.step("loss = -w·(sum)", -(w * (pos + neg)), "loss", pos, neg)
    return ev


def _bce_unclamped(ops, log_p, log_1mp, y, w, pw):
    """torch's BCELoss rule without its clamp, w·((y-1)·log1p(-p) - pw·y·log p): what the loss would have been."""
    return ((y - 1) * log_1mp - (pw * y) * log_p) * w


def clamped(ops, x, y, w, pw) -> Evaluation:
    """The same p, each log clamped to >= -100: torch.nn.BCELoss's documented rule, written out by hand.

    (y-1)·max(log1p(-p), -100) - pw·y·max(log p, -100), then times w, in the order of torch's kernel, so that under
    the torch backend it equals ``torch_bce`` bit for bit. The clamp turns log(0) = -inf into -100, so 0·log(0)
    becomes 0·(-100) = 0: no NaN, but a loss of at most 100·pw·w however wrong the prediction.
    """
    ev = Evaluation(None)
    p = ev.step("p = sigmoid(x)", ops.sigmoid(x), "sigmoid", x)
    return clamped_from_p(ev, ops, p, y, w, pw)


def clamped_from_p(ev: Evaluation, ops, p, y, w, pw) -> Evaluation:
    """:func:`clamped` from the probability p on: BCELoss's rule, each log clamped at -100 (``--probs``)."""
    log_p = ev.step("log(p)", ops.bce_log(p), "log", p)
    log_1mp = ev.step("log1p(-p)", ops.bce_log1p(-p), "log", -p)
    floor = ops.const(LOG_CLAMP)
    c_log_p = ev.step("max(log p, -100)", ops.maximum(log_p, floor), "clamp", log_p)
    c_log_1mp = ev.step("max(log1p(-p), -100)", ops.maximum(log_1mp, floor), "clamp", log_1mp)
    # a third operand, the log before the clamp, lets a note tell 0·(-100) standing in for 0·(-inf) from a plain 0
    neg = ev.step("(y-1)·max(log1p)", (y - 1) * c_log_1mp, "mul", y - 1, c_log_1mp, log_1mp)
    pos = ev.step("pw·y·max(log p)", (pw * y) * c_log_p, "mul", pw * y, c_log_p, log_p)
    ev.loss = ev.step("loss = w·(diff)", (neg - pos) * w, "loss", neg, pos)
    ev.unclamped = _bce_unclamped(ops, log_p, log_1mp, y, w, pw)
    ev.clamp_changed = _differs(ops, ev.loss, ev.unclamped)
    return ev


def logsumexp(ops, x, y, w, pw) -> Evaluation:
    """The seed-001 form: m = max(-x, 0); loss = w·((1-y)·x + lw·(m + log(exp(-m) + exp(-x-m)))).

    Both exponents are <= 0, so nothing overflows; but for y = 0 and x << 0 the sum (1-y)·x + (m + log(...))
    subtracts nearly equal numbers and loses relative accuracy.
    """
    ev = Evaluation(None)
    lw = ev.step("lw = 1 + (pw-1)·y", 1 + (pw - 1) * y, "arith", pw, y)
    m = ev.step("m = max(-x, 0)", ops.maximum(-x, ops.const(0)), "arith", x)
    e1 = ev.step("exp(-m)", ops.exp(-m), "exp", -m)
    e2 = ev.step("exp(-x-m)", ops.exp(-x - m), "exp", -x - m)
    lse = ev.step("lse = m+log(sum)", m + ops.log(e1 + e2), "log", e1 + e2)
    lin = ev.step("(1-y)·x", (1 - y) * x, "mul", 1 - y, x)
    ev.loss = ev.step("loss", w * (lin + lw * lse), "loss", lin, lw * lse)
    return ev


def _softplus(ops, t):
    """softplus(t) = max(t, 0) + log1p(exp(-|t|)): exp's argument is <= 0, so it never overflows."""
    return ops.maximum(t, ops.const(0)) + ops.log1p(ops.exp(-ops.abs(t)))


def _weighted(ops, coef, value):
    """coef·value, where a zero coefficient contributes exactly 0 (the limit), even against an infinite value."""
    return ops.where(coef == 0, ops.const(0) * coef, coef * value)


def softplus(ops, x, y, w, pw) -> Evaluation:
    """loss = w·(pw·y·softplus(-x) + (1-y)·softplus(x)): the recommended form.

    A sum of two non-negative terms, so nothing cancels, and exp's argument is never positive. A zero
    coefficient contributes exactly 0, which gives the exact limits at x = ±inf (loss(+inf, 1) = 0).
    """
    ev = Evaluation(None)
    sp_neg = ev.step("softplus(-x)", _softplus(ops, -x), "softplus", -x)
    sp_pos = ev.step("softplus(x)", _softplus(ops, x), "softplus", x)
    pos = ev.step("pw·y·softplus(-x)", _weighted(ops, pw * y, sp_neg), "mul", pw * y, sp_neg)
    neg = ev.step("(1-y)·softplus(x)", _weighted(ops, 1 - y, sp_pos), "mul", 1 - y, sp_pos)
    ev.loss = ev.step("loss = w·(sum)", _weighted(ops, w, pos + neg), "loss", pos, neg)
    return ev


def _shape(*tensors) -> tuple[int, ...]:
    """The broadcast shape of torch tensors (numpy's rule, which is torch's; torch.broadcast_shapes imports sympy)."""
    import numpy as np

    return tuple(np.broadcast_shapes(*(tuple(t.shape) for t in tensors)))


def _to(t, shape):
    """``t`` at ``shape``: itself when it has it already (as a user's tensor would), else expanded."""
    return t if tuple(t.shape) == shape else t.expand(shape)


def torch_bce(ops, x, y, w, pw) -> Evaluation:
    """The real torch.nn.functional.binary_cross_entropy(torch.sigmoid(x), y) (no pos_weight), called as a user
    would: ``weight=`` only when the weights are not all 1, the reduction done by torch itself."""
    ev = Evaluation(None)
    p = ev.step("p = torch.sigmoid(x)", ops.sigmoid(x), "sigmoid", x)
    return torch_bce_from_p(ev, ops, p, y, w, pw)


def torch_bce_from_p(ev: Evaluation, ops, p, y, w, pw) -> Evaluation:
    """The real F.binary_cross_entropy(p, y) on the probability p, called as a user would (``--probs`` calls it
    directly)."""
    import torch.nn.functional as F

    torch = ops.torch
    # torch refuses a NaN probability (RuntimeError "all elements of input should be between 0 and 1"); those
    # elements are evaluated at 0.5 and reported as NaN, what any NaN logit gives elsewhere.
    nan = torch.isnan(p)
    has_nan = bool(nan.any())
    shape = tuple(p.shape)
    # With every weight 1 no weight is passed: torch then skips its multiply by 1 (exact anyway) and the
    # torch.broadcast_shapes call that imports sympy, which would add 0.3 s to every single-logit compare.
    weight = None if bool((w == 1).all()) else _to(w, shape)
    probs = torch.where(nan, 0.5, p) if has_nan else p
    target = _to(y, shape)

    def call(reduction: str):
        return F.binary_cross_entropy(probs, target, weight=weight, reduction=reduction)

    loss = call("none")
    ev.loss = ev.step("BCELoss(p, y)", torch.where(nan, torch.nan, loss) if has_nan else loss, "torch_bce", p)
    ev.library_reduce = None if has_nan else call  # with a NaN the reduced loss is NaN: ops.reduce says so
    if loss.dtype != p.dtype:  # autocast ran the kernel in float32: the rule without the clamp in float32 too
        p, y, w, pw = (t.to(loss.dtype) for t in (p, y, w, pw))
    ev.unclamped = _bce_unclamped(ops, ops.bce_log(p), ops.bce_log1p(-p), y, w, pw)
    ev.clamp_changed = _differs(ops, ev.loss, ev.unclamped)
    return ev


def torch_bce_with_logits(ops, x, y, w, pw) -> Evaluation:
    """The real torch.nn.functional.binary_cross_entropy_with_logits(x, y), called as a user would: ``weight=``
    and ``pos_weight=`` only when they are not all 1, the reduction done by torch itself.

    Passing tensors of ones is not the same call: torch then takes its pos_weight formula, whose backward rounds
    differently (float32, x = 0, y = 0.3: 0.19999995827674866 where the plain call gives 0.19999998807907104, the
    correctly rounded 0.2 - 0 = sigmoid(0) - 0.3).
    """
    import torch.nn.functional as F

    ev = Evaluation(None)
    shape = _shape(x, y, w, pw)
    extra = {}
    if not bool((w == 1).all()):
        extra["weight"] = _to(w, shape)
    if not bool((pw == 1).all()):
        extra["pos_weight"] = _to(pw, shape)
    logits, target = _to(x, shape), _to(y, shape)

    def call(reduction: str):
        return F.binary_cross_entropy_with_logits(logits, target, reduction=reduction, **extra)

    ev.loss = ev.step("BCEWithLogits(x, y)", call("none"), "torch_bcewl")
    ev.library_reduce = call
    return ev


def _differs(ops, a, b):
    """Where a and b differ as values (NaN against NaN counts as equal)."""
    a_np, b_np = ops.to_numpy(a), ops.to_numpy(b)
    return ~((a_np == b_np) | ((a_np != a_np) & (b_np != b_np)))


METHODS: dict[str, Callable[..., Evaluation]] = {
    "naive": naive,
    "clamped": clamped,
    "logsumexp": logsumexp,
    "softplus": softplus,
    "torch_bce": torch_bce,
    "torch_bce_with_logits": torch_bce_with_logits,
}
