"""`compare`: every method of a loss family on the given inputs, per backend and dtype, against the exact loss.

This is the numeric core behind ``stabcli compare``: it never prints. :func:`run_compare` returns a
:class:`Comparison` whose rows carry the losses, the reference, the errors and statuses, and, for a single
element, the step-by-step trace with notes (from the family's ``notes.py``). The family (``stabcli/losses/``)
supplies the formulas, the exact values and the words; this engine rounds, evaluates, measures and collects.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from stabcli.core import exact
from stabcli.core.analysis import Tolerance, measure, measure_grad
from stabcli.core.backends import BACKEND_NAMES, backend_note, make_ops
from stabcli.core.errors import InputError
from stabcli.core.formats import Format, to_float64
from stabcli.losses import get_family

REDUCTIONS: tuple[str, ...] = ("mean", "sum", "none")
MAX_ELEMENTS = 10_000  # compare checks every element against mpmath (about 1 ms each per dtype); sweep streams


@dataclass
class TraceStep:
    name: str
    value: float
    note: str


@dataclass
class Row:
    """One (backend, dtype, method) result. Scalars for a reduced loss, lists for reduction 'none'."""

    backend: str
    dtype: str
    method: str
    input: list
    input_overflow: bool
    loss: object
    reference: object
    abs_error: object
    rel_error: object
    error_bits: object
    status: object
    events: dict[str, int]
    steps: list[TraceStep] | None = None
    verdict: str | None = None
    # d (reduced loss) / d x per element (a scalar for a single element with reduction mean or sum)
    grad: object = None
    grad_reference: object = None
    grad_abs_error: object = None
    grad_error_bits: object = None
    grad_status: object = None
    grad_verdict: str | None = None
    unclamped_loss: float | None = None  # single element, clamped/torch_bce: the loss without the -100 clamp
    library: str | None = None  # a peer row: the library, its version and what it computed in


@dataclass
class DtypeNote:
    """How the inputs changed when rounded into a dtype."""

    dtype: str
    logits: list
    input_overflow: bool
    changes: list[str]


@dataclass
class Comparison:
    inputs: object  # the family's Inputs
    rows: list[Row]
    dtype_notes: list[DtypeNote]
    notes: list[str] = field(default_factory=list)
    flipped: list[Row] = field(default_factory=list)  # one logit, hard target: BCELoss at the other target
    summary: list[str] = field(default_factory=list)  # plain sentences, per dtype, on what the rows show
    family: str = "bce"
    focus: tuple[str, str] | None = None  # one element: the (dtype, backend) the answer is about (see focus_of)
    answer: list[str] = field(default_factory=list)  # one element: the answer for the focus, a sentence a line


SEED_FOCUS: tuple[str, str] = ("float32", "torch")  # the seed articles' case: torch's float32 default


def focus_of(rows) -> tuple[str, str] | None:
    """The (dtype, backend) a single-element answer is about: the seed's float32 and torch when they ran; else the
    first dtype that ran (in the order float16, bfloat16, float32, float64) and torch if it ran, else numpy."""
    ran = list(dict.fromkeys((r.dtype, r.backend) for r in rows))
    if not ran:
        return None
    dtypes = list(dict.fromkeys(d for d, _ in ran))
    dtype = SEED_FOCUS[0] if SEED_FOCUS[0] in dtypes else dtypes[0]
    backends = [b for d, b in ran if d == dtype]
    return dtype, SEED_FOCUS[1] if SEED_FOCUS[1] in backends else backends[0]


def _rounded(fmt: Format, inputs, family):
    """The inputs rounded to ``fmt`` (arrays of the dtype) and what that rounding did."""
    given = inputs.arrays()
    arrays = family.round_inputs(fmt, given)
    changes = []
    overflow = False
    variable = family.input_keys[0]
    for key, arr in arrays.items():
        orig = given[key]
        back = to_float64(arr)
        name = family.input_labels.get(key, key)
        for o, b in zip(orig.ravel(), back.ravel()):
            if np.isnan(o) or o == b:
                continue
            see = f" ({float_command(o, fmt.name)} shows why)"
            if not np.isfinite(b) and np.isfinite(o):
                overflow = overflow or key == variable
                why = "" if fmt.has_inf else f", having no inf; torch's cast would saturate to {_num(fmt.max)}"
                changes.append(f"{name} {_num(o)} overflows {fmt.name} (max {_num(fmt.max)}) and becomes {_num(b)}"
                               + why + see)
            elif np.isinf(o):  # float8_e4m3fn: no inf
                changes.append(f"{name} {_num(o)} has no {fmt.name} value (no inf) and becomes NaN; torch's cast would "
                               f"saturate it to {_num(np.copysign(fmt.max, o))}{see}")
            else:
                changes.append(f"{name} {float(o)!r} is stored as {float(b)!r} in {fmt.name}{see}")
    return arrays, overflow, list(dict.fromkeys(changes))


def _num(v: float) -> str:
    from stabcli.core.numbers import fmt_number

    return fmt_number(v, 10)


def float_command(v: float, dtype: str) -> str:
    from stabcli.core.numbers import float_command as command

    return command(v, dtype)


def exp_overflowed(ev, ops, shape, known=None) -> np.ndarray:
    """Where an exp step overflowed from a finite argument; in numpy, the op-by-op sigmoid's own exp(-x) too.

    torch.sigmoid is one kernel, so an exp inside it is not an intermediate anyone can see, and is not counted.
    ``known`` = (x, mask) lets a caller that already knows where exp(-x) overflows for that very array skip it.
    """
    hit = np.zeros(shape, dtype=bool)
    for step in ev.steps:
        if step.kind == "exp" and step.args:
            value, arg = ops.to_numpy(step.value), ops.to_numpy(step.args[0])
            # inf, or NaN in float8_e4m3fn (no inf): exp of a finite argument is never NaN otherwise
            hit |= per_element(~np.isfinite(value) & np.isfinite(arg), shape)
        elif step.kind == "sigmoid" and ops.name == "numpy" and step.args:
            x = ops.to_numpy(step.args[0])
            if known is not None and x is known[0]:
                hit |= known[1]
            else:
                with np.errstate(all="ignore"):
                    hit |= np.broadcast_to(~np.isfinite(np.exp(-x)) & np.isfinite(x), shape)
    return hit


def per_element(mask: np.ndarray, shape: tuple) -> np.ndarray:
    """A mask over a step's values as a mask over the loss elements: a step of a family with a class axis has one
    more axis than the loss (a row of logits per element), where any class counts for its element."""
    mask = np.asarray(mask)
    while mask.ndim > len(shape):  # class by class: faster than numpy's reduction over a short last axis
        row = mask[..., 0]
        for c in range(1, mask.shape[-1]):
            row = row | mask[..., c]
        mask = row
    return np.broadcast_to(mask, shape)


def _events(ev, ops) -> dict[str, int]:
    """Counts of elements where an exp overflowed, a log gave -inf from a finite argument (log(0), log1p(-1)),
    or a NaN was made from non-NaN operands."""
    shape = np.shape(ops.to_numpy(ev.loss))
    divide = np.zeros(shape, dtype=bool)
    invalid = np.zeros(shape, dtype=bool)
    for step in ev.steps:
        value = to_float64(ops.to_numpy(step.value))
        args = [to_float64(ops.to_numpy(a)) for a in step.args]
        if step.kind == "log" and args:
            divide |= per_element((value == -np.inf) & np.isfinite(args[0]), shape)
            zero = -1.0 if step.name.startswith("log1p") else 0.0  # log of 0: NaN in float8_e4m3fn (no -inf)
            divide |= per_element(np.isnan(value) & (args[0] == zero), shape)
        if args:
            nan_in = np.any([per_element(np.isnan(a), shape) for a in args], axis=0)
            invalid |= per_element(np.isnan(value), shape) & ~nan_in
    return {"overflow": int(np.count_nonzero(exp_overflowed(ev, ops, shape))),
            "divide_by_zero": int(np.count_nonzero(divide)), "invalid": int(np.count_nonzero(invalid))}


def _step_value(ops, value):
    """A traced step's value for one element: a float, or a list of floats for a vector (a row of classes)."""
    values = to_float64(ops.to_numpy(value)).reshape(-1)
    return float(values[0]) if values.size == 1 else [float(v) for v in values]


