"""The five softmax cross-entropy methods, each written once for both backends.

x is a row of C logits (the class axis is the last one), y the target: a class index, or a probability vector q
over the classes; w the per-class weight, ε the label smoothing. The loss of a row is torch's cross-entropy:

* class index y: (1-ε)·(-w[y]·log p[y]) + (ε/C)·(-Σ_c w_c·log p_c)   (the second term only for ε > 0)
* probabilities q: -Σ_c w_c·q'_c·log p_c,  q' = (1-ε)·q + ε/C

where log p = log softmax(x). The methods differ only in how they compute log p:

* ``naive``: log(exp(x) / Σ exp(x)), no shift: exp overflows from x = 11.09375 in float16, 88.72 in float32.
* ``log_of_softmax``: log(softmax(x)), softmax max-shifted (op by op in numpy, ``torch.softmax`` in torch): no
  overflow, but a class whose exp(x - max) underflows has p = 0 and log p = -inf.
* ``logsumexp``: x - m - log(Σ exp(x - m)), m = max(x): never log(0) for a finite row; the recommended form.
* ``torch_log_softmax_nll``: the real ``F.nll_loss(F.log_softmax(x), y, weight=w)`` (class indices, no label
  smoothing: F.nll_loss takes neither probabilities nor smoothing).
* ``torch_cross_entropy``: the real ``F.cross_entropy(x, y, weight=w, label_smoothing=ε)``.

Every function takes an operation set (``core/backends.py``), inputs rounded to the dtype (class indices as
integers, ε as the float the user gave, as torch takes it) and returns an
:class:`~stabcli.losses.base.Evaluation` with the per-row loss and the named steps. Nothing here prints; the
notes on the steps are in ``notes.py``.
"""

from __future__ import annotations

from typing import Callable

from stabcli.losses.base import Evaluation

METHOD_NAMES: tuple[str, ...] = (
    "naive",
    "log_of_softmax",
    "logsumexp",
    "torch_log_softmax_nll",
    "torch_cross_entropy",
)
TORCH_ONLY: frozenset[str] = frozenset({"torch_log_softmax_nll", "torch_cross_entropy"})
INPUT_KEYS: tuple[str, ...] = ("logits", "targets", "weight", "label_smoothing")  # the order every method takes


def is_index(t) -> bool:
    """Whether a target holds class indices (an integer array or tensor) rather than probabilities."""
    return str(getattr(t, "dtype", "")).endswith("int64")


def _assemble(ev: Evaluation, logp, ops, y, w, eps: float) -> Evaluation:
    """The loss of each row from its log-probabilities, as torch's cross_entropy assembles it (see the module)."""
    n_classes = logp.shape[-1]
    if is_index(y):
        log_py = ev.step("log p_y", ops.take(logp, y), "take", logp)
        wy = w[y]
        nll = ev.step("loss = -w_y·log p_y" if eps == 0 else "nll = -w_y·log p_y", -(wy * log_py), "mul", wy,
                      log_py)
        if eps == 0:
            ev.loss = nll
            return ev
        wlogp = w * logp
        smooth = ev.step("smooth = -Σ w·log p", -ops.sum_last(wlogp)[..., 0], "sum", wlogp)
        ev.loss = ev.step("loss = (1-ε)·nll + ε/C·smooth",
                          ops.scalar(1 - eps) * nll + ops.scalar(eps / n_classes) * smooth, "loss", nll, smooth)
        return ev
    q = y
    if eps != 0:
        q = ev.step("q' = (1-ε)·q + ε/C", y * ops.scalar(1 - eps) + ops.scalar(eps / n_classes), "arith", y)
    terms = ev.step("log p·q'·w" if eps != 0 else "log p·q·w", logp * q * w, "mul", q * w, logp)
    ev.loss = ev.step("loss = -Σ (log p·q·w)", -ops.sum_last(terms)[..., 0], "loss", terms)
    return ev


def naive(ops, x, y, w, eps) -> Evaluation:
    """log p = log(exp(x) / Σ exp(x)): the textbook softmax, no shift, no guard.

    exp(x) overflows to inf from x = 11.09375 in float16 (88.72 in float32), and then inf/inf = NaN; a logit far
    below the others has exp(x) = 0, p = 0 and log p = -inf.
    """
    return _assemble(*_naive_logp(ops, x), ops, y, w, float(eps))


def _naive_logp(ops, x) -> tuple[Evaluation, object]:
    ev = Evaluation(None)
    e = ev.step("exp(x)", ops.exp(x), "exp", x)
    total = ev.step("sum = Σ exp(x)", ops.sum_last(e), "sum", e)
    p = ev.step("p = exp(x)/sum", e / total, "div", e, total)
    return ev, ev.step("log(p)", ops.log(p), "log", p)


