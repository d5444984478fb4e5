"""How stabcli writes a number, in sentences, table cells and figure labels: one formatter for all of them."""

from __future__ import annotations

import math

from stabcli.core.formats import FORMATS


def fmt_number(v, digits: int | str | None = 7) -> str:
    """A number for a sentence or a cell: 'NaN', 'inf', '-0', 1e10 rather than 1e+10; strings pass through.

    ``digits``: significant digits; None for the exact float64 value; a dtype name for the shortest text that
    identifies the value among that dtype's numbers (0.99999994 is the float32 below 1).
    """
    if isinstance(v, str):
        return v
    v = float(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v == 0:
        return "-0" if math.copysign(1, v) < 0 else "0"
    if isinstance(digits, str):
        text = str(FORMATS[digits].np_dtype.type(v))
    else:
        text = repr(v) if digits is None else f"{v:.{digits}g}"
    if text.endswith(".0"):
        text = text[:-2]
    if "e" in text:  # 1e+10 -> 1e10, 2.5e-05 -> 2.5e-5
        mant, exp = text.split("e")
        text = f"{mant}e{int(exp)}"
    return text


def shortest(v: float) -> str:
    """The shortest text that reads back as the float64 ``v`` (1e10, 0.1, -100, 9999220736), for a command line."""
    v = float(v)
    if not math.isfinite(v):
        return fmt_number(v)
    for digits in range(1, 18):
        text = f"{v:.{digits}g}"
        if float(text) == v:
            break
    if "e" in text:
        mant, exp = text.split("e")
        text = f"{mant}e{int(exp)}"
    plain = repr(v).removesuffix(".0")  # Python's shortest round trip, written out: -100 rather than -1e2
    return plain if len(plain) <= len(text) and "e" not in plain else text


def float_command(v: float, dtype: str) -> str:
    """The ``stabcli float`` command that shows how ``dtype`` stores the float64 ``v``."""
    return f"stabcli float {shortest(v)} --dtype {dtype}"
