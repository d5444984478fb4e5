"""BCE on probabilities (``--probs``) in plain language: BCE's notes, plus what p as given and the logit recovered
from it did. Text only: nothing here prints."""

from __future__ import annotations

import math

from stabcli.core.formats import Format, to_float64
from stabcli.losses import plain_notes
from stabcli.losses.bce import notes as bce_notes

num = bce_notes.num


def _first(ops, a) -> float:
    return float(to_float64(ops.to_numpy(a)).reshape(-1)[0])


def note(step, ops, fmt: Format) -> str:
    if step.kind == "given_p":
        p = _first(ops, step.value)
        if p == 1.0:
            return f"p = 1 exactly in {fmt.name}: 1 - p is 0, so log(1 - p) = log(0) = -inf"
        if p == 0.0:
            return f"p = 0 exactly in {fmt.name}: log(p) = log(0) = -inf"
        return "p as given, rounded to the dtype; no sigmoid"
    if step.kind == "logit_from_p":
        x = _first(ops, step.value)
        if math.isinf(x):
            return f"p = {'1' if x > 0 else '0'}, so the logit is {num(x)}: the logit form takes its exact limit"
        p = _first(ops, step.args[0]) if step.args else math.nan
        if math.isnan(x) and p in (0.0, 1.0) and not fmt.has_inf:
            return (f"p = {num(p)}, so the logit is {'inf' if p else '-inf'}, which {fmt.name} cannot hold (it has no "
                    "inf): it becomes NaN, and NaN in is NaN out")
        return (f"the logit recovered from p in float64, log(p) - log1p(-p), rounded to {fmt.name}: the logit "
                "forms need a logit, and its rounding is part of their error")
    return bce_notes.note(step, ops, fmt)


def verdict(row, fmt: Format) -> str:
    return bce_notes.verdict(row, fmt)


def grad_steps(row, gradient, fmt: Format) -> list[tuple[str, float, str]]:
    g = plain_notes._one(row.grad)
    name = f"dloss/d{row.grad_wrt}"
    if row.method == "torch_bce" and "p(1-p)" in gradient.details:
        steps = [(n, v, note) for n, v, note in bce_notes.grad_steps(row, gradient, fmt) if n != "dloss/dx"]
        return steps + [(name, g, "BCELoss's backward gives d loss / d p: (p-y)/max(p(1-p), 1e-12)")]
    return [(name, g, "")]


def grad_verdict(row, gradient, fmt: Format) -> str:
    return f"(d loss/d{row.grad_wrt}) " + bce_notes.grad_verdict(row, gradient, fmt)


def summary(comparison) -> list[str]:
    """Per dtype: p as stored, each method's loss against the truth, and which methods took p and which a logit."""
    lines = []
    typed = float(comparison.inputs.probs.reshape(-1)[0])
    for dn in comparison.dtype_notes:
        rows = [r for r in comparison.rows if r.dtype == dn.dtype]
        parts = []
        stored = dn.logits[0]
        if stored != typed and stored in (0.0, 1.0):
            from stabcli.core.exact import to_float64_nearest
            from stabcli.core.numbers import float_command
            from stabcli.losses.bce.probs import exact_loss_p

            inputs = comparison.inputs
            at_typed = to_float64_nearest(exact_loss_p(typed, *(float(a.reshape(-1)[0]) for a in (
                inputs.targets, inputs.weight, inputs.pos_weight))))
            parts.append(f"p = {num(typed)} is stored as {num(stored)} in {dn.dtype} "
                         f"({float_command(typed, dn.dtype)} shows why), so every method sees p = {num(stored)}: "
                         f"the exact loss there is {num(rows[0].reference if rows else float('nan'))}, where at the "
                         f"typed p it is {num(at_typed)}.".replace("..", "."))
        for r in rows:
            if plain_notes._one(r.status) == "refused":
                parts.append(f"{r.method} is refused by torch.autocast")
                continue
            parts.append(f"{r.method} ({r.backend}) gives {num(plain_notes._one(r.loss))} "
                         f"({plain_notes._one(r.status)})")
        first, methods = (parts[:1], parts[1:]) if parts and parts[0].startswith("p = ") else ([], parts)
        lines.append(f"{dn.dtype}: " + " ".join(first + ["; ".join(methods) + "."]) + " naive, clamped and torch_bce "
                     "take p; logsumexp, softplus and torch_bce_with_logits take the logit recovered from p in float64.")
    return lines


def sweep_summary(sweep) -> dict:
    return {}


def answer(comparison, dtype: str, backend: str) -> list[str]:
    """The answer to a single-probability compare for one dtype and backend: the truth at p as stored (and at p as
    typed where rounding moved it to 0 or 1), then what each method gives."""
    inputs = comparison.inputs
    typed = float(inputs.probs.reshape(-1)[0])
    y = float(inputs.targets.reshape(-1)[0])
    rows = [r for r in comparison.rows if r.dtype == dtype and r.backend == backend]
    dn = next(d for d in comparison.dtype_notes if d.dtype == dtype)
    stored = dn.logits[0]
    ref = rows[0].reference if rows else float("nan")
    head = f"p = {num(typed)}, target {num(y)}, in {dtype} on the {backend} backend: the true loss is {num(ref)}."
    lines = [head]
    if stored != typed:
        from stabcli.core.exact import to_float64_nearest
        from stabcli.core.numbers import float_command
        from stabcli.losses.bce.probs import exact_loss_p

        at_typed = to_float64_nearest(exact_loss_p(typed, y, *(float(a.reshape(-1)[0]) for a in (
            inputs.weight, inputs.pos_weight))))
        lines.append(f"p = {num(typed)} is stored as {num(stored)} in {dtype} ({float_command(typed, dtype)} shows "
                     f"why): every method sees that p; at the typed p the true loss is {num(at_typed)}.")
    parts = []
    for r in rows:
        status = plain_notes._one(r.status)
        parts.append(f"{r.method} is refused by torch.autocast" if status == "refused" else
                     f"{r.method} gives {num(plain_notes._one(r.loss))} ({status})")
    lines.append("; ".join(parts) + ".")
    lines.append("naive, clamped and torch_bce take p; the logit forms take logit(p), recovered in float64.")
    return lines
