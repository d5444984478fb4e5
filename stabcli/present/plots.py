"""matplotlib Figures from the data ``commands/curves.py`` computes (curve sets, sweeps and their status strips);
nothing here runs an engine. Functions return Figures; ``save`` writes files atomically and deterministically,
``staged_folder`` a whole set at once, and the ``write_*`` functions draw and write what they are given.

Three kinds of figure:

* :func:`loss_figure`: one dtype and backend, a column per target, rows loss / error in bits / gradient;
* :func:`overview_figure`: every (dtype, method) as a strip over the logit axis, coloured by the status the sweep
  engine gives at each swept logit (a panel per backend);
* :func:`slide_figure`: one 16:9 panel for a projector (loss, error, gradient or overview), text >= 18 pt.

Layout rules every figure keeps (``tests/test_plots.py`` checks them on the drawn figure): no text outside the
canvas, no two texts overlapping, no curve through a label (labels sit above the axes or inside a strip), and
short numbers in labels (16.64, not 16.63553237915039; the exact values are in ``stabcli sweep``).

matplotlib is imported inside the functions with the Agg backend, so only the commands that plot load it.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from stabcli.core.numbers import fmt_number
from stabcli.names import FIGURE_FORMATS, SLIDE_KINDS  # noqa: F401  (SLIDE_KINDS: the kinds slide_figure draws)

# Each method's line is its family's (``LossFamily.styles``: Okabe–Ito colours, a line style each).
REFERENCE_STYLE = dict(color="#000000", linestyle="-", linewidth=5.0, alpha=0.22)
FALLBACK_STYLE = dict(color="#666666", linestyle="-", linewidth=1.5)  # a method its family gives no style (a peer's)
FORMATS_WRITTEN = FIGURE_FORMATS
CLAMP_SHADE = dict(color="#CC79A7", alpha=0.14, lw=0)

# The overview's colours, one per status (inf and NaN share one), and the colour of a method a backend lacks.
STATUS_COLOURS = {"ok": "#009E73", "inaccurate": "#F0E442", "clamped": "#CC79A7", "inf": "#D55E00",
                  "nan": "#D55E00"}
STATUS_LABELS = {"ok": "within tolerance", "inaccurate": "finite, out of tolerance",
                 "clamped": "the -100 clamp decides the answer", "inf": "inf or NaN"}
STATUS_SHORT = {"ok": "ok", "inaccurate": "out of tolerance", "clamped": "clamp decides", "inf": "inf or NaN"}
NA_COLOUR = "#E6E6E6"

SLIDE_SIZE = (40 / 3, 7.5)  # inches: a 16:9 presentation slide
SLIDE_DPI = 144  # 1920 x 1080 pixels
SLIDE_FONT = 18  # points: the smallest text on a slide
FIGURE_DPI = 100

ROW_LABELS = {"loss": "loss", "error": "error in bits", "grad": "d loss / d x"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.hashsalt": "stabcli", "font.size": 12, "axes.titlesize": 13,
                         "svg.fonttype": "path", "figure.dpi": FIGURE_DPI})
    return plt


def num(v: float) -> str:
    """A logit of a dtype, exactly (shortest repr)."""
    return fmt_number(v, None)


def short(v: float) -> str:
    """A number for a figure label: exact when that is short (7.625, 5.5625, -89), else two decimals for
    |v| >= 1 (16.64, -709.78) and four significant digits below (0.0001221)."""
    exact = fmt_number(v, None)
    if len(exact.lstrip("-")) <= 6 or not math.isfinite(v):
        return exact
    if abs(v) >= 1:
        return f"{v:.2f}".rstrip("0").rstrip(".")
    return fmt_number(v, 4)


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def tick_label(v: float) -> str:
    """A tick on a symmetric-log axis: 0, 1, 10, 100, 1000 as plain numbers, powers of ten beyond (10⁴) and
    below 1 (10⁻⁶), negative ones with a minus sign: -1, not -10⁰."""
    if v == 0:
        return "0"
    sign = "−" if v < 0 else ""
    a = abs(v)
    k = round(math.log10(a))
    if 1 <= a < 1e4 and a == 10.0 ** k:
        return sign + f"{a:.0f}"
    if a == 10.0 ** k:
        return sign + "10" + str(k).translate(_SUPERSCRIPT)
    return sign + f"{a:g}"


def _decade_ticks(lo: float, hi: float, linthresh: float, most: int = 6) -> list[float]:
    """0 and ±powers of ten from ``linthresh`` out to the limits, at most ``most`` per side: every k-th decade,
    and ±linthresh itself only when every decade is ticked (else, on a wide axis, it would crowd 0)."""
    ticks = [0.0] if lo <= 0 <= hi else []
    for sign, reach in ((1, hi), (-1, -lo)):
        if reach < linthresh:
            continue
        k0, k1 = round(math.log10(linthresh)), math.floor(math.log10(reach) + 1e-9)
        step = max(1, math.ceil((k1 - k0 + 1) / most))
        ks = range(k0, k1 + 1, step) if step == 1 else range(k0 + step, k1 + 1, step)
        ticks += [sign * 10.0 ** k for k in ks]
    return sorted(ticks)


def _symlog(ax, which: str, lo: float, hi: float, linthresh: float, most: int = 6) -> None:
    """A symmetric-log axis from lo to hi with ticks at 0 and powers of ten, labelled by :func:`tick_label`."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("symlog", linthresh=linthresh)
    (ax.set_xlim if which == "x" else ax.set_ylim)(lo, hi)
    axis.set_major_locator(FixedLocator(_decade_ticks(lo, hi, linthresh, most)))
    axis.set_major_formatter(FuncFormatter(lambda v, pos=None: tick_label(v)))
    axis.set_minor_locator(NullLocator())


