"""The command line: parses options, calls the numeric core, prints what ``render.py`` returns.

Kept thin on purpose. Heavy modules (numpy, the core, torch, mpmath, matplotlib) are imported inside the
commands, so ``stabcli --help`` starts as fast as click allows.
"""

from __future__ import annotations

import sys

import click

from stabcli import __version__

DTYPE_CHOICES = ("float16", "bfloat16", "float32", "float64", "all")
BACKEND_CHOICES = ("numpy", "torch", "all")
FORMAT_CHOICES = ("table", "json", "csv")


class UserError(click.ClickException):
    """A bad value from the user: printed as one `Error:` line, exit code 2."""

    exit_code = 2


class StabcliGroup(click.Group):
    """A click group whose usage errors are one `Error:` line (no usage block), exit code 2, no traceback."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            exc.ctx = None  # drop the usage block and hint: one line says what is wrong
            exc.show()
            sys.exit(2)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        if standalone_mode:
            sys.exit(rv if isinstance(rv, int) else 0)
        return rv


def _core_errors(func):
    """Turn the core's StabcliError into a UserError at the CLI edge."""
    import functools

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from stabcli.errors import StabcliError

        try:
            return func(*args, **kwargs)
        except StabcliError as exc:
            raise UserError(str(exc)) from None

    return wrapper


# --- shared options ------------------------------------------------------------------------------------------

def dtype_option(func):
    return click.option(
        "--dtype", "dtypes", multiple=True, type=click.Choice(DTYPE_CHOICES, case_sensitive=False),
        help="Format to evaluate in; repeat for several. [default: all]",
    )(func)


def backend_option(func):
    return click.option(
        "--backend", "backends", multiple=True, type=click.Choice(BACKEND_CHOICES, case_sensitive=False),
        help="numpy (op by op, every intermediate rounded) or torch (real kernels); repeatable. [default: all]",
    )(func)


def format_option(func):
    return click.option(
        "--format", "output_format", type=click.Choice(FORMAT_CHOICES, case_sensitive=False), default="table",
        show_default=True, help="table for people; json (strict, one document) or csv for scripts.",
    )(func)


def tolerance_options(func):
    for name, what in (("--atol", "absolute"), ("--rtol", "relative")):
        func = click.option(
            name, type=float, default=None,
            help=f"{what.capitalize()} tolerance of the allclose rule |loss-ref| <= atol + rtol·|ref|. "
                 f"[default: per dtype, see README]",
        )(func)
    return func


def weight_options(func):
    func = click.option("--pos-weight", default="1", show_default=True,
                        help="pos_weight (number or list, >= 0): scales the target-1 term.")(func)
    func = click.option("--weight", default="1", show_default=True,
                        help="Per-element weight (number or list, >= 0).")(func)
    return func


def _backends(names) -> list[str]:
    chosen = [n.lower() for n in names] or ["all"]
    return [b for b in ("numpy", "torch") if "all" in chosen or b in chosen]


def _check_tolerance(value, name):
    import math

    if value is not None and not (math.isfinite(value) and value >= 0):
        raise UserError(f"{name} {value!r} is not allowed; tolerances are finite numbers >= 0")


def _emit(output_format: str, as_json, as_csv, as_table) -> None:
    """Print a result as strict JSON, CSV, or rich tables (``as_table`` gets the console width)."""
    fmt = output_format.lower()
    if fmt == "json":
        click.echo(as_json())
    elif fmt == "csv":
        click.echo(as_csv(), nl=False)
    else:
        from rich.console import Console

        console = Console()
        console.print(as_table(console.width))


# --- commands ------------------------------------------------------------------------------------------------

@click.group(cls=StabcliGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="stabcli")
def cli():
    """Explore where binary cross-entropy breaks in float16, bfloat16, float32 and float64.

    Compares the naive BCELoss(sigmoid(x), y) with the log-sum-exp / softplus form of BCEWithLogitsLoss(x, y),
    op by op in numpy and with real torch kernels, against exact values from mpmath.

    \b
    Example:
        stabcli demo
        stabcli compare 1e10 1
    """


