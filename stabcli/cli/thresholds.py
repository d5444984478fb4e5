"""`stabcli thresholds`: predicted breakdown logits next to measured ones."""

from __future__ import annotations

import click

from stabcli.cli import options


@click.command(short_help="Breakdown logits predicted from each format, next to those measured.")
@options.loss_option
@options.dtype_option
@options.tolerance_options
@options.format_option
@options.core_errors
def thresholds(loss, dtypes, atol, rtol, output_format):
    """Breakdown logits predicted from each format's constants, next to those the sweep engine measures.

    The loss's (sigmoid saturating, exp overflowing, the -100 clamp, logsumexp's accuracy) and the gradient's:
    where BCELoss's backward (p-y)/max(p(1-p), 1e-12) gives 0, collapses toward 0 (p(1-p) < 1e-12), or, in float16
    where 1e-12 rounds to 0, -inf and NaN. A measured value that differs from its prediction comes with the reason.
    8- and 16-bit formats are measured exhaustively, float32 and float64 on the default grid (float64 uses mpmath
    for its reference and takes a few seconds).

    With --loss softmax: the gaps g of the rows [g, 0, 0] where exp overflows (naive NaN), where a probability
    rounds to 0 (log(softmax) = -inf, and 0·(-inf) = NaN with a one-hot probability target), where logsumexp
    loses relative accuracy and where the gradient softmax - onehot vanishes.

    \b
    Example:
        stabcli thresholds --dtype float16
        stabcli thresholds --format json
        stabcli thresholds --loss softmax --dtype float16
    """
    from stabcli.present import thresholds_view as view
    from stabcli.core.formats import parse_dtypes
    from stabcli.commands.thresholds import run_thresholds

    family = options.family_of(loss)
    result = run_thresholds(parse_dtypes(dtypes), rtol, atol, loss=family.name)
    options.emit(output_format, lambda: view.thresholds_json(result, family.name), lambda: view.thresholds_csv(result),
                 lambda width: view.thresholds_renderable(result, family.name))
