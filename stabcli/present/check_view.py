"""`check` as rich tables and sentences, strict JSON and CSV. Returns; never prints."""

from __future__ import annotations

import csv
import io
import math

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from stabcli.present.common import count_text, csv_cell, dumps, logit_text, short, value_text
from stabcli.present.sweep_view import BREAKDOWN_KEYS, GRAD_BREAKDOWN_KEYS

WORST_SHOWN = 3  # worst elements per method in a table (JSON has --worst of them)


def row_dict(row) -> dict:
    """A check row for JSON: a sweep row's keys (target null: each element has its own), the means, the worst."""
    g = row.grad_counts
    return {
        "backend": row.backend, "dtype": row.dtype, "target": None, "method": row.method, "points": row.points,
        **{f"count_{k}": v for k, v in row.counts.items()},
        "count_overflow": row.count_overflow,
        "max_abs_error": row.max_abs_error, "max_error_bits": row.max_error_bits,
        "breakdown": {k: row.breakdown.get(k) for k in BREAKDOWN_KEYS},
        "grad_count_nonfinite": g["nonfinite"] if g else None,
        "grad_count_vanished": g["vanished"] if g else None,
        "grad_count_inaccurate": g["inaccurate"] if g else None,
        "grad_max_error_bits": row.grad_max_error_bits if g else None,
        "grad_breakdown": {k: row.grad_breakdown.get(k) for k in GRAD_BREAKDOWN_KEYS} if g else None,
        "training": row.training.as_dict() if row.training is not None else None,
        "grad_wrt": row.grad_wrt,
        "compute_dtype": row.compute_dtype,
        "refused": row.refused,
        "mean_loss": row.mean_loss, "mean_reference": row.mean_reference, "mean_rel_error": row.mean_rel_error,
        "mean_excludes_nan_inputs": row.nan_inputs,
        "worst": [w.as_json() for w in row.worst],
    }


def check_json(check) -> str:
    doc = {
        "command": "check",
        "loss": check.family,
        "probs": check.probs,
        "logits_file": check.logits.as_json(),
        "targets_file": check.targets.as_json(),
        "shape": list(check.shape),
        "elements": check.elements,
        "dtypes": [n.dtype for n in check.inputs],
        "weight": check.weight,
        "pos_weight": check.pos_weight,
        **({"autocast": check.autocast.as_json()} if check.autocast is not None else {}),
        "engine": check.method,
        "inputs": [{"dtype": n.dtype, "logits_changed": n.logits_changed, "logits_overflowed": n.logits_overflowed,
                    "targets_changed": n.targets_changed, "distinct_pairs": n.distinct} for n in check.inputs],
        "results": [row_dict(r) for r in check.rows],
        "summary": summary_lines(check),
        "notes": check.notes,
    }
    return dumps(doc)


CSV_COLUMNS = ("backend", "dtype", "method", "points", "count_ok", "count_inaccurate", "count_clamped", "count_inf",
               "count_nan", "count_overflow", "max_abs_error", "max_error_bits", *BREAKDOWN_KEYS,
               "grad_count_nonfinite", "grad_count_vanished", "grad_count_inaccurate", "grad_max_error_bits",
               "grad_wrt", "compute_dtype", "refused", "mean_loss", "mean_reference", "mean_rel_error",
               "worst_index", "worst_logit", "worst_target", "worst_loss", "worst_reference", "worst_status")


