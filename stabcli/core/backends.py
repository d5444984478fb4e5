"""The two ways stabcli evaluates a formula: numpy op by op, and real torch kernels.

A loss family's formula (``losses/<family>/formulas.py``) is written once against the small interface below, so the numpy and torch
evaluations run the very same sequence of operations. What differs is where each operation rounds:

* ``numpy``: every operation returns an array of the dtype, so every intermediate is rounded to it
  (numpy computes float16 and ml_dtypes computes bfloat16 transcendental functions in float32 and rounds each).
* ``torch``: torch tensors of the dtype; the CPU kernels of unary ops compute float16 and bfloat16 in float32
  and round once, and ``torch.sigmoid`` is one fused kernel rather than ``1/(1+exp(-x))``.
* ``torch`` in float8 (:class:`TorchFloat8Ops`): torch has the float8 dtypes but almost no CPU kernel for them, so
  every operation is a real torch kernel run in float32 whose result, and in autograd every gradient, is rounded
  to float8 by torch's own cast: what torch does for float16, with the rounding written out.
"""

from __future__ import annotations

import contextlib

import numpy as np

from stabcli.core.formats import FORMATS, Format, to_float64
from stabcli.names import BACKEND_NAMES


def numpy_reduce(loss, reduction: str, fmt: Format):
    """The mean or sum of per-element losses of ``fmt`` as numpy reduces them by default, the result in the dtype.

    float16: ``np.mean`` uses float32 intermediates (numpy documents it: "float16 results are computed using float32
    intermediates for extra precision") and ``np.sum`` adds pairwise in float16; float32 and float64 reduce in
    themselves. bfloat16 and float8 (ml_dtypes) are accumulated in float32 and rounded once, as torch's CPU
    reductions do: numpy would add them in the dtype itself, where a bfloat16 sum of 1,000 values of 3.1 stalls at
    1024. (Until this was changed, float16 means were accumulated in float16: 4,000 losses of 20 gave inf.)
    """
    if reduction not in ("mean", "sum"):
        return loss
    values = np.asarray(loss)
    if fmt.bits >= 32 or fmt.name == "float16":
        out = np.mean(values) if reduction == "mean" else np.sum(values)
        return np.asarray(out, dtype=fmt.np_dtype)
    wide = values.astype(np.float32)
    out = np.mean(wide) if reduction == "mean" else np.sum(wide)
    return fmt.round(np.asarray(out, dtype=np.float64))


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

    def scalar(self, value: float):
        """A coefficient the formula has as a Python number (label smoothing's 1-ε and ε/C): numpy rounds it to
        the dtype before it multiplies (NEP 50), so it is :meth:`const`."""
        return self.dtype.type(value)

    def to_numpy(self, a) -> np.ndarray:
        return np.asarray(a, dtype=self.dtype)

    def context(self):
        """What a formula runs inside (autocast for :class:`AutocastOps`; nothing here)."""
        return contextlib.nullcontext()

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
        return numpy_reduce(loss, reduction, self.fmt)

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

    def scalar(self, value: float):
        """A coefficient the formula has as a Python number (label smoothing's 1-ε and ε/C): torch keeps it a
        double Scalar, as cross_entropy's C++ keeps label_smoothing, and never rounds it to the tensor's dtype (a
        float16 1-ε = 0.8999 under autocast made a float32 loss 1e-4 off)."""
        return float(value)

    def to_numpy(self, a) -> np.ndarray:
        a = a.detach()
        if self.fmt.name == "bfloat16":
            return a.view(self.torch.int16).numpy().view(self.fmt.np_dtype)
        return a.numpy()

    def context(self):
        return contextlib.nullcontext()

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


