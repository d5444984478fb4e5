"""`demo`: the classroom walk-through, eight steps from the seed article's example to the fix.

The content behind ``stabcli demo`` (``demo_view.py`` renders it); it never prints. :func:`build_step` returns a :class:`DemoStep`: a
title, a few paragraphs and small tables. Every number in them is a :class:`Quote`, a value together with the
core call that produced it (``run_compare``, ``run_sweep``, ``thresholds.predict``, ``grad_thresholds`` (the quote source "thresholds_grad"), a
format constant, or :func:`clipped_bce` for step 8), so a test can make each call again and check the number:
nothing is typed in by hand. The only literals are the inputs (the seed article's logits, 1e10, 40, -50, -12)
and the documented constants of the rules being shown (torch's -100 and 1e-12, Keras's 1e-7).

Steps (``--dtype`` sets the format of every step but 5, which is about float16):

1. on ordinary logits the naive and the log-sum-exp forms agree (the seed article's example);
2. at x = 1e10 the naive form gives NaN or inf, BCELoss 0 or 100, the log-sum-exp form the right answer;
3. the trace of target 1: sigmoid rounds to 1.0, log(0) = -inf, the -100 clamp, 0·(-100) = 0;
4. target 0: the clamp returns 100 where the truth is about x;
5. float16: 1e10 overflows; an exhaustive sweep finds where naive breaks, op by op and in torch, and why;
6. the gradient: 0 or NaN where it should be ±1;
7. the fix, BCEWithLogitsLoss (softplus form), and where torch's own form loses relative accuracy;
8. other clips that hide the overflow: Keras 3's [1e-7, 1 - 1e-7], tf.keras 2.x's clip with 1e-7 inside the log,
   scikit-learn's [eps, 1 - eps]; and which Keras recovers the logit behind a Sigmoid output.

The quiz (``stabcli demo --quiz``): :meth:`Lesson.question` gives, before each step, a :class:`Question` built
the same way (its answer and every numeric choice are Quotes of live values); :func:`judge_answer` says whether
what the class typed was right. ``present/handout.py`` writes the same steps and questions as a handout.
"""

from __future__ import annotations

import json
import math
import shlex
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from stabcli.core.errors import InputError
from stabcli.core.formats import FORMATS, Format, ordinal, to_float64
from stabcli.core.numbers import float_command, fmt_number

STEP_COUNT = 8
DEMO_DTYPES: tuple[str, ...] = ("float16", "bfloat16", "float32", "float64")
DEFAULT_DTYPE = "float32"

# The seed article's example (a 2×3 batch); its BCELoss and BCEWithLogitsLoss both print 0.6812.
SEED_LOGITS = [[-0.6117, 0.1446, 0.0415], [-1.5376, -0.2599, -0.9680]]
SEED_TARGETS = [[0.0, 1.0, 0.0], [0.0, 1.0, 1.0]]
BIG = 1e10  # the seed article's logit
KERAS_EPSILON = 1e-7  # keras.config.epsilon() (tf.keras: keras.backend.epsilon()): the clip's bound and tf.keras 2.x's
# addend inside the log


# --- what a step holds ---------------------------------------------------------------------------------------

@dataclass
class Quote:
    """A number (or a status) shown by the demo, with the core call it comes from.

    ``source`` is "compare", "sweep", "threshold", "thresholds_grad", "format" or "clip"; ``call`` holds that
    call's arguments and the field read from its result, so that tests can repeat the call and compare.
    ``digits`` is how many significant digits to show: None shows the float64 value exactly (the shortest text
    that round-trips), a dtype name the shortest text that identifies the value within that dtype.
    """

    value: float | str
    source: str
    call: dict
    digits: int | str | None = 7

    def text(self, digits: int | str | None = -1) -> str:
        return fmt_number(self.value, self.digits if digits == -1 else digits)

    def __str__(self) -> str:
        return self.text()

    def command(self) -> str | None:
        """The stabcli command whose JSON holds this number (None for a format constant, step 8's clip rules and
        the gradient guard, which no command prints as such)."""
        c = self.call
        if self.source == "compare":
            return (f"stabcli compare {shlex.quote(_arg(c['logits']))} {shlex.quote(_arg(c['targets']))} "
                    f"--dtype {c['dtype']} --format json")  # quoted for a shell: [[...]] would be a glob
        if self.source == "sweep" and c.get("grid") == "default":  # one method over the default grid, gradients on
            return (f"stabcli sweep --dtype {c['dtype']} --backend {c['backend']} --target "
                    f"{fmt_number(c['target'], None)} --format json")
        if self.source == "sweep":
            return (f"stabcli sweep --exhaustive --dtype {c['dtype']} --backend {c['backend']} --target "
                    f"{fmt_number(c['target'], None)} --no-grad --format json")
        if self.source == "threshold":
            return f"stabcli thresholds --dtype {c['dtype']} --format json"
        return None


def _arg(value) -> str:
    """A number or nested list as compare takes it on the command line: 1e10, -12, [[-0.6117,0.1446],[...]]."""
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_arg(v) for v in value) + "]"
    v = float(value)
    exact = fmt_number(v, None)
    if not math.isfinite(v):
        return exact
    shortest = next(t for t in (fmt_number(v, d) for d in range(1, 18)) if float(t) == v)
    return min(exact, shortest, key=len)


@dataclass
class DemoTable:
    """A small table: column names and rows of cells, each a plain string or a :class:`Quote`."""

    columns: list[str]
    rows: list[list]
    title: str = ""


@dataclass
class DemoStep:
    """One step of the walk-through. Paragraphs come before the tables, ``after`` (more paragraphs) after."""

    number: int
    title: str
    paragraphs: list[str]
    tables: list[DemoTable] = field(default_factory=list)
    after: list[str] = field(default_factory=list)
    quotes: list[Quote] = field(default_factory=list)  # every number the step shows, tables and sentences


# --- the clip of step 8 --------------------------------------------------------------------------------------

@dataclass
class Clipped:
    """BCE of a clipped probability, every value in the dtype (as float64): see :func:`clipped_bce`."""

    p: float  # sigmoid(x), op by op in the dtype
    low: float  # the clip's bounds as stored in the dtype
    high: float
    one_minus_high: float  # 1 - high in the dtype: the smallest 1 - p the clip lets through
    log_eps: float  # what is added inside each log, as stored in the dtype (0: nothing)
    loss: float