def _sym(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log10(1 + np.abs(x))


def _unsym(u: np.ndarray) -> np.ndarray:
    return np.sign(u) * (10.0 ** np.abs(u) - 1)


def point_edges(x: np.ndarray) -> np.ndarray:
    """Boundaries of the logit axis around each point of the increasing ``x``: half way (on a log-like scale) to
    each neighbour, and the end points themselves at the ends. len(x) + 1 values."""
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return x
    mids = _unsym((_sym(x[1:]) + _sym(x[:-1])) / 2)
    return np.concatenate([[x[0]], mids, [x[-1]]])


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) index ranges where ``mask`` is true, in order."""
    m = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]])
    change = np.flatnonzero(m[1:] != m[:-1])
    return list(zip(change[::2].tolist(), change[1::2].tolist()))


def _family(cs):
    from stabcli.losses import get_family

    return get_family(cs.family)


def grid_breakdown(cs, method: str | None = None) -> tuple[float | None, float | None]:
    """Closest-to-0 grid logits (positive, negative) where ``method`` (default: the family's breakdown method)
    turns non-finite: None if never."""
    method = _family(cs).breakdown_method if method is None else method
    curve = next((c for c in cs.curves if c.method == method), None)
    if curve is None:
        return None, None
    bad = ~np.isfinite(curve.loss) & np.isfinite(cs.reference)
    pos, neg = cs.x[bad & (cs.x > 0)], cs.x[bad & (cs.x < 0)]
    return (float(pos.min()) if pos.size else None, float(neg.max()) if neg.size else None)


def clamp_spans(cs, method: str | None = None) -> list[tuple[float, float]]:
    """The stretches of the logit axis where ``method``'s status (default: the family's clamp method; none for a
    family without one) is ``clamped`` (the -100 clamp changed the loss, the same judgement as ``stabcli
    compare``): each from half way to the previous grid point to half way to the next, so every clamped grid point
    is inside a span and every other one outside."""
    method = _family(cs).clamp_method if method is None else method
    curve = next((c for c in cs.curves if c.method == method), None)
    if curve is None:
        return []
    edges = point_edges(cs.x)
    return [(float(edges[a]), float(edges[b])) for a, b in runs(curve.status == "clamped")]


def _style(method: str, family) -> dict:
    return family.styles.get(method, FALLBACK_STYLE)


def _break_colour(family) -> str:
    """The colour of the breakdown lines and their logits: the breakdown method's."""
    return _style(family.breakdown_method, family)["color"]


BAND = 0.88  # inf and NaN are drawn in a grey band above this height (a fraction of the panel): no value lies there
HEADROOM = 0.85  # every finite value plotted stays below this height in a panel with the band


def _edge_markers(ax, cs, values, reference, what: str, curve, size: float = 30) -> set:
    """Non-finite values drawn in the band at the panel's top (inf ▲, NaN ✕) so that they are seen, not dropped;
    :func:`_draw_panel` keeps every finite value below the band, so that a marker cannot be read as a value (NaN
    markers at 0.9 of a loss panel sat at 100, torch_bce's capped loss). Returns the kinds drawn."""
    from matplotlib.transforms import blended_transform_factory

    edge = blended_transform_factory(ax.transData, ax.transAxes)
    drawn = set()
    for kind, height, marker in (("inf", 0.96, "^"), ("NaN", 0.92, "x")):
        mask = (np.isinf(values) if kind == "inf" else np.isnan(values)) & np.isfinite(reference)
        if mask.any():
            ax.scatter(cs.x[mask], np.full(int(mask.sum()), height), transform=edge, marker=marker, s=size,
                       color=_style(curve.method, _family(cs))["color"], clip_on=False,
                       label=f"{curve.method}: {kind}{what}")
            drawn.add(kind)
    return drawn


