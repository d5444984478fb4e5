"""Gradients d loss / d x: forward-mode dual numbers for numpy, autograd for torch.

A family's formulas are written once against an operation set, so the same code runs on
:class:`Dual` numbers here. A :class:`Dual` carries a value and its derivative with respect to the logit, both
arrays of the dtype, and every operation rounds both to the dtype, one rounding per numpy operation. That is
"the derivative each formula yields when differentiated op by op in the dtype". The rules, with v the result:

==========================  =====================================================================
operation                   derivative (each product, sum and quotient rounded to the dtype)
==========================  =====================================================================
a ± b, -a                   da ± db, -da
a·b                         da·b + a·db
a / b                       (da - v·db) / b   (da / b when b is a constant; the quotient rule written so
                            that no b² is formed: 1/(1 + exp(50)) would square to inf in float32)
exp(a)                      v·da
log(a), log1p(a)            da / a, da / (1 + a)
abs(a)                      sign(a)·da  (0 at a = 0, as torch's abs backward)
maximum(a, b)               da where a > b, db where a < b (selected, never multiplied by 0), (da + db)/2
                            at a tie as torch.maximum's backward; so d/dx max(log p, -100) is exactly 0
                            where the -100 clamp fired, even where d log p is inf
where(c, a, b)              where(c, da, db)
sigmoid(a)                  op by op: 1/(1 + exp(-a)) differentiated by the rules above
sum over the last axis      the classes added one at a time, each sum by the rule for a + b
max over the last axis      0: the shift of a stable softmax is held constant (jax.nn.logsumexp's
                            stop_gradient); its derivative cancels in exact arithmetic
a[..., index]               the derivative of the selected entry
softmax(a)                  op by op: exp(a - max) / sum(exp(a - max)) by the rules above
==========================  =====================================================================

Targets, weights and pos_weight are constants: plain arrays, which contribute no derivative at all (as
tensors without ``requires_grad`` in torch), so 0·inf never appears in a derivative of a constant.

Each loss element depends only on its own logit, so one forward pass with derivative 1 in every element gives
every d loss_i / d x_i at once: :func:`differentiate` is vectorised. Under torch the gradient is ``x.grad`` after
``backward()`` through each method as written, the real ``torch_bce`` (whose backward is
(p-y)/max(p(1-p), 1e-12), chained through ``torch.sigmoid``'s p(1-p)) and ``torch_bce_with_logits`` included.
With reduction mean the gradient is divided by the number of elements, with sum it is not.

Where numpy's forward mode and torch's reverse mode legitimately differ (pinned in tests/test_grad.py):

* the sigmoid: numpy differentiates 1/(1+exp(-x)) and takes the derivative from exp(-x); torch.sigmoid's backward
  is p(1-p) from the rounded p. Where 1 - p cancels (naive, clamped at x >> 0) the two differ by the forward's
  cancellation error, ~eps·exp(|x|) relative.
* the clamp: forward mode *selects* the branch, so max(log1p(-p), -100) has derivative exactly 0 where the clamp
  fired. Reverse mode sends 0 back through the clamp and then log1p's (xlog1py's) backward divides it by
  1 - p = 0: 0/0 = NaN. So the hand-written ``clamped`` has gradient 0 under numpy and NaN under torch at p = 1.
* summation order: logsumexp's derivative cancels (1 - e2/(e1+e2)); the two modes round that differently.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stabcli.core.backends import NumpyOps, numpy_reduce
from stabcli.core.formats import Format


class Dual:
    """A value and its derivative d/dx, both arrays of one dtype."""

    __array_ufunc__ = None  # numpy defers to our reflected operators: np.float16(1) - dual calls __rsub__
    __slots__ = ("val", "der")

    def __init__(self, val, der):
        self.val = val
        self.der = der

    @property
    def shape(self):
        return np.shape(self.val)

    def __getitem__(self, key):
        return Dual(self.val[key], np.broadcast_to(self.der, np.shape(self.val))[key])

    # arithmetic -------------------------------------------------------------------------------------------
    def __add__(self, other):
        if isinstance(other, Dual):
            return Dual(self.val + other.val, self.der + other.der)
        return Dual(self.val + other, self.der)

    __radd__ = __add__

    def __sub__(self, other):
        if isinstance(other, Dual):
            return Dual(self.val - other.val, self.der - other.der)
        return Dual(self.val - other, self.der)

    def __rsub__(self, other):
        return Dual(other - self.val, -self.der)

    def __neg__(self):
        return Dual(-self.val, -self.der)

    def __mul__(self, other):
        if isinstance(other, Dual):
            return Dual(self.val * other.val, self.der * other.val + self.val * other.der)
        return Dual(self.val * other, self.der * other)

    __rmul__ = __mul__

    def __truediv__(self, other):
        if isinstance(other, Dual):
            v = self.val / other.val
            return Dual(v, (self.der - v * other.der) / other.val)
        return Dual(self.val / other, self.der / other)

    def __rtruediv__(self, other):  # constant / dual
        v = other / self.val
        return Dual(v, -(v * self.der) / self.val)

    # comparisons act on the value (the formulas only compare constants, but keep them honest) ------------
    def __eq__(self, other):  # type: ignore[override]
        return self.val == _val(other)

    def __ne__(self, other):  # type: ignore[override]
        return self.val != _val(other)

    def __lt__(self, other):
        return self.val < _val(other)

    def __le__(self, other):
        return self.val <= _val(other)

    def __gt__(self, other):
        return self.val > _val(other)

    def __ge__(self, other):
        return self.val >= _val(other)

    __hash__ = None  # type: ignore[assignment]


def _val(a):
    return a.val if isinstance(a, Dual) else a


class DualOps(NumpyOps):
    """NumpyOps on :class:`Dual` numbers: the numpy backend's values, plus their op-by-op derivatives.

    Constants (target, weight, pos_weight; ``array`` and ``const``) are NumpyOps' plain arrays with no derivative;
    every operation a formula applies to the logit is overridden below for duals.
    """

    def variable(self, values_in_dtype: np.ndarray) -> Dual:
        """The logit: derivative 1 in every element."""
        val = np.array(values_in_dtype, dtype=self.dtype)
        return Dual(val, np.ones_like(val))

    def to_numpy(self, a) -> np.ndarray:
        return np.asarray(_val(a), dtype=self.dtype)

    def derivative(self, a) -> np.ndarray:
        """d a / d x (0 for a constant)."""
        if isinstance(a, Dual):
            return np.asarray(a.der, dtype=self.dtype)
        return np.zeros(np.shape(a), dtype=self.dtype)

    def _cast(self, a):
        return np.asarray(a, dtype=self.dtype)

    def exp(self, a):
        if not isinstance(a, Dual):
            return np.exp(a)
        v = np.exp(a.val)
        return Dual(v, self._cast(v * a.der))

    def log(self, a):
        if not isinstance(a, Dual):
            return np.log(a)
        return Dual(np.log(a.val), self._cast(a.der / a.val))

    def log1p(self, a):
        if not isinstance(a, Dual):
            return np.log1p(a)
        return Dual(np.log1p(a.val), self._cast(a.der / (self.const(1) + a.val)))

    def abs(self, a):
        if not isinstance(a, Dual):
            return np.abs(a)
        return Dual(np.abs(a.val), self._cast(np.sign(a.val) * a.der))

    def maximum(self, a, b):
        if not isinstance(a, Dual) and not isinstance(b, Dual):
            return np.maximum(a, b)
        av, bv = _val(a), _val(b)
        da, db = self.derivative(a), self.derivative(b)
        v = np.maximum(av, bv)
        # The derivative follows the chosen branch (selected, not multiplied by 0, so a clamp that fired
        # gives exactly 0 even where the other branch's derivative is inf); a tie splits it as
        # torch.maximum's backward does; NaN passes both.
        half = self.const(0.5)
        with np.errstate(all="ignore"):
            der = np.where(av > bv, da, np.where(av < bv, db, np.where(av == bv, half * (da + db), da + db)))
        return Dual(v, self._cast(der))

    def where(self, cond, a, b):
        if not isinstance(a, Dual) and not isinstance(b, Dual):
            return np.where(cond, a, b).astype(self.dtype)
        v = np.where(cond, _val(a), _val(b)).astype(self.dtype)
        return Dual(v, np.where(cond, self.derivative(a), self.derivative(b)).astype(self.dtype))

    def sigmoid(self, x):
        """1/(1+exp(-x)) op by op, as NumpyOps, so the derivative is that of the written formula."""
        return self.const(1) / (self.const(1) + self.exp(-x))

    bce_log = log
    bce_log1p = log1p

    def max_last(self, a):
        """The shift of a stable softmax, a constant (derivative 0): its derivative cancels in exact arithmetic, as
        jax.nn.logsumexp's stop_gradient has it (and TorchOps.max_last)."""
        return NumpyOps.max_last(self, _val(a))

    def take(self, a, idx):
        if not isinstance(a, Dual):
            return NumpyOps.take(self, a, idx)
        return Dual(NumpyOps.take(self, a.val, idx), NumpyOps.take(self, np.broadcast_to(a.der, a.shape), idx))

    def reduce(self, loss, reduction: str):
        """The reduced value (as NumpyOps.reduce); the per-element gradient is :func:`_reduce_grad`'s job."""
        return numpy_reduce(_val(loss), reduction, self.fmt)


