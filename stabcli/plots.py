"""matplotlib Figures from curve data (``curves.py``). Functions return Figures; ``save`` writes files.

matplotlib is imported inside the functions with the Agg backend, so only the commands that plot load it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

# Okabe–Ito: a colour-blind-safe palette; each method also has its own line style.
STYLE = {
    "reference": dict(color="#000000", linestyle="-", linewidth=4.0, alpha=0.25),
    "naive": dict(color="#D55E00", linestyle="-", linewidth=2.0),
    "clamped": dict(color="#CC79A7", linestyle="--", linewidth=2.0),
    "logsumexp": dict(color="#0072B2", linestyle="-.", linewidth=2.0),
    "softplus": dict(color="#009E73", linestyle=":", linewidth=2.5),
    "torch_bce": dict(color="#E69F00", linestyle=(0, (5, 1, 1, 1)), linewidth=2.0),
    "torch_bce_with_logits": dict(color="#56B4E9", linestyle=(0, (1, 1)), linewidth=2.0),
}
FORMATS_WRITTEN = ("png", "svg")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.hashsalt": "stabcli", "font.size": 12, "axes.titlesize": 13})
    return plt


def naive_breakdown(cs) -> tuple[float | None, float | None]:
    """Closest-to-0 grid logits (positive, negative) where naive turns non-finite: (None, None) if never."""
    naive = next(c for c in cs.curves if c.method == "naive")
    bad = ~np.isfinite(naive.loss) & np.isfinite(cs.reference)
    pos = cs.x[bad & (cs.x > 0)]
    neg = cs.x[bad & (cs.x < 0)]
    return (float(pos.min()) if pos.size else None, float(neg.max()) if neg.size else None)


def _num(v: float) -> str:
    text = f"{v:.10g}"
    return text


def loss_figure(curve_sets: list, breakdowns: dict | None = None):
    """One figure for one dtype and backend: a column per target, rows loss and error bits.

    ``breakdowns`` maps a target to (pos, neg) exact breakdown logits of naive; by default they come from the
    grid. Non-finite losses are drawn as markers at the top edge ("inf" ▲, "NaN" ✕); where the -100 clamp
    changes the answer the region is shaded.
    """
    plt = _pyplot()
    from matplotlib.transforms import blended_transform_factory

    fig, axes = plt.subplots(2, len(curve_sets), figsize=(7 * len(curve_sets), 9), squeeze=False,
                             sharex="col", gridspec_kw={"height_ratios": [3, 2]})
    titles = []
    for col, cs in enumerate(curve_sets):
        ax_loss, ax_bits = axes[0, col], axes[1, col]
        pos, neg = (breakdowns or {}).get(cs.target) or naive_breakdown(cs)
        ax_loss.plot(cs.x, cs.reference, label="reference (mpmath)", **STYLE["reference"])
        edge = blended_transform_factory(ax_loss.transData, ax_loss.transAxes)
        for curve in cs.curves:
            finite = np.isfinite(curve.loss)
            y = np.where(finite, curve.loss, np.nan)
            ax_loss.plot(cs.x, y, label=curve.method, **STYLE[curve.method])
            ax_bits.plot(cs.x, curve.error_bits, label=curve.method, **STYLE[curve.method])
            for kind, height, marker in (("inf", 0.97, "^"), ("nan", 0.92, "x")):
                mask = (np.isinf(curve.loss) if kind == "inf" else np.isnan(curve.loss)) & np.isfinite(cs.reference)
                if mask.any():
                    ax_loss.scatter(cs.x[mask], np.full(mask.sum(), height), transform=edge, marker=marker, s=30,
                                    color=STYLE[curve.method]["color"], clip_on=False,
                                    label=f"{curve.method}: {'inf' if kind == 'inf' else 'NaN'}")
            if curve.method == "clamped":
                changed = (curve.status == "clamped") & (curve.error_bits > 0)
                for side in (cs.x > 0, cs.x < 0):
                    xs = cs.x[changed & side]
                    if xs.size:
                        ax_loss.axvspan(xs.min(), xs.max(), color=STYLE["clamped"]["color"], alpha=0.12, lw=0)
                        ax_bits.axvspan(xs.min(), xs.max(), color=STYLE["clamped"]["color"], alpha=0.12, lw=0)
        for value in (pos, neg):
            if value is not None:
                for ax in (ax_loss, ax_bits):
                    ax.axvline(value, color=STYLE["naive"]["color"], linewidth=1, linestyle="--")
                ax_loss.annotate(f"naive breaks\nx = {_num(value)}", (value, 0.75), xycoords=edge,
                                 ha="left" if value > 0 else "right", fontsize=10, color=STYLE["naive"]["color"],
                                 xytext=(4 if value > 0 else -4, 0), textcoords="offset points")
        for ax in (ax_loss, ax_bits):
            ax.set_xscale("symlog", linthresh=1.0)
            ax.grid(True, alpha=0.3)
        ax_loss.set_yscale("symlog", linthresh=1e-6)
        ax_loss.set_ylim(bottom=0)
        ax_loss.set_ylabel("loss")
        ax_bits.set_ylabel("error (bits, Herbie)")
        ax_bits.set_xlabel("logit x")
        ax_loss.set_title(f"target y = {cs.target:g}")
        where = " and ".join(f"x {'≥' if v > 0 else '≤'} {_num(v)}" for v in (pos, neg) if v is not None)
        titles.append(f"y = {cs.target:g}: {where}" if where else f"y = {cs.target:g}: never")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    seen = dict(zip(labels, handles))
    for ax in axes[0, 1:]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
    fig.legend(list(seen.values()), list(seen.keys()), loc="lower center", ncol=4, fontsize=10, frameon=False)
    cs0 = curve_sets[0]
    fig.suptitle(f"{cs0.dtype} ({cs0.backend}): naive BCE turns inf/NaN at " + "; ".join(titles)
                 + "\nsoftplus follows the truth; shaded: the -100 clamp changes the answer", fontsize=14)
    fig.tight_layout(rect=(0, 0.08, 1, 0.93))
    return fig


def save(fig, folder: Path, stem: str, formats=FORMATS_WRITTEN) -> list[Path]:
    """Write ``fig`` as stem.png / stem.svg, deterministically, each file atomically (no half-written file)."""
    folder = Path(folder)
    written = []
    for ext in formats:
        target = folder / f"{stem}.{ext}"
        fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=f".{ext}", dir=folder)
        os.close(fd)
        try:
            metadata = {"Date": None} if ext == "svg" else {"Software": None}
            fig.savefig(tmp, format=ext, metadata=metadata, dpi=100)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        written.append(target)
    return written


def close(fig) -> None:
    _pyplot().close(fig)



def write_figures(out: Path, formats, dtypes, backends, targets) -> list[Path]:
    """Compute and write one figure per (dtype, backend) into ``out``; returns the files written."""
    from stabcli.curves import curve_set

    out = Path(out)
    written: list[Path] = []
    for fmt in dtypes:
        for backend in backends:
            fig = loss_figure([curve_set(fmt, backend, float(y)) for y in targets])
            try:
                written += save(fig, out, f"bce_{fmt.name}_{backend}", formats)
            finally:
                close(fig)
    return written
