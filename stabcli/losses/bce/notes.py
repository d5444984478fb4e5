"""BCE in plain language: notes on each step of a trace, verdicts, and the summaries of compare and sweep.

Text only: nothing here prints.
"""

from __future__ import annotations

import math

import numpy as np

from stabcli.core.floats import torch_cast
from stabcli.core.formats import FORMATS, Format, to_float64
from stabcli.core.numbers import float_command, fmt_number
from stabcli.losses import plain_notes
from stabcli.losses.bce.formulas import LOG_CLAMP


def num(v: float) -> str:
    """A float for a sentence: 'inf', '-inf', 'NaN', or up to 10 significant digits (1e10, not 1e+10)."""
    return fmt_number(v, 10)


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
        if math.isnan(x):
            return "x is NaN, so p is NaN"
        if math.isnan(value) and not fmt.has_inf:
            return f"exp(-x) overflowed: {fmt.name} has no inf, so exp(-x) is NaN, and so is p = 1/(1 + NaN)"
        if value == 1.0:
            return f"sigmoid rounded to exactly 1.0 in {fmt.name}: 1 - p is 0"
        if value == 0.0:
            return _sigmoid_zero(x, fmt, op_by_op=ops.name == "numpy" and "keras" not in step.name)
        return ""
    if kind == "sub" and value == 0.0:
        return "1 - 1 = 0: the information in p is gone"
    if kind == "exp" and args:
        t = args[0]
        if math.isinf(value) and math.isfinite(t):
            return f"exp overflowed to inf (the largest {fmt.name} is {fmt.max:g})"
        if math.isnan(value) and math.isfinite(t):
            return f"exp overflowed: {fmt.name} has no inf, so it is NaN (the largest {fmt.name} is {fmt.max:g})"
        if value == 0.0 and math.isfinite(t) and t < 0:
            return "exp underflowed to 0 (harmless: it is added to a larger term)"
        return ""
    if kind == "softplus" and args and math.isinf(args[0]):
        return "exact limit: softplus(+inf) = +inf" if args[0] > 0 else "exact limit: softplus(-inf) = 0"
    if kind == "log" and args:
        if value == -math.inf and math.isfinite(args[0]):
            return "log1p(-1) = log(0) = -inf" if step.name.startswith("log1p") else "log(0) = -inf"
        zero = args[0] == (-1.0 if step.name.startswith("log1p") else 0.0)
        if zero and math.isnan(value):  # float8_e4m3fn in numpy: no -inf
            return f"log(0) = -inf, which {fmt.name} cannot hold: NaN (ml_dtypes)"
        if zero and not fmt.has_inf and value == -fmt.max:  # float8_e4m3fn in torch: the cast saturates
            return f"log(0) = -inf, saturated to {num(value)} by torch's {fmt.name} cast"
        if step.name == "log(p)" and args[0] == 1.0:
            return "log(1) = 0 exactly: the target-1 term is 0, however large x is"
        return ""
    if kind == "clamp" and args:
        if args[0] < LOG_CLAMP:
            return f"clamp fired: {num(args[0])} -> {num(value)}" + ("" if value == LOG_CLAMP else
                                                                    f" (-100 in {fmt.name})")
        if math.isnan(args[0]):
            return "max(NaN, -100) is NaN: the clamp passes a NaN through"
        return ""
    if kind == "mul" and len(args) >= 2:
        a, b = args[:2]
        if math.isnan(value) and not (math.isnan(a) or math.isnan(b)):
            return f"{factor(a)}·{factor(b)} = NaN"
        before_clamp = args[2] if len(args) == 3 else None
        if a == 0 and b == _clamp(fmt) and before_clamp == -math.inf:
            return f"0·({num(b)}) = 0: the clamp hides the NaN of 0·(-inf)"
        return ""
    if kind == "keras_bce" and math.isnan(value) and args and math.isnan(args[0]):
        return "Keras passes p to torch's BCELoss, which refuses a NaN probability (RuntimeError); shown as NaN"
    if kind in ("loss", "torch_bce", "torch_bcewl"):
        if math.isnan(value):
            if kind == "torch_bce" and args and math.isnan(args[0]):
                return "torch refuses a NaN probability (RuntimeError); shown as NaN"
            if kind == "torch_bcewl":
                return ("torch computes (1-y)·x - logsigmoid(x): NaN in, NaN out, and at an infinite logit that is "
                        "0·inf or inf - inf = NaN")
            return "the NaN reaches the loss"
        if math.isinf(value):
            return "the loss is inf"
        if kind == "torch_bce" and value == -_clamp(fmt) and args and _clamp_can_fire(args[0], fmt):
            return f"each log clamped at {num(_clamp(fmt))}: the loss is capped at {num(value)}" + (
                "" if value == 100.0 else f" (-100 is {num(_clamp(fmt))} in {fmt.name})")
    return ""