@dataclass
class Gradient:
    """d (reduced loss) / d x_i per element (array of the dtype) and where a clamp changed it."""

    grad: np.ndarray
    clamped: np.ndarray  # bool: a clamp of the method changed the gradient here
    details: dict  # float64 arrays a family's trace shows (BCE: p, p(1-p), the denominator ...)


def prepare(arrays: dict, keys: tuple[str, ...], fmt: Format, broadcast: bool = True):
    """The inputs of a formula in ``keys`` order as arrays of ``fmt`` (a missing one is 1), and their shape.

    ``broadcast=False`` keeps every input but the first (the variable) in its own shape: a sweep passes the
    constants as 0-d arrays, so that an operation on them alone is done once, not once per logit.
    """
    full = {k: np.asarray(arrays[k], dtype=fmt.np_dtype) if k in arrays else np.ones((), dtype=fmt.np_dtype)
            for k in keys}
    shape = np.broadcast_shapes(*(a.shape for a in full.values()))
    if not broadcast:
        return [np.ascontiguousarray(full[keys[0]]), *(full[k] for k in keys[1:])], shape
    return [np.ascontiguousarray(np.broadcast_to(full[k], shape)) for k in keys], shape


def _reduce_grad(der: np.ndarray, reduction: str, fmt: Format) -> np.ndarray:
    if reduction == "mean":
        return (der / fmt.np_dtype.type(max(der.size, 1))).astype(fmt.np_dtype)
    return der


