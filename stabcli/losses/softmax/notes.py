"""Softmax cross-entropy in plain language: notes on each step of a trace, verdicts, and the summaries of compare
and sweep. Text only: nothing here prints.

A traced step of a softmax method holds a value per class (exp(x), p, log p) or per row (the sum, the loss); the
notes name the classes where something happened ("class 1").
"""

from __future__ import annotations

import math

import numpy as np

from stabcli.core.formats import Format, to_float64
from stabcli.core.numbers import fmt_number
from stabcli.losses import plain_notes


def num(v) -> str:
    """A number for a sentence ('inf', 'NaN', up to 10 digits), or a vector of them in brackets."""
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(fmt_number(x, 10) for x in v) + "]"
    return fmt_number(v, 10)


def _vals(ops, a) -> np.ndarray:
    return to_float64(ops.to_numpy(a)).reshape(-1)


def _classes(mask) -> str:
    idx = [int(i) for i in np.flatnonzero(mask)]
    return ("class " if len(idx) == 1 else "classes ") + ", ".join(map(str, idx))


def note(step, ops, fmt: Format) -> str:
    """What happened in this step, for the single row being traced ('' when nothing notable)."""
    value = _vals(ops, step.value)
    args = [_vals(ops, a) for a in step.args]
    kind = step.kind
    with np.errstate(all="ignore"):
        if kind == "exp" and args:
            arg = args[0]
            over = np.isinf(value) & np.isfinite(arg)
            under = (value == 0) & np.isfinite(arg)
            parts = []
            if over.any():
                parts.append(f"exp overflowed to inf for {_classes(over)} (the largest {fmt.name} is {fmt.max:g})")
            if under.any():
                parts.append(f"exp underflowed to 0 for {_classes(under)}")
            return "; ".join(parts)
        if kind == "sum" and args and np.isinf(value).any() and np.isfinite(args[0]).all():
            return "the sum overflowed to inf"
        if kind == "sum" and args and np.isinf(value).any():
            return "an inf term makes the sum inf"
        if kind == "div" and len(args) == 2:
            made_nan = np.isnan(value) & ~np.isnan(args[0])
            if made_nan.any():
                return f"inf/inf = NaN for {_classes(made_nan)}"
            zero = value == 0
            if zero.any():
                return f"p = 0 for {_classes(zero)}: its log will be -inf"
            return ""
        if kind == "softmax" and args:
            x = args[0]
            if np.isnan(value).any() and not np.isnan(x).any():
                return "softmax of an infinite logit: inf - inf = NaN"
            zero = (value == 0) & np.isfinite(x)
            if zero.any():
                return (f"p rounded to 0 for {_classes(zero)} in {fmt.name}: its probability is below half the "
                        "smallest subnormal")
            return ""
        if kind == "log" and args:
            minus_inf = (value == -math.inf) & np.isfinite(args[0])
            if minus_inf.any():
                return f"log(0) = -inf for {_classes(minus_inf)}"
            return ""
        if kind == "take":
            if (value == -math.inf).any():
                return "the target class has log p = -inf: its probability rounded to 0"
            return ""
        if kind == "mul" and len(args) == 2:
            a, b = np.broadcast_arrays(args[0], args[1])
            made = np.isnan(np.broadcast_to(value, a.shape)) & ~np.isnan(a) & ~np.isnan(b)
            if made.any():
                first = int(np.flatnonzero(made)[0])
                return f"{_factor(a[first])}·{_factor(b[first])} = NaN for {_classes(made)}"
            return ""
        if kind in ("loss", "torch_nll", "torch_ce", "sub"):
            if kind == "sub":
                return ""
            if np.isnan(value).any():
                if kind == "torch_ce" and args and np.isinf(args[0]).any():
                    return ("torch computes -Σ log p·q: a logit of ±inf gives log p = -inf or inf - inf, and "
                            "0·(-inf) = NaN")
                return "the NaN reaches the loss"
            if np.isinf(value).any():
                return "the loss is inf"
    return ""


def _factor(v: float) -> str:
    text = num(float(v))
    return f"({text})" if text.startswith("-") else text


def verdict(row, fmt: Format) -> str:
    """One sentence on a single-row result."""
    loss, ref, status = row.loss, row.reference, row.status
    if isinstance(loss, list):
        loss, ref, status = loss[0], ref[0], status[0]
    bits = row.error_bits[0] if isinstance(row.error_bits, list) else row.error_bits
    if status == "nan":
        return f"NaN where the true loss is {num(ref)}."
    if status == "inf" and plain_notes.beyond_format(ref, fmt):
        return f"inf: {plain_notes.overflow_reason(ref, fmt)}."
    if status == "inf":
        return f"inf where the true loss is {num(ref)}."
    if status == "inaccurate":
        return f"{num(loss)}, finite but wrong: the true loss is {num(ref)} ({bits:.1f} bits wrong)."
    if bits == 0:
        return f"{num(loss)}, correctly rounded."
    return f"{num(loss)}, within tolerance ({bits:.1f} bits off)."


