"""`thresholds`: the breakdown logits a loss family predicts from a format's constants, next to those the sweep
engine measures. The predictions and their explanations are the family's (``losses/<family>/thresholds.py``);
this module runs the sweep and fills in what was measured. Nothing here prints.
"""

from __future__ import annotations

from stabcli.commands.sweep import Grid, make_grid, run_sweep
from stabcli.core.formats import Format
from stabcli.losses import get_family
from stabcli.losses.base import Threshold


def run_thresholds(formats: list[Format], rtol: float | None = None, atol: float | None = None,
                   progress=None, loss: str | None = None) -> list[Threshold]:
    """Predict every threshold of ``formats`` (the loss's, then the gradient's) and measure it with the sweep engine.

    16-bit formats are swept exhaustively; float32 and float64 on the default grid, whose breakdown search pins
    monotone breakdowns exactly (see ``sweep.py``).
    """
    family = get_family(loss)
    out: list[Threshold] = []
    for fmt in formats:
        grid: Grid = make_grid(exhaustive=True) if fmt.bits <= 16 else make_grid()
        sw = run_sweep([fmt], ["numpy", "torch"], list(family.threshold_targets), grid, rtol=rtol, atol=atol,
                       methods=list(family.threshold_methods), progress=progress, grad=True, loss=family.name)
        out += measure_thresholds(family.predict_thresholds(fmt, rtol), sw, fmt, family)
    return out


def measure_thresholds(preds: list[Threshold], sweep, fmt: Format, family=None) -> list[Threshold]:
    """Fill in each prediction's measured logit (and explanation) from a gradient sweep of ``fmt``."""
    family = get_family() if family is None else family
    rows = {(r.backend, r.method, r.target): r for r in sweep.rows if r.dtype == fmt.name}
    for t in preds:
        row = rows[(t.backend, t.method, t.target)]
        t.measured = getattr(row.grad.breakdown if t.quantity == "gradient" else row.breakdown, t.key)
        t.explanation = family.explain_threshold(t, fmt)
    return preds
