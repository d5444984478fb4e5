"""Turning results into rich renderables, strict JSON and CSV. Rendering functions return; the caller prints."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict

import numpy as np
from rich import box
from rich.console import Group
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from stabcli.numbers import fmt_number
from stabcli.formats import to_float64

STATUS_STYLE = {"ok": "green", "inaccurate": "yellow", "clamped": "magenta", "inf": "bold red", "nan": "bold red"}


# --- numbers -------------------------------------------------------------------------------------------------

def short(v: float, digits: int = 6) -> str:
    """A number for a table cell: 'inf', 'NaN', or ``digits`` significant digits."""
    return fmt_number(v, digits)


def fit(v: float, digits: int = 7, width: int = 9) -> str:
    """``short(v, digits)``, with fewer digits if needed to stay within ``width`` characters (tables fit 80 columns)."""
    text = short(v, digits)
    while len(text) > width and digits > 2:
        digits -= 1
        text = short(v, digits)
    return text


def value_text(v: float, digits: int = 7, alarm: bool = True) -> Text:
    """A number for a table cell, at most 9 characters; inf/NaN in bold red unless ``alarm`` is off (a reference)."""
    text = fit(v, digits)
    style = "bold red" if alarm and text in ("NaN", "inf", "-inf") else ""
    return Text(text, style=style)


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


def jsonable(value):
    """Replace non-finite floats by the strings 'inf', '-inf', 'nan', recursively (strict JSON)."""
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def dumps(document: dict) -> str:
    return json.dumps(jsonable(document), indent=2, allow_nan=False)


# --- compare -------------------------------------------------------------------------------------------------

def _row_dict(row) -> dict:
    d = {
        "backend": row.backend, "dtype": row.dtype, "method": row.method,
        "input": row.input, "input_overflow": row.input_overflow,
        "loss": row.loss, "reference": row.reference, "abs_error": row.abs_error, "rel_error": row.rel_error,
        "error_bits": row.error_bits, "status": row.status, "fp_events": row.events,
        "grad": row.grad, "grad_reference": row.grad_reference, "grad_abs_error": row.grad_abs_error,
        "grad_error_bits": row.grad_error_bits, "grad_status": row.grad_status,
    }
    if row.steps is not None:
        d["steps"] = [asdict(s) for s in row.steps]
        d["verdict"] = row.verdict
        d["grad_verdict"] = row.grad_verdict
    return d


def compare_json(comparison) -> str:
    inp = comparison.inputs
    doc = {
        "command": "compare",
        "logits": np.atleast_1d(inp.logits).tolist(),
        "targets": np.atleast_1d(inp.targets).tolist(),
        "weight": inp.weight.tolist(),
        "pos_weight": inp.pos_weight.tolist(),
        "reduction": inp.reduction,
        "results": [_row_dict(r) for r in comparison.rows],
        "notes": comparison.notes + [c for dn in comparison.dtype_notes for c in dn.changes],
    }
    if comparison.summary:
        doc["summary"] = comparison.summary
    return dumps(doc)


CSV_COLUMNS = ("backend", "dtype", "method", "index", "input", "input_overflow", "loss", "reference", "abs_error",
               "rel_error", "error_bits", "status", "overflow", "divide_by_zero", "invalid", "grad", "grad_reference",
               "grad_abs_error", "grad_error_bits", "grad_status")


def _csv_cell(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return jsonable(v) if not math.isfinite(v) else repr(v)
    return str(v)


def compare_csv(comparison) -> str:
    """One line per row, or per row and element with reduction 'none' (then `index` numbers the elements)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in comparison.rows:
        per_element = isinstance(r.loss, list)
        n = len(r.loss) if per_element else 1
        for i in range(n):
            pick = (lambda v: v[i]) if per_element else (lambda v: v)  # noqa: E731
            # the gradient is per element even when the loss is reduced: one line per row, its values joined by ';'
            gpick = (lambda v: v[i]) if per_element else (  # noqa: E731
                lambda v: (v[0] if len(v) == 1 else ";".join(_csv_cell(e) for e in v)) if isinstance(v, list) else v)
            inp = r.input[i] if per_element and len(r.input) == n else (r.input[0] if len(r.input) == 1 else ";".join(map(repr, r.input)))
            writer.writerow([_csv_cell(v) for v in (
                r.backend, r.dtype, r.method, i if per_element else "", inp, r.input_overflow,
                pick(r.loss), pick(r.reference), pick(r.abs_error), pick(r.rel_error), pick(r.error_bits),
                pick(r.status), r.events["overflow"], r.events["divide_by_zero"], r.events["invalid"],
                gpick(r.grad), gpick(r.grad_reference), gpick(r.grad_abs_error), gpick(r.grad_error_bits),
                gpick(r.grad_status))])
    return out.getvalue()


