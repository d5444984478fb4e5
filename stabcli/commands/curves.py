"""Per-point losses and gradients on a logit grid, for figures: every method against the exact reference.

The loss side reuses the sweep engine's per-chunk judgement (``sweep.classify``), so a figure shows exactly what
``stabcli sweep`` counts. Never prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from stabcli.commands.sweep import classify
from stabcli.core.analysis import Tolerance
from stabcli.core.formats import Format, to_float64
from stabcli.losses import get_family

# How far out each figure reaches: past every breakdown of DESIGN.md's facts for that dtype (float16 torch
# -17.3, bfloat16 -89, float32 -88.7, float64 -709.8) and past the clamp at |x| = 100.
PLOT_REACH = {"float16": 40.0, "bfloat16": 300.0, "float32": 300.0, "float64": 1000.0,
              "float8_e4m3fn": 448.0, "float8_e5m2": 1000.0}  # float8: breakdowns at 2-12, e4m3fn ends at 448


@dataclass
class Curve:
    method: str
    loss: np.ndarray  # float64, the method's loss at each grid point
    error_bits: np.ndarray
    status: np.ndarray  # str per point
    grad: np.ndarray  # float64, d loss / d x


@dataclass
class CurveSet:
    """Everything one column of a figure needs for (dtype, backend, target)."""

    dtype: str
    backend: str
    target: float
    x: np.ndarray  # the grid as rounded to the dtype, float64, increasing
    reference: np.ndarray
    grad_reference: np.ndarray
    curves: list[Curve] = field(default_factory=list)


def symmetric_grid(fmt: Format, points: int = 401, reach: float | None = None) -> np.ndarray:
    """0 and ±logspace(1e-2, reach) rounded to the dtype, increasing, duplicates (after rounding) removed."""
    reach = PLOT_REACH[fmt.name] if reach is None else reach
    side = np.logspace(-2, np.log10(reach), (points - 1) // 2)
    grid = np.concatenate([-side[::-1], [0.0], side])
    return np.unique(to_float64(fmt.round(grid)))


def grid_between(fmt: Format, lo: float, hi: float, points: int = 401) -> np.ndarray:
    """Plot logits in [lo, hi]: the symmetric log grid when the range holds 0, else evenly spaced."""
    if lo < 0 < hi:
        x = symmetric_grid(fmt, points, reach=max(-lo, hi))
    else:
        x = np.unique(to_float64(fmt.round(np.linspace(lo, hi, points))))
    return x[(x >= lo) & (x <= hi)]


def curve_set(fmt: Format, backend: str, target: float, x: np.ndarray | None = None, weight: float = 1.0,
              pos_weight: float = 1.0, rtol: float | None = None, atol: float | None = None,
              loss: str | None = None) -> CurveSet:
    """Every method of ``backend`` on the grid ``x`` (default :func:`symmetric_grid`), against the reference."""
    family = get_family(loss)
    x = symmetric_grid(fmt) if x is None else np.asarray(x, dtype=np.float64)
    xs = fmt.round(x)
    s = family.sweep_case(fmt, target, weight, pos_weight)
    ref = s.reference(xs)
    grad_ref = s.grad_reference_points(x)
    out = CurveSet(fmt.name, backend, target, x, ref[0], grad_ref)
    tol = Tolerance.for_format(fmt, rtol, atol)
    for method in family.methods_for(backend):
        c = classify(backend, fmt, method, xs, s, tol, ref, family=family)
        grad = to_float64(family.grad_of(backend, fmt, method, s.arrays(xs))).reshape(x.shape)
        out.curves.append(Curve(method, c.loss, c.error_bits, c.status, grad))
    return out
