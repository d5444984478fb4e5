"""Formats up close (`stabcli float`, ``core/floats.py``) and the float8 formats' rounding.

Where the expected numbers come from:
* format constants: ``numpy.finfo`` (float16/32/64) and ``ml_dtypes.finfo`` (bfloat16, float8), independent of the
  code under test, which reads them through ``Format``;
* bit patterns written out by hand from the layouts (sign | exponent | mantissa, bias 2^(e-1) - 1; e4m3fn's only
  NaN is S.1111.111, so its largest value is 0 1111 110 = 1.75·2^8 = 448 = 0x7E);
* breakdown logits by hand from the formulas in ``core/floats.py``'s docstring, and by brute force over every
  value of the 8-bit formats;
* correct rounding checked against exact rational arithmetic (``fractions.Fraction``) at every tie.
"""

from __future__ import annotations

import io
import json
import math
import re
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
from click.testing import CliRunner
from rich.console import Console

from stabcli.cli import cli
from stabcli.commands.floats import run_float, torch_differs
from stabcli.core import floats
from stabcli.core.floats import torch_cast
from stabcli.core.formats import FORMATS, parse_dtypes, round_float64, to_float64

F8 = ("float8_e4m3fn", "float8_e5m2")
FINFO = {"float16": np.finfo(np.float16), "float32": np.finfo(np.float32), "float64": np.finfo(np.float64),
         "bfloat16": ml_dtypes.finfo(ml_dtypes.bfloat16), "float8_e4m3fn": ml_dtypes.finfo(ml_dtypes.float8_e4m3fn),
         "float8_e5m2": ml_dtypes.finfo(ml_dtypes.float8_e5m2)}


def run(*args):
    return CliRunner().invoke(cli, list(args))


# --- constants and bit patterns ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(FORMATS))
def test_constants_match_finfo(name):
    c, fi = floats.constants(FORMATS[name]), FINFO[name]
    assert c.max == float(fi.max)
    assert c.smallest_normal == float(fi.smallest_normal)
    assert c.smallest_subnormal == float(fi.smallest_subnormal)
    assert c.eps == float(fi.eps)
    assert c.mantissa_bits == fi.nmant and c.bits == fi.bits
    assert c.bias == 1 - fi.minexp


# (dtype, value, pattern), each pattern by hand from the field layout
PATTERNS = [
    ("float16", 65504.0, 0x7BFF),  # 0 11110 1111111111 = 1.9990234375·2^15
    ("float16", 1.0, 0x3C00), ("float16", -2.0, 0xC000), ("float16", 2.0**-24, 0x0001), ("float16", -0.0, 0x8000),
    ("float16", math.inf, 0x7C00),
    ("bfloat16", 1.0, 0x3F80), ("bfloat16", float(FINFO["bfloat16"].max), 0x7F7F),
    ("float32", 1.0, 0x3F800000), ("float64", 1.0, 0x3FF0000000000000),
    ("float64", 1.7976931348623157e308, 0x7FEFFFFFFFFFFFFF),
    ("float8_e4m3fn", 448.0, 0x7E), ("float8_e4m3fn", 1.0, 0x38), ("float8_e4m3fn", -1.0, 0xB8),
    ("float8_e4m3fn", 2.0**-6, 0x08), ("float8_e4m3fn", 2.0**-9, 0x01), ("float8_e4m3fn", 0.1015625, 0x1D),
    ("float8_e5m2", 57344.0, 0x7B), ("float8_e5m2", 1.0, 0x3C), ("float8_e5m2", 2.0**-16, 0x01),
    ("float8_e5m2", math.inf, 0x7C), ("float8_e5m2", -math.inf, 0xFC),
]


