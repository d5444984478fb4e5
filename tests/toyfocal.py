"""A third loss family written only to prove the plug-in layout (tests/test_family_plugin.py registers it).

Binary focal loss with gamma = 2 and alpha = 1 (Lin et al. 2017): loss = -(y·(1-p)²·log p + (1-y)·p²·log(1-p)),
p = sigmoid(x). Everything a family needs is here: formulas written once for both backends, the exact loss and
gradient in mpmath, and the inputs. The engines' defaults do the rest (gradients by core.autodiff, an mpmath sweep
reference, plain notes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stabcli.losses.base import Evaluation, LossFamily


def naive(ops, x, y, w) -> Evaluation:
    """p = sigmoid(x), the logs of p and 1 - p as written: log(0) = -inf once sigmoid saturates."""
    ev = Evaluation(None)
    p = ev.step("p = sigmoid(x)", ops.sigmoid(x), "sigmoid", x)
    log_p = ev.step("log(p)", ops.log(p), "log", p)
    log_q = ev.step("log(1 - p)", ops.log(1 - p), "log", 1 - p)
    q = 1 - p
    ev.loss = ev.step("loss", -(w * (y * (q * q) * log_p + (1 - y) * (p * p) * log_q)), "loss", log_p, log_q)
    return ev


def stable(ops, x, y, w) -> Evaluation:
    """log p = -softplus(-x), log(1-p) = -softplus(x), 1 - p = sigmoid(-x): no log of 0, no cancellation."""
    def softplus(t):
        return ops.maximum(t, ops.const(0)) + ops.log1p(ops.exp(-ops.abs(t)))

    ev = Evaluation(None)
    p, q = ops.sigmoid(x), ops.sigmoid(-x)
    pos = ops.where(y == 0, ops.const(0) * y, y * (q * q) * softplus(-x))
    neg = ops.where(y == 1, ops.const(0) * y, (1 - y) * (p * p) * softplus(x))
    ev.loss = ev.step("loss", w * (pos + neg), "loss", pos, neg)
    return ev


def _exact(x: float, y: float, w: float):
    import mpmath

    with mpmath.workprec(max(160, mpmath.mp.prec)):  # never below the caller's (mpmath.diff works above 160)
        mp = mpmath.mp
        x, y, w = mp.mpf(x), mp.mpf(y), mp.mpf(w)
        p, q = 1 / (1 + mp.exp(-x)), 1 / (1 + mp.exp(x))
        log_p, log_q = -mp.log1p(mp.exp(-x)), -mp.log1p(mp.exp(x))
        return -w * ((y * q**2 * log_p if y else 0) + ((1 - y) * p**2 * log_q if y != 1 else 0))


@dataclass
class Inputs:
    logits: np.ndarray
    targets: np.ndarray
    weight: np.ndarray
    pos_weight: np.ndarray  # taken by the elementwise command-line reader, unused by this loss
    reduction: str = "mean"

    @property
    def size(self) -> int:
        return int(self.logits.size)

    def arrays(self) -> dict:
        return {"logits": self.logits, "targets": self.targets, "weight": self.weight}

    def as_json(self) -> dict:
        return {"logits": np.atleast_1d(self.logits).tolist(), "targets": np.atleast_1d(self.targets).tolist(),
                "weight": self.weight.tolist()}


class Focal(LossFamily):
    name = "focal"
    title = "binary focal loss (gamma 2)"
    method_names = ("naive", "stable")
    input_keys = ("logits", "targets", "weight")
    Inputs = Inputs

    def formula(self, method):
        return {"naive": naive, "stable": stable}[method]

    def exact_loss(self, x, y, w=1.0):
        import mpmath

        if np.isnan(x):
            return mpmath.mp.nan
        return _exact(x, y, w)

    def exact_grad(self, x, y, w=1.0):
        import mpmath

        if np.isnan(x):
            return mpmath.mp.nan
        with mpmath.workprec(160):
            return mpmath.diff(lambda t: _exact(t, y, w), mpmath.mpf(x))


FAMILY = Focal()