@cli.command(context_settings={"ignore_unknown_options": True},
             short_help="Every method on given logits and targets against the exact loss.")
@click.argument("logits")
@click.argument("targets")
@dtype_option
@backend_option
@weight_options
@click.option("--reduction", type=click.Choice(("mean", "sum", "none"), case_sensitive=False), default="mean",
              show_default=True, help="How per-element losses are combined, as in torch.")
@tolerance_options
@format_option
@click.option("--steps/--no-steps", default=True, show_default=True,
              help="For a single logit, show every method's trace step by step.")
@_core_errors
def compare(logits, targets, dtypes, backends, weight, pos_weight, reduction, atol, rtol, output_format, steps):
    """Compare every method on LOGITS and TARGETS against the exact loss.

    LOGITS and TARGETS are a number or a comma-separated list (broadcast like torch); nested lists such as
    [[0.1,0.2],[0.3,0.4]] work too. Logits may be inf, -inf or nan; negative numbers need no `--`.
    For a single logit every method's steps are shown, with what went wrong and why. Every row also
    carries the gradient d loss / d x (autograd in torch, op-by-op derivative in numpy) against mpmath.

    \b
    Example:
        stabcli compare 1e10 1
        stabcli compare -100 1 --dtype float32 --backend torch
        stabcli compare 1,2,3 0,1,1 --reduction none --format json
    """
    import numpy as np

    from stabcli import inputs as parse
    from stabcli.compare import Inputs, run_compare
    from stabcli.formats import parse_dtypes

    _check_tolerance(atol, "--atol")
    _check_tolerance(rtol, "--rtol")
    for text, name in ((logits, "LOGITS"), (targets, "TARGETS")):
        if text.startswith("--"):
            raise UserError(f"no such option {text!r}; see 'stabcli compare --help'")
    x = parse.parse_array(logits, "logit")
    y = parse.parse_array(targets, "target")
    parse.check_targets(y, targets)
    w = parse.parse_array(weight, "weight")
    parse.check_weights(w, weight, "weight")
    pw = parse.parse_array(pos_weight, "pos_weight")
    parse.check_weights(pw, pos_weight, "pos_weight")
    shape = parse.broadcast({"logits": (x, logits), "targets": (y, targets), "weight": (w, weight),
                             "pos_weight": (pw, pos_weight)})
    inp = Inputs(*(np.broadcast_to(a, shape) for a in (x, y, w, pw)), reduction=reduction.lower())
    result = run_compare(inp, parse_dtypes(dtypes), _backends(backends), rtol=rtol, atol=atol)
    if not steps:
        for row in result.rows:
            row.steps = None
    from stabcli import render

    _emit(output_format, lambda: render.compare_json(result), lambda: render.compare_csv(result),
          lambda width: render.compare_renderable(result))


def _writable_folder(path: str):
    """Check that ``path`` is, or can be made, a writable folder; nothing is created here (the figures' writer
    makes it), so a refused command leaves nothing behind."""
    import os
    from pathlib import Path

    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"--out {path!r} is a file; give a folder to write the figures into")
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"--out {path!r} cannot be created: {str(existing)!r} is a file; give a folder you can write")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"--out {path!r} cannot be written ({str(existing)!r} is not writable); give a folder you "
                        "can write")
    return folder


def _targets(texts, default=("0", "1")) -> list[float]:
    """--target values: numbers in [0, 1], duplicates dropped, order kept."""
    from stabcli import inputs as parse

    ys: list[float] = []
    for text in texts or default:
        y = parse.parse_number(str(text), "--target", "a number in [0, 1]")
        if not (0 <= y <= 1):
            raise UserError(f"--target {text!r} is outside [0, 1]; targets are probabilities in [0, 1]")
        if y not in ys:
            ys.append(y)
    return ys


