"""Figures: the plotted data (not pixels), the layout rules (nothing cut off, nothing overlapping, no curve through
a label, slide text >= 18 pt), valid deterministic files, and the plot command's errors."""

import hashlib

import numpy as np
import pytest
from click.testing import CliRunner

from stabcli.cli import cli
from stabcli.commands import curves
from stabcli.commands.curves import curve_set, status_strips
from stabcli.commands.sweep import make_grid, run_sweep
from stabcli.core.formats import FORMATS
from stabcli.present import plots


@pytest.fixture(scope="module")
def f16_numpy():
    return [curve_set(FORMATS["float16"], "numpy", y) for y in (0.0, 1.0)]


@pytest.fixture(scope="module")
def f32_torch():
    return {y: curve_set(FORMATS["float32"], "torch", y) for y in (0.0, 1.0)}


@pytest.fixture(scope="module")
def overview_all():
    """The overview as `stabcli plot` draws it: every dtype, both backends, targets 0 and 1."""
    dtypes = [FORMATS[d] for d in ("float16", "bfloat16", "float32", "float64")]
    sweep = curves.figures_sweep(dtypes, ["numpy", "torch"], [0.0, 1.0])
    strips = status_strips(dtypes, ["numpy", "torch"], [0.0, 1.0], sweep.grid)
    return sweep, strips


# --- layout: what a reader sees -------------------------------------------------------------------------------

def _texts(fig):
    """(Text, display box) of every visible, non-empty text of a drawn figure."""
    from matplotlib.text import Text

    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    undrawn = set()  # matplotlib keeps Text objects of ticks outside the view; they are not drawn
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if not lo - 1e-9 * max(1, abs(lo)) <= tick.get_loc() <= hi + 1e-9 * max(1, abs(hi)):
                    undrawn |= {id(tick.label1), id(tick.label2)}
    return [(t, t.get_window_extent(renderer)) for t in fig.findobj(Text)
            if t.get_visible() and t.get_text().strip() and t.figure is fig and id(t) not in undrawn]


