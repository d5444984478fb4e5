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
  of loss(+inf, 0), or NaN in, NaN out), is ``ok``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stabcli.formats import Format, round_float64, to_float64, ulps_between

STATUSES: tuple[str, ...] = ("ok", "inaccurate", "clamped", "inf", "nan")


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
class Errors:
    """Element-wise error measures (float64 arrays) and statuses (a numpy array of str, one of ``STATUSES``)."""

    abs_error: np.ndarray
    rel_error: np.ndarray
    error_bits: np.ndarray
    status: np.ndarray
    vanished: np.ndarray | None = None  # gradients only (measure_grad): where the gradient vanished


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a == b) | (np.isnan(a) & np.isnan(b))


def measure(loss, reference: np.ndarray, fmt: Format, tol: Tolerance, clamp_changed=None, reference_odd=None) -> Errors:
    """Compare ``loss`` (values of ``fmt``) with ``reference`` (the exact value rounded to the nearest float64).

    ``reference_odd``, the exact value rounded to odd in float64, is what gets rounded into ``fmt`` for the ulp
    count (avoiding double rounding); without it the nearest float64 is used.
    """
    loss64 = to_float64(loss)
    ref64 = np.asarray(reference, dtype=np.float64)
    ref_in_dtype = round_float64(np.asarray(ref64 if reference_odd is None else reference_odd, dtype=np.float64), fmt)
    with np.errstate(all="ignore"):
        same = _same(loss64, ref64)
        correctly_rounded = same | _same(loss64, to_float64(ref_in_dtype))
        abs_error = np.where(same, 0.0, np.abs(loss64 - ref64))
        abs_error = np.where(np.isnan(abs_error), np.inf, abs_error)
        rel_error = np.where(abs_error == 0, 0.0, abs_error / np.abs(ref64))
        finite_pair = np.isfinite(loss64) & np.isfinite(to_float64(ref_in_dtype))
        ulps = np.where(finite_pair, ulps_between(np.where(finite_pair, loss, 0), np.where(finite_pair, ref_in_dtype, 0), fmt), 0.0)
        error_bits = np.where(finite_pair, np.log2(1.0 + ulps), np.where(_same(loss64, to_float64(ref_in_dtype)), 0.0, float(fmt.bits)))
        within = correctly_rounded | (abs_error <= tol.atol + tol.rtol * np.abs(ref64))
    status = np.full(loss64.shape, "ok", dtype="<U10")  # fixed width: 10x faster to build and compare than objects
    status[~within] = "inaccurate"
    if clamp_changed is not None:
        status[np.broadcast_to(np.asarray(clamp_changed), loss64.shape)] = "clamped"
    status[np.isinf(loss64) & ~correctly_rounded] = "inf"
    status[np.isnan(loss64) & ~correctly_rounded] = "nan"
    return Errors(abs_error, rel_error, error_bits, status)


def vanished(grad, reference_in_dtype, fmt: Format) -> np.ndarray:
    """Where a gradient vanished: 0, or negligible, |grad| < eps·|reference| (below the last place of the true
    gradient, so no step of training can see it), where the reference rounded to the dtype is not 0.

    ``grad`` holds values of ``fmt``; ``reference_in_dtype`` the reference rounded to ``fmt`` (as float64).
    """
    g = np.abs(to_float64(grad))
    ref = np.abs(np.asarray(reference_in_dtype, dtype=np.float64))
    with np.errstate(all="ignore"):
        return (g < fmt.eps * ref) & (ref != 0) & ~np.isnan(ref)


def measure_grad(grad, reference: np.ndarray, fmt: Format, tol: Tolerance, clamped=None, reference_odd=None) -> Errors:
    """:func:`measure` for gradients, plus: a gradient that :func:`vanished` (0, or negligible, where the reference
    in the dtype is not) is ``inaccurate`` even inside a loose tolerance (never ``ok``: training stops there)."""
    err = measure(grad, reference, fmt, tol, clamped, reference_odd)
    ref_in_dtype = to_float64(round_float64(np.asarray(reference if reference_odd is None else reference_odd,
                                                       dtype=np.float64), fmt))
    err.vanished = vanished(grad, ref_in_dtype, fmt)
    err.status[err.vanished & (err.status == "ok")] = "inaccurate"
    return err