@pytest.mark.parametrize("name, value, pattern", PATTERNS)
def test_bit_patterns_by_hand(name, value, pattern):
    fmt = FORMATS[name]
    bits = floats.bits_of(value, fmt)
    assert bits.pattern == pattern
    assert bits.sign + bits.exponent + bits.mantissa == format(pattern, f"0{fmt.bits}b")
    widths = {"float16": 5, "bfloat16": 8, "float32": 8, "float64": 11, "float8_e4m3fn": 4, "float8_e5m2": 5}
    assert len(bits.exponent) == widths[name] and len(bits.mantissa) == fmt.bits - 1 - widths[name]
    assert floats.from_bits(pattern, fmt) == value


def test_hex_and_fields_of_65504():
    b = floats.bits_of(65504.0, FORMATS["float16"])
    assert (b.hex, b.spaced) == ("0x7BFF", "0 11110 1111111111")
    assert floats.bits_of(448.0, FORMATS["float8_e4m3fn"]).spaced == "0 1111 110"
    assert floats.bits_of(57344.0, FORMATS["float8_e5m2"]).spaced == "0 11110 11"


@pytest.mark.parametrize("name", F8)
def test_every_float8_pattern_decodes_by_the_hand_formula(name):
    # value = (-1)^s · 2^(e - bias) · (1 + m/2^M), subnormal (e = 0) 2^(1 - bias) · m/2^M; e4m3fn: S.1111.111 is
    # NaN and there is no inf; e5m2: IEEE-like (exponent all ones: inf for m = 0, else NaN).
    fmt = FORMATS[name]
    m_bits = fmt.mantissa_bits - 1
    bias = 2 ** (fmt.exponent_bits - 1) - 1
    for pattern in range(256):
        s, e, m = pattern >> 7, (pattern >> m_bits) & (2**fmt.exponent_bits - 1), pattern & (2**m_bits - 1)
        top = e == 2**fmt.exponent_bits - 1
        if name == "float8_e4m3fn" and top and m == 2**m_bits - 1 or name == "float8_e5m2" and top and m:
            want = math.nan
        elif name == "float8_e5m2" and top:
            want = math.inf
        elif e == 0:
            want = 2.0 ** (1 - bias) * m / 2**m_bits
        else:
            want = 2.0 ** (e - bias) * (1 + m / 2**m_bits)
        want = -want if s else want
        got = floats.from_bits(pattern, fmt)
        assert (math.isnan(got) and math.isnan(want)) or got == want, (pattern, got, want)


def test_float8_counts_of_finite_values():
    # 256 patterns less the NaNs (2 in e4m3fn) and, in e5m2, 2 infinities and 6 NaNs; both zeros kept
    assert FORMATS["float8_e4m3fn"].all_finite().size == 254
    assert FORMATS["float8_e5m2"].all_finite().size == 248


# --- neighbours and ulps -------------------------------------------------------------------------------------

def test_neighbours_and_ulp_by_hand():
    f16, e4, e5 = FORMATS["float16"], FORMATS["float8_e4m3fn"], FORMATS["float8_e5m2"]
    assert floats.neighbours(1.0, f16) == (1 - 2.0**-11, 1 + 2.0**-10)  # the gap below a power of two is half
    assert floats.ulp(1.0, f16) == 2.0**-10 == f16.eps
    assert floats.neighbours(65504.0, f16) == (65472.0, math.inf)
    assert floats.ulp(65504.0, f16) == 32.0
    assert floats.neighbours(448.0, e4) == (416.0, None)  # nothing above 448 but the NaN pattern
    assert floats.neighbours(-448.0, e4) == (None, -416.0)
    assert floats.neighbours(0.0, e4) == (-(2.0**-9), 2.0**-9)
    assert floats.neighbours(57344.0, e5) == (49152.0, math.inf)
    assert floats.ulp(2.0**-9, e4) == 2.0**-9  # subnormal: the smallest subnormal
    assert floats.neighbours(math.inf, f16) == (65504.0, None) and floats.ulp(math.inf, f16) is None