def _draw_panel(ax, cs, kind: str, breakdown, slide: bool = False) -> set:
    """One panel (``kind``: loss, error or grad) of the curve set ``cs``: the reference, every method, the
    non-finite markers, the clamp's spans and the breakdown method's breakdown lines. Returns what the legend must
    explain."""
    family = _family(cs)
    shown = set()
    if kind == "loss":
        ax.plot(cs.x, cs.reference, label="reference (mpmath)", **REFERENCE_STYLE)
    elif kind == "grad":
        ax.plot(cs.x, cs.grad_reference, label="reference (mpmath)", **REFERENCE_STYLE)
    for curve in cs.curves:
        style = dict(_style(curve.method, family))
        if slide:
            style["linewidth"] = style["linewidth"] * 1.5
        if kind == "loss":
            ax.plot(cs.x, np.where(np.isfinite(curve.loss), curve.loss, np.nan), label=curve.method, **style)
            shown |= _edge_markers(ax, cs, curve.loss, cs.reference, "", curve, 60 if slide else 30)
        elif kind == "error":
            ax.plot(cs.x, curve.error_bits, label=curve.method, **style)
        else:
            ax.plot(cs.x, np.where(np.isfinite(curve.grad), curve.grad, np.nan), label=curve.method, **style)
            shown |= _edge_markers(ax, cs, curve.grad, cs.grad_reference, " (grad)", curve, 60 if slide else 30)
    for lo, hi in clamp_spans(cs):
        ax.axvspan(lo, hi, **CLAMP_SHADE)
        shown.add("clamp")
    lo, hi = float(cs.x[0]), float(cs.x[-1])
    for value in breakdown or ():
        if value is not None and lo <= value <= hi:
            ax.axvline(value, color=_break_colour(family), linewidth=1.5 if slide else 1, linestyle="--",
                       label="_breakdown")
            shown.add("breakdown")
    _symlog(ax, "x", lo, hi, 1.0)
    ax.grid(True, alpha=0.3)
    band = bool(shown & {"inf", "NaN"})
    if kind == "loss":
        finite = cs.reference[np.isfinite(cs.reference)]
        top = float(finite.max()) if finite.size else 1.0
        exponent = math.ceil(math.log10(max(top, 1.0)) + 0.3)
        _symlog(ax, "y", 0.0, 10.0 ** exponent, 1e-6, 4 if slide else 9)
        if band:  # a decade more at a time until every finite loss plotted is below the band
            values = np.concatenate([finite, *(c.loss[np.isfinite(c.loss)] for c in cs.curves)])
            while _height(ax, float(values.max())) > HEADROOM and exponent < 400:
                exponent += 1
                _symlog(ax, "y", 0.0, 10.0 ** exponent, 1e-6, 4 if slide else 9)
    elif kind == "grad":
        finite = cs.grad_reference[np.isfinite(cs.grad_reference)]
        largest = max(1.0, float(np.abs(finite).max()) if finite.size else 1.0)  # |grad| <= w·max(1, pw)
        if band:  # 0.5 + 0.5·v/lim <= HEADROOM for every finite gradient plotted
            grads = np.concatenate([np.abs(c.grad[np.isfinite(c.grad)]) for c in cs.curves] + [[largest]])
            largest = max(largest, float(grads.max()))
        lim = max(1.3 * largest, largest / (2 * HEADROOM - 1) if band else 0.0)
        ax.set_ylim(-lim, lim)
    else:
        ax.set_ylim(bottom=-0.03 * ax.get_ylim()[1])
    if band:
        from matplotlib.patches import Rectangle
        from matplotlib.ticker import FixedLocator

        ax.add_patch(Rectangle((0, BAND), 1, 1 - BAND, transform=ax.transAxes, color="#888888", alpha=0.12,
                               linewidth=0, zorder=0, gid="nonfinite-band"))
        ticks = [t for t in ax.yaxis.get_major_locator()() if _height(ax, t) < BAND - 1e-9]  # no value in the band
        ax.yaxis.set_major_locator(FixedLocator(ticks))
    return shown


def _height(ax, value: float) -> float:
    """Where ``value`` sits in the panel, as a fraction of its height (0 at the bottom, 1 at the top)."""
    return float(ax.transAxes.inverted().transform(ax.transData.transform((0.0, value)))[1])


def _breakdown_labels(ax, breakdown, lo: float, hi: float, fontsize: float, colour: str) -> None:
    """The breakdown method's breakdown logits written above the panel (where no curve can cross them), each centred
    over its dashed line, short (16.64); :func:`_declutter` lifts one that would meet another."""
    from matplotlib.transforms import blended_transform_factory

    edge = blended_transform_factory(ax.transData, ax.transAxes)
    for value in breakdown or ():
        if value is None or not lo <= value <= hi:
            continue
        ax.annotate(short(value), (value, 1.0), xycoords=edge, xytext=(0, 3), textcoords="offset points",
                    ha="center", va="bottom", fontsize=fontsize, color=colour, annotation_clip=False,
                    gid="breakdown-value")