def sigmoid_rounded(x: float, fmt: Format) -> float:
    """sigmoid(x) computed exactly (mpmath) and rounded once to ``fmt``: what a correctly rounded kernel gives."""
    import mpmath

    from stabcli.core import exact

    with mpmath.workprec(exact.PRECISION_BITS):
        s = 1 / (1 + mpmath.exp(-mpmath.mpf(x)))
        v = exact.to_float64_nearest(s) if fmt.bits == 64 else exact.to_float64_odd(s)
    return float(to_float64(fmt.round(np.array([v])))[0])


def _sigmoid_zero(x: float, fmt: Format, op_by_op: bool) -> str:
    """Why p = sigmoid(x) is 0 at a finite x: the true sigmoid underflows the format, or exp(-x) overflowed inside
    1/(1 + exp(-x)) although sigmoid(x) itself is a (subnormal) number of the format: float32's torch.sigmoid at
    x = -100 gives 0 where sigmoid(-100) = 3.72e-44 is a float32 subnormal, because exp(100) overflowed. Op by op
    (numpy) exp(-x) is rounded to ``fmt``; torch's kernel computes 1/(1 + exp(-x)) in float32 for the 16- and 8-bit
    formats (and in the dtype itself for float32 and float64), then rounds once."""
    compute = fmt if op_by_op or fmt.bits >= 32 else FORMATS["float32"]
    with np.errstate(all="ignore"):
        exp_inf = bool(np.isinf(to_float64(compute.round(np.exp(compute.round(np.array([-x])))))[0]))
    true = sigmoid_rounded(x, fmt)
    though = f", though sigmoid(x) rounds to {num(true)} in {fmt.name}"
    if op_by_op and exp_inf:
        return "exp(-x) overflowed to inf, so p = 1/(1 + inf) = 0" + ("" if true == 0 else though)
    if exp_inf and true != 0:
        return (f"torch's sigmoid computes 1/(1 + exp(-x)), and exp({num(-x)}) overflows {compute.name}: p = 0"
                + though)
    if true == 0:
        return f"sigmoid underflowed to 0 in {fmt.name}"
    return f"1/(1 + exp(-x)) underflowed to 0 in {fmt.name}" + though


def _clamp(fmt: Format) -> float:
    """The -100 clamp as stored in ``fmt`` (-96 in both float8 formats)."""
    return float(to_float64(fmt.round(np.array(LOG_CLAMP))))


def _clamp_can_fire(p: float, fmt: Format) -> bool:
    """Whether log p or log(1 - p) is below the clamp at this p, so that BCELoss's clamp changes a term."""
    with np.errstate(all="ignore"):
        return bool(np.log(p) < _clamp(fmt) or np.log1p(-p) < _clamp(fmt)) if not math.isnan(p) else False


def verdict(row, fmt: Format) -> str:
    """One sentence on a single-element result."""
    loss, ref, status = row.loss, row.reference, row.status
    if status == "nan":
        return f"NaN where the true loss is {num(ref)}."
    if status == "inf" and plain_notes.beyond_format(ref, fmt):
        return f"inf: {plain_notes.overflow_reason(ref, fmt)}."
    if status == "inf":
        return f"inf where the true loss is {num(ref)}."
    if status == "clamped":
        without = "" if row.unclamped_loss is None else f" (without it: {num(row.unclamped_loss)})"
        what = getattr(row, "clip_note", None) or "the -100 clamp replaced a log below -100"  # a peer's own clip
        if row.abs_error == 0 or row.error_bits == 0:
            return f"{num(loss)}, correct, but only because {what}{without}."
        return f"{num(loss)} where the true loss is {num(ref)}: {what}{without}."
    if status == "inaccurate":
        return f"{num(loss)}, finite but wrong: the true loss is {num(ref)} ({row.error_bits:.1f} bits wrong)."
    if row.error_bits == 0:
        return f"{num(loss)}, correctly rounded."
    return f"{num(loss)}, within tolerance ({row.error_bits:.1f} bits off)."


def _pick(rows, dtype: str, method: str, backend: str | None = None):
    """The row for (dtype, method): of ``backend`` if given (else any backend's), preferring torch (the real
    kernels) when both ran."""
    found = [r for r in rows if r.dtype == dtype and r.method == method and backend in (None, r.backend)]
    found.sort(key=lambda r: r.backend != "torch")
    return found[0] if found else None