@pytest.mark.parametrize("name", ["float16", "bfloat16", *F8])
def test_ulp_is_the_gap_above_every_positive_value(name):
    fmt = FORMATS[name]
    xs = to_float64(fmt.all_finite())
    xs = np.unique(xs[xs >= 0])
    for x, nxt in zip(xs[:-1], xs[1:]):
        assert floats.ulp(float(x), fmt) == nxt - x, x
        assert floats.neighbours(float(x), fmt)[1] == nxt


# --- rounding, ties and overflow -----------------------------------------------------------------------------

def _exact_nearest(q: Fraction, values: np.ndarray, fmt) -> float:
    """The nearest of the sorted finite ``values`` to q, ties to the even bit pattern (no overflow here)."""
    i = int(np.searchsorted(values, float(q)))
    cands = [float(v) for v in values[max(i - 2, 0):i + 2]]
    best = min(cands, key=lambda v: (abs(Fraction(v) - q), floats.bits_of(v, fmt).pattern % 2))
    return best


@pytest.mark.parametrize("name", ["bfloat16", *F8])
def test_round_float64_is_correct_at_every_tie(name):
    # ties (the midpoint between neighbours) and a hair either side of each: where a float64 -> float32 ->
    # narrower cast would double-round (float32 cannot hold mid ± 2^-40·mid, so it lands on the tie)
    fmt = FORMATS[name]
    values = np.unique(to_float64(fmt.all_finite()))
    mids = (values[1:] + values[:-1]) / 2
    mids = mids[mids != 0]
    step = 16 if name == "bfloat16" else 1  # bfloat16 has 65,000 ties: every 16th keeps the test quick
    tests = np.concatenate([mids[::step], (mids * (1 + 2.0**-40))[::step], (mids * (1 - 2.0**-40))[::step]])
    got = to_float64(round_float64(tests, fmt))
    want = np.array([_exact_nearest(Fraction(float(v)), values, fmt) for v in tests])
    assert np.array_equal(got, want)
    via32 = to_float64(tests.astype(np.float32).astype(fmt.np_dtype))
    assert not np.array_equal(via32, want)  # the test can fail: the double-rounding path gets ties wrong


def test_overflow_thresholds():
    e4, e5, f16 = FORMATS["float8_e4m3fn"], FORMATS["float8_e5m2"], FORMATS["float16"]
    r = lambda v, f: float(to_float64(f.round(np.array([v])))[0])  # noqa: E731
    # e4m3fn: 464 = 448 + 32/2 is a tie that goes to the even 448 (0x7E); above it NaN (ml_dtypes), no inf
    assert r(464.0, e4) == 448.0 and math.isnan(r(np.nextafter(464.0, 1e9), e4)) and math.isnan(r(math.inf, e4))
    # e5m2 and float16: the tie at max + ulp/2 goes up, to inf (57344 = 0x7B and 65504 = 0x7BFF are odd)
    assert r(61440.0, e5) == math.inf and r(np.nextafter(61440.0, 0), e5) == 57344.0
    assert r(65520.0, f16) == math.inf and r(np.nextafter(65520.0, 0), f16) == 65504.0
    assert floats.overflow_threshold(e4) == 464 and floats.max_is_even(e4)
    assert floats.overflow_threshold(f16) == 65520 and not floats.max_is_even(f16)


def test_round_exact_rounds_what_was_typed_once():
    f16 = FORMATS["float16"]
    # 1 + 2^-11 + 10^-20 is just above the tie 1 + 2^-11; as a float64 it is the tie itself, which goes to 1
    q = Fraction("1.00048828125000000001")
    assert floats.round_exact(q, f16) == 1 + 2.0**-10
    assert float(to_float64(f16.round(np.array(float(q))))) == 1.0
    assert floats.round_exact(Fraction(-1, 10**30), f16) == 0 and math.copysign(1, floats.round_exact(
        Fraction(-1, 10**30), f16)) < 0


# --- the format's breakdown logits ---------------------------------------------------------------------------