def clipped_bce(x: float, y: float, fmt: Format, low: float, high: float, log_eps: float = 0.0) -> Clipped:
    """-(y·log(p + e) + (1-y)·log(1 - p + e)) with p = sigmoid(x) clipped to [low, high] first, in ``fmt`` (numpy,
    op by op); e = ``log_eps``, 0 for most rules.

    The rules of three libraries on probabilities, without the libraries: Keras 3 (low = 1e-7, high = 1 - 1e-7,
    e = 0: ``keras/src/backend/{numpy,jax,tensorflow}/nn.py``; its torch backend clips the same way and then
    calls torch's binary_cross_entropy), tf.keras 2.x (the same clip and e = 1e-7: ``tf_keras/backend.py``,
    ``bce = target * tf.math.log(output + epsilon())``) and scikit-learn's log_loss (low = eps, high = 1 - eps,
    e = 0). ``low``, ``high`` and ``log_eps`` are float64, as a library writes them in Python; stored in the dtype,
    1 - 1e-7 becomes the nearest value of the dtype (0.99999988 in float32, 1.0 in float16, where the clip then
    does nothing at the top). x and y are rounded to the dtype too.
    """
    from stabcli.core.backends import NumpyOps

    ops = NumpyOps(fmt)
    dt = fmt.np_dtype.type
    with np.errstate(all="ignore"):
        p = ops.sigmoid(ops.array(fmt.round(np.array([x]))))
        lo, hi = fmt.round(np.array([low])), fmt.round(np.array([high]))
        e = fmt.round(np.array([log_eps]))
        pc = np.minimum(np.maximum(p, lo), hi).astype(fmt.np_dtype)
        yv = fmt.round(np.array([y]))
        one = dt(1)
        if log_eps:
            loss = -(yv * np.log((pc + e).astype(fmt.np_dtype))
                     + (one - yv) * np.log(((one - pc).astype(fmt.np_dtype) + e).astype(fmt.np_dtype)))
        else:
            loss = -(yv * np.log(pc) + (one - yv) * np.log(one - pc))
        one_minus_high = one - hi
    first = lambda a: float(to_float64(np.asarray(a, dtype=fmt.np_dtype)).reshape(-1)[0])  # noqa: E731
    return Clipped(first(p), first(lo), first(hi), first(one_minus_high), first(e), first(loss))


# --- the calls, made once per demo run -----------------------------------------------------------------------

def _inputs(logits, targets):
    from stabcli.losses.bce import Inputs

    x = np.asarray(logits, dtype=np.float64)
    y = np.asarray(targets, dtype=np.float64)
    shape = np.broadcast_shapes(x.shape, y.shape)
    return Inputs(np.broadcast_to(x, shape), np.broadcast_to(y, shape), np.ones(shape), np.ones(shape))


def _key(*parts) -> str:
    return json.dumps(parts)


class _Lab:
    """Runs the core calls the steps quote, each once per demo run (steps 2, 3, 4 and 7 share comparisons)."""

    def __init__(self) -> None:
        self._cache: dict[str, object] = {}

    def _memo(self, key: str, make):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def comparison(self, logits, targets, dtype: str):
        from stabcli.commands.compare import run_compare

        return self._memo(_key("compare", logits, targets, dtype),
                          lambda: run_compare(_inputs(logits, targets), [FORMATS[dtype]]))

    def sweep16(self):
        """Every finite float16 logit through `naive`, numpy and torch, targets 0 and 1."""
        from stabcli.commands.sweep import make_grid, run_sweep

        return self._memo("sweep16", lambda: run_sweep([FORMATS["float16"]], ["numpy", "torch"], [0.0, 1.0],
                                                       make_grid(exhaustive=True), methods=["naive"]))

    def sweep_grid(self, dtype: str, backend: str, method: str, target: float):
        """The default grid (``stabcli sweep``'s 4,001 logits) through one method, gradients included."""
        from stabcli.commands.sweep import make_grid, run_sweep

        return self._memo(_key("sweep", dtype, backend, method, target),
                          lambda: run_sweep([FORMATS[dtype]], [backend], [target], make_grid(), methods=[method],
                                            grad=True))


def compare_value(comparison, backend: str, method: str, what: str):
    """One field of one row of a Comparison: a Row attribute, ``input`` (the logit as stored in the dtype) or
    ``step:NAME`` (the value of the trace step NAME). Tests use this same reading on their own comparison."""
    row = next((r for r in comparison.rows if r.backend == backend and r.method == method), None)
    if row is None:
        raise InputError(f"no {backend} {method} row in this comparison")
    if what == "input":
        return float(row.input[0])
    if what.startswith("step:"):
        name = what[5:]
        step = next((s for s in row.steps or [] if s.name == name), None)
        if step is None:
            raise InputError(f"{backend} {method} has no step {name!r}")
        return float(step.value)
    value = getattr(row, what)
    return value if isinstance(value, str) else float(value)


def sweep_field(row, field: str):
    """One number of a sweep row: ``points``, ``grad_count_<kind>`` (nonfinite, vanished, inaccurate) or
    ``grad.<breakdown key>`` (vanished_pos, ...), each also a field of the sweep's JSON (``grad_breakdown`` for the
    last). Tests use this same reading on their own sweep."""
    if field == "points":
        return row.points
    if field.startswith("grad_count_"):
        return row.grad.counts[field[len("grad_count_"):]]
    if field.startswith("grad."):
        return getattr(row.grad.breakdown, field[len("grad."):])
    raise InputError(f"unknown sweep field {field!r}")


def sweep_value(sweep, backend: str, target: float, key: str) -> float | None:
    row = next(r for r in sweep.rows if r.backend == backend and r.target == target)
    return getattr(row.breakdown, key)


def step_note(comparison, backend: str, method: str, name: str) -> str:
    """The explanation the trace gives for step NAME (text written by the family's ``notes.py``)."""
    row = next(r for r in comparison.rows if r.backend == backend and r.method == method)
    return next((s.note for s in row.steps or [] if s.name == name), "")