def _first_note(row, needle: str) -> str:
    """The first note of the loss's steps (not the gradient's) that contains ``needle``."""
    for step in row.steps or []:
        if step.name == "dloss/dx" or step.name.startswith("grad:"):
            break
        if needle in step.note:
            return step.note
    return ""


def _grad_summary(bce, good) -> list[str]:
    """The gradient sentence of a dtype's summary: what backward gives where the forward may look fine."""
    if bce is None or bce.grad is None:
        return []
    label = "BCELoss's backward gives" if bce.method == "torch_bce" else "the clamped form's gradient is"
    g, ref, status = _one(bce.grad), _one(bce.grad_reference), _one_status(bce.grad_status)
    if status == "ok":
        text = f"Gradient: {label} {num(g)}, as it should be (true {num(ref)})"
    else:
        text = f"Gradient: {label} {num(g)} where the true gradient is {num(ref)} ({status})"
    forward_fine = bce.status == "ok" or (bce.status == "clamped" and bce.error_bits == 0)
    if status != "ok" and forward_fine:
        text += ", although its loss looks right"
    if good is not None and good.grad is not None:
        text += f"; softplus gives {num(_one(good.grad))} ({_one_status(good.grad_status)})"
    return [text + "."]


def _story(comparison, dtype: str, backend: str | None = None, pointers: bool = True) -> list[str]:
    """The sentences on one dtype's single-logit rows: what naive, BCELoss (or the clamped form) and softplus give
    and why, BCELoss at the other hard target, and the gradient. ``backend``: only that backend's rows, and
    BCEWithLogitsLoss beside softplus when it ran (None: either backend, torch preferred). ``pointers``: name the
    ``stabcli float`` command that shows the dtype's numbers around 1."""
    parts: list[str] = []
    y = float(comparison.inputs.targets.reshape(-1)[0])
    rows = comparison.rows
    naive = _pick(rows, dtype, "naive", backend)
    if naive is not None and naive.status in ("nan", "inf"):
        why = [n for n in (_first_note(naive, "rounded to exactly"), _first_note(naive, "underflowed"),
                           _first_note(naive, "overflowed"), _first_note(naive, "log(0)"),
                           _first_note(naive, "= NaN")) if n]
        parts.append(f"naive gives {num(naive.loss)}" + (f" ({'; '.join(why)})." if why else "."))
        if _first_note(naive, "rounded to exactly 1.0") and pointers:
            parts.append(f"({float_command(1.0, dtype)} shows the {dtype} numbers around 1.)")
    elif naive is not None:
        why = _first_note(naive, "saturated")  # float8_e4m3fn in torch: log(0) = -inf becomes -448
        parts.append(f"naive gives {num(naive.loss)} ({naive.status}" + (f": {why})." if why else ")."))
    bce = _pick(rows, dtype, "torch_bce", backend) or _pick(rows, dtype, "clamped", backend)
    if bce is not None:
        label = "BCELoss (torch_bce)" if bce.method == "torch_bce" else "The clamped form (BCELoss's rule)"
        hidden = _pick(rows, dtype, "clamped", bce.backend)
        if bce.status == "refused":
            parts.append(f"{label} is refused by torch.autocast on CUDA (\"unsafe to autocast\"): autocast sends "
                         "BCEWithLogitsLoss to float32 instead.")
        elif bce.status == "clamped" and naive is not None and naive.status == "nan" and hidden is not None and \
                _first_note(hidden, "the clamp hides the NaN of 0·(-inf)"):
            c = num(_clamp(FORMATS[dtype])) if dtype in FORMATS else "-100"  # -96 in the float8 formats
            parts.append(f"{label} clamps the -inf log to {c}, so 0·({c}) = 0 and it returns {num(bce.loss)}: "
                         f"the clamp hides the NaN.")
        elif bce.status == "clamped" and bce.error_bits == 0:
            parts.append(f"{label} returns the right {num(bce.loss)}, but only because the -100 clamp replaced "
                         f"a log below -100.")
        elif bce.status == "clamped":
            caps = ", capping it" if bce.loss < bce.reference else ""
            without = "" if bce.unclamped_loss is None else f" (without it: {num(bce.unclamped_loss)})"
            parts.append(f"{label} returns {num(bce.loss)} where the true loss is {num(bce.reference)}: "
                         f"the -100 clamp replaced a log below -100{caps}{without}.")
        else:
            parts.append(f"{label} returns {num(bce.loss)} ({bce.status}).")
    flipped = _pick(comparison.flipped, dtype, bce.method if bce is not None else "clamped", backend) or \
        _pick(comparison.flipped, dtype, bce.method if bce is not None else "clamped")
    if flipped is not None and flipped.status == "refused":
        flipped = None
    if flipped is not None and flipped.status == "clamped" and flipped.error_bits == 0:
        unclamped = flipped.unclamped_loss
        why = "the clamp hides 0·log(0) = NaN" if unclamped is not None and math.isnan(unclamped) else \
            f"the -100 clamp replaced a log below -100 (without it: {num(unclamped)})"
        parts.append(f"With target {num(1.0 - y)} it returns the right {num(flipped.loss)}, but only because {why}.")
    elif flipped is not None and flipped.status in ("clamped", "inaccurate", "nan", "inf"):
        parts.append(f"With target {num(1.0 - y)} it returns {num(flipped.loss)} where the true loss is "
                     f"{num(flipped.reference)}.")
    good = _pick(rows, dtype, "softplus", backend)
    library = _pick(rows, dtype, "torch_bce_with_logits", backend) if backend is not None else None
    if good is not None and library is not None:
        why = ": neither forms sigmoid(x) in its forward pass" if good.status == library.status == "ok" else ""
        parts.append(f"BCEWithLogitsLoss gives {num(library.loss)} ({library.status}) and softplus "
                     f"{num(good.loss)} ({good.status}){why}.")
    elif good is not None:
        parts.append(f"softplus gives {num(good.loss)} (true {num(good.reference)}, {good.status}).")
    if good is not None and good.status == "inf" and dtype in FORMATS and \
            plain_notes.beyond_format(good.reference, FORMATS[dtype]):
        fmt = FORMATS[dtype]
        parts.append(f"The true loss {num(good.reference)} is beyond {dtype}'s largest value {num(fmt.max)}: the loss "
                     f"overflows {dtype} whatever the formula (status inf).")
    # every other method that is off here, by name (x = -12, y = 0 in float32: torch_bce_with_logits)
    others = ("logsumexp",) if library is not None else ("logsumexp", "torch_bce_with_logits")
    off = [r for r in (_pick(rows, dtype, m, backend) for m in others) if r is not None and r.status != "ok"]
    if off:
        parts.append("Off too: " + "; ".join(f"{r.method} gives {num(r.loss)} ({r.status})" for r in off) + ".")
    parts.extend(_grad_summary(bce, good))
    return parts


