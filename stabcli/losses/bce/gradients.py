"""BCE gradients: every method differentiated as its backend does (``core.autodiff``), and BCELoss's backward.

torch's BCELoss backward is (p-y)/max(p(1-p), ε) (aten/src/ATen/native/Loss.cpp), chained through
``torch.sigmoid``'s backward p(1-p); :func:`grad_details` says where its guard ε, or the -100 clamp of the
hand-written ``clamped``, changed the gradient, and keeps p, p(1-p) and the denominator for the trace.
"""

from __future__ import annotations

import numpy as np

from stabcli.core.autodiff import Gradient, differentiate, prepare
from stabcli.core.formats import Format, to_float64
from stabcli.losses.bce.formulas import INPUT_KEYS, LOG_CLAMP, METHODS

# torch BCELoss backward: (p-y)/max(p(1-p), EPSILON) (aten/src/ATen/native/Loss.cpp), where EPSILON is declared
# `constexpr float EPSILON = 1e-12`: a float even for double tensors, so the guard is float32(1e-12) =
# 9.999999960041972e-13 in float64 too (measured: at p(1-p) = 9.99999998e-13 torch's float64 gradient is exact).
BCE_GRAD_EPSILON = float(np.float32(1e-12))


def grad_of(backend: str, fmt: Format, method: str, arrays: dict, reduction: str = "none",
            broadcast: bool = True) -> np.ndarray:
    """d loss / d x per element, as the backend computes it, in the dtype.

    Args:
        backend: "numpy" (forward-mode duals, op by op in the dtype) or "torch" (autograd, real kernels).
        fmt: the format; every input must already be rounded to it.
        method: one of ``formulas.METHOD_NAMES`` (torch_bce and torch_bce_with_logits need backend torch).
        arrays: {"logits": ..., "targets": ..., "weight": ..., "pos_weight": ...}, arrays of ``fmt.np_dtype``
            that broadcast together; weight and pos_weight default to 1.
        reduction: "none" (d loss_i / d x_i), "mean" (divided by the number of elements) or "sum".
        broadcast: False keeps the target, weight and pos_weight in their own shapes (a sweep passes them as 0-d
            arrays, so that an operation on constants alone is done once, not once per logit); the logits must
            then have the broadcast shape.

    Returns:
        An array of ``fmt.np_dtype`` of the broadcast shape. Vectorised: a sweep can pass a million logits.
    """
    (x, *consts), _ = prepare(arrays, INPUT_KEYS, fmt, broadcast)
    return differentiate(backend, fmt, METHODS[method], x, consts, reduction)[0]


def grad_details(backend: str, fmt: Format, method: str, arrays: dict, reduction: str = "none") -> Gradient:
    """The gradient of ``method`` and where a clamp changed it (see :func:`grad_of`)."""
    (x, y, w, pw), shape = prepare(arrays, INPUT_KEYS, fmt)
    grad, _ = differentiate(backend, fmt, METHODS[method], x, (y, w, pw), reduction)
    clamped = np.zeros(shape, dtype=bool)
    details: dict = {}
    if method in ("naive", "clamped", "torch_bce", "torch_bce_with_logits"):
        # p as the method forms it (torch_bce_with_logits: in its backward, sigmoid(x) - y), and the constants, so
        # that the notes can say why a gradient is what it is (notes.grad_note)
        p = _backend_sigmoid(backend, fmt, x)
        with np.errstate(all="ignore"):
            details["p"] = to_float64(p)
            details["y"] = to_float64(y)
            details["w"] = to_float64(w)
            details["pw"] = to_float64(pw)
            if method == "clamped":
                # the -100 clamp replaced the derivative of a term whose coefficient is not 0 by 0
                log_p, log_1mp = np.log(to_float64(p)), np.log1p(-to_float64(p))
                pos_coef, neg_coef = to_float64(pw) * to_float64(y), 1 - to_float64(y)
                clamped = ((log_p < LOG_CLAMP) & (pos_coef != 0)) | ((log_1mp < LOG_CLAMP) & (neg_coef != 0))
                clamped &= to_float64(w) != 0
            elif method == "torch_bce":
                # the kernel's (1 - p)·p in the dtype it computes in (float32 under autocast, which casts p)
                kfmt = _kernel_format(backend, fmt)
                pk = kfmt.round(to_float64(p))
                prod = ((kfmt.np_dtype.type(1) - pk) * pk).astype(kfmt.np_dtype)
                eps = kfmt.round(BCE_GRAD_EPSILON)  # 1e-12 in the dtype: 0 in float16
                details["p(1-p)"] = to_float64(prod)
                details["epsilon"] = float(to_float64(eps))
                details["kernel"] = kfmt.name
                details["denominator"] = np.maximum(to_float64(prod), float(to_float64(eps)))
                clamped = (to_float64(prod) < to_float64(eps)) & (to_float64(p) != to_float64(y)) & (to_float64(w) != 0)
    return Gradient(grad, np.asarray(clamped, dtype=bool), details)


def _kernel_format(backend: str, fmt: Format) -> Format:
    """The format BCELoss's kernel computes in: the dtype's, or float32 where autocast casts its input, or where
    torch has no kernel for the dtype (float8: the float32 kernel runs and its result is cast, core/backends.py)."""
    from stabcli.core import autocast
    from stabcli.core.formats import FORMATS

    if backend == "torch" and fmt.bits == 8:
        return FORMATS["float32"]
    spec = autocast.active() if backend == "torch" else None
    return FORMATS[autocast.compute_dtype_of("binary_cross_entropy", spec, fmt.name)]


def _backend_sigmoid(backend: str, fmt: Format, x: np.ndarray) -> np.ndarray:
    """p as the method computed it: op by op in numpy, torch.sigmoid in torch."""
    from stabcli.core.backends import make_ops

    ops = make_ops(backend, fmt)
    with np.errstate(all="ignore"):
        return np.asarray(ops.to_numpy(ops.sigmoid(ops.array(x))), dtype=fmt.np_dtype)


__all__ = ["BCE_GRAD_EPSILON", "grad_details", "grad_of"]
