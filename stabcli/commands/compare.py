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
from stabcli.commands.evaluate import as_family, exp_overflowed, format_of, methods_to_run, peers_note, per_element
from stabcli.core.backends import BACKEND_NAMES
from stabcli.core.errors import InputError
from stabcli.core.formats import FORMATS, Format, to_float64
from stabcli.core.numbers import float_command, fmt_number
from stabcli.losses import plain_notes
from stabcli.names import REDUCTIONS

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
    clip_note: str | None = None  # single element: which clip changed the loss, in words (a peer's own clip)
    reduction_overflow: float | None = None  # the mean/sum overflowed although every element is finite: the largest
    compute_dtype: str | None = None  # the dtype the loss came back in (float32 under autocast's float32 lists)
    grad_wrt: str = "x"  # what the gradient is taken with respect to (p for --probs' probability methods)
    message: str | None = None  # status refused: torch's own message
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
    autocast: object = None  # the core.autocast.AutocastSpec evaluated under, or None
    variable: str = "x"  # what the first input is called (p with --probs)
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
        if key not in given:  # derived in the dtype (--probs: the logit recovered from p), not typed
            continue
        orig = given[key]
        back = to_float64(arr)
        name = family.input_labels.get(key, key)
        for o, b in zip(orig.ravel(), back.ravel()):
            if np.isnan(o) or o == b:
                continue
            see = f" ({float_command(o, fmt.name)} shows why)"
            o_, b_, top = fmt_number(o, 10), fmt_number(b, 10), fmt_number(fmt.max, 10)
            if not np.isfinite(b) and np.isfinite(o):
                overflow = overflow or key == variable
                why = "" if fmt.has_inf else f", having no inf; torch's cast would saturate to {top}"
                changes.append(f"{name} {o_} overflows {fmt.name} (max {top}) and becomes {b_}" + why + see)
            elif np.isinf(o):  # float8_e4m3fn: no inf
                changes.append(f"{name} {o_} has no {fmt.name} value (no inf) and becomes NaN; torch's cast would "
                               f"saturate it to {fmt_number(np.copysign(fmt.max, o), 10)}{see}")
            else:
                changes.append(f"{name} {float(o)!r} is stored as {float(b)!r} in {fmt.name}{see}")
    return arrays, overflow, list(dict.fromkeys(changes))


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


@dataclass
class _Exact:
    """The exact values of one dtype's comparison as float64: nearest, rounded to odd (for rounding into a narrower
    format once), where finite; ``scalar``: one reduced value rather than a list."""

    nearest: np.ndarray
    odd: np.ndarray
    finite: np.ndarray
    scalar: bool


def _refused_row(backend, fmt, method, logits_in, overflow, ref: _Exact, message: str, single: bool) -> Row:
    """A method that torch.autocast refuses (binary_cross_entropy on CUDA): its status and torch's message (and,
    for a single element, as every row then has, an empty trace and a verdict)."""
    none = None if ref.scalar else [None] * len(ref.nearest)
    status = "refused" if ref.scalar else ["refused"] * len(ref.nearest)
    row = Row(backend=backend, dtype=fmt.name, method=method, input=logits_in, input_overflow=overflow,
              loss=none, reference=_scalar_or_list(ref.nearest, ref.scalar), abs_error=none, rel_error=none,
              error_bits=none, status=status, events={"overflow": 0, "divide_by_zero": 0, "invalid": 0})
    row.message = message
    row.compute_dtype = None
    if single:
        row.steps = []
        row.verdict = f"refused: {message.splitlines()[0]}"
    return row


def _same_value(a, b) -> bool:
    """Two traced values are the same number (-0 equal to 0, NaN to NaN): else the reduction changed the loss."""
    try:
        return bool(np.array_equal(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64), equal_nan=True))
    except (TypeError, ValueError):
        return False


