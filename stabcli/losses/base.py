"""What a loss family plugs into the commands, and what its formulas hand back.

A *loss family* (binary cross-entropy, softmax cross-entropy, ...) is one package under ``stabcli/losses/``:
its formulas, its exact reference, its notes, its predicted thresholds. The engines in ``stabcli/commands/``
(compare, sweep, thresholds, figures' curves) never name a family's methods or inputs: they call the hooks of
:class:`LossFamily` below, and the family's package subclasses it once. ``stabcli/losses/__init__.py`` holds the
registry, one line per family.

Nothing here prints, imports click or rich, or imports torch/mpmath at module level.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


# --- what a formula returns -----------------------------------------------------------------------------------

@dataclass
class Step:
    """One named intermediate of a formula.

    ``kind`` says what produced it ("sigmoid", "exp", "softplus", "log", "clamp", "mul", "sub", "arith", "loss",
    or a family's own kinds such as "torch_bce") so that the family's notes can say what happened; ``args`` are
    the operand values (for a mul: the two factors).
    """

    name: str
    value: Any
    kind: str
    args: tuple = ()


@dataclass
class Evaluation:
    """A method's per-element loss (backend array of the dtype) and its steps in order."""

    loss: Any
    steps: list[Step] = field(default_factory=list)
    clamp_changed: Any = None  # boolean array: where a clamp in the method changed the loss (None: no clamp)
    unclamped: Any = None  # the same formula without the clamp: what the clamp replaced
    # For a method that calls a library (torch's own losses): reduction -> the library's call with that
    # reduction. A user's F.binary_cross_entropy_with_logits(x, y) takes the mean inside torch, and its backward
    # divides there, which rounds differently from differentiating loss.mean() of the per-element losses.
    library_reduce: Callable[[str], Any] | None = None

    def step(self, name: str, value, kind: str, *args):
        self.steps.append(Step(name, value, kind, args))
        return value

    def reduced(self, ops, reduction: str):
        """The loss under ``reduction`` ("none", "mean", "sum"): the library's own reduction where the method
        calls a library, else ``ops.reduce`` of the per-element loss."""
        if reduction != "none" and self.library_reduce is not None:
            return self.library_reduce(reduction)
        return ops.reduce(self.loss, reduction)


# --- predicted thresholds -------------------------------------------------------------------------------------

@dataclass
class Threshold:
    """One predicted breakdown logit, the measurement it is checked against, and what explains a difference."""

    dtype: str
    name: str  # what happens there
    formula: str  # how the prediction follows from the format's constants
    predicted: float
    backend: str  # where it is measured: a sweep row's backend, method, target and breakdown key
    method: str
    target: float
    key: str
    measured: float | None = None
    explanation: str = ""
    quantity: str = "loss"  # "loss": the row's loss breakdown ``key``; "gradient": its gradient breakdown

    @property
    def difference(self) -> float | None:
        return None if self.measured is None else self.measured - self.predicted


# --- the plug-in interface ------------------------------------------------------------------------------------

class LossFamily:
    """The hooks every engine calls. A family subclasses this once and registers the instance.

    Inputs: a family's compare inputs are an object with ``arrays()`` (a dict of float64 arrays of one shape,
    keyed by :attr:`input_keys`, the differentiated variable first), ``reduction`` and ``size``. Sweep inputs are
    a *case* (:meth:`sweep_case`): the swept variable is one number per point (a logit, a logit gap); the case
    turns those values into a method's arrays and knows their reference.
    """

    name: str = ""
    title: str = ""
    method_names: tuple[str, ...] = ()
    torch_only: frozenset[str] = frozenset()
    input_keys: tuple[str, ...] = ()
    input_labels: dict[str, str] = {}  # input key -> the word a note uses for one of its values ("logit")
    variable: str = "x"  # what the swept variable is called in sentences and figures

    # methods -----------------------------------------------------------------------------------------------
    def methods_for(self, backend: str) -> tuple[str, ...]:
        """The methods a backend can run, in the contract's order."""
        return tuple(m for m in self.method_names if backend == "torch" or m not in self.torch_only)

    def formula(self, method: str) -> Callable:
        """``method``'s formula: f(ops, *arrays in input_keys order) -> Evaluation."""
        raise NotImplementedError

    def excluded(self, method: str, options: dict) -> str | None:
        """Why ``method`` cannot run with these options (weight, pos_weight, ...), or None."""
        return None

    # exact reference (mpmath) ------------------------------------------------------------------------------
    def exact_loss(self, *element: float):
        raise NotImplementedError

    def exact_grad(self, *element: float):
        raise NotImplementedError

    # gradients ---------------------------------------------------------------------------------------------
    def grad_details(self, backend: str, fmt, method: str, arrays: dict, reduction: str = "none"):
        """The gradient of ``method`` (``core.autodiff.Gradient``) and where a clamp changed it."""
        raise NotImplementedError

    def grad_of(self, backend: str, fmt, method: str, arrays: dict, reduction: str = "none", broadcast: bool = True):
        """d loss / d (the variable) per element, in the dtype, vectorised (sweeps pass a chunk of logits)."""
        raise NotImplementedError

    # text --------------------------------------------------------------------------------------------------
    notes: Any = None  # a module with note, verdict, grad_steps, grad_verdict, summary, sweep_summary

    def companion(self, inputs, backends, methods):
        """A second comparison a single-element compare also runs, for the summary to quote (BCE: BCELoss at the
        other hard target), as (inputs, backends, methods); None for none."""
        return None

    # sweeps ------------------------------------------------------------------------------------------------
    def sweep_case(self, fmt, target: float, weight: float = 1.0, pos_weight: float = 1.0):
        """The inputs of one (dtype, target) of a sweep: ``arrays(xs)``, ``reference(xs, cache)``,
        ``grad_reference(xs, cache)`` (each (nearest, for_rounding) float64 pairs), ``wide()``."""
        raise NotImplementedError

    # thresholds --------------------------------------------------------------------------------------------
    threshold_methods: tuple[str, ...] = ()  # the methods a thresholds sweep has to run

    def predict_thresholds(self, fmt, rtol: float | None = None) -> list[Threshold]:
        return []

    def explain_threshold(self, t: Threshold, fmt) -> str:
        return "agrees exactly" if t.measured == t.predicted else "differs"