def _plot_formats(text: str) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(p.strip().lower() for p in text.split(",") if p.strip()))
    bad = [p for p in chosen if p not in ("png", "svg")]
    if bad or not chosen:
        raise UserError(f"--format {text!r} is not allowed; use png, svg or png,svg")
    return chosen


@cli.command(short_help="Write figures of loss and error against the logit.")
@dtype_option
@backend_option
@click.option("--target", "targets", multiple=True,
              help="Target y in [0, 1] to plot (a column of panels each); repeatable. [default: 0 and 1]")
@click.option("--out", default="figures", show_default=True, help="Folder to write the figures into.")
@click.option("--format", "formats", default="png,svg", show_default=True, help="png, svg or png,svg.")
@_core_errors
def plot(dtypes, backends, targets, out, formats):
    """Write, per dtype and backend, a figure of every method's loss and error against the logit.

    Non-finite losses are markers at the panel's top edge, the naive breakdown logits are dashed lines, and the
    region where the -100 clamp changes the answer is shaded. Output is deterministic (same bytes every run).

    \b
    Example:
        stabcli plot --out figures
        stabcli plot --dtype float16 --backend numpy --format png
    """
    from stabcli.formats import parse_dtypes

    chosen = _plot_formats(formats)
    ys = _targets(targets)
    folder = _writable_folder(out)
    from stabcli import plots

    try:
        written = plots.write_figures(folder, chosen, parse_dtypes(dtypes), _backends(backends), ys)
    except OSError as exc:  # os.access can say yes where writing fails (root on /proc, read-only mounts, a full disk)
        raise UserError(f"--out {out!r} cannot be written ({exc.strerror or exc}); give a folder you can write") from None
    for path in written:
        click.echo(str(path))

def _scalar(text: str, what: str) -> float:
    """One number from an option that the sweep needs as a single value (weight, pos_weight)."""
    from stabcli import inputs as parse

    value = parse.parse_number(str(text), what, "one finite number >= 0")
    if not (value >= 0 and value != float("inf")):
        raise UserError(f"{what} {text!r} is not allowed; for a sweep give one finite number >= 0")
    return value


@cli.command(context_settings={"ignore_unknown_options": False},
             short_help="Where each method gives inf, NaN or wrong losses over many logits.")
@dtype_option
@backend_option
@click.option("--target", "targets", multiple=True,
              help="Target y in [0, 1] (soft targets allowed); repeat for several. [default: 0 and 1]")
@weight_options
@tolerance_options
@format_option
@click.option("--min", "xmin", type=float, default=None, help="Smallest logit of the grid. [default: -1e4]")
@click.option("--max", "xmax", type=float, default=None, help="Largest logit of the grid. [default: 1e4]")
@click.option("--points", type=float, default=None,
              help="Number of grid points, 2 to 1e9 (1e6 works). [default: 4001]")
@click.option("--spacing", type=click.Choice(("linear", "log"), case_sensitive=False), default=None,
              help="linear, or log on each side of 0 from ±1e-4 outward (plus 0). [default: log]")
@click.option("--exhaustive", is_flag=True,
              help="Every finite value of the dtype instead of a grid (float16, bfloat16; float32's 4.28e9 values "
                   "take about 7 minutes per target on 2 cores with --no-grad, 2-3x that with gradients).")
@click.option("--plot", "plot_path", default=None, metavar="PATH",
              help="Also write the sweep's figure (.png or .svg): loss, error and gradient curves for one dtype and "
                   "backend, else the breakdown overview.")
@click.option("--grad/--no-grad", default=True, show_default=True,
              help="Also sweep each method's gradient d loss/d x: counts of inf/NaN, vanished and off-tolerance "
                   "gradients and where they start. On by default: it costs about 1.5x the time of a loss-only "
                   "sweep (the default sweep: 3.1 s -> 4.6 s); --no-grad skips it.")