def _row(family, backend, fmt, method, arrays, reduction, ref: _Exact, gref: _Exact, logits_in, overflow,
         single, rtol, atol) -> Row:
    """Evaluate one (backend, dtype, method), measure it against the exact values, and trace it for one element.

    Under autocast a loss may come back in float32 (``compute_dtype``): it is judged in that format, with its
    tolerance; the gradient comes back in the inputs' dtype, as autograd casts it back to the leaf's."""
    from stabcli.core.autocast import AutocastRefused

    notes_text = family.notes
    reduced = reduction != "none"
    try:
        ev, ops = family.evaluate(backend, fmt, method, arrays)
    except AutocastRefused as exc:
        return _refused_row(backend, fmt, method, logits_in, overflow, ref, str(exc), single)
    with np.errstate(all="ignore"), ops.context():  # a library method reduces as the library does (under autocast)
        loss = ops.to_numpy(ev.reduced(ops, reduction,
                                       lambda losses: family.reduce(ops, losses, reduction, arrays)))
    loss = np.asarray(loss).reshape(-1) if not reduced else np.asarray(loss).reshape(1)
    cfmt = format_of(loss, fmt)
    changed = None
    if ev.clamp_changed is not None:
        cc = np.asarray(ev.clamp_changed).reshape(-1)
        changed = np.array([cc.any()]) if reduced else cc
    err = measure(loss, ref.nearest, cfmt, Tolerance.for_format(cfmt, rtol, atol), changed, ref.odd, ref.finite)
    row = Row(
        backend=backend, dtype=fmt.name, method=method,
        library=family.peer_methods[method].describe(fmt) if backend == "peers" else None,
        input=logits_in, input_overflow=overflow,
        loss=_scalar_or_list(to_float64(loss), reduced),
        reference=_scalar_or_list(ref.nearest, reduced),
        abs_error=_scalar_or_list(err.abs_error, reduced),
        rel_error=_scalar_or_list(err.rel_error, reduced),
        error_bits=_scalar_or_list(err.error_bits, reduced),
        status=str(err.status[0]) if reduced else [str(s) for s in err.status],
        events=_events(ev, ops),
    )
    if reduced and not np.all(np.isfinite(to_float64(loss))):
        per_element = to_float64(ops.to_numpy(ev.loss))
        if per_element.size and np.all(np.isfinite(per_element)):
            row.reduction_overflow = float(np.max(np.abs(per_element)))
    row.compute_dtype = cfmt.name
    row.grad_wrt = family.grad_variable(method)
    gradient = family.grad_details(backend, fmt, method, arrays, reduction)
    own = family.method_grad_reference(method, _wide(arrays), reduction)
    if own is not None:
        gref = _exact_values(own, fmt, gref.scalar)
    if gradient is not None:
        gfmt = format_of(gradient.grad, fmt)
        gerr = measure_grad(gradient.grad.reshape(-1), gref.nearest, gfmt, Tolerance.for_format(gfmt, rtol, atol),
                            gradient.clamped.reshape(-1), gref.odd, gref.finite)
        row.grad = _scalar_or_list(to_float64(gradient.grad), gref.scalar)
        row.grad_reference = _scalar_or_list(gref.nearest, gref.scalar)
        row.grad_abs_error = _scalar_or_list(gerr.abs_error, gref.scalar)
        row.grad_error_bits = _scalar_or_list(gerr.error_bits, gref.scalar)
        row.grad_status = str(gerr.status[0]) if gref.scalar else [str(s) for s in gerr.status]
    if single:
        row.steps = [TraceStep(s.name, _step_value(ops, s.value), _step_note(notes_text, s, ops, fmt))
                     for s in ev.steps]
        if reduced and row.steps and not _same_value(row.steps[-1].value, row.loss):  # a weighted mean: say so
            row.steps.append(TraceStep(f"loss ({reduction})", row.loss, family.reduction_note(arrays, reduction)))
        if ev.unclamped is not None:
            row.unclamped_loss = float(to_float64(ops.to_numpy(ev.unclamped)).reshape(-1)[0])
        row.clip_note = ev.clip_note
        row.verdict = notes_text.verdict(row, cfmt)
        if gradient is not None:
            row.steps += [TraceStep(name, value, note)
                          for name, value, note in notes_text.grad_steps(row, gradient, fmt)]
            row.grad_verdict = notes_text.grad_verdict(row, gradient, fmt)
    return row


def _reduction_note(fmt: Format, backend: str, reduction: str, rows: list) -> str:
    """The reduction overflowed the dtype although every element's loss is finite: the inf is the mean's or the
    sum's, not any formula's (a float16 sum of 4,000 losses of 20 is 80,000, beyond 65504)."""
    names = ", ".join(r.method for r in rows)
    largest = plain_notes.num(max(r.reduction_overflow for r in rows))
    return (f"{fmt.name}, {backend}: the {reduction} overflowed {fmt.name} for {names} although each element's "
            f"loss is finite (at most {largest}): that inf comes from the {reduction}, not from the formula")


def _wide(arrays: dict) -> dict:
    """The inputs in the dtype widened to float64 (class indices kept as integers), as the references take them."""
    return {k: a if a.dtype.kind in "iu" else to_float64(a) for k, a in arrays.items()}


def _exact_values(values: list, fmt: Format, scalar: bool) -> _Exact:
    """mpmath values as an :class:`_Exact`: nearest float64, rounded to odd (below 64 bits), finite."""
    nearest = np.array([exact.to_float64_nearest(v) for v in values])
    odd = np.array([exact.to_float64_odd(v) for v in values]) if fmt.bits < 64 else nearest
    return _Exact(nearest, odd, np.array([exact.is_finite(v) for v in values]), scalar)


def _step_note(notes_text, step, ops, fmt: Format) -> str:
    """A step's note; under autocast, at the step where a value moved to another dtype than its operands' (a log on
    CUDA's float32 list), that too."""
    note = notes_text.note(step, ops, fmt)
    spec = getattr(ops, "spec", None)
    if spec is None:
        return note
    dtype = lambda v: str(np.asarray(ops.to_numpy(v)).dtype)  # noqa: E731
    computed = dtype(step.value)
    if computed in FORMATS and step.args and all(dtype(a) != computed for a in step.args):
        where = f"computed in {computed}: autocast ({spec.device}) casts its input"
        note = f"{note}; {where}" if note else where
    return note