def test_breakdown_logits_by_hand():
    # DESIGN.md's facts for the four formats; float8 by hand: e4m3fn (p = 4): op by op 4 ln 2 - ln(17/16) = 2.712
    # -> 2.75 (values 0.25 apart in [2, 4)), correctly rounded ln 31 = 3.434 -> 3.5, exp overflow ln 464 = 6.14
    # -> 6.5; e5m2 (p = 3): 3 ln 2 - ln(9/8) = 1.962 -> 2, ln 15 = 2.708 -> 3, ln 61440 = 11.03 -> 12.
    want = {"float16": (7.625, 8.3203125, 11.09375), "bfloat16": (5.5625, 6.25, 89.0),
            "float32": (16.63553237915039, None, 88.72283935546875),
            "float64": (36.73680056967711, None, 709.7827128933841),
            "float8_e4m3fn": (2.75, 3.5, 6.5), "float8_e5m2": (2.0, 3.0, 12.0)}
    for name, (op, cr, ovf) in want.items():
        c = floats.constants(FORMATS[name])
        assert c.sigmoid_one_op_by_op == op and c.exp_overflow == ovf, name
        if cr is not None:
            assert c.sigmoid_one == cr, name


@pytest.mark.parametrize("name", F8)
def test_float8_breakdown_logits_by_brute_force(name):
    # every value of the format: numpy's op-by-op 1/(1+exp(-x)) (ml_dtypes rounds each op), numpy's exp, and a
    # sigmoid computed in float64 and rounded once
    fmt = FORMATS[name]
    xs = fmt.all_finite()
    x64 = to_float64(xs)
    with np.errstate(all="ignore"):
        one = fmt.np_dtype.type(1)
        op = to_float64(one / (one + np.exp(-xs)))
        ex = to_float64(np.exp(xs))
        cr = to_float64(fmt.round(1 / (1 + np.exp(-x64))))
    c = floats.constants(fmt)
    assert x64[op == 1].min() == c.sigmoid_one_op_by_op
    assert x64[~np.isfinite(ex)].min() == c.exp_overflow
    assert x64[cr == 1].min() == c.sigmoid_one


# --- torch's casts -------------------------------------------------------------------------------------------

def test_torch_float8_e4m3fn_cast_saturates():
    # torch 2.13's Float8_e4m3fn.h: "Finite overflow or inf → saturate to max finite value"; NaN stays NaN.
    e4 = FORMATS["float8_e4m3fn"]
    assert torch_cast(500.0, e4) == 448.0 and torch_cast(math.inf, e4) == 448.0 and torch_cast(-1e10, e4) == -448.0
    assert math.isnan(torch_cast(math.nan, e4))
    assert torch_cast(61440.0, FORMATS["float8_e5m2"]) == math.inf  # e5m2 has inf and overflows to it


@pytest.mark.parametrize("name", ["float16", "bfloat16", *F8])
def test_torch_rounds_float64_through_float32(name):
    # the model behind commands/floats.torch_differs: torch's float64 -> narrower cast equals rounding to float32
    # first, so it double-rounds beside every tie
    import torch

    fmt = FORMATS[name]
    values = np.unique(to_float64(fmt.all_finite()))
    mids = (values[1:] + values[:-1]) / 2
    xs = np.concatenate([mids * (1 + 2.0**-40), mids * (1 - 2.0**-40)])[::7]
    got = torch.from_numpy(xs).to(fmt.torch_dtype).to(torch.float64).numpy()
    model = to_float64(fmt.round(xs.astype(np.float32).astype(np.float64)))
    assert np.array_equal(got, model, equal_nan=True)
    assert any(torch_differs(float(x), float(to_float64(fmt.round(np.array(x)))), fmt) for x in xs)


# --- stabcli float -------------------------------------------------------------------------------------------

def _row(text, name):
    report = run_float(text, float(text), parse_dtypes([name]))
    return report, report.rows[0]


