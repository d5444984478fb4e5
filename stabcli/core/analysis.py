"""Errors and statuses: how far a result is from the reference, and what to call it.

* ``abs_error`` = |loss - reference| and ``rel_error`` = abs_error / |reference|, in float64 (inf when the loss is
  non-finite and the reference is not).
* ``error_bits`` follows Herbie: log2(1 + ulps), the ulps counted between the result and the reference rounded
  to the result's dtype; a NaN or inf against a finite reference counts as the format's full width.
* For gradients (:func:`measure_grad`) the same measures and statuses, where ``clamped`` means a clamp changed
  the gradient (the -100 clamp zeroed a term's derivative, or BCELoss's backward denominator max(p(1-p), 1e-12)
  fired), and a gradient that *vanished*, 0 or below eps·|reference| where the reference rounded to the dtype is
  not 0, is ``inaccurate`` whatever the tolerance.
* ``status``: ``nan`` or ``inf`` for a non-finite loss the reference does not share; else ``clamped`` where the
  -100 clamp changed the result; else ``inaccurate`` outside numpy's allclose rule
  |loss - ref| <= atol + rtol·|ref|; else ``ok``. A loss equal to its reference, even inf or NaN (the exact limit
  of loss(+inf, 0), or NaN in, NaN out), is ``ok``; but a NaN loss whose exact value is a number (or ±inf) is
  ``nan`` even where that value rounds to NaN in the dtype (float8_e4m3fn has no inf: beyond 448, ml_dtypes
  rounds to NaN).
* An infinite loss whose exact value is *finite* is ``inf`` even where that exact value also rounds to inf in the
  dtype: the loss overflowed (float16, x = -7000, pos_weight 10: the exact 70000 is beyond float16's 65504, and
  no formula can return it), and its error counts as the format's full width. Only an exact value that is itself
  infinite (loss(-inf, 1) = inf, an exact limit) makes an infinite loss ``ok``. :attr:`Reference.exact_finite`
  says where the exact value is finite.

The rules live in :func:`judge`, which works on integer status codes (an index into ``STATUSES``) and never builds
a string per point: a sweep judges every method on each chunk of logits against one :class:`Reference` prepared
once for the chunk, and only counts. :func:`measure` is the per-point view on top of it (``compare``, figures).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from stabcli.core.formats import Format, ordinal, round_float64, to_float64, ulps_between

STATUSES: tuple[str, ...] = ("ok", "inaccurate", "clamped", "inf", "nan")  # status codes 0..4
OK, INACCURATE, CLAMPED, INF, NAN = range(len(STATUSES))
_STATUS_NAMES = np.array(STATUSES, dtype="<U10")


@dataclass(frozen=True)
class Tolerance:
    """numpy's allclose rule, |loss - ref| <= atol + rtol·|ref|."""

    rtol: float
    atol: float

    @classmethod
    def for_format(cls, fmt: Format, rtol: float | None = None, atol: float | None = None) -> "Tolerance":
        """The documented per-dtype defaults (rtol = 4·eps, atol = smallest subnormal) unless overridden."""
        return cls(fmt.default_rtol if rtol is None else rtol, fmt.default_atol if atol is None else atol)


@dataclass
class Reference:
    """A reference prepared for judging results at the same points: once per sweep chunk, for every method.

    ``nearest`` is the exact value rounded to the nearest float64; ``in_dtype`` the exact value rounded to the
    format (from ``reference_odd``, the exact value rounded to odd in float64, which avoids double rounding; from
    ``nearest`` without it), the target of the ulp count.
    """

    fmt: Format
    tol: Tolerance
    nearest: np.ndarray  # float64
    in_dtype: np.ndarray  # values of fmt
    in_dtype64: np.ndarray  # the same, as float64
    bound: np.ndarray  # atol + rtol·|nearest|: the allclose bound on |loss - nearest|
    nearest_has_nan: bool
    in_dtype_has_nan: bool
    # where the exact value is finite (bool array, or one bool for every point): an infinite loss there overflowed,
    # even if the exact value rounds to inf in the dtype (or in float64)
    exact_finite: np.ndarray | bool = False

    @cached_property
    def in_dtype_ordinal(self) -> np.ndarray:
        return ordinal(self.in_dtype, self.fmt)

    @classmethod
    def prepare(cls, reference, fmt: Format, tol: Tolerance, reference_odd=None, exact_finite=None) -> "Reference":
        """``exact_finite`` (bool, or a bool array): where the exact value is finite; by default where the value to
        round (``reference_odd``, else ``reference``) is finite, which is exact below 64 bits (rounding to odd never
        overflows float64); a caller that knows better (mpmath's values, a sweep's finite logits) says so."""
        nearest = np.asarray(reference, dtype=np.float64)
        for_rounding = np.asarray(nearest if reference_odd is None else reference_odd, dtype=np.float64)
        in_dtype = round_float64(for_rounding, fmt)
        in_dtype64 = to_float64(in_dtype)
        with np.errstate(all="ignore"):
            bound = tol.atol + tol.rtol * np.abs(nearest)
        if exact_finite is None:
            exact_finite = np.isfinite(for_rounding)
        return cls(fmt, tol, nearest, in_dtype, in_dtype64, bound,
                   bool(np.isnan(nearest).any()), bool(np.isnan(in_dtype64).any()), exact_finite)