def _stored(comparison, dn) -> str:
    """How the logit changed when rounded to the dtype ('' when it did not), and the command that shows why."""
    x = float(comparison.inputs.logits.reshape(-1)[0])
    stored = dn.logits[0]
    see = f"{float_command(x, dn.dtype)} shows why"
    if dn.input_overflow:
        return f"x = {num(x)} is not a {dn.dtype} number: it overflows to {num(stored)} ({see})."
    if stored != x and not math.isnan(x):
        return f"x = {num(x)} is stored as {num(stored)} ({see})."
    return ""


def summary(comparison) -> list[str]:
    """Per dtype, a few sentences that tell what the single-logit rows show (the 1e10 story when it applies)."""
    lines: list[str] = []
    for dn in comparison.dtype_notes:
        stored = _stored(comparison, dn)
        lines.append(f"{dn.dtype}: " + " ".join(([stored] if stored else []) + _story(comparison, dn.dtype)))
    return lines


def answer(comparison, dtype: str, backend: str) -> list[str]:
    """The answer to a single-logit compare, first thing on screen: one dtype and backend (the seed's float32 and
    torch when they ran), a sentence a line."""
    x = float(comparison.inputs.logits.reshape(-1)[0])
    y = float(comparison.inputs.targets.reshape(-1)[0])
    dn = next(d for d in comparison.dtype_notes if d.dtype == dtype)
    head = f"x = {num(x)}, target {num(y)}, in {dtype} on the {backend} backend"
    row = _pick(comparison.rows, dtype, "softplus", backend) or \
        next(r for r in comparison.rows if r.dtype == dtype and r.backend == backend)
    stored = _stored(comparison, dn)
    lines = [f"{head}: the true loss is {num(row.reference)}." + (f" {stored}" if stored else "")]
    lines += _story(comparison, dtype, backend, pointers=False)  # short: the summary (--steps) has them
    return lines


# --- gradients -----------------------------------------------------------------------------------------------

def _one(v) -> float:
    return float(v[0]) if isinstance(v, list) else float(v)


def _detail(gradient, key: str) -> float | None:
    value = gradient.details.get(key)
    if value is None:
        return None
    return float(np.asarray(value, dtype=np.float64).reshape(-1)[0])


