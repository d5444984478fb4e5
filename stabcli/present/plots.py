"""matplotlib Figures from curve data (``curves.py``) and sweeps (``sweep.py``). Functions return Figures;
``save`` writes files atomically and deterministically, ``staged_folder`` a whole set at once.

matplotlib is imported inside the functions with the Agg backend, so only the commands that plot load it.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from stabcli.core.numbers import fmt_number

# Okabe–Ito: a colour-blind-safe palette; each method also has its own line style.
STYLE = {
    "reference": dict(color="#000000", linestyle="-", linewidth=5.0, alpha=0.22),
    "naive": dict(color="#D55E00", linestyle="-", linewidth=2.0),
    "clamped": dict(color="#CC79A7", linestyle="--", linewidth=2.0),
    "logsumexp": dict(color="#0072B2", linestyle="-.", linewidth=2.0),
    "softplus": dict(color="#009E73", linestyle=":", linewidth=2.5),
    "torch_bce": dict(color="#E69F00", linestyle=(0, (5, 1, 1, 1)), linewidth=2.0),
    "torch_bce_with_logits": dict(color="#56B4E9", linestyle=(0, (1, 1)), linewidth=2.0),
}
FORMATS_WRITTEN = ("png", "svg")
CLAMP_SHADE = dict(color="#CC79A7", alpha=0.12, lw=0)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.hashsalt": "stabcli", "font.size": 12, "axes.titlesize": 13,
                         "svg.fonttype": "path"})
    return plt


def num(v: float) -> str:
    """A logit of a dtype, exactly (shortest repr)."""
    return fmt_number(v, None)


def grid_breakdown(cs, method: str = "naive") -> tuple[float | None, float | None]:
    """Closest-to-0 grid logits (positive, negative) where ``method`` turns non-finite: None if never."""
    curve = next(c for c in cs.curves if c.method == method)
    bad = ~np.isfinite(curve.loss) & np.isfinite(cs.reference)
    pos, neg = cs.x[bad & (cs.x > 0)], cs.x[bad & (cs.x < 0)]
    return (float(pos.min()) if pos.size else None, float(neg.max()) if neg.size else None)


def _edge_markers(ax, cs, values, reference, what: str, curve) -> None:
    """Non-finite values drawn at the panel's top edge (inf ▲, NaN ✕) so that they are seen, not dropped."""
    from matplotlib.transforms import blended_transform_factory

    edge = blended_transform_factory(ax.transData, ax.transAxes)
    for kind, height, marker in (("inf", 0.97, "^"), ("NaN", 0.92, "x")):
        mask = (np.isinf(values) if kind == "inf" else np.isnan(values)) & np.isfinite(reference)
        if mask.any():
            ax.scatter(cs.x[mask], np.full(int(mask.sum()), height), transform=edge, marker=marker, s=30,
                       color=STYLE[curve.method]["color"], clip_on=False, label=f"{curve.method}: {kind}{what}")