def _as_list(v) -> list:
    return list(v) if isinstance(v, list) else [v]


def _worst(statuses) -> str:
    statuses = _as_list(statuses)
    for s in ("nan", "inf", "inaccurate"):
        if s in statuses:
            return s
    return "ok"


def grad_steps(row, gradient, fmt: Format) -> list[tuple[str, object, str]]:
    """The gradient of the traced row, d loss / d x per class (softmax - onehot for a hard target)."""
    g = _as_list(row.grad)
    value = g[0] if len(g) == 1 else g
    return [("dloss/dx", value, grad_note(row))]


def _short(v) -> str:
    return "[" + ", ".join(fmt_number(x, 4) for x in v) + "]"


def _step_has_zero(row, name: str) -> bool:
    """Whether the step ``name`` holds a 0 among finite values only (no NaN or inf came before it)."""
    step = next((s for s in row.steps or [] if s.name == name), None)
    values = _as_list(step.value) if step is not None else []
    return any(v == 0 for v in values) and all(math.isfinite(v) for v in values)


def grad_note(row) -> str:
    status = _worst(row.grad_status)
    g, ref = _as_list(row.grad), _as_list(row.grad_reference)
    if status == "ok":
        return ""
    if any(math.isnan(v) for v in g):
        p_name = "p = softmax(x)" if row.method == "log_of_softmax" else "p = exp(x)/sum"
        if row.backend == "torch" and _step_has_zero(row, p_name):
            return ("autograd sends 0 back for the classes the loss does not use, but log's backward divides it by "
                    f"p = 0: 0/0 = NaN, and the softmax's backward spreads it to every class (true {_short(ref)})")
        return f"NaN from an infinite or NaN intermediate (true softmax - target: {_short(ref)})"
    if status == "inaccurate" and any(v == 0 and r != 0 for v, r in zip(g, ref)):
        return f"a component vanished: the true gradient is {_short(ref)}"
    return f"the true gradient (softmax - target) is {_short(ref)}"


def grad_verdict(row, gradient, fmt: Format) -> str:
    status = _worst(row.grad_status)
    g, ref = _as_list(row.grad), _as_list(row.grad_reference)
    if status in ("nan", "inf"):
        return f"gradient {num(g)} where the true gradient is {num(ref)}."
    if status == "inaccurate":
        return f"gradient {num(g)}, wrong: the true gradient is {num(ref)}."
    return f"gradient {num(g)}, within tolerance."


# --- compare: a few sentences per dtype ----------------------------------------------------------------------

def _pick(rows, dtype: str, method: str):
    """The row for (dtype, method), preferring the torch backend (the real kernels) when both ran."""
    found = [r for r in rows if r.dtype == dtype and r.method == method]
    found.sort(key=lambda r: r.backend != "torch")
    return found[0] if found else None


def _why(row) -> str:
    """The first three notes of the forward steps (not the gradient's), as a parenthesis."""
    notes = [s.note for s in row.steps or [] if s.note and s.name != "dloss/dx"]
    notes = list(dict.fromkeys(notes))[:3]
    return f" ({'; '.join(notes)})" if notes else ""


def summary(comparison) -> list[str]:
    """Per dtype, what the methods give on the single row and why the broken ones break."""
    lines = []
    for dn in comparison.dtype_notes:
        parts = []
        if dn.input_overflow:
            parts.append(f"a logit overflows {dn.dtype} and is stored as inf.")
        for method in ("naive", "log_of_softmax", "logsumexp", "torch_cross_entropy"):
            row = _pick(comparison.rows, dn.dtype, method)
            if row is None:
                continue
            loss, ref, status = (v[0] if isinstance(v, list) else v for v in (row.loss, row.reference, row.status))
            if status in ("nan", "inf"):
                parts.append(f"{method} gives {num(loss)} where the true loss is {num(ref)}{_why(row)}.")
            elif status == "inaccurate":
                parts.append(f"{method} gives {num(loss)}, off the true {num(ref)}.")
            else:
                parts.append(f"{method} gives {num(loss)} (true {num(ref)}, ok).")
                if _worst(row.grad_status) in ("nan", "inf") and row.grad is not None:
                    parts[-1] = parts[-1][:-1] + (f", but its {row.backend} gradient is "
                                                  f"{num(_as_list(row.grad))}: {grad_note(row) or 'see the trace'}.")
        good = _pick(comparison.rows, dn.dtype, "torch_cross_entropy") or _pick(comparison.rows, dn.dtype, "logsumexp")
        if good is not None and good.grad is not None:
            parts.append(f"Gradient (softmax - target): {good.method} gives {num(_as_list(good.grad))} "
                         f"({_worst(good.grad_status)}).")
        lines.append(f"{dn.dtype}: " + " ".join(parts))
    return lines