@_core_errors
def sweep(dtypes, backends, targets, weight, pos_weight, atol, rtol, output_format, xmin, xmax, points, spacing,
          exhaustive, plot_path, grad):
    """Count, per method, where the loss is inf, NaN, clamped or inaccurate over many logits, and where it breaks.

    The grid brackets each breakdown; a search over the dtype's representable values then pins the exact logit
    closest to 0 on each side. The same is done for the gradient d loss/d x (unless --no-grad): where it is
    inf/NaN, vanishes (0 where the true gradient is not) or leaves the tolerance. Progress is shown on stderr when
    it is a terminal.

    \b
    Example:
        stabcli sweep --dtype float16
        stabcli sweep --dtype all --backend all
        stabcli sweep --dtype bfloat16 --exhaustive --target 0.3 --format json
        stabcli sweep --dtype float32 --min -200 --max 200 --points 1e6 --spacing linear
        stabcli sweep --dtype float16 --backend numpy --plot float16.png
        stabcli sweep --dtype float16 --exhaustive --no-grad
    """
    import math

    from stabcli.formats import parse_dtypes
    from stabcli.sweep import make_grid, run_sweep, total_points

    _check_tolerance(atol, "--atol")
    _check_tolerance(rtol, "--rtol")
    ys = _targets(targets)
    if points is not None and not (math.isfinite(points) and points == int(points)):
        raise UserError(f"--points {points:g} is not allowed; give a whole number of points")
    grid = make_grid(xmin, xmax, None if points is None else int(points), spacing, exhaustive)
    formats = parse_dtypes(dtypes)
    w, pw = _scalar(weight, "--weight"), _scalar(pos_weight, "--pos-weight")
    fmt = output_format.lower()
    show_progress = fmt == "table" and _stderr_is_terminal()
    if plot_path is not None:
        _plot_target(plot_path)
    from stabcli import render

    if show_progress:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        total = sum(total_points(grid, f) for f in formats) * len(ys)
        with Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("sweep", total=total)
            result = run_sweep(formats, _backends(backends), ys, grid, w, pw, rtol, atol,
                               progress=lambda n: bar.advance(task, n), grad=grad)
    else:
        result = run_sweep(formats, _backends(backends), ys, grid, w, pw, rtol, atol, grad=grad)
    _emit(output_format, lambda: render.sweep_json(result), lambda: render.sweep_csv(result),
          lambda width: render.sweep_renderable(result, width))
    if plot_path is not None:
        from stabcli import plots

        try:
            written = plots.write_sweep_figure(result, plot_path)
        except OSError as exc:
            raise UserError(f"--plot {plot_path!r} cannot be written ({exc.strerror or exc})") from None
        click.echo(f"figure written to {written}", err=True)


def _plot_target(path: str):
    """Check a --plot PATH before any work: a .png or .svg file in a folder that exists and can be written."""
    import os
    from pathlib import Path

    target = Path(path)
    if target.suffix.lower() not in (".png", ".svg"):
        raise UserError(f"--plot {path!r} must end in .png or .svg")
    folder = target.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"--plot {path!r}: the folder {str(folder)!r} does not exist or cannot be written")
    if target.is_dir():
        raise UserError(f"--plot {path!r} is a folder; give a file name ending in .png or .svg")


@cli.command(short_help="Breakdown logits predicted from each format, next to those measured.")
@dtype_option
@tolerance_options
@format_option
@_core_errors
def thresholds(dtypes, atol, rtol, output_format):
    """Breakdown logits predicted from each format's constants, next to those the sweep engine measures.

    The loss's (sigmoid saturating, exp overflowing, the -100 clamp, logsumexp's accuracy) and the gradient's:
    where BCELoss's backward (p-y)/max(p(1-p), 1e-12) gives 0, collapses toward 0 (p(1-p) < 1e-12), or, in float16
    where 1e-12 rounds to 0, -inf and NaN. A measured value that differs from its prediction comes with the reason.
    16-bit formats are measured exhaustively, float32 and float64 on the default grid (float64 uses mpmath for
    its reference and takes a few seconds).

    \b
    Example:
        stabcli thresholds --dtype float16
        stabcli thresholds --format json
    """
    from stabcli import render
    from stabcli.formats import parse_dtypes
    from stabcli.thresholds import run_thresholds

    _check_tolerance(atol, "--atol")
    _check_tolerance(rtol, "--rtol")
    result = run_thresholds(parse_dtypes(dtypes), rtol, atol)
    _emit(output_format, lambda: render.thresholds_json(result), lambda: render.thresholds_csv(result),
          lambda width: render.thresholds_renderable(result))