class _Builder:
    """Collects the quotes of one step while its sentences and tables are written."""

    def __init__(self, lab: _Lab, number: int, dtype: str) -> None:
        self.lab, self.number, self.dtype = lab, number, dtype
        self.quotes: list[Quote] = []

    def _add(self, q: Quote) -> Quote:
        self.quotes.append(q)
        return q

    def compare(self, logits, targets, backend: str, method: str, what: str = "loss", dtype: str | None = None,
                digits: int | str | None = 7, shown: bool = True) -> Quote:
        """A field of run_compare's row; ``shown=False`` for a value that only decides what a sentence says."""
        dtype = dtype or self.dtype
        c = self.lab.comparison(logits, targets, dtype)
        value = compare_value(c, backend, method, what)
        q = Quote(value, "compare", {"logits": logits, "targets": targets, "dtype": dtype, "backend": backend,
                                     "method": method, "field": what}, digits)
        return self._add(q) if shown else q

    def note(self, logits, targets, backend: str, method: str, name: str, dtype: str | None = None) -> str:
        return step_note(self.lab.comparison(logits, targets, dtype or self.dtype), backend, method, name)

    def sweep16(self, backend: str, target: float, key: str) -> Quote:
        value = sweep_value(self.lab.sweep16(), backend, target, key)
        return self._add(Quote(value, "sweep", {"dtype": "float16", "grid": "exhaustive", "backend": backend,
                                                "method": "naive", "target": target, "field": key}, None))

    def sweep_grid(self, backend: str, method: str, target: float, field: str, dtype: str | None = None,
                   digits: int | str | None = None, shown: bool = True) -> Quote:
        """A number of the default grid sweep of one method (see :func:`sweep_field`)."""
        dtype = dtype or self.dtype
        row = self.lab.sweep_grid(dtype, backend, method, target).rows[0]
        q = Quote(sweep_field(row, field), "sweep", {"dtype": dtype, "grid": "default", "backend": backend,
                                                    "method": method, "target": target, "field": field}, digits)
        return self._add(q) if shown else q

    def threshold(self, dtype: str, name: str, digits: int | str | None = None) -> Quote:
        from stabcli.losses.bce.thresholds import predict

        t = next(t for t in predict(FORMATS[dtype]) if t.name == name)
        return self._add(Quote(t.predicted, "threshold", {"dtype": dtype, "name": name}, digits))

    def grad_epsilon(self, dtype: str) -> Quote:
        from stabcli.losses.bce.grad_thresholds import grad_epsilon

        return self._add(Quote(grad_epsilon(FORMATS[dtype]), "thresholds_grad",
                               {"dtype": dtype, "function": "grad_epsilon"}, 3))

    def constant(self, dtype: str, what: str, at: float | None = None, digits: int | None = 8,
                 shown: bool = True) -> Quote:
        q = Quote(format_constant(FORMATS[dtype], what, at), "format", {"dtype": dtype, "what": what, "at": at},
                  digits)
        return self._add(q) if shown else q

    def clip(self, x: float, y: float, low: float, high: float, what: str = "loss", dtype: str | None = None,
             digits: int | None = 7, shown: bool = True, log_eps: float = 0.0) -> Quote:
        dtype = dtype or self.dtype
        value = getattr(clipped_bce(x, y, FORMATS[dtype], low, high, log_eps), what)
        q = Quote(value, "clip", {"dtype": dtype, "x": x, "y": y, "low": low, "high": high, "log_eps": log_eps,
                                  "field": what}, digits)
        return self._add(q) if shown else q

    def show(self, *quotes: Quote) -> None:
        """Record quotes made with ``shown=False`` once a sentence does show them."""
        self.quotes.extend(quotes)

    def step(self, title: str, paragraphs: list[str], tables=(), after=()) -> DemoStep:
        return DemoStep(self.number, title, list(paragraphs), list(tables), list(after), self.quotes)


def format_constant(fmt: Format, what: str, at: float | None = None) -> float:
    """max, smallest_subnormal, below_one (the largest value under 1) or spacing (the gap above ``at``)."""
    from stabcli.core.formats import from_ordinal

    if what in ("max", "smallest_subnormal", "eps"):
        return float(getattr(fmt, what))
    if what == "below_one":
        return float(to_float64(from_ordinal(ordinal(fmt.round(1.0), fmt) - 1, fmt)))
    if what == "spacing":
        v = fmt.round(at)
        return float(to_float64(from_ordinal(ordinal(v, fmt) + 1, fmt)) - to_float64(v))
    raise InputError(f"unknown format constant {what!r}")


# --- the steps -----------------------------------------------------------------------------------------------

def _distinct_digits(a: float, b: float, least: int) -> int:
    """The fewest significant digits (at least ``least``) that show two different numbers differently."""
    for d in range(least, 18):
        if fmt_number(a, d) != fmt_number(b, d) or a == b:
            return d
    return 17


def _step1(b: _Builder) -> DemoStep:
    x, y, d = SEED_LOGITS, SEED_TARGETS, b.dtype
    rows = [
        ("naive, numpy op by op", "numpy", "naive"),
        ("BCELoss(sigmoid(x), y)", "torch", "torch_bce"),
        ("log-sum-exp, numpy", "numpy", "logsumexp"),
        ("BCEWithLogitsLoss(x, y)", "torch", "torch_bce_with_logits"),
    ]
    table = DemoTable(["formula", "loss (mean)", "bits off", "status"], [
        [label, b.compare(x, y, be, m), b.compare(x, y, be, m, "error_bits", digits=3),
         b.compare(x, y, be, m, "status")] for label, be, m in rows])
    ref = b.compare(x, y, "numpy", "naive", "reference", digits=10)
    table.rows.append(["exact (mpmath)", ref, "", ""])
    bce = b.compare(x, y, "torch", "torch_bce", digits=4)
    lse = b.compare(x, y, "numpy", "logsumexp", digits=4)
    bits = [float(row[2].value) for row in table.rows[:-1]]
    ulps = round(2 ** max(bits) - 1)
    return b.step("On ordinary logits the two formulas agree", [
        "The seed article's example: a batch of six logits x and targets y, averaged as torch does "
        "(reduction mean):",
        "  x = [[-0.6117, 0.1446, 0.0415], [-1.5376, -0.2599, -0.9680]]\n  y = [[0, 1, 0], [0, 1, 1]]",
        f"The naive formula, -(y·log p + (1-y)·log(1-p)) with p = sigmoid(x), is what nn.BCELoss computes "
        f"after an nn.Sigmoid. The log-sum-exp form works on x itself and never forms p; nn.BCEWithLogitsLoss "
        f"is its torch version. In {d}:",
    ], [table], [
        f"BCELoss gives {bce}, the log-sum-exp form {lse}. "
        + (f"Every result is the exact value correctly rounded to {d}. " if ulps == 0 else
           f"Every result is within {ulps} ulp{'' if ulps == 1 else 's'} of the exact value (an ulp is the gap "
           f"between neighbouring {d} numbers; 'bits off' is log2(1 + ulps)). ")
        + "On ordinary logits the two formulas are the same thing. Now push one logit far from 0.",
    ])


def _loss_row(b: _Builder, label: str, backend: str, method: str, x: float = BIG) -> list:
    return [label, b.compare(x, 1.0, backend, method), b.compare(x, 1.0, backend, method, "status"),
            b.compare(x, 0.0, backend, method), b.compare(x, 0.0, backend, method, "status")]


