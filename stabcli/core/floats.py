"""One value up close in one format: its bits, its neighbours and ulp, how it was rounded, and the format's constants.

The numeric core behind ``stabcli float``; it never prints (the sentences are ``present/float_view.py``'s). Every
value is a value of the format held exactly as a float64 (every format here is at most float64), every input
the exact rational number the user typed (``fractions.Fraction``), so errors and thresholds are exact:

* ``ulp(x)``: the unit in the last place of x's binade, 2^(e - p + 1) for 2^e <= |x| < 2^(e+1) (the gap to the
  next value away from zero; at a power of two the gap below is half of it), and the smallest subnormal for a
  subnormal or zero x (Goldberg's definition, as ``np.spacing`` except at the largest value).
* overflow: the largest finite value ``max`` and the next power of two are ulp(max) apart, and a value rounds
  to nearest, so from max + ulp(max)/2 on it does not round to max. The tie itself goes to the even neighbour:
  inf in float16 (65504 = 0x7BFF has an odd last bit), but 448 in float8_e4m3fn (0x7E is even), where only
  values above 464 overflow, and there, having no inf, to NaN (ml_dtypes, the OCP non-saturating mode) or to
  448 (torch's cast saturates; measured with torch 2.13, see ``torch_cast``).
* the format's breakdown logits: exp(x) overflows from the first x of the format with exp(x) >= max + ulp/2;
  sigmoid(x) rounds to exactly 1 from the first x with sigmoid(x) >= 1 - 2^-(p+1) when computed exactly and
  rounded once (torch's fused float16/bfloat16/float8 kernel), and, op by op as 1/(1 + exp(-x)), from the first x
  whose exp(-x), rounded, is at most 2^-p (half an ulp of 1: then 1 + exp(-x) rounds to 1, ties to even), that
  is exp(-x) <= 2^-p·(1 + 2^-p): x >= p·ln 2 - ln(1 + 2^-p). For 16 bits and more the ln(1 + 2^-p) term moves
  no logit of the format; in float8, whose exp(-x) is itself coarsely rounded, it does (2.75 rather than 3 in
  float8_e4m3fn).

mpmath (exact logarithms) is imported inside the functions that need it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from stabcli.core.formats import Format, first_at_least, from_ordinal, max_ordinal, ordinal, to_float64

KINDS: tuple[str, ...] = ("zero", "subnormal", "normal", "inf", "nan")


# --- one value of a format -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Bits:
    """The bit pattern of one value: the whole as an unsigned integer, and its three fields as strings of 0/1."""

    pattern: int
    sign: str
    exponent: str
    mantissa: str
    width: int

    @property
    def hex(self) -> str:
        return f"0x{self.pattern:0{self.width // 4}X}"

    @property
    def spaced(self) -> str:
        """'0 11110 1111111111': sign, exponent and mantissa fields separated by spaces."""
        return f"{self.sign} {self.exponent} {self.mantissa}"


def as_dtype(value: float, fmt: Format) -> np.ndarray:
    """A float64 that is a value of ``fmt`` (or inf/NaN) as a 0-d array of the format, sign of zero kept."""
    return np.array(value, dtype=np.float64).astype(fmt.np_dtype)


def bits_of(value: float, fmt: Format) -> Bits:
    """The bits of ``value`` (a value of the format given as float64, exactly) in ``fmt``."""
    raw = int(np.asarray(as_dtype(value, fmt)).reshape(1).view(fmt.uint_dtype)[0])
    text = format(raw, f"0{fmt.bits}b")
    e = fmt.exponent_bits
    return Bits(raw, text[0], text[1:1 + e], text[1 + e:], fmt.bits)


def from_bits(pattern: int, fmt: Format) -> float:
    """The value whose bit pattern is ``pattern`` (an unsigned integer of the format's width), as float64."""
    return float(to_float64(np.array([pattern], dtype=fmt.uint_dtype).view(fmt.np_dtype))[0])


def kind_of(value: float, fmt: Format) -> str:
    """'zero', 'subnormal', 'normal', 'inf' or 'nan' (``value``: a value of the format, as float64)."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf"
    if value == 0:
        return "zero"
    return "subnormal" if abs(value) < fmt.smallest_normal else "normal"


def ulp(value: float, fmt: Format) -> float | None:
    """The unit in the last place of ``value``'s binade (see the module docstring); None for inf and NaN."""
    if not math.isfinite(value):
        return None
    if abs(value) < fmt.smallest_normal:
        return fmt.smallest_subnormal
    exponent = math.frexp(abs(value))[1] - 1  # 2^exponent <= |value| < 2^(exponent + 1)
    return math.ldexp(1.0, exponent - fmt.mantissa_bits + 1)


def neighbours(value: float, fmt: Format) -> tuple[float | None, float | None]:
    """The values of the format just below and just above ``value`` (±inf past the largest finite value where
    the format has inf; None where there is nothing: past the largest value of float8_e4m3fn, beside NaN)."""
    if math.isnan(value):
        return None, None
    top = max_ordinal(fmt)
    beyond = math.inf if fmt.has_inf else None
    if math.isinf(value):
        return (fmt.max, None) if value > 0 else (None, -fmt.max)
    o = int(ordinal(as_dtype(value, fmt), fmt))
    if o - 1 < -top:
        below = None if beyond is None else -beyond
    else:
        below = float(to_float64(from_ordinal(o - 1, fmt)))
    above = beyond if o + 1 > top else float(to_float64(from_ordinal(o + 1, fmt)))
    return below, above


# --- overflow, underflow, correct rounding of an exact number ------------------------------------------------

def overflow_threshold(fmt: Format) -> Fraction:
    """max + ulp(max)/2: from here on (or, when max has an even last bit, only above it) a value overflows."""
    return Fraction(fmt.max) + Fraction(ulp(fmt.max, fmt)) / 2


def max_is_even(fmt: Format) -> bool:
    """Whether the largest value has an even last bit, so that a tie at max + ulp(max)/2 rounds down to it."""
    return bits_of(fmt.max, fmt).pattern % 2 == 0


def overflows(q: Fraction, fmt: Format) -> bool:
    """Whether the exact number ``q`` rounds past the largest finite value of ``fmt`` (to inf, or NaN)."""
    t = overflow_threshold(fmt)
    return abs(q) > t or (abs(q) == t and not max_is_even(fmt))


def underflow_threshold(fmt: Format) -> Fraction:
    """Half the smallest subnormal: at or below it a value rounds to zero (the tie goes to the even 0)."""
    return Fraction(fmt.smallest_subnormal) / 2


def overflow_value(fmt: Format, negative: bool = False) -> float:
    """What an overflowing value becomes in numpy/ml_dtypes: ±inf, or NaN in float8_e4m3fn (no inf)."""
    if not fmt.has_inf:
        return math.nan
    return -math.inf if negative else math.inf


def round_exact(q: Fraction, fmt: Format) -> float:
    """The exact number ``q`` rounded once into ``fmt`` (to nearest, ties to even; overflow as numpy/ml_dtypes
    overflow), as float64. The correct rounding of what was typed, not of its float64 approximation."""
    if overflows(q, fmt):
        return overflow_value(fmt, q < 0)
    guess = fmt.round(np.array(float(q)))  # float(q) is correctly rounded; the answer is it or a neighbour
    o = int(ordinal(guess, fmt)) if np.isfinite(to_float64(guess)) else (max_ordinal(fmt) if q > 0 else -max_ordinal(fmt))
    top = max_ordinal(fmt)
    best: tuple[Fraction, int, float] | None = None
    for cand in (o - 1, o, o + 1):
        if abs(cand) > top:
            continue
        v = float(to_float64(from_ordinal(cand, fmt)))
        key = (abs(Fraction(v) - q), bits_of(v, fmt).pattern % 2, v)
        if best is None or key[:2] < best[:2]:
            best = key
    return -0.0 if best[2] == 0 and q < 0 else best[2]


# --- the format's constants ----------------------------------------------------------------------------------

def exp_overflow_logit(fmt: Format) -> float:
    """The smallest x of ``fmt`` whose exp(x), correctly rounded, overflows: exp(x) >= max + ulp(max)/2."""
    import mpmath

    with mpmath.workprec(200):
        t = mpmath.log(mpmath.mpf(overflow_threshold(fmt).numerator) / overflow_threshold(fmt).denominator)
        return first_at_least(t, fmt)


def sigmoid_one_logit(fmt: Format, op_by_op: bool = False) -> float:
    """The smallest x of ``fmt`` from which sigmoid(x) rounds to exactly 1.

    Correctly rounded (``op_by_op=False``): sigmoid(x) >= 1 - 2^-(p+1), x >= ln(2^(p+1) - 1). Op by op,
    1/(1 + exp(-x)) with exp(-x) rounded to the format: x >= p·ln 2 - ln(1 + 2^-p) (module docstring).
    """
    import mpmath

    p = fmt.mantissa_bits
    with mpmath.workprec(200):
        if op_by_op:
            t = p * mpmath.log(2) - mpmath.log1p(mpmath.mpf(2) ** -p)
        else:
            t = mpmath.log(mpmath.mpf(2) ** (p + 1) - 1)
        return first_at_least(t, fmt)


@dataclass(frozen=True)
class Constants:
    """A format's constants, every value exact (float64), and where exp and sigmoid break in it."""

    dtype: str
    bits: int
    exponent_bits: int
    mantissa_bits: int  # stored: the precision p less the implicit bit
    bias: int
    has_inf: bool
    max: float
    smallest_normal: float
    smallest_subnormal: float
    eps: float
    overflow_threshold: float | None  # max + ulp(max)/2 (None in float64, where it is 2^1024 - 2^970: no float64)
    overflow_threshold_text: str  # the same as exact decimal digits (at most 20 significant)
    overflow_tie_to_max: bool  # whether the tie at the threshold rounds down to max
    exp_overflow: float  # first x with exp(x) overflowing (correctly rounded)
    sigmoid_one: float  # first x with sigmoid(x) = 1, correctly rounded (torch's fused 16- and 8-bit kernels)
    sigmoid_one_op_by_op: float  # the same for 1/(1 + exp(-x)), each step rounded (numpy op by op)

    def as_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)


