"""`sweep` as rich tables and sentences, strict JSON and CSV. Returns; never prints."""

from __future__ import annotations

import csv
import io

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from stabcli.present.common import (
    count_text,
    csv_cell,
    dumps,
    logit_text,
    short,
    value_text,
)

BREAKDOWN_KEYS = ("nonfinite_pos", "nonfinite_neg", "inaccurate_pos", "inaccurate_neg", "clamped_pos", "clamped_neg")
GRAD_BREAKDOWN_KEYS = ("nonfinite_pos", "nonfinite_neg", "inaccurate_pos", "inaccurate_neg", "vanished_pos",
                       "vanished_neg", "nan_pos", "nan_neg")
GRAD_COUNT_KEYS = ("grad_count_nonfinite", "grad_count_vanished", "grad_count_inaccurate", "grad_max_error_bits")


def sweep_row_dict(row) -> dict:
    """A sweep row for JSON; the gradient fields are null when the sweep ran with --no-grad."""
    g = row.grad
    return {
        "backend": row.backend, "dtype": row.dtype, "target": row.target, "method": row.method,
        "points": row.points,
        **{f"count_{k}": v for k, v in row.counts.items()},
        "count_overflow": row.count_overflow,
        "max_abs_error": row.max_abs_error, "max_error_bits": row.max_error_bits,
        "breakdown": {k: getattr(row.breakdown, k) for k in BREAKDOWN_KEYS},
        "grad_count_nonfinite": g.counts["nonfinite"] if g else None,
        "grad_count_vanished": g.counts["vanished"] if g else None,
        "grad_count_inaccurate": g.counts["inaccurate"] if g else None,
        "grad_max_error_bits": g.max_error_bits if g else None,
        "grad_breakdown": {k: getattr(g.breakdown, k) for k in GRAD_BREAKDOWN_KEYS} if g else None,
        "training": row.training.as_dict() if row.training is not None else None,
        "compute_dtype": row.compute_dtype,
        "refused": row.refused,
    }


def sweep_json(sweep, severity: str = "accuracy") -> str:
    doc = {
        "command": "sweep",
        "loss": sweep.family,
        **({"options": sweep.options} if sweep.options else {}),
        "severity": severity,
        "grid": sweep.grid.as_dict(),
        "weight": sweep.weight,
        "pos_weight": sweep.pos_weight,
        "grad": sweep.grad,
        **({"autocast": sweep.autocast.as_json()} if sweep.autocast is not None else {}),
        "results": [sweep_row_dict(r) for r in [*sweep.rows, *sweep.refused]],
        "summary": list(sweep.summary.values()),
        "training_summary": [training_line(rows, _family(sweep)) for rows in sweep.cases().values()]
        if sweep.grad else None,
        "notes": sweep.notes,
    }
    return dumps(doc)


SWEEP_SCALAR_COLUMNS = ("backend", "dtype", "target", "method", "points", "count_ok", "count_inaccurate",
                        "count_clamped", "count_inf", "count_nan", "count_overflow", "max_abs_error", "max_error_bits")
TRAINING_KEYS = ("class", "count_nonfinite", "count_stalled", "break_pos", "break_pos_kind", "break_neg",
                 "break_neg_kind")
SWEEP_CSV_COLUMNS = (*SWEEP_SCALAR_COLUMNS, *BREAKDOWN_KEYS, *GRAD_COUNT_KEYS,
                     *(f"grad_{k}" for k in GRAD_BREAKDOWN_KEYS), *(f"training_{k}" for k in TRAINING_KEYS),
                     "compute_dtype", "refused")


