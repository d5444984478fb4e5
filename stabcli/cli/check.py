"""`stabcli check`: read LOGITS and TARGETS from files, run the check engine (a progress bar on a terminal), print."""

from __future__ import annotations

import click

from stabcli import names
from stabcli.cli import options


@click.command(short_help="Every method on your own logits and targets, read from files.")
@click.argument("logits", metavar="LOGITS")
@click.argument("targets", metavar="TARGETS")
@click.option("--key", default=None, help="The array of LOGITS to use in a .npz, .pt/.pth (a dict; nested keys as "
                                          "a.b) or .safetensors file holding several.")
@click.option("--targets-key", default=None, help="The same for TARGETS (they may be two keys of one file).")
@options.loss_option
@options.dtype_option(default="the logits file's own dtype (float32 for text and integers)")
@options.backend_option
@click.option("--weight", type=options.Number("one finite number >= 0", minimum=0), default=1.0, show_default=True,
              help="One weight for every element (a number >= 0).")
@click.option("--pos-weight", type=options.Number("one finite number >= 0", minimum=0), default=None,
              help="pos_weight (a number >= 0). [default: 1]")
@options.label_smoothing_option
@options.tolerance_options
@options.format_option
@options.probs_option
@options.autocast_options
@click.option("--worst", type=options.Number("a whole number from 0 to 1000", whole=True, minimum=0, maximum=1000),
              default=5, show_default=True,
              help="How many of the worst elements each row keeps (with their indices).")
@click.option("--grad/--no-grad", default=True, show_default=True, help="Also check each method's gradient.")
@click.option("--severity", type=click.Choice(names.SEVERITIES, case_sensitive=False), default="accuracy",
              show_default=True,
              help="accuracy: every count, the means and the gradients. training: methods ranked by what breaks "
                   "training (inf/NaN in loss or gradient, then a gradient that stalls), as sweep --severity training.")
@click.option("--plot", "plot_path", default=None, metavar="PATH",
              help="Also write a histogram of the logits with where each method first gives inf/NaN (.png or .svg).")
@options.core_errors
def check(logits, targets, key, targets_key, loss, dtypes, backends, weight, pos_weight, label_smoothing, atol, rtol,
          output_format, probs, autocast_dtype, device, worst, grad, severity, plot_path):
    """Check every method on LOGITS and TARGETS read from files, per backend and dtype.

    Each file is .npy, .npz, .pt/.pth (a tensor or a dict of them), .safetensors, or .csv/.txt (one number a line,
    or comma- or space-separated). Any shapes that broadcast as in torch. The dtype is the logits file's own (float16 stays
    float16; text is float32) unless --dtype says otherwise. Millions of elements stream in chunks; in a 16-bit
    dtype each distinct (logit, target) pair is evaluated once. Per backend, dtype and method: how many elements
    are ok, inaccurate, clamped, inf or NaN, the mean loss next to the exact mean, the gradients, and the worst
    elements with their indices.

    \b
    Example:
        stabcli check logits.npy targets.npy
        stabcli check batch.npz batch.npz --key logits --targets-key targets
        stabcli check out.pt labels.pt --dtype float16 --format json
        stabcli check probs.npy targets.npy --probs --plot hist.png
        stabcli check logits.npy targets.npy --autocast float16
        stabcli check logits.npy targets.npy --severity training
    """
    import math

    from stabcli.commands import check as engine
    from stabcli.core import tensorfile

    severity = severity.lower()
    if severity == "training" and not grad:
        raise options.UserError("--severity training ranks gradients too (inf/NaN, stalled); drop --no-grad")
    spec = options.autocast_spec(autocast_dtype, device, dtypes, backends)
    family = options.family_of(loss, label_smoothing=label_smoothing)
    if probs:
        family = options.probability_family(family)
    if pos_weight is not None and not family.pos_weight:
        raise options.UserError(f"--pos-weight is for --loss bce; --loss {family.name} has none")
    if plot_path is not None:
        options.check_output_file(plot_path, "--plot", (".png", ".svg"))
    lt = tensorfile.load(logits, key, "LOGITS")
    tt = tensorfile.load(targets, targets_key, "TARGETS")
    formats = engine.default_formats(lt, [spec.dtype] if spec is not None else dtypes)
    chosen = options.backends(backends)
    fmt = output_format.lower()
    if not family.streams_files:  # no fast reference: compare's engine, each element against mpmath
        if float(weight) != 1:
            raise options.UserError(f"--weight is one number per element for --loss bce; --loss {family.name} "
                                    "weighs classes: compare takes its --weight (one per class)")
        if severity == "training":
            raise options.UserError(f"--severity training ranks the rows of --loss bce's file engine; --loss "
                                    f"{family.name} is checked row by row against mpmath, with no training ranking: "
                                    "leave --severity out")
        comparison = engine.run_small_check(lt, tt, formats, chosen, rtol, atol, family, spec, label_smoothing)
        result = engine.from_comparison(comparison, lt, tt, int(worst), grad)
    else:
        run = lambda progress=None: engine.run_check(  # noqa: E731
            lt, tt, formats, chosen, float(weight), 1.0 if pos_weight is None else float(pos_weight), rtol, atol,
            loss=family, grad=grad,
            autocast=spec, worst=int(worst), progress=progress)
        tensorfile.broadcast_shape(lt, tt)  # refuse shapes that do not broadcast before any work
        if fmt == "table" and options.stderr_is_terminal():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            total = math.prod(tensorfile.broadcast_shape(lt, tt)) * len(formats)
            with Progress(TextColumn("check"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                          console=options.console(stderr=True), transient=True) as bar:
                task = bar.add_task("check", total=total)
                result = run(lambda n: bar.advance(task, n))
        else:
            result = run()
    written = None
    if plot_path is not None:  # the file first, stdout last: a reader that stops early (| head) still gets it
        from stabcli.core.inputs import shown
        from stabcli.present import plots

        try:
            histogram = engine.logit_histogram(lt, formats[0])
            written = plots.write_check_figure(result, histogram, plot_path)
        except OSError as exc:
            raise options.UserError(f"--plot {shown(plot_path)} cannot be written ({exc.strerror or exc})") from None
    from stabcli.present import check_view as view

    options.emit(output_format, lambda: view.check_json(result), lambda: view.check_csv(result),
                 lambda width: view.check_renderable(result, width, severity), notes=result.notes)
    if written is not None:
        click.echo(f"figure written to {click.format_filename(written)}", err=True)
