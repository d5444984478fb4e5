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
    # For a single element whose loss a clip or clamp changed: which one, in words ("Keras's clip of p to [1e-7,
    # 1 - 1e-7] replaced p = 1 by ..."), for the verdicts; None: the -100 clamp, BCELoss's rule
    clip_note: str | None = None
    # For a method that calls a library (torch's own losses): reduction -> the library's call with that
    # reduction. A user's F.binary_cross_entropy_with_logits(x, y) takes the mean inside torch, and its backward
    # divides there, which rounds differently from differentiating loss.mean() of the per-element losses.
    library_reduce: Callable[[str], Any] | None = None

    def step(self, name: str, value, kind: str, *args):
        self.steps.append(Step(name, value, kind, args))
        return value

    def reduced(self, ops, reduction: str, otherwise: Callable[[Any], Any] | None = None):
        """The loss under ``reduction`` ("none", "mean", "sum"): the library's own reduction where the method
        calls a library, else ``otherwise`` (the family's rule, given the per-element loss) or ``ops.reduce``."""
        if reduction != "none" and self.library_reduce is not None:
            return self.library_reduce(reduction)
        if otherwise is not None:
            return otherwise(self.loss)
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

    Inputs: a family's compare inputs are an object with ``arrays()`` (a dict of float64 arrays, or int64 class
    indices, keyed by :attr:`input_keys`, the differentiated variable first), ``reduction`` and ``size`` (the number
    of loss elements: logits for BCE, rows of logits for softmax). Sweep inputs are a *case* (:meth:`sweep_case`):
    the swept variable is one number per point (a logit, a logit gap); the case turns those values into a method's
    arrays and knows their reference.

    The defaults below suit an *elementwise* family, whose loss element i depends on element i of each input
    (broadcast like torch) and whose variable has one value per loss element: BCE, or a focal loss. A family with
    a class axis (softmax cross-entropy) overrides the input, reduction and reference hooks.
    """

    name: str = ""
    title: str = ""
    method_names: tuple[str, ...] = ()
    torch_only: frozenset[str] = frozenset()
    input_keys: tuple[str, ...] = ()
    input_labels: dict[str, str] = {}  # input key -> the word a note uses for one of its values ("logit")
    variable: str = "x"  # what the swept variable is called in sentences and figures
    variable_label: str = "logit x"  # a figure's axis label for it
    # what compare and check call their inputs, where it is not ``variable`` (softmax: they take rows of logits x,
    # where sweeps and figures vary the gap g of the rows [g, 0, 0])
    compare_variable: str | None = None
    # figures (``stabcli plot``, ``sweep --plot``)
    breakdown_method: str = "naive"  # the method whose first inf/NaN a figure marks (dashed lines, their logits)
    clamp_method: str | None = None  # the method whose clamp (status clamped) a figure shades, if any
    styles: dict[str, dict] = {}  # method -> its matplotlib line (color, linestyle, linewidth); others: grey
    slides: bool = False  # whether ``stabcli plot --slide`` draws this family's 16:9 slides
    pos_weight: bool = False  # whether the family takes --pos-weight (BCE); the CLI refuses it otherwise

    options: tuple[str, ...] = ()  # the family's own command-line options (softmax: label_smoothing, classes, shift)
    probabilities: bool = False  # whether the first input holds probabilities (``--probs``) rather than logits

    # what the user typed -----------------------------------------------------------------------------------
    def parse_inputs(self, logits: str, targets: str, reduction: str = "mean", weight: str = "1",
                     pos_weight: str = "1", **options):
        """compare's inputs from the command line's text. Default (elementwise): LOGITS and TARGETS numbers or lists
        broadcast like torch, targets in [0, 1], --weight and --pos-weight >= 0 (``core.inputs.parse_elementwise``),
        as ``self.Inputs(logits, targets, weight, pos_weight, reduction=...)``. Bad input raises ``InputError``
        (one line naming the value). ``options`` may hold ``names``: ("LOGITS 'x.npy'", "TARGETS 'y.npy'") when the
        text is a file's whole array (``check``), to name in messages in place of that text."""
        from stabcli.core.inputs import parse_elementwise

        return self.Inputs(*parse_elementwise(logits, targets, weight, pos_weight), reduction=reduction)

    def parse_sweep(self, targets: tuple[str, ...], weight: str, pos_weight: str, **options):
        """A sweep's (targets, weight, pos_weight, options for :meth:`sweep_case`) from the command line's text, or
        None: then the CLI reads them as an elementwise family's (targets in [0, 1], one weight and pos_weight)."""
        return None

    def with_probabilities(self):
        """The family that takes probabilities p as its first input (``--probs``), or None if it has none."""
        return None

    # methods -----------------------------------------------------------------------------------------------
    peer_methods: dict = {}  # method name -> core.peers.PeerMethod: a peer library's real loss (``--peers``)

    def methods_for(self, backend: str) -> tuple[str, ...]:
        """The methods a backend can run, in the contract's order; for the ``peers`` pseudo-backend, the peer
        methods whose libraries are installed."""
        if backend == "peers":
            return tuple(m for m, peer in self.peer_methods.items() if peer.available())
        return tuple(m for m in self.method_names if backend == "torch" or m not in self.torch_only)

    def missing_peers(self) -> list[str]:
        """The peer libraries this family has methods for that are not installed."""
        return list(dict.fromkeys(p.library for p in self.peer_methods.values() if not p.available()))

    method_formulas: dict[str, Callable] = {}  # the family's own methods: name -> formula; any other is a peer's

    def formula(self, method: str) -> Callable:
        """``method``'s formula: f(ops, *arrays in input_keys order) -> Evaluation; a peer method's from its module
        (which is imported only then)."""
        if method in self.method_formulas:
            return self.method_formulas[method]
        peer = self.peer_methods[method]
        return peer.load(peer.formula)

    def excluded(self, method: str, options: dict) -> str | None:
        """Why ``method`` cannot run with these options (weight, pos_weight, ...), or None: a peer method's module
        says (its ``excluded(method, options)``), the family's own methods :meth:`own_excluded`."""
        peer = None if method in self.method_formulas else self.peer_methods.get(method)
        if peer is None:
            return self.own_excluded(method, options)
        return peer.load("excluded")(method, options)

    def own_excluded(self, method: str, options: dict) -> str | None:
        """Why the family's own ``method`` cannot run with these options, or None (default: it always can)."""
        return None

    def runnable(self, backend: str, methods=None, options: dict | None = None) -> tuple[list[str], list[str]]:
        """What a command runs in ``backend``: (the methods, the notes on those left out).

        The methods are those the backend can run (:meth:`methods_for`), kept to ``methods`` in its order if given,
        less those :meth:`excluded` leaves out with these ``options`` (compare: the inputs' arrays; a sweep or a
        figure: weight, pos_weight, the family's own options and the case's ``target``). Every engine asks this
        one question, so that a sweep, its figure and compare leave out the same methods."""
        available = self.methods_for(backend)
        chosen = available if methods is None else [m for m in methods if m in available]
        kept, notes = [], []
        for method in chosen:
            note = self.excluded(method, options or {})
            if note is None:
                kept.append(method)
            elif note not in notes:
                notes.append(note)
        return kept, notes

    def evaluate(self, backend: str, fmt, method: str, arrays: dict, broadcast: bool = True,
                 shared: dict | None = None):
        """Run ``method`` on ``arrays`` (the inputs in the dtype); returns (Evaluation, ops), numerical warnings
        caught. The inputs are broadcast to one shape; with ``broadcast=False`` they keep their shapes (a sweep
        passes its constants as 0-d arrays, so that an operation on them alone is done once instead of once per
        logit; every per-element result is the same). ``shared``: see :meth:`run_formula`."""
        import numpy as np

        from stabcli.core.backends import make_ops

        ops = make_ops(backend, fmt)
        values = self.backend_inputs(ops, arrays, broadcast)
        with np.errstate(all="ignore"), ops.context():
            ev = self.run_formula(method, ops, values, shared)
        return ev, ops

    def run_formula(self, method: str, ops, values: list, shared: dict | None = None) -> Evaluation:
        """``method``'s formula on ``values`` (:meth:`backend_inputs`). ``shared`` is a dict a sweep keeps for one
        chunk of logits while it evaluates every target on them: a family whose methods compute a part from the
        logits alone (softmax's log p) may keep that part there and reuse it for the next target, with the same
        result. The sweep judges one (backend, method) for every target, then empties the dict before the next,
        so that one method's part is held at a time: key what is kept by method and operation set, and never
        change a kept value in place. Default: ``shared`` is not used."""
        return self.formula(method)(ops, *values)

    # inputs and reductions ---------------------------------------------------------------------------------
    def round_inputs(self, fmt, arrays: dict) -> dict:
        """The inputs as the methods receive them in ``fmt``: by default every array rounded to the dtype (a
        family keeps what is not a number of the dtype, such as class indices, as it is)."""
        return {k: fmt.round(v) for k, v in arrays.items()}

    def backend_inputs(self, ops, arrays: dict, broadcast: bool = True) -> list:
        """The arguments of a formula, in :attr:`input_keys` order, as values of ``ops`` (numpy arrays or torch
        tensors of the dtype). By default every input is broadcast to one shape; with ``broadcast=False`` each
        keeps its own (a sweep passes constants as 0-d arrays, so that an operation on them alone is done once)."""
        import numpy as np

        keys = self.input_keys
        if broadcast:
            shape = np.broadcast_shapes(*(np.shape(arrays[k]) for k in keys))
            return [ops.array(np.broadcast_to(arrays[k], shape)) for k in keys]
        return [ops.array(arrays[k]) for k in keys]

    def reduce(self, ops, loss, reduction: str, arrays: dict):
        """The per-element ``loss`` reduced as torch reduces this loss ("mean", "sum", "none"); ``arrays`` are
        the inputs in the dtype (a weighted mean needs them). Default: the plain mean or sum."""
        return ops.reduce(loss, reduction)

    def reduction_note(self, arrays: dict, reduction: str) -> str:
        """For one element whose loss the reduction changes (a weighted mean): what the reduction divided by, in
        words, for the trace's last loss step. Default: empty (a plain mean of one element is the element)."""
        return ""

    # exact reference (mpmath) ------------------------------------------------------------------------------
    def exact_loss(self, *element: float):
        """The exact loss of one element (elementwise families) as an mpmath number."""
        raise NotImplementedError

    def exact_grad(self, *element: float):
        """The exact d loss / d (the variable) of one element (elementwise families) as an mpmath number."""
        raise NotImplementedError

    def exact_reference(self, arrays: dict, reduction: str) -> tuple[list, list]:
        """The exact loss and gradient at ``arrays`` (the inputs as rounded to the dtype, widened to float64), as
        mpmath numbers: (the loss per element, or one value if reduced; d (reduced loss) / d v for every element v
        of the variable, in row-major order). Default: elementwise, from :meth:`exact_loss` and :meth:`exact_grad`."""
        import numpy as np

        from stabcli.core import exact

        keys = self.input_keys
        shape = np.broadcast_shapes(*(np.shape(a) for a in arrays.values()))
        wide = {k: np.broadcast_to(a, shape).ravel() for k, a in arrays.items()}
        n = int(np.prod(shape, dtype=np.int64))
        losses = [self.exact_loss(*(float(wide[k][i]) for k in keys)) for i in range(n)]
        loss = losses if reduction == "none" else [exact.reduce_exact(losses, reduction)]
        grads = [self.exact_grad(*(float(wide[k][i]) for k in keys)) for i in range(n)]
        return loss, exact.reduce_exact_grad(grads, reduction)

    # gradients ---------------------------------------------------------------------------------------------
    def grad_variable(self, method: str) -> str:
        """What ``method``'s gradient is taken with respect to (a row's ``grad_wrt``): :attr:`variable` by default;
        with ``--probs`` p for the probability methods, x for the logit methods."""
        return self.compare_variable or self.variable

    def method_grad_reference(self, method: str, arrays: dict, reduction: str):
        """The exact gradient of ``method`` when it differs from :meth:`exact_reference`'s (a method whose gradient
        is taken with respect to another variable), as mpmath numbers; None for the shared one."""
        return None

    def grad_details(self, backend: str, fmt, method: str, arrays: dict, reduction: str = "none"):
        """The gradient of ``method`` (``core.autodiff.Gradient``, its ``grad`` shaped as the variable) and where a
        clamp changed it; None for a method with no gradient (a peer library that cannot differentiate).
        Default (elementwise): :meth:`grad_of`, nothing clamped."""
        import numpy as np

        from stabcli.core.autodiff import Gradient

        grad = self.grad_of(backend, fmt, method, arrays, reduction)
        return None if grad is None else Gradient(grad, np.zeros(np.shape(grad), dtype=bool), {})

    def grad_of(self, backend: str, fmt, method: str, arrays: dict, reduction: str = "none", broadcast: bool = True):
        """d loss / d (the variable) per element, in the dtype, vectorised (sweeps pass a chunk of logits).
        Default (elementwise): ``core.autodiff`` (op-by-op duals in numpy, autograd in torch) on the formula."""
        from stabcli.core.autodiff import differentiate, prepare

        (x, *consts), _ = prepare(arrays, self.input_keys, fmt, broadcast)
        return differentiate(backend, fmt, self.formula(method), x, consts, reduction)[0]

    def sweep_grad(self, case, backend: str, method: str, xs):
        """d loss / d (the swept variable) at the swept values ``xs`` (values of the dtype) of a sweep case.
        Default: :meth:`grad_of` on the case's arrays (the swept variable is the formula's first input)."""
        return self.grad_of(backend, case.fmt, method, case.arrays(xs), broadcast=False)

    # files (``stabcli check``) -----------------------------------------------------------------------------
    @property
    def streams_files(self) -> bool:
        """Whether ``check`` can stream a file of any size through this family (it has a fast file reference)."""
        return type(self).file_reference is not LossFamily.file_reference

    def file_reference(self, arrays: dict, fmt):
        """The exact loss at many elements from a file, fast: (nearest, for_rounding) float64 arrays, one per element
        of ``arrays`` (the inputs in ``fmt``, widened to float64; weight and pos_weight 0-d), certified for rounding
        into ``fmt``; None when the family has no fast form (check then takes at most compare's number of elements,
        each against mpmath)."""
        return None

    # (relative, absolute) bound on the error of :meth:`file_reference`'s float64 answer in float64, where no wider
    # format certifies it: check asks mpmath wherever a loss lies within it of the tolerance's edge
    file_reference_error: tuple[float, float] = (0.0, 0.0)

    def file_grad_reference(self, method: str, arrays: dict, fmt):
        """:meth:`file_reference` for ``method``'s gradient (with respect to :meth:`grad_variable`), or None."""
        return None

    # text --------------------------------------------------------------------------------------------------
    @property
    def notes(self) -> Any:
        """A module with note, verdict, grad_steps, grad_verdict, summary, sweep_summary (and optionally grid_line,
        and answer(comparison, dtype, backend): the lines a single-element compare opens with, else the summary's
        line): the family's words. Default: ``losses/plain_notes.py``, which says what any loss's numbers say."""
        from stabcli.losses import plain_notes

        return plain_notes

    def companion(self, inputs, backends, methods):
        """A second comparison a single-element compare also runs, for the summary to quote (BCE: BCELoss at the
        other hard target), as (inputs, backends, methods); None for none."""
        return None

    def figure_stem(self, dtype: str | None = None, backend: str | None = None) -> str:
        """The file name (no suffix) of ``stabcli plot``'s figure of one dtype and backend, or of the overview
        (``dtype`` None): <family>_<dtype>_<backend>, <family>_breakdown_overview."""
        return f"{self.name}_breakdown_overview" if dtype is None else f"{self.name}_{dtype}_{backend}"

    def target_label(self, target) -> str:
        """How a sweep target is named in a title ("target 0"; softmax: "class 1")."""
        return f"target {target:g}"

    # sweeps ------------------------------------------------------------------------------------------------
    default_targets: tuple = (0.0, 1.0)  # a sweep's targets when none are given

    @property
    def threshold_targets(self) -> tuple:
        """The targets a thresholds sweep runs (default: :attr:`default_targets`)."""
        return self.default_targets

    def check_sweep(self, targets, weight, pos_weight, options: dict) -> None:
        """Refuse sweep inputs this family cannot take, with an ``InputError`` naming the value."""

    def sweep_notes(self, fmt, options: dict) -> list[str]:
        """Notes on this family's own sweep ``options`` in the format ``fmt``, for what the counts alone do not say
        (softmax: a --shift beyond the format's range makes every row inf). Default: none."""
        return []

    def sweep_case(self, fmt, target, weight=1.0, pos_weight: float = 1.0, **options):
        """The inputs of one (dtype, target) of a sweep: ``fmt``, ``target``, ``weight``, ``pos_weight``,
        ``arrays(xs)``, ``reference(xs, cache, fmt=None)``, ``grad_reference(xs, cache)`` (each (nearest,
        for_rounding) float64 pairs; ``fmt``: the format the loss is rounded into, when autocast computed it in
        another than the case's), ``grad_reference_points(xs64)`` (figures), and optionally ``grad_scale``, the size
        of an ordinary gradient (default 1; see ``commands/severity.py``). ``options`` are the family's own sweep options (softmax:
        classes, shift, label_smoothing). Default (elementwise): :class:`ElementwiseCase`, whose reference is
        mpmath's at every point: right, but ~0.1 ms a point, so a family meant for exhaustive sweeps gives a fast
        float64 reference of its own (as ``bce/reference.py`` does)."""
        return ElementwiseCase(self, fmt, float(target), float(weight), float(pos_weight))

    # thresholds --------------------------------------------------------------------------------------------
    threshold_methods: tuple[str, ...] = ()  # the methods a thresholds sweep has to run

    def predict_thresholds(self, fmt, rtol: float | None = None) -> list[Threshold]:
        return []

    def explain_threshold(self, t: Threshold, fmt) -> str:
        return "agrees exactly" if t.measured == t.predicted else "differs"


