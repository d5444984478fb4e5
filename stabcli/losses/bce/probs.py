"""Binary cross-entropy on probabilities (``--probs``): the first argument holds p, not logits.

What a user of ``nn.BCELoss`` has in hand is p = sigmoid(x), already computed (seed article 004 feeds BCELoss the
probabilities [0.8, 0.2, 0.4] with targets [1, 0, 0]: 0.3190). With ``--probs``:

* the probability methods take p directly, as rounded to the dtype: ``naive`` is -w·(pw·y·log p + (1-y)·log(1-p))
  op by op, ``clamped`` BCELoss's rule with each log clamped at -100, ``torch_bce`` the real
  ``F.binary_cross_entropy(p, y)``. Their gradient is d loss / d p (BCELoss's backward: (p-y)/max(p(1-p), 1e-12)).
* the logit methods (``logsumexp``, ``softplus``, ``torch_bce_with_logits``) need a logit: x = logit(p) recovered
  from the rounded p in float64 (:func:`logit64`), then rounded to the dtype; the trace says so. p = 1 gives
  x = +inf, p = 0 gives -inf (their exact limits). Their gradient is d loss / d x at that logit.
* the reference is mpmath on p as given (rounded to the dtype): -w·(pw·y·log p + (1-y)·log(1-p)), with
  0·log 0 = 0 (a zero coefficient contributes nothing) and +inf where a log of 0 has a coefficient. So a logit
  method's error includes the rounding of the recovered logit: what feeding it logit(p) costs.

A p that rounds to exactly 1.0 (0.9999999 in float16) is said so by the compare engine's input notes, and the
trace shows 1 - p = 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from stabcli.core.errors import InputError
from stabcli.core.exact import in_mpmath
from stabcli.core.formats import Format, to_float64
from stabcli.losses.base import Evaluation, Step
from stabcli.losses.bce import BCE, formulas

PROBABILITY_METHODS = frozenset({"naive", "clamped", "torch_bce"})
INPUT_KEYS = ("probs", "targets", "weight", "pos_weight", "logits")  # logits: recovered from probs


def logit64(p) -> np.ndarray:
    """logit(p) = log(p/(1-p)) in float64 without cancellation: log1p((2p-1)/(1-p)) on [0.25, 0.75] (2p-1 and 1-p
    exact there), log(p) - log1p(-p) outside (the two logs have the same sign, the larger one dominates); ±inf at
    p = 1 and 0, NaN for NaN."""
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(all="ignore"):
        middle = (p >= 0.25) & (p <= 0.75)
        out = np.where(middle, np.log1p((2 * p - 1) / (1 - p)), np.log(p) - np.log1p(-p))
    return out


@dataclass
class ProbsInputs:
    """What the user asked ``compare --probs`` for, as float64 arrays broadcast to one shape."""

    probs: np.ndarray
    targets: np.ndarray
    weight: np.ndarray
    pos_weight: np.ndarray
    reduction: str = "mean"

    @property
    def size(self) -> int:
        return int(self.probs.size)

    @property
    def logits(self) -> np.ndarray:
        """The logits recovered from p in float64 (before any rounding to a dtype)."""
        return logit64(self.probs)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"probs": self.probs, "targets": self.targets, "weight": self.weight, "pos_weight": self.pos_weight}

    def as_json(self) -> dict:
        """The inputs as compare's JSON shows them: the probabilities as given, and under DESIGN.md's ``logits``
        the logits the logit methods start from (logit(p) in float64, ±inf at p = 1 and 0)."""
        return {"probs": np.atleast_1d(self.probs).tolist(), "logits": np.atleast_1d(self.logits).tolist(),
                "targets": np.atleast_1d(self.targets).tolist(),
                "weight": self.weight.tolist(), "pos_weight": self.pos_weight.tolist()}


def check_probabilities(p: np.ndarray, text: str) -> None:
    """Every p in [0, 1] (NaN and inf refused), or one line naming the first that is not."""
    from stabcli.core.inputs import typed_item

    bad = ~((p >= 0) & (p <= 1))
    if bad.any():
        raise InputError(f"probability {typed_item(text, p, bad)} is outside [0, 1]; with --probs the first "
                         "argument holds probabilities p in [0, 1] (leave --probs out for logits)")


def _from_p(step_name: str, tail):
    """A probability method: the given p (as rounded to the dtype) straight into ``tail`` (formulas.*_from_p)."""
    def formula(ops, p, y, w, pw, x=None) -> Evaluation:
        ev = Evaluation(None)
        p = ev.step(step_name, p, "given_p", p)
        return tail(ev, ops, p, y, w, pw)

    return formula


def _via_logit(method: str):
    """A logit method on the logit recovered from p: the base formula at x, its trace led by that step."""
    base = formulas.METHODS[method]

    def formula(ops, p, y, w, pw, x) -> Evaluation:
        ev = base(ops, x, y, w, pw)
        ev.steps.insert(0, Step("x = logit(p), float64", x, "logit_from_p", (p,)))
        return ev

    return formula


METHODS = {
    "naive": _from_p("p (given)", formulas.naive_from_p),
    "clamped": _from_p("p (given)", formulas.clamped_from_p),
    "logsumexp": _via_logit("logsumexp"),
    "softplus": _via_logit("softplus"),
    "torch_bce": _from_p("p (given)", formulas.torch_bce_from_p),
    "torch_bce_with_logits": _via_logit("torch_bce_with_logits"),
}


def exact_loss_p(p: float, y: float, w: float = 1.0, pw: float = 1.0):
    """-w·(pw·y·log p + (1-y)·log(1-p)) in mpmath: 0·log 0 = 0, and +inf where a log of 0 has a coefficient."""
    def loss(mp, p, y, w, pw):
        def term(coef, q):
            if coef == 0:
                return mp.zero
            return coef * (mp.ninf if q == 0 else mp.log(q))

        inner = term(pw * y, p) + term(1 - y, 1 - p)
        return mp.zero if w == 0 else -w * inner

    return in_mpmath(loss, p, y, w, pw)


def exact_grad_p(p: float, y: float, w: float = 1.0, pw: float = 1.0):
    """d loss / d p = w·((1-y)/(1-p) - pw·y/p) in mpmath (a zero coefficient contributes 0; 1/0 = inf)."""
    def grad(mp, p, y, w, pw):
        def term(coef, q):
            if coef == 0:
                return mp.zero
            return mp.inf if q == 0 else coef / q

        return w * (term(1 - y, 1 - p) - term(pw * y, p))

    return in_mpmath(grad, p, y, w, pw)


class BCEProbs(BCE):
    """Binary cross-entropy whose inputs are probabilities (see the module)."""

    title = "binary cross-entropy on probabilities"
    input_keys = INPUT_KEYS
    input_labels = {"probs": "probability", "targets": "target", "weight": "weight", "pos_weight": "pos_weight",
                    "logits": "logit"}
    variable = "p"
    variable_label = "probability p"
    probabilities = True
    method_formulas = METHODS

    def grad_variable(self, method: str) -> str:
        return "p" if method in PROBABILITY_METHODS else "x"

    @cached_property
    def peer_methods(self) -> dict:
        return {}

    def round_inputs(self, fmt: Format, arrays: dict) -> dict:
        """p, the target, weight and pos_weight rounded to the dtype, and the logit recovered from that p in float64,
        rounded to the dtype."""
        out = {k: fmt.round(v) for k, v in arrays.items() if k != "logits"}
        out["logits"] = fmt.round(logit64(to_float64(out["probs"])))
        return out

    def exact_loss(self, p, y, w=1.0, pw=1.0, x=None):
        return exact_loss_p(p, y, w, pw)

    def exact_grad(self, p, y, w=1.0, pw=1.0, x=None):
        return exact_grad_p(p, y, w, pw)

    def method_grad_reference(self, method: str, arrays: dict, reduction: str):
        """A logit method's gradient is d loss / d x at the recovered logit: its own exact values."""
        if method in PROBABILITY_METHODS:
            return None
        from stabcli.core import exact
        from stabcli.losses.bce.reference import exact_grad

        shape = np.broadcast_shapes(*(np.shape(a) for a in arrays.values()))
        wide = {k: np.broadcast_to(a, shape).ravel() for k, a in arrays.items()}
        grads = [exact_grad(float(wide["logits"][i]), float(wide["targets"][i]), float(wide["weight"][i]),
                            float(wide["pos_weight"][i])) for i in range(int(np.prod(shape, dtype=np.int64)))]
        return exact.reduce_exact_grad(grads, reduction)

    def grad_details(self, backend, fmt, method, arrays, reduction="none"):
        from stabcli.core.autodiff import Gradient, differentiate, prepare
        from stabcli.losses.bce import gradients

        if method not in PROBABILITY_METHODS:
            logit_arrays = {"logits": arrays["logits"], "targets": arrays["targets"], "weight": arrays["weight"],
                            "pos_weight": arrays["pos_weight"]}
            return gradients.grad_details(backend, fmt, method, logit_arrays, reduction)
        (p, *consts), shape = prepare(arrays, INPUT_KEYS, fmt)
        grad, _ = differentiate(backend, fmt, METHODS[method], p, consts, reduction)
        y, w, pw = (to_float64(c) for c in consts[:3])
        p64 = to_float64(p)
        details: dict = {"p": p64, "y": y}
        with np.errstate(all="ignore"):
            if method == "clamped":  # the -100 clamp fired where a log of a coefficient-carrying term is below it
                clamped = ((np.log(p64) < formulas.LOG_CLAMP) & (pw * y != 0)) | \
                          ((np.log1p(-p64) < formulas.LOG_CLAMP) & (1 - y != 0))
            elif method == "torch_bce":  # BCELoss's backward: (p-y)/max(p(1-p), 1e-12) in its kernel's dtype
                kfmt = gradients._kernel_format(backend, fmt)
                pk = kfmt.round(p64)
                prod = to_float64(((kfmt.np_dtype.type(1) - pk) * pk).astype(kfmt.np_dtype))
                eps = float(to_float64(kfmt.round(gradients.BCE_GRAD_EPSILON)))
                details.update({"p(1-p)": prod, "epsilon": eps, "denominator": np.maximum(prod, eps),
                                "kernel": kfmt.name})
                clamped = (prod < eps) & (p64 != y)
            else:
                clamped = np.zeros(shape, dtype=bool)
        return Gradient(grad, np.asarray(clamped & (w != 0), dtype=bool), details)

    def grad_of(self, backend, fmt, method, arrays, reduction="none", broadcast=True):
        return self.grad_details(backend, fmt, method, arrays, reduction).grad

    def companion(self, inputs, backends, methods):
        return None

    def file_reference(self, arrays, fmt):
        """-w·(pw·y·log p + (1-y)·log1p(-p)) in float64: two non-negative terms, each log within an ulp or two, so
        within a few ulps (2^-49 relative with room, as BCE's softplus form); certified for ``fmt`` as there."""
        p, y = arrays["probs"], arrays["targets"]
        w, pw = float(arrays["weight"]), float(arrays["pos_weight"])
        with np.errstate(all="ignore"):
            pos = np.where(pw * y == 0, 0.0, -(pw * y) * np.log(p))
            neg = np.where(1 - y == 0, 0.0, -(1 - y) * np.log1p(-p))
            fast = np.where(w == 0, 0.0, w * (pos + neg))
        return _certify(fast, 2.0**-49 * np.abs(fast) + 2.0**-1060, fmt,
                        lambda i: exact_loss_p(float(p[i]), float(y[i]), w, pw))

    def file_grad_reference(self, method, arrays, fmt):
        if method not in PROBABILITY_METHODS:
            return super().file_grad_reference(method, arrays, fmt)  # BCE's, at the recovered logits
        p, y = arrays["probs"], arrays["targets"]
        w, pw = float(arrays["weight"]), float(arrays["pos_weight"])
        with np.errstate(all="ignore"):
            t1 = np.where(1 - y == 0, 0.0, w * ((1 - y) / (1 - p)))
            t2 = np.where(pw * y == 0, 0.0, w * ((pw * y) / p))
            fast = t1 - t2
            bound = 2.0**-47 * (np.abs(t1) + np.abs(t2)) + 2.0**-1060
        return _certify(fast, bound, fmt, lambda i: exact_grad_p(float(p[i]), float(y[i]), w, pw))

    @cached_property
    def notes(self):
        from stabcli.losses.bce import probs_notes

        return probs_notes

    def parse_inputs(self, logits, targets, reduction="mean", weight="1", pos_weight="1", **options):
        from stabcli.core.inputs import parse_elementwise

        arrays = parse_elementwise(logits, targets, weight, pos_weight, "probability", "probabilities",
                                   check_probabilities)
        return ProbsInputs(*arrays, reduction=reduction)

    def sweep_case(self, *args, **kwargs):
        raise InputError("--probs is for compare and check; a sweep varies logits")


def _certify(fast: np.ndarray, bound: np.ndarray, fmt: Format, exact):
    """(nearest, for_rounding): ``fast`` where ``fast ± bound`` round to one value of ``fmt``, mpmath's ``exact(i)``
    elsewhere; float64 as it is."""
    from stabcli.core.exact import to_float64_nearest, to_float64_odd

    if fmt.bits == 64:
        return fast, fast
    with np.errstate(all="ignore"):
        lo, hi = to_float64(fmt.round(fast - bound)), to_float64(fmt.round(fast + bound))
    nearest, for_rounding = fast.copy(), fast.copy()
    for i in np.flatnonzero(~(lo == hi) & np.isfinite(fast)):  # infinite: the exact limit already
        e = exact(int(i))
        nearest[i], for_rounding[i] = to_float64_nearest(e), to_float64_odd(e)
    return nearest, for_rounding


FAMILY = BCEProbs()