def _inputs_line(values: list, limit: int = 6) -> str:
    shown = ", ".join(short(v, 10) for v in values[:limit])
    return shown + (f", ... ({len(values)} values)" if len(values) > limit else "")


MAX_NOTES = 4  # notes on inputs changed by rounding, per dtype, in a table
MAX_ELEMENT_ROWS = 12  # per method, in a table of per-element results; the rest are in --format json or csv


def element_table(title: str, rows, xs: list, value: str, ref: str, bits: str, status: str) -> Table:
    """Per-element results (reduction 'none', or per-element gradients): a row per method and element."""
    table = Table(title=title, title_justify="left", pad_edge=False, box=box.SIMPLE_HEAD)
    for name, justify in (("method", "left"), ("x", "right"), (value, "right"), ("reference", "right"),
                          ("bits", "right"), ("status", "left")):
        table.add_column(name, justify=justify, no_wrap=True)
    backend = None
    for r in rows:
        values = getattr(r, value)
        if values is None:
            continue
        if r.backend != backend:
            if backend is not None:
                table.add_section()
            backend = r.backend
            table.add_row(Text(f"{backend} backend", style="bold"), "", "", "", "", "")
        refs, errs, stats = getattr(r, ref), getattr(r, bits), getattr(r, status)
        for i, (v, rv, e, st) in enumerate(zip(values, refs, errs, stats)):
            if i == MAX_ELEMENT_ROWS:
                table.caption = (f"Only the first {MAX_ELEMENT_ROWS} elements of each method are shown; "
                                 "--format json or csv has them all.")
                break
            x = xs[i] if len(xs) == len(values) else xs[0]
            table.add_row("  " + r.method if i == 0 else "", fit(x), value_text(v), value_text(rv, alarm=False),
                          Text(short(e, 3)), status_text(st))
    return table


