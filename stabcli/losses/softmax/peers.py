"""The peers' real softmax cross-entropy: optax's, evaluated by optax itself (no copy).

* ``optax_softmax_ce``: optax.losses.softmax_cross_entropy(x, labels) in jax, in the dtype (float64 with
  jax_enable_x64): -(labels · jax.nn.log_softmax(x)).sum(-1) (optax/losses/_classification.py). Class indices
  become one-hot labels, label smoothing is optax.losses.smooth_labels (the same (1-ε)·q + ε/C as torch); optax
  takes no class weights, so the row is left out when they are not all 1. Like torch's cross_entropy with
  probabilities, a -inf logit with a 0 label gives 0·(-inf) = NaN.
"""

from __future__ import annotations

import numpy as np

from stabcli.core import peers as lib
from stabcli.losses.base import Evaluation

METHODS = {
    "optax_softmax_ce": lib.PeerMethod("optax", __name__, "optax_softmax_ce", "optax_grad", ("jax",)),
}


def describe(peer: lib.PeerMethod, fmt) -> str:
    return f"optax {lib.version('optax')} on jax {lib.version('jax')} (cpu), {fmt.name} arrays"


def _jax_inputs(fmt, x, y, eps: float):
    import optax

    jax = lib.jax()
    dt = {"float16": jax.numpy.float16, "bfloat16": jax.numpy.bfloat16, "float32": jax.numpy.float32,
          "float64": jax.numpy.float64}[fmt.name]
    x = np.asarray(x)
    n_classes = x.shape[-1]
    y = np.asarray(y)
    if y.dtype.kind in "iu":  # class indices -> one-hot labels in the dtype
        labels = np.zeros(x.shape, dtype=fmt.np_dtype)
        np.put_along_axis(labels, np.broadcast_to(y, x.shape[:-1])[..., None], 1, axis=-1)
    else:
        labels = np.broadcast_to(y, x.shape)
    labels = jax.numpy.asarray(np.ascontiguousarray(labels), dtype=dt)
    if eps:
        labels = optax.losses.smooth_labels(labels, eps)
    assert labels.shape[-1] == n_classes
    return jax.numpy.asarray(np.ascontiguousarray(x), dtype=dt), labels, jax


def optax_softmax_ce(ops, x, y, w, eps) -> Evaluation:
    """optax.losses.softmax_cross_entropy(x, labels) per row, in the dtype."""
    import optax

    xj, labels, _ = _jax_inputs(ops.fmt, x, y, float(eps))
    ev = Evaluation(None)
    loss = np.asarray(optax.losses.softmax_cross_entropy(xj, labels)).astype(ops.fmt.np_dtype)
    ev.loss = ev.step("softmax_cross_entropy(x, labels)", loss, "peer", x)
    return ev


def optax_grad(method: str, fmt, x, y, eps: float) -> np.ndarray:
    """d (summed loss) / d x by jax.grad, in the dtype, shape (N, C)."""
    import optax

    xj, labels, jax = _jax_inputs(fmt, x, y, eps)
    g = jax.grad(lambda t: optax.losses.softmax_cross_entropy(t, labels).sum())(xj)
    return np.asarray(g).astype(fmt.np_dtype)


def excluded(method: str, options: dict) -> str | None:
    if not np.all(np.asarray(options.get("weight", 1.0)) == 1):
        return "optax_softmax_ce is left out: optax's softmax_cross_entropy takes no class weights"
    return None
