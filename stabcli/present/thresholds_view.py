"""`thresholds` as rich tables, strict JSON and CSV. Returns; never prints."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
from rich import box
from rich.console import Group
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from stabcli.core.formats import get_format, to_float64
from stabcli.present.common import csv_cell, dumps, logit_text


def _threshold_dict(t) -> dict:
    return {"dtype": t.dtype, "name": t.name, "formula": t.formula, "predicted": t.predicted,
            "measured": t.measured, "difference": t.difference,
            "measured_by": {"backend": t.backend, "method": t.method, "target": t.target, "quantity": t.quantity,
                            "breakdown": t.key},
            "explanation": t.explanation}


def thresholds_json(thresholds, loss: str = "bce") -> str:
    return dumps({"command": "thresholds", "loss": loss, "results": [_threshold_dict(t) for t in thresholds]})


def thresholds_csv(thresholds) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    cols = ("dtype", "name", "predicted", "measured", "difference", "backend", "method", "target", "quantity",
            "breakdown", "formula", "explanation")
    writer.writerow(cols)
    for t in thresholds:
        writer.writerow(["" if v is None else csv_cell(v) for v in (
            t.dtype, t.name, t.predicted, t.measured, t.difference, t.backend, t.method, t.target, t.quantity, t.key,
            t.formula, t.explanation)])
    return out.getvalue()


def _threshold_value(v: float, dtype: str) -> Text:
    """A value of the dtype as :func:`_logit` shows it; a value between the dtype's numbers to 10 digits."""
    fmt = get_format(dtype)
    exact = math.isfinite(v) and float(to_float64(fmt.round(np.array([v])))[0]) == v
    return logit_text(v, dtype) if exact else Text(f"{v:.10g}")


def thresholds_renderable(thresholds, loss: str = "bce"):
    """One table per dtype: what breaks, predicted, measured (and by which method), then formulas and reasons."""
    from stabcli.losses import get_family

    label = get_family(loss).target_label
    out: list = []
    by_dtype: dict = {}
    for t in thresholds:
        by_dtype.setdefault(t.dtype, []).append(t)
    for dtype, rows in by_dtype.items():
        table = Table(title=f"[bold]{dtype}[/]", title_justify="left", pad_edge=False, box=box.SIMPLE_HEAD,
                      padding=(0, 1))
        table.add_column("#", justify="right", no_wrap=True)
        table.add_column("what happens", ratio=1, min_width=20)
        table.add_column("predicted", justify="right", no_wrap=True)
        table.add_column("measured", justify="right", no_wrap=True)
        for i, t in enumerate(rows, 1):
            same = t.measured == t.predicted
            measured = Text("-") if t.measured is None else _threshold_value(t.measured, dtype)
            if t.measured is not None:
                measured.stylize("green" if same else "yellow")
                if not same:
                    measured.append(" *")  # visible without colour too: the footnote says why
            table.add_row(str(i), t.name, _threshold_value(t.predicted, dtype), measured)
        out.append(table)
        for i, t in enumerate(rows, 1):
            by = f" (measured: {t.backend} {t.method}, {label(t.target)})"
            out.append(Padding(Text(f"{i}. {t.formula}{by}", style="dim"), (0, 0, 0, 2)))
            if t.measured != t.predicted:
                out.append(Padding(Text(f"* measured differs: {t.explanation}"), (0, 0, 0, 5)))
        out.append(Text(""))
    return Group(*out)