def _scalar_or_list(arr: np.ndarray, reduced: bool):
    return float(arr.reshape(())) if reduced else [float(v) for v in arr.ravel()]


def evaluate_method(backend: str, fmt: Format, method: str, arrays: dict, broadcast: bool = True, family=None):
    """Run one method; returns (Evaluation, ops) with the inputs of the dtype broadcast to one shape.

    With ``broadcast=False`` the inputs keep their shapes (a sweep passes the target, weight and pos_weight as 0-d
    arrays, so that an operation on them alone is done once instead of once per logit; every per-element result
    is the same).
    """
    family = get_family() if family is None else family
    ops = make_ops(backend, fmt)
    values = family.backend_inputs(ops, arrays, broadcast)
    with np.errstate(all="ignore"):
        ev = family.formula(method)(ops, *values)
    return ev, ops


def run_compare(
    inputs,
    formats: list[Format],
    backends: tuple[str, ...] = BACKEND_NAMES,
    methods: list[str] | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    loss: str | None = None,
    peers: bool = False,
) -> Comparison:
    """Evaluate every requested method of the family ``loss`` (default bce) in every backend and dtype, and
    measure it against mpmath. ``inputs`` is the family's ``Inputs``. ``peers``: also the peer libraries' real
    losses (the ``peers`` pseudo-backend), those installed; a note says how to add the others."""
    family = get_family(loss)
    notes_text = family.notes
    if inputs.reduction not in REDUCTIONS:
        raise InputError(f"reduction {inputs.reduction!r} is not allowed; use one of {', '.join(REDUCTIONS)}")
    if inputs.size > MAX_ELEMENTS:
        raise InputError(f"{inputs.size:,} elements are more than compare evaluates (at most {MAX_ELEMENTS:,}, each "
                         "against mpmath); for many logits use stabcli sweep")
    reduced = inputs.reduction != "none"
    single = inputs.size == 1
    rows: list[Row] = []
    dtype_notes: list[DtypeNote] = []
    notes: list[str] = []
    options = inputs.arrays()
    keys = family.input_keys
    if peers:
        backends = (*backends, "peers")
        missing = family.missing_peers()
        if missing:
            from stabcli.core.peers import INSTALL_HINT

            notes.append(f"{', '.join(missing)} not installed: their rows need the peers extra ({INSTALL_HINT})")
    for fmt in formats:
        arrays, overflow, changes = _rounded(fmt, inputs, family)
        logits_in = [float(v) for v in to_float64(arrays[keys[0]]).ravel()]
        dtype_notes.append(DtypeNote(fmt.name, logits_in, overflow, changes))
        wide = {k: a if a.dtype.kind in "iu" else to_float64(a) for k, a in arrays.items()}
        exact_out, exact_grad = family.exact_reference(wide, inputs.reduction)
        ref_nearest = np.array([exact.to_float64_nearest(v) for v in exact_out])
        # Rounded into a narrower dtype from a round-to-odd float64, so that it is rounded only once in effect.
        ref_odd = np.array([exact.to_float64_odd(v) for v in exact_out]) if fmt.bits < 64 else ref_nearest
        tol = Tolerance.for_format(fmt, rtol, atol)
        grad_nearest = np.array([exact.to_float64_nearest(v) for v in exact_grad])
        grad_odd = np.array([exact.to_float64_odd(v) for v in exact_grad]) if fmt.bits < 64 else grad_nearest
        grad_scalar = reduced and len(exact_grad) == 1
        for backend in backends:
            note = backend_note(backend, fmt)
            if note is not None and note not in notes:
                notes.append(note)
            available = family.methods_for(backend)
            for method in available if methods is None else [m for m in methods if m in available]:
                note = family.excluded(method, options)
                if note is not None:
                    if note not in notes:
                        notes.append(note)
                    continue
                ev, ops = evaluate_method(backend, fmt, method, arrays, family=family)
                with np.errstate(all="ignore"):
                    loss = ops.to_numpy(ev.reduced(ops, inputs.reduction,
                                                   lambda per_element: family.reduce(ops, per_element,
                                                                                     inputs.reduction, arrays)))
                loss = np.asarray(loss).reshape(-1) if not reduced else np.asarray(loss).reshape(1)
                changed = None
                if ev.clamp_changed is not None:
                    cc = np.asarray(ev.clamp_changed).reshape(-1)
                    changed = np.array([cc.any()]) if reduced else cc
                err = measure(loss, ref_nearest, fmt, tol, changed, ref_odd)
                row = Row(
                    backend=backend, dtype=fmt.name, method=method,
                    library=family.peer_methods[method].describe(fmt) if backend == "peers" else None,
                    input=logits_in, input_overflow=overflow,
                    loss=_scalar_or_list(to_float64(loss), reduced),
                    reference=_scalar_or_list(ref_nearest, reduced),
                    abs_error=_scalar_or_list(err.abs_error, reduced),
                    rel_error=_scalar_or_list(err.rel_error, reduced),
                    error_bits=_scalar_or_list(err.error_bits, reduced),
                    status=str(err.status[0]) if reduced else [str(s) for s in err.status],
                    events=_events(ev, ops),
                )
                gradient = family.grad_details(backend, fmt, method, arrays, inputs.reduction)
                if gradient is not None:
                    gerr = measure_grad(gradient.grad.reshape(-1), grad_nearest, fmt, tol,
                                        gradient.clamped.reshape(-1), grad_odd)
                    row.grad = _scalar_or_list(to_float64(gradient.grad), grad_scalar)
                    row.grad_reference = _scalar_or_list(grad_nearest, grad_scalar)
                    row.grad_abs_error = _scalar_or_list(gerr.abs_error, grad_scalar)
                    row.grad_error_bits = _scalar_or_list(gerr.error_bits, grad_scalar)
                    row.grad_status = str(gerr.status[0]) if grad_scalar else [str(s) for s in gerr.status]
                if single:
                    row.steps = [TraceStep(s.name, _step_value(ops, s.value), notes_text.note(s, ops, fmt))
                                 for s in ev.steps]
                    if ev.unclamped is not None:
                        row.unclamped_loss = float(to_float64(ops.to_numpy(ev.unclamped)).reshape(-1)[0])
                    row.verdict = notes_text.verdict(row, fmt)
                    if gradient is not None:
                        row.steps += [TraceStep(name, value, note)
                                      for name, value, note in notes_text.grad_steps(row, gradient, fmt)]
                        row.grad_verdict = notes_text.grad_verdict(row, gradient, fmt)
                rows.append(row)
    comparison = Comparison(inputs, rows, dtype_notes, notes, family=family.name)
    if single:
        companion = family.companion(inputs, backends, methods)
        if companion is not None:
            other, other_backends, other_methods = companion
            comparison.flipped = run_compare(other, formats, other_backends, other_methods, rtol, atol,
                                             loss=family.name).rows
        comparison.summary = notes_text.summary(comparison)
        comparison.focus = focus_of(rows)
        answer = getattr(notes_text, "answer", None)  # a family without its own answer shows its summary's line
        if comparison.focus is not None:
            comparison.answer = answer(comparison, *comparison.focus) if answer else \
                [line for line in comparison.summary if line.startswith(f"{comparison.focus[0]}:")]
    return comparison