def _stored(b: _Builder, x: float, dtype: str | None = None) -> str:
    """'x = 1e10' plus what the dtype makes of it."""
    dtype = dtype or b.dtype
    stored = b.compare(x, 1.0, "numpy", "naive", "input", dtype=dtype, digits=None, shown=False)
    if stored.value != x:
        b.quotes.append(stored)
    see = f"{float_command(x, dtype)} shows it"
    if math.isinf(stored.value):
        return (f"x = {fmt_number(x)} is not even a {dtype} number (the largest is "
                f"{b.constant(dtype, 'max', digits=None)}): it overflows to {stored} before any formula runs ({see})")
    if stored.value != x:
        return f"x = {fmt_number(x)} is stored as {stored} ({see})"
    return f"x = {fmt_number(x)} is stored exactly"


def _overflows(b: _Builder, x: float) -> bool:
    return math.isinf(b.compare(x, 1.0, "numpy", "naive", "input", shown=False).value)


def _step2(b: _Builder) -> DemoStep:
    d = b.dtype
    over = _overflows(b, BIG)
    table = DemoTable(["formula", "y = 1", "status", "y = 0", "status"], [
        _loss_row(b, "naive (numpy)", "numpy", "naive"),
        _loss_row(b, "naive (torch)", "torch", "naive"),
        _loss_row(b, "BCELoss", "torch", "torch_bce"),
        _loss_row(b, "log-sum-exp (numpy)", "numpy", "logsumexp"),
        _loss_row(b, "BCEWithLogitsLoss", "torch", "torch_bce_with_logits"),
    ])
    ref1 = b.compare(BIG, 1.0, "numpy", "naive", "reference")  # at the logit as stored in the dtype
    ref0 = b.compare(BIG, 0.0, "numpy", "naive", "reference")
    table.rows.append(["exact at x = inf" if over else "exact (mpmath)", ref1, "", ref0, ""])
    # the true loss at the logit as typed: float64 holds 1e10 exactly
    true1 = b.compare(BIG, 1.0, "numpy", "naive", "reference", dtype="float64")
    true0 = b.compare(BIG, 0.0, "numpy", "naive", "reference", dtype="float64")
    naive1, naive0 = b.compare(BIG, 1.0, "torch", "naive"), b.compare(BIG, 0.0, "torch", "naive")
    bce1, bce0 = b.compare(BIG, 1.0, "torch", "torch_bce"), b.compare(BIG, 0.0, "torch", "torch_bce")
    lse1, lse0 = b.compare(BIG, 1.0, "numpy", "logsumexp"), b.compare(BIG, 0.0, "numpy", "logsumexp")
    intro = [
        f"The seed article's question: a network is very sure, x = 1e10. The true loss is {true1} if the target "
        f"is 1 (right and sure) and {true0} if it is 0 (wrong and sure): about x itself. In {d}, "
        f"{_stored(b, BIG)}.",
    ]
    if not over:
        return b.step("Push the logit to 1e10", intro, [table], [
            f"The naive formula gives {naive1} and {naive0}. BCELoss gives {bce1} and {bce0}: no NaN, no inf, "
            f"nothing to warn you. The log-sum-exp form gives {lse1} and {lse0}. The status says which are right: "
            "'clamped' means BCELoss's -100 clamp decided the answer. Steps 3 and 4 show why.",
        ])
    naive0_status = b.compare(BIG, 0.0, "torch", "naive", "status", shown=False)
    b.show(naive0_status)
    return b.step("Push the logit to 1e10", intro, [table], [
        f"So every status here is judged against the loss at x = inf ({ref1} and {ref0}), not at 1e10. naive's "
        f"{naive0} for target 0 is '{naive0_status}' only in that sense: it comes from the overflow of 1e10, not "
        f"from the formula, and the true loss, {true0}, is beyond {d} as well.",
        f"At x = inf, for target 1, log-sum-exp and BCEWithLogitsLoss meet 0·inf or inf - inf = NaN, BCELoss still "
        f"answers {bce1} and {bce0}, and only the softplus form gives the exact limits. Step 5 shows where {d} "
        "breaks for finite logits; --dtype float32 tells the seed article's story.",
    ])


def _trace_rows(b: _Builder, y: float, names: list[tuple[str, str, str]]) -> list[list]:
    rows = []
    for method, name, label in names:
        value = b.compare(BIG, y, "torch", method, f"step:{name}")
        rows.append([label, value, b.note(BIG, y, "torch", method, name)])
    return rows


def _step3(b: _Builder) -> DemoStep:
    d = b.dtype
    naive = _trace_rows(b, 1.0, [
        ("naive", "p = sigmoid(x)", "p = sigmoid(x)"),
        ("naive", "1 - p", "1 - p"),
        ("naive", "log(1 - p)", "log(1 - p)"),
        ("naive", "(1-y)·log(1-p)", "(1-y)·log(1-p)"),
        ("naive", "loss = -w·(sum)", "naive loss"),
    ])
    clamp = _trace_rows(b, 1.0, [
        ("clamped", "log1p(-p)", "log1p(-p)"),
        ("clamped", "max(log1p(-p), -100)", "max(log1p(-p), -100)"),
        ("clamped", "(y-1)·max(log1p)", "(y-1)·max(...)"),
        ("clamped", "loss = w·(diff)", "loss"),
        ("torch_bce", "BCELoss(p, y)", "torch's BCELoss"),
    ])
    # the rows print torch's -0 (IEEE's signed zero: 0·(-100) is -0): say that it is 0, as the text says
    signed = [row[1] for row in clamp if isinstance(row[1].value, float) and row[1].value == 0
              and math.copysign(1.0, row[1].value) < 0]
    minus0 = " (The table prints -0: 0·(-100) is a zero with a minus sign, and -0 = 0.)" if signed else ""
    below = b.constant(d, "below_one", digits=d)
    # digits=d: float32's 16.635532, as step 7 says it, not the float64 text 16.63553237915039
    sat = b.threshold(d, "sigmoid rounds to 1.0, op by op", digits=d)
    return b.step("Step by step: why BCELoss(sigmoid(1e10), 1) is 0", [
        f"sigmoid(1e10) = 1/(1 + e^-1e10) is closer to 1 than the largest {d} number below 1, {below}, so it "
        f"rounds to exactly 1.0 (computed op by op, it does so from x = {sat} on; {float_command(1.0, d)} shows "
        f"the {d} numbers around 1). From then on p carries no information: 1 - p is 0. Target 1, in torch:",
    ], [
        DemoTable(["naive", "value", "what happened"], naive),
        DemoTable(["BCELoss's rule", "value", "what happened"], clamp),
    ], [
        "The naive formula needs log(1 - p) = log(0) = -inf and multiplies it by 1 - y = 0: 0·(-inf) is NaN. "
        "BCELoss clamps each log at -100 first (torch's Loss.cpp), so the term is 0·(-100) = 0 and the loss "
        f"is 0. The answer is right, but only by accident: the clamp hides the NaN.{minus0}",
    ])


