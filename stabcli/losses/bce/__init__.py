"""Binary cross-entropy: the naive BCELoss(sigmoid(x), y) against the log-sum-exp / softplus form.

The package, by file: ``formulas.py`` (the six methods; the -100 clamp lives there), ``reference.py`` (mpmath and
the float64 forms sweeps use), ``gradients.py`` (every method's gradient; BCELoss's backward guard),
``notes.py`` (what each step did, verdicts, summaries), ``thresholds.py`` and ``grad_thresholds.py``
(breakdown logits predicted from a format's constants). This file plugs them into the engines.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import math

import numpy as np

from stabcli.core.errors import InputError
from stabcli.core.formats import Format, to_float64
from stabcli.losses.base import LossFamily
from stabcli.losses.bce import formulas


@dataclass
class Inputs:
    """What the user asked ``compare`` for, as float64 arrays broadcast to one shape."""

    logits: np.ndarray
    targets: np.ndarray
    weight: np.ndarray
    pos_weight: np.ndarray
    reduction: str = "mean"

    @property
    def size(self) -> int:
        return int(self.logits.size)

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: getattr(self, k) for k in formulas.INPUT_KEYS}

    def as_json(self) -> dict:
        """The inputs as compare's JSON shows them (logits and targets always lists)."""
        return {"logits": np.atleast_1d(self.logits).tolist(), "targets": np.atleast_1d(self.targets).tolist(),
                "weight": self.weight.tolist(), "pos_weight": self.pos_weight.tolist()}


@dataclass
class SweepCase:
    """One (dtype, target) of a sweep: the target, weight and pos_weight, rounded to the dtype (and as float64)."""

    fmt: Format
    target: float
    weight: float = 1.0
    pos_weight: float = 1.0

    def arrays(self, xs: np.ndarray) -> dict:
        """The inputs of a method: the logits ``xs`` and the three constants as 0-d arrays of the dtype."""
        return {"logits": xs, **self._constants}

    @cached_property
    def _constants(self) -> dict:
        r = self.fmt.round
        return {"targets": r(np.array(self.target)), "weight": r(np.array(self.weight)),
                "pos_weight": r(np.array(self.pos_weight))}

    @property
    def grad_scale(self) -> float:
        """The size of an ordinary gradient with these weights, w·max(1, pw): the largest |d loss/d x| for any
        target. ``--severity training`` calls a lost gradient smaller than eps times this negligible."""
        _, w, pw = self.wide()
        return w * max(1.0, pw)

    def wide(self) -> tuple[float, float, float]:
        return tuple(float(to_float64(self.fmt.round(np.array(v)))) for v in (self.target, self.weight, self.pos_weight))

    def reference(self, xs: np.ndarray, cache: dict | None = None, fmt: Format | None = None):
        """(nearest, for_rounding) reference of the loss at the logits ``xs`` (see ``reference.sweep_reference``),
        certified for rounding into ``fmt`` (default the case's own; autocast's float32 losses ask for float32)."""
        from stabcli.losses.bce import reference

        fmt = self.fmt if fmt is None else fmt
        return reference.sweep_reference(to_float64(xs), fmt.bits, *self.wide(), cache=cache, fmt=fmt)

    def grad_reference(self, xs: np.ndarray, cache: dict | None = None):
        """(nearest, for_rounding) reference gradient at ``xs`` (see ``reference.sweep_grad_reference``)."""
        from stabcli.losses.bce import reference

        return reference.sweep_grad_reference(to_float64(xs), self.fmt, *self.wide(), cache=cache)

    def grad_reference_points(self, xs64: np.ndarray) -> np.ndarray:
        """The exact gradient rounded to float64 at each point, from mpmath (figures: a few hundred points)."""
        from stabcli.core.exact import to_float64_nearest
        from stabcli.losses.bce import reference

        y, w, pw = self.wide()
        return np.array([to_float64_nearest(reference.exact_grad(float(v), y, w, pw)) for v in xs64])


