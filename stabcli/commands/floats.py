"""`float`: one typed number in each format, up close (``core/floats.py``), and where torch's cast differs.

The numeric core behind ``stabcli float``; it never prints. torch is imported only where its cast can differ from
the correct rounding stabcli (and numpy, ml_dtypes) use, so that the common case starts fast:

* float8_e4m3fn out of range (or inf): torch's cast saturates to ±448 (torch 2.13's
  ``torch/headeronly/util/Float8_e4m3fn.h``: "Finite overflow or inf → saturate to max finite value"), where
  ml_dtypes gives NaN;
* a float64 tensor cast to a narrower dtype goes through float32 in torch, so it is rounded twice; that differs
  from rounding once exactly where the float32 in between is a tie of the narrower format
  (``tests/test_floats.py`` checks this model against torch on values beside every tie).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from stabcli.core import floats
from stabcli.core.formats import Format, to_float64


@dataclass
class FloatReport:
    text: str  # what was typed
    value: float  # it, parsed to float64 (as every command parses numbers)
    exact: object  # fractions.Fraction, or None for inf and NaN
    rows: list[floats.Stored] = field(default_factory=list)
    constants: dict[str, floats.Constants] = field(default_factory=dict)


def torch_differs(value64: float, stored: float, fmt: Format) -> bool:
    """Whether torch's cast of the float64 ``value64`` to ``fmt`` can differ from ``stored`` (see the module)."""
    if fmt.bits == 64 or math.isnan(value64):
        return False
    if not fmt.has_inf and (math.isinf(value64) or math.isnan(stored)):
        return True
    with np.errstate(all="ignore"):
        twice = float(to_float64(fmt.round(np.array(np.float32(value64), dtype=np.float64))))
    return twice != stored and not (math.isnan(twice) and math.isnan(stored))


def run_float(text: str, value: float, formats: list[Format]) -> FloatReport:
    """``text`` (already parsed to ``value`` by the number parser every command uses) in every format."""
    report = FloatReport(text, value, floats.exact_input(text, value))
    for fmt in formats:
        row = floats.describe(report.exact, value, fmt)
        if torch_differs(value, row.value, fmt):
            got = floats.torch_cast(value, fmt)
            if not (got == row.value or (math.isnan(got) and math.isnan(row.value))):
                row.torch_value = got
                row.torch_how = "saturates" if not fmt.has_inf and abs(got) == fmt.max else "through float32"
        report.rows.append(row)
        report.constants[fmt.name] = floats.constants(fmt)
    return report
