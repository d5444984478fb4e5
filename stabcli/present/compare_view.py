"""`compare` as rich tables (answer, results, gradients, traces), strict JSON and CSV. Returns; never prints."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict

from rich import box
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from stabcli.present.common import (
    csv_cell,
    dumps,
    fit,
    short,
    status_text,
    value_text,
)


def _section(backend: str) -> str:
    """A backend's heading in a table ("numpy backend"; the peers pseudo-backend's rows are "peer libraries")."""
    return "peer libraries" if backend == "peers" else f"{backend} backend"


def _row_dict(row) -> dict:
    d = {
        "backend": row.backend, "dtype": row.dtype, "method": row.method,
        "input": row.input, "input_overflow": row.input_overflow,
        "loss": row.loss, "reference": row.reference, "abs_error": row.abs_error, "rel_error": row.rel_error,
        "error_bits": row.error_bits, "status": row.status, "fp_events": row.events,
        "grad": row.grad, "grad_reference": row.grad_reference, "grad_abs_error": row.grad_abs_error,
        "grad_error_bits": row.grad_error_bits, "grad_status": row.grad_status,
        "compute_dtype": row.compute_dtype,
        "grad_wrt": row.grad_wrt,
    }
    if row.message is not None:
        d["message"] = row.message
    if row.library is not None:
        d["library"] = row.library
    if row.steps is not None:
        d["steps"] = [asdict(s) for s in row.steps]
        d["verdict"] = row.verdict
        d["grad_verdict"] = row.grad_verdict
    return d


def compare_json(comparison) -> str:
    inp = comparison.inputs
    doc = {
        "command": "compare",
        "loss": comparison.family,
        **inp.as_json(),
        "reduction": inp.reduction,
        "results": [_row_dict(r) for r in comparison.rows],
        "notes": comparison.notes + [c for dn in comparison.dtype_notes for c in dn.changes],
    }
    if comparison.autocast is not None:
        doc["autocast"] = comparison.autocast.as_json()

    if comparison.summary:
        doc["summary"] = comparison.summary
    if comparison.answer:
        doc["answer"] = {"dtype": comparison.focus[0], "backend": comparison.focus[1], "lines": comparison.answer}
    return dumps(doc)


CSV_COLUMNS = ("backend", "dtype", "method", "index", "input", "input_overflow", "loss", "reference", "abs_error",
               "rel_error", "error_bits", "status", "compute_dtype", "message", "overflow", "divide_by_zero", "invalid",
               "grad_wrt", "grad", "grad_reference", "grad_abs_error", "grad_error_bits", "grad_status")


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
            gpick = (lambda v: _element(v, i, n)) if per_element else (  # noqa: E731
                lambda v: (v[0] if len(v) == 1 else ";".join(csv_cell(e) for e in v)) if isinstance(v, list) else v)
            inp = _element(r.input, i, n, repr) if per_element and len(r.input) % n == 0 else \
                (r.input[0] if len(r.input) == 1 else ";".join(map(repr, r.input)))
            writer.writerow([csv_cell(v) for v in (
                r.backend, r.dtype, r.method, i if per_element else "", inp, r.input_overflow,
                pick(r.loss), pick(r.reference), pick(r.abs_error), pick(r.rel_error), pick(r.error_bits),
                pick(r.status), r.compute_dtype or "", " ".join((r.message or "").split()),
                r.events["overflow"], r.events["divide_by_zero"], r.events["invalid"], r.grad_wrt,
                gpick(r.grad), gpick(r.grad_reference), gpick(r.grad_abs_error), gpick(r.grad_error_bits),
                gpick(r.grad_status))])
    return out.getvalue()


def _element(values, i: int, n: int, text=csv_cell):
    """Element i of n in a per-element list; where each element has several values (a softmax row of class logits
    or its gradient), that element's values joined by ';'."""
    if not isinstance(values, list) or len(values) == n:
        return values[i] if isinstance(values, list) else values
    k = len(values) // n
    return ";".join(text(v) for v in values[i * k:(i + 1) * k])


def _grad_title(rows) -> str:
    """"gradient d loss / d x", or with --probs which methods are differentiated with respect to p and which x."""
    wrt = {r.grad_wrt for r in rows if r.grad is not None}
    if wrt <= {"x"}:
        return "gradient d loss / d x"
    if wrt == {"p"}:
        return "gradient d loss / d p"
    return "gradient d loss / d p (naive, clamped, torch_bce); d loss / d x (logit forms)"