@dataclass
class Judgement:
    """One result array judged against a :class:`Reference`: integer status codes, the error, and what the
    error bits need (computed on demand, and only where the result is not the reference in the dtype)."""

    code: np.ndarray  # int8, an index into STATUSES
    abs_error: np.ndarray  # float64
    within: np.ndarray  # bool: abs_error <= atol + rtol·|ref| (a correctly rounded result need not be)
    loss: np.ndarray  # values of the format
    loss64: np.ndarray
    ref: Reference
    same_in_dtype: np.ndarray  # bool: the loss is the reference rounded to the dtype (NaN against NaN too)

    @property
    def outside(self) -> np.ndarray:
        """Where the result is out of tolerance by the status rules: neither within the allclose bound nor the
        reference rounded to the dtype (so breakdowns and counts agree, e.g. with --rtol 0)."""
        return ~(self.within | self.same_in_dtype)

    @property
    def status(self) -> np.ndarray:
        """The statuses as a fixed-width str array (fixed width: 10x faster to build and compare than objects)."""
        return _STATUS_NAMES[self.code]

    def counts(self) -> np.ndarray:
        """How many points have each status, in the order of STATUSES."""
        return np.bincount(self.code.reshape(-1), minlength=len(STATUSES))

    def _off(self):
        """(indices of finite results, off the reference in the dtype, whose ulps count; where the pair is not
        finite and differs, which counts as the format's full width)."""
        finite_pair = np.isfinite(self.loss64) & np.isfinite(self.ref.in_dtype64)
        return np.flatnonzero(finite_pair & ~self.same_in_dtype), ~finite_pair & ~self.same_in_dtype

    def _bits_at(self, at: np.ndarray) -> np.ndarray:
        ulps = ulps_between(self.loss.reshape(-1)[at], self.ref.in_dtype.reshape(-1)[at], self.ref.fmt)
        return np.log2(1.0 + ulps)

    def error_bits(self) -> np.ndarray:
        """log2(1 + ulps) per point (0 where the result is the reference in the dtype; the format's width where a
        non-finite result differs from it)."""
        at, full = self._off()
        bits = np.zeros(self.loss64.shape, dtype=np.float64)
        bits.reshape(-1)[at] = self._bits_at(at)
        bits[full] = float(self.ref.fmt.bits)
        return bits

    def max_error_bits(self) -> float:
        """The largest of :meth:`error_bits` (0.0 for no points), without the per-point array."""
        fmt = self.ref.fmt
        finite_pair = np.isfinite(self.loss64) & np.isfinite(self.ref.in_dtype64)
        if (~finite_pair & ~self.same_in_dtype).any():
            return float(fmt.bits)  # log2(1 + ulps) < bits for any two finite values of the format
        if fmt.bits == 64:
            at = np.flatnonzero(finite_pair & ~self.same_in_dtype)
            return float(np.max(self._bits_at(at))) if at.size else 0.0
        # Below 64 bits the ulps are exact integers |ordinal(loss) - ordinal(ref)| < 2**33, and log2(1 + n) of a
        # larger integer is larger by far more than log2's rounding error, so the largest error bits are those
        # of the largest ulps: one log2, and integer arithmetic on the whole chunk instead of indexing into it.
        ulps = np.abs(ordinal(self.loss, fmt) - self.ref.in_dtype_ordinal)
        return float(np.log2(1.0 + int(np.max(ulps, where=finite_pair & ~self.same_in_dtype, initial=0))))