def test_1e10_in_float16_is_inf_and_says_why():
    result = run("float", "1e10", "--dtype", "float16")
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert "1e10 → inf" in flat and "(overflow)" in flat
    assert "at or above 65520 = 65504 + ulp/2 = 65504 + 32/2" in flat  # 65520 itself rounds up: 65504 is odd
    assert "0 11111 0000000000 0x7C00" in flat and "below 65504 (0x7BFF)" in flat
    assert "exp(x) overflows to inf from x = 11.09375" in flat


def test_0_1_in_float16_error_in_ulps():
    # 0.1 lies between 0x2E66 = 1.599609375·2^-4 = 0.0999755859375 and 0x2E67 = 0.10003662109375; the ulp there
    # is 2^-14, and 0.1 - 0.0999755859375 = 2.44140625e-5 = 0.4 ulp exactly (0.1 = 1638.4·2^-14)
    _, row = _row("0.1", "float16")
    assert (row.value, row.bits.hex, row.above) == (0.0999755859375, "0x2E66", 0.10003662109375)
    assert row.error == Fraction(0.0999755859375) - Fraction(1, 10) == Fraction(-2, 5) * Fraction(2.0**-14)
    assert row.error_ulps == Fraction(-2, 5) and not row.tie


def test_float8_in_the_float_command():
    _, row = _row("464", "float8_e4m3fn")
    assert row.value == 448.0 and row.tie and not row.overflow and row.error_ulps == Fraction(-1, 2)
    report, row = _row("1e10", "float8_e4m3fn")
    assert math.isnan(row.value) and row.overflow and row.bits.hex == "0x7F" and row.torch_value == 448.0
    flat = " ".join(run("float", "1e10", "--dtype", "float8_e4m3fn").output.split())
    assert "every number above 464 = 448 + ulp/2" in flat and "saturates instead" in flat
    _, row = _row("1e-10", "float8_e5m2")
    assert row.underflow and row.value == 0


def test_double_rounding_is_named():
    report, row = _row("1.00048828125000000001", "float16")
    assert row.value == 1.0 and row.exact_rounding == 1 + 2.0**-10
    flat = " ".join(run("float", "1.00048828125000000001", "--dtype", "float16").output.split())
    assert "double rounding" in flat


def test_json_is_strict_and_complete():
    result = run("float", "65504", "--dtype", "float16", "--dtype", "float8_e4m3fn", "--format", "json")
    doc = json.loads(result.output, parse_constant=lambda t: pytest.fail(f"non-strict token {t}"))
    assert doc["command"] == "float" and doc["input"] == "65504"
    e4, f16 = doc["results"]  # narrowest first
    assert f16["hex"] == "0x7BFF" and f16["error"] == 0 and f16["above"] == "inf" and f16["kind"] == "normal"
    assert e4["stored"] == "nan" and e4["overflow"] and e4["torch"] == 448.0
    assert {"max", "smallest_normal", "smallest_subnormal", "eps", "exp_overflow", "sigmoid_one"} <= set(
        f16["constants"])
    csv_out = run("float", "0.1", "--format", "csv").output.splitlines()
    assert csv_out[0].startswith("dtype,stored,kind,bits,hex") and len(csv_out) == 5
    assert csv_out[1].split(",")[3] == f"{0x2E66:016b}"  # float16 first: np.float16(0.1).view(np.uint16) == 0x2E66


def test_bits_are_coloured_in_a_terminal_and_plain_in_a_pipe():
    from stabcli.present import float_view

    report = run_float("1", 1.0, parse_dtypes(["float16"]))
    plain = Console(file=io.StringIO(), width=80, color_system=None)
    plain.print(float_view.float_renderable(report))
    assert "\x1b[" not in plain.file.getvalue() and "0 01111 0000000000" in plain.file.getvalue()
    colour = Console(file=io.StringIO(), width=80, color_system="standard", force_terminal=True)
    colour.print(float_view.float_renderable(report))
    assert "\x1b[" in colour.file.getvalue()
    assert "\x1b[" not in run("float", "1").output  # CliRunner's output is a pipe