def _one_value(v):
    return v[0] if isinstance(v, list) else v


def _inputs_line(values: list, limit: int = 6) -> str:
    shown = ", ".join(short(v, 10) for v in values[:limit])
    return shown + (f", ... ({len(values)} values)" if len(values) > limit else "")


MAX_NOTES = 4  # notes on inputs changed by rounding, per dtype, in a table
MAX_ELEMENT_ROWS = 12  # per method, in a table of per-element results; the rest are in --format json or csv


def element_table(title: str, rows, xs: list, value: str, ref: str, bits: str, status: str,
                  variable: str = "x") -> Table:
    """Per-element results (reduction 'none', or per-element gradients): a row per method and element."""
    table = Table(title=title, title_justify="left", pad_edge=False, box=box.SIMPLE_HEAD)
    # Rows of class logits (softmax) are the one column that may give way when the table is too wide: cut with an
    # ellipsis there, rather than rich cutting every column evenly, the numbers and statuses too ("inaccura…")
    vectors = any(getattr(r, value) is not None and len(getattr(r, value)) < len(xs) for r in rows)
    for name, justify in (("method", "left"), (variable, "right"), (value, "right"), ("reference", "right"),
                          ("bits", "right"), ("status", "left")):
        table.add_column(name, justify=justify, no_wrap=not (vectors and name == variable))
    backend = None
    for r in rows:
        values = getattr(r, value)
        if values is None:
            continue
        if r.backend != backend:
            if backend is not None:
                table.add_section()
            backend = r.backend
            table.add_row(Text(_section(backend), style="bold"), "", "", "", "", "")
        refs, errs, stats = getattr(r, ref), getattr(r, bits), getattr(r, status)
        for i, (v, rv, e, st) in enumerate(zip(values, refs, errs, stats)):
            if i == MAX_ELEMENT_ROWS:
                table.caption = (f"Only the first {MAX_ELEMENT_ROWS} elements of each method are shown; "
                                 "--format json or csv has them all.")
                break
            x = xs[i] if len(xs) == len(values) else xs[0]
            per_row = len(xs) // len(values) if len(xs) % len(values) == 0 else 0
            if per_row > 1:  # a row of class logits per element (softmax): show the row
                x = xs[i * per_row:(i + 1) * per_row]
            cell = value_text(x, alarm=False) if per_row > 1 else fit(x)
            if vectors and isinstance(cell, Text):
                cell.no_wrap, cell.overflow = True, "ellipsis"
            table.add_row("  " + r.method if i == 0 else "", cell,
                          value_text(v), value_text(rv, alarm=False),
                          Text(short(e, 3)), status_text(st))
    return table


STEPS_MODES = ("answer", "all", "none")  # single element: answer first, every trace, no trace


def compare_tables(comparison, steps: str = "answer") -> list:
    """What a compare prints, as renderables.

    One element, ``steps="answer"`` (the default): the answer for one dtype and backend (the seed's float32 and
    torch when they ran), one compact table of every dtype, backend and method, then that dtype and backend's trace
    (methods that went right in one line each). ``"none"``: the same without the trace. ``"all"``: the answer, then
    per dtype the results, gradients and every backend's trace, then the summary of every dtype.
    Several elements: per dtype the results and gradients, element by element.
    """
    single = comparison.inputs.size == 1
    if single and comparison.focus is not None and steps != "all":
        return answer_first(comparison, trace=steps == "answer")
    out: list = []
    if single and comparison.answer:
        out += [answer_panel(comparison), Text("")]
    by_dtype: dict[str, list] = {}
    for r in comparison.rows:
        by_dtype.setdefault(r.dtype, []).append(r)
    notes = {dn.dtype: dn for dn in comparison.dtype_notes}
    for dtype, rows in by_dtype.items():
        dn = notes[dtype]
        title = f"[bold]{dtype}[/]  {comparison.variable} = {_inputs_line(dn.logits)}"
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
                table.add_row(Text(_section(backend), style="bold"), "", "", "", "", "")
            if r.status == "refused" or (isinstance(r.status, list) and "refused" in r.status):
                table.add_row("  " + r.method, Text("-"), value_text(_one_value(r.reference), alarm=False),
                              Text("-"), Text("-"), status_text("refused"))
                continue
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
            table = element_table(title, rows, dn.logits, "loss", "reference", "error_bits", "status",
                                  comparison.variable)
        out.append(table)
        if single and any(isinstance(r.grad, list) and len(r.grad) > 1 for r in rows):
            out.append(vector_grad_table(rows, dtype))  # one row of class logits: its gradient vector
        elif any(isinstance(r.grad, list) for r in rows):
            out.append(element_table(f"[bold]{dtype}[/]  {_grad_title(rows)}", rows, dn.logits, "grad",
                                     "grad_reference", "grad_error_bits", "grad_status", comparison.variable))
        elif any(r.grad is not None for r in rows):
            out.append(grad_table(rows, dtype))
        out += _autocast_lines(comparison, rows)
        for r in rows:
            if r.library is not None:
                out.append(Text(f"  {r.method}: {r.library}", style="dim"))
        out += _change_notes(dn)
        if single and steps == "all" and any(r.steps for r in rows):
            if any(r.backend == "peers" for r in rows):  # a third column would not fit: the peers' own trace
                out.append(trace_table([r for r in rows if r.backend != "peers"]))
                out.append(trace_table([r for r in rows if r.backend == "peers"], "step by step (peer libraries)"))
            elif any(isinstance(st.value, list) for r in rows for st in r.steps or []):
                # a row of class logits: vectors need the width, so one trace per backend
                for backend in dict.fromkeys(r.backend for r in rows):
                    out.append(trace_table([r for r in rows if r.backend == backend], f"step by step ({backend})"))
            else:
                out.append(trace_table(rows))
        out.append(Text(""))
    for note in comparison.notes:
        out.append(Text(f"note: {note}", style="dim"))
    if comparison.summary:
        out.append(Panel("\n".join(comparison.summary), title="What this shows, dtype by dtype", title_align="left"))
    return out


