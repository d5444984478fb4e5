"""What the figures are drawn from: per-point losses and gradients on a logit grid, every method against the exact
reference, the sweeps behind them, and which figures a command draws. ``present/plots.py`` only draws these.

The loss side reuses the sweep engine's per-chunk judgement (``sweep.classify``), so a figure shows exactly what
``stabcli sweep`` counts, and the methods a sweep leaves out (``LossFamily.runnable``) are left out of its figure.
Never prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from stabcli.commands.sweep import Sweep, case_options, classify, make_grid, run_sweep
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
    family: str = "bce"  # the loss family's name (its breakdown method, clamp and line styles)


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
    """Every method of ``backend`` that a sweep with these options runs (``LossFamily.runnable``), on the grid ``x``
    (default :func:`symmetric_grid`), against the reference."""
    family = get_family(loss)
    x = symmetric_grid(fmt) if x is None else np.asarray(x, dtype=np.float64)
    xs = fmt.round(x)
    s = family.sweep_case(fmt, target, weight, pos_weight, **(options or {}))
    ref = s.reference(xs)
    grad_ref = s.grad_reference_points(x)
    out = CurveSet(fmt.name, backend, target, x, ref[0], grad_ref, family=family.name)
    tol = Tolerance.for_format(fmt, rtol, atol)
    for method in family.runnable(backend, None, case_options(weight, pos_weight, options, target))[0]:
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
                for method in family.runnable(backend, methods, case_options(weight, pos_weight, options, target))[0]:
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


# --- which figures a command draws, and the sweeps behind them ------------------------------------------------

@dataclass
class LossPanels:
    """One dtype and backend (``plots.loss_figure``, or a slide per target): a curve set per target, and per target
    the exact logits (pos, neg) where the family's breakdown method first gives inf/NaN (:func:`breakdowns`)."""

    family: str
    dtype: str
    backend: str
    curve_sets: list[CurveSet]
    breakdowns: dict


@dataclass
class Overview:
    """The breakdown overview (``plots.overview_figure``): a sweep and the status strips of its logits."""

    sweep: Sweep
    strips: list[StatusStrip]

    @property
    def family(self) -> str:
        return self.sweep.family

    @property
    def dtypes(self) -> list[str]:
        return list(dict.fromkeys(s.dtype for s in self.strips))


def breakdowns(sweep: Sweep, dtype: str, backend: str, method: str | None = None) -> dict:
    """target -> (pos, neg): where ``method`` (default: the family's ``breakdown_method``) first gives inf/NaN in a
    sweep's rows (exact: pinned by the sweep's search)."""
    method = get_family(sweep.family).breakdown_method if method is None else method
    return {r.target: (r.breakdown.nonfinite_pos, r.breakdown.nonfinite_neg) for r in sweep.rows
            if r.dtype == dtype and r.backend == backend and r.method == method}


def exact_breakdowns(fmt: Format, backend: str, targets, loss: str | None = None, options: dict | None = None) -> dict:
    """target -> (pos, neg): the exact breakdown logits of the family's breakdown method from the sweep engine
    (exhaustive for 16-bit and narrower formats, the default grid and its search beyond)."""
    family = get_family(loss)
    grid = make_grid(exhaustive=True) if fmt.bits <= 16 else make_grid()
    sweep = run_sweep([fmt], [backend], list(targets), grid, methods=[family.breakdown_method], grad=False,
                      loss=family.name, options=options)
    return breakdowns(sweep, fmt.name, backend)


def figures_sweep(dtypes, backends, targets, methods=None, loss: str | None = None,
                  options: dict | None = None) -> Sweep:
    """The sweep behind the figures: every method (or ``methods``) over the default grid, losses only, with the
    breakdowns pinned to the exact logit."""
    return run_sweep(list(dtypes), list(backends), list(targets), make_grid(), methods=methods, grad=False,
                     loss=loss, options=options)


def plot_figures(dtypes, backends, targets, loss: str | None = None,
                 options: dict | None = None) -> Iterator[LossPanels | Overview]:
    """What ``stabcli plot`` draws, one figure at a time: a :class:`LossPanels` per (dtype, backend), then the
    :class:`Overview` of every dtype and backend."""
    family = get_family(loss)
    sweep = figures_sweep(dtypes, backends, targets, loss=family.name, options=options)
    for fmt in dtypes:
        for backend in backends:
            yield LossPanels(family.name, fmt.name, backend,
                             [curve_set(fmt, backend, y, loss=family.name, options=options) for y in targets],
                             breakdowns(sweep, fmt.name, backend))
    yield Overview(sweep, status_strips(list(dtypes), list(backends), list(targets), sweep.grid, loss=family.name,
                                        options=options))


def slide_figures(kind: str, dtypes, backends, targets, loss: str | None = None) -> Iterator[LossPanels | Overview]:
    """What ``stabcli plot --slide KIND`` draws: per dtype, the :class:`Overview` of every backend (the worst over
    the targets) for ``overview``, else a :class:`LossPanels` per backend (a slide per target)."""
    family = get_family(loss)
    for fmt in dtypes:
        if kind == "overview":
            sweep = figures_sweep([fmt], backends, targets, loss=family.name)
            yield Overview(sweep, status_strips([fmt], list(backends), list(targets), sweep.grid, loss=family.name))
            continue
        sweep = figures_sweep([fmt], backends, targets, [family.breakdown_method], loss=family.name)
        for backend in backends:
            yield LossPanels(family.name, fmt.name, backend,
                             [curve_set(fmt, backend, float(y), loss=family.name) for y in targets],
                             breakdowns(sweep, fmt.name, backend))


def sweep_figure(sweep: Sweep, rtol: float | None = None, atol: float | None = None) -> LossPanels | Overview:
    """What ``stabcli sweep --plot`` draws: for one dtype and backend the curves of the methods the sweep ran
    (with its weights, options and tolerance) and the sweep's own breakdown logits; for several, the overview of
    the sweep's own logits."""
    from stabcli.core.formats import get_format

    dtypes = list(dict.fromkeys(r.dtype for r in sweep.rows))
    backends = list(dict.fromkeys(r.backend for r in sweep.rows))
    targets = list(dict.fromkeys(r.target for r in sweep.rows))
    if len(dtypes) == 1 and len(backends) == 1:
        fmt = get_format(dtypes[0])
        g = sweep.grid
        x = None if g.exhaustive else grid_between(fmt, g.min, g.max)
        return LossPanels(sweep.family, dtypes[0], backends[0],
                          [curve_set(fmt, backends[0], t, x, sweep.weight, sweep.pos_weight, rtol, atol,
                                     loss=sweep.family, options=sweep.options) for t in targets],
                          breakdowns(sweep, dtypes[0], backends[0]))
    methods = set(r.method for r in sweep.rows)
    return Overview(sweep, status_strips([get_format(d) for d in dtypes], backends, targets, sweep.grid, sweep.weight,
                                         sweep.pos_weight, rtol, atol, loss=sweep.family, methods=methods,
                                         options=sweep.options))