def sweep_csv(sweep) -> str:
    """One line per (backend, dtype, target, method); an empty breakdown cell means none was found, and the
    gradient cells are all empty when the sweep ran with --no-grad."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(SWEEP_CSV_COLUMNS)
    for r in [*sweep.rows, *sweep.refused]:
        d = sweep_row_dict(r)
        grad_breakdown = d["grad_breakdown"] or {}
        training = d["training"] or {}
        cells = ([d[k] for k in SWEEP_SCALAR_COLUMNS] + [d["breakdown"][k] for k in BREAKDOWN_KEYS]
                 + [d[k] for k in GRAD_COUNT_KEYS] + [grad_breakdown.get(k) for k in GRAD_BREAKDOWN_KEYS]
                 + [training.get(k) for k in TRAINING_KEYS]
                 + [d["compute_dtype"], " ".join(d["refused"].split()) if d["refused"] else None])
        writer.writerow(["" if v is None else csv_cell(v) for v in cells])
    return out.getvalue()


WIDE_LAYOUT = 118  # from this console width on, counts and breakdowns share one table per (backend, dtype, target)


def _family(sweep):
    from stabcli.losses import get_family

    return get_family(sweep.family)


def sweep_tables(sweep, width: int = 80, severity: str = "accuracy") -> list:
    """One table per (backend, dtype, target), each followed by its plain sentence.

    At least WIDE_LAYOUT columns: one table with counts, errors and breakdown logits. Narrower (80 columns, or a
    pipe): the same rows as two stacked tables, counts and errors, then breakdown logits, so nothing wraps.
    """
    if severity == "training":
        return training_tables(sweep, width)
    from stabcli.losses import get_family

    family = get_family(sweep.family)
    v = family.variable
    points = "logits" if v == "x" else "values"
    out: list = [Text(_grid_line(sweep), style="dim")]
    groups = sweep.cases()
    wide = width >= WIDE_LAYOUT
    for (backend, dtype, target), rows in groups.items():
        title = f"[bold]{dtype}[/] · {backend} · {family.target_label(target)} · {rows[0].points:,} {points}"
        counts = Table(title=title, title_justify="left", pad_edge=False, box=box.SIMPLE_HEAD, padding=(0, 0, 0, 1))
        counts.add_column("method", no_wrap=True)
        for name in ("ok", "inacc", "clamp", "inf", "nan", "ovf"):
            counts.add_column(name, justify="right", no_wrap=True)
        counts.add_column("max err", justify="right", no_wrap=True)
        counts.add_column("bits", justify="right", no_wrap=True)
        brk = counts if wide else Table(pad_edge=False, box=box.SIMPLE_HEAD, padding=(0, 0, 0, 1))
        if not wide:
            brk.add_column("breaks (closest to 0)", no_wrap=True)
        for name in (f"inf/NaN {v}≥", f"inf/NaN {v}≤", f"off tol {v}≥", f"off tol {v}≤"):
            brk.add_column(name, justify="right", no_wrap=True)
        for r in rows:
            c = r.counts
            count_cells = [Text(r.method), count_text(c["ok"], "green"), count_text(c["inaccurate"], "yellow"),
                           count_text(c["clamped"], "magenta"), count_text(c["inf"], "bold red"), count_text(c["nan"], "bold red"),
                           count_text(r.count_overflow, "red"), value_text(r.max_abs_error, 3),
                           Text(short(r.max_error_bits, 3))]
            b = r.breakdown
            brk_cells = [logit_text(b.nonfinite_pos, dtype), logit_text(b.nonfinite_neg, dtype),
                         logit_text(b.inaccurate_pos, dtype), logit_text(b.inaccurate_neg, dtype)]
            if wide:
                counts.add_row(*count_cells, *brk_cells)
            else:
                counts.add_row(*count_cells)
                brk.add_row(Text(r.method), *brk_cells)
        out.append(counts)
        if not wide:
            out.append(brk)
        if any(r.grad is not None for r in rows):
            out.append(grad_sweep_table(rows, wide, dtype, v))
        if sweep.autocast is not None:
            computed: dict[str, list[str]] = {}
            for r in rows:
                computed.setdefault(r.compute_dtype or dtype, []).append(r.method)
            for name, methods in computed.items():
                out.append(Text(f"computed in {name} under autocast: {', '.join(methods)}", style="dim"))
        out += _refused_lines(sweep, backend, dtype, target)
        sentence = sweep.summary.get((backend, dtype, target))
        if sentence:
            out.append(Text(sentence))
        out.append(Text(""))
    for note in sweep.notes:
        out.append(Text(f"note: {note}", style="dim"))
    return out


def grad_sweep_table(rows, wide: bool = False, dtype: str | None = None, variable: str = "x") -> Table:
    """The gradient section of one (backend, dtype, target): counts, worst error and where it first goes wrong.

    "wrong" is the logit closest to 0 on each side where the gradient is inf/NaN, vanished or off tolerance; the
    sentence below the tables says which (and where it vanishes or turns NaN further out). Fits 80 columns;
    ``wide`` (a console of WIDE_LAYOUT columns or more) shows float64 logits whole.
    """
    # No padding: the box's one-space column separators suffice. 21 + 6 + 6 + 5 + 4 + 2·15 = 72 characters of cells,
    # 6 separators and 2 edges make 80; a float64 logit longer than 15 characters ends in an ellipsis.
    table = Table(pad_edge=False, box=box.SIMPLE_HEAD, padding=0)
    table.add_column(f"gradient d/d{variable}", no_wrap=True, min_width=len("torch_bce_with_logits"))
    for name in ("nonfin", "vanish", "inacc", "bits"):
        table.add_column(name, justify="right", no_wrap=True, min_width=len(name))
    for name in (f"wrong {variable}≥", f"wrong {variable}≤"):
        table.add_column(name, justify="right", no_wrap=True, max_width=None if wide else 15)
    for r in rows:
        if r.grad is None:
            continue
        c, b = r.grad.counts, r.grad.breakdown
        table.add_row(Text(r.method), count_text(c["nonfinite"], "bold red"), count_text(c["vanished"], "red"),
                      count_text(c["inaccurate"], "yellow"), Text(short(r.grad.max_error_bits, 3)),
                      logit_text(b.inaccurate_pos, dtype), logit_text(b.inaccurate_neg, dtype))
    return table


def _grid_line(sweep) -> str:
    from stabcli.losses import get_family

    own = getattr(get_family(sweep.family).notes, "grid_line", None)  # a family may describe its own sweep
    if own is not None:
        return own(sweep)
    g = sweep.grid
    if g.exhaustive:
        where = "every finite value of the dtype"
    else:
        where = f"{g.points:,} {g.spacing}-spaced logits from {g.min:g} to {g.max:g}, rounded to the dtype"
    extra = "" if sweep.weight == 1 and sweep.pos_weight == 1 else f", weight {sweep.weight:g}, pos_weight {sweep.pos_weight:g}"
    grad = (" Gradients (d loss/d x) count inf/NaN, vanished (0 or below eps·|truth| where the truth is not) and "
            "off-tolerance points; wrong x≥/x≤ is where the gradient first goes wrong." if sweep.grad else "")
    return (f"sweep over {where}{extra}. Breakdowns are the logits closest to 0 where a method first gives inf/NaN "
            f"or leaves the tolerance; ovf counts the logits where an intermediate exp overflowed.{grad}")


# --- ranked for training (--severity training) -----------------------------------------------------------------

def training_tables(sweep, width: int = 80) -> list:
    """Per (backend, dtype, target): the methods worst first for training (inf/NaN, then stalled gradients, then
    only inaccurate, then fine), where each first breaks on each side of 0, then one line that says it."""
    from stabcli.losses import get_family

    family = get_family(sweep.family)
    v = family.variable  # x, or softmax's gap g of the rows [g, 0, 0]
    points = "logits" if v == "x" else "values"
    swept = "logits" if v == "x" else f"values of {v}"
    g = sweep.grid
    where = "every finite value of the dtype" if g.exhaustive else \
        f"{g.points:,} {g.spacing}-spaced {swept} from {g.min:g} to {g.max:g}"
    out: list = [Text(f"sweep over {where}, ranked for training: inf/NaN in the loss or gradient first, then a "
                      "gradient that stalls (0, or below eps·|truth|, where the truth is at least eps: training "
                      f"cannot correct the example), then only inaccurate. points: how many {points} break training; "
                      f"breaks {v}≥/{v}≤: the {'logit' if v == 'x' else v} closest to 0 where it breaks, and how.",
                      style="dim")]
    for (backend, dtype, target), rows in sweep.cases().items():
        title = f"[bold]{dtype}[/] · {backend} · {family.target_label(target)} · {rows[0].points:,} {points}"
        out += [training_table(rows, dtype, title, wide=width >= WIDE_LAYOUT, v=family.variable),
                *_refused_lines(sweep, backend, dtype, target),
                Text(training_line(rows, family)),
                Text("")]
    for note in sweep.notes:
        out.append(Text(f"note: {note}", style="dim"))
    out.append(Text("--severity accuracy (the default) shows every count and tolerance breakdown; --format json "
                    "has both", style="dim"))
    return out


def _refused_lines(sweep, backend, dtype, target) -> list:
    """Methods torch.autocast refused in this (backend, dtype, target), with torch's message."""
    return [Text(f"{r.method}: refused by torch.autocast ({sweep.autocast.device}), torch's message: "
                 + " ".join(r.refused.split()), style="dim")
            for r in sweep.refused if (r.backend, r.dtype, r.target) == (backend, dtype, target)]