def _change_notes(dn) -> list:
    """The dim notes on inputs a dtype changed by rounding (at most MAX_NOTES, then how many more)."""
    out: list = [Text(f"  note: {change}", style="dim") for change in dn.changes[:MAX_NOTES]]
    if len(dn.changes) > MAX_NOTES:
        out.append(Text(f"  note: ... and {len(dn.changes) - MAX_NOTES} more inputs changed by rounding to "
                        f"{dn.dtype} (--format json lists them all)", style="dim"))
    return out


def _autocast_lines(comparison, rows) -> list:
    """Under --autocast: which methods computed their loss in which dtype, and torch's message for a refused one."""
    if comparison.autocast is None:
        return []
    out: list = []
    by_dtype_in: dict[str, list[str]] = {}
    for r in rows:
        if r.compute_dtype is not None and r.method not in by_dtype_in.get(r.compute_dtype, []):
            by_dtype_in.setdefault(r.compute_dtype, []).append(r.method)
    for computed, methods in by_dtype_in.items():
        out.append(Text(f"  computed in {computed} under autocast: {', '.join(methods)}", style="dim"))
    for r in rows:
        if r.message is not None:
            out.append(Text(f"  {r.method} refused, torch's message: " + " ".join(r.message.split()), style="dim"))
    return out


def _library_lines(rows) -> list:
    """The peer rows' libraries, versions and compute dtypes, one line per distinct description (the methods of one
    library share it): what the --steps view says under each dtype's table."""
    by_text: dict[tuple[str, str], list[str]] = {}
    several = len({r.dtype for r in rows}) > 1
    for r in rows:
        if r.library is not None:  # the dtype is named where the description does not name it
            by_text.setdefault((r.dtype if several and r.dtype not in r.library else "", r.library), []).append(
                r.method)
    return [Text(f"  {', '.join(methods)}{f' ({dtype})' if dtype else ''}: {text}", style="dim")
            for (dtype, text), methods in by_text.items()]


def answer_panel(comparison) -> Panel:
    dtype, backend = comparison.focus
    return Panel("\n".join(comparison.answer), title=f"Answer ({dtype}, {backend})", title_align="left")


def answer_first(comparison, trace: bool = True) -> list:
    """One element: the answer, every dtype/backend/method in one table, then the focus's trace (``trace``)."""
    dtype, backend = comparison.focus
    out: list = [answer_panel(comparison), overview_table(comparison)]
    out += _autocast_lines(comparison, comparison.rows)
    out += _library_lines(comparison.rows)
    for dn in comparison.dtype_notes:
        out += _change_notes(dn)
    for note in comparison.notes:
        out.append(Text(f"  note: {note}", style="dim"))
    rows = [r for r in comparison.rows if r.dtype == dtype and r.backend == backend]
    if trace and any(r.steps for r in rows):
        out += [Text(""), Text(f"step by step: {dtype}, {backend}", style="bold"), *focus_trace(rows)]
    hint = "--steps: every step, dtype and backend; --format json or csv: every number"
    out.append(Text(hint if trace else "--format json or csv: every number", style="dim"))
    return out