class ElementwiseCase:
    """A sweep case of an elementwise family, from its formulas' inputs and its exact reference (mpmath per point).

    The swept logits are the first input; the others (target, weight, pos_weight, in :attr:`LossFamily.input_keys`
    order; missing ones are 1) are 0-d arrays of the dtype.
    """

    def __init__(self, family: LossFamily, fmt, target: float, weight: float = 1.0, pos_weight: float = 1.0):
        self.family, self.fmt = family, fmt
        self.target, self.weight, self.pos_weight = target, weight, pos_weight

    def _constants(self) -> dict:
        import numpy as np

        values = dict(zip(self.family.input_keys[1:], (self.target, self.weight, self.pos_weight)))
        return {k: self.fmt.round(np.array(v)) for k, v in values.items()}

    def arrays(self, xs) -> dict:
        return {self.family.input_keys[0]: xs, **self._constants()}

    def _exact(self, xs, cache, which):
        import numpy as np

        from stabcli.core.exact import to_float64_nearest, to_float64_odd
        from stabcli.core.formats import to_float64

        consts = [float(to_float64(v)) for v in self._constants().values()]
        exact = self.family.exact_loss if which == "loss" else self.family.exact_grad
        cache = {} if cache is None else cache
        pairs = []
        for v in to_float64(xs).reshape(-1):
            if float(v) not in cache:
                e = exact(float(v), *consts)
                cache[float(v)] = (to_float64_nearest(e), to_float64_odd(e))
            pairs.append(cache[float(v)])
        nearest = np.array([p[0] for p in pairs], dtype=np.float64)
        odd = np.array([p[1] for p in pairs], dtype=np.float64) if self.fmt.bits < 64 else nearest
        return nearest, odd

    def reference(self, xs, cache=None, fmt=None):
        """mpmath's exact loss at ``xs``: right for rounding into any format (``fmt`` is not needed)."""
        return self._exact(xs, cache, "loss")

    def grad_reference(self, xs, cache=None):
        return self._exact(xs, cache, "grad")

    def grad_reference_points(self, xs64):
        return self._exact(self.fmt.round(xs64), None, "grad")[0]
