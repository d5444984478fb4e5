"""`stabcli compare`: parse LOGITS and TARGETS, run the compare engine, print its view."""

from __future__ import annotations

import click

from stabcli.cli import options


@click.command(context_settings={"ignore_unknown_options": True},
             short_help="Every method on given logits and targets against the exact loss.")
@click.argument("logits")
@click.argument("targets")
@options.dtype_option
@options.backend_option
@options.weight_options
@click.option("--reduction", type=click.Choice(("mean", "sum", "none"), case_sensitive=False), default="mean",
              show_default=True, help="How per-element losses are combined, as in torch.")
@options.tolerance_options
@options.format_option
@click.option("--steps/--no-steps", default=True, show_default=True,
              help="For a single logit, show every method's trace step by step.")
@options.core_errors
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

    from stabcli.core import inputs as parse
    from stabcli.commands.compare import run_compare
    from stabcli.losses.bce import Inputs
    from stabcli.core.formats import parse_dtypes

    for text, name in ((logits, "LOGITS"), (targets, "TARGETS")):
        if text.startswith("--"):
            raise options.UserError(f"no such option {text!r}; see 'stabcli compare --help'")
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
    result = run_compare(inp, parse_dtypes(dtypes), options.backends(backends), rtol=rtol, atol=atol)
    if not steps:
        for row in result.rows:
            row.steps = None
    from stabcli.present import compare_view as view

    options.emit(output_format, lambda: view.compare_json(result), lambda: view.compare_csv(result),
                 lambda width: view.compare_renderable(result), notes=result.notes)
