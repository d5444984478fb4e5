"""The words any loss family gets for free: notes on steps, verdicts and summaries from the numbers alone.

A family plugs in its own ``notes`` module to tell its story (BCE's -100 clamp, softmax's 0·(-inf)); a new family
starts with this one (``LossFamily.notes``). Text only: nothing here prints.
"""

from __future__ import annotations

import math

import numpy as np

from stabcli.core.formats import Format, to_float64
from stabcli.core.numbers import fmt_number


def num(v) -> str:
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(fmt_number(x, 10) for x in v) + "]"
    return fmt_number(v, 10)


def _one(v):
    return v[0] if isinstance(v, list) and len(v) == 1 else v


def note(step, ops, fmt: Format) -> str:
    """What the numbers of a step show: an exp that overflowed, a log of 0, a NaN made from numbers."""
    value = to_float64(ops.to_numpy(step.value)).reshape(-1)
    args = [to_float64(ops.to_numpy(a)).reshape(-1) for a in step.args]
    with np.errstate(all="ignore"):
        if step.kind == "exp" and args and (np.isinf(value) & np.isfinite(args[0][:1])).any():
            return f"exp overflowed to inf (the largest {fmt.name} is {fmt.max:g})"
        if step.kind == "log" and args and ((value == -math.inf) & np.isfinite(args[0][:1])).any():
            return "log(0) = -inf"
        if np.isnan(value).any() and args and not any(np.isnan(a).any() for a in args):
            return "NaN made here from numbers"
    return ""


def beyond_format(ref, fmt: Format) -> bool:
    """Whether a finite exact value (as the nearest float64; inf where it is beyond float64 too) rounds past the
    largest value of ``fmt``: no formula can return it in that dtype."""
    try:
        value = float(ref)
    except (TypeError, ValueError):
        return False
    if math.isnan(value):
        return False
    return math.isinf(value) or not math.isfinite(float(to_float64(fmt.round(np.array(value)))))


def overflow_reason(ref, fmt: Format) -> str:
    """Why an infinite loss is ``inf`` although its exact value also rounds to inf: the sentence's second half."""
    shown = "beyond float64" if math.isinf(float(ref)) else f"{num(ref)}, beyond"
    return (f"the loss overflowed {fmt.name}: the true loss ({shown} {fmt.name}'s largest value "
            f"{fmt_number(fmt.max, 10)}) cannot be held in {fmt.name} by any formula")


def verdict(row, fmt: Format) -> str:
    loss, ref, status = (_one(v) for v in (row.loss, row.reference, row.status))
    if status == "inf" and beyond_format(ref, fmt):
        return f"inf: {overflow_reason(ref, fmt)}."
    if status in ("nan", "inf"):
        return f"{num(loss)} where the true loss is {num(ref)}."
    if status == "inaccurate":
        return f"{num(loss)}, finite but wrong: the true loss is {num(ref)}."
    return f"{num(loss)}, {status}."


def grad_steps(row, gradient, fmt: Format) -> list:
    return [("dloss/dx", _one(row.grad), "")]


def grad_verdict(row, gradient, fmt: Format) -> str:
    g, ref, status = (_one(v) for v in (row.grad, row.grad_reference, row.grad_status))
    return f"gradient {num(g)} ({status}; true {num(ref)})."


def summary(comparison) -> list[str]:
    """Per dtype: each method's loss against the truth."""
    lines = []
    for dn in comparison.dtype_notes:
        rows = [r for r in comparison.rows if r.dtype == dn.dtype]
        parts = [f"{r.method} ({r.backend}) gives {num(_one(r.loss))} ({_one(r.status)})" for r in rows]
        lines.append(f"{dn.dtype}: " + "; ".join(parts) + ".")
    return lines


def sweep_summary(sweep) -> dict:
    """Per (backend, dtype, target): where each method first gives inf/NaN or leaves the tolerance."""
    out: dict = {}
    for r in sweep.rows:
        b = r.breakdown
        where = [f"{k.replace('_pos', ' x ≥').replace('_neg', ' x ≤')} {fmt_number(v, None)}"
                 for k, v in vars(b).items() if v is not None and not k.startswith("clamped")]
        text = f"{r.method}: " + ("; ".join(where) if where else "within tolerance over the swept range")
        key = (r.backend, r.dtype, r.target)
        out[key] = (out[key] + "; " if key in out else f"{r.dtype} ({r.backend}), target {r.target}: ") + text
    return {k: v + "." for k, v in out.items()}