class Float8Tensor:
    """A float32 tensor holding values of a float8 format, for :class:`TorchFloat8Ops`.

    Every torch function called on it (``torch.exp``, ``F.binary_cross_entropy``, an operator, a tensor method)
    runs on the float32 tensor and its floating-point result is rounded to float8; boolean results (``isnan``,
    ``==``) pass through. It implements ``__torch_function__``, so the formulas call torch as they always do.
    """

    __slots__ = ("t", "ops")

    def __init__(self, t, ops: "TorchFloat8Ops"):
        self.t = t
        self.ops = ops

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        return _find_ops((args, kwargs or {})).call(func, args, kwargs or {})

    def __getattr__(self, name):
        attr = getattr(self.t, name)
        if not callable(attr):
            return attr  # shape, requires_grad, grad (a raw tensor: to_numpy rounds it)
        if name.endswith("_"):  # in place (requires_grad_): on the tensor itself, which stays this one
            def in_place(*args, **kwargs):
                attr(*args, **kwargs)
                return self

            return in_place
        ops = self.ops

        def method(*args, **kwargs):
            return ops.call(lambda t, *a, **k: getattr(t, name)(*a, **k), (self, *args), kwargs)

        return method

    def _op(name):  # noqa: N805 (a helper that builds the operators below)
        def operator(self, *others):
            return self.ops.call(lambda *a: getattr(a[0], name)(*a[1:]), (self, *others), {})

        operator.__name__ = name
        return operator

    __add__, __radd__, __sub__, __rsub__ = _op("__add__"), _op("__radd__"), _op("__sub__"), _op("__rsub__")
    __mul__, __rmul__, __truediv__, __rtruediv__ = _op("__mul__"), _op("__rmul__"), _op("__truediv__"), \
        _op("__rtruediv__")
    __neg__, __eq__, __ne__, __lt__, __le__, __gt__, __ge__ = _op("__neg__"), _op("__eq__"), _op("__ne__"), \
        _op("__lt__"), _op("__le__"), _op("__gt__"), _op("__ge__")
    __pow__, __rpow__, __abs__, __getitem__, __matmul__ = _op("__pow__"), _op("__rpow__"), _op("__abs__"), \
        _op("__getitem__"), _op("__matmul__")
    __hash__ = None  # type: ignore[assignment]
    del _op

    def __len__(self) -> int:
        return len(self.t)

    def __repr__(self) -> str:
        return f"Float8Tensor({self.ops.fmt.name}, {self.t!r})"


def _find_ops(tree) -> "TorchFloat8Ops":
    """The ops of the first :class:`Float8Tensor` in nested arguments (lists, tuples, dicts)."""
    if isinstance(tree, Float8Tensor):
        return tree.ops
    items = tree.values() if isinstance(tree, dict) else tree if isinstance(tree, (list, tuple)) else ()
    for item in items:
        found = _find_ops(item)
        if found is not None:
            return found
    return None


class TorchFloat8Ops(TorchOps):
    """torch in a float8 format: each operation a real torch kernel in float32, its result rounded to float8.

    torch 2.13 stores float8_e4m3fn and float8_e5m2 but has almost no CPU kernel for them ("add_stub" not
    implemented for 'Float8_e4m3fn'), so values live in float32 tensors (:class:`Float8Tensor`) and every result
    goes through ``.to(float8).to(float32)``, torch's own cast: round to nearest, ties to even; in float8_e4m3fn
    an overflow, and even inf, *saturates* to ±448 (ml_dtypes gives NaN), so log(0) = -inf becomes -448. Each
    kernel computes in float32 and rounds once, as torch's float16 kernels do: ``torch.sigmoid`` and
    ``F.binary_cross_entropy`` are one fused kernel each, not op by op.

    Autograd: every input of an operation passes through the same cast, whose backward casts the gradient, so
    each gradient an operation sends back is rounded to float8 as a float8 tensor's would be; sigmoid and exp
    differentiate from their rounded output (as torch's backward kernels use the stored output), the other
    kernels' backward formulas run in float32 on the rounded inputs, and a leaf's accumulated gradient is rounded
    when it is read (:meth:`to_numpy`).
    """

    def __init__(self, fmt: Format):
        super().__init__(fmt)
        self.dtype = self.torch.float32  # where the values live; ``self.f8`` is the format itself
        self.f8 = fmt.torch_dtype

    # moving values in and out ---------------------------------------------------------------------------------
    def round(self, t):
        """t (float32) rounded to the format by torch's cast, with a backward that rounds the gradient."""
        return t.to(self.f8).to(self.torch.float32)

    def wrap(self, t) -> Float8Tensor:
        return Float8Tensor(t, self)

    def array(self, values_in_dtype: np.ndarray) -> Float8Tensor:
        arr = np.ascontiguousarray(np.asarray(values_in_dtype, dtype=self.fmt.np_dtype).astype(np.float32))
        return self.wrap(self.torch.from_numpy(arr.copy()))

    def const(self, value: float) -> Float8Tensor:
        return self.wrap(self.round(self.torch.tensor(value, dtype=self.torch.float32)))

    def scalar(self, value: float) -> Float8Tensor:
        return self.const(value)

    def to_numpy(self, a) -> np.ndarray:
        t = (a.t if isinstance(a, Float8Tensor) else a).detach()
        if not t.is_floating_point():
            return t.numpy()
        # torch's float8 bits are the OCP encoding, as ml_dtypes'
        return t.to(self.f8).view(self.torch.uint8).numpy().view(self.fmt.np_dtype)

    def call(self, func, args, kwargs):
        """``func`` on the float32 tensors; inputs that carry gradients pass through :meth:`round` (so that the
        gradient they get back is rounded), floating-point outputs are rounded and wrapped."""
        def unwrap(a):
            if isinstance(a, Float8Tensor):
                return self.round(a.t) if a.t.requires_grad else a.t
            if isinstance(a, (list, tuple)):
                return type(a)(unwrap(v) for v in a)
            if isinstance(a, dict):
                return {k: unwrap(v) for k, v in a.items()}
            return a

        out = func(*unwrap(tuple(args)), **{k: unwrap(v) for k, v in kwargs.items()})
        return self._wrap_out(out)

    def _wrap_out(self, out):
        torch = self.torch
        if isinstance(out, torch.Tensor):
            return self.wrap(self.round(out)) if out.is_floating_point() else out
        if isinstance(out, (list, tuple)):
            return type(out)(self._wrap_out(v) for v in out)
        return out

    # the kernels whose backward uses their own output ---------------------------------------------------------
    def sigmoid(self, x):
        return self.wrap(self._sigmoid().apply(self._input(x)))

    def exp(self, x):
        return self.wrap(self._exp().apply(self._input(x)))

    def _input(self, x):
        return self.round(x.t) if x.t.requires_grad else x.t

    def _sigmoid(self):
        return _rounded_kernels(self)[0]

    def _exp(self):
        return _rounded_kernels(self)[1]

    def log(self, x):
        return self.torch.log(x)

    def log1p(self, x):
        return self.torch.log1p(x)