@pytest.mark.parametrize("args, needle", [
    (["float", "abc"], "abc"), (["float", "1e400"], "1e400"), (["float", ""], "''"), (["float", "1,2"], "1,2"),
    (["float"], "VALUE"), (["float", "1", "--dtype", "float8"], "float8"), (["float", "1", "--format", "xml"], "xml"),
    (["float", "--bogus"], "--bogus"), (["float", "0x1p"], "0x1p"),  # 0x10 is 16 now: hex floats (issue 16)
    (["float", "1_000"], "1_000"), (["float", "1e-99999"], "1e-99999"), (["float", "0e999999999"], "0e999999999"),
])
def test_bad_input(args, needle):
    result = run(*args)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and needle in lines[0], result.output


def test_all_keeps_to_the_four_wider_formats():
    assert [f.name for f in parse_dtypes(["all"])] == ["float16", "bfloat16", "float32", "float64"]
    assert [f.name for f in parse_dtypes(["float16", "float8_e5m2", "all", "float8_e4m3fn"])] == [
        "float8_e4m3fn", "float8_e5m2", "float16", "bfloat16", "float32", "float64"]


def test_a_long_typed_decimal_is_read_exactly():
    # Fraction(text) refuses more than 4300 digits (int's string limit); the exact reading then fell back to the
    # float64 value, 0, and said the rounding error was 0. 1e-5001 typed out in full is below float16's smallest
    # subnormal, 2^-24: stored 0, error -1e-5001, which float_view shows to 4 digits.
    text = "0." + "0" * 5000 + "1"
    result = run("float", text, "--dtype", "float16")
    assert result.exit_code == 0, result.output
    assert "≈-1e-5001 (stored - typed)" in result.stdout


def test_a_hex_float_is_exact():
    # 0x1.e8p+2 = (1 + 14/16 + 8/256)·4 = 7.625, float16's op-by-op saturation logit (DESIGN.md)
    result = run("float", "0x1.e8p+2", "--dtype", "float16", "--format", "json")
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)["results"][0]
    assert row["stored"] == 7.625 and row["error"] == 0


# --- between the largest value and the overflow threshold; the overflow sentence per format --------------------

def _max_and_ulp(name):
    """The largest finite value and its ulp from finfo: ulp(max) = 2^(floor(log2 max) - nmant)."""
    fi = FINFO[name]
    top = float(fi.max)
    return top, math.ldexp(1.0, math.frexp(top)[1] - 1 - fi.nmant)


# (typed, dtype): each above the largest value but below max + ulp(max)/2 (FINFO), so it rounds down to max:
# float16 65504 + 16 = 65520; float32 max + 2^103/2 ≈ 3.40282357e38; float64 max + 2^970/2 ≈ 1.797693134862315808e308
# (so the typed 1.7976931348623158e308 is 0.46 ulp above max); float8_e5m2 57344 + 4096 = 61440; e4m3fn 448 + 16.
# These raised OverflowError (Fraction(inf): the neighbour above max is inf) or TypeError (None in e4m3fn).
BEYOND_MAX = [("65510", "float16"), ("65519.99", "float16"), ("3.4028235e38", "float32"),
              ("1.7976931348623158e308", "float64"), ("60000", "float8_e5m2"), ("460", "float8_e4m3fn"),
              ("-65510", "float16"), ("-60000", "float8_e5m2"), ("-460", "float8_e4m3fn")]