def loss_figure(curve_sets: list, breakdowns: dict | None = None):
    """One figure for one dtype and backend: a column per target; rows: loss, error bits, gradient.

    ``breakdowns`` maps a target to the exact (pos, neg) logits where naive turns non-finite (from the sweep
    engine); without it the grid's own first non-finite points are used. Where the -100 clamp changes the answer
    the region is shaded.
    """
    plt = _pyplot()
    from matplotlib.transforms import blended_transform_factory

    ncol = len(curve_sets)
    fig, axes = plt.subplots(3, ncol, figsize=(7 * ncol, 12), squeeze=False, sharex="col",
                             gridspec_kw={"height_ratios": [3, 2, 2]})
    titles = []
    for col, cs in enumerate(curve_sets):
        ax_loss, ax_bits, ax_grad = axes[:, col]
        pos, neg = (breakdowns or {}).get(cs.target) or grid_breakdown(cs)
        ax_loss.plot(cs.x, cs.reference, label="reference (mpmath)", **STYLE["reference"])
        ax_grad.plot(cs.x, cs.grad_reference, label="reference (mpmath)", **STYLE["reference"])
        for curve in cs.curves:
            style = STYLE[curve.method]
            ax_loss.plot(cs.x, np.where(np.isfinite(curve.loss), curve.loss, np.nan), label=curve.method, **style)
            ax_bits.plot(cs.x, curve.error_bits, label=curve.method, **style)
            ax_grad.plot(cs.x, np.where(np.isfinite(curve.grad), curve.grad, np.nan), label=curve.method, **style)
            _edge_markers(ax_loss, cs, curve.loss, cs.reference, "", curve)
            _edge_markers(ax_grad, cs, curve.grad, cs.grad_reference, " (grad)", curve)
            if curve.method == "clamped":
                changed = (curve.status == "clamped") & (curve.error_bits > 0)
                for side in (cs.x > 0, cs.x < 0):
                    xs = cs.x[changed & side]
                    if xs.size:
                        for ax in (ax_loss, ax_bits, ax_grad):
                            ax.axvspan(xs.min(), xs.max(), **CLAMP_SHADE)
        edge = blended_transform_factory(ax_loss.transData, ax_loss.transAxes)
        for value in (pos, neg):
            if value is None:
                continue
            for ax in (ax_loss, ax_bits, ax_grad):
                ax.axvline(value, color=STYLE["naive"]["color"], linewidth=1, linestyle="--", label="_breakdown")
            ax_loss.annotate(f"naive breaks\nx = {num(value)}", (value, 0.72), xycoords=edge,
                             ha="right" if value > 0 else "left", fontsize=10, color=STYLE["naive"]["color"],
                             xytext=(-4 if value > 0 else 4, 0), textcoords="offset points")
        for ax in (ax_loss, ax_bits, ax_grad):
            ax.set_xscale("symlog", linthresh=1.0)
            ax.grid(True, alpha=0.3)
        ax_loss.set_yscale("symlog", linthresh=1e-6)
        ax_loss.set_ylim(bottom=0)
        finite = cs.grad_reference[np.isfinite(cs.grad_reference)]
        lim = 1.3 * max(1.0, float(np.abs(finite).max()) if finite.size else 1.0)  # |grad| <= w·max(1, pw)
        ax_grad.set_ylim(-lim, lim)
        ax_loss.set_ylabel("loss")
        ax_bits.set_ylabel("error (bits, Herbie)")
        ax_grad.set_ylabel("d loss / d x")
        ax_grad.set_xlabel("logit x")
        ax_loss.set_title(f"target y = {cs.target:g}")
        where = " and ".join(f"x {'≥' if v > 0 else '≤'} {num(v)}" for v in (pos, neg) if v is not None)
        titles.append(f"y = {cs.target:g}: {where}" if where else f"y = {cs.target:g}: never")
    seen: dict = {}
    for ax in axes.ravel():
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if not lab.startswith("_"):
                seen.setdefault(lab, h)
    fig.legend(list(seen.values()), list(seen.keys()), loc="lower center", ncol=4, fontsize=10, frameon=False)
    cs0 = curve_sets[0]
    fig.suptitle(f"{cs0.dtype} ({cs0.backend}): naive BCE gives inf/NaN at " + "; ".join(titles)
                 + "\nsoftplus follows the truth; shaded: the -100 clamp changes the answer", fontsize=14)
    fig.tight_layout(rect=(0, 0.09, 1, 0.94))
    return fig


def overview_figure(sweep):
    """The breakdown logits of every method for every dtype side by side, a panel per backend.

    Each (dtype, method) is a bar over the logit axis: green where the loss is within tolerance, yellow where it
    is finite but out of tolerance, red where it is inf or NaN (worst over the sweep's targets).
    """
    plt = _pyplot()
    backends = list(dict.fromkeys(r.backend for r in sweep.rows))
    dtypes = list(dict.fromkeys(r.dtype for r in sweep.rows))
    methods = list(dict.fromkeys(r.method for r in sweep.rows))
    reach = max(abs(v) for v in (sweep.grid.min, sweep.grid.max) if v is not None) if not sweep.grid.exhaustive \
        else 1e4
    fig, axes = plt.subplots(1, len(backends), figsize=(8 * len(backends), 1.2 + 0.32 * len(dtypes) * len(methods)),
                             squeeze=False, sharey=True)
    labels = [f"{d} · {m}" for d in dtypes for m in methods]
    for ax, backend in zip(axes[0], backends):
        for i, (dtype, method) in enumerate((d, m) for d in dtypes for m in methods):
            rows = [r for r in sweep.rows if r.backend == backend and r.dtype == dtype and r.method == method]
            if not rows:
                continue
            y = len(labels) - 1 - i

            def closest(attr, sign):
                vals = [getattr(r.breakdown, attr) for r in rows if getattr(r.breakdown, attr) is not None]
                return (min(vals) if sign > 0 else max(vals)) if vals else None

            nf_pos, nf_neg = closest("nonfinite_pos", 1), closest("nonfinite_neg", -1)
            in_pos, in_neg = closest("inaccurate_pos", 1), closest("inaccurate_neg", -1)
            lo_f, hi_f = nf_neg if nf_neg is not None else -reach, nf_pos if nf_pos is not None else reach
            lo_a, hi_a = in_neg if in_neg is not None else lo_f, in_pos if in_pos is not None else hi_f
            ax.barh(y, reach - hi_f, left=hi_f, color="#D55E00", height=0.7)
            ax.barh(y, lo_f + reach, left=-reach, color="#D55E00", height=0.7)
            ax.barh(y, hi_f - lo_f, left=lo_f, color="#F0E442", height=0.7)
            ax.barh(y, max(hi_a, lo_a) - lo_a, left=lo_a, color="#009E73", height=0.7)
            for v in (nf_pos, nf_neg):
                if v is not None:
                    ax.text(v, y, f" {num(v)} ", va="center", ha="left" if v > 0 else "right", fontsize=8)
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlim(-reach, reach)
        ax.set_title(f"{backend} backend")
        ax.set_xlabel("logit x")
        ax.grid(True, axis="x", alpha=0.3)
    axes[0, 0].set_yticks(range(len(labels)), labels[::-1], fontsize=9)
    from matplotlib.patches import Patch

    fig.legend([Patch(color="#009E73"), Patch(color="#F0E442"), Patch(color="#D55E00")],
               ["within tolerance", "finite, out of tolerance", "inf or NaN"], loc="lower center", ncol=3,
               frameon=False)
    fig.suptitle("Where each method breaks, per dtype (labels: first logit giving inf/NaN; worst over targets "
                 + ", ".join(f"{t:g}" for t in dict.fromkeys(r.target for r in sweep.rows)) + ")", fontsize=13)
    fig.tight_layout(rect=(0, 0.05, 1, 0.95))
    return fig


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
            fig.savefig(tmp, format=ext, metadata=metadata, dpi=100)
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