def constants(fmt: Format) -> Constants:
    return Constants(
        fmt.name, fmt.bits, fmt.exponent_bits, fmt.mantissa_bits - 1, fmt.bias, fmt.has_inf, fmt.max,
        fmt.smallest_normal, fmt.smallest_subnormal, fmt.eps, _as_float(overflow_threshold(fmt)),
        _digits(overflow_threshold(fmt)), max_is_even(fmt),
        exp_overflow_logit(fmt), sigmoid_one_logit(fmt), sigmoid_one_logit(fmt, op_by_op=True))


def _as_float(q: Fraction) -> float | None:
    try:
        v = float(q)
    except OverflowError:
        return None
    return v if Fraction(v) == q else None


def _digits(q: Fraction, limit: int = 20) -> str:
    """An exact rational with a finite decimal expansion, as its digits (at most ``limit`` significant)."""
    from decimal import Context, Decimal

    d = Context(prec=limit).divide(Decimal(q.numerator), Decimal(q.denominator))
    text = format(d.normalize(), "f") if abs(d) < Decimal(10) ** 21 else format(d.normalize(), "e")
    return text.replace("E+", "e").replace("e+", "e")


# --- one typed number in one format --------------------------------------------------------------------------

@dataclass
class Stored:
    """What becomes of one typed number in one format."""

    dtype: str
    value: float  # as stored (float64, exact): what stabcli compare uses (the typed float64, rounded once)
    kind: str
    bits: Bits
    exponent: int | None  # the unbiased exponent of a finite non-zero value (subnormals: 1 - bias)
    significand: str | None  # the significand in binary, '1.1111111111' (normal) or '0.0000000001' (subnormal)
    below: float | None
    above: float | None
    ulp: float | None
    error: Fraction | None  # stored - typed, exactly (None where either is not finite)
    error_ulps: Fraction | None  # error / ulp(stored)
    tie: bool  # the typed number lay exactly halfway between two values of the format
    overflow: bool  # the typed number is finite but rounds past the largest value
    underflow: bool  # the typed number is not 0 but rounds to 0
    exact_rounding: float  # the typed number rounded once, exactly (differs from value only after double rounding)
    torch_value: float | None = None  # torch's cast, where it differs from ``value`` (filled in by the caller)
    torch_how: str = ""  # how torch got there