def _step4(b: _Builder) -> DemoStep:
    d = b.dtype
    trace = _trace_rows(b, 0.0, [
        ("clamped", "p = sigmoid(x)", "p = sigmoid(x)"),
        ("clamped", "log1p(-p)", "log1p(-p)"),
        ("clamped", "max(log1p(-p), -100)", "max(log1p(-p), -100)"),
        ("clamped", "(y-1)·max(log1p)", "(y-1)·max(...)"),
        ("torch_bce", "BCELoss(p, y)", "torch's BCELoss"),
    ])
    xs = (20.0, 1000.0, BIG)
    flat = DemoTable(["x (y = 0)", "naive", "BCELoss", "BCEWithLogitsLoss", "exact"], [
        [fmt_number(x), b.compare(x, 0.0, "torch", "naive"), b.compare(x, 0.0, "torch", "torch_bce"),
         b.compare(x, 0.0, "torch", "torch_bce_with_logits"), b.compare(x, 0.0, "numpy", "naive", "reference")]
        for x in xs])
    bce0 = b.compare(BIG, 0.0, "torch", "torch_bce")
    ref0 = b.compare(BIG, 0.0, "numpy", "naive", "reference")
    return b.step(f"Target 0: the clamp returns {bce0} where the truth is {ref0}", [
        f"Now the network is sure and wrong. The same p = 1 makes log(1 - p) = -inf, and this time its "
        f"coefficient is 1 - y = 1. In {d}, torch:",
    ], [DemoTable(["BCELoss's rule", "value", "what happened"], trace), flat], [
        f"The naive loss is inf: wrong, but at least visibly. BCELoss clamps the -inf to -100 and returns "
        f"{bce0} where the true loss is {ref0}. Once p has rounded to 1, every logit gives the same capped "
        "loss: a number that looks ordinary, so nothing tells you that the model is confidently wrong.",
    ])


def _step5(b: _Builder) -> DemoStep:
    f16 = "float16"
    nf_np, nf_t = b.sweep16("numpy", 0.0, "nonfinite_pos"), b.sweep16("torch", 0.0, "nonfinite_pos")
    neg_np, neg_t = b.sweep16("numpy", 1.0, "nonfinite_neg"), b.sweep16("torch", 1.0, "nonfinite_neg")
    x0 = float(nf_np.value)
    p_np = b.compare(x0, 0.0, "numpy", "naive", "step:p = sigmoid(x)", dtype=f16, digits=None)
    p_t = b.compare(x0, 0.0, "torch", "naive", "step:p = sigmoid(x)", dtype=f16, digits=None)
    l_np = b.compare(x0, 0.0, "numpy", "naive", dtype=f16)
    l_t = b.compare(x0, 0.0, "torch", "naive", dtype=f16)
    gap = b.constant(f16, "spacing", 1.0, digits=None)
    below = b.constant(f16, "below_one", digits=None)
    pred_op = b.threshold(f16, "sigmoid rounds to 1.0, op by op")
    pred_cr = b.threshold(f16, "sigmoid rounds to 1.0, correctly rounded")
    pred_ovf = b.threshold(f16, "exp(-x) overflows, so op-by-op sigmoid is 0")
    pred_under = b.threshold(f16, "sigmoid underflows to 0, correctly rounded")
    table = DemoTable(["naive, float16", f"p at {fmt_number(x0, None)}", "loss y=0", "inf/NaN x ≥", "and x ≤"], [
        ["numpy, op by op", p_np, l_np, nf_np, neg_np],
        ["torch", p_t, l_t, nf_t, neg_t],
    ])
    return b.step("float16: where the naive form breaks", [
        f"Mixed precision trains in float16, and there {_stored(b, BIG, f16)}. So how far out does the naive "
        "formula survive? stabcli swept every finite float16 logit (targets 0 and 1) through it, in numpy "
        "op by op and in torch:",
    ], [table], [
        f"Op by op, exp(-x) is rounded to float16, then 1 + exp(-x) is: once exp(-x) is at most half the gap "
        f"above 1 (the gap is {gap}), the sum rounds to 1 and p = 1 (predicted from the format: x ≥ {pred_op}). "
        f"torch computes sigmoid in float32 and rounds once, so p stays below 1 until sigmoid(x) is nearer to 1 "
        f"than to {below}, the float16 just below 1 (predicted: x ≥ {pred_cr}). Same formula, same dtype, two "
        "different breakdowns: where the rounding happens matters. On the negative side, op by op exp(-x) "
        f"overflows and p = 1/(1 + inf) = 0 (predicted: x ≤ {pred_ovf}); torch's sigmoid only underflows to 0 "
        f"where the exact value is below half the smallest float16 (predicted: x ≤ {pred_under}).",
    ])


def _grad_rows(b: _Builder, cases: list[tuple[str, float, float]]) -> list[list]:
    rows = []
    for dtype, x, y in cases:
        rows.append([dtype, fmt_number(x), fmt_number(y),
                     b.compare(x, y, "torch", "torch_bce", "grad", dtype=dtype, digits=4),
                     b.compare(x, y, "torch", "torch_bce_with_logits", "grad", dtype=dtype, digits=4),
                     b.compare(x, y, "numpy", "naive", "grad_reference", dtype=dtype, digits=4)])
    return rows


def _step6(b: _Builder) -> DemoStep:
    d = b.dtype
    cases = [(d, 40.0, 0.0), (d, -50.0, 1.0)] + ([("float16", 40.0, 0.0)] if d != "float16" else [])
    table = DemoTable(["dtype", "x", "y", "BCELoss", "BCEWithLogits", "exact"], _grad_rows(b, cases))
    why = []
    for dtype, x, y in cases:
        note = b.note(x, y, "torch", "torch_bce", "dloss/dx", dtype=dtype)
        if note:
            why.append(f"{dtype}, x = {fmt_number(x)}, y = {fmt_number(y)}: {note}.")
    eps16 = b.grad_epsilon("float16")
    tiny16 = b.constant("float16", "smallest_subnormal", digits=3)
    return b.step("The gradient: zero or NaN where it should be ±1", [
        "The gradient of the loss with respect to the logit is sigmoid(x) - y: about +1 or -1 when the network "
        "is confidently wrong, exactly the signal that should correct it. BCELoss's backward computes "
        "(p - y)/max(p(1-p), 1e-12) and torch.sigmoid's backward multiplies by p(1-p). Gradient d loss / d x:",
    ], [table], why + [
        f"In float16, 1e-12 is stored as {eps16} (the smallest float16 is {tiny16}): the guard is gone. "
        "BCEWithLogitsLoss gets these gradients right: its backward is sigmoid(x) - y, with no division by "
        "p(1-p) (step 7 shows where even that vanishes).",
    ])


