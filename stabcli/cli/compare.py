"""`stabcli compare`: parse LOGITS and TARGETS, run the compare engine, print its view."""

from __future__ import annotations

import click

from stabcli import names
from stabcli.cli import options


@click.command(cls=options.NumbersCommand, context_settings={"ignore_unknown_options": True},
             short_help="Every method on given logits and targets against the exact loss.")
@click.argument("logits")
@click.argument("targets")
@options.loss_option
@options.dtype_option
@options.backend_option
@options.weight_options
@click.option("--reduction", type=click.Choice(names.REDUCTIONS, case_sensitive=False), default="mean",
              show_default=True, help="How per-element losses are combined, as in torch.")
@options.label_smoothing_option
@options.tolerance_options
@options.format_option
@click.option("--steps/--no-steps", default=None,
              help="For a single logit (refused for several): --steps shows every dtype's and backend's trace step "
                   "by step; --no-steps none (JSON and CSV then leave the steps out too). [default: the answer, one "
                   "table of every "
                   "dtype, method and backend, and the float32/torch trace]")
@click.option("--peers", is_flag=True,
              help="Also run the peer libraries' real losses where installed (Keras 3 on torch, optax on jax, "
                   "scikit-learn; pip install 'stabcli[peers]'). Off by default: importing Keras alone takes ~4 s.")
@options.probs_option
@options.autocast_options
@options.core_errors
def compare(logits, targets, loss, dtypes, backends, weight, pos_weight, reduction, label_smoothing, atol, rtol,
            output_format, steps, peers, probs, autocast_dtype, device):
    """Compare every method on LOGITS and TARGETS against the exact loss.

    LOGITS and TARGETS are a number or a comma-separated list (broadcast like torch); nested lists such as
    [[0.1,0.2],[0.3,0.4]] work too. Logits may be inf, -inf or nan; negative numbers need no `--`.
    For a single logit every method's steps are shown, with what went wrong and why. Every row also
    carries the gradient d loss / d x (autograd in torch, op-by-op derivative in numpy) against mpmath.

    With --probs, LOGITS holds probabilities p in [0, 1]: naive, clamped and torch_bce take p itself, the logit
    forms the logit recovered from p in float64; the reference is the exact loss at p.

    With --loss softmax, LOGITS is a vector of class logits or rows of them ([[12,0,-12],[1,2,3]]) and
    TARGETS a class index per row, or a probability vector per row (the logits' shape, as torch tells them
    apart); --weight is one per class.

    \b
    Example:
        stabcli compare 1e10 1
        stabcli compare -100 1 --dtype float32 --backend torch
        stabcli compare 1,2,3 0,1,1 --reduction none --format json
        stabcli compare "[[12,0,-12]]" 1 --loss softmax --dtype float16
        stabcli compare "[[1e4,0,0]]" 1 --loss softmax --label-smoothing 0.1
        stabcli compare 1e10 0 --dtype float32 --peers
        stabcli compare 0.8,0.2,0.4 1,0,0 --probs --dtype float32
        stabcli compare 9 0 --autocast float16
        stabcli compare 9 0 --autocast float16 --device cpu
    """
    from stabcli.commands.compare import run_compare
    from stabcli.core.formats import parse_dtypes

    spec = options.autocast_spec(autocast_dtype, device, dtypes, backends)
    if spec is not None and peers:
        raise options.UserError("--peers runs other libraries, which torch.autocast does not reach; drop --peers or "
                                "--autocast")
    for text, name in ((logits, "LOGITS"), (targets, "TARGETS")):
        if text.startswith("--"):
            raise options.UserError(f"no such option {text!r}; see 'stabcli compare --help'")
    family = options.family_of(loss, label_smoothing=label_smoothing)
    if probs:
        family = options.probability_family(family)
        if peers:
            raise options.UserError("--peers takes logits; drop --probs or --peers")
    inp = family.parse_inputs(logits, targets, reduction.lower(), weight=weight, pos_weight=pos_weight,
                              label_smoothing=label_smoothing)
    if steps and (inp.size > 1 or inp.reduction == "none"):  # the trace is of one loss; it was dropped unsaid
        noun = "rows" if family.name == "softmax" else ("probabilities" if probs else "logits")
        what = f"{inp.size:,} {noun}" if inp.size > 1 else "--reduction none"
        raise options.UserError(f"--steps traces a single loss (one logit, or one row with --loss softmax, reduced "
                                f"by mean or sum); with {what} compare shows tables only: drop --steps")
    formats = parse_dtypes([spec.dtype] if spec is not None else dtypes)
    chosen = options.backends(backends)
    if "torch" in chosen and click.get_current_context().find_root().info_name == "stabcli":
        _import_torch_then_freeze()  # only as its own process (main()), not inside a caller's (CliRunner, an app)
    result = run_compare(inp, formats, chosen, rtol=rtol, atol=atol, loss=family, peers=peers, autocast=spec)
    if steps is False:
        for row in result.rows:
            row.steps = None
    from stabcli.present import compare_view as view

    mode = "answer" if steps is None else ("all" if steps else "none")
    options.emit(output_format, lambda: view.compare_json(result), lambda: view.compare_csv(result),
                 lambda width: view.compare_renderable(result, mode), notes=result.notes)


def _import_torch_then_freeze() -> None:
    """Import torch, then move the objects it made out of the cyclic garbage collector's sight (``gc.freeze``).

    ``import torch`` leaves some hundreds of thousands of objects that live as long as the process; every full
    collection while compare runs walks all of them again (about 0.1 s each, measured), and so does the last one
    when the interpreter exits (0.2 s: ``python -c "import torch, gc; gc.freeze()"`` ends that much sooner than
    ``python -c "import torch"``). A command that exits a second later gains nothing from either. Frozen, those
    objects are never scanned (nor freed, which they would not be before exit anyway). Done only when stabcli is
    its own process: the freeze is process-wide, and would keep a host process's garbage of the moment for good.
    """
    import gc

    import torch  # noqa: F401  (the torch backend imports it anyway; here, before the freeze)

    gc.freeze()