def exact_breakdowns(fmt, backend: str, targets) -> dict:
    """target -> (pos, neg) exact naive breakdown logits from the sweep engine (exhaustive for 16-bit formats)."""
    from stabcli.commands.sweep import make_grid, run_sweep

    grid = make_grid(exhaustive=True) if fmt.bits == 16 else make_grid()
    sweep = run_sweep([fmt], [backend], list(targets), grid, methods=["naive"], grad=False)
    return {r.target: (r.breakdown.nonfinite_pos, r.breakdown.nonfinite_neg) for r in sweep.rows}


def write_figures(out: Path, formats, dtypes, backends, targets) -> list[Path]:
    """One figure per (dtype, backend) and the overview, written into ``out`` as one set (``staged_folder``);
    returns the files written."""
    from stabcli.commands.curves import curve_set
    from stabcli.commands.sweep import make_grid, run_sweep

    out = Path(out)
    written: list[Path] = []
    with staged_folder(out) as staging:  # the whole set or nothing, even on Ctrl-C
        for fmt in dtypes:
            for backend in backends:
                fig = loss_figure([curve_set(fmt, backend, float(y)) for y in targets],
                                  exact_breakdowns(fmt, backend, targets))
                try:
                    written += save(fig, staging, f"bce_{fmt.name}_{backend}", formats)
                finally:
                    close(fig)
        sweep = run_sweep(list(dtypes), list(backends), list(targets), make_grid(), grad=False)  # loss breakdowns
        fig = overview_figure(sweep)
        try:
            written += save(fig, staging, "breakdown_overview", formats)
        finally:
            close(fig)
    return [out / path.name for path in written]


def write_sweep_figure(sweep, path) -> Path:
    """The figure of a sweep at ``path`` (.png or .svg): for one dtype and backend its loss/error/gradient curves
    with the sweep's own breakdown logits; for several, the breakdown overview."""
    from stabcli.commands.curves import curve_set, grid_between
    from stabcli.core.formats import get_format

    path = Path(path)
    dtypes = list(dict.fromkeys(r.dtype for r in sweep.rows))
    backends = list(dict.fromkeys(r.backend for r in sweep.rows))
    targets = list(dict.fromkeys(r.target for r in sweep.rows))
    if len(dtypes) == 1 and len(backends) == 1:
        fmt = get_format(dtypes[0])
        naive = {r.target: (r.breakdown.nonfinite_pos, r.breakdown.nonfinite_neg)
                 for r in sweep.rows if r.method == "naive"}
        g = sweep.grid
        x = None if g.exhaustive else grid_between(fmt, g.min, g.max)
        fig = loss_figure([curve_set(fmt, backends[0], t, x, sweep.weight, sweep.pos_weight) for t in targets],
                          naive)
    else:
        fig = overview_figure(sweep)
    try:
        return save(fig, path.parent, path.stem, (path.suffix.lower().lstrip("."),))[0]
    finally:
        close(fig)