def _step7(b: _Builder) -> DemoStep:
    d = b.dtype
    cases = [(BIG, 1.0), (BIG, 0.0), (-12.0, 0.0)]
    table = DemoTable(["x", "y", "BCELoss", "BCEWithLogits", "softplus form", "exact"], [
        [fmt_number(x), fmt_number(y), b.compare(x, y, "torch", "torch_bce", digits=4),
         b.compare(x, y, "torch", "torch_bce_with_logits", digits=4),
         b.compare(x, y, "numpy", "softplus", digits=4), b.compare(x, y, "numpy", "naive", "reference", digits=4)]
        for x, y in cases])
    wl = b.compare(-12.0, 0.0, "torch", "torch_bce_with_logits", digits=4)
    ref = b.compare(-12.0, 0.0, "numpy", "naive", "reference", digits=4)
    wl.digits = ref.digits = _distinct_digits(float(wl.value), float(ref.value), 4)
    wl_status = b.compare(-12.0, 0.0, "torch", "torch_bce_with_logits", "status")
    rel = b.compare(-12.0, 0.0, "torch", "torch_bce_with_logits", "rel_error", digits=2)
    sp = b.compare(-12.0, 0.0, "numpy", "softplus", digits=7)
    sp_status = b.compare(-12.0, 0.0, "numpy", "softplus", "status")
    abs_err = b.compare(-12.0, 0.0, "torch", "torch_bce_with_logits", "abs_error", digits=2)
    log_sig = b.compare(-12.0, 1.0, "numpy", "naive", "reference", digits=8)  # -logsigmoid(-12) = softplus(12)
    gap = b.constant(d, "spacing", 12.0, digits=3)
    return b.step("The fix: BCEWithLogitsLoss (the softplus form)", [
        "Never form p = sigmoid(x) and then take its log: work on the logit. loss = y·softplus(-x) + "
        "(1-y)·softplus(x), with softplus(t) = max(t, 0) + log1p(exp(-|t|)). exp's argument is never "
        "positive, so nothing overflows, and both terms are ≥ 0, so nothing cancels. In torch: drop the "
        f"nn.Sigmoid and use nn.BCEWithLogitsLoss on the logits. In {d}:",
    ], [table], [
        f"Even torch's own form has a weak spot. It computes (1-y)·x - logsigmoid(x); at y = 0 and x = -12 that "
        f"is -12 + {log_sig}, two nearly equal numbers, and {d} numbers near 12 are {gap} apart. It returns "
        f"{wl} ({wl_status}) where the truth is {ref}: a relative error of {rel}. softplus(x) written with "
        f"log1p, as above, gives {sp} ({sp_status}). Still, use BCEWithLogitsLoss: its absolute error, "
        f"{abs_err} here, is negligible next to the loss of an ordinary example. Where the relative accuracy "
        "of tiny losses matters, the softplus form keeps it.",
    ] + _grad_caveat(b))


def _grad_caveat(b: _Builder) -> list[str]:
    """What a sweep says of BCEWithLogitsLoss's gradient for target 1: where it vanishes, and how much that matters
    (quoted from ``run_sweep`` on stabcli sweep's default grid, torch, in the step's dtype)."""
    d = b.dtype
    wl = ("torch", "torch_bce_with_logits", 1.0)
    gone = b.sweep_grid(*wl, "grad_count_vanished", shown=False)
    first = b.sweep_grid(*wl, "grad.vanished_pos", digits=d, shown=False)
    if not gone.value or first.value is None:
        return []
    points = b.sweep_grid(*wl, "points")
    b.show(gone, first)
    truth = b.compare(float(first.value), 1.0, "torch", "torch_bce_with_logits", "grad_reference", digits=3)
    p = b.compare(float(first.value), 1.0, "torch", "torch_bce", "step:p = torch.sigmoid(x)", shown=False)
    where = ""
    if p.value == 1.0:
        b.show(p)
        where = f", where sigmoid(x) rounds to {p}"
    text = (f"Its gradient is not exact everywhere either. torch's backward forms sigmoid(x) - y, which for "
            f"target 1 cancels as sigmoid(x) nears 1: over stabcli sweep's {points} {d} logits (torch) the "
            f"gradient is 0 at {gone} of them, from x ≥ {first}{where}, while the true gradient there runs from "
            f"{truth} (at x = {first}) toward 0.")
    eps = b.constant(d, "eps", digits=3, shown=False)
    if abs(float(truth.value)) < float(eps.value):
        b.show(eps)
        text += (f" That is below {d}'s eps, {eps}: added to the gradient of an ordinary example, of about 1, it "
                 "would be lost anyway, so training hardly notices.")
    sp = [b.sweep_grid("torch", "softplus", 1.0, f"grad_count_{k}", shown=False)
          for k in ("nonfinite", "vanished", "inaccurate")]
    if all(q.value == 0 for q in sp):
        b.show(*sp[1:2])
        text += (f" The softplus form, differentiated by autograd, keeps them: {sp[1]} vanished, none off "
                 "tolerance.")
    return [text]