def log_of_softmax(ops, x, y, w, eps) -> Evaluation:
    """log p = log(softmax(x)), softmax max-shifted: exp(x - max) / Σ exp(x - max) (torch.softmax in torch).

    The shift keeps exp from overflowing, but a class whose probability is below half the smallest subnormal
    rounds to p = 0, and log(0) = -inf: a finite loss becomes inf (class index) or 0·(-inf) = NaN (a probability
    target with a zero entry).
    """
    return _assemble(*_log_of_softmax_logp(ops, x), ops, y, w, float(eps))


def _log_of_softmax_logp(ops, x) -> tuple[Evaluation, object]:
    ev = Evaluation(None)
    p = ev.step("p = softmax(x)", ops.softmax(x), "softmax", x)
    return ev, ev.step("log(p)", ops.log(p), "log", p)


def logsumexp(ops, x, y, w, eps) -> Evaluation:
    """log p = x - m - log(Σ exp(x - m)), m = max(x): the log-sum-exp form.

    Every exponent is <= 0 and the sum is >= 1, so nothing overflows and the log is never log(0) for a finite row.
    Its weak spot: for the top class log p = -log(1 + Σ small), and 1 + small rounds, so a tiny loss loses its
    relative accuracy (log1p would keep it).
    """
    return _assemble(*_logsumexp_logp(ops, x), ops, y, w, float(eps))


def _logsumexp_logp(ops, x) -> tuple[Evaluation, object]:
    ev = Evaluation(None)
    m = ev.step("m = max(x)", ops.max_last(x), "arith", x)
    z = ev.step("x - m", x - m, "sub", x, m)
    e = ev.step("exp(x - m)", ops.exp(z), "exp", z)
    total = ev.step("sum = Σ exp(x - m)", ops.sum_last(e), "sum", e)
    lse = ev.step("log(sum)", ops.log(total), "log", total)
    return ev, ev.step("log p = x - m - log(sum)", z - lse, "sub", z, lse)


def _torch_weight(w):
    """None when every class weight is 1 (torch then skips the multiply, which is exact anyway)."""
    return None if bool((w == 1).all()) else w


def _torch_target(ops, x, y):
    """The target as torch's loss functions take it: class indices of shape (N,), or probabilities of x's shape."""
    return y.expand(x.shape[:-1]) if is_index(y) else y.expand(x.shape)


def torch_log_softmax_nll(ops, x, y, w, eps) -> Evaluation:
    """The real F.nll_loss(F.log_softmax(x, dim=-1), y, weight=w): class indices only, no label smoothing."""
    import torch.nn.functional as F

    ev = Evaluation(None)
    logp = ev.step("log_softmax(x)", F.log_softmax(x, dim=-1), "torch_log_softmax", x)
    loss = F.nll_loss(logp, _torch_target(ops, x, y), weight=_torch_weight(w), reduction="none")
    ev.loss = ev.step("nll_loss(log p, y)", loss, "torch_nll", logp)
    return ev


def torch_cross_entropy(ops, x, y, w, eps) -> Evaluation:
    """The real F.cross_entropy(x, y, weight=w, label_smoothing=ε): log_softmax and the loss in torch's kernels."""
    import torch.nn.functional as F

    ev = Evaluation(None)
    loss = F.cross_entropy(x, _torch_target(ops, x, y), weight=_torch_weight(w), label_smoothing=float(eps),
                           reduction="none")
    ev.loss = ev.step("cross_entropy(x, y)", loss, "torch_ce", x)
    return ev


METHODS: dict[str, Callable[..., Evaluation]] = {
    "naive": naive,
    "log_of_softmax": log_of_softmax,
    "logsumexp": logsumexp,
    "torch_log_softmax_nll": torch_log_softmax_nll,
    "torch_cross_entropy": torch_cross_entropy,
}

# The methods that compute log p from the logits alone and then the loss from log p and the target: a sweep that
# asks for several targets on the same logits computes log p once (``evaluate_shared``).
LOG_P: dict[str, Callable[..., tuple[Evaluation, object]]] = {
    "naive": _naive_logp,
    "log_of_softmax": _log_of_softmax_logp,
    "logsumexp": _logsumexp_logp,
}


def evaluate_shared(method: str, ops, values: list, shared: dict) -> Evaluation:
    """``method`` (one of :data:`LOG_P`) on ``values`` (logits, target, weight, ε), log p taken from ``shared`` when an earlier target
    on the same logits (and operation set) computed it, and kept there otherwise. The steps are the same as
    :data:`METHODS`' (the log p steps are shared, the target's steps are this call's own)."""
    x, y, w, eps = values
    key = (method, ops.name, ops.fmt.name)
    if key not in shared:
        shared[key] = LOG_P[method](ops, x)
    ev, logp = shared[key]
    return _assemble(Evaluation(None, steps=list(ev.steps)), logp, ops, y, w, float(eps))