def judge(loss, ref: Reference, clamp_changed=None) -> Judgement:
    """Status codes and errors of ``loss`` (values of ``ref.fmt``) against ``ref`` (see the module's rules)."""
    loss = np.asarray(loss)
    loss64 = to_float64(loss)
    with np.errstate(all="ignore"):
        same = loss64 == ref.nearest
        if ref.nearest_has_nan:
            same |= np.isnan(loss64) & np.isnan(ref.nearest)
        same_in_dtype = loss64 == ref.in_dtype64
        if ref.in_dtype_has_nan:  # NaN matches NaN only where the exact value is NaN too (NaN in, NaN out): in a
            # format with no inf (float8_e4m3fn) a value beyond its range, even inf, rounds to NaN, and a NaN loss
            # there is no more right than an inf one where the format has inf
            same_in_dtype |= np.isnan(loss64) & np.isnan(ref.in_dtype64) & np.isnan(ref.nearest)
        overflowed = np.isinf(loss64) & ref.exact_finite  # an exact finite value that rounds to inf is no excuse
        if overflowed.any():
            same = same & ~overflowed
            same_in_dtype = same_in_dtype & ~overflowed
        correctly_rounded = same | same_in_dtype
        abs_error = np.abs(loss64 - ref.nearest)  # 0 where equal and finite
        undefined = np.isnan(abs_error)  # inf - inf or a NaN: 0 if the two are the same, else inf
        if undefined.any():
            abs_error[undefined] = np.where(same[undefined], 0.0, np.inf)
        within = (abs_error <= ref.bound) & ~overflowed
    code = (~(correctly_rounded | within)).astype(np.int8)  # INACCURATE = 1
    if clamp_changed is not None:
        code[np.broadcast_to(np.asarray(clamp_changed), code.shape)] = CLAMPED
    nonfinite = ~np.isfinite(loss64)
    if nonfinite.any():
        code[np.isinf(loss64) & ~correctly_rounded] = INF
        code[np.isnan(loss64) & ~correctly_rounded] = NAN
    return Judgement(code, abs_error, within, loss, loss64, ref, same_in_dtype)


@dataclass
class Errors:
    """Element-wise error measures (float64 arrays) and statuses (a numpy array of str, one of ``STATUSES``)."""

    abs_error: np.ndarray
    rel_error: np.ndarray
    error_bits: np.ndarray
    status: np.ndarray
    vanished: np.ndarray | None = None  # gradients only (measure_grad): where the gradient vanished


def measure(loss, reference: np.ndarray, fmt: Format, tol: Tolerance, clamp_changed=None, reference_odd=None,
            exact_finite=None) -> Errors:
    """Compare ``loss`` (values of ``fmt``) with ``reference`` (the exact value rounded to the nearest float64).

    ``reference_odd``, the exact value rounded to odd in float64, is what gets rounded into ``fmt`` for the ulp
    count (avoiding double rounding); without it the nearest float64 is used. ``exact_finite``: where the exact
    value is finite (see :meth:`Reference.prepare`).
    """
    j = judge(loss, Reference.prepare(reference, fmt, tol, reference_odd, exact_finite), clamp_changed)
    return _errors(j)


def _errors(j: Judgement) -> Errors:
    with np.errstate(all="ignore"):
        rel_error = np.where(j.abs_error == 0, 0.0, j.abs_error / np.abs(j.ref.nearest))
    return Errors(j.abs_error, rel_error, j.error_bits(), j.status)


def vanished(grad, reference_in_dtype, fmt: Format) -> np.ndarray:
    """Where a gradient vanished: 0, or negligible, |grad| < eps·|reference| (below the last place of the true
    gradient, so no step of training can see it), where the reference rounded to the dtype is not 0.

    ``grad`` holds values of ``fmt``; ``reference_in_dtype`` the reference rounded to ``fmt`` (as float64).
    """
    g = np.abs(to_float64(grad))
    ref = np.abs(np.asarray(reference_in_dtype, dtype=np.float64))
    with np.errstate(all="ignore"):
        return (g < fmt.eps * ref) & (ref != 0) & ~np.isnan(ref)


def judge_grad(grad, ref: Reference, clamped=None) -> tuple[Judgement, np.ndarray]:
    """:func:`judge` for gradients, plus: a gradient that :func:`vanished` (0, or negligible, where the reference
    in the dtype is not) is ``inaccurate`` even inside a loose tolerance (never ``ok``: training stops there).
    Returns the judgement and the vanished mask."""
    j = judge(grad, ref, clamped)
    gone = vanished(j.loss64, ref.in_dtype64, ref.fmt)
    j.code[gone & (j.code == OK)] = INACCURATE
    return j, gone


def measure_grad(grad, reference: np.ndarray, fmt: Format, tol: Tolerance, clamped=None, reference_odd=None,
                 exact_finite=None) -> Errors:
    """:func:`measure` for gradients (see :func:`judge_grad`), with ``vanished`` filled in."""
    j, gone = judge_grad(grad, Reference.prepare(reference, fmt, tol, reference_odd, exact_finite), clamped)
    err = _errors(j)
    err.vanished = gone
    return err