def _stderr_is_terminal() -> bool:
    """Whether a progress bar can be drawn: stderr is a terminal (not a pipe, a file or CliRunner's capture)."""
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _stdin_is_terminal() -> bool:
    """Whether Enter can be waited for: stdin is a terminal (not a pipe, a file or CliRunner's input)."""
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


def _wait_for_enter(next_number: int, total: int) -> bool:
    """Wait for Enter before step ``next_number``; False when stdin has ended (then the demo runs on)."""
    click.echo(f"Press Enter for step {next_number} of {total} (Ctrl-C to stop) ", nl=False, err=True)
    line = sys.stdin.readline()
    if not line:
        click.echo("", err=True)
        click.echo("stabcli demo: stdin ended; showing the remaining steps without pausing.", err=True)
        return False
    return True


@cli.command(short_help="The classroom walk-through: why BCELoss(sigmoid(1e10), 1) is 0.")
@click.option("--step", "step", type=int, default=None, metavar="N",
              help="Show only step N (1 to 8). [default: all, in order]")
@click.option("--pause", is_flag=True,
              help="Wait for Enter before each next step. Needs a terminal on stdin: without one, a line on "
                   "stderr says so and the demo runs through.")
@click.option("--dtype", type=click.Choice(("float16", "bfloat16", "float32", "float64"), case_sensitive=False),
              default="float32", show_default=True,
              help="Format of every step but 5 (which is about float16).")
@_core_errors
def demo(step, pause, dtype):
    """Walk through why BCELoss(sigmoid(1e10), 1) is 0, in 8 steps with live numbers.

    Every number is computed as its step is shown (compare, sweep and thresholds underneath). By default the
    steps run straight through, so the demo works in a pipe; --pause waits for Enter between them (it has
    nothing to wait for with --step).

    \b
    Steps:
      1  ordinary logits: both formulas agree (the seed article's example)
      2  the logit 1e10: naive NaN or inf, BCELoss 0 or 100, log-sum-exp right
      3  why BCELoss(sigmoid(1e10), 1) is 0, step by step
      4  target 0: the -100 clamp returns 100 where the truth is 1e10
      5  float16: where the naive form breaks, op by op and in torch
      6  the gradient: 0 or NaN where it should be ±1
      7  the fix, BCEWithLogitsLoss, and where it loses relative accuracy
      8  other clips that hide the overflow (Keras, scikit-learn)

    \b
    Example:
        stabcli demo
        stabcli demo --pause
        stabcli demo --step 3
        stabcli demo --step 7 --dtype bfloat16
    """
    from rich.console import Console

    from stabcli import demo as lesson
    from stabcli import render

    if step is not None:
        lesson.check_step(step)
    numbers = [step] if step is not None else list(range(1, lesson.STEP_COUNT + 1))
    waiting = pause and len(numbers) > 1
    if waiting and not _stdin_is_terminal():
        click.echo("stabcli demo: --pause needs a terminal on stdin to wait for Enter; running through without "
                   "pausing.", err=True)
        waiting = False
    console = Console()
    width = min(console.width, render.DEMO_WIDTH)
    steps = lesson.iter_steps(dtype.lower(), numbers)
    for i, number in enumerate(numbers):
        if waiting and i > 0:
            waiting = _wait_for_enter(number, lesson.STEP_COUNT)
        console.print(render.demo_step_renderable(next(steps), lesson.STEP_COUNT), width=width)


def main():
    cli(prog_name="stabcli")


if __name__ == "__main__":
    main()