def grad_steps(row, gradient, fmt: Format) -> list[tuple[str, float, str]]:
    """The backward pass of a single element as (name, value, note) steps, appended to the trace.

    For ``torch_bce`` the steps of BCELoss's backward kernel: p(1-p), the denominator max(p(1-p), 1e-12),
    dL/dp = (p-y)/denominator and dL/dx = dL/dp·p(1-p) (torch.sigmoid's backward); for every method the result.
    """
    steps: list[tuple[str, float, str]] = []
    if row.method == "torch_bce" and "p(1-p)" in gradient.details:
        p, prod, eps = _detail(gradient, "p"), _detail(gradient, "p(1-p)"), gradient.details["epsilon"]
        denom = _detail(gradient, "denominator")
        note_prod = ""
        if prod == 0 and p in (0.0, 1.0):
            note_prod = f"p = {num(p)} exactly (saturated), so p(1-p) = 0"
        elif prod < 1e-12:
            note_prod = f"p(1-p) = {num(prod)} is below 1e-12"
        steps.append(("grad: p(1-p)", prod, note_prod))
        kernel = gradient.details.get("kernel", fmt.name)  # float32 under autocast and for torch's float8
        if eps == 0:
            note_den = f"1e-12 rounds to 0 in {kernel}: the guard is gone" + (", the denominator is 0" if denom == 0 else "")
        elif prod < eps:
            note_den = f"denominator clamped at 1e-12 ({num(eps)} in {kernel})"
        else:
            note_den = ""
        steps.append(("grad: max(p(1-p), 1e-12)", denom, note_den))
        dldp, exact = _bce_dldp(gradient, fmt)
        if denom == 0:
            note_dldp = f"(p-y)/0 = {num(dldp)}"
        elif not math.isfinite(dldp) and math.isfinite(exact):
            note_dldp = f"(p-y)/p(1-p) = {num6(exact)} overflows {fmt.name} (max {num(fmt.max)})"
        elif abs(dldp) == fmt.max and abs(exact) > fmt.max:
            note_dldp = f"(p-y)/p(1-p) = {num6(exact)} is beyond {fmt.name}'s {num(fmt.max)}: torch's cast saturates it"
        else:
            note_dldp = ""
        steps.append(("grad: dL/dp = (p-y)/max(...)", dldp, note_dldp))
    g = _one(row.grad)
    steps.append(("dloss/dx", g, grad_note(row, gradient, fmt)))
    return steps


def _bce_dldp(gradient, fmt: Format) -> tuple[float, float]:
    """BCELoss's backward dL/dp = (p-y)/max(p(1-p), ε) as its kernel computes it, each operation rounded to the
    format the kernel runs in (the dtype's; float32 under autocast and for torch's float8), the result to the dtype
    (by torch's own cast for its float8, as autograd rounds the gradient it sends back: float8_e4m3fn saturates
    to ±448 where ml_dtypes gives NaN), and the same quotient in float64 (what it would be without the dtype's
    overflow)."""
    from stabcli.core.formats import FORMATS

    p, y, denom = _detail(gradient, "p"), _detail(gradient, "y"), _detail(gradient, "denominator")
    kfmt = FORMATS[gradient.details.get("kernel", fmt.name)]
    dt = kfmt.np_dtype.type
    with np.errstate(all="ignore"):
        dldp = float(to_float64(np.asarray((dt(p) - dt(y)) / dt(denom), dtype=kfmt.np_dtype)))
        if fmt.bits == 8 and kfmt.name == "float32":  # a float32 value: one rounding from float64 or float32 alike
            dldp = torch_cast(dldp, fmt)
        else:
            dldp = float(to_float64(fmt.round(dldp)))
        exact = float(np.float64(p - y) / np.float64(denom))
    return dldp, exact


def num6(v: float) -> str:
    return fmt_number(v, 6)