def compare_tables(comparison) -> list:
    """One results table per dtype (and, for a single element, its trace), then the notes and summary."""
    out: list = []
    by_dtype: dict[str, list] = {}
    for r in comparison.rows:
        by_dtype.setdefault(r.dtype, []).append(r)
    notes = {dn.dtype: dn for dn in comparison.dtype_notes}
    single = comparison.inputs.size == 1
    for dtype, rows in by_dtype.items():
        dn = notes[dtype]
        title = f"[bold]{dtype}[/]  x = {_inputs_line(dn.logits)}"
        if dn.input_overflow:
            title += "  [bold red](overflowed)[/]"
        per_element = isinstance(rows[0].loss, list)
        table = Table(title=title, title_justify="left", pad_edge=False, box=box.SIMPLE_HEAD)
        for name, justify in (("method", "left"), ("loss", "right"), ("reference", "right"),
                              ("abs err", "right"), ("bits", "right"), ("status", "left")):
            table.add_column(name, justify=justify, no_wrap=True)
        backend = None
        for r in rows:
            if r.backend != backend:
                if backend is not None:
                    table.add_section()
                backend = r.backend
                table.add_row(Text(f"{backend} backend", style="bold"), "", "", "", "", "")
            if isinstance(r.loss, list):
                loss, ref = Text(_inputs_line(r.loss, 2)), Text(_inputs_line(r.reference, 2))
                err, bits = Text(short(max(r.abs_error), 3)), Text(short(max(r.error_bits), 3))
                worst = [s for s in ("nan", "inf", "clamped", "inaccurate") if s in r.status]
                status = status_text(worst[0] if worst else "ok")
                if worst:
                    status.append(f" ({sum(s == worst[0] for s in r.status)}/{len(r.status)})")
            else:
                loss, ref = value_text(r.loss), value_text(r.reference, alarm=False)
                err, bits = Text(short(r.abs_error, 3)), Text(short(r.error_bits, 3))
                status = status_text(r.status)
            table.add_row("  " + r.method, loss, ref, err, bits, status)
        if per_element:
            table = element_table(title, rows, dn.logits, "loss", "reference", "error_bits", "status")
        out.append(table)
        if any(isinstance(r.grad, list) for r in rows):
            out.append(element_table(f"[bold]{dtype}[/]  gradient d loss / d x", rows, dn.logits, "grad",
                                     "grad_reference", "grad_error_bits", "grad_status"))
        elif any(r.grad is not None for r in rows):
            out.append(grad_table(rows, dtype))
        for change in dn.changes[:MAX_NOTES]:
            out.append(Text(f"  note: {change}", style="dim"))
        if len(dn.changes) > MAX_NOTES:
            out.append(Text(f"  note: ... and {len(dn.changes) - MAX_NOTES} more inputs changed by rounding to "
                            f"{dtype} (--format json lists them all)", style="dim"))
        if single and any(r.steps for r in rows):
            out.append(trace_table(rows))
        out.append(Text(""))
    for note in comparison.notes:
        out.append(Text(f"note: {note}", style="dim"))
    if comparison.summary:
        out.append(Panel("\n".join(comparison.summary), title="What this shows", title_align="left"))
    return out


def _worst(statuses: list) -> Text:
    worst = [s for s in ("nan", "inf", "clamped", "inaccurate") if s in statuses]
    text = status_text(worst[0] if worst else "ok")
    if worst:
        text.append(f" ({sum(s == worst[0] for s in statuses)}/{len(statuses)})")
    return text


def _compact(values: list) -> str:
    """The first value with 4 digits, then how many there are: keeps the gradient table within 80 columns."""
    return short(values[0], 4) + (f", … ({len(values)})" if len(values) > 1 else "")


def grad_table(rows, dtype: str) -> Table:
    """The gradient d loss / d x of every row, compact (within 80 columns), per backend."""
    table = Table(title=f"[bold]{dtype}[/]  gradient d loss / d x", title_justify="left", pad_edge=False,
                  box=box.SIMPLE_HEAD)
    for name, justify in (("method", "left"), ("grad", "right"), ("reference", "right"), ("bits", "right"),
                          ("status", "left")):
        table.add_column(name, justify=justify, no_wrap=True)
    backend = None
    for r in rows:
        if r.grad is None:
            continue
        if r.backend != backend:
            if backend is not None:
                table.add_section()
            backend = r.backend
            table.add_row(Text(f"{backend} backend", style="bold"), "", "", "", "")
        if isinstance(r.grad, list):
            grad, ref = Text(_compact(r.grad)), Text(_compact(r.grad_reference))
            bits = Text(short(max(r.grad_error_bits), 3))
            status = _worst(r.grad_status)
        else:
            grad, ref = value_text(r.grad), value_text(r.grad_reference, alarm=False)
            bits, status = Text(short(r.grad_error_bits, 3)), status_text(r.grad_status)
        table.add_row("  " + r.method, grad, ref, bits, status)
    return table