STEP_INDENT = 4


def focus_trace(rows) -> list:
    """One backend's trace, compact: the methods whose loss and gradient are both correctly rounded in one line at
    the end, a method whose loss and gradient are within tolerance in one line (its verdicts); any other method
    its verdict, then a line per step, 'name = value — note', where the step has a note or gives
    the loss or gradient. Steps with nothing to say in between, and a step that repeats one shown above (the same
    value and note, such as p = sigmoid(x) in every method that forms it), are left to --steps."""
    out: list = []
    shown: set = set()
    exact = [r for r in rows if r.status == "ok" and r.grad_status == "ok" and r.error_bits == 0
             and r.grad_error_bits == 0]
    for r in rows:
        if r in exact:
            continue
        head = Text(f"{r.method}:", style="bold")
        head.append(f" {r.verdict}")
        if r.status == "ok" and r.grad_status == "ok":
            out.append(head.append(f" {_capital(r.grad_verdict)}"))
            continue
        out.append(head)
        grid = Table.grid(padding=0)
        grid.add_column(width=STEP_INDENT, no_wrap=True)
        grid.add_column(overflow="fold")
        last = len(r.steps) - 1
        for i, step in enumerate(r.steps):
            result = i == last or i == _loss_index(r.steps)
            if (not step.note or (repr(step.value), step.note) in shown) and not result:
                continue
            shown.add((repr(step.value), step.note))
            line = Text(f"{step.name} = ")
            line.append_text(value_text(step.value, 8))
            if step.note:
                line.append(f" — {step.note}", style="italic")
            grid.add_row("", line)
        out.append(grid)
    # one line per (loss, gradient) the methods share: with --probs, naive's gradient is d loss/d p and softplus's
    # d loss/d x, two different numbers (compare 0 1 --probs: -inf and -1), so each line says which it is
    wrt_differs = len({r.grad_wrt for r in rows}) > 1
    groups: dict = {}
    for r in exact:
        groups.setdefault((short(r.loss, 10), short(r.grad, 10), r.grad_wrt), []).append(r)
    for same in groups.values():
        line = Text(", ".join(r.method for r in same) + ":", style="bold")
        wrt = f" (d loss/d {same[0].grad_wrt})" if wrt_differs else ""
        line.append(f" loss {short(same[0].loss, 10)} and gradient {short(same[0].grad, 10)}{wrt}, "
                    "correctly rounded.")
        out.append(line)
    return out


def _loss_index(steps) -> int:
    """The step that gives the loss: the last one before the gradient's steps."""
    grads = [i for i, s in enumerate(steps) if s.name.startswith("grad") or s.name in ("dloss/dx", "dloss/dp")]
    return (grads[0] if grads else len(steps)) - 1


def _capital(text: str | None) -> str:
    return "" if not text else text[0].upper() + text[1:]


def _same(a, b) -> bool:
    """Two rows show the same loss, status, gradient and gradient status (NaN equal to NaN, -0 not equal to 0)."""
    key = lambda r: (repr(r.loss), r.status, repr(r.grad), r.grad_status)  # noqa: E731
    return key(a) == key(b)


OVERVIEW_STATUS = 11  # the widest status cell of the overview: "inaccurate" (10) and a vector's "nan (3/3)" fit


def _grad_cell(grad, alarm: bool = True) -> Text:
    """A gradient for the overview: one number, or for a vector (a row of class logits) its first value and '…'
    (every value is in the gradient table); '-' for a method without a gradient."""
    if grad is None:
        return Text("-", style="dim")
    if isinstance(grad, list):
        return value_text(grad[0], alarm=alarm, width=8).append("…" if len(grad) > 1 else "")
    return value_text(grad, alarm=alarm)