def _torch_log_backward(row, gradient, fmt: Format) -> str:
    """Why torch's autograd through ``naive`` or ``clamped`` gives a non-finite gradient, from its backward pass
    redone in the dtype: each log's backward divides what comes back by p (or by 1 - p), the -100 clamp (clamped)
    sends back 0 where it fired, and torch.sigmoid's backward multiplies the sum by p(1-p). '' if the pass redone
    does not give the gradient torch gave (no cause is claimed then)."""
    p, y, w, pw = (_detail(gradient, k) for k in ("p", "y", "w", "pw"))
    if None in (p, y, w, pw) or math.isnan(p):
        return ""
    dt = fmt.np_dtype.type
    one = dt(1)
    with np.errstate(all="ignore"):
        P, Y, W, PW = dt(p), dt(y), dt(w), dt(pw)
        if row.method == "naive":  # loss = -(w·(pw·y·log p + (1-y)·log(1-p)))
            up_p, up_q = -W * (PW * Y), -W * (one - Y)
            fired_p = fired_q = False
        else:  # clamped: loss = ((y-1)·max(log1p(-p), -100) - pw·y·max(log p, -100))·w
            up_p, up_q = -(PW * Y) * W, (Y - one) * W
            fired_p, fired_q = bool(np.log(P) < dt(LOG_CLAMP)), bool(np.log1p(-P) < dt(LOG_CLAMP))
            up_p, up_q = (dt(0) if fired_p else up_p), (dt(0) if fired_q else up_q)
        q = one - P
        g_p, g_q = up_p / P, up_q / q
        g = float(g_p) - float(g_q)  # d/dp: the 1 - p branch enters with a minus
        prod = float(P) * (1.0 - float(P))  # torch.sigmoid's backward, p(1-p), at least as precise as the dtype
        again = g * prod if math.isfinite(g) or prod != 0 else math.nan
    actual = _one(row.grad)
    if not (math.isnan(again) == math.isnan(actual) and (math.isnan(actual) or again == actual or
                                                          (math.isinf(again) and again == actual))):
        return ""
    parts = []
    for name, up, den, val, fired in (("log(p)", up_p, "p", g_p, fired_p), ("log(1-p)", up_q, "1 - p", g_q, fired_q)):
        if math.isfinite(float(val)):
            continue
        d = float(P) if den == "p" else float(q)
        if d == 0 and float(up) == 0:
            lead = "the clamp sends 0 back, but" if fired else "its coefficient is 0, but"
            parts.append(f"{lead} {name}'s backward divides it by {den} = 0: 0/0 = NaN")
        elif d == 0:
            parts.append(f"{name}'s backward divides {num(float(up))} by {den} = 0: {num(float(val))}")
        else:
            parts.append(f"{name}'s backward divides {num(float(up))} by {den} = {num6(d)}: "
                         f"{num6(float(up) / d)} overflows {fmt.name} (max {num(fmt.max)})")
    if not parts:
        return ""
    text = "; ".join(parts)
    if math.isinf(g):
        text += (f"; sigmoid's backward multiplies by p(1-p) = 0: {factor(g)}·0 = NaN" if prod == 0 else
                 f"; sigmoid's backward multiplies by p(1-p) = {num6(prod)}: still {num(actual)}")
    elif math.isnan(g) and (fired_q or fired_p):
        text += " (the forward clamp does not guard the backward)"
    return text