def describe(exact: Fraction | None, value64: float, fmt: Format) -> Stored:
    """``value64`` (the typed number parsed to float64) stored in ``fmt``; ``exact`` is the typed number itself
    (None for inf and NaN, whose float64 is exact)."""
    stored = float(to_float64(fmt.round(np.array(value64))))
    kind = kind_of(stored, fmt)
    bits = bits_of(stored, fmt)
    exponent = significand = None
    if kind in ("normal", "subnormal"):
        exponent = int(bits.exponent, 2) - fmt.bias if kind == "normal" else 1 - fmt.bias
        significand = ("1." if kind == "normal" else "0.") + bits.mantissa
    below, above = neighbours(stored, fmt)
    u = ulp(stored, fmt)
    q = exact if exact is not None else (Fraction(value64) if math.isfinite(value64) else None)
    error = error_ulps = None
    tie = overflow = underflow = False
    rounded_once = stored
    if q is not None and q != 0:  # a typed zero keeps its sign (-0 is -0), which a Fraction cannot carry
        rounded_once = round_exact(q, fmt)
    if q is not None:
        overflow = overflows(q, fmt)
        underflow = q != 0 and stored == 0
        if math.isfinite(stored):
            error = Fraction(stored) - q
            error_ulps = error / Fraction(u)
            lo, hi = _bracket(q, fmt)
            tie = lo is not None and hi is not None and Fraction(lo) + Fraction(hi) == 2 * q and lo != hi
            tie = tie or abs(q) == overflow_threshold(fmt)  # halfway from max to the next power of two
    return Stored(fmt.name, stored, kind, bits, exponent, significand, below, above, u, error, error_ulps, tie,
                  overflow, underflow, rounded_once)


