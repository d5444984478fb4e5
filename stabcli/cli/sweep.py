"""`stabcli sweep`: parse the grid and targets, run the sweep engine (with a progress bar on a terminal), print."""

from __future__ import annotations

import click

from stabcli import names
from stabcli.cli import options


def _scalar(text: str, what: str) -> float:
    """One number from an option that the sweep needs as a single value (weight, pos_weight)."""
    from stabcli.core import inputs as parse

    value = parse.parse_number(str(text), what, "one finite number >= 0", finite=True)
    if not value >= 0:
        raise options.UserError(f"{what} {parse.shown(text)} is not allowed; for a sweep give one finite number >= 0")
    return value


@click.command(context_settings={"ignore_unknown_options": False},
             short_help="Where each method gives inf, NaN or wrong losses over many logits.")
@options.loss_option
@options.dtype_option
@options.backend_option
@click.option("--target", "targets", multiple=True,
              help="Target y in [0, 1] (soft targets allowed); repeat for several. softmax: a class index, or a "
                   "probability vector such as 1,0,0. [default: 0 and 1]")
@options.weight_options
@options.label_smoothing_option
@click.option("--classes", type=options.Number("a whole number of classes from 2 to 1000", whole=True, minimum=2,
                                               maximum=1000), default=None,
              help="softmax: the number of classes of the swept rows [g, 0, ..., 0]. [default: 3]")
@click.option("--shift", type=options.Number("a finite number"), default=None,
              help="softmax: a number added to every logit, [shift + g, shift, ...]: softmax does not change, the "
                   "naive form does. [default: 0]")
@options.tolerance_options
@options.format_option
@click.option("--min", "xmin", type=options.Number("a finite number"), default=None,
              help="Smallest logit of the grid. [default: -1e4]")
@click.option("--max", "xmax", type=options.Number("a finite number"), default=None,
              help="Largest logit of the grid. [default: 1e4]")
@click.option("--points", type=options.Number("a whole number of points from 2 to 1e9", whole=True, minimum=2,
                                              maximum=1e9),  # commands/sweep.py MAX_POINTS
              default=None,
              help="Number of grid points, 2 to 1e9 (1e6 works). [default: 4001]")
@click.option("--spacing", type=click.Choice(names.SPACINGS, case_sensitive=False), default=None,
              help="linear, or log on each side of 0 from ±1e-4 outward (plus 0). [default: log]")
@click.option("--exhaustive", is_flag=True,
              help="Every finite value of the dtype instead of a grid (float8, float16, bfloat16; float32's 4.28e9 values "
                   "take about 7 minutes per target on 2 cores with --no-grad, 2-3x that with gradients).")
@click.option("--plot", "plot_path", default=None, metavar="PATH",
              help="Also write the sweep's figure (.png or .svg): loss, error and gradient curves for one dtype and "
                   "backend, else the breakdown overview.")
@click.option("--grad/--no-grad", default=True, show_default=True,
              help="Also sweep each method's gradient d loss/d x: counts of inf/NaN, vanished and off-tolerance "
                   "gradients and where they start. On by default: it costs about 1.5x the time of a loss-only "
                   "sweep (the default sweep: 3.1 s -> 4.6 s); --no-grad skips it.")
@click.option("--peers", is_flag=True,
              help="Also sweep the peer libraries' real losses where installed (Keras on torch, optax on jax; "
                   "pip install 'stabcli[peers]').")
@click.option("--severity", type=click.Choice(names.SEVERITIES, case_sensitive=False), default="accuracy",
              show_default=True,
              help="accuracy: every count and where each method leaves the tolerance. training: methods ranked by "
                   "what breaks training, inf/NaN in the loss or gradient first, then a gradient that stalls (0 "
                   "where the truth matters), then merely inaccurate; where each first breaks, one line per target.")
