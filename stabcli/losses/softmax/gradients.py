"""Softmax cross-entropy gradients: d loss / d x for every logit, as each backend computes it.

* numpy: forward-mode dual numbers (``core.autodiff.DualOps``), op by op in the dtype. A row's loss depends on all
  C of its logits, so one pass per class c seeds d x_c = 1 in every row (rows are independent) and reads
  d loss_n / d x_{n,c}: C passes give the whole gradient.
* torch: ``backward()`` through each method as written, the real kernels' backward included
  (``F.log_softmax``'s grad - exp(out)·Σ grad, ``F.cross_entropy``'s).

The exact gradient is A·softmax(x) - a (``reference.py``): softmax minus the one-hot (or smoothed) target.
"""

from __future__ import annotations

import numpy as np

from stabcli.core.autodiff import Dual, DualOps, Gradient
from stabcli.core.formats import Format
from stabcli.losses.softmax.formulas import METHODS


def _numpy_columns(fmt: Format, method: str, arrays: dict, reduction: str, columns) -> np.ndarray:
    """d (reduced loss) / d x_{n,c} for the classes ``columns`` by forward mode, as an array (N, len(columns))."""
    from stabcli.losses.softmax import FAMILY

    ops = DualOps(fmt)
    x = np.asarray(arrays["logits"], dtype=fmt.np_dtype)
    _, y, w, eps = FAMILY.backend_inputs(ops, arrays, broadcast=False)
    out = np.zeros(x.shape[:-1] + (len(columns),), dtype=fmt.np_dtype)
    with np.errstate(all="ignore"):
        for k, c in enumerate(columns):
            seed = np.zeros_like(x)
            seed[..., c] = 1
            ev = METHODS[method](ops, Dual(x.copy(), seed), y, w, eps)
            der = ops.derivative(ev.loss)
            out[..., k] = np.broadcast_to(der, x.shape[:-1])
        if reduction == "mean":
            out = (out / fmt.np_dtype.type(FAMILY.mean_denominator(ops, arrays))).astype(fmt.np_dtype)
    return out


def _torch_grad(fmt: Format, method: str, arrays: dict, reduction: str) -> np.ndarray:
    import torch

    from stabcli.core.backends import make_ops
    from stabcli.losses.softmax import FAMILY

    ops = make_ops("torch", fmt)  # float8: TorchFloat8Ops (float32 kernels, every result rounded to float8)
    xt, y, w, eps = FAMILY.backend_inputs(ops, arrays, broadcast=False)
    xt.requires_grad_(True)
    with torch.enable_grad(), np.errstate(all="ignore"):
        with ops.context():  # autocast around the forward pass only
            ev = METHODS[method](ops, xt, y, w, eps)
            loss = FAMILY.reduce(ops, ev.loss, reduction, arrays)
        if loss.requires_grad:
            # d(sum)/d(loss_n) is exactly 1: backward of the sum is backward(ones) per row without the symbolic shape
            # check (and sympy import) that passing grad_outputs costs
            (loss if loss.dim() == 0 else loss.sum()).backward()
    grad = xt.grad if xt.grad is not None else torch.zeros_like(xt)
    return np.array(ops.to_numpy(grad), dtype=fmt.np_dtype)


def grad_of(backend: str, fmt: Format, method: str, arrays: dict, reduction: str = "none",
            columns=None) -> np.ndarray:
    """d (reduced loss) / d x in the dtype: shape (N, C), or (N, len(columns)) for the classes ``columns``.

    ``arrays``: {"logits": (N, C) values of the dtype, "targets": class indices (int64, (N,) or 0-d) or
    probabilities ((N, C) or (C,)), "weight": (C,), "label_smoothing": 0-d float}.
    """
    n_classes = np.shape(arrays["logits"])[-1]
    columns = range(n_classes) if columns is None else columns
    if backend == "peers":
        from stabcli.losses.softmax import FAMILY

        peer = FAMILY.peer_methods[method]
        if peer.grad is None:
            return None
        g = peer.load(peer.grad)(method, fmt, arrays["logits"], arrays["targets"],
                                 float(np.asarray(arrays["label_smoothing"])))
        if reduction == "mean":
            from stabcli.core.backends import NumpyOps

            g = (g / fmt.np_dtype.type(FAMILY.mean_denominator(NumpyOps(fmt), arrays))).astype(fmt.np_dtype)
        return g[..., list(columns)]
    if backend == "numpy":
        return _numpy_columns(fmt, method, arrays, reduction, list(columns))
    return _torch_grad(fmt, method, arrays, reduction)[..., list(columns)]


def grad_details(backend: str, fmt: Format, method: str, arrays: dict, reduction: str = "none") -> Gradient:
    """The whole gradient (N, C) of ``method``; no clamp in any softmax method, so nothing is marked clamped."""
    grad = grad_of(backend, fmt, method, arrays, reduction)
    return None if grad is None else Gradient(grad, np.zeros(grad.shape, dtype=bool), {})