class BCE(LossFamily):
    name = "bce"
    title = "binary cross-entropy"
    method_names = formulas.METHOD_NAMES
    torch_only = formulas.TORCH_ONLY
    method_formulas = formulas.METHODS
    input_keys = formulas.INPUT_KEYS
    input_labels = {"logits": "logit", "targets": "target", "weight": "weight", "pos_weight": "pos_weight"}
    threshold_methods = ("naive", "clamped", "logsumexp", "torch_bce")
    pos_weight = True
    clamp_method = "clamped"
    slides = True
    # Okabe-Ito colours (colour-blind safe), and a line style of its own for each method
    styles = {
        "naive": dict(color="#D55E00", linestyle="-", linewidth=2.0),
        "clamped": dict(color="#CC79A7", linestyle="--", linewidth=2.0),
        "logsumexp": dict(color="#0072B2", linestyle="-.", linewidth=2.0),
        "softplus": dict(color="#009E73", linestyle=":", linewidth=2.5),
        "torch_bce": dict(color="#E69F00", linestyle=(0, (5, 1, 1, 1)), linewidth=2.0),
        "torch_bce_with_logits": dict(color="#56B4E9", linestyle=(0, (1, 1)), linewidth=2.0),
    }
    Inputs = Inputs

    @cached_property
    def peer_methods(self) -> dict:
        from stabcli.losses.bce import peers

        return peers.METHODS

    def with_probabilities(self):
        from stabcli.losses.bce import probs

        return probs.FAMILY

    def own_excluded(self, method: str, options: dict) -> str | None:
        if method == "torch_bce" and not bool(np.all(np.asarray(options.get("pos_weight", 1.0)) == 1)):
            return "torch_bce is left out: F.binary_cross_entropy has no pos_weight"
        return None

    def exact_loss(self, *element: float):
        from stabcli.losses.bce.reference import exact_loss

        return exact_loss(*element)

    def exact_grad(self, *element: float):
        from stabcli.losses.bce.reference import exact_grad

        return exact_grad(*element)

    def grad_details(self, backend, fmt, method, arrays, reduction="none"):
        if method not in formulas.METHODS:  # a peer library's (imports nothing otherwise)
            gradient = super().grad_details(backend, fmt, method, arrays, reduction)
            if gradient is not None:  # a clip that fired also changed the gradient (torch.clip's backward is 0)
                ev, _ = self.evaluate(backend, fmt, method, arrays)
                if ev.clamp_changed is not None:
                    gradient.clamped = np.broadcast_to(ev.clamp_changed, gradient.grad.shape).copy()
            return gradient
        from stabcli.losses.bce.gradients import grad_details

        return grad_details(backend, fmt, method, arrays, reduction)

    def grad_of(self, backend, fmt, method, arrays, reduction="none", broadcast=True):
        if method not in formulas.METHODS:  # a peer library's (imports nothing otherwise)
            from stabcli.losses.bce.peers import grad_of

            n = np.broadcast_shapes(*(np.shape(a) for a in arrays.values()))
            full = {k: np.broadcast_to(np.asarray(a, dtype=fmt.np_dtype), n) for k, a in arrays.items()}
            g = grad_of(method, fmt, full)
            if g is not None and reduction == "mean":
                g = (g / fmt.np_dtype.type(max(g.size, 1))).astype(fmt.np_dtype)
            return g
        from stabcli.losses.bce.gradients import grad_of

        return grad_of(backend, fmt, method, arrays, reduction, broadcast)

    @cached_property
    def notes(self):
        from stabcli.losses.bce import notes

        return notes

    def file_reference(self, arrays, fmt):
        from stabcli.losses.bce.reference import check_reference

        return check_reference(arrays["logits"], arrays["targets"], fmt, float(arrays["weight"]),
                               float(arrays["pos_weight"]))

    @property
    def file_reference_error(self) -> tuple[float, float]:
        from stabcli.losses.bce.reference import FAST_LOSS_ABS, FAST_LOSS_REL

        return FAST_LOSS_REL, FAST_LOSS_ABS

    def file_grad_reference(self, method, arrays, fmt):
        from stabcli.losses.bce.reference import check_grad_reference

        return check_grad_reference(arrays["logits"], arrays["targets"], fmt, float(arrays["weight"]),
                                    float(arrays["pos_weight"]))

    def figure_stem(self, dtype=None, backend=None) -> str:
        """bce_<dtype>_<backend>; the overview keeps its first name, breakdown_overview (the README shows it)."""
        return "breakdown_overview" if dtype is None else super().figure_stem(dtype, backend)

    def companion(self, inputs, backends, methods):
        """For one logit and a hard target: BCELoss at the other target (what the clamp does there), or None."""
        y = float(inputs.targets.reshape(-1)[0])
        if inputs.size != 1 or y not in (0.0, 1.0) or methods is not None:
            return None
        other = Inputs(inputs.logits, 1.0 - inputs.targets, inputs.weight, inputs.pos_weight, inputs.reduction)
        pw_is_one = bool(np.all(inputs.pos_weight == 1))
        bce = ["torch_bce"] if "torch" in backends and pw_is_one else ["clamped"]
        return other, [b for b in backends if b == "torch"] or list(backends), bce

    def check_sweep(self, targets, weight, pos_weight, options) -> None:
        for t in targets:
            if not (0 <= t <= 1):
                raise InputError(f"target {t} is outside [0, 1]; targets are probabilities in [0, 1]")
        for name, v in (("weight", weight), ("pos_weight", pos_weight)):
            if not (math.isfinite(v) and v >= 0):
                raise InputError(f"{name} {v} is not allowed; {name}s are finite numbers >= 0")
        if options:
            raise InputError(f"binary cross-entropy has no sweep option {', '.join(options)}")

    def sweep_case(self, fmt, target, weight=1.0, pos_weight=1.0, **options) -> SweepCase:
        return SweepCase(fmt, float(target), float(weight), float(pos_weight))

    def predict_thresholds(self, fmt, rtol=None):
        from stabcli.losses.bce.thresholds import predict, predict_grad

        return predict(fmt, rtol) + predict_grad(fmt, rtol)

    def explain_threshold(self, t, fmt) -> str:
        from stabcli.losses.bce.thresholds import explain

        return explain(t, fmt)


FAMILY = BCE()