CLASS_STYLE = {"diverges": "bold red", "stalls": "red", "inaccurate": "yellow", "ok": "green"}


def training_table(rows, dtype: str | None = None, title: str | None = None, wide: bool = False,
                   v: str = "x") -> Table:
    """Sweep rows ranked for training (``severity.ranked``), one line each: class, how many points break training
    (inf/NaN or stalled), and on each side of 0 the logit closest to 0 where it breaks and how. Fits 80 columns
    (``wide``: float64 logits whole). Reusable by any command with sweep rows."""
    from stabcli.commands.severity import ranked

    # No padding: the box's one-space column separators suffice. 21 + 10 + 6 + 2·19 = 75 characters of cells and 4
    # separators make 79; float64 logits show 8 digits (the line below the table has them whole).
    table = Table(title=title, title_justify="left", pad_edge=False, box=box.SIMPLE_HEAD, padding=0)
    table.add_column("method", no_wrap=True)
    table.add_column("class", no_wrap=True)
    table.add_column("points", justify="right", no_wrap=True)
    for side in ("≥", "≤"):
        table.add_column(f"breaks {v}{side}", no_wrap=True, max_width=None if wide else 19)
    for r in ranked(rows):
        t = r.training
        if t is None:
            continue
        cells = []
        for side in ("pos", "neg"):
            x = getattr(t, f"break_{side}")
            cell = logit_text(x, dtype) if wide or dtype != "float64" or x is None else Text(short(x, 8))
            if x is not None:
                cell.append(f" {getattr(t, f'break_{side}_kind')}")
            cells.append(cell)
        table.add_row(Text(r.method), Text(t.cls, style=CLASS_STYLE[t.cls]),
                      count_text(t.count_nonfinite + t.count_stalled, "bold red"), *cells)
    return table


