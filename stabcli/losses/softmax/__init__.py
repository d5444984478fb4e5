"""Softmax cross-entropy: log(exp/sum) and log(softmax) against the log-sum-exp form and torch's kernels.

The package, by file: ``formulas.py`` (the five methods), ``reference.py`` (mpmath and the float64 forms sweeps
use), ``gradients.py`` (d loss / d x for every logit), ``inputs.py`` (parsing rows of logits and class-index or
probability targets), ``notes.py`` (what each step did, verdicts, summaries), ``thresholds.py`` (breakdown gaps
predicted from a format's constants). This file plugs them into the engines.

Shapes: logits are rows (N, C), classes on the last axis (one vector (C,) is one row, as torch allows); a target
is a class index per row (int64, (N,)) or a probability vector per row ((N, C)), as torch tells them apart (the
same shape as the logits means probabilities). Sweeps vary the gap g of the rows [b + g, b, ..., b] (C classes,
shift b, default 3 classes and b = 0) and differentiate with respect to g (the first logit).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from stabcli.core.formats import Format, to_float64
from stabcli.losses.base import LossFamily
from stabcli.losses.softmax import formulas

DEFAULT_CLASSES = 3


@dataclass
class Inputs:
    """What the user asked ``compare`` for: rows of logits, their targets, per-class weights, label smoothing."""

    logits: np.ndarray  # (N, C) float64
    targets: np.ndarray  # (N,) int64 class indices, or (N, C) float64 probabilities
    weight: np.ndarray  # (C,) float64
    label_smoothing: float = 0.0
    reduction: str = "mean"
    unbatched: bool = False  # given as one vector (C,): shown back as one

    @property
    def size(self) -> int:
        return int(self.logits.shape[0])

    @property
    def classes(self) -> int:
        return int(self.logits.shape[-1])

    def arrays(self) -> dict[str, np.ndarray]:
        return {"logits": self.logits, "targets": self.targets, "weight": self.weight,
                "label_smoothing": np.array(float(self.label_smoothing))}

    def as_json(self) -> dict:
        one = self.unbatched
        return {"logits": (self.logits[0] if one else self.logits).tolist(),
                "targets": (self.targets[0] if one else self.targets).tolist(),
                "weight": self.weight.tolist(), "label_smoothing": float(self.label_smoothing)}


def _target_key(target):
    """A sweep target as a hashable value: a class index (int) or a tuple of probabilities."""
    if np.ndim(target) == 0:
        return int(target)
    return tuple(float(v) for v in np.ravel(target))


@dataclass
class SweepCase:
    """One (dtype, target) of a softmax sweep over the gap g of the rows [shift + g, shift, ..., shift]."""

    fmt: Format
    target: object  # a class index (int) or a tuple of probabilities, one per class
    weight: tuple  # one per class
    pos_weight: float = 1.0
    classes: int = DEFAULT_CLASSES
    shift: float = 0.0
    label_smoothing: float = 0.0

    def rows(self, xs: np.ndarray) -> np.ndarray:
        """The logit rows of the dtype for gaps ``xs`` (values of the dtype): the first logit is shift + g, rounded."""
        r = self.fmt.round
        first = xs if self.shift == 0 else r(to_float64(xs) + self.shift)
        out = np.empty(np.shape(xs) + (self.classes,), dtype=self.fmt.np_dtype)
        out[...] = r(np.array(self.shift))
        out[..., 0] = first
        return out

    @cached_property
    def _constants(self) -> dict:
        r = self.fmt.round
        t = self.target
        targets = np.array(t, dtype=np.int64) if isinstance(t, int) else r(np.array(t, dtype=np.float64))
        return {"targets": targets, "weight": r(np.array(self.weight, dtype=np.float64)),
                "label_smoothing": np.array(float(self.label_smoothing))}

    def arrays(self, xs: np.ndarray) -> dict:
        return {"logits": self.rows(xs), **self._constants}

    def _exact_inputs(self):
        c = self._constants
        t = self.target if isinstance(self.target, int) else to_float64(c["targets"])
        return t, to_float64(c["weight"]), self.label_smoothing

    def reference(self, xs: np.ndarray, cache: dict | None = None, fmt: Format | None = None):
        """(nearest, for_rounding) at the gaps ``xs`` (``reference.sweep_reference``; the same for any ``fmt``)."""
        from stabcli.losses.softmax import reference

        return reference.sweep_reference(to_float64(self.rows(xs)), self.fmt.bits, *self._exact_inputs(), cache=cache)

    def grad_reference(self, xs: np.ndarray, cache: dict | None = None):
        from stabcli.losses.softmax import reference

        return reference.sweep_grad_reference(to_float64(self.rows(xs)), self.fmt, *self._exact_inputs(), cache=cache)

    def grad_reference_points(self, xs64: np.ndarray) -> np.ndarray:
        from stabcli.losses.softmax import reference

        rows = to_float64(self.rows(self.fmt.round(np.asarray(xs64, dtype=np.float64))))
        return reference.exact_grad0_points(rows, *self._exact_inputs())


class Softmax(LossFamily):
    name = "softmax"
    title = "softmax cross-entropy"
    method_names = formulas.METHOD_NAMES
    torch_only = formulas.TORCH_ONLY
    method_formulas = formulas.METHODS
    input_keys = formulas.INPUT_KEYS
    input_labels = {"logits": "logit", "targets": "target", "weight": "weight", "label_smoothing": "label_smoothing"}
    variable = "g"
    variable_label = "gap g (logits [g, 0, 0])"
    compare_variable = "x"  # compare and check: the rows of logits themselves, and d loss / d x
    # Okabe-Ito colours (colour-blind safe); each method the line of its BCE counterpart
    styles = {
        "naive": dict(color="#D55E00", linestyle="-", linewidth=2.0),
        "log_of_softmax": dict(color="#CC79A7", linestyle="--", linewidth=2.0),
        "logsumexp": dict(color="#0072B2", linestyle="-.", linewidth=2.0),
        "torch_log_softmax_nll": dict(color="#E69F00", linestyle=(0, (5, 1, 1, 1)), linewidth=2.0),
        "torch_cross_entropy": dict(color="#56B4E9", linestyle=(0, (1, 1)), linewidth=2.0),
    }
    threshold_methods = ("naive", "log_of_softmax", "logsumexp", "torch_cross_entropy")
    default_targets = (0, 1)
    threshold_targets = (0, 1, (1.0, 0.0, 0.0))
    options = ("label_smoothing", "classes", "shift")
    Inputs = Inputs

    def parse_inputs(self, logits, targets, reduction="mean", weight="1", pos_weight="1", label_smoothing=None,
                     names=None, **options):
        from stabcli.losses.softmax.inputs import no_pos_weight, parse

        no_pos_weight(pos_weight)
        return parse(logits, targets, weight, 0.0 if label_smoothing is None else label_smoothing, reduction, names)

    def parse_sweep(self, targets, weight, pos_weight, classes=None, shift=None, label_smoothing=None, **options):
        from stabcli.losses.softmax.inputs import parse_sweep

        return parse_sweep(targets, weight, pos_weight, classes, shift, label_smoothing)

    @cached_property
    def peer_methods(self) -> dict:
        from stabcli.losses.softmax import peers

        return peers.METHODS

    def own_excluded(self, method: str, options: dict) -> str | None:
        if method != "torch_log_softmax_nll":
            return None
        if "targets" in options:  # compare: the targets array (int64 class indices or float probabilities)
            probabilities = np.asarray(options["targets"]).dtype.kind == "f"
        else:  # sweep: one target, a class index or a tuple of probabilities
            probabilities = np.ndim(options.get("target", 0)) > 0
        if probabilities or float(np.asarray(options.get("label_smoothing", 0.0))):
            return ("torch_log_softmax_nll is left out: F.nll_loss takes class indices only, without label "
                    "smoothing")
        return None

    # inputs and reductions ---------------------------------------------------------------------------------
    def run_formula(self, method: str, ops, values: list, shared: dict | None = None):
        """log p once for every target of a sweep's chunk (``formulas.evaluate_shared``); the other methods, the
        peer libraries' among them (--peers), as :meth:`LossFamily.run_formula` runs them."""
        if shared is None or method not in formulas.LOG_P:
            return super().run_formula(method, ops, values)
        return formulas.evaluate_shared(method, ops, values, shared)

    def round_inputs(self, fmt, arrays: dict) -> dict:
        """Logits, probability targets and weights rounded to the dtype; class indices and ε kept as given."""
        t = arrays["targets"]
        return {"logits": fmt.round(arrays["logits"]),
                "targets": t if t.dtype.kind in "iu" else fmt.round(t),
                "weight": fmt.round(arrays["weight"]),
                "label_smoothing": np.asarray(arrays["label_smoothing"], dtype=np.float64)}

    def backend_inputs(self, ops, arrays: dict, broadcast: bool = True) -> list:
        t = np.asarray(arrays["targets"])
        return [ops.array(arrays["logits"]), ops.index(t) if t.dtype.kind in "iu" else ops.array(t),
                ops.array(arrays["weight"]), float(np.asarray(arrays["label_smoothing"]))]

    def mean_denominator(self, ops, arrays: dict):
        """What torch's mean divides by, in the dtype: Σ w[y] for class indices, the number of rows otherwise."""
        t = np.asarray(arrays["targets"])
        n_rows = int(np.prod(np.shape(arrays["logits"])[:-1], dtype=np.int64))
        if t.dtype.kind in "iu":
            wy = np.broadcast_to(np.asarray(arrays["weight"])[t], (n_rows,))
            return ops.reduce(ops.array(np.ascontiguousarray(wy)), "sum")
        return ops.const(n_rows)

    def reduce(self, ops, loss, reduction: str, arrays: dict):
        """torch's rule: "mean" divides the summed row losses by Σ w[y] (class indices) or by N (probabilities)."""
        if reduction == "none":
            return loss
        total = ops.reduce(loss, "sum")
        return total if reduction == "sum" else total / self.mean_denominator(ops, arrays)

    def reduction_note(self, arrays: dict, reduction: str) -> str:
        from stabcli.core.numbers import fmt_number
        from stabcli.losses.softmax.reference import mean_denominator

        if reduction != "mean" or np.asarray(arrays["targets"]).dtype.kind not in "iu":  # probabilities: / rows
            return ""
        den = mean_denominator(arrays["targets"], np.asarray(arrays["weight"], dtype=np.float64).reshape(-1))
        return (f"torch's mean divides the weighted sum by Σ w[y] = {fmt_number(float(den), 10)}, the weights of the "
                "target classes, not by the number of rows")

    def exact_reference(self, arrays: dict, reduction: str):
        from stabcli.losses.softmax.reference import exact_reference

        return exact_reference(arrays["logits"], arrays["targets"], arrays["weight"],
                               float(np.asarray(arrays["label_smoothing"])), reduction)

    # gradients ---------------------------------------------------------------------------------------------
    def grad_details(self, backend, fmt, method, arrays, reduction="none"):
        from stabcli.losses.softmax.gradients import grad_details

        return grad_details(backend, fmt, method, arrays, reduction)

    def grad_of(self, backend, fmt, method, arrays, reduction="none", broadcast=True):
        from stabcli.losses.softmax.gradients import grad_of

        return grad_of(backend, fmt, method, arrays, reduction)

    def sweep_grad(self, case, backend, method, xs):
        """d loss / d g: the derivative with respect to the first logit (the gap), one forward pass in numpy."""
        from stabcli.losses.softmax.gradients import grad_of

        return grad_of(backend, case.fmt, method, case.arrays(xs), "none", columns=[0])[..., 0]

    # text --------------------------------------------------------------------------------------------------
    @cached_property
    def notes(self):
        from stabcli.losses.softmax import notes

        return notes

    def target_label(self, target) -> str:
        if np.ndim(target) == 0:
            return f"class {int(target)}"
        return "target [" + ", ".join(f"{v:g}" for v in target) + "]"

    # sweeps ------------------------------------------------------------------------------------------------
    def check_sweep(self, targets, weight, pos_weight, options: dict) -> None:
        from stabcli.losses.softmax.inputs import check_sweep

        check_sweep(targets, weight, pos_weight, options)

    def sweep_notes(self, fmt, options: dict) -> list[str]:
        from stabcli.losses import plain_notes

        shift = float(options.get("shift", 0.0))
        rounded = float(to_float64(fmt.round(np.array(shift))))
        if np.isfinite(rounded):
            return []
        value = plain_notes.num(rounded) if fmt.has_inf else "NaN"
        return [f"{fmt.name}: --shift {plain_notes.num(shift)} is beyond {fmt.name}'s largest value "
                f"{plain_notes.num(fmt.max)}, so it is {value} there"
                f"{'' if fmt.has_inf else ' (the format has no inf)'}: every logit of every row is {value} whatever "
                "g, so the counts there say nothing about g; give a --shift within the dtype's range"]

    def sweep_case(self, fmt, target, weight=1.0, pos_weight=1.0, classes=DEFAULT_CLASSES, shift=0.0,
                   label_smoothing=0.0) -> SweepCase:
        w = tuple(float(v) for v in np.broadcast_to(np.asarray(weight, dtype=np.float64), (int(classes),)))
        return SweepCase(fmt, _target_key(target), w, 1.0, int(classes), float(shift), float(label_smoothing))

    # thresholds --------------------------------------------------------------------------------------------
    def predict_thresholds(self, fmt, rtol=None):
        from stabcli.losses.softmax.thresholds import predict

        return predict(fmt, rtol)

    def explain_threshold(self, t, fmt) -> str:
        from stabcli.losses.softmax.thresholds import explain

        return explain(t, fmt)


FAMILY = Softmax()

__all__ = ["FAMILY", "Inputs", "Softmax", "SweepCase"]