def trace_table(rows) -> Table:
    """The steps of every method side by side for the backends that ran, with the notes."""
    backends = list(dict.fromkeys(r.backend for r in rows))
    table = Table(title="step by step", title_justify="left", pad_edge=False, box=box.SIMPLE_HEAD)
    table.add_column("step", no_wrap=True)
    for b in backends:
        table.add_column(b, justify="right", no_wrap=True)
    table.add_column("note", overflow="fold")
    methods = list(dict.fromkeys(r.method for r in rows))
    for method in methods:
        mrows = {r.backend: r for r in rows if r.method == method}
        verdicts = list(dict.fromkeys(r.verdict for r in mrows.values() if r.verdict))
        verdict = verdicts[0] if len(verdicts) == 1 else "; ".join(f"{b}: {r.verdict}" for b, r in mrows.items())
        table.add_row(Text(method, style="bold"), *(status_text(mrows[b].status) if b in mrows else Text("")
                                                      for b in backends), Text(verdict, style="bold"))
        names = list(dict.fromkeys(s.name for r in mrows.values() for s in r.steps))
        for name in names:
            cells, notes = [], []
            for b in backends:
                step = next((s for s in mrows[b].steps if s.name == name), None) if b in mrows else None
                cells.append(value_text(step.value, 8) if step else Text(""))
                if step and step.note:
                    notes.append((b, step.note))
            distinct = list(dict.fromkeys(n for _, n in notes))
            note = distinct[0] if len(distinct) == 1 else "; ".join(f"{b}: {n}" for b, n in notes)
            table.add_row("  " + name, *cells, Text(note, style="italic"))
        table.add_section()
    return table


def compare_renderable(comparison):
    return Group(*compare_tables(comparison))


# --- sweep ---------------------------------------------------------------------------------------------------

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
    }


def sweep_json(sweep) -> str:
    doc = {
        "command": "sweep",
        "grid": sweep.grid.as_dict(),
        "weight": sweep.weight,
        "pos_weight": sweep.pos_weight,
        "grad": sweep.grad,
        "results": [sweep_row_dict(r) for r in sweep.rows],
        "summary": list(sweep.summary.values()),
        "notes": sweep.notes,
    }
    return dumps(doc)


SWEEP_SCALAR_COLUMNS = ("backend", "dtype", "target", "method", "points", "count_ok", "count_inaccurate",
                        "count_clamped", "count_inf", "count_nan", "count_overflow", "max_abs_error", "max_error_bits")
SWEEP_CSV_COLUMNS = (*SWEEP_SCALAR_COLUMNS, *BREAKDOWN_KEYS, *GRAD_COUNT_KEYS,
                     *(f"grad_{k}" for k in GRAD_BREAKDOWN_KEYS))


