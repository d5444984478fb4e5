"""The peers' real binary cross-entropies: Keras 3, optax and scikit-learn, evaluated by the libraries themselves.

No copies: every loss here is the library's own function on the inputs in the dtype. What each does, read from
the installed sources (keras/src/backend/torch/nn.py, optax/losses/_classification.py,
sklearn/metrics/_classification.py):

* ``keras_bce``: p = keras.ops.sigmoid(x) (torch.sigmoid on the torch backend), then
  keras.losses.binary_crossentropy(y, p): it clips p to [epsilon, 1 - epsilon], epsilon = keras.config.epsilon()
  = 1e-7, and calls torch's BCELoss (whose -100 clamp then applies too). In float16 1 - 1e-7 rounds to 1, so the
  upper clip does nothing there.
* ``keras_bce_logits``: keras.losses.binary_crossentropy(y, x, from_logits=True): torch's BCEWithLogits.
* both end in keras.ops.mean over the last axis, which on the torch backend casts to
  keras's result_type(dtype, "float32") and back: float32 for a float64 input, so a float64 loss is rounded to
  float32 (0.6931471824645996 for ln 2 at x = 0, y = 1); its gradient is not (the cast's backward is exact there).
* ``optax_sigmoid_bce``: optax.losses.sigmoid_binary_cross_entropy(x, y) = -y·log_sigmoid(x) -
  (1-y)·log_sigmoid(-x) in jax, in the dtype (float64 with jax_enable_x64).
* ``sklearn_log_loss``: sklearn.metrics.log_loss([y], [p], labels=[0, 1]) with p = sigmoid(x) from numpy: it
  clips p to [eps, 1 - eps] with eps = finfo(p.dtype).eps (9.8e-4 in float16, 1.2e-7 in float32, 2.2e-16 in
  float64) and keeps float16/float32/float64; a bfloat16 p is converted to float64 first. Hard targets only
  (y_true holds labels), no gradient.

Every formula takes numpy arrays of the dtype (the ``peers`` pseudo-backend) and returns an Evaluation whose loss
is a numpy array of the dtype.
"""

from __future__ import annotations

import numpy as np

from stabcli.core import peers as lib
from stabcli.core.formats import to_float64
from stabcli.losses.base import Evaluation

METHODS = {
    "keras_bce": lib.PeerMethod("keras", __name__, "keras_bce", "keras_grad"),
    "keras_bce_logits": lib.PeerMethod("keras", __name__, "keras_bce_logits", "keras_grad"),
    "optax_sigmoid_bce": lib.PeerMethod("optax", __name__, "optax_sigmoid_bce", "optax_grad", ("jax",)),
    "sklearn_log_loss": lib.PeerMethod("scikit-learn", __name__, "sklearn_log_loss"),
}


def describe(peer: lib.PeerMethod, fmt) -> str:
    v = lib.version(peer.library)
    if peer.library == "keras":
        text = f"keras {v}, {lib.keras_backend()} backend, {fmt.name} tensors"
        if fmt.bits == 64:  # keras.ops.mean computes in result_type(dtype, "float32"), which is float32 for float64
            text += "; the loss comes back rounded to float32 (binary_crossentropy's mean runs in float32)"
        return text
    if peer.library == "optax":
        return f"optax {v} on jax {lib.version('jax')} (cpu), {fmt.name} arrays"
    keeps = fmt.name in ("float16", "float32", "float64")
    return f"scikit-learn {v}, computes in {fmt.name if keeps else 'float64'}"


def _torch(fmt, a):
    from stabcli.core.backends import TorchOps

    return TorchOps(fmt).array(np.ascontiguousarray(a))


def _keras_inputs(fmt, x, y):
    """Keras (imported on the torch backend) and x, y as torch tensors of the dtype, shaped (N, 1): Keras's
    binary_crossentropy takes the mean over the last axis, here of one value."""
    keras = lib.keras()
    xt, yt = _torch(fmt, x).reshape(-1, 1), _torch(fmt, np.broadcast_to(y, np.shape(x))).reshape(-1, 1)
    return xt, yt, keras


def keras_bce(ops, x, y, w, pw) -> Evaluation:
    """keras.losses.binary_crossentropy(y, keras.ops.sigmoid(x)) on the torch backend, in the dtype."""
    return _keras(ops.fmt, x, y, from_logits=False)


def keras_bce_logits(ops, x, y, w, pw) -> Evaluation:
    """keras.losses.binary_crossentropy(y, x, from_logits=True) on the torch backend, in the dtype."""
    return _keras(ops.fmt, x, y, from_logits=True)


