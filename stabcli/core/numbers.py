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