def _step8(b: _Builder) -> DemoStep:
    d = b.dtype
    k = KERAS_EPSILON
    keras = (k, 1.0 - k)
    sk_eps = FORMATS[d].eps
    rules = (("Keras 3", keras, 0.0), ("tf.keras 2.x", keras, k), ("scikit-learn", (sk_eps, 1.0 - sk_eps), 0.0))
    rows = [[label, b.clip(BIG, 0.0, lo, hi, what="one_minus_high", log_eps=e), b.clip(BIG, 0.0, lo, hi, log_eps=e),
             b.clip(-BIG, 1.0, lo, hi, log_eps=e)] for label, (lo, hi), e in rules]
    # the true losses at ±1e10 as typed (float64 holds 1e10; float16 would round them to inf)
    ref0 = b.compare(BIG, 0.0, "numpy", "naive", "reference", dtype="float64")
    rows.append(["exact (mpmath)", "", ref0, b.compare(-BIG, 1.0, "numpy", "naive", "reference", dtype="float64")])
    table = DemoTable(["rule on p", "smallest 1 - p", "x=1e10, y=0", "x=-1e10, y=1"], rows)
    hi_k = b.clip(BIG, 0.0, *keras, what="high", digits=9, shown=False)
    k3 = b.clip(BIG, 0.0, *keras, shown=False)
    tf2 = b.clip(BIG, 0.0, *keras, log_eps=k, shown=False)
    sk = b.clip(BIG, 0.0, sk_eps, 1.0 - sk_eps, shown=False)
    paper = b.clip(BIG, 0.0, *keras, dtype="float64", shown=False)
    if hi_k.value == 1.0:
        b.show(hi_k, k3, tf2, sk)
        top = (f"In {d}, 1 - 1e-7 rounds to {hi_k}: the clip does nothing at the top, so Keras 3 gives {k3}; "
               f"tf.keras 2.x's added 1e-7 still caps the loss, at {tf2}, and scikit-learn's eps of the dtype at "
               f"{sk}.")
    else:
        b.show(hi_k, k3, tf2)
        on_paper = ""
        if k3.text() != paper.text():
            b.show(paper)
            on_paper = f" (not the {paper} that 1e-7 gives on paper, in float64)"
        top = (f"In {d}, 1 - 1e-7 is stored as {hi_k}, so Keras 3's loss stops at {k3}{on_paper}, and tf.keras "
               f"2.x's, with 1e-7 added inside the log, at {tf2}.")
    return b.step("Further: other clips that hide the overflow", [
        "torch's -100 is not the only guard that turns an overflow into an ordinary-looking number. On "
        "probabilities, Keras 3 clips p to [1e-7, 1 - 1e-7] before its logs; tf.keras 2.x clips the same way and "
        "also adds 1e-7 inside each log; scikit-learn's log_loss clips to [eps, 1 - eps] (eps of the dtype since "
        f"1.2). stabcli applies each rule with numpy, op by op in {d}:",
    ], [table], [
        top + f" A capped loss looks ordinary where the truth is {ref0}, and the clipped p no longer depends on "
        "x, so the gradient there is 0.",
        "On a model whose last layer is a Sigmoid, tf.keras 2.x and Keras 3 on TensorFlow find the logit behind "
        "it and use the logit form (_get_logits); Keras 3 on torch, JAX or NumPy does not. A clip keeps training "
        "from crashing; it does not make the loss right: use BCEWithLogitsLoss, or from_logits=True in Keras.",
        "Explore further: stabcli compare X Y, stabcli sweep, stabcli thresholds, stabcli plot.",
    ])


_STEPS = {1: _step1, 2: _step2, 3: _step3, 4: _step4, 5: _step5, 6: _step6, 7: _step7, 8: _step8}


def check_step(number: int) -> None:
    if not (isinstance(number, int) and 1 <= number <= STEP_COUNT):
        raise InputError(f"--step {number} is out of range; the demo has steps 1 to {STEP_COUNT}")


def check_dtype(dtype: str) -> None:
    if dtype not in DEMO_DTYPES:
        raise InputError(f"--dtype {dtype!r} is not allowed; the demo takes one of {', '.join(DEMO_DTYPES)}")


# --- the quiz: a prediction before each step, answered by a live number -----------------------------------------

@dataclass
class Question:
    """What the class predicts before a step, and the answer, from the same core calls as the step.

    ``choices`` are shown as (a), (b), ...; ``answer`` is the index of the right one. Every choice that is a
    number is the text of a Quote (the live value, or a live value of another case as a distractor), so the
    right choice is always among them. An open question (``choices`` empty) asks for a number; ``reveal`` then
    gives it. ``quotes`` are every number the question and its answer show.
    """

    number: int  # the step it comes before
    prompt: str
    choices: list[str]
    answer: int | None
    reveal: str
    quotes: list[Quote] = field(default_factory=list)
    value: Quote | None = None  # the number an open question asks for

    def answer_text(self) -> str:
        """'(b) NaN' for a multiple-choice question, the number for an open one."""
        if self.answer is None:
            return self.value.text() if self.value is not None else ""
        return f"({LETTERS[self.answer]}) {self.choices[self.answer]}"


LETTERS = "abcdefgh"


def _choices(candidates: list, right) -> tuple[list[str], int]:
    """The texts of ``candidates`` (Quotes or strings), duplicates dropped, and the index of ``right``'s text
    (appended if none of them shows it, so the right answer is always a choice)."""
    texts = list(dict.fromkeys(str(c) for c in candidates))
    want = str(right)
    if want not in texts:
        texts.append(want)
    return texts, texts.index(want)


def _question(b: _Builder, prompt: str, candidates: list, right, reveal: str) -> Question:
    choices, answer = _choices(candidates, right)
    return Question(b.number, prompt, choices, answer, reveal, b.quotes)


def _q1(b: _Builder) -> Question:
    x, y, d = SEED_LOGITS, SEED_TARGETS, b.dtype
    bce = b.compare(x, y, "torch", "torch_bce")
    bwl = b.compare(x, y, "torch", "torch_bce_with_logits")
    states = [b.compare(x, y, "torch", m, "status") for m in ("torch_bce", "torch_bce_with_logits")]
    ref = b.compare(x, y, "numpy", "naive", "reference", digits=10)
    same, visibly, broken = "yes, up to rounding in the last digit or two", "no, they differ visibly", \
        "one of them is NaN or inf"
    right = same if all(s.value == "ok" for s in states) else \
        broken if any(s.value in ("inf", "nan") for s in states) else visibly
    return _question(b, f"The seed article's batch: six ordinary logits, in {d}. Do BCELoss(sigmoid(x), y) and "
                        "BCEWithLogitsLoss(x, y) agree?", [same, visibly, broken], right,
                     f"BCELoss gives {bce} ({states[0]}), BCEWithLogitsLoss {bwl} ({states[1]}); the exact loss "
                     f"is {ref}.")


def _q2(b: _Builder) -> Question:
    d = b.dtype
    bce1 = b.compare(BIG, 1.0, "torch", "torch_bce")
    status = b.compare(BIG, 1.0, "torch", "torch_bce", "status")
    naive1 = b.compare(BIG, 1.0, "torch", "naive")
    return _question(b, f"x = 1e10, target 1, in {d}: BCELoss(sigmoid(x), 1) = ?", ["0", "NaN", "inf", "100"],
                     bce1, f"BCELoss gives {bce1} ({status}); the naive formula gives {naive1}.")