def _keras(fmt, x, y, from_logits: bool, grad: bool = False):
    import torch

    xt, yt, keras = _keras_inputs(fmt, x, y)
    if grad:
        xt.requires_grad_(True)
    with torch.enable_grad() if grad else torch.no_grad():
        pred = xt if from_logits else keras.ops.sigmoid(xt)
        # Keras hands p to torch's BCELoss, which refuses a NaN probability (RuntimeError "all elements of input
        # should be between 0 and 1"), as torch_bce does: those elements are evaluated at p = 0.5 and reported as
        # NaN, what a NaN logit gives everywhere else (sigmoid is NaN only at a NaN logit).
        nan = None if from_logits else torch.isnan(pred)
        if nan is not None and not bool(nan.any()):
            nan = None
        safe = pred if nan is None else torch.where(nan, torch.tensor(0.5, dtype=pred.dtype), pred)
        loss = keras.losses.binary_crossentropy(yt, safe, from_logits=from_logits)
        if nan is not None:
            loss = torch.where(nan.reshape(loss.shape), torch.tensor(torch.nan, dtype=loss.dtype), loss)
        if grad:
            loss.sum().backward()
            if nan is not None:  # NaN in, NaN out (the gradient of the 0.5 stand-in is not the logit's)
                xt.grad = torch.where(nan, torch.tensor(torch.nan, dtype=xt.grad.dtype), xt.grad)
            return xt
    ev = Evaluation(None)
    if not from_logits:
        p = ev.step("p = keras.ops.sigmoid(x)", _numpy(fmt, pred).reshape(np.shape(x)), "sigmoid", x)
        # where Keras's clip to [epsilon, 1 - epsilon] (in the dtype), or then BCELoss's -100 clamp, fired
        eps = float(keras.config.epsilon())
        lo, hi = (float(to_float64(fmt.round(np.array(v)))) for v in (eps, 1 - eps))
        p64 = to_float64(p)
        clipped = np.clip(p64, lo, hi)
        y64 = to_float64(np.broadcast_to(y, np.shape(x)))
        with np.errstate(all="ignore"):
            clamp = ((np.log(clipped) < -100) & (y64 != 0)) | ((np.log1p(-clipped) < -100) & (y64 != 1))
        ev.clamp_changed = (p64 < lo) | (p64 > hi) | clamp
        if p64.size == 1:
            ev.clip_note = keras_clip_note(float(p64.reshape(-1)[0]), lo, hi, eps, bool(clamp.reshape(-1)[0]), fmt)
    if from_logits:
        ev.loss = ev.step("binary_crossentropy(y, x, from_logits=True)", _numpy(fmt, loss).reshape(np.shape(x)),
                          "peer")
    else:
        ev.loss = ev.step("binary_crossentropy(y, p)", _numpy(fmt, loss).reshape(np.shape(x)), "keras_bce", p)
    return ev


def _num(v: float) -> str:
    from stabcli.core.numbers import fmt_number

    return fmt_number(v, 10)


def keras_clip_note(p: float, lo: float, hi: float, eps: float, clamp: bool, fmt) -> str | None:
    """Which of Keras's clip (p to [eps, 1 - eps], in the dtype) and BCELoss's -100 clamp (on the clipped p)
    changed the loss of one element, in words; None when neither did. ``lo``, ``hi``: eps and 1 - eps rounded to
    the dtype."""
    parts = []
    e = _num(eps)
    rule = f"Keras's clip of p to [{e}, 1 - {e}]"
    if p > hi:
        parts.append(f"{rule} replaced p = {_num(p)} by {_num(hi)} (1 - {e} in {fmt.name})")
    elif p < lo:
        parts.append(f"{rule} replaced p = {_num(p)} by {_num(lo)} ({e} in {fmt.name})")
    if clamp:
        idle = ""
        if not parts and (p == 1 and hi == 1 or p == 0 and lo == 0):
            bound = f"1 - {e}" if p == 1 else e
            idle = f" ({rule} did nothing: {bound} is {_num(hi if p == 1 else lo)} in {fmt.name})"
        parts.append(f"torch's BCELoss, which Keras calls, clamped a log below -100 at -100{idle}")
    return "; then ".join(parts) if parts else None


def sklearn_clip_note(p: float, eps: float, dtype: str) -> str | None:
    """What scikit-learn's clip of p to [eps, 1 - eps] (eps = finfo(dtype).eps) did to one element, or None."""
    rule = f"scikit-learn's clip of p to [eps, 1 - eps] (eps = finfo({dtype}).eps = {_num(eps)})"
    if p > 1 - eps:
        return f"{rule} replaced p = {_num(p)} by 1 - eps"
    if p < eps:
        return f"{rule} replaced p = {_num(p)} by eps"
    return None


def _numpy(fmt, t) -> np.ndarray:
    from stabcli.core.backends import TorchOps

    return np.asarray(TorchOps(fmt).to_numpy(t), dtype=fmt.np_dtype)