def grad_note(row, gradient, fmt: Format) -> str:
    """Why the gradient of a single element is what it is ('' when it is fine, or when no cause can be shown)."""
    g, ref, status = _one(row.grad), _one(row.grad_reference), _one_status(row.grad_status)
    p, y = _detail(gradient, "p"), _detail(gradient, "y")
    prod = _detail(gradient, "p(1-p)")
    if row.method == "torch_bce" and prod is not None:
        eps = gradient.details["epsilon"]
        dldp, _ = _bce_dldp(gradient, fmt)
        if math.isnan(g) and eps == 0 and prod == 0:
            if math.isnan(dldp):
                return (f"1e-12 is 0 in {fmt.name}, so (p-y)/max(p(1-p), 0) = 0/0 = NaN (p = y = {num(p)})")
            return (f"1e-12 is 0 in {fmt.name}, so (p-y)/max(p(1-p), 0) = {num(dldp)}, and sigmoid's backward "
                    f"multiplies it by p(1-p) = 0: {factor(dldp)}·0 = NaN")
        if math.isinf(g) and math.isinf(dldp) and prod != 0:
            return f"sigmoid's backward multiplies dL/dp = {num(dldp)} by p(1-p) = {num6(prod)}: still {num(g)}"
        if status == "clamped" and prod == 0:
            # (p-y)/1e-12 = 9.96432e11 reads as a slip where 1e-12 is stored as 1.00187e-12 (bfloat16): say so
            kernel = gradient.details.get("kernel", fmt.name)
            if abs(dldp) == fmt.max and abs((p - y) / eps) > fmt.max:  # torch's float8_e4m3fn cast saturates
                aside = f" (saturated: {num6((p - y) / eps)} is beyond {fmt.name}'s {num(fmt.max)})"
            elif num6(dldp) == num6((p - y) / 1e-12) or num6(eps) == "1e-12":
                aside = ""
            else:
                aside = f" (1e-12 is {num6(eps)} in {kernel}, and the quotient is rounded to {fmt.name})"
            return (f"p saturated at {num(p)}: sigmoid's backward multiplies dL/dp = (p-y)/1e-12 = {num6(dldp)}{aside} "
                    f"by p(1-p) = 0: {num(g)} where the true gradient is {num(ref)}")
        if status == "clamped":
            return (f"the denominator max(p(1-p), 1e-12) is clamped, so the gradient is (p-y)·p(1-p)/1e-12 = "
                    f"{num(g)} instead of p-y = {num(ref)}")
    if row.method in ("naive", "clamped") and row.backend == "torch" and not math.isfinite(g):
        cause = _torch_log_backward(row, gradient, fmt)
        if cause:
            return cause
    if row.method == "clamped" and status == "clamped":
        return ("the -100 clamp fired: d/dx max(log, -100) = 0, so that term's gradient is lost "
                f"({num(g)} where the true gradient is {num(ref)})")
    clip = getattr(row, "clip_note", None) or ""
    if status == "clamped" and g == 0 and ref != 0 and clip.startswith("Keras's clip"):
        return f"Keras's clip fired, and torch.clip's backward is 0 where it clips: 0 where the true gradient is {num(ref)}"
    if g == 0 and ref != 0 and status != "ok" and p is not None and y is not None and p == y:
        if row.method == "torch_bce_with_logits":
            return (f"torch's backward forms sigmoid(x) - y, and sigmoid(x) rounds to exactly {num(y)} in "
                    f"{fmt.name}: 0 where the true gradient is {num(ref)}")
        if row.method == "torch_bce":
            return f"p rounds to exactly y = {num(y)}, so p - y = 0: 0 where the true gradient is {num(ref)}"
        return (f"p rounds to exactly y = {num(y)} in {fmt.name}, where the two terms' derivatives cancel: 0 where "
                f"the true gradient is {num(ref)}")
    steps = row.steps or []
    if math.isnan(g) and any(not math.isfinite(s.value) or "overflowed" in s.note for s in steps):
        return "the derivative of an infinite or NaN intermediate is NaN"
    if math.isinf(g) and any(s.name.startswith("log") and s.value == -math.inf for s in steps):
        return "the derivative of log(0) is infinite"
    if math.isinf(g) or math.isnan(g):
        return ""
    if g == 0 and ref != 0 and status != "ok":
        return f"the gradient vanished: 0 where the true gradient is {num(ref)}"
    if status == "inaccurate":
        return f"finite but wrong: the true gradient is {num(ref)}"
    return ""


def _one_status(status) -> str:
    return status[0] if isinstance(status, list) else status


def grad_verdict(row, gradient, fmt: Format) -> str:
    """One sentence on a single element's gradient."""
    g, ref, status = _one(row.grad), _one(row.grad_reference), _one_status(row.grad_status)
    bits = _one(row.grad_error_bits)
    if status in ("nan", "inf"):
        return f"gradient {num(g)} where the true gradient is {num(ref)}."
    if status == "clamped":
        what = getattr(row, "clip_note", None)
        return f"gradient {num(g)} where the true gradient is {num(ref)}: " + (
            f"{what}." if what else "a clamp changed it.")
    if status == "inaccurate":
        if g == 0 and ref != 0:
            return f"gradient 0 where the true gradient is {num(ref)}: it vanished."
        return f"gradient {num(g)}, finite but wrong: the true gradient is {num(ref)} ({bits:.1f} bits wrong)."
    return f"gradient {num(g)}, correct ({bits:.1f} bits off)." if bits else f"gradient {num(g)}, correctly rounded."


# --- sweeps: one plain sentence per (backend, dtype, target) -------------------------------------------------

def _num(v: float) -> str:
    """A breakdown logit: exact (shortest repr), or 6 digits below 1e-3."""
    return fmt_number(v, None) if abs(v) >= 1e-3 or v == 0 else fmt_number(v, 6)


def _where(pos: float | None, neg: float | None) -> str:
    parts = []
    if pos is not None:
        parts.append(f"x ≥ {_num(pos)}")
    if neg is not None:
        parts.append(f"x ≤ {_num(neg)}")
    return " and ".join(parts)


def _value(v: float, digits: int = 4) -> str:
    """A gradient for a sentence: ``digits`` significant digits, 'NaN', 'inf', '0' (a -0 too)."""
    return "0" if v == 0 else fmt_number(v, digits)