def _side_text(t, v: str = "x") -> str:
    """'loss inf from x ≥ a, grad NaN from x ≤ b' for the sides where training breaks (``v``: the swept variable)."""
    from stabcli.core.numbers import fmt_number

    parts = []
    for side, rel in (("pos", "≥"), ("neg", "≤")):
        x = getattr(t, f"break_{side}")
        if x is None:
            continue
        text = f"{getattr(t, f'break_{side}_kind')} from {v} {rel} {fmt_number(x, None)}"
        truth = getattr(t, f"truth_{side}")
        if truth is not None:
            text += f" where the truth is {fmt_number(truth, 4)}"
        later = getattr(t, f"diverge_{side}")
        if later is not None:
            text += f", then inf/NaN from {v} {rel} {fmt_number(later, None)}"
        parts.append(text)
    return ", ".join(parts)


def training_line(rows, family=None) -> str:
    """One line per (backend, dtype, target): which methods break training first and where, then the rest."""
    from stabcli.commands.severity import ranked
    from stabcli.losses import get_family

    family = get_family() if family is None else family
    r0 = rows[0]
    head = f"{r0.dtype} ({r0.backend}), {family.target_label(r0.target)}, for training: "
    parts, inaccurate, fine = [], [], []
    for r in ranked(rows):
        t = r.training
        if t is None:
            continue
        if t.cls in ("diverges", "stalls"):
            parts.append(f"{r.method} {t.cls} ({_side_text(t, family.variable)})")
        elif t.cls == "inaccurate":
            inaccurate.append(r.method)
        else:
            fine.append(r.method)
    if inaccurate:
        parts.append(f"{_names(inaccurate)} only {'loses' if len(inaccurate) == 1 else 'lose'} accuracy")
    if fine:
        parts.append(f"{_names(fine)} {'stays' if len(fine) == 1 else 'stay'} within tolerance")
    return head + "; ".join(parts) + " (over the swept range)."


def _names(methods: list[str]) -> str:
    return methods[0] if len(methods) == 1 else ", ".join(methods[:-1]) + " and " + methods[-1]


def sweep_renderable(sweep, width: int = 80, severity: str = "accuracy"):
    return Group(*sweep_tables(sweep, width, severity))