def check_csv(check) -> str:
    """One line per (backend, dtype, method); the worst element's columns hold the single worst one (JSON has
    more); an index is its axes joined by ';'."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in check.rows:
        d = row_dict(r)
        w = r.worst[0] if r.worst else None
        cells = [d[k] for k in CSV_COLUMNS[:12]] + [d["breakdown"][k] for k in BREAKDOWN_KEYS] + \
            [d[k] for k in ("grad_count_nonfinite", "grad_count_vanished", "grad_count_inaccurate",
                            "grad_max_error_bits", "grad_wrt", "compute_dtype")] + \
            [" ".join(r.refused.split()) if r.refused else None, d["mean_loss"], d["mean_reference"],
             d["mean_rel_error"]] + \
            ([";".join(str(i) for i in w.index), w.logit, w.target, w.loss, w.reference, w.status] if w else
             [None] * 6)
        writer.writerow(["" if v is None else csv_cell(v) for v in cells])
    return out.getvalue()


def _n(v: int) -> str:
    return f"{v:,}"


def _elements(v: int) -> str:
    return f"{v:,} element" + ("" if v == 1 else "s")


def header_lines(check) -> list[str]:
    lt, tt = check.logits, check.targets
    first = "probabilities" if check.probs else "logits"
    lines = [f"check: {first} {lt.name} ({lt.stored}, shape {tuple(lt.shape)}) and targets {tt.name} "
             f"({tt.stored}, shape {tuple(tt.shape)}): {_n(check.elements)} elements"
             + (f" (broadcast to {tuple(check.shape)})" if lt.shape != tt.shape and check.method == "stream" else "")
             + ("; each row of class logits against mpmath (compare's engine)" if check.method == "compare" else "")
             + "."]
    for n in check.inputs:
        parts = []
        if n.distinct is not None:
            one = "probability" if check.probs else "logit"
            parts.append(f"{_n(n.distinct)} distinct ({one}, target) pairs, each evaluated once")
        if n.logits_changed:
            over = f", {_n(n.logits_overflowed)} of them to ±inf" if n.logits_overflowed else ""
            one = "probability" if check.probs else "logit"
            parts.append(f"{_n(n.logits_changed)} {first if n.logits_changed != 1 else one} changed by rounding to "
                         f"{n.dtype}{over}")
        if n.targets_changed:
            parts.append(f"{_n(n.targets_changed)} target{'s' if n.targets_changed != 1 else ''} changed by rounding "
                         f"to {n.dtype}")
        if parts:
            lines.append(f"{n.dtype}: " + "; ".join(parts) + ".")
    return lines


def _x(v, digits: int = 8) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(short(e, 4) for e in v) + "]"
    return short(v, digits)


def summary_lines(check) -> list[str]:
    """One sentence per (backend, dtype): what each method does on this file for training, worst first (as
    ``sweep --severity training`` ranks: inf/NaN in the loss or the gradient, a gradient lost where the truth
    matters, off tolerance, fine), and where on each side of 0 it first happens, and how."""
    groups: dict = {}
    for r in check.rows:
        groups.setdefault((r.backend, r.dtype), []).append(r)
    v = "p" if check.probs else "x"
    out = []
    for (backend, dtype), rows in groups.items():
        bad, fine = [], []
        for r in rows:
            if r.refused:
                bad.append((-1, f"{r.method} is refused by torch.autocast"))
                continue
            c = r.counts
            t = r.training
            cls = t.cls if t is not None else ("diverges" if c["inf"] + c["nan"] else
                                               "inaccurate" if c["inaccurate"] + c["clamped"] else "ok")
            if cls == "diverges" and t is not None:
                bad.append((0, f"{r.method} gives inf/NaN (loss or gradient) on {_elements(t.count_nonfinite)}"
                               f"{_diverges_text(t, v)}"))
            elif cls == "diverges":
                bad.append((0, f"{r.method} gives inf/NaN on {_elements(c['inf'] + c['nan'])}"
                               f"{_sides(r.breakdown, 'nonfinite', v, dtype)}"))
            elif cls == "stalls":
                bad.append((1, f"{r.method}'s gradient stalls (vanishes where the truth matters) on "
                               f"{_elements(t.count_stalled)}: {' and '.join(_breaks(t, v)[1])}"))
            elif cls == "inaccurate" and c["clamped"] and r.max_error_bits > 0:
                bad.append((2, f"{r.method} is finite only because the -100 clamp fired ({_elements(c['clamped'])}"
                               f"{_sides(r.breakdown, 'clamped', v, dtype)})"))
            elif cls == "inaccurate":
                off = c["inaccurate"] + c["clamped"]
                what = f" is off tolerance on {_elements(off)}{_sides(r.breakdown, 'inaccurate', v, dtype)}" if off \
                    else (f"'s loss is within tolerance, its gradient off tolerance on "
                          f"{_elements(r.grad_counts['inaccurate'])}")
                bad.append((2, f"{r.method}{what}"))
            else:
                fine.append(r.method)
        bad.sort(key=lambda b: b[0])
        parts = [b[1] for b in bad]
        if fine:
            parts.append(f"{', '.join(fine)} {'is' if len(fine) == 1 else 'are'} within tolerance everywhere")
        out.append(f"{dtype} ({backend}): " + "; ".join(parts) + ".")
    return out


def _at(v: str, rel: str, x: float) -> str:
    """'from x ≥ 7.625', or 'at x = inf' where the side's first point is the end of the range (nothing lies beyond
    it: x = ±inf, or p = 0 or 1 with --probs)."""
    from stabcli.core.numbers import fmt_number

    end = math.isinf(x) or (v == "p" and x in (0.0, 1.0))
    return f"at {v} = {fmt_number(x, None)}" if end else f"from {v} {rel} {fmt_number(x, None)}"


def _diverges_text(t, v: str) -> str:
    """Where a diverging method first gives inf/NaN on each side, and, apart, where its gradient stalls (a stall is
    not an inf/NaN: 'grad 0 from x ≥ 7.625' under 'gives inf/NaN' read as one)."""
    div, stall = _breaks(t, v)
    text = f": {', '.join(div)}" if div else ""
    if stall:
        text += f"; its gradient stalls {' and '.join(stall)}"
    return text


def _breaks(t, v: str) -> tuple[list[str], list[str]]:
    """Per side of 0, where training first breaks: ('loss inf from x ≥ 8', ...) for inf/NaN, and ('from x ≥ 8 (0
    where the truth is 0.9997)', ...) for a stalled gradient."""
    from stabcli.core.numbers import fmt_number

    div, stall = [], []
    for side, rel in (("pos", "≥"), ("neg", "≤")):
        x, kind = getattr(t, f"break_{side}"), getattr(t, f"break_{side}_kind")
        if x is None:
            continue
        if kind in ("grad 0", "grad ≈0"):
            truth = getattr(t, f"truth_{side}")
            stall.append(f"{_at(v, rel, x)} ({kind.split()[1]}" +
                         (f" where the truth is {fmt_number(truth, 4)})" if truth is not None else ")"))
            later = getattr(t, f"diverge_{side}")
            if later is not None:
                div.append(f"inf/NaN {_at(v, rel, later)}")
        else:
            div.append(f"{kind} {_at(v, rel, x)}")
    return div, stall