def _boxes_meet(a, b, pad: float = 1.0) -> bool:
    return a.x0 < b.x1 + pad and b.x0 < a.x1 + pad and a.y0 < b.y1 + pad and b.y0 < a.y1 + pad


def _drawn_texts(fig, renderer) -> list:
    """The visible, non-empty texts of a drawn figure (tick labels only of ticks inside the view)."""
    from matplotlib.text import Text

    undrawn = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks():
                if not lo - 1e-9 * max(1, abs(lo)) <= tick.get_loc() <= hi + 1e-9 * max(1, abs(hi)):
                    undrawn |= {id(tick.label1), id(tick.label2)}
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip() and id(t) not in undrawn]


def _declutter(fig) -> None:
    """Keep the labels above the panels clear of every other text: one that sticks out of the canvas or meets
    another text is first aligned to reach away from its panel's edge, then, if it still meets one, moved up a
    line at a time."""
    fig.draw_without_rendering()  # lays out ticks and texts without painting pixels
    renderer = fig.canvas.get_renderer()
    width = fig.bbox.width
    labels = [t for ax in fig.axes for t in ax.texts if t.get_gid() == "breakdown-value"]
    if not labels:
        return
    boxes = {id(t): t.get_window_extent(renderer) for t in _drawn_texts(fig, renderer)}
    for t in labels:
        ax_box = t.axes.get_window_extent(renderer)
        middle = (ax_box.x0 + ax_box.x1) / 2
        others = [b for k, b in boxes.items() if k != id(t)]

        def clashes() -> bool:
            b = t.get_window_extent(renderer)
            return b.x0 < 0 or b.x1 > width or any(_boxes_meet(b, o) for o in others)

        if clashes():
            t.set_ha("left" if t.get_window_extent(renderer).x0 < middle else "right")
        for _ in range(3):
            if not clashes():
                break
            dx, dy = t.xyann
            t.xyann = (dx, dy + t.get_fontsize() * 1.25)
        boxes[id(t)] = t.get_window_extent(renderer)


def _legend_items(methods, shown: set, family, slide: bool = False):
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles, labels = [], []
    handles.append(Line2D([], [], **REFERENCE_STYLE))
    labels.append("exact (mpmath)")
    for m in methods:
        style = dict(_style(m, family))
        if slide:
            style["linewidth"] = style["linewidth"] * 1.5
        handles.append(Line2D([], [], **style))
        labels.append(m)
    if "inf" in shown:
        handles.append(Line2D([], [], marker="^", color="#555555", linestyle="none", markersize=8))
        labels.append("inf (grey band at the top)")
    if "NaN" in shown:
        handles.append(Line2D([], [], marker="x", color="#555555", linestyle="none", markersize=8))
        labels.append("NaN (grey band at the top)")
    if "breakdown" in shown:
        handles.append(Line2D([], [], color=_break_colour(family), linestyle="--", linewidth=1.5))
        labels.append(f"{family.breakdown_method}'s first inf/NaN (x above)")
    if "clamp" in shown:
        handles.append(Patch(**{**CLAMP_SHADE, "alpha": 0.35}))
        labels.append("-100 clamp decides the answer")
    return handles, labels


def _where(pos, neg) -> str:
    return " and ".join(f"x {'≥' if v > 0 else '≤'} {short(v)}" for v in (pos, neg) if v is not None)


def loss_figure(curve_sets: list, breakdowns: dict | None = None):
    """One figure for one dtype and backend: a column per target; rows: loss, error in bits, gradient.

    ``breakdowns`` maps a target to the exact (pos, neg) logits where the family's breakdown method turns
    non-finite (``curves.breakdowns``, from the sweep engine); without it the grid's own first non-finite points are
    used. Where the family's clamp changes the answer (status ``clamped``, as ``stabcli compare`` says) the stretch
    is shaded. The curve sets' family names the axis by its variable (softmax: the gap g) and the columns by its
    targets.
    """
    plt = _pyplot()

    family = _family(curve_sets[0])
    v = family.variable
    ncol = len(curve_sets)
    fig, axes = plt.subplots(3, ncol, figsize=(max(7 * ncol, 9), 12.5), squeeze=False, sharex="col",
                             gridspec_kw={"height_ratios": [3, 2, 2]})
    shown: set = set()
    for col, cs in enumerate(curve_sets):
        ax_loss, ax_bits, ax_grad = axes[:, col]
        breakdown = (breakdowns or {}).get(cs.target) or grid_breakdown(cs)
        for ax, kind in ((ax_loss, "loss"), (ax_bits, "error"), (ax_grad, "grad")):
            shown |= _draw_panel(ax, cs, kind, breakdown)
            ax.set_ylabel(ROW_LABELS[kind] if kind != "grad" else f"d loss / d {v}")
        for ax in (ax_loss, ax_bits):
            ax.tick_params(labelbottom=False)
        _breakdown_labels(ax_loss, breakdown, float(cs.x[0]), float(cs.x[-1]), 10, _break_colour(family))
        ax_grad.set_xlabel(family.variable_label)
        ax_loss.set_title(f"target y = {cs.target:g}" if v == "x" else family.target_label(cs.target), pad=22)
    methods = list(dict.fromkeys(c.method for cs in curve_sets for c in cs.curves))
    handles, labels = _legend_items(methods, shown, family)
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=10, frameon=False)
    cs0 = curve_sets[0]
    fig.suptitle(f"{cs0.dtype}, {cs0.backend} backend: each method against the exact loss", fontsize=15)
    fig.tight_layout(rect=(0, 0.075, 1, 0.985))
    _declutter(fig)
    return fig


