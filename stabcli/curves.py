"""Per-point losses on a logit grid, for figures: every method against the exact reference. Never prints."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from stabcli import reference
from stabcli.analysis import Tolerance, measure
from stabcli.compare import evaluate_method
from stabcli.formats import Format, to_float64
from stabcli.formulas import methods_for

# How far out each figure reaches: past every breakdown of DESIGN.md's facts for that dtype (float16 torch
# -17.3, bfloat16 -89, float32 -88.7, float64 -709.8) and past the clamp at |x| = 100.
PLOT_REACH = {"float16": 40.0, "bfloat16": 300.0, "float32": 300.0, "float64": 1000.0}


@dataclass
class Curve:
    method: str
    loss: np.ndarray  # float64, the method's loss at each grid point
    error_bits: np.ndarray
    status: np.ndarray  # str per point


@dataclass
class CurveSet:
    """Everything one figure panel set needs for (dtype, backend, target)."""

    dtype: str
    backend: str
    target: float
    x: np.ndarray  # the grid as rounded to the dtype, float64, increasing
    reference: np.ndarray
    curves: list[Curve] = field(default_factory=list)


def symmetric_grid(fmt: Format, points: int = 401, reach: float | None = None) -> np.ndarray:
    """0 and ±logspace(1e-2, reach) in the dtype, increasing, duplicates (after rounding) removed."""
    reach = PLOT_REACH[fmt.name] if reach is None else reach
    side = np.logspace(-2, np.log10(reach), (points - 1) // 2)
    grid = np.concatenate([-side[::-1], [0.0], side])
    rounded = to_float64(fmt.round(grid))
    return np.unique(rounded)


def curve_set(fmt: Format, backend: str, target: float, x: np.ndarray | None = None) -> CurveSet:
    """Every method of ``backend`` on the grid ``x`` (default :func:`symmetric_grid`), against mpmath."""
    x = symmetric_grid(fmt) if x is None else x
    exact = [reference.exact_loss(float(v), target) for v in x]
    ref = np.array([reference.to_float64_nearest(v) for v in exact])
    ref_odd = np.array([reference.to_float64_odd(v) for v in exact]) if fmt.bits < 64 else ref
    arrays = {"logits": fmt.round(x), "targets": fmt.round(np.full(x.shape, target)),
              "weight": fmt.round(np.ones(x.shape)), "pos_weight": fmt.round(np.ones(x.shape))}
    out = CurveSet(fmt.name, backend, target, x, ref)
    tol = Tolerance.for_format(fmt)
    for method in methods_for(backend):
        ev, ops = evaluate_method(backend, fmt, method, arrays)
        loss = ops.to_numpy(ev.loss)
        err = measure(loss, ref, fmt, tol, ev.clamp_changed, ref_odd)
        out.curves.append(Curve(method, to_float64(loss), err.error_bits, err.status))
    return out
