"""Figures: the plotted data (not pixels), valid deterministic files, and the plot command's errors."""

import hashlib

import numpy as np
import pytest
from click.testing import CliRunner

from stabcli.present import plots
from stabcli.cli import cli
from stabcli.commands.curves import curve_set
from stabcli.core.formats import FORMATS


@pytest.fixture(scope="module")
def f16_numpy():
    return [curve_set(FORMATS["float16"], "numpy", y) for y in (0.0, 1.0)]


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
    exact = plots.exact_breakdowns(FORMATS["float16"], "numpy", (0.0, 1.0))
    assert exact == {0.0: (7.625, -11.09375), 1.0: (7.625, -11.09375)}
    # the grid only brackets them: its first non-finite points lie just beyond
    pos, neg = plots.grid_breakdown(f16_numpy[0])
    assert 7.625 <= pos < 8.0 and -11.5 < neg <= -11.09375
    fig = plots.loss_figure(f16_numpy, exact)
    try:
        for ax in fig.axes[:6]:
            assert 7.625 in _vlines(ax) and -11.09375 in _vlines(ax)
        assert "x ≥ 7.625 and x ≤ -11.09375" in fig._suptitle.get_text()
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


def test_overview_figure_has_a_bar_row_per_dtype_and_method():
    from stabcli.commands.sweep import make_grid, run_sweep

    sweep = run_sweep([FORMATS["float16"]], ["numpy"], [0.0, 1.0], make_grid(exhaustive=True))
    fig = plots.overview_figure(sweep)
    try:
        ax = fig.axes[0]
        labels = [t.get_text() for t in ax.get_yticklabels()]
        assert labels == [f"float16 · {m}" for m in ("naive", "clamped", "logsumexp", "softplus")][::-1]
        texts = [t.get_text().strip() for t in ax.texts]
        assert "7.625" in texts and "-11.09375" in texts  # naive's breakdown labels (DESIGN.md)
    finally:
        plots.close(fig)


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


@pytest.mark.parametrize(
    "args, needle",
    [(["--format", "gif"], "gif"), (["--target", "1.5"], "1.5"), (["--dtype", "float8"], "float8")],
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
    """figures/ must be what `stabcli plot` makes now; refresh with `stabcli plot --out figures`.

    Checked byte for byte on the four 16-bit figures (they are quick to draw); the float32/float64 ones and the
    overview come from the same code path.
    """
    import pathlib
    import tempfile

    import matplotlib

    folder = pathlib.Path(__file__).resolve().parent.parent / "figures"
    names = [f"bce_{d}_{b}.svg" for d in ("float16", "bfloat16") for b in ("numpy", "torch")]
    assert all((folder / n).exists() for n in names), "figures/ is incomplete: run `stabcli plot --out figures`"
    if matplotlib.__version__ != FIGURES_MATPLOTLIB:
        pytest.skip(f"figures/ were drawn by matplotlib {FIGURES_MATPLOTLIB}, this is {matplotlib.__version__}")
    from stabcli.present import plots
    from stabcli.core.formats import FORMATS

    with tempfile.TemporaryDirectory() as tmp:
        for dtype in ("float16", "bfloat16"):
            for backend in ("numpy", "torch"):
                fig = plots.loss_figure([curve_set(FORMATS[dtype], backend, y) for y in (0.0, 1.0)],
                                        plots.exact_breakdowns(FORMATS[dtype], backend, (0.0, 1.0)))
                try:
                    plots.save(fig, pathlib.Path(tmp), f"bce_{dtype}_{backend}", ("svg",))
                finally:
                    plots.close(fig)
        for name in names:
            fresh = (pathlib.Path(tmp) / name).read_bytes()
            assert hashlib.sha256(fresh).hexdigest() == hashlib.sha256((folder / name).read_bytes()).hexdigest(), name