# --- the overview: a strip per (dtype, method), coloured by the status at each swept logit ----------------------

def _status_key(code: int) -> str:
    from stabcli.core.analysis import STATUSES

    return STATUSES[int(code)]


def _strip_segments(strip) -> dict[str, list[tuple[float, float]]]:
    """Per status colour, the (start, width) stretches of the logit axis a strip paints."""
    edges = point_edges(strip.x)
    out: dict[str, list] = {}
    for code in np.unique(strip.code):
        key = _status_key(code)
        key = "inf" if key == "nan" else key
        for a, b in runs(strip.code == code):
            out.setdefault(key, []).append((float(edges[a]), float(edges[b] - edges[a])))
    return out


def _closest(rows, attr: str, sign: int):
    vals = [getattr(r.breakdown, attr) for r in rows if getattr(r.breakdown, attr) is not None]
    return (min(vals) if sign > 0 else max(vals)) if vals else None


def _reach(sweep, strips) -> tuple[float, float]:
    xs = [s.x for s in strips if s.x.size]
    if not sweep.grid.exhaustive:
        return float(sweep.grid.min), float(sweep.grid.max)
    return (min(float(x[0]) for x in xs), max(float(x[-1]) for x in xs)) if xs else (-1.0, 1.0)


def overview_figure(sweep, strips, slide: bool = False):
    """Every (dtype, method) of a sweep as a strip over the logit axis, a panel per backend: each swept logit
    coloured by its status (green within tolerance, yellow finite but out of tolerance, purple where the -100
    clamp decides the answer, vermillion inf or NaN), the worst over the sweep's targets, from ``strips``
    (``curves.status_strips``: the sweep engine's judgement at every logit). A method a backend cannot run is
    a grey strip that says so. Labels: the exact logit where inf/NaN starts on each side (the sweep's breakdown).
    ``slide``: one 16:9 panel per backend stacked, text >= 18 pt.
    """
    plt = _pyplot()
    from matplotlib.patches import Patch

    from stabcli.losses import get_family

    family = get_family(getattr(sweep, "family", None))
    backends = list(dict.fromkeys(r.backend for r in sweep.rows))
    dtypes = list(dict.fromkeys(r.dtype for r in sweep.rows))
    present = {s.method for s in strips}
    methods = [m for m in family.method_names if m in present] + sorted(present - set(family.method_names))
    rows = [(d, m) for d in dtypes for m in methods]
    by_key = {(s.backend, s.dtype, s.method): s for s in strips}
    lo, hi = _reach(sweep, strips)
    fs = SLIDE_FONT if slide else 9
    if slide:
        fig, axes = plt.subplots(len(backends), 1, figsize=SLIDE_SIZE, dpi=SLIDE_DPI, squeeze=False, sharex=True)
        axes = axes[:, 0]
    else:
        fig, axes = plt.subplots(1, len(backends), figsize=(max(8 * len(backends), 11),
                                                            max(3.4, 1.9 + 0.3 * len(rows))),
                                 squeeze=False, sharey=True)
        axes = axes[0]
    labels = [m if len(dtypes) == 1 else f"{d} · {m}" for d, m in rows]
    for ax, backend in zip(axes, backends):
        runnable = family.methods_for(backend)
        for i, (dtype, method) in enumerate(rows):
            y = len(rows) - 1 - i
            strip = by_key.get((backend, dtype, method))
            if strip is None:
                why = f"not available in the {backend} backend" if method not in runnable else \
                    "left out with these options"
                ax.broken_barh([(lo, hi - lo)], (y - 0.35, 0.7), facecolors=NA_COLOUR)
                ax.text(0.5, y, f"n/a: {why}", transform=ax.get_yaxis_transform(), ha="center", va="center",
                        fontsize=fs, color="#555555")
                continue
            for key, segments in sorted(_strip_segments(strip).items(), key=lambda kv: kv[0] != "ok"):
                colour = STATUS_COLOURS[key]
                edge = dict(edgecolor=colour, linewidth=0.8) if key != "ok" else dict(linewidth=0)
                ax.broken_barh(segments, (y - 0.35, 0.7), facecolors=colour, **edge)
            found = [r for r in sweep.rows if r.backend == backend and r.dtype == dtype and r.method == method]
            for value in (_closest(found, "nonfinite_pos", 1), _closest(found, "nonfinite_neg", -1)):
                if value is not None and lo <= value <= hi:
                    t = ax.text(value, y, f" {short(value)} ", va="center", ha="left" if value > 0 else "right",
                                fontsize=fs, gid="breakdown-label")
                    t.stabcli_room = (float(strip.x[0]), float(strip.x[-1]))  # the strip's own extent
        for k in range(1, len(dtypes)):
            ax.axhline(len(rows) - k * len(methods) - 0.5, color="#333333", linewidth=1)
        _symlog(ax, "x", lo, hi, 1.0, 4 if slide else 5)
        ax.set_ylim(-0.6, len(rows) - 0.4)
        ax.set_yticks(range(len(rows)), labels[::-1], fontsize=fs)
        ax.tick_params(axis="x", labelsize=fs if slide else 11)
        ax.grid(True, axis="x", alpha=0.3)
        ax.set_title(f"{backend} backend", fontsize=fs + (2 if slide else 3), loc="left" if slide else "center")
    axes[-1].set_xlabel(family.variable_label, fontsize=fs if slide else 12)
    targets = list(dict.fromkeys(r.target for r in sweep.rows))
    every = all(s.every_point for s in strips)
    n = max((s.x.size for s in strips), default=0)
    where = (f"at each of the sweep's {n:,} logits" if every else f"at {n:,} log-spaced logits of the swept range")
    if family.variable == "x":
        over = f"target {targets[0]:g}" if len(targets) == 1 else \
            "worst over targets " + ", ".join(f"{t:g}" for t in targets)
    else:
        over = family.target_label(targets[0]) if len(targets) == 1 else \
            "worst over " + ", ".join(family.target_label(t) for t in targets)
    shown_keys = [k for k in ("ok", "inaccurate", "clamped", "inf")
                  if any(k in _strip_segments(s) for s in strips)] or ["ok"]
    handles = [Patch(color=STATUS_COLOURS[k]) for k in shown_keys]
    names = [(STATUS_SHORT if slide else STATUS_LABELS)[k] for k in shown_keys]
    if len(by_key) < len(rows) * len(backends):
        handles.append(Patch(color=NA_COLOUR))
        names.append("n/a")
    if slide:
        fig.legend(handles, names, loc="lower center", ncol=len(names), frameon=False, fontsize=fs,
                   handlelength=1.2, columnspacing=1.2)
        fig.suptitle(f"{', '.join(dtypes)}: where each method breaks ({over.replace('worst over ', '')})",
                     fontsize=fs + 6, x=0.01, ha="left")
        fig.tight_layout(rect=(0, 0.08, 1, 1))
    else:
        fig.legend(handles, names, loc="lower center", ncol=len(names), frameon=False, fontsize=11)
        fig.suptitle("Where each method breaks: the status " + where + f", {over}\n"
                     "labels: the first logit (towards 0) where a method gives inf or NaN", fontsize=13)
        fig.tight_layout(rect=(0, 0.04, 1, 1))
    _fit_breakdown_labels(fig)
    return fig