@options.autocast_options
@options.core_errors
def sweep(loss, dtypes, backends, targets, weight, pos_weight, label_smoothing, classes, shift, atol, rtol,
          output_format, xmin, xmax, points, spacing, exhaustive, plot_path, grad, peers, severity, autocast_dtype,
          device):
    """Count, per method, where the loss is inf, NaN, clamped or inaccurate over many logits, and where it breaks.

    The grid brackets each breakdown; a search over the dtype's representable values then pins the exact logit
    closest to 0 on each side. The same is done for the gradient d loss/d x (unless --no-grad): where it is
    inf/NaN, vanishes (0 where the true gradient is not) or leaves the tolerance. Progress is shown on stderr when
    it is a terminal.

    With --loss softmax the swept value is the gap g of the logit rows [g, 0, ..., 0] (--classes, --shift),
    the targets are class indices (default 0 and 1) or probability vectors, and the gradient is d loss/d g.

    \b
    Example:
        stabcli sweep --dtype float16
        stabcli sweep --dtype all --backend all
        stabcli sweep --dtype bfloat16 --exhaustive --target 0.3 --format json
        stabcli sweep --min -200 --max 200 --points 1e6 --spacing linear
        stabcli sweep --dtype float16 --backend numpy --plot float16.png
        stabcli sweep --dtype float16 --exhaustive --no-grad
        stabcli sweep --loss softmax --dtype float16 --exhaustive --target 1,0,0
        stabcli sweep --dtype float32 --backend torch --severity training
        stabcli sweep --autocast float16 --exhaustive
    """
    from stabcli.core.formats import parse_dtypes
    from stabcli.commands.sweep import make_grid, run_sweep, total_points

    spec = options.autocast_spec(autocast_dtype, device, dtypes, backends)
    if spec is not None and (peers or plot_path is not None):
        raise options.UserError(f"--autocast cannot be combined with {'--peers' if peers else '--plot'}: "
                                "torch.autocast reaches neither other libraries nor the figures' curves")
    severity = severity.lower()
    if severity == "training" and not grad:
        raise options.UserError("--severity training ranks gradients too (inf/NaN, stalled); drop --no-grad")
    family = options.family_of(loss, label_smoothing=label_smoothing, classes=classes, shift=shift)
    parsed = family.parse_sweep(targets, weight, pos_weight, classes=classes, shift=shift,
                                label_smoothing=label_smoothing)
    if parsed is None:  # an elementwise family: targets in [0, 1], one weight and pos_weight
        ys, w, pw, extra = options.parse_targets(targets), _scalar(weight, "--weight"), \
            _scalar(pos_weight, "--pos-weight"), {}
    else:
        ys, w, pw, extra = parsed
    grid = make_grid(xmin, xmax, points, spacing, exhaustive)
    formats = parse_dtypes([spec.dtype] if spec is not None else dtypes)
    fmt = output_format.lower()
    show_progress = fmt == "table" and options.stderr_is_terminal()
    if plot_path is not None:
        _plot_target(plot_path)
    from stabcli.present import sweep_view as view

    if show_progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        total = sum(total_points(grid, f) for f in formats) * len(ys)
        with Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=options.console(stderr=True), transient=True) as bar:
            task = bar.add_task("sweep", total=total)
            result = run_sweep(formats, options.backends(backends), ys, grid, w, pw, rtol, atol,
                               progress=lambda n: bar.advance(task, n), grad=grad, loss=family.name, options=extra,
                               peers=peers, autocast=spec)
    else:
        result = run_sweep(formats, options.backends(backends), ys, grid, w, pw, rtol, atol, grad=grad,
                           loss=family.name, options=extra, peers=peers, autocast=spec)
    written = None
    if plot_path is not None:  # the file first, stdout last: a reader that stops early (| head) still gets it
        from stabcli.commands.curves import sweep_figure
        from stabcli.core.inputs import shown
        from stabcli.present import plots

        figure = sweep_figure(result, rtol, atol)
        try:
            written = plots.write_sweep_figure(figure, plot_path)
        except OSError as exc:
            raise options.UserError(f"--plot {shown(plot_path)} cannot be written ({exc.strerror or exc})") from None
    options.emit(output_format, lambda: view.sweep_json(result, severity), lambda: view.sweep_csv(result),
                 lambda width: view.sweep_renderable(result, width, severity), notes=result.notes)
    if written is not None:
        click.echo(f"figure written to {click.format_filename(written)}", err=True)


def _plot_target(path: str):
    """Check a --plot PATH before any work: a .png or .svg file in a folder that exists and can be written."""
    options.check_output_file(path, "--plot", (".png", ".svg"))