def _versus(grad: float, truth: float) -> str:
    """'G where the truth is T', with as many digits (4 to 17) as it takes to tell them apart."""
    digits = next((d for d in range(4, 18) if _value(grad, d) != _value(truth, d)), 17)
    return f"{_value(grad, digits)} where the truth is {_value(truth, digits)}"


def _grad_side(g, side: str) -> str:
    """What goes wrong with the gradient on one side of 0, from the logit closest to 0 outward ('' if nothing)."""
    b, at = g.breakdown, g.at
    first = getattr(b, f"inaccurate_{side}")
    if first is None:
        return ""
    rel = "≥" if side == "pos" else "≤"
    nonfinite, gone = getattr(b, f"nonfinite_{side}"), getattr(b, f"vanished_{side}")
    grad, truth = at.get(f"inaccurate_{side}", (math.nan, math.nan))
    if nonfinite == first:
        text = f"is {_value(grad)} from x {rel} {_num(first)}"
    elif gone == first and grad == 0:
        text = f"is 0 from x {rel} {_num(first)} where the truth is {_value(truth)}"
    elif gone == first:
        text = f"vanishes from x {rel} {_num(first)} ({_versus(grad, truth)})"
    else:
        text = f"leaves the tolerance from x {rel} {_num(first)} ({_versus(grad, truth)})"
    later = []
    if gone is not None and gone != first:
        grad, truth = at.get(f"vanished_{side}", (math.nan, math.nan))
        later.append(f"is 0 from x {rel} {_num(gone)}" if grad == 0
                     else f"vanishes from x {rel} {_num(gone)} (|grad| < eps·|truth|)")
    if nonfinite is not None and nonfinite != first:
        later.append(f"is {_value(at.get(f'nonfinite_{side}', (math.nan,))[0])} from x {rel} {_num(nonfinite)}")
    nan = getattr(b, f"nan_{side}")
    if nan is not None and (nonfinite != nan or not math.isnan(at.get(f"nonfinite_{side}", (math.nan,))[0])):
        later.append(f"is NaN from x {rel} {_num(nan)}")
    return ", then ".join([text, *later])


def grad_sentence(rows: list) -> str:
    """Where each method's gradient goes wrong (NaN, 0 where the truth is not, off tolerance), or '' without grads."""
    parts, fine = [], []
    for r in rows:
        if r.grad is None:
            continue
        sides = [t for t in (_grad_side(r.grad, "pos"), _grad_side(r.grad, "neg")) if t]
        if len(sides) == 2 and sides[0].split(" from x ")[0] == sides[1].split(" from x ")[0] and \
                all(t.count(" from x ") == 1 and " where " not in t for t in sides):
            sides = [f"{sides[0]} and x {sides[1].split(' from x ')[1]}"]  # "is NaN from x ≥ a and x ≤ b"
        if len(sides) == 2 and _grad_side(r.grad, "pos"):
            sides = [sides[0], f"on the negative side {sides[1]}"]
        if sides:
            parts.append(f"{r.method}'s gradient " + ", and ".join(sides))
        else:
            fine.append(r.method)
    if fine:
        parts.append(f"{', '.join(fine)} {'keeps its' if len(fine) == 1 else 'keep their'} gradient within tolerance "
                     "over the swept range")
    return "; ".join(parts)


def sweep_summary(sweep) -> dict[tuple[str, str, float], str]:
    """One plain sentence per (backend, dtype, target): where each method gives inf/NaN, is clamped, drifts, and,
    when gradients were swept, a second one on where each gradient goes wrong."""
    out = {}
    for (backend, dtype, target), rows in sweep.cases().items():
        parts = []
        for r in rows:
            b = r.breakdown
            nf = _where(b.nonfinite_pos, b.nonfinite_neg)
            cl = _where(b.clamped_pos, b.clamped_neg)
            bad = _where(b.inaccurate_pos, b.inaccurate_neg)
            if nf:
                parts.append(f"{r.method} gives inf/NaN from {nf}"
                             + (f" (out of tolerance already from {bad})" if bad and bad != nf else ""))
            elif cl:
                parts.append(f"{r.method} is finite over the swept range, but only because the -100 clamp steps in from {cl}"
                             + (f" (out of tolerance from {bad})" if bad else ""))
            elif bad:
                parts.append(f"{r.method} stays finite but is out of tolerance from {bad}")
            else:
                parts.append(f"{r.method} stays within tolerance over the swept range")
        sentence = f"{dtype} ({backend}), target {target:g}: " + "; ".join(parts) + "."
        grads = grad_sentence(rows)
        out[(backend, dtype, target)] = sentence + (f" Gradient: {grads}." if grads else "")
    return out