def _fit_breakdown_labels(fig) -> None:
    """A breakdown label sits inside its inf/NaN stretch, against the logit it names. Where the stretch is too
    narrow (a strip much shorter than the axis, or a stretch at the panel's edge), the label moves just beyond
    the strip's end if there is room there, else to the other side of its logit on a white box."""
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        box = ax.get_window_extent(renderer)
        for t in ax.texts:
            if t.get_gid() != "breakdown-label":
                continue
            b = t.get_window_extent(renderer)
            value = t.get_position()[0]
            lo, hi = getattr(t, "stabcli_room", (None, None))
            outward = value > 0  # the stretch runs from the logit away from 0
            end = hi if outward else lo
            end_px = (box.x1 if outward else box.x0) if end is None else \
                float(np.clip(ax.transData.transform((end, 0))[0], box.x0, box.x1))
            if (b.x1 <= end_px + 0.5) if outward else (b.x0 >= end_px - 0.5):
                continue  # fits in its stretch
            room = (box.x1 - end_px) if outward else (end_px - box.x0)
            if end is not None and room >= b.width:
                t.set_x(end)  # beyond the end of a strip that stops short of the panel's edge
            else:
                t.set_ha("right" if t.get_ha() == "left" else "left")
                t.set_bbox(dict(facecolor="white", edgecolor="none", pad=0.5, alpha=0.9))


# --- slides: one 16:9 panel, text >= 18 pt --------------------------------------------------------------------

SLIDE_TITLES = {"loss": "the loss", "error": "the error in bits (0: correctly rounded)",
                "grad": "the gradient d loss / d x"}


