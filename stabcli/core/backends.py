"""The two ways stabcli evaluates a formula: numpy op by op, and real torch kernels.

A formula in ``formulas.py`` is written once against the small interface below, so the numpy and torch
evaluations run the very same sequence of operations. What differs is where each operation rounds:

* ``numpy``: every operation returns an array of the dtype, so every intermediate is rounded to it
  (numpy computes float16 and ml_dtypes computes bfloat16 transcendental functions in float32 and rounds each).
* ``torch``: torch tensors of the dtype; the CPU kernels of unary ops compute float16 and bfloat16 in float32
  and round once, and ``torch.sigmoid`` is one fused kernel rather than ``1/(1+exp(-x))``.
"""

from __future__ import annotations

import numpy as np

from stabcli.core.formats import Format, to_float64

BACKEND_NAMES: tuple[str, ...] = ("numpy", "torch")


class NumpyOps:
    """numpy, one rounding per operation. Callers wrap evaluation in ``np.errstate(all="ignore")``."""

    name = "numpy"

    def __init__(self, fmt: Format):
        self.fmt = fmt
        self.dtype = fmt.np_dtype

    def array(self, values_in_dtype: np.ndarray):
        return np.asarray(values_in_dtype, dtype=self.dtype)

    def const(self, value: float):
        return self.dtype.type(value)

    def to_numpy(self, a) -> np.ndarray:
        return np.asarray(a, dtype=self.dtype)

    def sigmoid(self, x):
        """1/(1+exp(-x)), op by op, as the seed articles write it."""
        return self.const(1) / (self.const(1) + np.exp(-x))

    exp = staticmethod(np.exp)
    log = staticmethod(np.log)
    log1p = staticmethod(np.log1p)
    abs = staticmethod(np.abs)
    maximum = staticmethod(np.maximum)

    def where(self, cond, a, b):
        return np.where(cond, a, b).astype(self.dtype, copy=False)

    # BCELoss's kernel calls std::log and std::log1p; numpy has only its own log, which is what it uses.
    bce_log = staticmethod(np.log)
    bce_log1p = staticmethod(np.log1p)

    def reduce(self, loss, reduction: str):
        if reduction == "mean":
            return np.mean(loss, dtype=self.dtype)
        if reduction == "sum":
            return np.sum(loss, dtype=self.dtype)
        return loss

    # Vector operations over the last axis (the class axis of softmax cross-entropy). Op by op: the sum adds one
    # class at a time, each addition rounded to the dtype (np.sum would accumulate float16 in float32).
    def index(self, values: np.ndarray):
        """Class indices: an int64 array (never rounded to the dtype)."""
        return np.asarray(values, dtype=np.int64)

    def sum_last(self, a):
        """The sum over the last axis, kept as an axis of length 1, one rounded addition per class."""
        total = a[..., 0:1]
        for c in range(1, a.shape[-1]):
            total = total + a[..., c:c + 1]
        return total

    def max_last(self, a):
        """The largest value over the last axis (kept as an axis of length 1): the shift of a stable softmax. Taken
        one class at a time (exact, and several times faster than numpy's reduction over a short axis); a NaN
        propagates, as np.max's does."""
        top = a[..., 0:1]
        for c in range(1, a.shape[-1]):
            top = np.maximum(top, a[..., c:c + 1])
        return top

    def take(self, a, idx):
        """a[..., idx] per row: the entry of each row's class index (idx broadcast to the rows)."""
        if np.ndim(idx) == 0:  # one class for every row (a sweep's target): a plain column
            return a[..., int(idx)]
        rows = np.broadcast_to(np.asarray(idx), np.shape(a)[:-1])
        return np.take_along_axis(a, rows[..., None], axis=-1)[..., 0]

    def softmax(self, x):
        """exp(x - max(x)) / sum(exp(x - max(x))) over the last axis, op by op."""
        e = self.exp(x - self.max_last(x))
        return e / self.sum_last(e)


class TorchOps:
    """torch tensors of the dtype on the CPU, each operation a real torch kernel."""

    name = "torch"

    def __init__(self, fmt: Format):
        import torch

        self.torch = torch
        self.fmt = fmt
        self.dtype = fmt.torch_dtype

    def array(self, values_in_dtype: np.ndarray):
        torch = self.torch
        arr = np.ascontiguousarray(values_in_dtype)
        if self.fmt.name == "bfloat16":  # torch.from_numpy does not know ml_dtypes; move the bits
            return torch.from_numpy(arr.view(np.int16).copy()).view(torch.bfloat16)
        return torch.from_numpy(arr.astype(self.fmt.np_dtype, copy=True))

    def const(self, value: float):
        return self.torch.tensor(value, dtype=self.dtype)

    def to_numpy(self, a) -> np.ndarray:
        a = a.detach()
        if self.fmt.name == "bfloat16":
            return a.view(self.torch.int16).numpy().view(self.fmt.np_dtype)
        return a.numpy()

    def sigmoid(self, x):
        return self.torch.sigmoid(x)

    def exp(self, x):
        return self.torch.exp(x)

    def log(self, x):
        return self.torch.log(x)

    def log1p(self, x):
        return self.torch.log1p(x)

    def abs(self, x):
        return self.torch.abs(x)

    def maximum(self, a, b):
        return self.torch.maximum(a, b)

    def where(self, cond, a, b):
        return self.torch.where(cond, a, b)

    # torch.log and torch.log1p run vectorised SLEEF kernels (within 1 ulp), while BCELoss's own kernel
    # (aten/src/ATen/native/Loss.cpp) calls the scalar std::log and std::log1p. torch.xlogy(1, p) and
    # torch.special.xlog1py(1, t) are evaluated by scalar kernels that call exactly those functions, so the
    # hand-written `clamped` goes through them to reproduce BCELoss bit for bit in float32 and float64 too.
    def bce_log(self, p):
        return self.torch.xlogy(self.torch.ones_like(p), p)

    def bce_log1p(self, t):
        return self.torch.special.xlog1py(self.torch.ones_like(t), t)

    def reduce(self, loss, reduction: str):
        if reduction == "mean":
            return loss.mean()
        if reduction == "sum":
            return loss.sum()
        return loss

    # Vector operations over the last axis: each one real torch kernel.
    def index(self, values: np.ndarray):
        return self.torch.from_numpy(np.array(values, dtype=np.int64))

    def sum_last(self, a):
        return a.sum(dim=-1, keepdim=True)

    def max_last(self, a):
        """The shift of a stable softmax, held constant for autograd (as jax.nn.logsumexp's stop_gradient): in
        exact arithmetic its derivative cancels, and torch.amax's backward would split it among tied logits."""
        return a.detach().amax(dim=-1, keepdim=True)

    def take(self, a, idx):
        rows = idx.expand(a.shape[:-1])
        return a.gather(-1, rows.unsqueeze(-1)).squeeze(-1)

    def softmax(self, x):
        """torch.softmax over the last axis: one fused kernel (float16/bfloat16 computed in float32, rounded once)."""
        return self.torch.softmax(x, dim=-1)


def make_ops(backend: str, fmt: Format):
    """The operation set of ``backend`` ("numpy" or "torch") in format ``fmt``; the ``peers`` pseudo-backend gets
    numpy's (peer formulas take numpy arrays of the dtype and hand them to their library)."""
    return TorchOps(fmt) if backend == "torch" else NumpyOps(fmt)


__all__ = ["BACKEND_NAMES", "NumpyOps", "TorchOps", "make_ops", "to_float64"]