def _bracket(q: Fraction, fmt: Format) -> tuple[float | None, float | None]:
    """The values of the format on either side of q (equal when q is one of them); None for a side that is not
    a finite value of the format (past the largest value, between max and the overflow threshold: inf, or nothing
    at all in float8_e4m3fn)."""
    v = round_exact(q, fmt)
    if not math.isfinite(v):
        return None, None
    if Fraction(v) == q:
        return v, v
    below, above = neighbours(v, fmt)
    below, above = (b if b is not None and math.isfinite(b) else None for b in (below, above))
    return (below, v) if Fraction(v) > q else (v, above)


def exact_input(text: str, value64: float) -> Fraction | None:
    """The exact number typed, or None for inf and NaN. A decimal is read exactly (0.1 is 1/10, not the float64
    near it); any other spelling the number parser accepts (a hex float, say) is exact in float64 already."""
    if not math.isfinite(value64):
        return None
    from decimal import Decimal, InvalidOperation

    try:  # through Decimal: Fraction(text) refuses more than 4300 digits (int's string limit) and then said 0
        q = Fraction(Decimal(text.strip()))
    except (ValueError, ZeroDivisionError, InvalidOperation):
        return Fraction(value64)
    return q


def exact_decimal(value: float, limit: int = 40) -> str:
    """The exact decimal expansion of a float64 (every binary fraction has one), or its first ``limit``
    significant digits followed by '…' when it is longer."""
    from decimal import Decimal

    if not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")  # as JSON spells them
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    d = Decimal(value)
    sign, digits, exp = d.as_tuple()
    if len(digits) > limit:
        shown = Decimal((sign, digits[:limit], exp + len(digits) - limit))
        return f"{shown:e}".replace("e+", "e").replace("E+", "e") + "…"
    text = format(d, "f")
    if abs(value) >= 1e21 or abs(value) < 1e-6:
        text = format(d, "e")
        mant, e = text.split("e")
        text = f"{mant}e{int(e)}"
    return text


__all__ = ["Bits", "Constants", "KINDS", "Stored", "as_dtype", "bits_of", "constants", "describe", "exact_decimal",
           "exact_input", "exp_overflow_logit", "from_bits", "kind_of", "max_is_even", "neighbours",
           "overflow_threshold", "overflow_value", "overflows", "round_exact", "sigmoid_one_logit", "ulp",
           "underflow_threshold"]


def torch_cast(value64: float, fmt: Format) -> float:
    """What torch makes of a float64 tensor holding ``value64`` cast to ``fmt`` (a real torch call): as ``fmt.round``
    except where torch differs, e.g. its float8_e4m3fn cast saturates to ±448 where ml_dtypes gives NaN."""
    import torch

    t = torch.tensor([value64], dtype=torch.float64).to(fmt.torch_dtype)
    return float(t.to(torch.float64)[0])