def _meet(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def layout_faults(fig) -> list[str]:
    """Texts outside the canvas, texts overlapping each other, curves or markers through a text."""
    from matplotlib.path import Path
    from matplotlib.transforms import Bbox

    faults = []
    texts = _texts(fig)
    canvas = fig.bbox
    for t, b in texts:
        if b.x0 < canvas.x0 - 1 or b.x1 > canvas.x1 + 1 or b.y0 < canvas.y0 - 1 or b.y1 > canvas.y1 + 1:
            faults.append(f"cut off: {t.get_text()!r} {b.bounds} outside {canvas.bounds}")
    for i, (t, b) in enumerate(texts):
        for u, c in texts[i + 1:]:
            if _meet(b, c):
                faults.append(f"overlap: {t.get_text()!r} and {u.get_text()!r}")
    for ax in fig.axes:
        area = ax.get_window_extent()
        for t, b in texts:
            if not _meet(b, area):
                continue
            inside = Bbox.intersection(b, area)
            for line in ax.get_lines():
                xy = line.get_transform().transform(np.column_stack(line.get_data()))
                pieces = np.split(xy, np.flatnonzero(~np.isfinite(xy).all(axis=1)))
                for piece in pieces:
                    piece = piece[np.isfinite(piece).all(axis=1)]
                    if len(piece) > 1 and Path(piece).intersects_bbox(inside, filled=False):
                        faults.append(f"curve {line.get_label()!r} through {t.get_text()!r}")
                        break
            for coll in ax.collections:
                if type(coll).__name__ != "PathCollection" or not len(coll.get_offsets()):
                    continue  # scatter markers only (the overview's strips are where its labels belong)
                pts = coll.get_offset_transform().transform(coll.get_offsets())
                if any(inside.contains(px, py) for px, py in pts):
                    faults.append(f"markers {coll.get_label()!r} on {t.get_text()!r}")
    return faults


def test_layout_faults_finds_a_cut_off_title_and_a_label_under_a_curve():
    """The checker itself can fail: a title wider than the canvas and a label a curve runs through."""
    plt = plots._pyplot()
    fig, ax = plt.subplots(figsize=(4, 3))
    try:
        ax.plot([0, 1], [0, 1], label="diagonal")
        ax.text(0.5, 0.5, "under the curve", ha="center", va="center")
        fig.suptitle("a title far too long for a figure only four inches wide, so both of its ends are cut")
        faults = layout_faults(fig)
        assert any(f.startswith("cut off") for f in faults)
        assert any("through 'under the curve'" in f for f in faults)
    finally:
        plots.close(fig)


def test_figures_have_no_layout_faults(f16_numpy, f32_torch, overview_all):
    """The faults issue 12 and 15 found: cut-off titles (float32, float64), 'naive breaks' labels overlapping and
    crossed by curves, the overview's -709.78 over the y labels."""
    f64 = [curve_set(FORMATS["float64"], "numpy", y) for y in (0.0, 1.0)]
    figures = {
        "float16 numpy": plots.loss_figure(f16_numpy, {0.0: (7.625, -11.09375), 1.0: (7.625, -11.09375)}),
        "float32 torch": plots.loss_figure([f32_torch[0.0], f32_torch[1.0]]),
        "float64 numpy": plots.loss_figure(f64),
        "overview": plots.overview_figure(*overview_all),
    }
    try:
        for name, fig in figures.items():
            assert layout_faults(fig) == [], name
    finally:
        for fig in figures.values():
            plots.close(fig)


def test_an_overview_of_very_different_ranges_keeps_its_labels_readable():
    """An exhaustive float16 + bfloat16 sweep: the axis runs to ±3.4e38 while float16 stops at ±65504, so
    float16's inf/NaN stretches are a few pixels wide; its labels go beside the strip, and ±1 and 0 do not
    crowd each other on the axis."""
    fmts = [FORMATS["float16"], FORMATS["bfloat16"]]
    grid = make_grid(exhaustive=True)
    sweep = run_sweep(fmts, ["numpy"], [0.0, 1.0], grid, methods=["naive"], grad=False)
    fig = plots.overview_figure(sweep, status_strips(fmts, ["numpy"], [0.0, 1.0], grid, methods={"naive"}))
    try:
        assert layout_faults(fig) == []
        ticks = fig.axes[0].get_xticks()
        assert 0 in ticks and 1 not in ticks and -1 not in ticks
        labels = {t.get_text().strip() for t in fig.axes[0].texts}
        assert {"7.625", "-11.09", "5.5625", "-89"} <= labels  # DESIGN.md
    finally:
        plots.close(fig)


def test_symlog_ticks_read_as_numbers():
    assert [plots.tick_label(v) for v in (-1e4, -1000, -10, -1, 0, 1, 100, 1e4, 1e-6)] == \
        ["−10⁴", "−1000", "−10", "−1", "0", "1", "100", "10⁴", "10⁻⁶"]


def test_short_labels():
    # exact values: DESIGN.md's breakdown logits (float32 saturation, float64 exp overflow, float16 op by op, torch)
    assert plots.short(16.63553237915039) == "16.64"
    assert plots.short(-709.7827128933841) == "-709.78"
    assert plots.short(7.625) == "7.625" and plots.short(5.5625) == "5.5625" and plots.short(-89.0) == "-89"
    assert plots.short(8.3203125) == "8.32" and plots.short(-11.09375) == "-11.09"


def test_no_jargon_and_no_minus_ten_to_the_zero(f16_numpy):
    fig = plots.loss_figure(f16_numpy)
    try:
        words = " ".join(t.get_text() for t, _ in _texts(fig))
        assert "Herbie" not in words and "error in bits" in words
        assert "10⁰" not in words and "10^0" not in words and "$" not in words
    finally:
        plots.close(fig)


# --- the data drawn -------------------------------------------------------------------------------------------

def test_loss_figure_plots_reference_and_every_method(f16_numpy):
    fig = plots.loss_figure(f16_numpy)
    try:
        ax = fig.axes[0]
        labels = [line.get_label() for line in ax.get_lines()]
        for name in ("reference (mpmath)", "naive", "clamped", "logsumexp", "softplus"):
            assert name in labels
        ref_line = ax.get_lines()[labels.index("reference (mpmath)")]
        np.testing.assert_array_equal(ref_line.get_xdata(), f16_numpy[0].x)
        np.testing.assert_array_equal(ref_line.get_ydata(), f16_numpy[0].reference)
        # the naive non-finite points are drawn as edge markers, not dropped
        markers = {c.get_label(): c for c in ax.collections if c.get_label().startswith("naive:")}
        assert set(markers) == {"naive: inf", "naive: NaN"}
        naive = next(c for c in f16_numpy[0].curves if c.method == "naive")
        n_nonfinite = int(np.sum(~np.isfinite(naive.loss)))
        assert sum(len(c.get_offsets()) for c in markers.values()) == n_nonfinite > 0
    finally:
        plots.close(fig)


def _vlines(ax):
    return [line.get_xdata()[0] for line in ax.get_lines()
            if len(line.get_xdata()) == 2 and line.get_xdata()[0] == line.get_xdata()[1]]


def test_breakdown_lines_sit_at_the_exact_breakdown(f16_numpy):
    # DESIGN.md: naive float16 saturates op by op at x = 7.625 and exp(-x) overflows from x = -11.09375
    exact = curves.exact_breakdowns(FORMATS["float16"], "numpy", (0.0, 1.0))
    assert exact == {0.0: (7.625, -11.09375), 1.0: (7.625, -11.09375)}
    # the grid only brackets them: its first non-finite points lie just beyond
    pos, neg = plots.grid_breakdown(f16_numpy[0])
    assert 7.625 <= pos < 8.0 and -11.5 < neg <= -11.09375
    fig = plots.loss_figure(f16_numpy, exact)
    try:
        for ax in fig.axes[:6]:
            assert 7.625 in _vlines(ax) and -11.09375 in _vlines(ax)
        above = sorted(t.get_text() for t in fig.axes[0].texts)
        assert above == ["-11.09", "7.625"]  # short labels over the lines
    finally:
        plots.close(fig)


def test_gradient_panel_plots_the_gradients(f16_numpy):
    fig = plots.loss_figure(f16_numpy)
    try:
        grad_ax = fig.axes[2 * len(f16_numpy)]  # rows: loss, error bits, gradient
        assert grad_ax.get_ylabel() == "d loss / d x"
        lines = {line.get_label(): line for line in grad_ax.get_lines()}
        softplus = next(c for c in f16_numpy[0].curves if c.method == "softplus")
        np.testing.assert_array_equal(lines["softplus"].get_ydata(), softplus.grad)
        np.testing.assert_array_equal(lines["reference (mpmath)"].get_ydata(), f16_numpy[0].grad_reference)
    finally:
        plots.close(fig)


def test_clamp_shading_agrees_with_compare(f32_torch):
    """Issue 15: `compare 200 1 --dtype float32` says clamped, so the shaded band must not stop near 100. Every
    grid point of the figure is shaded exactly where compare's status of `clamped` is 'clamped'."""
    from stabcli.commands.compare import run_compare
    from stabcli.losses.bce import Inputs

    cs = f32_torch[1.0]
    spans = plots.clamp_spans(cs)
    inside = lambda v: any(lo <= v <= hi for lo, hi in spans)  # noqa: E731
    one = run_compare(Inputs(np.array([200.0]), np.array([1.0]), np.ones(1), np.ones(1)), [FORMATS["float32"]],
                      ("torch",))
    assert {r.method: r.status for r in one.rows}["clamped"] == "clamped" and inside(200.0)
    n = cs.x.size
    many = run_compare(Inputs(cs.x, np.ones(n), np.ones(n), np.ones(n), reduction="none"), [FORMATS["float32"]],
                       ("torch",), methods=["clamped"])
    status = np.asarray(next(r for r in many.rows if r.method == "clamped").status)
    assert (status == "clamped").any() and (status != "clamped").any()
    np.testing.assert_array_equal(np.array([inside(v) for v in cs.x]), status == "clamped")
    fig = plots.loss_figure([cs])
    try:  # and the figure draws those spans, in each of its three panels
        for ax in fig.axes[:3]:
            drawn = sorted((round(p.get_x(), 9), round(p.get_x() + p.get_width(), 9)) for p in ax.patches
                           if p.get_gid() != "nonfinite-band")  # the band that holds the inf/NaN markers
            assert drawn == sorted((round(lo, 9), round(hi, 9)) for lo, hi in spans)
    finally:
        plots.close(fig)


def test_overview_strips_are_the_sweep_point_by_point():
    """The strips judge every swept logit as the sweep engine does: their status counts are the sweep's counts."""
    fmts = [FORMATS["float16"], FORMATS["float32"]]
    grid = make_grid()
    for target in (0.0, 1.0):
        sweep = run_sweep(fmts, ["numpy", "torch"], [target], grid, grad=False)
        strips = {(s.backend, s.dtype, s.method): s for s in status_strips(fmts, ["numpy", "torch"], [target], grid)}
        for row in sweep.rows:
            strip = strips[(row.backend, row.dtype, row.method)]
            assert strip.every_point and strip.x.size == row.points
            counts = np.bincount(strip.code, minlength=5)
            assert counts.tolist() == [row.counts[k] for k in ("ok", "inaccurate", "clamped", "inf", "nan")], row


def test_overview_draws_the_real_segments(overview_all):
    """Issue 12: float32 torch softplus was painted yellow for |x| > 92 though only a few of 4001 points are off.
    Now each painted stretch is a run of equal statuses at the swept logits."""
    sweep, strips = overview_all
    strip = next(s for s in strips if (s.backend, s.dtype, s.method) == ("torch", "float32", "softplus"))
    off = int((strip.code != 0).sum())
    assert 0 < off < 20  # a handful of points, not everything past the first one
    fig = plots.overview_figure(sweep, strips)
    try:
        ax = fig.axes[1]  # torch (its y labels are the shared ones of the numpy panel)
        y = [t.get_text() for t in fig.axes[0].get_yticklabels()].index("float32 · softplus")  # tick i: row i
        painted = {}
        for coll in ax.collections:
            paths = coll.get_paths()
            if not paths:
                continue
            ys = {round(float(p.vertices[:, 1].min() + p.vertices[:, 1].max()) / 2, 3) for p in paths}
            if ys == {float(y)}:
                painted[tuple(np.round(coll.get_facecolor()[0][:3], 3))] = len(paths)
        from matplotlib.colors import to_rgb

        yellow = tuple(np.round(to_rgb(plots.STATUS_COLOURS["inaccurate"]), 3))
        assert painted.get(yellow, 0) == len(plots.runs(strip.code == 1))
        total_bad = sum(n for colour, n in painted.items() if colour != tuple(np.round(to_rgb("#009E73"), 3)))
        assert total_bad == sum(len(plots.runs(strip.code == c)) for c in (1, 2)) + \
            len(plots.runs(strip.code >= 3))
    finally:
        plots.close(fig)


def test_overview_says_n_a_and_labels_the_exact_breakdowns(overview_all):
    sweep, strips = overview_all
    fig = plots.overview_figure(sweep, strips)
    try:
        numpy_ax, torch_ax = fig.axes[:2]
        labels = [t.get_text() for t in numpy_ax.get_yticklabels()]
        assert labels[::-1][:6] == [f"float16 · {m}" for m in ("naive", "clamped", "logsumexp", "softplus",
                                                                 "torch_bce", "torch_bce_with_logits")]
        na = [t.get_text() for t in numpy_ax.texts if t.get_text().startswith("n/a")]
        assert na == ["n/a: not available in the numpy backend"] * 8  # 2 torch-only methods x 4 dtypes
        assert not [t for t in torch_ax.texts if t.get_text().startswith("n/a")]
        texts = {t.get_text().strip() for t in numpy_ax.texts}
        # DESIGN.md: op by op naive breaks at 7.625 (float16), 5.5625 (bfloat16), 16.64 (float32, 16.6355...),
        # and exp overflows from -11.09375 (float16), -89 (bfloat16), -88.72 and -709.78
        assert {"7.625", "-11.09", "5.5625", "-89", "16.64", "-88.72", "36.74", "-709.78"} <= texts
    finally:
        plots.close(fig)


# --- slides ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["loss", "error", "grad"])
def test_slides_are_16_9_with_large_text_and_no_layout_faults(kind, f32_torch):
    fig = plots.slide_figure(kind, f32_torch[0.0], (16.63553237915039, -88.72283935546875))
    try:
        w, h = fig.get_size_inches() * fig.dpi
        assert (round(w), round(h)) == (1920, 1080)
        sizes = {t.get_text(): t.get_fontsize() for t, _ in _texts(fig)}
        assert min(sizes.values()) >= plots.SLIDE_FONT, {k: v for k, v in sizes.items() if v < plots.SLIDE_FONT}
        assert layout_faults(fig) == []
        above = [t.get_text() for t in fig.axes[0].texts]
        assert sorted(above) == ["-88.72", "16.64"]
    finally:
        plots.close(fig)


def test_overview_slide():
    fmts = [FORMATS["float16"]]
    sweep = curves.figures_sweep(fmts, ["numpy", "torch"], [0.0, 1.0])
    fig = plots.slide_overview(sweep, status_strips(fmts, ["numpy", "torch"], [0.0, 1.0], sweep.grid))
    try:
        sizes = [t.get_fontsize() for t, _ in _texts(fig)]
        assert min(sizes) >= plots.SLIDE_FONT
        assert layout_faults(fig) == []
    finally:
        plots.close(fig)


def test_plot_slide_command_writes_deterministic_slides(tmp_path):
    runner = CliRunner()
    args = ["plot", "--slide", "loss", "--dtype", "float16", "--backend", "torch", "--target", "0"]
    for out in (tmp_path / "a", tmp_path / "b"):
        result = runner.invoke(cli, [*args, "--out", str(out)])
        assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == ["slide_loss_float16_torch_y0.png", "slide_loss_float16_torch_y0.svg"]
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    png = (tmp_path / "a" / names[0]).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(png[16:20], "big") == 1920  # IHDR width


# --- the command ----------------------------------------------------------------------------------------------

def test_plot_command_writes_valid_files_deterministically(tmp_path):
    runner = CliRunner()
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        result = runner.invoke(cli, ["plot", "--dtype", "float16", "--backend", "numpy", "--out", str(out)])
        assert result.exit_code == 0, result.output
    names = ["bce_float16_numpy.png", "bce_float16_numpy.svg", "breakdown_overview.png", "breakdown_overview.svg"]
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes()
    assert (a / "bce_float16_numpy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in (a / "bce_float16_numpy.svg").read_bytes()[:500]
    assert sorted(p.name for p in a.iterdir()) == sorted(names)


def test_sweep_plot_of_several_dtypes_is_the_overview_of_its_own_logits(tmp_path):
    out = tmp_path / "o.png"
    result = CliRunner().invoke(cli, ["sweep", "--dtype", "float16", "--dtype", "bfloat16", "--backend", "numpy",
                                      "--exhaustive", "--no-grad", "--format", "json", "--plot", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "args, needle",
    [(["--format", "gif"], "gif"), (["--target", "1.5"], "1.5"), (["--dtype", "float8"], "float8"),
     (["--slide", "pie"], "pie")],
)
def test_plot_bad_input(tmp_path, args, needle):
    result = CliRunner().invoke(cli, ["plot", "--out", str(tmp_path / "f"), *args])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and needle in lines[0]
    assert not (tmp_path / "f").exists() or not any((tmp_path / "f").iterdir())


def test_plot_refuses_an_unwritable_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = CliRunner().invoke(cli, ["plot", "--out", str(blocker / "sub")])
    assert result.exit_code == 2 and result.output.startswith("Error: --out")


FIGURES_MATPLOTLIB = "3.11.2"  # the matplotlib that drew the committed figures/ (its SVG output is version-specific)


def test_committed_figures_are_current():
    """figures/ must be what `stabcli plot` makes now; refresh with `stabcli plot --out figures` (and the two
    slides the README shows with `stabcli plot --slide loss --dtype float32 --backend torch --target 0 --out
    figures/slides`, `stabcli plot --slide overview --dtype float16 --out figures/slides`).

    Checked byte for byte on the four 16-bit figures (they are quick to draw) and the README's two slides; the
    float32/float64 figures and the overview come from the same code path.
    """
    import pathlib
    import tempfile

    import matplotlib

    folder = pathlib.Path(__file__).resolve().parent.parent / "figures"
    names = [f"bce_{d}_{b}.svg" for d in ("float16", "bfloat16") for b in ("numpy", "torch")]
    assert all((folder / n).exists() for n in names), "figures/ is incomplete: run `stabcli plot --out figures`"
    if matplotlib.__version__ != FIGURES_MATPLOTLIB:
        pytest.skip(f"figures/ were drawn by matplotlib {FIGURES_MATPLOTLIB}, this is {matplotlib.__version__}")
    dtypes = [FORMATS["float16"], FORMATS["bfloat16"]]
    sweep = curves.figures_sweep(dtypes, ["numpy", "torch"], [0.0, 1.0], ["naive"])
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in dtypes:
            for backend in ("numpy", "torch"):
                fig = plots.loss_figure([curve_set(fmt, backend, y) for y in (0.0, 1.0)],
                                        curves.breakdowns(sweep, fmt.name, backend))
                try:
                    plots.save(fig, pathlib.Path(tmp), f"bce_{fmt.name}_{backend}", ("svg",))
                finally:
                    plots.close(fig)
        slides = pathlib.Path(tmp) / "slides"
        plots.write_slides(slides, ("svg",), "loss",
                           curves.slide_figures("loss", [FORMATS["float32"]], ["torch"], [0.0]))
        plots.write_slides(slides, ("svg",), "overview",
                           curves.slide_figures("overview", [FORMATS["float16"]], ["numpy", "torch"], [0.0, 1.0]))
        names += ["slides/slide_loss_float32_torch_y0.svg", "slides/slide_overview_float16.svg"]
        for name in names:
            fresh = (pathlib.Path(tmp) / name).read_bytes()
            assert hashlib.sha256(fresh).hexdigest() == hashlib.sha256((folder / name).read_bytes()).hexdigest(), name


# --- a sweep's figure draws what the sweep ran ---------------------------------------------------------------

def _legend_labels(fig) -> set[str]:
    return {t.get_text() for legend in fig.legends for t in legend.get_texts()}


@pytest.mark.parametrize("loss, kwargs, left_out", [
    # F.binary_cross_entropy has no pos_weight, so a sweep with --pos-weight 2 leaves torch_bce out (DESIGN.md)
    ("bce", {"pos_weight": 2.0}, "torch_bce"),
    # F.nll_loss takes no label smoothing (softmax/__init__.py, own_excluded)
    ("softmax", {"options": {"label_smoothing": 0.1}}, "torch_log_softmax_nll"),
])
def test_sweep_figure_draws_the_methods_the_sweep_ran(loss, kwargs, left_out):
    sweep = run_sweep([FORMATS["float32"]], ["torch"], [0, 1], make_grid(-50.0, 50.0, 41), grad=False, loss=loss,
                      **kwargs)
    figure = curves.sweep_figure(sweep)
    rows = {(r.target, r.method) for r in sweep.rows}
    drawn = {(cs.target, c.method) for cs in figure.curve_sets for c in cs.curves}
    assert left_out not in {m for _, m in rows}
    assert drawn == rows
    fig = plots.draw(figure)
    try:
        assert {m for _, m in rows} <= _legend_labels(fig) and left_out not in _legend_labels(fig)
    finally:
        plots.close(fig)


def test_sweep_overview_strips_are_the_sweeps_rows():
    """With several dtypes the figure is the overview: a strip for each (backend, dtype, method) the sweep ran."""
    fmts = [FORMATS["float16"], FORMATS["float32"]]
    sweep = run_sweep(fmts, ["numpy", "torch"], [0.0], make_grid(-50.0, 50.0, 41), pos_weight=2.0, grad=False)
    figure = curves.sweep_figure(sweep)
    assert {(s.backend, s.dtype, s.method) for s in figure.strips} == \
        {(r.backend, r.dtype, r.method) for r in sweep.rows}


def _heights(ax, ys):
    return ax.transAxes.inverted().transform(ax.transData.transform(np.column_stack([np.zeros(len(ys)), ys])))[:, 1]


@pytest.mark.parametrize("kind", ["loss", "grad"])
def test_inf_and_nan_markers_sit_in_a_band_no_value_reaches(kind, f32_torch, f16_numpy):
    # The legend said "NaN (top edge)" while the NaN markers sat at 0.9 of the panel: 100 on the float32 torch
    # target-0 loss slide, exactly torch_bce's capped loss there. Now they sit in a grey band at the top, above
    # every finite value plotted and every y tick.
    figures = [plots.slide_figure(kind, f32_torch[0.0], (16.63553237915039, -88.72283935546875)),
               plots.loss_figure(f16_numpy, None)]
    try:
        checked = 0
        for fig in figures:
            for ax in fig.axes:
                markers = [c for c in ax.collections if c.get_offsets().size and c.get_label().endswith(
                    ("inf", "NaN", "(grad)"))]
                if not markers:
                    continue
                finite = np.concatenate([line.get_ydata()[np.isfinite(line.get_ydata())] for line in ax.get_lines()
                                         if line.get_label() != "_breakdown" and len(line.get_ydata()) > 2])
                assert _heights(ax, finite).max() <= plots.HEADROOM + 1e-9
                for c in markers:
                    assert (c.get_offsets()[:, 1] > plots.BAND).all()  # axes-fraction heights
                assert (_heights(ax, ax.get_yticks()) < plots.BAND).all()
                checked += 1
        assert checked >= 2
        texts = [t.get_text() for t in figures[0].legends[0].get_texts()] if figures[0].legends else \
            [t.get_text() for ax in figures[0].axes if ax.get_legend() for t in ax.get_legend().get_texts()]
        if kind == "loss":
            assert "NaN (grey band at the top)" in texts and "NaN (top edge)" not in texts
    finally:
        for fig in figures:
            plots.close(fig)