def numpy_grad(fmt: Format, formula, x, constants, reduction: str = "none"):
    """Forward mode: (d loss_i / d x_i in the dtype, the Evaluation) of ``formula(ops, x, *constants)``."""
    ops = DualOps(fmt)
    with np.errstate(all="ignore"):
        ev = formula(ops, ops.variable(x), *constants)
        der = np.broadcast_to(ops.derivative(ev.loss), x.shape).copy()
        return _reduce_grad(der, reduction, fmt), ev


def torch_grad(fmt: Format, formula, x, constants, reduction: str = "none"):
    """Reverse mode: x.grad after backward through ``formula(ops, x, *constants)`` on real torch kernels."""
    import torch

    from stabcli.core.backends import make_ops

    ops = make_ops("torch", fmt)  # TorchOps, or TorchFloat8Ops in float8
    xt = ops.array(x).requires_grad_(True)
    consts = [ops.array(a) for a in constants]
    with torch.enable_grad(), np.errstate(all="ignore"):
        with ops.context():  # autocast around the forward pass only, as torch's docs have it
            ev = formula(ops, xt, *consts)
            loss = ev.reduced(ops, reduction)  # a library method reduces (and differentiates) as the library does
        if loss.requires_grad:
            # d(sum)/d(loss_i) is exactly 1, so this is backward(ones) per element; passing grad_outputs instead
            # makes torch check shapes symbolically, which imports sympy (0.4 s on every compare).
            (loss if loss.dim() == 0 else loss.sum()).backward()
    grad = xt.grad if xt.grad is not None else torch.zeros_like(xt)
    return np.array(ops.to_numpy(grad), dtype=fmt.np_dtype), ev


def differentiate(backend: str, fmt: Format, formula, x, constants, reduction: str = "none"):
    """:func:`numpy_grad` or :func:`torch_grad`, by backend."""
    run = numpy_grad if backend == "numpy" else torch_grad
    return run(fmt, formula, x, constants, reduction)


__all__ = ["Dual", "DualOps", "Gradient", "differentiate", "numpy_grad", "prepare", "torch_grad"]