def run_compare(
    inputs,
    formats: list[Format],
    backends: tuple[str, ...] = BACKEND_NAMES,
    methods: list[str] | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    loss=None,
    peers: bool = False,
    autocast=None,
) -> Comparison:
    """Evaluate every requested method of the family ``loss`` (a name, default bce, or a family object) in every
    backend and dtype, and measure it against mpmath. ``inputs`` is the family's ``Inputs``. ``peers``: also the
    peer libraries' real losses (the ``peers`` pseudo-backend), those installed; a note says how to add the others.
    ``autocast`` (a ``core.autocast.AutocastSpec``): the torch backend only, evaluated under torch.autocast; a
    method autocast refuses is a row with status ``refused`` and torch's message."""
    from stabcli.core import autocast as amp

    family = as_family(loss)
    with amp.use(autocast):
        comparison = _compare(inputs, formats, backends, methods, rtol, atol, family, peers, autocast)
    comparison.autocast = autocast
    return comparison


def _compare(inputs, formats, backends, methods, rtol, atol, family, peers, autocast) -> Comparison:
    notes_text = family.notes
    if inputs.reduction not in REDUCTIONS:
        raise InputError(f"reduction {inputs.reduction!r} is not allowed; use one of {', '.join(REDUCTIONS)}")
    if inputs.size > MAX_ELEMENTS:
        raise InputError(f"{inputs.size:,} elements are more than compare evaluates (at most {MAX_ELEMENTS:,}, each "
                         "against mpmath); for many logits use stabcli sweep")
    reduced = inputs.reduction != "none"
    single = inputs.size == 1 and reduced  # one loss: traced step by step (with --reduction none, lists instead)
    rows: list[Row] = []
    dtype_notes: list[DtypeNote] = []
    notes: list[str] = []
    options = inputs.arrays()
    keys = family.input_keys
    if autocast is not None:
        backends = tuple(b for b in backends if b == "torch")
        notes.append(autocast.describe())
    if peers:
        backends = (*backends, "peers")
        missing = peers_note(family)
        if missing is not None:
            notes.append(missing)
    for fmt in formats:
        arrays, overflow, changes = _rounded(fmt, inputs, family)
        logits_in = [float(v) for v in to_float64(arrays[keys[0]]).ravel()]
        dtype_notes.append(DtypeNote(fmt.name, logits_in, overflow, changes))
        exact_out, exact_grad = family.exact_reference(_wide(arrays), inputs.reduction)
        # Rounded into a narrower dtype from a round-to-odd float64, so that it is rounded only once in effect.
        ref = _exact_values(exact_out, fmt, reduced)
        gref = _exact_values(exact_grad, fmt, reduced and len(exact_grad) == 1)
        ref_nearest, ref_finite = ref.nearest, ref.finite
        beyond = [v for v, fin in zip(ref_nearest, ref_finite) if fin and plain_notes.beyond_format(v, fmt)]
        if beyond:
            largest = plain_notes.num(max(beyond, key=abs))
            what = f"the exact loss {largest}" if len(ref_nearest) == 1 else \
                f"the exact loss of {len(beyond):,} of the {len(ref_nearest):,} elements (largest {largest})"
            shows = (f"an inf there means the loss overflowed {fmt.name} (status inf), not that a formula broke"
                     if fmt.has_inf else  # float8_e4m3fn: ml_dtypes rounds an overflow to NaN, torch's cast to max
                     f"no formula can return it; {fmt.name} has no inf, so the overflow is NaN in numpy (status "
                     f"nan) and {plain_notes.num(fmt.max)} in torch (its cast saturates)")
            notes.append(f"{fmt.name}: {what} is beyond {fmt.name}'s largest value {plain_notes.num(fmt.max)}: "
                         f"{shows}")
        for backend in backends:
            for method in methods_to_run(family, backend, fmt, methods, options, notes):
                rows.append(_row(family, backend, fmt, method, arrays, inputs.reduction, ref, gref, logits_in,
                                 overflow, single, rtol, atol))
            over = [r for r in rows if r.dtype == fmt.name and r.backend == backend and r.reduction_overflow]
            if over:
                notes.append(_reduction_note(fmt, backend, inputs.reduction, over))
    comparison = Comparison(inputs, rows, dtype_notes, notes, family=family.name,
                            variable=family.compare_variable or family.variable)
    if single:
        companion = family.companion(inputs, backends, methods)
        if companion is not None:
            other, other_backends, other_methods = companion
            comparison.flipped = _compare(other, formats, other_backends, other_methods, rtol, atol, family,
                                          False, autocast).rows
        comparison.summary = notes_text.summary(comparison)
        comparison.focus = focus_of(rows)
        answer = getattr(notes_text, "answer", None)  # a family without its own answer shows its summary's line
        if comparison.focus is not None:
            comparison.answer = answer(comparison, *comparison.focus) if answer else \
                [line for line in comparison.summary if line.startswith(f"{comparison.focus[0]}:")]
    return comparison