@pytest.mark.parametrize("text, name", BEYOND_MAX)
def test_between_max_and_the_overflow_threshold_rounds_to_max(text, name):
    top, u = _max_and_ulp(name)
    q = Fraction(text)
    assert top < abs(q) < Fraction(top) + Fraction(u) / 2  # the case itself, from finfo alone
    for fmt in ("table", "json", "csv"):
        result = run("float", text, "--dtype", name, "--format", fmt)
        assert result.exit_code == 0 and result.exception is None, result.output
    row = json.loads(run("float", text, "--dtype", name, "--format", "json").stdout)["results"][0]
    assert row["stored"] == math.copysign(top, q) and not row["overflow"] and not row["tie"]
    note = " ".join(row["notes"][0].split())
    side = "below the most negative" if q < 0 else "above the largest"
    m = re.match(rf"{re.escape(text)} is {side} {name}, (\S+), but (?:below|above) (\S+) = ", note)
    assert m and float(m[1]) == math.copysign(top, q), note
    threshold = (Fraction(top) + Fraction(u) / 2) * (-1 if q < 0 else 1)  # float64's is beyond float64: 20 digits
    assert abs(Fraction(m[2]) - threshold) <= abs(threshold) * Fraction(1, 10**19), note
    assert f"rounds {'up' if q < 0 else 'down'} to" in note and "between" not in note


@pytest.mark.parametrize("text", ["65519.99", "1.7976931348623158e308"])
def test_every_format_at_once_beyond_a_max(text):
    # --dtype all (and float8): the value is beyond float16's max in one format and ordinary in the others
    result = run("float", text, "--dtype", "all", "--dtype", "float8_e4m3fn", "--dtype", "float8_e5m2")
    assert result.exit_code == 0 and result.exception is None, result.output


@pytest.mark.parametrize("name", [n for n in FORMATS if n != "float64"])  # float64: a typed number past its
@pytest.mark.parametrize("sign", ["", "-"])  # max + ulp/2 is refused as beyond float64 (test_bad_input)
def test_the_overflow_sentence_is_true_in_every_format(name, sign):
    text = sign + "1e39"  # beyond every narrower format's max + ulp/2 (bfloat16's, the largest, is 3.396e38)
    top, u = _max_and_ulp(name)
    row = json.loads(run("float", text, "--dtype", name, "--format", "json").stdout)["results"][0]
    assert row["overflow"]
    note = " ".join(row["notes"][0].split())
    m = re.search(r"halfway from the largest value, (\S+) = (0x[0-9A-F]+), to (?:the next power of two, )?(\S+?)"
                  r"(?: = 2\^(\d+))?[,)]", note)
    assert m, note
    assert float(m[1]) == top and float(m[3]) == top + u
    step = top + u
    is_pow2 = math.frexp(step)[0] == 0.5
    assert ("next power of two" in note) == is_pow2, note
    if is_pow2:
        assert m[4] is not None and 2.0 ** int(m[4]) == step
    else:
        # float8_e4m3fn: 448 + 32 = 480 is not a power of two (512 is); the pattern after max's 0x7E, 0x7F, is NaN
        assert name == "float8_e4m3fn" and step == 480.0
        nan = np.array([0x7F], dtype=np.uint8).view(ml_dtypes.float8_e4m3fn)
        assert np.isnan(nan.astype(np.float64))[0] and "its next pattern, 0x7F, is NaN" in note
    # what the overflow becomes: inf with the sign, where the format has inf; else NaN (ml_dtypes), said so
    has_inf = bool(np.isinf(np.array([math.inf]).astype(FORMATS[name].np_dtype).astype(np.float64))[0])
    if has_inf:
        assert note.endswith(f"to {sign}inf."), note
        assert row["stored"] == f"{sign}inf"
    else:
        assert row["stored"] == "nan" and "to NaN: float8_e4m3fn has no inf" in note
        assert row["torch"] == float(f"{sign}448")  # torch's cast saturates (test_torch_float8_e4m3fn_cast_saturates)
        assert any("saturates" in n for n in row["notes"][1:])
    # the tie at max + ulp/2 goes to the even neighbour: only e4m3fn's max (0x7E) has an even last bit
    at = "above" if name == "float8_e4m3fn" else "at or above"
    m = re.search(r"every number (?:whose magnitude is )?((?:at or )?above) (\S+) = ", note)
    assert m and m[1] == at and float(m[2]) == top + u / 2, note