def _sides(breakdown: dict, kind: str, v: str, dtype: str) -> str:
    pos, neg = breakdown.get(f"{kind}_pos"), breakdown.get(f"{kind}_neg")
    parts = [(f"{v} = {logit_text(x, dtype).plain}" if math.isinf(x) or (v == "p" and x in (0.0, 1.0))
              else f"{v} {rel} {logit_text(x, dtype).plain}")
             if x is not None else None for x, rel in ((pos, "≥"), (neg, "≤"))]
    parts = [p for p in parts if p]
    return f", first at {' and '.join(parts)}" if parts else ""


def check_tables(check, width: int = 80, severity: str = "accuracy") -> list:
    """Per (backend, dtype): the counts, the means and the gradients (``severity="accuracy"``), or the methods ranked
    for training as ``sweep --severity training`` ranks them (``"training"``); then the worst elements and the
    sentence on where each method breaks."""
    out: list = [Text(line, style="dim") for line in header_lines(check)]
    groups: dict = {}
    for r in check.rows:
        groups.setdefault((r.backend, r.dtype), []).append(r)
    sentences = dict(zip(groups, summary_lines(check)))
    for (backend, dtype), rows in groups.items():
        live = [r for r in rows if not r.refused]
        title = f"[bold]{dtype}[/] · {backend} · {_n(rows[0].points or check.elements)} elements"
        if severity == "training" and any(r.training is not None for r in live):
            from stabcli.present.sweep_view import WIDE_LAYOUT, training_table

            out.append(training_table(live, dtype, title, wide=width >= WIDE_LAYOUT, v="p" if check.probs else "x"))
            out += _worst_lines(check, live, dtype)
            out += _refused_lines(rows)
            out += [Text(sentences[(backend, dtype)]), Text("")]
            continue
        counts = Table(title=title, title_justify="left", pad_edge=False, box=box.SIMPLE_HEAD, padding=(0, 0, 0, 1))
        counts.add_column("method", no_wrap=True)
        for name in ("ok", "inacc", "clamp", "inf", "nan", "ovf"):
            counts.add_column(name, justify="right", no_wrap=True)
        for r in live:
            c = r.counts
            counts.add_row(Text(r.method), count_text(c["ok"], "green"), count_text(c["inaccurate"], "yellow"),
                           count_text(c["clamped"], "magenta"), count_text(c["inf"], "bold red"),
                           count_text(c["nan"], "bold red"), count_text(r.count_overflow, "red"))
        out.append(counts)
        means = Table(pad_edge=False, box=box.SIMPLE_HEAD, padding=(0, 0, 0, 1))
        for name, justify in (("method", "left"), ("mean loss", "right"), ("exact mean", "right"),
                              ("rel err", "right"), ("max bits", "right")):
            means.add_column(name, justify=justify, no_wrap=True)
        if any(r.compute_dtype and r.compute_dtype != dtype for r in live):
            means.add_column("in", no_wrap=True)
        wide_in = len(means.columns) == 6
        for r in live:
            cells = [Text(r.method), value_text(r.mean_loss), value_text(r.mean_reference, alarm=False),
                     Text(short(r.mean_rel_error, 3)), Text(short(r.max_error_bits, 3))]
            means.add_row(*cells, *([Text(r.compute_dtype or "", style="dim")] if wide_in else []))
        out.append(means)
        skipped = max((r.nan_inputs for r in live), default=0)
        if skipped:
            out.append(Text(f"the means leave out the {_elements(skipped)} whose input is NaN (NaN in, NaN out)",
                            style="dim"))
        if any(r.grad_counts for r in live):
            wrt = sorted({r.grad_wrt for r in live})
            grads = Table(pad_edge=False, box=box.SIMPLE_HEAD, padding=(0, 0, 0, 1))
            grads.add_column(f"gradient d/d{'/'.join(wrt)}", no_wrap=True)
            for name in ("nonfin", "vanish", "inacc", "bits"):
                grads.add_column(name, justify="right", no_wrap=True)
            for r in live:
                if r.grad_counts is None:
                    continue
                g = r.grad_counts
                grads.add_row(Text(r.method), count_text(g["nonfinite"], "bold red"), count_text(g["vanished"], "red"),
                              count_text(g["inaccurate"], "yellow"), Text(short(r.grad_max_error_bits, 3)))
            out.append(grads)
        out += _worst_lines(check, live, dtype)
        out += _refused_lines(rows)
        sentence = sentences.get((backend, dtype))
        if sentence:
            out.append(Text(sentence))
        out.append(Text(""))
    for note in check.notes:
        out.append(Text(f"note: {note}", style="dim"))
    return out


def _worst_lines(check, live, dtype: str) -> list:
    out: list = []
    v = "p" if check.probs else "x"
    for r in live:
        bad = [w for w in r.worst if w.status != "ok"][:WORST_SHOWN]
        if not bad:
            continue
        if not out:
            out.append(Text("worst elements (index in the file, input, target: loss):", style="bold"))
        out.append(Text(f"  {r.method}"))
        for w in bad:
            more = f", {_n(w.count)} alike" if w.count > 1 else ""
            x = _x(w.logit, 8) if isinstance(w.logit, list) else logit_text(w.logit, dtype).plain
            out.append(Text(f"    {w.index} {v}={x} y={_x(w.target, 4)}: {short(w.loss, 7)} "
                            f"(exact {short(w.reference, 6)}, {w.status}{more})"))
    return out


def _refused_lines(rows) -> list:
    return [Text(f"{r.method}: refused by torch.autocast, torch's message: " + " ".join(r.refused.split()),
                 style="dim") for r in rows if r.refused]


def check_renderable(check, width: int = 80, severity: str = "accuracy"):
    return Group(*check_tables(check, width, severity))
