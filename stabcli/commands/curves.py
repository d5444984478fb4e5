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
              loss: str | None = None, options: dict | None = None) -> CurveSet:
    """Every method of ``backend`` on the grid ``x`` (default :func:`symmetric_grid`), against the reference."""
    family = get_family(loss)
    x = symmetric_grid(fmt) if x is None else np.asarray(x, dtype=np.float64)
    xs = fmt.round(x)
    s = family.sweep_case(fmt, target, weight, pos_weight, **(options or {}))
    ref = s.reference(xs)
    grad_ref = s.grad_reference_points(x)
    out = CurveSet(fmt.name, backend, target, x, ref[0], grad_ref)
    tol = Tolerance.for_format(fmt, rtol, atol)
    for method in family.methods_for(backend):
        c = classify(backend, fmt, method, xs, s, tol, ref, family=family)
        with np.errstate(all="ignore"):
            grad = to_float64(family.sweep_grad(s, backend, method, xs)).reshape(x.shape)
        out.curves.append(Curve(method, c.loss, c.error_bits, c.status, grad))
    return out


# --- per-logit statuses over a sweep's logits, for the breakdown overview ---------------------------------------

STRIP_LIMIT = 70_000  # a strip judges every logit of a sweep up to this many (an exhaustive 16-bit sweep)
STRIP_SAMPLE = 4001  # beyond that, this many log-spaced logits across the same range


@dataclass
class StatusStrip:
    """The status of one (backend, dtype, method) at each logit of a sweep, the worst over the sweep's targets.

    ``code`` indexes ``analysis.STATUSES`` (ok < inaccurate < clamped < inf < nan, the order in which the status
    rules override one another), so the worst over several targets is the largest code. ``every_point`` says
    whether ``x`` is every logit the sweep evaluated or, for a sweep too large to draw point by point, a log-spaced
    sample of its range.
    """

    backend: str
    dtype: str
    method: str
    x: np.ndarray  # float64, increasing
    code: np.ndarray  # int8
    every_point: bool = True


def strip_logits(grid, fmt: Format) -> tuple[np.ndarray, bool]:
    """The logits (values of ``fmt``) a strip judges for a sweep over ``grid``: every one the sweep evaluates (the
    same walk, ``sweep.logit_chunks``) if there are at most STRIP_LIMIT, else STRIP_SAMPLE across their range."""
    from stabcli.commands.sweep import logit_chunks, total_points

    if total_points(grid, fmt) <= STRIP_LIMIT:
        chunks = list(logit_chunks(grid, fmt))
        return (np.concatenate(chunks) if chunks else fmt.round(np.zeros(0))), True
    if grid.exhaustive:
        top = float(fmt.max)
        x = symmetric_grid(fmt, STRIP_SAMPLE, reach=top)
    else:
        x = grid_between(fmt, grid.min, grid.max, STRIP_SAMPLE)
    return fmt.round(x[np.isfinite(x)]), False


def status_strips(formats, backends, targets, grid, weight: float = 1.0, pos_weight: float = 1.0,
                  rtol: float | None = None, atol: float | None = None, loss: str | None = None,
                  methods=None, options: dict | None = None) -> list[StatusStrip]:
    """Every (backend, dtype, method) judged at every logit of a sweep over ``grid`` (see :func:`strip_logits`),
    by the sweep engine's own per-point judgement (``sweep.classify``): what ``stabcli sweep`` counts, point by
    point. Methods the backend cannot run, or that the options exclude, get no strip."""
    from stabcli.core.analysis import STATUSES

    family = get_family(loss)
    codes = {name: i for i, name in enumerate(STATUSES)}
    out: list[StatusStrip] = []
    for fmt in formats:
        xs, every = strip_logits(grid, fmt)
        x = to_float64(xs)
        tol = Tolerance.for_format(fmt, rtol, atol)
        worst: dict[tuple[str, str], np.ndarray] = {}
        for target in targets:
            s = family.sweep_case(fmt, target, weight, pos_weight, **(options or {}))
            ref = s.reference(xs)
            for backend in backends:
                for method in family.methods_for(backend):
                    if (methods is not None and method not in methods) or \
                            family.excluded(method, {"weight": weight, "pos_weight": pos_weight,
                                                     **(options or {}), "target": target}):
                        continue
                    c = classify(backend, fmt, method, xs, s, tol, ref, family=family)
                    code = np.zeros(c.status.shape, np.int8)
                    for name, i in codes.items():
                        code[c.status == name] = i
                    key = (backend, method)
                    worst[key] = code if key not in worst else np.maximum(worst[key], code)
        for backend in backends:
            for method in family.methods_for(backend):
                if (backend, method) in worst:
                    out.append(StatusStrip(backend, fmt.name, method, x, worst[(backend, method)], every))
    return out