def sweep_csv(sweep) -> str:
    """One line per (backend, dtype, target, method); an empty breakdown cell means none was found, and the
    gradient cells are all empty when the sweep ran with --no-grad."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(SWEEP_CSV_COLUMNS)
    for r in sweep.rows:
        d = sweep_row_dict(r)
        grad_breakdown = d["grad_breakdown"] or {}
        cells = ([d[k] for k in SWEEP_SCALAR_COLUMNS] + [d["breakdown"][k] for k in BREAKDOWN_KEYS]
                 + [d[k] for k in GRAD_COUNT_KEYS] + [grad_breakdown.get(k) for k in GRAD_BREAKDOWN_KEYS])
        writer.writerow(["" if v is None else _csv_cell(v) for v in cells])
    return out.getvalue()


def _logit(v, dtype: str | None = None) -> Text:
    """A breakdown logit: exact for 16-bit formats and float64; for float32 the shortest digits that identify the
    float32 value (16.635532 is 16.63553237915039 in float32). JSON and CSV carry every value in full."""
    if v is None:
        return Text("-", style="dim")
    if dtype == "float32":
        return Text(str(np.float32(v)))
    return Text(repr(float(v)).removesuffix(".0") if abs(v) < 1e16 else f"{v:g}")


def _count(n: int, style: str) -> Text:
    return Text(str(n), style=style if n else "dim")


WIDE_LAYOUT = 118  # from this console width on, counts and breakdowns share one table per (backend, dtype, target)


def sweep_tables(sweep, width: int = 80) -> list:
    """One table per (backend, dtype, target), each followed by its plain sentence.

    At least WIDE_LAYOUT columns: one table with counts, errors and breakdown logits. Narrower (80 columns, or a
    pipe): the same rows as two stacked tables, counts and errors, then breakdown logits, so nothing wraps.
    """
    out: list = [Text(_grid_line(sweep), style="dim")]
    groups: dict = {}
    for r in sweep.rows:
        groups.setdefault((r.backend, r.dtype, r.target), []).append(r)
    wide = width >= WIDE_LAYOUT
    for (backend, dtype, target), rows in groups.items():
        title = f"[bold]{dtype}[/] · {backend} · target {target:g} · {rows[0].points:,} logits"
        counts = Table(title=title, title_justify="left", pad_edge=False, box=box.SIMPLE_HEAD, padding=(0, 0, 0, 1))
        counts.add_column("method", no_wrap=True)
        for name in ("ok", "inacc", "clamp", "inf", "nan", "ovf"):
            counts.add_column(name, justify="right", no_wrap=True)
        counts.add_column("max err", justify="right", no_wrap=True)
        counts.add_column("bits", justify="right", no_wrap=True)
        brk = counts if wide else Table(pad_edge=False, box=box.SIMPLE_HEAD, padding=(0, 0, 0, 1))
        if not wide:
            brk.add_column("breaks (closest to 0)", no_wrap=True)
        for name in ("inf/NaN x≥", "inf/NaN x≤", "off tol x≥", "off tol x≤"):
            brk.add_column(name, justify="right", no_wrap=True)
        for r in rows:
            c = r.counts
            count_cells = [Text(r.method), _count(c["ok"], "green"), _count(c["inaccurate"], "yellow"),
                           _count(c["clamped"], "magenta"), _count(c["inf"], "bold red"), _count(c["nan"], "bold red"),
                           _count(r.count_overflow, "red"), value_text(r.max_abs_error, 3),
                           Text(short(r.max_error_bits, 3))]
            b = r.breakdown
            brk_cells = [_logit(b.nonfinite_pos, dtype), _logit(b.nonfinite_neg, dtype),
                         _logit(b.inaccurate_pos, dtype), _logit(b.inaccurate_neg, dtype)]
            if wide:
                counts.add_row(*count_cells, *brk_cells)
            else:
                counts.add_row(*count_cells)
                brk.add_row(Text(r.method), *brk_cells)
        out.append(counts)
        if not wide:
            out.append(brk)
        if any(r.grad is not None for r in rows):
            out.append(grad_sweep_table(rows, wide, dtype))
        sentence = sweep.summary.get((backend, dtype, target))
        if sentence:
            out.append(Text(sentence))
        out.append(Text(""))
    for note in sweep.notes:
        out.append(Text(f"note: {note}", style="dim"))
    return out


def grad_sweep_table(rows, wide: bool = False, dtype: str | None = None) -> Table:
    """The gradient section of one (backend, dtype, target): counts, worst error and where it first goes wrong.

    "wrong" is the logit closest to 0 on each side where the gradient is inf/NaN, vanished or off tolerance; the
    sentence below the tables says which (and where it vanishes or turns NaN further out). Fits 80 columns;
    ``wide`` (a console of WIDE_LAYOUT columns or more) shows float64 logits whole.
    """
    # No padding: the box's one-space column separators suffice. 21 + 6 + 6 + 5 + 4 + 2·15 = 72 characters of cells,
    # 6 separators and 2 edges make 80; a float64 logit longer than 15 characters ends in an ellipsis.
    table = Table(pad_edge=False, box=box.SIMPLE_HEAD, padding=0)
    table.add_column("gradient d/dx", no_wrap=True, min_width=len("torch_bce_with_logits"))
    for name in ("nonfin", "vanish", "inacc", "bits"):
        table.add_column(name, justify="right", no_wrap=True, min_width=len(name))
    for name in ("wrong x≥", "wrong x≤"):
        table.add_column(name, justify="right", no_wrap=True, max_width=None if wide else 15)
    for r in rows:
        if r.grad is None:
            continue
        c, b = r.grad.counts, r.grad.breakdown
        table.add_row(Text(r.method), _count(c["nonfinite"], "bold red"), _count(c["vanished"], "red"),
                      _count(c["inaccurate"], "yellow"), Text(short(r.grad.max_error_bits, 3)),
                      _logit(b.inaccurate_pos, dtype), _logit(b.inaccurate_neg, dtype))
    return table


def _grid_line(sweep) -> str:
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


def sweep_renderable(sweep, width: int = 80):
    return Group(*sweep_tables(sweep, width))


# --- thresholds ----------------------------------------------------------------------------------------------

def _threshold_dict(t) -> dict:
    return {"dtype": t.dtype, "name": t.name, "formula": t.formula, "predicted": t.predicted,
            "measured": t.measured, "difference": t.difference,
            "measured_by": {"backend": t.backend, "method": t.method, "target": t.target, "quantity": t.quantity,
                            "breakdown": t.key},
            "explanation": t.explanation}


def thresholds_json(thresholds) -> str:
    return dumps({"command": "thresholds", "results": [_threshold_dict(t) for t in thresholds]})


def thresholds_csv(thresholds) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    cols = ("dtype", "name", "predicted", "measured", "difference", "backend", "method", "target", "quantity",
            "breakdown", "formula", "explanation")
    writer.writerow(cols)
    for t in thresholds:
        writer.writerow(["" if v is None else _csv_cell(v) for v in (
            t.dtype, t.name, t.predicted, t.measured, t.difference, t.backend, t.method, t.target, t.quantity, t.key,
            t.formula, t.explanation)])
    return out.getvalue()


def _threshold_value(v: float, dtype: str) -> Text:
    """A value of the dtype as :func:`_logit` shows it; a value between the dtype's numbers to 10 digits."""
    from stabcli.formats import get_format

    fmt = get_format(dtype)
    exact = math.isfinite(v) and float(to_float64(fmt.round(np.array([v])))[0]) == v
    return _logit(v, dtype) if exact else Text(f"{v:.10g}")