def _rounded_kernels(ops: TorchFloat8Ops):
    """torch.autograd.Functions for sigmoid and exp in float8: the float32 kernel, its output rounded, and the
    backward from the rounded output p (sigmoid: g·(1-p)·p, exp: g·e), rounded."""
    import torch

    class Sigmoid(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            p = ops.round(torch.sigmoid(x))
            ctx.save_for_backward(p)
            return p

        @staticmethod
        def backward(ctx, g):
            (p,) = ctx.saved_tensors
            return ops.round(g * (1 - p) * p)

    class Exp(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            e = ops.round(torch.exp(x))
            ctx.save_for_backward(e)
            return e

        @staticmethod
        def backward(ctx, g):
            (e,) = ctx.saved_tensors
            return ops.round(g * e)

    return Sigmoid, Exp


class AutocastOps(TorchOps):
    """torch under ``torch.autocast`` (``core/autocast.py``): inputs of the low dtype, each formula run inside
    :meth:`context`, so that every operation computes where autocast puts it (float32 for log, exp, BCEWithLogits
    on CUDA, ...). A result may come back in float32: :meth:`to_numpy` keeps each tensor's own dtype."""

    def __init__(self, fmt: Format, spec):
        super().__init__(fmt)
        self.spec = spec

    def context(self):
        from stabcli.core import autocast

        return autocast.context(self.spec)

    def to_numpy(self, a) -> np.ndarray:
        a = a.detach()
        if a.dtype == self.torch.bfloat16:
            return a.view(self.torch.int16).numpy().view(FORMATS["bfloat16"].np_dtype)
        return a.numpy()


def dtype_name(values) -> str:
    """The format name of an array of values (float16, bfloat16, float32, ...)."""
    return str(np.asarray(values).dtype)


def backend_note(backend: str, fmt: Format, libraries=("keras", "scikit-learn")) -> str | None:
    """What a reader of results in ``fmt`` under ``backend`` needs to be told (float8 under torch; no peer rows in
    float8, and why for each of ``libraries``, the peers of the family at hand), or None."""
    if backend == "peers":
        from stabcli.core import peers

        return None if peers.runs_in(fmt) else peers.skipped_note(fmt, libraries)
    if backend != "torch" or fmt.bits != 8:
        return None
    note = (f"torch in {fmt.name}: torch has the dtype but no CPU kernels for it, so every operation runs in "
            f"float32 and its result (and every gradient) is rounded to {fmt.name} by torch's cast, as torch's "
            "float16 kernels compute in float32 and round once")
    if not fmt.has_inf:
        note += f"; that cast saturates: an overflow, and even -inf (log 0), becomes ±{fmt.max:g}, where ml_dtypes gives NaN"
    return note


def make_ops(backend: str, fmt: Format):
    """The operation set of ``backend`` ("numpy" or "torch") in format ``fmt``; the ``peers`` pseudo-backend gets
    numpy's (peer formulas take numpy arrays of the dtype and hand them to their library)."""
    if backend == "torch":
        from stabcli.core import autocast

        spec = autocast.active()
        if spec is not None:
            return AutocastOps(fmt, spec)
        return TorchFloat8Ops(fmt) if fmt.bits == 8 else TorchOps(fmt)
    return NumpyOps(fmt)


__all__ = ["AutocastOps", "BACKEND_NAMES", "dtype_name", "Float8Tensor", "backend_note", "NumpyOps", "TorchFloat8Ops", "TorchOps", "make_ops", "numpy_reduce", "to_float64"]
