"""The one place that knows float16, bfloat16, float32 and float64, and the two float8 formats.

For each format: its numpy dtype (bfloat16 and float8 through ``ml_dtypes``), its torch dtype, its constants, and
correct rounding of float64 values into it. torch and ml_dtypes are imported only when a format needs them:
importing ml_dtypes registers its ufunc loops with numpy (0.01 s for ml_dtypes 0.6, 0.5-0.9 s for 0.7.0, which
pyproject.toml keeps out), so only a bfloat16 or float8 value pays for it, and a float16/float32/float64 run
never does.

float8 (``float8_e4m3fn``, ``float8_e5m2``, the OCP 8-bit formats) are opt-in: ``--dtype all`` means the four
formats above, so that every existing output stays as it was; name a float8 format to get it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from stabcli.core.errors import InputError
from stabcli.names import ALL_NAMES, DTYPE_NAMES, FLOAT8_NAMES  # noqa: F401  (the lists of names live there)


@dataclass(frozen=True)
class Format:
    """A floating-point format stabcli evaluates in."""

    name: str
    bits: int  # total width: an inf or NaN against a finite reference counts as this many error bits
    mantissa_bits: int  # significand precision p, the implicit bit included

    @cached_property
    def np_dtype(self) -> np.dtype:
        if self.name == "bfloat16":
            import ml_dtypes  # only a bfloat16 value needs it (its import registers numpy ufunc loops)

            return np.dtype(ml_dtypes.bfloat16)
        return np.dtype(self.name)

    @property
    def torch_dtype(self):
        import torch  # heavy: only the torch backend needs it

        return getattr(torch, self.name)

    @property
    def has_inf(self) -> bool:
        """Whether the format has infinities (float8_e4m3fn has none: an overflow is NaN, or saturates)."""
        return True

    @property
    def exponent_bits(self) -> int:
        """The width of the exponent field: every bit that is neither the sign nor a stored mantissa bit."""
        return self.bits - self.mantissa_bits

    @property
    def bias(self) -> int:
        """The exponent bias: a normal value is 1.m·2^(e - bias) for the stored exponent field e."""
        return 1 - int(self.finfo.minexp)

    @cached_property
    def uint_dtype(self) -> np.dtype:
        return np.dtype(f"uint{self.bits}")

    @cached_property
    def finfo(self):
        if self.name in ("float16", "float32", "float64"):
            return np.finfo(self.np_dtype)
        import ml_dtypes  # bfloat16 and the float8 formats

        return ml_dtypes.finfo(self.np_dtype)

    @property
    def eps(self) -> float:
        """Machine epsilon: the gap between 1 and the next larger value, 2**(1 - p)."""
        return float(self.finfo.eps)

    @property
    def max(self) -> float:
        return float(self.finfo.max)

    @property
    def smallest_normal(self) -> float:
        return float(self.finfo.smallest_normal)

    @property
    def smallest_subnormal(self) -> float:
        return float(self.finfo.smallest_subnormal)

    @property
    def default_rtol(self) -> float:
        """4·eps: a result may be a couple of ulps off, as each rounding in a short formula adds half an ulp."""
        return 4 * self.eps

    @property
    def default_atol(self) -> float:
        """The smallest subnormal: the resolution of the format at 0, below which no result can be closer."""
        return self.smallest_subnormal

    def round(self, values) -> np.ndarray:
        """Round float64 values to this format, correctly (to nearest, ties to even)."""
        return round_float64(np.asarray(values, dtype=np.float64), self)

    def all_finite(self) -> np.ndarray:
        """Every finite value of the format (both zeros included) in increasing order; 8- and 16-bit formats only."""
        if self.bits > 16:
            raise InputError(f"every finite {self.name} value is too many to list; only 8- and 16-bit formats allow it")
        raw = np.arange(2**self.bits, dtype=self.uint_dtype).view(self.np_dtype)
        wide = raw.astype(np.float32)
        keep = np.isfinite(wide)
        order = np.argsort(wide[keep], kind="stable")
        return raw[keep][order]


class Float8Format(Format):
    """An OCP 8-bit format, through ``ml_dtypes`` in numpy (imported only when a float8 dtype is asked for).

    torch stores these dtypes but computes almost nothing in them on the CPU ("add_stub" not implemented for
    'Float8_e4m3fn', torch 2.13): the torch backend computes in float32 and rounds to the format after every
    operation (``backends.TorchFloat8Ops``), as torch's own float16 kernels compute in float32 and round once.
    """

    @cached_property
    def np_dtype(self) -> np.dtype:
        import ml_dtypes as _ml_dtypes

        return np.dtype(getattr(_ml_dtypes, self.name))

    @property
    def has_inf(self) -> bool:
        return self.name != "float8_e4m3fn"  # e4m3fn: no inf, S.1111.111 is NaN, 448 = 0x7E the largest

    @property
    def default_rtol(self) -> float:
        """2·eps (0.25 in float8_e4m3fn, 0.5 in float8_e5m2): 4·eps would be 50% and 100%, and a tolerance of 100%
        takes 0 for any loss. 2·eps still holds the 2 ulps the softplus form is off by at most (exhaustive sweep)."""
        return 2 * self.eps


FORMATS: dict[str, Format] = {
    "float16": Format("float16", 16, 11),
    "bfloat16": Format("bfloat16", 16, 8),
    "float32": Format("float32", 32, 24),
    "float64": Format("float64", 64, 53),
}
FORMATS["float8_e4m3fn"] = Float8Format("float8_e4m3fn", 8, 4)  # 1 sign, 4 exponent, 3 mantissa bits, bias 7
FORMATS["float8_e5m2"] = Float8Format("float8_e5m2", 8, 3)  # 1 sign, 5 exponent, 2 mantissa bits, bias 15


def get_format(name: str) -> Format:
    """The format called ``name``; raises InputError naming the allowed names."""
    try:
        return FORMATS[name]
    except KeyError:
        raise InputError(f"unknown dtype {name!r}; allowed: {', '.join(DTYPE_NAMES)}, all") from None


def parse_dtypes(names) -> list[Format]:
    """Formats for a list of names, where ``all`` means float16, bfloat16, float32 and float64 (float8 formats are
    named one by one, so that ``all`` keeps every output as it was); duplicates dropped, in DTYPE_NAMES order."""
    chosen: list[str] = []
    for name in names or ("all",):
        for part in str(name).split(","):
            part = part.strip().lower()
            for one in ALL_NAMES if part == "all" else (part,):
                get_format(one)
                if one not in chosen:
                    chosen.append(one)
    return [FORMATS[n] for n in DTYPE_NAMES if n in chosen]


def _round_to_odd_float32(values: np.ndarray) -> np.ndarray:
    """float64 -> float32 rounded to odd: truncate, then set the last bit if anything was lost.

    Rounding to odd with two spare bits and then to nearest equals rounding to nearest once, so this avoids the
    double rounding that a plain float64 -> float32 -> bfloat16 cast suffers (ml_dtypes casts float64 that way).
    """
    with np.errstate(all="ignore"):
        f = values.astype(np.float32)
        back = f.astype(np.float64)
        inexact = (back != values) & np.isfinite(values)
        too_big = inexact & (np.abs(back) > np.abs(values))
        f = np.where(too_big, np.nextafter(f, np.float32(0)), f)
    bits = f.view(np.uint32) | inexact.astype(np.uint32)
    return bits.view(np.float32)


def round_float64(values: np.ndarray, fmt: Format) -> np.ndarray:
    """Correctly round float64 values into ``fmt`` (numpy's float16 and float32 casts already are).

    bfloat16 and float8 go through a float32 rounded to odd (24 bits, at least 2 more than either has), so the
    result is correct whatever path ml_dtypes' own float64 cast takes; float32 -> float8 in ml_dtypes rounds to
    nearest, ties to even, and overflows as the OCP non-saturating mode says: inf in float8_e5m2, NaN in
    float8_e4m3fn (above 448 + 32/2 = 464; 464 itself is a tie and goes to the even 448). tests/test_floats.py
    checks every tie of both float8 formats and of bfloat16, and values a hair either side of each.
    """
    with np.errstate(all="ignore"):
        if fmt.name == "bfloat16" or fmt.bits == 8:
            return _round_to_odd_float32(values).astype(fmt.np_dtype)
        return values.astype(fmt.np_dtype)


def to_float64(values) -> np.ndarray:
    """Widen any format's values to float64 (exact)."""
    arr = np.asarray(values)
    if arr.dtype.name == "bfloat16":  # by name: comparing with ml_dtypes' dtype would import it
        arr = arr.astype(np.float32)
    return arr.astype(np.float64)


def ordinal(values, fmt: Format) -> np.ndarray:
    """Map values to integers so that neighbouring floats differ by 1 (-0 and +0 both map to 0)."""
    arr = np.asarray(values, dtype=fmt.np_dtype)
    if fmt.bits < 64:
        # The bits as a signed integer i of the same width: a negative value has the sign bit set, so i < 0 and
        # its magnitude is i - lowest; -magnitude = lowest - i fits the width (lowest - i wraps only where i >= 0,
        # which np.where discards). Four passes, two of them at the narrow width: sweeps count ulps per chunk.
        i = arr.view(f"int{fmt.bits}")
        lowest = np.iinfo(i.dtype).min
        return np.where(i < 0, lowest - i, i).astype(np.int64)
    bits = arr.view(np.int64)
    magnitude = bits & np.int64(2**63 - 1)
    return np.where(bits < 0, -magnitude, magnitude)


def ulps_between(a, b, fmt: Format) -> np.ndarray:
    """How many representable values of ``fmt`` lie between a and b (as float64, exact below 2**53)."""
    oa, ob = ordinal(a, fmt), ordinal(b, fmt)
    same_side = (oa >= 0) == (ob >= 0)
    with np.errstate(over="ignore"):
        near = np.abs(oa - ob).astype(np.float64)
    far = np.abs(oa).astype(np.float64) + np.abs(ob).astype(np.float64)
    return np.where(same_side, near, far)


def from_ordinal(o, fmt: Format) -> np.ndarray:
    """The values of ``fmt`` whose :func:`ordinal` is ``o`` (0 gives +0)."""
    o = np.asarray(o, dtype=np.int64)
    mag = np.abs(o)
    if fmt.bits < 64:
        bits = np.where(o < 0, mag | (1 << (fmt.bits - 1)), mag).astype(fmt.uint_dtype)
    else:
        bits = np.where(o < 0, mag | np.int64(-(2**63)), mag).astype(np.int64)
    return bits.view(fmt.np_dtype)


def max_ordinal(fmt: Format) -> int:
    """The ordinal of the format's largest finite value."""
    return int(ordinal(np.array(fmt.max), fmt))


def next_up(r, fmt: Format) -> np.ndarray:
    """The next value of ``fmt`` above each of ``r`` (values of the format)."""
    return from_ordinal(ordinal(r, fmt) + 1, fmt)


def first_at_least(t, fmt: Format) -> float:
    """The smallest value of ``fmt`` that is >= t (t an mpmath number, so float64 thresholds are exact too)."""
    import mpmath

    r = fmt.round(np.array(float(t)))
    if mpmath.mpf(float(to_float64(r))) < t:
        r = np.nextafter(r.astype(np.float64), np.inf) if fmt.bits == 64 else next_up(r, fmt)
    return float(to_float64(r))
