"""`sweep`: every method over a grid of logits (or every finite value of a dtype), counted, and where it breaks.

The numeric core behind ``stabcli sweep``; it never prints. :func:`run_sweep` streams the logits in chunks
(memory is flat in the number of points), evaluates every (backend, method) on each chunk against one shared
reference, and accumulates counts of statuses, the largest errors, and per side of 0 the failing logit closest
to 0. The grid only brackets a breakdown (the failing grid logit closest to 0); :func:`find_closest_failure` then
pins the logit by searching the dtype's representable values (their ordinals) from 0 out to that grid logit.

How it stays fast: a :class:`Chunk` computes the reference once for every method; each method is judged on integer
status codes (``analysis.judge``) and only counted, with no per-logit strings or error arrays (:func:`classify`
keeps those for figures and tests); an exhaustive sweep has evaluated every value, so it needs no search. A
(dtype, target) of at least PARALLEL_MIN_POINTS logits is split into pieces of the walk (ordinals, or grid
indices) that worker processes sweep chunk by chunk; each returns its partial rows (counts, maxima, and the
failing logit closest to 0 per kind and side), the parent merges them and pins the breakdowns once.

Breakdown logits (``Breakdown``), each the logit closest to 0 on its side (x >= 0 / x < 0) within the swept range:
``nonfinite_*`` where the loss is inf or NaN, ``inaccurate_*`` where it is outside the tolerance
|loss - ref| <= atol + rtol·|ref| (non-finite included), ``clamped_*`` where the -100 clamp changed the loss.
None where no grid logit fails on that side. Exact, not estimated: an exhaustive sweep evaluates every value; on
a grid, 16-bit dtypes have at most 2**15 values per side, so the search scans all of them from 0 out. For float32
and float64 the search samples the ordinals (4096 and 64 at a time) and narrows in on the first failing sample;
that is exact for breakdowns that are monotone in |x| (inf/NaN, the clamp), while an out-of-tolerance logit
isolated between two passing samples could be missed (the error of a rounded formula is not monotone in x).

The loss family (``stabcli/losses/``) supplies, per (dtype, target), a *case* (``family.sweep_case``): the inputs
of a method at the swept values and their reference; the engine itself never names a method or a formula.

Gradients (``grad=True``): each method's d loss / d x (``family.grad_of``: op-by-op duals in numpy, autograd in
torch) against the family's reference gradient (for BCE w·((1-y)·sigmoid(x) - pw·y·sigmoid(-x))),
counted as ``nonfinite`` (inf/NaN where the reference is finite), ``vanished`` (0, or below eps·|reference|, where
the reference in the dtype is not 0: ``analysis.vanished``) or ``inaccurate`` (finite, not vanished, outside the
tolerance); a point counts under one of them at most. Their breakdowns (``GradBreakdown``) are found by the same
search as the loss's; ``inaccurate_*`` there includes the non-finite and vanished points (any wrong gradient), and
``nan_*`` singles out NaN among the non-finite (float16's BCELoss gradient is -inf before it is NaN).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable, Iterator

import numpy as np

from stabcli.commands import severity
from stabcli.commands.evaluate import exp_overflowed, format_of, methods_to_run, peers_note, refusal
from stabcli.core.analysis import INF, NAN, OK, Reference, Tolerance, judge, judge_grad
from stabcli.core.backends import BACKEND_NAMES
from stabcli.core.errors import InputError
from stabcli.core.formats import FORMATS, Format, from_ordinal, max_ordinal, ordinal, to_float64
from stabcli.core.numbers import fmt_number
from stabcli.losses import get_family
from stabcli.names import SPACINGS

DEFAULT_MIN, DEFAULT_MAX, DEFAULT_POINTS = -1e4, 1e4, 4001
LOG_INNER = 1e-4  # a log grid that crosses 0 runs from ±LOG_INNER outward (or from the nearer end, if closer)
MAX_POINTS = 10**9  # a grid sweep larger than this is refused (1e9 float32 points, 2 targets: ~13 min on 2 cores)
CHUNK = 2**16  # logits per chunk: ~2 MB per intermediate array in float32, flat whatever the sweep size
SCAN_LIMIT = {8: 2**8, 16: 2**16, 32: 2**16, 64: 64}  # a bracket this small (in representable values) is scanned whole
SAMPLES = {8: 2**8, 16: 4096, 32: 4096, 64: 64}  # a larger bracket is sampled at this many evenly spaced ordinals
BREAKDOWN_KINDS: tuple[str, ...] = ("nonfinite", "inaccurate", "clamped")
COUNT_KEYS: tuple[str, ...] = ("ok", "inaccurate", "clamped", "inf", "nan")
GRAD_COUNT_KINDS: tuple[str, ...] = ("nonfinite", "vanished", "inaccurate")  # exclusive gradient counts
GRAD_KINDS: tuple[str, ...] = ("nonfinite", "nan", "vanished", "inaccurate", "stalled")  # gradient breakdowns
GRAD_DEFAULT = True  # gradients are swept unless asked not to (about 1.5x the time end to end; see README)


@dataclass(frozen=True)
class Grid:
    """The logits to sweep: ``points`` values from ``min`` to ``max`` (linear or log spacing), or exhaustive."""

    min: float = DEFAULT_MIN
    max: float = DEFAULT_MAX
    points: int = DEFAULT_POINTS
    spacing: str = "log"
    exhaustive: bool = False
    # Exhaustive over the ordinals lo..hi (inclusive) only, not the whole format: for benchmarks and tests, which
    # time or check a slice of float32's 4.28e9 values; the command line always sweeps every value.
    ordinals: tuple[int, int] | None = None

    def as_dict(self) -> dict:
        if self.exhaustive:
            return {"kind": "exhaustive"} if self.ordinals is None else \
                {"kind": "exhaustive", "ordinals": list(self.ordinals)}
        return {"kind": "grid", "min": self.min, "max": self.max, "points": self.points, "spacing": self.spacing,
                "log_inner": LOG_INNER if self.spacing == "log" and self.min < 0 < self.max else None}


def make_grid(min: float | None = None, max: float | None = None, points: int | None = None,
              spacing: str | None = None, exhaustive: bool = False) -> Grid:
    """A checked :class:`Grid`; the default is symmetric, log-spaced on each side of 0, out to |x| = 1e4."""
    given = [name for name, v in (("--min", min), ("--max", max), ("--points", points), ("--spacing", spacing))
             if v is not None]
    if exhaustive:
        if given:
            raise InputError(f"--exhaustive evaluates every finite value, so {', '.join(given)} cannot be given "
                             "with it; drop them or drop --exhaustive")
        return Grid(exhaustive=True)
    lo = DEFAULT_MIN if min is None else float(min)
    hi = DEFAULT_MAX if max is None else float(max)
    n = DEFAULT_POINTS if points is None else points
    sp = "log" if spacing is None else spacing.lower()
    for name, v in (("--min", lo), ("--max", hi)):
        if not math.isfinite(v):
            raise InputError(f"{name} {v} is not allowed; give a finite number")
    if lo >= hi:
        raise InputError(f"--min {lo:g} must be less than --max {hi:g}")
    if not 2 <= n <= MAX_POINTS:
        raise InputError(f"--points {n} is not allowed; give 2 to {MAX_POINTS:,} points")
    if sp not in SPACINGS:
        raise InputError(f"--spacing {sp!r} is not allowed; use linear or log")
    return Grid(lo, hi, int(n), sp)


# --- the logits, in chunks -----------------------------------------------------------------------------------

def _log_sides(grid: Grid) -> tuple[int, int, int, float, float]:
    """How a log grid splits: (negative points, zero point (0/1), positive points, inner, ...)."""
    lo, hi = grid.min, grid.max
    if lo > 0 or hi < 0:
        return 0, 0, 0, 0.0, 0.0
    inner_neg = min(LOG_INNER, -lo) if lo < 0 else 0.0
    inner_pos = min(LOG_INNER, hi) if hi > 0 else 0.0
    dec_neg = _decades(-lo, inner_neg) + 1 if lo < 0 else 0.0
    dec_pos = _decades(hi, inner_pos) + 1 if hi > 0 else 0.0
    rest = grid.points - 1
    n_neg = int(round(rest * dec_neg / (dec_neg + dec_pos)))
    if lo < 0 and hi > 0:
        n_neg = min(max(n_neg, 1), rest - 1)
    return n_neg, 1, rest - n_neg, inner_neg, inner_pos


def _decades(outer: float, inner: float) -> float:
    """log10(outer / inner), also where the quotient overflows (a bound beyond 1.8e304 over the inner 1e-4)."""
    ratio = outer / inner
    return math.log10(ratio) if math.isfinite(ratio) else math.log10(outer) - math.log10(inner)


def grid_float64(grid: Grid, start: int, stop: int) -> np.ndarray:
    """Grid points ``start`` to ``stop`` (indices) as float64, in increasing order."""
    i = np.arange(start, stop, dtype=np.float64)
    n = grid.points
    lo, hi = grid.min, grid.max
    with np.errstate(all="ignore"):
        if grid.spacing == "linear":
            t = i / (n - 1)
            if not math.isfinite(hi - lo):  # bounds near ±1.8e308: hi - lo overflows, each term does not
                return np.where(i == n - 1, hi, lo * (1 - t) + hi * t)
            return np.where(i == n - 1, hi, lo + (hi - lo) * t)
        if lo > 0:
            return np.where(i == n - 1, hi, _geometric(lo, hi, i / (n - 1)))
        if hi < 0:
            return np.where(i == n - 1, hi, -_geometric(-lo, -hi, i / (n - 1)))
        n_neg, _, n_pos, inner_neg, inner_pos = _log_sides(grid)
        out = np.zeros_like(i)
        neg = i < n_neg
        if n_neg:
            k = i[neg]  # k = 0 is lo, k = n_neg - 1 is -inner
            out[neg] = -_geometric(-lo, inner_neg, k / max(n_neg - 1, 1))
        pos = i > n_neg
        if n_pos:
            k = i[pos] - n_neg - 1  # k = 0 is inner, k = n_pos - 1 is hi
            out[pos] = _geometric(inner_pos, hi, k / max(n_pos - 1, 1))
            out[i == n - 1] = hi
        return out


def _geometric(a: float, b: float, t: np.ndarray) -> np.ndarray:
    """a·(b/a)^t for a, b > 0, t in [0, 1]; in logarithms where b/a overflows or underflows (a bound past
    1.8e304 over the inner 1e-4, or 1e-300 against 1e308), which would make every point inf or 0."""
    if math.isfinite(b / a) and b / a >= sys.float_info.min:
        return a * (b / a) ** t
    la, lb = math.log(a), math.log(b)
    return np.where(t == 0, a, np.exp(la + t * (lb - la)))


def total_points(grid: Grid, fmt: Format) -> int:
    """How many logits the sweep evaluates in ``fmt`` (exact when exhaustive, an upper bound on a grid)."""
    if not grid.exhaustive:
        return grid.points
    lo, hi = span(grid, fmt)
    return hi - lo + (lo <= 0 < hi)  # +1: both zeros


def span(grid: Grid, fmt: Format) -> tuple[int, int]:
    """The positions [start, stop) that :func:`logit_chunks` walks: ordinals when exhaustive, else grid indices."""
    if not grid.exhaustive:
        return 0, grid.points
    if fmt.bits == 64:
        raise InputError("--exhaustive with float64 would be 1.8e19 values; use it with float8_e4m3fn, "
                         "float8_e5m2, float16, bfloat16 or float32, or sweep float64 on a grid")
    m = max_ordinal(fmt)
    lo, hi = (-m, m) if grid.ordinals is None else (max(grid.ordinals[0], -m), min(grid.ordinals[1], m))
    return lo, hi + 1


def logit_chunks(grid: Grid, fmt: Format, chunk: int = CHUNK, start: int | None = None,
                 stop: int | None = None) -> Iterator[np.ndarray]:
    """The swept logits as arrays of the dtype: increasing, distinct, finite, at most ``chunk`` per array (one
    more in the chunk where -0 joins +0).

    Exhaustive: every finite value, -0 and +0 both (63,488 float16 and 65,280 bfloat16 values, as the issue and
    :meth:`Format.all_finite` count them; the two zeros give the same loss).
    Grid: the grid rounded to the dtype; values that round to the same number are kept once, and values beyond the
    dtype's range (which would round to ±inf) are dropped.
    ``start``/``stop`` walk only the positions [start, stop) of :func:`span` (ordinals or grid indices), so that
    consecutive pieces together give exactly the logits of the whole walk (a worker's share of a sweep).
    """
    first, end = span(grid, fmt)
    first, end = max(first, first if start is None else start), min(end, end if stop is None else stop)
    if grid.exhaustive:
        for lo in range(first, end, chunk):
            hi = min(lo + chunk, end)
            values = from_ordinal(np.arange(lo, hi, dtype=np.int64), fmt)
            if lo <= 0 < hi:  # ordinal 0 is +0; -0 goes just before it
                at = int(-lo)
                values = np.concatenate([values[:at], np.array([-0.0]).astype(fmt.np_dtype), values[at:]])
            yield values
        return
    # the grid value before the piece, as rounded: a value equal to it was already swept
    last = to_float64(fmt.round(grid_float64(grid, first - 1, first)))[0] if first > 0 else None
    for lo in range(first, end, chunk):
        values = fmt.round(grid_float64(grid, lo, min(lo + chunk, end)))
        wide = to_float64(values)
        keep = np.isfinite(wide)
        keep[1:] &= wide[1:] != wide[:-1]
        if last is not None and wide.size:
            keep[0] &= wide[0] != last
        if wide.size:
            last = wide[-1]
        values = values[keep]
        if values.size:
            yield _plus_zero(values, fmt)


def grid_beyond(grid: Grid, fmt: Format) -> int:
    """How many grid points lie beyond ``fmt``'s range (they round to ±inf, or NaN in float8_e4m3fn) and are left
    out. The grid increases and rounding keeps its order, so they are a prefix (negative) and a suffix (positive),
    found by bisection: about 60 points rounded, whatever the grid's size."""
    if grid.exhaustive:
        return 0
    n = grid.points

    def value(i: int) -> tuple[float, bool]:
        x = grid_float64(grid, i, i + 1)
        with np.errstate(all="ignore"):
            return float(x[0]), bool(np.isfinite(to_float64(fmt.round(x))[0]))

    def first(pred) -> int:  # the first index where pred holds (pred is false, then true), n if none
        lo, hi = 0, n
        while lo < hi:
            mid = (lo + hi) // 2
            if pred(*value(mid)):
                hi = mid
            else:
                lo = mid + 1
        return lo

    below = first(lambda x, finite: finite or x >= 0)  # the negative points beyond the range come first
    above = n - first(lambda x, finite: not finite and x > 0)
    return below + above


def dropped_note(grid: Grid, fmt: Format, evaluated: int) -> str | None:
    """Why a grid sweep in ``fmt`` evaluates fewer logits than ``--points`` asked for, or None: points that round
    to a value already swept (a float16 grid from 0 to 1e-5 has 10 points but 2 distinct float16 values), and
    points beyond the dtype's range."""
    if grid.exhaustive or evaluated >= grid.points:
        return None
    beyond = grid_beyond(grid, fmt)
    duplicates = grid.points - evaluated - beyond
    why = []
    if duplicates:
        why.append(f"{duplicates:,} round to a {fmt.name} value already swept")
    if beyond:
        to = "inf" if fmt.has_inf else "NaN"
        why.append(f"{beyond:,} lie beyond {fmt.name}'s largest value {fmt_number(fmt.max, None)} and would round "
                   f"to {to}")
    return (f"{fmt.name}: {evaluated:,} of the {grid.points:,} grid points {'is' if evaluated == 1 else 'are'} "
            "evaluated; "
            + " and ".join(why) + " (left out)")


def _plus_zero(values: np.ndarray, fmt: Format) -> np.ndarray:
    """-0 becomes +0 (one value), everything else unchanged."""
    return np.where(to_float64(values) == 0, fmt.np_dtype.type(0), values).astype(fmt.np_dtype)


# --- evaluating one chunk ------------------------------------------------------------------------------------

class Chunk:
    """Logits of the dtype and what every method judged on them shares, computed once: the reference (and the
    reference gradient), prepared for ``analysis.judge``, and where numpy's op-by-op sigmoid overflows.

    ``ref``/``grad_ref`` give the (nearest, for_rounding) pairs if known; ``cache``, {"loss": {}, "grad": {}} kept
    by the caller for one dtype and target, remembers mpmath's answers across chunks (the breakdown search asks
    for the same logits for every method). The streaming pass keeps none, so that its memory stays flat.
    ``shared``: a dict kept while every target of a sweep is judged on these same logits, handed to the family's
    ``evaluate`` (``LossFamily.run_formula``): what a method computes from the logits alone is computed once.
    """

    def __init__(self, xs: np.ndarray, s, tol: Tolerance, ref=None, grad_ref=None,
                 cache: dict | None = None, family=None, given: tuple = (None, None), shared: dict | None = None):
        self.xs, self.s, self.tol, self.shared = xs, s, tol, shared  # s: the family's sweep case (target, ...)
        self.family = get_family() if family is None else family
        self.xs64 = to_float64(xs)
        self._ref, self._grad_ref, self._cache = ref, grad_ref, cache or {}
        self.given = given  # the user's (rtol, atol), for a loss computed in another format (autocast)
        self._refs: dict = {}

    def ref_in(self, fmt: Format) -> Reference:
        """The loss reference prepared for results of ``fmt``: :attr:`ref` for the case's own format; for another
        (a loss autocast computed in float32) the case's reference certified for that format, its tolerance the
        user's or that format's default."""
        if fmt.name == self.s.fmt.name:
            return self.ref
        if fmt.name not in self._refs:
            nearest, for_rounding = self.s.reference(self.xs, self._cache.get("loss"), fmt=fmt)
            tol = Tolerance.for_format(fmt, *self.given)
            self._refs[fmt.name] = Reference.prepare(nearest, fmt, tol, for_rounding, exact_finite=self.finite)
        return self._refs[fmt.name]

    @cached_property
    def ref(self) -> Reference:
        nearest, for_rounding = self.s.reference(self.xs, self._cache.get("loss")) if self._ref is None \
            else self._ref
        # at a finite swept value the exact loss is finite: an infinite loss there overflowed (analysis.judge)
        return Reference.prepare(nearest, self.s.fmt, self.tol, for_rounding, exact_finite=self.finite)

    @cached_property
    def grad_ref(self) -> Reference:
        nearest, for_rounding = self.s.grad_reference(self.xs, self._cache.get("grad")) \
            if self._grad_ref is None else self._grad_ref
        return Reference.prepare(nearest, self.s.fmt, self.tol, for_rounding, exact_finite=self.finite)

    @cached_property
    def finite(self) -> np.ndarray | bool:
        """Where the swept value is finite (sweeps: everywhere; figures and tests may pass ±inf), and so is the exact
        loss and gradient."""
        return True if np.isfinite(self.xs64).all() else np.isfinite(self.xs64)

    @cached_property
    def stall_floor(self) -> float:
        """The smallest true gradient whose vanishing stalls training (``severity.stall_floor``)."""
        return severity.stall_floor(self.s)

    @cached_property
    def sigmoid_overflow(self) -> np.ndarray:
        """Where exp(-x), inside numpy's op-by-op sigmoid of these logits, overflows (the same for every method)."""
        with np.errstate(all="ignore"):
            return ~np.isfinite(np.exp(-self.xs))  # inf, or NaN in float8_e4m3fn (the logits are finite)

    @cached_property
    def split(self) -> int:
        """The index of the first logit >= 0 (-0 included); sweep chunks are increasing."""
        return int(np.searchsorted(self.xs64, 0.0, side="left"))


@dataclass
class Classified:
    """Per-logit results of one method on one chunk."""

    status: np.ndarray  # str (analysis.STATUSES)
    loss: np.ndarray  # float64: the method's loss at each logit
    abs_error: np.ndarray
    error_bits: np.ndarray
    nonfinite: np.ndarray  # bool
    inaccurate: np.ndarray  # bool: outside tolerance (non-finite included)
    clamped: np.ndarray  # bool: the -100 clamp changed the loss
    overflow: np.ndarray  # bool: an intermediate exp overflowed


def _exp_overflow(ev, ops, chunk: Chunk) -> np.ndarray:
    """evaluate.exp_overflowed on a chunk, whose sigmoid overflow mask is already known."""
    return exp_overflowed(ev, ops, chunk.xs.shape, (chunk.xs, chunk.sigmoid_overflow))


def _judge_loss(backend: str, method: str, chunk: Chunk):
    """Evaluate ``method`` on the chunk: (judgement, where the clamp changed the loss or None, evaluation, ops)."""
    fmt = chunk.s.fmt
    ev, ops = chunk.family.evaluate(backend, fmt, method, chunk.s.arrays(chunk.xs), broadcast=False,
                                    shared=chunk.shared)
    loss = ops.to_numpy(ev.loss).reshape(chunk.xs.shape)
    changed = None if ev.clamp_changed is None else \
        np.broadcast_to(np.asarray(ev.clamp_changed, dtype=bool), chunk.xs.shape)
    return judge(loss, chunk.ref_in(format_of(loss, fmt)), changed), changed, ev, ops


def classify(backend: str, fmt: Format, method: str, xs: np.ndarray, s, tol: Tolerance,
             ref=None, family=None) -> Classified:
    """Evaluate ``method`` at the logits ``xs`` (dtype values) of the sweep case ``s`` and judge every result
    against the reference."""
    chunk = Chunk(xs, s, tol, ref, family=family)
    j, changed, ev, ops = _judge_loss(backend, method, chunk)
    return Classified(
        status=j.status, loss=j.loss64, abs_error=j.abs_error, error_bits=j.error_bits(),
        nonfinite=~np.isfinite(j.loss64) & j.outside,
        inaccurate=j.outside,
        clamped=np.zeros(xs.shape, bool) if changed is None else np.array(changed, dtype=bool),
        overflow=_exp_overflow(ev, ops, chunk),
    )


def _judge_grad(backend: str, method: str, chunk: Chunk):
    """Differentiate ``method`` on the chunk: the judgement and three masks: non-finite (inf or NaN where the
    reference is finite), NaN, and vanished (finite, and 0 or below eps·|reference| where the reference is not 0)."""
    grad = chunk.family.sweep_grad(chunk.s, backend, method, chunk.xs).reshape(chunk.xs.shape)
    j, gone = judge_grad(grad, chunk.grad_ref)
    nan = j.code == NAN
    nonfinite = j.code >= INF
    return j, nonfinite, nan, gone & ~nonfinite


# --- finding the exact breakdown -----------------------------------------------------------------------------

def find_closest_failure(fails: Callable[[np.ndarray], np.ndarray], near: int, far: int, bits: int) -> int:
    """The ordinal closest to ``near`` in [near, far] (either order) where ``fails`` is true; ``far`` must fail.

    ``fails`` maps an int64 array of ordinals to a bool array. A bracket of at most SCAN_LIMIT values is scanned
    whole; a larger one is sampled at SAMPLES evenly spaced ordinals (both ends included), and the search goes on
    between the first failing sample and the passing sample before it, so that a non-monotone predicate still
    gives the failure closest to ``near`` unless a failing run hides between two passing samples.
    """
    step = 1 if far >= near else -1
    while True:
        width = abs(far - near) + 1
        if width <= SCAN_LIMIT[bits]:
            ords = np.arange(near, far + step, step, dtype=np.int64)
            hit = np.flatnonzero(fails(ords))
            return int(ords[hit[0]]) if hit.size else far
        k = SAMPLES[bits]
        offsets = np.unique(np.round(np.linspace(0, width - 1, k)).astype(np.int64))
        ords = near + step * offsets
        hit = np.flatnonzero(fails(ords))
        if not hit.size:  # `far` is sampled and fails, so only a misbehaving predicate gets here
            return far
        j = hit[0]
        if j == 0:
            return int(ords[0])
        near, far = int(ords[j - 1]) + step, int(ords[j])


@dataclass
class Breakdown:
    """Per side of 0, the logit closest to 0 where the loss is non-finite / out of tolerance / clamped."""

    nonfinite_pos: float | None = None
    nonfinite_neg: float | None = None
    inaccurate_pos: float | None = None
    inaccurate_neg: float | None = None
    clamped_pos: float | None = None
    clamped_neg: float | None = None


@dataclass
class GradBreakdown:
    """Per side of 0, the logit closest to 0 where the gradient is non-finite / NaN / vanished / wrong at all /
    stalled (vanished where the truth matters for training: ``severity.stall_floor``)."""

    nonfinite_pos: float | None = None
    nonfinite_neg: float | None = None
    nan_pos: float | None = None
    nan_neg: float | None = None
    vanished_pos: float | None = None
    vanished_neg: float | None = None
    inaccurate_pos: float | None = None
    inaccurate_neg: float | None = None
    stalled_pos: float | None = None
    stalled_neg: float | None = None


@dataclass
class GradStats:
    """The gradient side of a sweep row: counts (exclusive), largest error, breakdowns and the values there."""

    counts: dict[str, int] = field(default_factory=lambda: {k: 0 for k in GRAD_COUNT_KINDS})
    max_error_bits: float = 0.0
    breakdown: GradBreakdown = field(default_factory=GradBreakdown)
    at: dict[str, tuple[float, float]] = field(default_factory=dict)  # breakdown key -> (gradient, reference)
    # for training (severity): points where the loss or the gradient is inf/NaN; where the gradient stalls
    training: dict[str, int] = field(default_factory=lambda: {"nonfinite": 0, "stalled": 0})
    _closest: dict = field(default_factory=dict, repr=False)


@dataclass
class SweepRow:
    """One (backend, dtype, target, method) of a sweep; ``grad`` is None when gradients were not swept."""

    backend: str
    dtype: str
    target: float
    method: str
    points: int = 0
    counts: dict[str, int] = field(default_factory=lambda: {k: 0 for k in COUNT_KEYS})
    count_overflow: int = 0
    max_abs_error: float = 0.0
    max_error_bits: float = 0.0
    breakdown: Breakdown = field(default_factory=Breakdown)
    grad: GradStats | None = None
    compute_dtype: str | None = None  # the dtype the loss came back in (float32 under autocast's float32 lists)
    refused: str | None = None  # torch.autocast refused the method (binary_cross_entropy on CUDA): torch's message
    training: severity.TrainingBreaks | None = None  # ranked for training (with gradients only)
    _closest: dict = field(default_factory=dict, repr=False)  # (kind, side) -> failing grid logit closest to 0


@dataclass
class Sweep:
    grid: Grid
    weight: object  # a number (BCE), or one per class (softmax)
    pos_weight: float
    rows: list[SweepRow]
    notes: list[str] = field(default_factory=list)
    summary: dict[tuple[str, str, float], str] = field(default_factory=dict)  # (backend, dtype, target) -> sentence
    grad: bool = GRAD_DEFAULT  # whether the rows carry gradients
    family: str = "bce"
    options: dict = field(default_factory=dict)  # the family's own sweep options (softmax: classes, shift, ...)
    autocast: object = None  # the core.autocast.AutocastSpec swept under, or None
    refused: list = field(default_factory=list)  # SweepRows of methods autocast refused (no counts)

    def cases(self) -> dict[tuple[str, str, object], list[SweepRow]]:
        """The rows per (backend, dtype, target), in the sweep's order: what a table or a summary sentence is about."""
        groups: dict = {}
        for r in self.rows:
            groups.setdefault((r.backend, r.dtype, r.target), []).append(r)
        return groups


def _note_closest(closest: dict, kind: str, mask: np.ndarray | None, chunk: Chunk) -> None:
    """Remember, per side of 0, the failing logit (``mask``) closest to 0; the chunk's logits are increasing, so
    that is the first failure at or after :attr:`Chunk.split` and the last one before it."""
    if mask is None:
        return
    k, xs64 = chunk.split, chunk.xs64
    pos, neg = mask[k:], mask[:k][::-1]
    if pos.size:
        i = int(np.argmax(pos))
        if pos[i]:
            closest[(kind, "pos")] = min(float(xs64[k + i]), closest.get((kind, "pos"), math.inf))
    if neg.size:
        i = int(np.argmax(neg))
        if neg[i]:
            closest[(kind, "neg")] = max(float(xs64[k - 1 - i]), closest.get((kind, "neg"), -math.inf))


def _loss_masks(j, changed, chunk: Chunk) -> dict:
    """The breakdown kinds of the loss as masks: non-finite (where the reference in the dtype is not), outside
    the tolerance by the status rules (non-finite included), changed by the clamp (None: no clamp in the
    method)."""
    return {"nonfinite": ~np.isfinite(j.loss64) & j.outside, "inaccurate": j.outside, "clamped": changed}


def _grad_masks(j, nonfinite, nan, gone, floor: float) -> dict:
    """The gradient's breakdown kinds as masks; ``stalled``: vanished where |truth| >= ``floor``."""
    with np.errstate(invalid="ignore"):
        stalled = gone & (np.abs(j.ref.nearest) >= floor)
    return {"nonfinite": nonfinite, "nan": nan, "vanished": gone, "inaccurate": j.code != OK, "stalled": stalled}


def _tally(row: SweepRow, chunk: Chunk) -> np.ndarray:
    """Judge ``row``'s method on the chunk and add it to the row's counts, maxima and breakdown brackets; returns
    where the loss is non-finite (for the gradient's training counts)."""
    j, changed, ev, ops = _judge_loss(row.backend, row.method, chunk)
    row.compute_dtype = j.ref.fmt.name
    row.points += chunk.xs.size
    for key, n in zip(COUNT_KEYS, j.counts()):
        row.counts[key] += int(n)
    row.count_overflow += int(np.count_nonzero(_exp_overflow(ev, ops, chunk)))
    if chunk.xs.size:
        row.max_abs_error = max(row.max_abs_error, float(np.max(j.abs_error)))
        row.max_error_bits = max(row.max_error_bits, j.max_error_bits())
    masks = _loss_masks(j, changed, chunk)
    for kind, mask in masks.items():
        _note_closest(row._closest, kind, mask, chunk)
    return masks["nonfinite"]


def _tally_grad(row: SweepRow, chunk: Chunk, loss_nonfinite: np.ndarray) -> None:
    """The same for the gradient of ``row``'s method (exclusive counts: non-finite, vanished, else inaccurate),
    and the training counts: loss or gradient non-finite; gradient stalled with both finite."""
    j, nonfinite, nan, gone = _judge_grad(row.backend, row.method, chunk)
    stats = row.grad
    stats.counts["nonfinite"] += int(np.count_nonzero(nonfinite))
    stats.counts["vanished"] += int(np.count_nonzero(gone))
    stats.counts["inaccurate"] += int(np.count_nonzero((j.code != OK) & ~nonfinite & ~gone))
    if chunk.xs.size:
        stats.max_error_bits = max(stats.max_error_bits, j.max_error_bits())
    masks = _grad_masks(j, nonfinite, nan, gone, chunk.stall_floor)
    stats.training["nonfinite"] += int(np.count_nonzero(loss_nonfinite | nonfinite))
    stats.training["stalled"] += int(np.count_nonzero(masks["stalled"] & ~loss_nonfinite))
    for kind, mask in masks.items():
        _note_closest(stats._closest, kind, mask, chunk)


def _merge(row: SweepRow, part: SweepRow) -> None:
    """Add a worker's partial row (the same backend, dtype, target and method over other logits) into ``row``."""
    row.points += part.points
    for key in COUNT_KEYS:
        row.counts[key] += part.counts[key]
    row.count_overflow += part.count_overflow
    row.compute_dtype = part.compute_dtype or row.compute_dtype
    row.max_abs_error = max(row.max_abs_error, part.max_abs_error)
    row.max_error_bits = max(row.max_error_bits, part.max_error_bits)
    pairs = [(row._closest, part._closest)]
    if row.grad is not None:
        for key in GRAD_COUNT_KINDS:
            row.grad.counts[key] += part.grad.counts[key]
        for key in row.grad.training:
            row.grad.training[key] += part.grad.training[key]
        row.grad.max_error_bits = max(row.grad.max_error_bits, part.grad.max_error_bits)
        pairs.append((row.grad._closest, part.grad._closest))
    for mine, theirs in pairs:
        for (kind, side), x in theirs.items():
            pick = min if side == "pos" else max
            mine[(kind, side)] = pick(x, mine.get((kind, side), x))


def _pin(closest: dict, kinds: tuple[str, ...], masks: Callable[[np.ndarray], dict], fmt: Format,
         grid: Grid) -> dict[str, float]:
    """Pin each breakdown: the failure closest to 0 among the representable values between 0 and the grid's.

    ``closest`` maps (kind, side) to the failing swept logit closest to 0; ``masks(xs)`` evaluates logits of the
    dtype and returns a boolean mask per kind. Returns {"<kind>_<side>": logit}. An exhaustive sweep has
    evaluated every value in between already, so its closest failure is the answer and nothing is evaluated.
    Brackets narrow enough to scan whole share one evaluation per side (they all start at the side's first value).
    """
    if grid.exhaustive:
        lo_ord, stop = span(grid, fmt)
        hi_ord = stop - 1
    else:
        lo_ord = max(int(ordinal(fmt.round(np.array(grid.min)), fmt)), -max_ordinal(fmt))
        hi_ord = min(int(ordinal(fmt.round(np.array(grid.max)), fmt)), max_ordinal(fmt))

    found: dict[str, int] = {}
    for side in ("pos", "neg"):
        # From the side's first value, not from the passing grid point before `far`: the error of a rounding
        # formula is not monotone in x, so out-of-tolerance logits can hide between passing grid points.
        near = max(lo_ord, 0) if side == "pos" else min(hi_ord, -1)
        step = 1 if side == "pos" else -1
        far = {kind: int(ordinal(np.array(closest[(kind, side)]), fmt)) for kind in kinds if (kind, side) in closest}
        search = {kind: f for kind, f in far.items() if not grid.exhaustive and (f - near) * step > 0}
        for kind in far.keys() - search.keys():
            found[f"{kind}_{side}"] = far[kind]
        scan = [kind for kind, f in search.items() if abs(f - near) + 1 <= SCAN_LIMIT[fmt.bits]]
        if scan:
            ords = np.arange(near, max(search[k] * step for k in scan) * step + step, step, dtype=np.int64)
            got = masks(from_ordinal(ords, fmt))
            for kind in scan:
                width = abs(search[kind] - near) + 1
                hit = np.flatnonzero(got[kind][:width])
                found[f"{kind}_{side}"] = int(ords[hit[0]]) if hit.size else search[kind]
        for kind in search.keys() - set(scan):
            def fails(ords: np.ndarray, kind=kind) -> np.ndarray:
                return masks(from_ordinal(ords, fmt))[kind]
            found[f"{kind}_{side}"] = find_closest_failure(fails, near, search[kind], fmt.bits)
    order = [f"{kind}_{side}" for kind in kinds for side in ("pos", "neg")]
    return {key: float(to_float64(from_ordinal(np.array([found[key]]), fmt))[0]) for key in order if key in found}


def _refine(row: SweepRow, s, tol: Tolerance, grid: Grid, cache: dict, family, given=(None, None)) -> None:
    """Pin the loss breakdowns of ``row`` (see :func:`_pin`); ``cache`` is the Chunk cache of the dtype and target."""
    fmt = s.fmt

    def masks(xs: np.ndarray) -> dict:
        chunk = Chunk(xs, s, tol, cache=cache, family=family, given=given)
        j, changed, _, _ = _judge_loss(row.backend, row.method, chunk)
        return _loss_masks(j, changed, chunk)

    for key, logit in _pin(row._closest, BREAKDOWN_KINDS, masks, fmt, grid).items():
        setattr(row.breakdown, key, logit)


def _refine_grad(row: SweepRow, s, tol: Tolerance, grid: Grid, cache: dict, family) -> None:
    """Pin the gradient breakdowns of ``row`` with the same search, and keep the gradient and truth there."""
    fmt = s.fmt

    def judged(xs: np.ndarray):
        return _judge_grad(row.backend, row.method, Chunk(xs, s, tol, cache=cache, family=family))

    floor = severity.stall_floor(s)
    found = _pin(row.grad._closest, GRAD_KINDS, lambda xs: _grad_masks(*judged(xs), floor), fmt, grid)
    for key, logit in found.items():
        setattr(row.grad.breakdown, key, logit)
    if found:
        keys = list(found)
        j = judged(fmt.round(np.array([found[k] for k in keys])))[0]
        row.grad.at = {k: (float(g), float(r)) for k, g, r in zip(keys, j.loss64, j.ref.nearest)}


def training_breaks(row: SweepRow, s, tol: Tolerance, cache: dict | None = None, family=None):
    """``row`` ranked for training (``severity.TrainingBreaks``), from its pinned breakdowns: per side of 0 the
    logit closest to 0 where the loss or gradient is inf/NaN or the gradient stalls, and what happens there (the
    method evaluated again at that one logit)."""
    g, b = row.grad, row.breakdown
    out = severity.TrainingBreaks(
        count_nonfinite=g.training["nonfinite"], count_stalled=g.training["stalled"],
        inaccurate=bool(row.counts["inaccurate"] or row.counts["clamped"] or any(g.counts.values())))
    for side in ("pos", "neg"):
        pick = min if side == "pos" else max
        candidates = (getattr(b, f"nonfinite_{side}"), getattr(g.breakdown, f"nonfinite_{side}"),
                      getattr(g.breakdown, f"stalled_{side}"))
        found = [x for x in candidates if x is not None]
        if not found:
            continue
        x = pick(found)
        diverge = [v for v in candidates[:2] if v is not None]
        if diverge and pick(diverge) != x:
            setattr(out, f"diverge_{side}", pick(diverge))
        xs = s.fmt.round(np.array([x]))
        chunk = Chunk(xs, s, tol, cache=cache, family=family)
        with np.errstate(all="ignore"):
            loss = float(_judge_loss(row.backend, row.method, chunk)[0].loss64[0])
            j = _judge_grad(row.backend, row.method, chunk)[0]
        setattr(out, f"break_{side}", x)
        setattr(out, f"break_{side}_kind", severity.kind_at(loss, float(j.loss64[0])))
        if getattr(g.breakdown, f"stalled_{side}") == x:
            setattr(out, f"truth_{side}", float(j.ref.nearest[0]))
    return out


# --- running a sweep, on one core or several ------------------------------------------------------------------

PARALLEL_MIN_POINTS = 2**22  # a (dtype, target) with at least this many logits is split among worker processes
PIECE = 2**24  # positions per worker task at most (float32 exhaustive: 256 tasks of ~4 s, progress after each)


@dataclass(frozen=True)
class _Plan:
    """What a worker needs to sweep a piece: picklable, no arrays."""

    fmt: str
    rows: tuple[tuple[str, str], ...]  # (backend, method)
    target: object  # a number (BCE), a class index or a tuple of probabilities (softmax)
    weight: object
    pos_weight: float
    tol: Tolerance
    grid: Grid
    grad: bool
    chunk: int
    loss: str = "bce"
    options: tuple = ()  # the family's sweep options as (name, value) pairs
    autocast: object = None  # a core.autocast.AutocastSpec (frozen, picklable) or None
    given: tuple = (None, None)  # the user's (rtol, atol)

    def new_rows(self) -> list[SweepRow]:
        return [SweepRow(b, self.fmt, self.target, m, grad=GradStats() if self.grad else None) for b, m in self.rows]

    @property
    def family(self):
        return get_family(self.loss)

    @property
    def case(self):
        return self.family.sweep_case(FORMATS[self.fmt], self.target, self.weight, self.pos_weight,
                                      **dict(self.options))


def _sweep_piece(plan: _Plan, start: int | None, stop: int | None, rows: list[SweepRow] | None = None,
                 progress: Callable[[int], None] | None = None) -> list[SweepRow]:
    """Sweep the positions [start, stop) (None: all) into ``rows`` (new ones if None) and return them."""
    rows = plan.new_rows() if rows is None else rows
    _sweep_cases([plan], [rows], start, stop, progress)
    return rows


def _sweep_cases(plans: list[_Plan], parts: list[list[SweepRow]], start: int | None = None,
                 stop: int | None = None, progress: Callable[[int], None] | None = None) -> None:
    """Sweep the positions [start, stop) (None: all) of one dtype for several targets at once, ``plans[i]`` into
    ``parts[i]``: the plans differ only in their target (and the methods that target runs), so each chunk of
    logits is made once and every target judged on it, the family free to share what does not depend on the
    target (``Chunk.shared``). The chunk is walked method by method, every target's row of a (backend, method)
    in turn, and the shared values are dropped before the next: memory holds one method's shared values, as a
    sweep of one target holds one method's steps (kept for every method at once, --classes 1000 doubled it)."""
    from stabcli.core import autocast as amp

    first = plans[0]
    fmt, family = FORMATS[first.fmt], first.family
    cases = [plan.case for plan in plans]
    pairs = list(dict.fromkeys((row.backend, row.method) for rows in parts for row in rows))
    with np.errstate(all="ignore"), amp.use(first.autocast):
        for xs in logit_chunks(first.grid, fmt, first.chunk, start, stop):
            shared: dict = {}
            chunks = [Chunk(xs, s, plan.tol, family=family, given=plan.given, shared=shared)
                      for plan, s in zip(plans, cases)]
            for pair in pairs:
                for plan, chunk, rows in zip(plans, chunks, parts):
                    for row in rows:
                        if (row.backend, row.method) == pair:
                            loss_nonfinite = _tally(row, chunk)
                            if plan.grad:
                                _tally_grad(row, chunk, loss_nonfinite)
                shared.clear()
            if progress is not None:
                for _ in plans:
                    progress(xs.size)


def _worker_piece(plan: _Plan, start: int, stop: int) -> list[SweepRow]:
    """:func:`_sweep_piece` in a worker process, torch kept to one thread (see :func:`_pool`)."""
    if any(backend == "torch" for backend, _ in plan.rows):
        import torch

        torch.set_num_threads(1)
    return _sweep_piece(plan, start, stop)


def _default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _pool(workers: int):
    """A pool of ``workers`` processes for the pieces of large sweeps.

    On Linux the workers are forks of this process: cheap, nothing to import again, and no rule on the caller's
    main module (a forkserver or spawn worker imports it again, so a script without ``if __name__ ==
    "__main__"`` would run again in every worker). If torch has run here, its OpenMP threads are gone in a fork and
    a parallel torch kernel would wait for them forever: :func:`_worker_piece` makes torch use one thread in a
    worker before anything else (one worker per core anyway), which keeps it out of OpenMP. Elsewhere, the
    platform's default start method.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("fork" if sys.platform == "linux" else None)
    return ProcessPoolExecutor(workers, mp_context=ctx, initializer=_ignore_interrupts)


def _ignore_interrupts() -> None:
    """Workers leave Ctrl-C to the parent, which cancels what is queued and stops them (see :func:`_pooled`)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def _pooled(workers: int):
    """:func:`_pool` that, if the sweep is interrupted or fails, cancels the queued pieces and stops the workers
    at once instead of waiting for every piece (a float32 exhaustive sweep has 256 of them)."""
    pool = _pool(workers)
    try:
        yield pool
    except BaseException:
        processes = list(getattr(pool, "_processes", {}).values())  # concurrent.futures keeps no public handle
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
        raise
    else:
        pool.shutdown(wait=True)


def _sweep_parallel(pool, plan: _Plan, rows: list[SweepRow], workers: int,
                    progress: Callable[[int], None] | None) -> None:
    """Split the walk into pieces, sweep them in the pool, and merge each piece's rows into ``rows``.

    Each worker streams its piece chunk by chunk, so memory per worker is what a one-core sweep needs; the
    pieces are small enough (PIECE) that progress is reported often and the cores finish together.
    """
    from concurrent.futures import as_completed

    first, end = span(plan.grid, FORMATS[plan.fmt])
    n_pieces = max(4 * workers, -(-(end - first) // PIECE))
    bounds = [first + (end - first) * i // n_pieces for i in range(n_pieces + 1)]
    futures = [pool.submit(_worker_piece, plan, a, b) for a, b in zip(bounds, bounds[1:]) if b > a]
    for future in as_completed(futures):
        parts = future.result()
        for row, part in zip(rows, parts):
            _merge(row, part)
        if progress is not None:
            progress(parts[0].points if parts else 0)


def run_sweep(
    formats: list[Format],
    backends: list[str] = list(BACKEND_NAMES),
    targets: list[float] = (0.0, 1.0),
    grid: Grid | None = None,
    weight: float = 1.0,
    pos_weight: float = 1.0,
    rtol: float | None = None,
    atol: float | None = None,
    methods: list[str] | None = None,
    progress: Callable[[int], None] | None = None,
    chunk: int = CHUNK,
    grad: bool = GRAD_DEFAULT,
    workers: int | None = None,
    loss: str | None = None,
    options: dict | None = None,
    peers: bool = False,
    autocast=None,
) -> Sweep:
    """Sweep every requested (backend, dtype, target, method) of the family ``loss`` (default bce);
    ``progress(n)`` is called after each n logits. ``options`` are the family's own sweep options (softmax:
    classes, shift, label_smoothing). ``peers``: also the peer libraries' real losses that are installed (the
    ``peers`` pseudo-backend; scikit-learn's log_loss is left out, one call per logit being too slow).
    ``autocast`` (a ``core.autocast.AutocastSpec``): the torch backend under torch.autocast, the formats being its
    low dtype; each row says the dtype its loss came back in, and a method autocast refuses is listed in
    ``Sweep.refused`` with torch's message.

    With ``grad`` (the default) every row also carries its gradient's counts and breakdowns (``SweepRow.grad``).
    A (dtype, target) of at least PARALLEL_MIN_POINTS logits is split among ``workers`` processes (default: one
    per available core; 1 keeps everything in this process). The results are the same either way.
    """
    from stabcli.core import autocast as amp

    grid = grid or Grid()
    family = get_family(loss)
    options = dict(options or {})
    family.check_sweep(targets, weight, pos_weight, options)
    backends = [*backends, "peers"] if peers else list(backends)
    if autocast is not None:
        backends = [b for b in backends if b == "torch"]
    for fmt in formats:
        span(grid, fmt)  # refuses float64 --exhaustive before any work
    if not grid.exhaustive and all(grid_beyond(grid, f) == grid.points for f in formats):
        names = " or ".join(f.name for f in formats)
        largest = "; ".join(f"the largest {f.name} is {fmt_number(f.max, None)}" for f in formats)
        raise InputError(f"none of the {grid.points:,} grid points from {fmt_number(grid.min, None)} to "
                         f"{fmt_number(grid.max, None)} is a finite {names} number ({largest}); give --min/--max "
                         "within the dtype's range")
    workers = _default_workers() if workers is None else max(int(workers), 1)
    # Peer rows run in this process: jax and Keras start threads that a forked worker would not have (jax warns
    # that a fork after its import can deadlock).
    parallel = workers > 1 and not peers and any(total_points(grid, f) >= PARALLEL_MIN_POINTS for f in formats)
    with (_pooled(workers) if parallel else contextlib.nullcontext()) as pool, amp.use(autocast):
        return _run(formats, backends, targets, grid, weight, pos_weight, rtol, atol, methods, progress, chunk,
                    grad, workers, pool, family, options, autocast)


def case_options(weight, pos_weight, options: dict, target) -> dict:
    """What ``LossFamily.excluded`` is told about one (dtype, target) of a sweep or a figure."""
    return {"weight": weight, "pos_weight": pos_weight, **(options or {}), "target": target}


def _run(formats, backends, targets, grid, weight, pos_weight, rtol, atol, methods, progress, chunk, grad,
         workers, pool, family, options, autocast=None) -> Sweep:
    notes: list[str] = [] if autocast is None else [autocast.describe()]
    rows: list[SweepRow] = []
    refused: list[SweepRow] = []
    for fmt in formats:
        tol = Tolerance.for_format(fmt, rtol, atol)
        cases, plans, parts = [], [], []
        for target in targets:
            s = family.sweep_case(fmt, target, weight, pos_weight, **options)
            pairs = []
            for backend in backends:
                for method in methods_to_run(family, backend, fmt, methods,
                                             case_options(weight, pos_weight, options, target), notes):
                    message = refusal(backend, fmt, method, s.arrays(fmt.round(np.array([0.0]))), family)
                    if message is not None:
                        refused.append(SweepRow(backend, fmt.name, s.target, method, refused=message))
                        continue
                    pairs.append((backend, method))
            plan = _Plan(fmt.name, tuple(pairs), s.target, s.weight, s.pos_weight, tol, grid, grad, chunk,
                         family.name, tuple(options.items()), autocast, (rtol, atol))
            cases.append(s)
            plans.append(plan)
            parts.append(plan.new_rows())
        if pool is not None and total_points(grid, fmt) >= PARALLEL_MIN_POINTS:
            for plan, part in zip(plans, parts):
                _sweep_parallel(pool, plan, part, workers, progress)
        elif plans:
            _sweep_cases(plans, parts, progress=progress)
        for s, part in zip(cases, parts):
            cache: dict = {"loss": {}, "grad": {}}  # mpmath's answers, asked again by each row's search
            with np.errstate(all="ignore"):
                for row in part:
                    _refine(row, s, tol, grid, cache, family, (rtol, atol))
                    if grad:
                        _refine_grad(row, s, tol, grid, cache, family)
                        row.training = training_breaks(row, s, tol, cache, family)
            rows.extend(part)
    for fmt in formats:
        notes.extend(family.sweep_notes(fmt, options))
        evaluated = next((r.points for r in rows if r.dtype == fmt.name), None)
        note = None if evaluated is None else dropped_note(grid, fmt, evaluated)
        if note is not None:
            notes.append(note)
    missing = peers_note(family) if "peers" in backends else None
    if missing is not None:
        notes.append(missing)
    result = Sweep(grid, weight, pos_weight, rows, notes, grad=grad, family=family.name, options=options,
                   autocast=autocast, refused=refused)
    result.summary = family.notes.sweep_summary(result)
    return result