def thresholds_renderable(thresholds):
    """One table per dtype: what breaks, predicted, measured (and by which method), then formulas and reasons."""
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
            by = f" (measured: {t.backend} {t.method}, target {t.target:g})"
            out.append(Padding(Text(f"{i}. {t.formula}{by}", style="dim"), (0, 0, 0, 2)))
            if t.measured != t.predicted:
                out.append(Padding(Text(f"* measured differs: {t.explanation}"), (0, 0, 0, 5)))
        out.append(Text(""))
    return Group(*out)


# --- demo ----------------------------------------------------------------------------------------------------

DEMO_WIDTH = 80  # the walk-through is laid out for 80 columns (a projector, a pipe), whatever the terminal


def _demo_cell(cell) -> Text:
    """A table cell of the demo: a Quote (a number, or a status) or plain text."""
    from stabcli.demo import Quote

    if isinstance(cell, Quote):
        if isinstance(cell.value, str):
            return status_text(cell.value)
        text = cell.text()
        return Text(text, style="bold red" if text in ("NaN", "inf", "-inf") else "")
    return Text(str(cell))


def demo_table(table) -> Table:
    """A DemoTable as a rich Table: numbers right-aligned, text left, long notes folded."""
    from stabcli.demo import Quote

    out = Table(title=table.title or None, title_justify="left", pad_edge=False, box=box.SIMPLE_HEAD,
                show_edge=False)
    for i, name in enumerate(table.columns):
        numeric = any(isinstance(row[i], Quote) and not isinstance(row[i].value, str) for row in table.rows)
        out.add_column(name, justify="right" if numeric else "left", no_wrap=numeric, overflow="fold")
    for row in table.rows:
        out.add_row(*(_demo_cell(c) for c in row))
    return out


def demo_step_renderable(step, total: int) -> Panel:
    """One step of the walk-through as a Panel: its paragraphs, its tables, then its closing paragraphs."""
    parts: list = []
    for paragraph in step.paragraphs:
        parts += [Text(paragraph), Text("")]
    for table in step.tables:
        parts += [demo_table(table), Text("")]
    for paragraph in step.after:
        parts += [Text(paragraph), Text("")]
    if parts:
        parts.pop()
    return Panel(Group(*parts), title=f"[bold]Step {step.number} of {total}[/] · {step.title}", title_align="left",
                 padding=(0, 1))
