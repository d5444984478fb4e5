"""Every note, verdict and summary sentence says what the numbers beside it show.

A student reads a note as a fact, so each kind of sentence the BCE notes write has a rule here that checks its
claim against the row it sits in: a note on a step against that step's value, a gradient note against the
gradient, p = sigmoid(x) and the dtype's limits, a summary against the rows it names. The rules run over a grid
of logits, targets, dtypes and backends (single-element compares, as a student types them), and a note that no
rule recognises fails too, so a new kind of sentence cannot slip in unchecked.

The three errors that issue 12 found by hand each have a test of their own at the end: the "log(0)" explanation
of float16's -inf gradient at x = -12 (p = 6.14e-6; the real cause is -1/p = -162,885 beyond float16's 65504),
the demo's "its gradient is right" for BCEWithLogitsLoss (a float32 torch sweep counts vanished gradients), and
the README's "clamped equals torch_bce bit for bit" (true for the loss only).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from stabcli.commands.compare import run_compare
from stabcli.core.formats import ALL_NAMES, FORMATS
from stabcli.core.numbers import fmt_number
from stabcli.losses.bce import Inputs

INF = math.inf
# Logits that reach every branch of the notes: NaN and ±inf inputs, exp overflow in float16 (|x| >= 11.09375) and
# float32 (88.72), saturation of sigmoid op by op and in torch (7.625, 8.3203125, 16.6355, 36.74), the -100 clamp
# without saturation (float64, x = -120), float16's -1/p overflow (x = -12), ordinary values.
XS = [-1e10, -1000, -120, -100, -50, -20, -17.5, -12, -11.5, -8, -2, -1e-3, 0.0, 1e-3, 2, 5, 7.7, 8.4, 12, 16.7,
      20, 37, 40, 90, 110, 710, 1e10, INF, -INF, math.nan]
YS = [0.0, 1.0, 0.5]


def num(v) -> str:
    return fmt_number(v, 10)


def same(text: str, value: float) -> bool:
    """A number as a sentence shows it (10 significant digits, 'NaN', 'inf', '-0') against the value."""
    return text == num(value) or text == fmt_number(value, 6) or text == fmt_number(value, 4)


def parse(text: str) -> float:
    return {"NaN": math.nan, "inf": INF, "-inf": -INF}.get(text, None) if text in ("NaN", "inf", "-inf") \
        else float(text)


@pytest.fixture(scope="module")
def grid():
    """(x, y, comparison) for every logit and target of the grid, float16, bfloat16, float32 and float64 (what
    `--dtype all` means; the float8 formats' own notes are not audited here), both backends."""
    out = []
    for x in XS:
        for y in YS:
            inputs = Inputs(np.array([x]), np.array([y]), np.ones(1), np.ones(1))
            out.append((x, y, run_compare(inputs, [FORMATS[n] for n in ALL_NAMES])))
    return out


def rows(grid):
    for x, y, c in grid:
        for r in c.rows:
            yield x, y, c, r


def step_value(row, prefix: str):
    return next((s.value for s in row.steps if s.name.startswith(prefix)), None)


def p_of(row):
    """p = sigmoid(x) as the method formed it (the trace's step; None for methods without one)."""
    return step_value(row, "p = ")


def _distinct(wrong: list) -> list:
    """The failures, one per distinct sentence and reason (numbers and dtypes aside), at most 20."""
    seen, out = set(), []
    for w in wrong:
        key = re.sub(r"[-\d.e]+|float16|bfloat16|float32|float64", "#", " ".join(map(str, w[-2:])))
        if key not in seen:
            seen.add(key)
            out.append(w)
    return out[:20]


# --- step notes -----------------------------------------------------------------------------------------------

def _exp_overflows(row, dtype: str | None = None) -> bool:
    """Whether exp(-x) overflows ``dtype`` (default the row's): numpy's exp of x rounded to it (ml_dtypes for
    bfloat16)."""
    import ml_dtypes

    np_dtype = {"float16": np.float16, "float32": np.float32, "float64": np.float64,
                "bfloat16": ml_dtypes.bfloat16}[dtype or row.dtype]
    with np.errstate(all="ignore"):
        return bool(np.isinf(np.exp(-np.array([row.input[0]]).astype(np_dtype)).astype(np.float64))[0])


def _true_sigmoid(row) -> float:
    """sigmoid(x) rounded to the row's dtype from mpmath (to float64 first: far from a tie at these logits):
    mpmath.mpf(1) / (1 + mpmath.exp(-x)) at 200 bits."""
    import ml_dtypes
    import mpmath

    np_dtype = {"float16": np.float16, "float32": np.float32, "float64": np.float64,
                "bfloat16": ml_dtypes.bfloat16}[row.dtype]
    with mpmath.workprec(200):
        v = float(1 / (1 + mpmath.exp(-mpmath.mpf(row.input[0]))))
    return float(np.array(v).astype(np_dtype).astype(np.float64))


def _other_exp(row, step) -> float:
    return next(s.value for s in row.steps if s.name.startswith("exp(") and s.name != step.name)


def _clamp_arg(row, step) -> float:
    name = step.name[len("max("):].split(",")[0]  # max(log p, -100) -> "log p"
    return step_value(row, "log(p)" if name == "log p" else "log1p(-p)")


STEP_RULES = [
    (r"x = (\S+), so p = (\S+) exactly", lambda r, s, m: math.isinf(r.input[0]) and same(m[2], s.value)),
    (r"x is NaN, so p is NaN", lambda r, s, m: math.isnan(r.input[0]) and math.isnan(s.value)),
    (r"sigmoid rounded to exactly 1\.0 in (\w+): 1 - p is 0", lambda r, s, m: s.value == 1 and m[1] == r.dtype),
    (r"exp\(-x\) overflowed to inf, so p = 1/\(1 \+ inf\) = 0(?:, though sigmoid\(x\) rounds to (\S+) in (\w+))?",
     lambda r, s, m: s.value == 0 and r.backend in ("numpy", "peers") and _exp_overflows(r)
     and (_true_sigmoid(r) == 0 if m[1] is None else same(m[1], _true_sigmoid(r)) and m[2] == r.dtype)),
    # torch.sigmoid is 1/(1 + exp(-x)) in float32 for the 16-bit formats (in the dtype for float32/64): float32 at
    # x = -100 overflows exp(100) and gives 0, though sigmoid(-100) = 3.72e-44 is a float32 subnormal
    (r"torch's sigmoid computes 1/\(1 \+ exp\(-x\)\), and exp\((\S+)\) overflows (\w+): p = 0, though sigmoid\(x\) "
     r"rounds to (\S+) in (\w+)",
     lambda r, s, m: s.value == 0 and (r.backend == "torch" or r.method == "keras_bce") and same(m[1], -r.input[0])
     and m[2] == ("float32" if FORMATS[r.dtype].bits < 32 else r.dtype) and _exp_overflows(r, m[2])
     and _true_sigmoid(r) != 0 and same(m[3], _true_sigmoid(r)) and m[4] == r.dtype),
    (r"sigmoid underflowed to 0 in (\w+)",
     lambda r, s, m: s.value == 0 and m[1] == r.dtype and _true_sigmoid(r) == 0),
    (r"1 - 1 = 0: the information in p is gone", lambda r, s, m: s.value == 0 and s.name == "1 - p"),
    (r"exp overflowed to inf \(the largest (\w+) is (\S+)\)",
     lambda r, s, m: s.value == INF and float(m[2]) == float(f"{FORMATS[r.dtype].max:g}")),
    (r"exp underflowed to 0 \(harmless: it is added to a larger term\)",
     lambda r, s, m: s.value == 0 and _other_exp(r, s) == 1),
    (r"exact limit: softplus\(\+inf\) = \+inf", lambda r, s, m: s.value == INF),
    (r"exact limit: softplus\(-inf\) = 0", lambda r, s, m: s.value == 0),
    (r"log1p\(-1\) = log\(0\) = -inf", lambda r, s, m: s.value == -INF and p_of(r) == 1),
    (r"log\(0\) = -inf", lambda r, s, m: s.value == -INF),
    (r"log\(1\) = 0 exactly: the target-1 term is 0, however large x is",
     lambda r, s, m: s.value == 0 and s.name == "log(p)" and p_of(r) == 1),
    (r"clamp fired: (\S+) -> -100", lambda r, s, m: s.value == -100 and same(m[1], _clamp_arg(r, s))
     and _clamp_arg(r, s) < -100),
    (r"max\(NaN, -100\) is NaN: the clamp passes a NaN through",
     lambda r, s, m: math.isnan(s.value) and math.isnan(_clamp_arg(r, s))),
    (r"(\S+)·(\S+) = NaN", lambda r, s, m: math.isnan(s.value)),
    (r"0·\(-100\) = 0: the clamp hides the NaN of 0·\(-inf\)",
     lambda r, s, m: s.value == 0 and step_value(r, "log1p(-p)" if "log1p" in s.name else "log(p)") == -INF),
    (r"the NaN reaches the loss", lambda r, s, m: math.isnan(s.value)),
    (r"the loss is inf", lambda r, s, m: s.value == INF),
    (r"torch refuses a NaN probability \(RuntimeError\); shown as NaN",
     lambda r, s, m: math.isnan(s.value) and math.isnan(r.input[0])),
    (r"torch computes \(1-y\)·x - logsigmoid\(x\): NaN in, NaN out, and at an infinite logit that is 0·inf or "
     r"inf - inf = NaN", lambda r, s, m: math.isnan(s.value) and not math.isfinite(r.input[0])),
    (r"each log clamped at -100: the loss is capped at 100",
     lambda r, s, m: s.value == 100 and r.status == "clamped"),
    # BCELoss's backward, step by step
    (r"p = (\S+) exactly \(saturated\), so p\(1-p\) = 0",
     lambda r, s, m: s.value == 0 and p_of(r) in (0, 1) and same(m[1], p_of(r))),
    (r"p\(1-p\) = (\S+) is below 1e-12", lambda r, s, m: same(m[1], s.value) and s.value < 1e-12),
    (r"1e-12 rounds to 0 in float16: the guard is gone(, the denominator is 0)?",
     lambda r, s, m: r.dtype == "float16" and (m[1] is None or s.value == 0)),
    (r"denominator clamped at 1e-12 \((\S+) in (\w+)\)",
     lambda r, s, m: same(m[1], s.value) and m[2] == r.dtype and step_value(r, "grad: p(1-p)") < s.value),
    (r"\(p-y\)/0 = (\S+)", lambda r, s, m: step_value(r, "grad: max") == 0 and same(m[1], s.value)),
    (r"\(p-y\)/p\(1-p\) = (\S+) overflows (\w+) \(max (\S+)\)",
     lambda r, s, m: not math.isfinite(s.value) and abs(float(m[1])) > FORMATS[r.dtype].max
     and same(m[3], FORMATS[r.dtype].max)),
]


def _check(rules, text, *args) -> tuple[bool, str]:
    for pattern, ok in rules:
        m = re.fullmatch(pattern, text)
        if m:
            return bool(ok(*args, m)), pattern
    return False, "no rule recognises this note"


def test_every_step_note_is_true(grid):
    wrong = []
    for x, y, c, r in rows(grid):
        for s in r.steps:
            if s.note and s.name != "dloss/dx":
                ok, why = _check(STEP_RULES, s.note, r, s)
                if not ok:
                    wrong.append((x, y, r.dtype, r.backend, r.method, s.name, s.value, s.note, why))
    assert not wrong, "\n".join(map(repr, _distinct(wrong)))


# --- gradient notes (the dloss/dx step), clause by clause ---------------------------------------------------

def _g(r) -> float:
    return r.grad


def _grad_overflow(r, m) -> bool:
    """'<name>'s backward divides U by D = d: N overflows <dtype> (max M)': N is U/d and beyond the format."""
    up, d, n = float(m[2]), float(m[3]), float(m[4])
    fmt = FORMATS[r.dtype]
    return (m[5] == r.dtype and abs(n) > fmt.max and same(m[6], fmt.max)
            and math.isclose(n, up / d, rel_tol=1e-5) and same(m[3], p_of(r) if m[1] == "log(p)" else 1 - p_of(r))
            and not math.isfinite(_g(r)))


GRAD_RULES = [
    (r"(log\(p\)|log\(1-p\))'s backward divides (\S+) by (?:p|1 - p) = (\S+): (\S+) overflows (\w+) \(max (\S+)\)",
     lambda r, m: _grad_overflow(r, [None, m[1], m[2], m[3], m[4], m[5], m[6]])),
    (r"log\(p\)'s backward divides (\S+) by p = 0: (\S+)", lambda r, m: p_of(r) == 0 and float(m[1]) != 0),
    (r"log\(1-p\)'s backward divides (\S+) by 1 - p = 0: (\S+)", lambda r, m: p_of(r) == 1 and float(m[1]) != 0),
    (r"(?:its coefficient is 0|the clamp sends 0 back), but log\(p\)'s backward divides it by p = 0: 0/0 = NaN"
     r"(?: \(the forward clamp does not guard the backward\))?", lambda r, m: p_of(r) == 0 and math.isnan(_g(r))),
    (r"(?:its coefficient is 0|the clamp sends 0 back), but log\(1-p\)'s backward divides it by 1 - p = 0: 0/0 = "
     r"NaN(?: \(the forward clamp does not guard the backward\))?", lambda r, m: p_of(r) == 1 and math.isnan(_g(r))),
    (r"sigmoid's backward multiplies by p\(1-p\) = 0: \(?-?inf\)?·0 = NaN",
     lambda r, m: p_of(r) in (0, 1) and math.isnan(_g(r))),
    (r"sigmoid's backward multiplies by p\(1-p\) = (\S+): still (\S+)",
     lambda r, m: math.isclose(float(m[1]), p_of(r) * (1 - p_of(r)), rel_tol=1e-5) and same(m[2], _g(r))),
    (r"sigmoid's backward multiplies dL/dp = (\S+) by p\(1-p\) = (\S+): still (\S+)",
     lambda r, m: same(m[3], _g(r)) and math.isinf(_g(r)) and same(m[1], step_value(r, "grad: dL/dp"))),
    (r"1e-12 is 0 in float16, so \(p-y\)/max\(p\(1-p\), 0\) = 0/0 = NaN \(p = y = (\S+)\)",
     lambda r, m: r.dtype == "float16" and math.isnan(_g(r)) and same(m[1], p_of(r))),
    (r"1e-12 is 0 in float16, so \(p-y\)/max\(p\(1-p\), 0\) = (\S+), and sigmoid's backward multiplies it by "
     r"p\(1-p\) = 0: \(?-?inf\)?·0 = NaN",
     lambda r, m: r.dtype == "float16" and math.isnan(_g(r)) and math.isinf(float(m[1])) and p_of(r) in (0, 1)),
    (r"p saturated at (\S+): sigmoid's backward multiplies dL/dp = \(p-y\)/1e-12 = (\S+)(?: \(1e-12 is (\S+) in "
     r"(\w+), and the quotient is rounded to (\w+)\))? by p\(1-p\) = 0: (\S+) where the true gradient is (\S+)",
     lambda r, m: p_of(r) in (0, 1) and same(m[1], p_of(r)) and same(m[6], _g(r)) and same(m[7], r.grad_reference)
     and r.grad_status == "clamped" and _saturated_quotient(r, m)),
    (r"the denominator max\(p\(1-p\), 1e-12\) is clamped, so the gradient is \(p-y\)·p\(1-p\)/1e-12 = (\S+) "
     r"instead of p-y = (\S+)",
     lambda r, m: r.grad_status == "clamped" and step_value(r, "grad: p(1-p)") < 1e-12 and same(m[1], _g(r))
     and same(m[2], r.grad_reference)),
    (r"the -100 clamp fired: d/dx max\(log, -100\) = 0, so that term's gradient is lost \((\S+) where the true "
     r"gradient is (\S+)\)",
     lambda r, m: r.method == "clamped" and r.grad_status == "clamped" and same(m[1], _g(r))
     and any(s.note.startswith("clamp fired") for s in r.steps)),
    (r"torch's backward forms sigmoid\(x\) - y, and sigmoid\(x\) rounds to exactly (\S+) in (\w+): 0 where the "
     r"true gradient is (\S+)",
     lambda r, m: _g(r) == 0 and r.grad_reference != 0 and m[2] == r.dtype
     and _torch_sigmoid(r) == parse(m[1])),
    (r"p rounds to exactly y = (\S+), so p - y = 0: 0 where the true gradient is (\S+)",
     lambda r, m: _g(r) == 0 and p_of(r) == parse(m[1]) and same(m[2], r.grad_reference)),
    (r"p rounds to exactly y = (\S+) in (\w+), where the two terms' derivatives cancel: 0 where the true gradient "
     r"is (\S+)", lambda r, m: _g(r) == 0 and p_of(r) == parse(m[1]) and same(m[3], r.grad_reference)),
    (r"the derivative of an infinite or NaN intermediate is NaN",
     lambda r, m: math.isnan(_g(r)) and any(not math.isfinite(s.value) or "overflowed" in s.note
                                            for s in r.steps if s.name != "dloss/dx")),
    (r"the derivative of log\(0\) is infinite",
     lambda r, m: math.isinf(_g(r)) and any(s.name.startswith("log") and s.value == -INF
                                            and s.note in ("log(0) = -inf", "log1p(-1) = log(0) = -inf")
                                            for s in r.steps)),
    (r"the gradient vanished: 0 where the true gradient is (\S+)",
     lambda r, m: _g(r) == 0 and r.grad_reference != 0 and same(m[1], r.grad_reference)),
    (r"finite but wrong: the true gradient is (\S+)",
     lambda r, m: math.isfinite(_g(r)) and r.grad_status == "inaccurate" and same(m[1], r.grad_reference)),
]


def _saturated_quotient(r, m) -> bool:
    """dL/dp = (p-y)/1e-12 as the note shows it, against the trace's step "grad: dL/dp". Without the aside it is
    (p-y)/1e-12 itself (|p-y| is 1 or 0.5 on this grid: p is 0 or 1, y is 0, 0.5 or 1); with it, the aside names
    what torch stores 1e-12 as in the kernel's format and the quotient differs visibly from (p-y)/1e-12 (bfloat16:
    1e-12 is 141/128·2^-40 = 1.00187e-12, and 1/1.00187e-12 = 9.98138e11 rounds to 232/128·2^39 = 9.96432e11;
    mpmath: mpf(141)/128*2**-40, 1/that)."""
    import torch

    dldp = step_value(r, "grad: dL/dp")
    if not same(m[2], dldp):
        return False
    unit = fmt_number(abs(dldp) * 1e-12, 6)
    if m[3] is None:
        return unit in ("1", "0.5")
    kernel = torch.float32 if m[4] == "float32" else FORMATS[m[4]].torch_dtype
    return (m[5] == r.dtype and same(m[3], float(torch.tensor(1e-12, dtype=kernel).double()))
            and unit not in ("1", "0.5"))


def _torch_sigmoid(row) -> float:
    import torch

    fmt = FORMATS[row.dtype]
    return float(torch.sigmoid(torch.tensor(row.input[0], dtype=torch.float64).to(fmt.torch_dtype)).double())


def test_every_gradient_note_is_true(grid):
    wrong = []
    for x, y, c, r in rows(grid):
        note = next(s.note for s in r.steps if s.name == "dloss/dx")
        for clause in filter(None, note.split("; ")):
            ok, why = _check(GRAD_RULES, clause, r)
            if not ok:
                wrong.append((x, y, r.dtype, r.backend, r.method, r.grad, clause, why))
    assert not wrong, "\n".join(map(repr, _distinct(wrong)))


# --- verdicts -------------------------------------------------------------------------------------------------

VERDICT_RULES = [
    (r"NaN where the true loss is (\S+)\.", lambda r, m: math.isnan(r.loss) and same(m[1], r.reference)),
    (r"inf where the true loss is (\S+)\.", lambda r, m: r.loss == INF and same(m[1], r.reference)),
    (r"(\S+), correct, but only because the -100 clamp replaced a log below -100(?: \(without it: (\S+)\))?\.",
     lambda r, m: r.status == "clamped" and r.error_bits == 0 and (m[2] is None or same(m[2], r.unclamped_loss))),
    (r"(\S+) where the true loss is (\S+): the -100 clamp replaced a log below -100(?: \(without it: (\S+)\))?\.",
     lambda r, m: r.status == "clamped" and r.error_bits > 0 and same(m[1], r.loss) and same(m[2], r.reference)
     and (m[3] is None or same(m[3], r.unclamped_loss))),
    (r"(\S+), finite but wrong: the true loss is (\S+) \((\S+) bits wrong\)\.",
     lambda r, m: r.status == "inaccurate" and math.isfinite(r.loss)),
    (r"(\S+), correctly rounded\.", lambda r, m: r.status == "ok" and r.error_bits == 0 and same(m[1], r.loss)),
    (r"(\S+), within tolerance \((\S+) bits off\)\.", lambda r, m: r.status == "ok" and r.error_bits > 0),
]
GRAD_VERDICT_RULES = [
    (r"gradient (\S+) where the true gradient is (\S+)\.",
     lambda r, m: r.grad_status in ("nan", "inf") and same(m[1], r.grad)),
    (r"gradient (\S+) where the true gradient is (\S+): a clamp changed it\.", lambda r, m: r.grad_status == "clamped"),
    (r"gradient 0 where the true gradient is (\S+): it vanished\.",
     lambda r, m: r.grad_status == "inaccurate" and r.grad == 0),
    (r"gradient (\S+), finite but wrong: the true gradient is (\S+) \((\S+) bits wrong\)\.",
     lambda r, m: r.grad_status == "inaccurate"),
    (r"gradient (\S+), correct \((\S+) bits off\)\.", lambda r, m: r.grad_status == "ok" and r.grad_error_bits > 0),
    (r"gradient (\S+), correctly rounded\.", lambda r, m: r.grad_status == "ok" and r.grad_error_bits == 0),
]


def test_every_verdict_is_true(grid):
    wrong = []
    for x, y, c, r in rows(grid):
        for rules, text in ((VERDICT_RULES, r.verdict), (GRAD_VERDICT_RULES, r.grad_verdict)):
            ok, why = _check(rules, text, r)
            if not ok:
                wrong.append((x, y, r.dtype, r.backend, r.method, text, why))
    assert not wrong, "\n".join(map(repr, _distinct(wrong)))


# --- summaries and answers ------------------------------------------------------------------------------------

def _rows_of(c, dtype, method, backend=None, flipped=False):
    return [r for r in (c.flipped if flipped else c.rows)
            if r.dtype == dtype and r.method == method and backend in (None, r.backend)]


def _story_wrong(c, dtype: str, text: str, backend=None) -> list[str]:
    """Each claim of one dtype's summary (or of the answer, for ``backend``) checked against the rows."""
    wrong = []

    def need(cond, claim):
        if not cond:
            wrong.append(claim)

    for m in re.finditer(r"naive gives (\S+?)(?=\s|\.\s|\.$)", text):
        need(any(same(m[1], r.loss) for r in _rows_of(c, dtype, "naive", backend)), m[0])
    for m in re.finditer(r"naive gives (\S+) \((?!(?:ok|inaccurate|clamped)\))(.+?)\)\.(?:\s|$)", text):  # why
        forward = {s.note for r in _rows_of(c, dtype, "naive", backend) for s in r.steps
                   if s.name != "dloss/dx" and not s.name.startswith("grad")}
        need(all(reason in forward for reason in m[2].split("; ")), m[0])
    for m in re.finditer(r"clamps the -inf log to -100, so 0·\(-100\) = 0 and it returns (\S+): the clamp hides the "
                         r"NaN", text):
        clamped = _rows_of(c, dtype, "clamped", backend)
        need(any((step_value(r, "max(log1p(-p)") == -100 and step_value(r, "log1p(-p)") == -INF)
                 or (step_value(r, "max(log p") == -100 and step_value(r, "log(p)") == -INF) for r in clamped)
             and any(math.isnan(r.loss) for r in _rows_of(c, dtype, "naive", backend)), m[0])
    for m in re.finditer(r"returns (\S+) where the true loss is (\S+): the -100 clamp replaced a log below -100"
                         r"(, capping it)?(?: \(without it: (\S+)\))?\.", text):
        need(any(r.status == "clamped" and same(m[1], r.loss) and same(m[2], r.reference)
                 and bool(m[3]) == (r.loss < r.reference) and (m[4] is None or same(m[4], r.unclamped_loss))
                 for meth in ("torch_bce", "clamped") for r in _rows_of(c, dtype, meth, backend)), m[0])
    for m in re.finditer(r"With target (\S+) it returns (\S+) where the true loss is (\S+)\.", text):
        need(any(same(m[2], r.loss) and same(m[3], r.reference) and r.status != "ok"
                 for meth in ("torch_bce", "clamped") for r in _rows_of(c, dtype, meth, None, flipped=True)), m[0])
    for m in re.finditer(r"With target (\S+) it returns the right (\S+), but only because the clamp hides "
                         r"0·log\(0\) = NaN", text):
        need(any(same(m[2], r.loss) and r.status == "clamped" and math.isnan(r.unclamped_loss)
                 for meth in ("torch_bce", "clamped") for r in _rows_of(c, dtype, meth, None, flipped=True)), m[0])
    for m in re.finditer(r"BCEWithLogitsLoss gives (\S+) \((\w+)\) and softplus (\S+) \((\w+)\)", text):
        need(any(same(m[1], r.loss) and m[2] == r.status for r in _rows_of(c, dtype, "torch_bce_with_logits", backend))
             and any(same(m[3], r.loss) and m[4] == r.status for r in _rows_of(c, dtype, "softplus", backend)), m[0])
    for m in re.finditer(r"softplus gives (\S+) \(true (\S+), (\w+)\)", text):
        need(any(same(m[1], r.loss) and same(m[2], r.reference) and m[3] == r.status
                 for r in _rows_of(c, dtype, "softplus", backend)), m[0])
    for m in re.finditer(r"(BCELoss's backward gives|the clamped form's gradient is) (\S+), as it should be \(true "
                         r"(\S+)\)", text):
        meth = "torch_bce" if m[1].startswith("BCELoss") else "clamped"
        need(any(same(m[2], r.grad) and r.grad_status == "ok" for r in _rows_of(c, dtype, meth, backend)), m[0])
    for m in re.finditer(r"(BCELoss's backward gives|the clamped form's gradient is) (\S+) where the true gradient "
                         r"is (\S+) \((\w+)\)(, although its loss looks right)?", text):
        meth = "torch_bce" if m[1].startswith("BCELoss") else "clamped"
        need(any(same(m[2], r.grad) and r.grad_status == m[4] and r.grad_status != "ok"
                 and (not m[5] or r.status == "ok" or (r.status == "clamped" and r.error_bits == 0))
                 for r in _rows_of(c, dtype, meth, backend)), m[0])
    return wrong


def test_every_summary_and_answer_claim_is_true(grid):
    wrong = []
    for x, y, c in grid:
        for line in c.summary:
            dtype = line.split(":")[0]
            wrong += [(x, y, dtype, claim) for claim in _story_wrong(c, dtype, line)]
        dtype, backend = c.focus
        wrong += [(x, y, "answer", claim) for claim in _story_wrong(c, dtype, " ".join(c.answer), backend)]
    assert not wrong, "\n".join(map(repr, _distinct(wrong)))



# --- the peer libraries' rows (--peers): the clip that acted is the one named --------------------------------

def _peers_installed() -> bool:
    from stabcli.core import peers

    return all(peers.installed(n) for n in ("keras", "optax", "jax", "scikit-learn"))


@pytest.fixture(scope="module")
def peer_grid():
    """The same logits and targets through the peer rows only (Keras on torch, optax, scikit-learn)."""
    if not _peers_installed():
        pytest.skip("the peers extra is not installed")
    out = []
    for x in XS:
        for y in YS:
            inputs = Inputs(np.array([x]), np.array([y]), np.ones(1), np.ones(1))
            out.append((x, y, run_compare(inputs, [FORMATS[n] for n in ALL_NAMES], backends=(), peers=True)))
    return out


def _in_dtype(v: float, dtype: str) -> float:
    """v rounded to the dtype by numpy/ml_dtypes (not by stabcli's Format): where Keras's 1e-7 and 1 - 1e-7 land."""
    import ml_dtypes

    np_dtype = {"float16": np.float16, "float32": np.float32, "float64": np.float64,
                "bfloat16": ml_dtypes.bfloat16}[dtype]
    return float(np.array(v).astype(np_dtype).astype(np.float64))


def _clip_clause_true(r, clause: str) -> bool:
    """One clause of a peer row's clip note, against p (the row's own step) and the library's documented clip:
    Keras clips p to [epsilon, 1 - epsilon] in the dtype, epsilon = keras.config.epsilon() = 1e-7, then torch's
    BCELoss clamps its logs at -100; scikit-learn clips to [eps, 1 - eps], eps = np.finfo(dtype).eps (float64
    for a bfloat16 p, which it converts)."""
    p = p_of(r)
    lo, hi = _in_dtype(1e-7, r.dtype), _in_dtype(1 - 1e-7, r.dtype)
    m = re.fullmatch(r"Keras's clip of p to \[1e-7, 1 - 1e-7\] replaced p = (\S+) by (\S+) \((1 - 1e-7|1e-7) in "
                     r"(\w+)\)", clause)
    if m:
        upper = m[3].startswith("1 -")
        return (r.method == "keras_bce" and m[4] == r.dtype and same(m[1], p)
                and (p > hi and same(m[2], hi) if upper else p < lo and same(m[2], lo)))
    m = re.fullmatch(r"torch's BCELoss, which Keras calls, clamped a log below -100 at -100(?: \(Keras's clip of p to "
                     r"\[1e-7, 1 - 1e-7\] did nothing: (1 - 1e-7|1e-7) is (\S+) in (\w+)\))?", clause)
    if m:
        c = min(max(p, lo), hi)
        with np.errstate(all="ignore"):
            fired = bool(np.log(c) < -100 or np.log1p(-c) < -100)
        idle = m[1] is None or (m[3] == r.dtype and same(m[2], hi if m[1].startswith("1 -") else lo)
                                and p == (hi if m[1].startswith("1 -") else lo))
        return r.method == "keras_bce" and fired and idle
    m = re.fullmatch(r"scikit-learn's clip of p to \[eps, 1 - eps\] \(eps = finfo\((\w+)\)\.eps = (\S+)\) replaced "
                     r"p = (\S+) by (1 - eps|eps)", clause)
    if m:
        dt = r.dtype if r.dtype in ("float16", "float32", "float64") else "float64"
        eps = float(np.finfo(dt).eps)
        return (r.method == "sklearn_log_loss" and m[1] == dt and same(m[2], eps) and same(m[3], p)
                and (p > 1 - eps if m[4] == "1 - eps" else p < eps))
    return False


def _clip_note_true(r, text: str) -> bool:
    return r.status == "clamped" and all(_clip_clause_true(r, c) for c in text.split("; then "))


PEER_VERDICT_RULES = [
    (r"(\S+), correct, but only because (?!the -100 clamp)(.+)\.",
     lambda r, m: r.error_bits == 0 and _clip_note_true(r, m[2])),
    (r"(\S+) where the true loss is (\S+): (?!the -100 clamp)(.+)\.",
     lambda r, m: r.error_bits > 0 and same(m[1], r.loss) and same(m[2], r.reference) and _clip_note_true(r, m[3])),
] + VERDICT_RULES
PEER_GRAD_VERDICT_RULES = [
    (r"gradient (\S+) where the true gradient is (\S+): (?!it vanished|a clamp changed it)(.+)\.",
     lambda r, m: r.grad_status == "clamped" and same(m[1], r.grad) and same(m[2], r.grad_reference)
     and _clip_note_true(r, m[3])),
] + GRAD_VERDICT_RULES
PEER_STEP_RULES = [
    (r"Keras passes p to torch's BCELoss, which refuses a NaN probability \(RuntimeError\); shown as NaN",
     lambda r, s, m: r.method == "keras_bce" and math.isnan(s.value) and math.isnan(p_of(r))),
] + STEP_RULES
PEER_GRAD_RULES = [
    (r"Keras's clip fired, and torch.clip's backward is 0 where it clips: 0 where the true gradient is (\S+)",
     lambda r, m: r.method == "keras_bce" and _g(r) == 0 and same(m[1], r.grad_reference)
     and not _in_dtype(1e-7, r.dtype) <= p_of(r) <= _in_dtype(1 - 1e-7, r.dtype)),
] + GRAD_RULES


def test_every_peer_note_and_verdict_is_true(peer_grid):
    # keras_bce at x = 1e10, y = 0 in float32 said "the -100 clamp replaced a log below -100", though its 15.94
    # is -log(1 - (1 - 2^-23)), Keras's clip of p to 1 - 1e-7 (1 - 2^-23 in float32); scikit-learn's likewise
    wrong, clips = [], set()
    for x, y, c in peer_grid:
        for r in c.rows:
            assert r.backend == "peers"
            checks = [(PEER_VERDICT_RULES, r.verdict, (r,)), (PEER_GRAD_VERDICT_RULES, r.grad_verdict, (r,))]
            checks += [(PEER_STEP_RULES, s.note, (r, s)) for s in r.steps if s.note and s.name != "dloss/dx"]
            note = next((s.note for s in r.steps if s.name == "dloss/dx"), "")
            checks += [(PEER_GRAD_RULES, clause, (r,)) for clause in filter(None, note.split("; "))]
            for rules, text, args in checks:
                if text is None and rules is PEER_GRAD_VERDICT_RULES and r.grad is None:
                    continue  # scikit-learn: no gradient
                ok, why = _check(rules, text, *args)
                if not ok:
                    wrong.append((x, y, r.dtype, r.method, text, why))
            if r.status == "clamped":
                clips |= {k for k in ("Keras's clip", "torch's BCELoss, which Keras calls", "did nothing",
                                      "scikit-learn's clip") if k in r.verdict}
    assert not wrong, "\n".join(map(repr, _distinct(wrong)))
    # every kind of clip is met on this grid, so each rule above has run
    assert clips == {"Keras's clip", "torch's BCELoss, which Keras calls", "did nothing", "scikit-learn's clip"}

# --- the three errors of issue 12, each pinned ----------------------------------------------------------------

def _one(x, y, dtype, backend):
    return run_compare(Inputs(np.array([x]), np.array([y]), np.ones(1), np.ones(1)), [FORMATS[dtype]], (backend,))


def test_float16_minus_12_gradient_is_an_overflow_of_1_over_p_not_log_0():
    # float16, x = -12, y = 1, torch: p = torch.sigmoid(-12) = 6.139278411865234e-06 in float16 (the exact
    # sigmoid, 6.144174602214718e-06 by mpmath, rounded to float16), not 0; dL/dp = -1/p = -162,885.8 is beyond
    # float16's largest value 65504 (rounding to inf from 65520), so the backward overflows to -inf.
    c = _one(-12.0, 1.0, "float16", "torch")
    for method in ("naive", "clamped", "torch_bce"):
        row = next(r for r in c.rows if r.method == method)
        assert row.grad == -INF and p_of(row) == 6.139278411865234e-06
        notes = " ".join(s.note for s in row.steps)
        assert "log(0)" not in notes, (method, notes)
        assert "overflows float16 (max 65504)" in notes, (method, notes)
        assert re.search(r"-16288[56]", notes), (method, notes)  # -1/p, or (p-1)/(p(1-p)) for BCELoss's kernel


def test_demo_does_not_call_bce_with_logits_gradient_right_without_the_sweep():
    # A float32 torch sweep of the default grid finds BCEWithLogitsLoss's gradient vanishing for target 1 from
    # x >= 16.63553237915039, where sigmoid rounds to 1.0 (DESIGN.md's saturation fact), so sigmoid(x) - y = 0
    # there. The demo's step 7 quotes that sweep instead of calling the gradient right.
    from stabcli.present import demo

    step7 = demo.build_step(7, "float32")
    text = " ".join(step7.paragraphs + step7.after)
    assert "its gradient is right" not in text and "gets the gradient right" not in text
    sweep_quotes = {q.call["field"]: q for q in step7.quotes
                    if q.source == "sweep" and q.call["method"] == "torch_bce_with_logits"}
    assert sweep_quotes["grad.vanished_pos"].value == 16.63553237915039
    assert sweep_quotes["grad_count_vanished"].value > 0
    for q in sweep_quotes.values():
        assert q.text() in text
    step6 = demo.build_step(6, "float32")
    assert "gets the gradient right" not in " ".join(step6.paragraphs + step6.after)


def test_readme_bit_for_bit_claim_is_about_the_loss_and_the_gradients_differ():
    # The README says clamped equals torch_bce bit for bit: for the loss. Their gradients differ (float32,
    # x = 40, y = 0: torch's autograd through the hand-written clamp gives NaN, BCELoss's own backward 0), and
    # the README must say so next to the claim.
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    claims = [s for s in re.split(r"(?<=\.)\s", " ".join(readme.split())) if "bit for bit" in s]
    assert claims
    for claim in claims:
        assert "loss" in claim, claim
    joined = " ".join(readme.split())
    assert "gradients differ" in joined and "x = 40, y = 0" in joined
    c = _one(40.0, 0.0, "float32", "torch")
    got = {r.method: r for r in c.rows}
    assert got["clamped"].loss == got["torch_bce"].loss == 100.0
    assert math.isnan(got["clamped"].grad) and got["torch_bce"].grad == 0.0


# --- sweep sentences ----------------------------------------------------------------------------------------

def _logits(text: str) -> dict:
    """{'pos': a, 'neg': b} from 'x ≥ a and x ≤ b' (either may be missing)."""
    out = {}
    for side, rel in (("pos", "≥"), ("neg", "≤")):
        m = re.search(rf"x {rel} (-?[\d.e+-]+\d)", text)
        if m:
            out[side] = float(m[1])
    return out


def _sides(b, kind: str) -> dict:
    return {side: getattr(b, f"{kind}_{side}") for side in ("pos", "neg") if getattr(b, f"{kind}_{side}") is not None}


def _close(said: dict, have: dict) -> bool:
    """The logits a sentence names are the row's breakdown logits (to the digits a sentence shows)."""
    return said.keys() == have.keys() and all(math.isclose(said[k], have[k], rel_tol=1e-5) for k in said)


def test_every_sweep_sentence_is_true():
    from stabcli.commands.sweep import make_grid, run_sweep

    sweep = run_sweep([FORMATS["float16"], FORMATS["bfloat16"]], ["numpy", "torch"], [0.0, 1.0, 0.3], make_grid())
    wrong = []
    for (backend, dtype, target), sentence in sweep.summary.items():
        rows = {r.method: r for r in sweep.rows if (r.backend, r.dtype, r.target) == (backend, dtype, target)}
        loss_part, _, grad_part = sentence.partition(" Gradient: ")
        for part in loss_part.split(": ", 1)[1].rstrip(".").split("; "):
            method, _, claim = part.partition(" ")
            b = rows[method].breakdown
            if claim.startswith("gives inf/NaN from"):
                nf, _, bad = claim[len("gives inf/NaN from "):].partition(" (out of tolerance already from ")
                ok = _close(_logits(nf), _sides(b, "nonfinite")) and (not bad or _close(_logits(bad), _sides(b, "inaccurate")))
            elif claim.startswith("is finite over the swept range, but only because the -100 clamp steps in from"):
                cl, _, bad = claim.partition(" (out of tolerance from ")
                ok = not _sides(b, "nonfinite") and _close(_logits(cl), _sides(b, "clamped")) and \
                    (not bad or _close(_logits(bad), _sides(b, "inaccurate")))
            elif claim.startswith("stays finite but is out of tolerance from"):
                ok = not _sides(b, "nonfinite") and not _sides(b, "clamped") and \
                    _close(_logits(claim), _sides(b, "inaccurate"))
            elif claim == "stays within tolerance over the swept range":
                ok = not _sides(b, "inaccurate")
            else:
                ok = False
            if not ok:
                wrong.append((backend, dtype, target, part))
        for part in grad_part.rstrip(".").split("; "):
            if " keep" in part and "within tolerance over the swept range" in part:
                names = part.split(" keep")[0].split(", ")
                ok = all(not _sides(rows[n].grad.breakdown, "inaccurate") for n in names)
            else:
                method = part.split("'s gradient ")[0]
                g = rows[method].grad.breakdown
                named = {float(v) for v in re.findall(r"x [≥≤] (-?[\d.e+-]+\d)", part)}
                have = {v for k in ("nonfinite", "nan", "vanished", "inaccurate") for v in _sides(g, k).values()}
                ok = bool(named) and all(any(math.isclose(v, h, rel_tol=1e-5) for h in have) for v in named)
            if not ok:
                wrong.append((backend, dtype, target, part))
    assert not wrong, "\n".join(map(repr, wrong[:20]))


def test_float32_torch_sigmoid_at_minus_100_is_an_exp_overflow_not_an_underflow():
    # mpmath: 1/(1 + mp.exp(100)) = 3.7200759760208359e-44, 26.55 float32 subnormal steps of 2^-149, so it rounds to
    # 27·2^-149 = 3.783505853677006e-44, not 0; torch.sigmoid gives 0 because exp(100) > 3.4e38 overflows float32
    import torch

    assert torch.sigmoid(torch.tensor(-100.0)).item() == 0.0 and math.isinf(torch.exp(torch.tensor(100.0)).item())
    assert np.float32(3.7200759760208359e-44) == np.float32(27 * 2.0**-149) != 0
    c = _one(-100.0, 1.0, "float32", "torch")
    naive = next(r for r in c.rows if r.method == "naive")
    note = next(s.note for s in naive.steps if s.name.startswith("p = "))
    assert note == ("torch's sigmoid computes 1/(1 + exp(-x)), and exp(100) overflows float32: p = 0, though "
                    f"sigmoid(x) rounds to {num(27 * 2.0**-149)} in float32")
    assert "underflowed" not in " ".join(c.answer)