def _q3(b: _Builder) -> Question:
    d = b.dtype
    p = b.compare(BIG, 1.0, "torch", "naive", "step:p = sigmoid(x)")
    one_minus = b.compare(BIG, 1.0, "torch", "naive", "step:1 - p")
    first = "p = sigmoid(x)"
    candidates = [first, "log(1 - p)", "(1 - y)·log(1 - p)", "the mean over the batch"]
    return _question(b, f"x = 1e10, target 1, in {d}: which operation is the first to lose information?",
                     candidates, first if p.value == 1.0 else "log(1 - p)",
                     f"sigmoid(1e10) is {p} in {d}, so 1 - p is {one_minus}: no later step can get x back.")


def _q4(b: _Builder) -> Question:
    d = b.dtype
    bce0 = b.compare(BIG, 0.0, "torch", "torch_bce")
    true0 = b.compare(BIG, 0.0, "numpy", "naive", "reference", dtype="float64")
    return _question(b, f"Target 0 now (sure and wrong), x = 1e10, in {d}: what does BCELoss return?",
                     ["0", "100", "1e10", "inf"], bce0, f"BCELoss returns {bce0}; the true loss is {true0}.")


def _q5(b: _Builder) -> Question:
    f16 = "float16"
    eps = b.constant(f16, "eps", digits=None)
    pred = b.threshold(f16, "sigmoid rounds to 1.0, op by op")
    measured = b.sweep16("numpy", 0.0, "nonfinite_pos")
    q = Question(b.number, f"float16 has eps = 2^-10 = {eps}. Computed op by op, 1 + exp(-x) rounds to 1 once "
                           "exp(-x) is at most eps/2. Predict: from which x does sigmoid(x) round to exactly 1.0?",
                 [], None, f"x ≥ ln(2/eps) = 11·ln 2, which is {pred} in float16; the exhaustive sweep measures "
                           f"{measured}.", b.quotes, measured)
    return q


def _q6(b: _Builder) -> Question:
    d = b.dtype
    g = b.compare(40.0, 0.0, "torch", "torch_bce", "grad")
    truth = b.compare(40.0, 0.0, "numpy", "naive", "grad_reference")
    return _question(b, f"x = 40, target 0, in {d}: the true gradient is sigmoid(40) - 0, about 1. What does "
                        "BCELoss's backward give?", ["1", "0", "NaN", "-1"], g,
                     f"BCELoss's backward gives {g}; the true gradient is {truth}.")


def _q7(b: _Builder) -> Question:
    d = b.dtype
    status = b.compare(-12.0, 0.0, "torch", "torch_bce_with_logits", "status")
    wl = b.compare(-12.0, 0.0, "torch", "torch_bce_with_logits", digits=4)
    ref = b.compare(-12.0, 0.0, "numpy", "naive", "reference", digits=4)
    wl.digits = ref.digits = _distinct_digits(float(wl.value), float(ref.value), 4)
    yes, no = "yes", "no"
    return _question(b, f"x = -12, target 0, in {d}: is BCEWithLogitsLoss within tolerance?", [yes, no],
                     yes if status.value == "ok" else no,
                     f"It gives {wl} where the truth is {ref}: {status}.")


def _q8(b: _Builder) -> Question:
    d = b.dtype
    keras = (KERAS_EPSILON, 1.0 - KERAS_EPSILON)
    live = b.clip(BIG, 0.0, *keras)
    paper = b.clip(BIG, 0.0, *keras, dtype="float64")
    hi = b.clip(BIG, 0.0, *keras, what="high", digits=9)
    true0 = b.compare(BIG, 0.0, "numpy", "naive", "reference", dtype="float64")
    on_paper = "" if d == "float64" else f" (on paper, in float64: {paper})"
    return _question(b, f"Keras 3 clips p to [1e-7, 1 - 1e-7] before its logs. In {d}, what loss does it give "
                        "at x = 1e10, y = 0?", [paper, live, "100", "inf"], live,
                     f"1 - 1e-7 is stored as {hi} in {d}, and -log(1 - {hi}) is {live}{on_paper}; the true loss "
                     f"is {true0}.")


_QUESTIONS = {1: _q1, 2: _q2, 3: _q3, 4: _q4, 5: _q5, 6: _q6, 7: _q7, 8: _q8}


class Lesson:
    """The walk-through in one dtype: its questions and steps, each built when asked for, sharing one set of
    core calls (steps 2, 3, 4 and 7 and their questions read the same comparisons)."""

    def __init__(self, dtype: str = DEFAULT_DTYPE) -> None:
        check_dtype(dtype)
        self.dtype = dtype
        self._lab = _Lab()

    def step(self, number: int) -> DemoStep:
        check_step(number)
        return _STEPS[number](_Builder(self._lab, number, self.dtype))

    def question(self, number: int) -> Question | None:
        check_step(number)
        make = _QUESTIONS.get(number)
        return make(_Builder(self._lab, number, self.dtype)) if make else None


def judge_answer(question: Question, said: str) -> str:
    """A line about what the class said: right or not for a choice (a letter or the choice's text), how far off
    for a number; '' when nothing (or nothing readable) was said."""
    said = said.strip()
    if not said:
        return ""
    if question.answer is None:
        try:
            guess = float(said)
        except ValueError:
            return f"You said {said!r}."
        value = float(question.value.value) if question.value is not None else math.nan
        if not math.isfinite(guess):
            return f"You said {said}."
        return f"You said {fmt_number(guess)}: off by {fmt_number(abs(guess - value), 3)}."
    key = said.lower().strip("()")
    index = LETTERS.index(key) if len(key) == 1 and key in LETTERS[:len(question.choices)] else \
        next((i for i, c in enumerate(question.choices) if c.lower() == said.lower()), None)
    if index is None:
        return f"You said {said!r}, which is not one of the choices."
    verdict = "right" if index == question.answer else "not this time"
    return f"You said ({LETTERS[index]}) {question.choices[index]}: {verdict}."


def iter_steps(dtype: str = DEFAULT_DTYPE, numbers=None) -> Iterator[DemoStep]:
    """The steps ``numbers`` (default all, in order), each computed only when the caller asks for it.

    Lazy, so that ``--pause`` shows step 1 at once and computes each later step after Enter. Calls shared by
    several steps are made once.
    """
    check_dtype(dtype)
    numbers = list(range(1, STEP_COUNT + 1)) if numbers is None else list(numbers)
    for n in numbers:
        check_step(n)
    lesson = Lesson(dtype)
    for n in numbers:
        yield lesson.step(n)


def build_step(number: int, dtype: str = DEFAULT_DTYPE) -> DemoStep:
    """Step ``number`` (1 to 8) in ``dtype``."""
    return next(iter_steps(dtype, [number]))


def build_steps(dtype: str = DEFAULT_DTYPE) -> list[DemoStep]:
    """All eight steps in ``dtype``."""
    return list(iter_steps(dtype))
