"""What every view shares: numbers and statuses as table cells, strict JSON, CSV cells, breakdown logits."""

from __future__ import annotations

import json
import math

import numpy as np
from rich.text import Text

from stabcli.core.numbers import fmt_number

STATUS_STYLE = {"ok": "green", "inaccurate": "yellow", "clamped": "magenta", "inf": "bold red", "nan": "bold red",
                "refused": "bold"}


def short(v: float, digits: int = 6) -> str:
    """A number for a table cell: 'inf', 'NaN', or ``digits`` significant digits ('-' for no value)."""
    return "-" if v is None else fmt_number(v, digits)


def fit(v: float, digits: int = 7, width: int = 9) -> str:
    """``short(v, digits)``, with fewer digits if needed to stay within ``width`` characters (tables fit 80 columns)."""
    text = short(v, digits)
    while len(text) > width and digits > 2:
        digits -= 1
        text = short(v, digits)
    return text


def value_text(v: float, digits: int = 7, alarm: bool = True, width: int = 9) -> Text:
    """A number for a table cell, at most ``width`` characters; inf/NaN in bold red unless ``alarm`` is off (a
    reference). A list (a row of class values) is shown as [a, b, c], each at most 7 characters."""
    if isinstance(v, (list, tuple)):
        parts = [fit(x, 3, 7) for x in v]
        style = "bold red" if alarm and any(p in ("NaN", "inf", "-inf") for p in parts) else ""
        return Text("[" + ", ".join(parts) + "]", style=style)
    text = fit(v, digits, width)
    style = "bold red" if alarm and text in ("NaN", "inf", "-inf") else ""
    return Text(text, style=style)


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


def jsonable(value):
    """Replace non-finite floats by the strings 'inf', '-inf', 'nan', recursively (strict JSON)."""
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def dumps(document: dict) -> str:
    return json.dumps(jsonable(document), indent=2, allow_nan=False)


def csv_cell(v) -> str:
    """A CSV cell: true/false, 'inf'/'-inf'/'nan', a float's shortest round-trip text, and an empty cell for a
    missing value (JSON's null)."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):  # a vector (a softmax probability target): its entries joined by ';'
        return ";".join(csv_cell(float(e)) for e in v)
    if isinstance(v, float):
        return jsonable(v) if not math.isfinite(v) else repr(v)
    return str(v)


def logit_text(v, dtype: str | None = None) -> Text:
    """A breakdown logit: exact for 8- and 16-bit formats and float64; for float32 the shortest digits that
    identify the float32 value (16.635532 is 16.63553237915039 in float32). JSON and CSV carry every value in full.

    An 8- or 16-bit value whose exact decimal is long (a subnormal: float16's -5.960464477539063e-08) gets the
    digits that identify it in its format (-6e-08) instead: in a narrow column rich cut the exact text to
    "-5.960464477539063…", which reads as -5.96."""
    if v is None:
        return Text("-", style="dim")
    if dtype == "float32":
        return Text(str(np.float32(v)))
    text = repr(float(v)).removesuffix(".0") if abs(v) < 1e16 else f"{v:g}"
    if dtype is not None and dtype != "float64" and ("e" in text or len(text) > 16) and math.isfinite(v):
        from stabcli.core.formats import FORMATS

        if dtype in FORMATS:
            text = str(np.dtype(FORMATS[dtype].np_dtype).type(v))
    return Text(text)


def count_text(n: int, style: str) -> Text:
    return Text(str(n), style=style if n else "dim")