# --- sweeps: one plain sentence per (backend, dtype, target) -------------------------------------------------

def _g(v: float) -> str:
    return fmt_number(v, None) if abs(v) >= 1e-3 or v == 0 else fmt_number(v, 6)


def _where(pos, neg) -> str:
    return " and ".join(p for p in ((f"g ≥ {_g(pos)}" if pos is not None else ""),
                                    (f"g ≤ {_g(neg)}" if neg is not None else "")) if p)


def _label(target) -> str:
    if np.ndim(target) == 0:
        return f"class {int(target)}"
    return "target [" + ", ".join(f"{v:g}" for v in target) + "]"


def sweep_summary(sweep) -> dict:
    """One sentence per (backend, dtype, target): where each method's loss, then its gradient, goes wrong."""
    out = {}
    for (backend, dtype, target), rows in sweep.cases().items():
        parts = []
        for r in rows:
            b = r.breakdown
            nf, bad = _where(b.nonfinite_pos, b.nonfinite_neg), _where(b.inaccurate_pos, b.inaccurate_neg)
            if nf:
                parts.append(f"{r.method} gives inf/NaN from {nf}"
                             + (f" (out of tolerance already from {bad})" if bad and bad != nf else ""))
            elif bad:
                parts.append(f"{r.method} stays finite but is out of tolerance from {bad}")
            else:
                parts.append(f"{r.method} stays within tolerance over the swept range")
        sentence = f"{dtype} ({backend}), {_label(target)}: " + "; ".join(parts) + "."
        grads = []
        for r in rows:
            if r.grad is None:
                continue
            gb = r.grad.breakdown
            wrong = _where(gb.inaccurate_pos, gb.inaccurate_neg)
            gone = _where(gb.vanished_pos, gb.vanished_neg)
            nonfinite = _where(gb.nonfinite_pos, gb.nonfinite_neg)
            if nonfinite:
                grads.append(f"{r.method}'s is inf/NaN from {nonfinite}")
            elif gone:
                grads.append(f"{r.method}'s vanishes from {gone}" + (f" (wrong from {wrong})" if wrong != gone else ""))
            elif wrong:
                grads.append(f"{r.method}'s leaves the tolerance from {wrong}")
        if grads:
            sentence += " Gradient d loss/d g: " + "; ".join(grads) + "."
        elif any(r.grad is not None for r in rows):
            sentence += " Every gradient d loss/d g stays within tolerance."
        out[(backend, dtype, target)] = sentence
    return out


def grid_line(sweep) -> str:
    """The line above a softmax sweep's tables: what was swept and how to read the tables."""
    g, opts = sweep.grid, sweep.options
    n, shift = opts.get("classes", 3), opts.get("shift", 0.0)
    row = "[" + ", ".join(["g" if shift == 0 else f"{shift:g} + g"] + [f"{shift:g}"] * (n - 1)) + "]"
    if n > 4:
        row = f"[g, 0, ..., 0] ({n} classes)" if shift == 0 else f"[{shift:g} + g, {shift:g}, ...] ({n} classes)"
    where = "every finite value of the dtype" if g.exhaustive else \
        f"{g.points:,} {g.spacing}-spaced values from {g.min:g} to {g.max:g}, rounded to the dtype"
    extra = []
    if opts.get("label_smoothing"):
        extra.append(f"label smoothing {opts['label_smoothing']:g}")
    if any(w != 1 for w in np.ravel(sweep.weight)):
        extra.append("class weights " + ", ".join(f"{w:g}" for w in np.ravel(sweep.weight)))
    more = f" ({'; '.join(extra)})" if extra else ""
    grad = (" Gradients are d loss/d g (softmax - target at the first class): inf/NaN, vanished (0 or below "
            "eps·|truth| where the truth is not) and off-tolerance counts; wrong g≥/g≤ is where it first goes wrong."
            if sweep.grad else "")
    return (f"softmax cross-entropy of the logit rows {row}, g over {where}{more}. Breakdowns are the gaps g closest "
            f"to 0 where a method first gives inf/NaN or leaves the tolerance; ovf counts the rows where an exp "
            f"overflowed.{grad}")