def slide_figure(kind: str, cs, breakdown=None):
    """One 16:9 slide of the curve set ``cs`` (one dtype, backend and target): ``kind`` is loss, error or grad.

    Every text is at least SLIDE_FONT points on a 13.33 x 7.5 inch page (a presentation slide), the legend sits
    beside the panel, the breakdown method's breakdown logits are written above it, short (16.64).
    """
    plt = _pyplot()

    fig, ax = plt.subplots(figsize=SLIDE_SIZE, dpi=SLIDE_DPI)
    breakdown = breakdown or grid_breakdown(cs)
    shown = _draw_panel(ax, cs, kind, breakdown, slide=True)
    ax.tick_params(labelsize=SLIDE_FONT)
    ax.set_xlabel("logit x", fontsize=SLIDE_FONT + 2)
    ax.set_ylabel(ROW_LABELS[kind], fontsize=SLIDE_FONT + 2)
    _breakdown_labels(ax, breakdown, float(cs.x[0]), float(cs.x[-1]), SLIDE_FONT, _break_colour(_family(cs)))
    handles, labels = _legend_items([c.method for c in cs.curves], shown, _family(cs), slide=True)
    if kind == "error":
        handles, labels = handles[1:], labels[1:]  # the exact value has no error to draw
    ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=SLIDE_FONT, frameon=False,
              handlelength=1.8, borderaxespad=0)
    fig.suptitle(f"{cs.dtype}, {cs.backend}, target {cs.target:g}: {SLIDE_TITLES[kind]}",
                 fontsize=SLIDE_FONT + 6, x=0.01, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    _declutter(fig)
    return fig


def slide_overview(sweep, strips):
    """The overview of one dtype (both backends stacked) as a 16:9 slide: :func:`overview_figure` with
    ``slide=True``."""
    return overview_figure(sweep, strips, slide=True)


# --- writing ---------------------------------------------------------------------------------------------------

def save(fig, folder: Path, stem: str, formats=FORMATS_WRITTEN) -> list[Path]:
    """Write ``fig`` as stem.png / stem.svg, deterministically, each file atomically (no half-written file)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for ext in formats:
        target = folder / f"{stem}.{ext}"
        fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=f".{ext}", dir=folder)
        os.close(fd)
        try:
            metadata = {"Date": None} if ext == "svg" else {"Software": None}
            fig.savefig(tmp, format=ext, metadata=metadata, dpi=fig.dpi)
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        written.append(target)
    return written


@contextmanager
def staged_folder(out):
    """A temporary folder to write a set of files into; they move into ``out`` together once all are written.

    The temporary folder sits in ``out`` or, if it does not exist yet, in its nearest existing parent (the same
    file system, so a move is a rename). If the writing fails or is interrupted (Ctrl-C), the temporary folder is
    removed and ``out`` is as it was: not created, its old figures untouched, no .png without its .svg. The moves
    themselves run with Ctrl-C held back (a few renames), so the set arrives whole.
    """
    out = Path(out)
    base = out
    while not base.exists():
        base = base.parent
    staging = Path(tempfile.mkdtemp(prefix=".stabcli-", dir=base))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    blocked = _hold_ctrl_c()
    try:
        out.mkdir(parents=True, exist_ok=True)
        for path in sorted(staging.iterdir()):
            os.replace(path, out / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if blocked:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _hold_ctrl_c() -> bool:
    """Block SIGINT until the caller unblocks it (a Ctrl-C meanwhile is delivered then); False where not possible."""
    if not hasattr(signal, "pthread_sigmask"):
        return False
    try:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    except (OSError, ValueError):
        return False
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def close(fig) -> None:
    _pyplot().close(fig)


def _write(fig, out: Path, stem: str, formats) -> list[Path]:
    try:
        return save(fig, out, stem, formats)
    finally:
        close(fig)


def draw(figure):
    """The Figure of a ``curves.LossPanels`` (:func:`loss_figure`) or ``curves.Overview`` (:func:`overview_figure`)."""
    from stabcli.commands.curves import Overview

    if isinstance(figure, Overview):
        return overview_figure(figure.sweep, figure.strips)
    return loss_figure(figure.curve_sets, figure.breakdowns)


def write_figures(out: Path, formats, figures) -> list[Path]:
    """Each of ``figures`` (``curves.plot_figures``: a figure per dtype and backend, then the overview), written
    into ``out`` as one set (``staged_folder``); returns the files written. Files are named by the family
    (``LossFamily.figure_stem``): bce_float16_numpy.png, softmax_float16_numpy.png, ..., breakdown_overview.png."""
    from stabcli.commands.curves import Overview
    from stabcli.losses import get_family

    out = Path(out)
    written: list[Path] = []
    with staged_folder(out) as staging:  # the whole set or nothing, even on Ctrl-C
        for figure in figures:
            family = get_family(figure.family)
            stem = family.figure_stem() if isinstance(figure, Overview) else \
                family.figure_stem(figure.dtype, figure.backend)
            written += _write(draw(figure), staging, stem, formats)
    return [out / path.name for path in written]


def slide_stem(kind: str, dtype: str, backend: str | None = None, target: float | None = None) -> str:
    if kind == "overview":
        return f"slide_overview_{dtype}"
    return f"slide_{kind}_{dtype}_{backend}_y{target:g}"


def write_slides(out: Path, formats, kind: str, slides) -> list[Path]:
    """``kind`` slides of ``slides`` (``curves.slide_figures``) into ``out`` as one set (``staged_folder``): one per
    (dtype, backend, target) for loss/error/grad, one per dtype (every backend, the worst over the targets) for the
    overview."""
    from stabcli.commands.curves import Overview

    out = Path(out)
    written: list[Path] = []
    with staged_folder(out) as staging:  # the whole set or nothing, even on Ctrl-C
        for figure in slides:
            if isinstance(figure, Overview):
                written += _write(slide_overview(figure.sweep, figure.strips), staging,
                                  slide_stem(kind, "_".join(figure.dtypes)), formats)
                continue
            for cs in figure.curve_sets:
                fig = slide_figure(kind, cs, figure.breakdowns.get(cs.target))
                written += _write(fig, staging, slide_stem(kind, cs.dtype, cs.backend, cs.target), formats)
    return [out / path.name for path in written]


def write_sweep_figure(figure, path) -> Path:
    """The figure of a sweep (``curves.sweep_figure``) at ``path`` (.png or .svg), written atomically."""
    path = Path(path)
    return _write(draw(figure), path.parent, path.stem, (path.suffix.lower().lstrip("."),))[0]


# --- check: a histogram of the file's logits ------------------------------------------------------------------

def check_breakdowns(check, dtype: str) -> list[tuple[str, float]]:
    """(label, logit) of each method's first inf/NaN on each side in ``dtype``, the torch backend's where both ran,
    one line per distinct logit (methods that break at the same logit share it)."""
    rows = [r for r in check.rows if r.dtype == dtype and not r.refused]
    backends = {r.backend for r in rows}
    rows = [r for r in rows if r.backend == ("torch" if "torch" in backends else r.backend)]
    v_name = "p" if check.probs else "x"
    at: dict[tuple[float, str], list[str]] = {}
    for r in rows:
        for side, rel in (("pos", "≥"), ("neg", "≤")):
            v = r.breakdown.get(f"nonfinite_{side}")
            if v is not None:
                at.setdefault((float(v), rel), []).append(f"{r.method} ({r.backend})")
    return [(f"{', '.join(ms)}: inf/NaN for {v_name} {rel} {short(v)}", v) for (v, rel), ms in sorted(at.items())]


def check_figure(check, histogram):
    """The histogram of the logits (bins even in asinh(x): linear near 0, logarithmic beyond ±1) with each
    method's first inf/NaN logit marked."""
    plt = _pyplot()
    edges, counts, specials = histogram
    dtype = check.inputs[0].dtype if check.inputs else check.logits.stored
    fig, ax = plt.subplots(figsize=(10, 5.2))
    ax.stairs(counts, edges, fill=True, color="#4c72b0", alpha=0.8, label="elements")
    lo, hi = float(edges[0]), float(edges[-1])
    marks = check_breakdowns(check, dtype)
    for label, v in marks:
        lo, hi = min(lo, v), max(hi, v)
    span = max(abs(lo), abs(hi), 1.0)
    _symlog(ax, "x", -span if lo < 0 else min(lo, 0.0), span if hi > 0 else max(hi, 0.0), 1.0)
    if counts.size and counts.max() > 0:
        ax.set_yscale("log")
        ax.set_ylim(0.8, counts.max() * 3)
    colours = ["#d62728", "#9467bd", "#ff7f0e", "#2ca02c", "#8c564b", "#e377c2"]
    for i, (label, v) in enumerate(marks):
        ax.axvline(v, color=colours[i % len(colours)], linestyle="--", linewidth=1.5, label=label)
    first = "probability p" if check.probs else "logit x"
    ax.set_xlabel(f"{first} ({dtype})")
    ax.set_ylabel("elements")
    extra = ", ".join(f"{n:,} {k}" for k, n in specials.items() if n)
    ax.set_title(f"{check.logits.name}: {check.elements:,} elements" + (f" ({extra})" if extra else ""))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=10, frameon=False)
    fig.tight_layout()
    return fig


def write_check_figure(check, histogram, path) -> Path:
    """The check's histogram figure at ``path`` (.png or .svg), written atomically."""
    path = Path(path)
    fig = check_figure(check, histogram)
    return _write(fig, path.parent, path.stem, (path.suffix.lower().lstrip("."),))[0]