def keras_grad(method: str, fmt, x, y) -> np.ndarray:
    """d loss / d x by torch autograd through Keras's ops (they are torch ops on the torch backend)."""
    xt = _keras(fmt, x, y, from_logits=method == "keras_bce_logits", grad=True)
    return _numpy(fmt, xt.grad).reshape(np.shape(x))


def _jnp(fmt, a):
    jax = lib.jax()
    return jax.numpy.asarray(np.ascontiguousarray(a), dtype=_jax_dtype(jax, fmt))


def _jax_dtype(jax, fmt):
    return {"float16": jax.numpy.float16, "bfloat16": jax.numpy.bfloat16, "float32": jax.numpy.float32,
            "float64": jax.numpy.float64}[fmt.name]


def _from_jax(fmt, a) -> np.ndarray:
    return np.asarray(a).astype(fmt.np_dtype)


def optax_sigmoid_bce(ops, x, y, w, pw) -> Evaluation:
    """optax.losses.sigmoid_binary_cross_entropy(x, y) in jax, in the dtype."""
    import optax

    fmt = ops.fmt
    ev = Evaluation(None)
    loss = optax.losses.sigmoid_binary_cross_entropy(_jnp(fmt, x), _jnp(fmt, np.broadcast_to(y, np.shape(x))))
    ev.loss = ev.step("sigmoid_binary_cross_entropy(x, y)", _from_jax(fmt, loss), "peer")
    return ev


def optax_grad(method: str, fmt, x, y) -> np.ndarray:
    """d loss / d x by jax.grad of the summed loss, in the dtype."""
    import optax

    jax = lib.jax()
    yj = _jnp(fmt, np.broadcast_to(y, np.shape(x)))
    g = jax.grad(lambda t: optax.losses.sigmoid_binary_cross_entropy(t, yj).sum())(_jnp(fmt, x))
    return _from_jax(fmt, g)


def sklearn_log_loss(ops, x, y, w, pw) -> Evaluation:
    """sklearn.metrics.log_loss([y], [sigmoid(x)], labels=[0, 1]) per element, p = 1/(1+exp(-x)) in numpy."""
    import warnings

    from sklearn.metrics import log_loss

    fmt = ops.fmt
    ev = Evaluation(None)
    p = ev.step("p = sigmoid(x)", ops.sigmoid(x), "sigmoid", x)
    xs, ys, ps = (np.broadcast_to(a, np.broadcast_shapes(np.shape(x), np.shape(y))) for a in (x, y, p))
    out = np.empty(xs.shape, dtype=fmt.np_dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns when it converts or clips; the row says what it did
        for i in np.ndindex(xs.shape):
            value = np.nan if np.isnan(to_float64(ps[i])) else \
                log_loss([int(to_float64(ys[i]))], np.array([ps[i]]), labels=[0, 1])
            out[i] = fmt.round(np.array(value))
    ev.loss = ev.step("log_loss(y, p)", out, "peer", p)
    keeps = fmt.name in ("float16", "float32", "float64")
    eps = float(np.finfo(fmt.np_dtype if keeps else np.float64).eps)  # log_loss clips to [eps, 1 - eps]
    p64 = to_float64(ps)
    ev.clamp_changed = (p64 < eps) | (p64 > 1 - eps)
    if p64.size == 1:
        ev.clip_note = sklearn_clip_note(float(p64.reshape(-1)[0]), eps, fmt.name if keeps else "float64")
    return ev


def excluded(method: str, options: dict) -> str | None:
    """Why a peer method cannot run with these options, or None."""
    w, pw = np.asarray(options.get("weight", 1.0)), np.asarray(options.get("pos_weight", 1.0))
    if not (np.all(w == 1) and np.all(pw == 1)):
        return "the peer rows take no weight or pos_weight (their functions have none); drop them to see the peers"
    if method == "sklearn_log_loss":
        if "target" in options:
            return ("sklearn_log_loss is left out of sweeps: log_loss returns one number per call, so every logit "
                    "would be a call of its own")
        y = np.asarray(options.get("targets", 0.0))
        if not np.all((y == 0) | (y == 1)):
            return "sklearn_log_loss is left out: log_loss takes labels (targets 0 or 1), not soft targets"
    return None


def grad_of(method: str, fmt, arrays: dict) -> np.ndarray | None:
    """d loss / d x of a peer method in the dtype, or None (scikit-learn cannot differentiate)."""
    peer = METHODS[method]
    if peer.grad is None:
        return None
    x = np.asarray(arrays["logits"], dtype=fmt.np_dtype)
    return peer.load(peer.grad)(method, fmt, x, np.asarray(arrays["targets"], dtype=fmt.np_dtype))
