"""Plain-language notes on each step of a trace, and verdicts on results. Text only: nothing here prints."""

from __future__ import annotations

import math

import numpy as np

from stabcli.formats import Format, to_float64
from stabcli.formulas import LOG_CLAMP


def num(v: float) -> str:
    """A float for a sentence: 'inf', '-inf', 'NaN', or up to 10 significant digits."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v == 0:
        return "-0" if math.copysign(1, v) < 0 else "0"
    text = f"{v:.10g}"
    if "e" in text:  # 1e+10 -> 1e10, 1e-05 -> 1e-5
        mant, exp = text.split("e")
        text = f"{mant}e{int(exp)}"
    return text


def factor(v: float) -> str:
    """A number as a factor in a product: negative ones in parentheses, as in 0·(-inf)."""
    text = num(v)
    return f"({text})" if text.startswith("-") else text


def _first(ops, a) -> float:
    return float(to_float64(ops.to_numpy(a)).reshape(-1)[0])


def note(step, ops, fmt: Format) -> str:
    """What happened in this step, for the single element being traced ('' when nothing notable)."""
    value = _first(ops, step.value)
    args = [_first(ops, a) for a in step.args]
    kind = step.kind
    if kind == "sigmoid":
        x = args[0]
        if math.isinf(x):
            return f"x = {num(x)}, so p = {num(value)} exactly"
        if value == 1.0:
            return f"sigmoid rounded to exactly 1.0 in {fmt.name}: 1 - p is 0"
        if value == 0.0:
            if ops.name == "numpy" and x < 0:
                with np.errstate(all="ignore"):
                    if np.isinf(ops.exp(-ops.array(np.array([x], dtype=np.float64).astype(fmt.np_dtype)))[0]):
                        return "exp(-x) overflowed to inf, so p = 1/(1 + inf) = 0"
            return f"sigmoid underflowed to 0 in {fmt.name}"
        return ""
    if kind == "sub" and value == 0.0:
        return "1 - 1 = 0: the information in p is gone"
    if kind == "exp" and args:
        t = args[0]
        if math.isinf(value) and math.isfinite(t):
            return f"exp overflowed to inf (the largest {fmt.name} is {fmt.max:g})"
        if value == 0.0 and math.isfinite(t) and t < 0:
            return "exp underflowed to 0 (harmless: it is added to a larger term)"
        return ""
    if kind == "softplus" and args and math.isinf(args[0]):
        return "exact limit: softplus(+inf) = +inf" if args[0] > 0 else "exact limit: softplus(-inf) = 0"
    if kind == "log" and args:
        if args[0] == 0.0:
            return "log(0) = -inf"
        if step.name == "log(p)" and args[0] == 1.0:
            return "log(1) = 0 exactly: a target-1 loss of 0 whatever the true value"
        return ""
    if kind == "clamp" and args:
        if args[0] < LOG_CLAMP:
            return f"clamp fired: {num(args[0])} -> -100"
        return ""
    if kind == "mul" and len(args) == 2:
        a, b = args
        if math.isnan(value) and not (math.isnan(a) or math.isnan(b)):
            return f"{factor(a)}·{factor(b)} = NaN"
        if (a == 0 or b == 0) and LOG_CLAMP in (a, b):
            return "0·(-100) = 0: the clamp hides the NaN that 0·log(0) would be"
        return ""
    if kind in ("loss", "torch_bce", "torch_bcewl"):
        if math.isnan(value):
            if kind == "torch_bce" and args and math.isnan(args[0]):
                return "torch refuses a NaN probability (RuntimeError); shown as NaN"
            if kind == "torch_bcewl":
                return "torch computes (1-y)·x - logsigmoid(x): at an infinite logit that is 0·inf or inf - inf = NaN"
            return "the NaN reaches the loss"
        if math.isinf(value):
            return "the loss is inf"
        if kind == "torch_bce" and value == 100.0:
            return "torch clamps each log at -100, so the loss is capped at 100"
    return ""


def verdict(row, fmt: Format) -> str:
    """One sentence on a single-element result."""
    loss, ref, status = row.loss, row.reference, row.status
    if status == "nan":
        return f"NaN where the true loss is {num(ref)}."
    if status == "inf":
        return f"inf where the true loss is {num(ref)}."
    if status == "clamped":
        if row.abs_error == 0 or row.error_bits == 0:
            return f"{num(loss)}, correct, but only because the -100 clamp replaced a -inf log: without it, NaN."
        return f"{num(loss)} where the true loss is {num(ref)}: the -100 clamp caps the loss and hides the overflow."
    if status == "inaccurate":
        return f"{num(loss)}, finite but wrong: the true loss is {num(ref)} ({row.error_bits:.1f} bits wrong)."
    if row.error_bits == 0:
        return f"{num(loss)}, correctly rounded."
    return f"{num(loss)}, within tolerance ({row.error_bits:.1f} bits off)."


def _pick(rows, dtype: str, method: str):
    """The row for (dtype, method), preferring the torch backend (the real kernels) when both ran."""
    found = [r for r in rows if r.dtype == dtype and r.method == method]
    found.sort(key=lambda r: r.backend != "torch")
    return found[0] if found else None


def _first_note(row, needle: str) -> str:
    for step in row.steps or []:
        if needle in step.note:
            return step.note
    return ""


def summary(comparison) -> list[str]:
    """Per dtype, a few sentences that tell what the single-logit rows show (the 1e10 story when it applies)."""
    lines: list[str] = []
    x = float(comparison.inputs.logits.reshape(-1)[0])
    y = float(comparison.inputs.targets.reshape(-1)[0])
    for dn in comparison.dtype_notes:
        parts: list[str] = []
        stored = dn.logits[0]
        if dn.input_overflow:
            parts.append(f"x = {num(x)} is not a {dn.dtype} number: it overflows to {num(stored)}.")
        elif stored != x and not math.isnan(x):
            parts.append(f"x = {num(x)} is stored as {num(stored)}.")
        naive = _pick(comparison.rows, dn.dtype, "naive")
        if naive is not None and naive.status in ("nan", "inf"):
            why = [n for n in (_first_note(naive, "rounded to exactly"), _first_note(naive, "underflowed"),
                               _first_note(naive, "overflowed"), _first_note(naive, "log(0)"),
                               _first_note(naive, "= NaN")) if n]
            parts.append(f"naive gives {num(naive.loss)}" + (f" ({'; '.join(why)})." if why else "."))
        elif naive is not None:
            parts.append(f"naive gives {num(naive.loss)} ({naive.status}).")
        bce = _pick(comparison.rows, dn.dtype, "torch_bce") or _pick(comparison.rows, dn.dtype, "clamped")
        if bce is not None:
            label = "BCELoss (torch_bce)" if bce.method == "torch_bce" else "the clamped form (BCELoss's rule)"
            if bce.status == "clamped" and naive is not None and naive.status == "nan":
                parts.append(f"{label} clamps the -inf log to -100, so 0·(-100) = 0 and it returns {num(bce.loss)}: "
                             f"the clamp hides the NaN.")
            elif bce.status == "clamped":
                parts.append(f"{label} returns {num(bce.loss)} where the true loss is {num(bce.reference)}: "
                             f"the -100 clamp caps it.")
            else:
                parts.append(f"{label} returns {num(bce.loss)} ({bce.status}).")
        flipped = _pick(comparison.flipped, dn.dtype, bce.method if bce is not None else "clamped")
        if flipped is not None and flipped.status == "clamped" and flipped.error_bits == 0:
            parts.append(f"With target {num(1.0 - y)} it returns the right {num(flipped.loss)}, but only because "
                         f"the clamp hides 0·log(0) = NaN.")
        elif flipped is not None and flipped.status in ("clamped", "inaccurate", "nan", "inf"):
            parts.append(f"With target {num(1.0 - y)} it returns {num(flipped.loss)} where the true loss is "
                         f"{num(flipped.reference)}.")
        good = _pick(comparison.rows, dn.dtype, "softplus")
        if good is not None:
            parts.append(f"softplus gives {num(good.loss)} (true {num(good.reference)}, {good.status}).")
        lines.append(f"{dn.dtype}: " + " ".join(parts))
    return lines