def overview_table(comparison) -> Table:
    """A single-element compare in one table: per dtype a line with the exact values, then every method's loss,
    status, gradient and gradient status per backend; where numpy and torch agree on all four, one line says
    'both'. Fits 80 columns with every status word whole (the widest cells: a 21-character method, 9-character
    numbers, 'inaccurate'); the dtype heads its lines, so float8_e4m3fn costs no column."""
    table = Table(pad_edge=False, box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), show_edge=False)
    for name, justify in (("method", "left"), ("backend", "left"), ("loss", "right"), ("status", "left"),
                          ("grad", "right"), ("grad status", "left")):
        table.add_column(name, justify=justify, no_wrap=True)
    by_dtype: dict[str, list] = {}
    for r in comparison.rows:
        by_dtype.setdefault(r.dtype, []).append(r)
    for dtype, rows in by_dtype.items():
        first = rows[0]
        exact = " exact (mpmath)" if len(dtype) <= 8 else " exact"  # within the widest method (21) and its indent
        table.add_row(Text(dtype, style="bold").append(exact, style="dim"), "",
                      value_text(first.reference, alarm=False), "", _grad_cell(first.grad_reference, alarm=False), "")
        for method in dict.fromkeys(r.method for r in rows):
            mrows = [r for r in rows if r.method == method]
            if len(mrows) == 2 and _same(*mrows):
                mrows = [mrows[0]]
                backends = ["both"]
            else:
                backends = [r.backend for r in mrows]
            for r, b in zip(mrows, backends):
                table.add_row(f"  {method}", b, value_text(r.loss), status_text(r.status), _grad_cell(r.grad),
                              _worst(r.grad_status, OVERVIEW_STATUS) if isinstance(r.grad_status, list) else
                              status_text(r.grad_status or ""))
    return table


def _worst(statuses: list, width: int | None = None) -> Text:
    """The worst status of a vector's and how many share it ('nan (3/3)'); within ``width``, the word alone if
    the count does not fit."""
    worst = [s for s in ("nan", "inf", "clamped", "inaccurate") if s in statuses]
    text = status_text(worst[0] if worst else "ok")
    if worst:
        count = f" ({sum(s == worst[0] for s in statuses)}/{len(statuses)})"
        if width is None or len(text) + len(count) <= width:
            text.append(count)
    return text


def _compact(values: list) -> str:
    """The first value with 4 digits, then how many there are: keeps the gradient table within 80 columns."""
    return short(values[0], 4) + (f", … ({len(values)})" if len(values) > 1 else "")


def vector_grad_table(rows, dtype: str) -> Table:
    """The gradient of one row of class logits (softmax), a vector per method, under the exact one (mpmath; the
    same for every method and backend, so it is shown once). Fits 80 columns."""
    table = Table(title=f"[bold]{dtype}[/]  gradient d loss / d x", title_justify="left", pad_edge=False,
                  box=box.SIMPLE_HEAD)
    for name, justify in (("method", "left"), ("grad", "right"), ("bits", "right"), ("status", "left")):
        table.add_column(name, justify=justify, no_wrap=True)
    with_grad = [r for r in rows if r.grad is not None]
    if with_grad:
        table.add_row(Text("reference (mpmath)", style="italic"), value_text(with_grad[0].grad_reference,
                                                                              alarm=False), "", "")
    backend = None
    for r in with_grad:
        if r.backend != backend:
            table.add_section()
            backend = r.backend
            table.add_row(Text(_section(backend), style="bold"), "", "", "")
        status = _worst(r.grad_status)
        status.truncate(len(status.plain.split(" (")[0]))  # the worst status alone: the vector shows which
        table.add_row("  " + r.method, value_text(r.grad), Text(short(max(r.grad_error_bits), 3)), status)
    return table


def grad_table(rows, dtype: str) -> Table:
    """The gradient d loss / d x of every row, compact (within 80 columns), per backend."""
    table = Table(title=f"[bold]{dtype}[/]  {_grad_title(rows)}", title_justify="left", pad_edge=False,
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
            table.add_row(Text(_section(backend), style="bold"), "", "", "", "")
        if isinstance(r.grad, list):
            grad, ref = Text(_compact(r.grad)), Text(_compact(r.grad_reference))
            bits = Text(short(max(r.grad_error_bits), 3))
            status = _worst(r.grad_status)
        else:
            grad, ref = value_text(r.grad), value_text(r.grad_reference, alarm=False)
            bits, status = Text(short(r.grad_error_bits, 3)), status_text(r.grad_status)
        table.add_row("  " + r.method, grad, ref, bits, status)
    return table


def trace_table(rows, title: str = "step by step") -> Table:
    """The steps of every method side by side for the backends that ran, with the notes."""
    backends = list(dict.fromkeys(r.backend for r in rows))
    table = Table(title=title, title_justify="left", pad_edge=False, box=box.SIMPLE_HEAD)
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


def compare_renderable(comparison, steps: str = "answer"):
    return Group(*compare_tables(comparison, steps))
