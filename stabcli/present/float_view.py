"""`float` as rich tables (bits coloured in a terminal, plain in a pipe), strict JSON and CSV. Returns; never prints.

The sentences that say why a value was stored as it was live here (:func:`notes`); the numbers come from
``core/floats.py`` and ``commands/floats.py``.
"""

from __future__ import annotations

import csv
import io
import math
from fractions import Fraction

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from stabcli.core.floats import exact_decimal
from stabcli.core.formats import FORMATS
from stabcli.core.numbers import fmt_number
from stabcli.present.common import dumps

SIGN_STYLE, EXPONENT_STYLE, MANTISSA_STYLE = "bold magenta", "bold green", "bold cyan"


def num(v) -> str:
    """A value of a format, exactly (the shortest float64 text, which is exact for these)."""
    if v is None:
        return "none"
    return fmt_number(v, None)


def _num17(v) -> str:
    return "none" if v is None else fmt_number(v, 17)


def pow2(v: float) -> str:
    """'2^-24' when v is a power of two, else ''."""
    if v is None or not math.isfinite(v) or v <= 0:
        return ""
    m, e = math.frexp(v)
    return f"2^{e - 1}" if m == 0.5 else ""


def with_pow2(v: float) -> str:
    p = pow2(v)
    return f"{num(v)} = {p}" if p else num(v)


def small(q) -> str:
    """An error or a count of ulps (exact rationals): exactly when its decimal expansion is short (the typed
    number and the stored value are both finite decimals, so their difference usually is), else '≈' and 4 digits."""
    if q is None:
        return "none"
    q = Fraction(q)
    d = q.denominator
    n = (d & -d).bit_length() - 1  # the factors 2, at once: dividing one at a time is quadratic in the size of
    d >>= n  # d, which is 10^99999 for `stabcli float 1e-99999` (minutes)
    while d % 5 == 0 and n <= 40:  # the factors 5, only as far as the test below can use them
        d //= 5
        n += 1
    if d == 1 and n <= 40:  # a terminating decimal: at most n digits after the point
        from decimal import Decimal, localcontext

        with localcontext() as ctx:
            ctx.prec = 60
            text = format((Decimal(q.numerator) / Decimal(q.denominator)).normalize(), "f")
        digits = text.lstrip("-").replace(".", "").lstrip("0")
        if len(digits) <= 12:
            return fmt_number(float(text), None) if float(text) == q else text
    if float(q) == 0:  # below float64's range (an error in float64's subnormals): 4 digits from the rational
        from decimal import Context, Decimal

        d = Context(prec=4).divide(Decimal(q.numerator), Decimal(q.denominator))
        mant, exp = format(d, "e").split("e")
        return f"≈{mant.rstrip('0').rstrip('.')}e{int(exp)}"
    return "≈" + fmt_number(float(q), 4)


def hex_of(v: float, dtype: str) -> str:
    from stabcli.core.floats import bits_of

    return bits_of(v, FORMATS[dtype]).hex


def _printed(v: float, dtype: str) -> str:
    """How numpy prints the value in its own dtype (the shortest text that identifies it there)."""
    return fmt_number(v, dtype) if math.isfinite(v) else num(v)


# --- the sentences -------------------------------------------------------------------------------------------

def rounding_note(report, row) -> str:
    """How the typed number became the stored value: exact, rounded (by how much), a tie, overflow, underflow."""
    c = report.constants[row.dtype]
    fmt = FORMATS[row.dtype]
    # float64's shortest text of a value is what was typed (0.1): 17 digits show which neighbour it is
    show = _num17 if fmt.bits == 64 else num
    typed = report.text.strip()
    if report.exact is None:
        if math.isnan(report.value):
            return f"NaN is stored as a NaN pattern ({row.bits.hex})."
        if fmt.has_inf:
            return f"{typed} is stored as {show(row.value)}."
        return (f"{row.dtype} has no inf: {typed} becomes NaN (ml_dtypes, the OCP non-saturating rule; "
                f"{row.bits.hex} is its NaN).")
    negative = report.exact < 0
    if row.overflow:
        return _overflow_note(typed, row, c, show, negative)
    if row.underflow:
        return (f"{typed} underflows {row.dtype}: at or below half the smallest subnormal, "
                f"{show(c.smallest_subnormal / 2)}, a number rounds to 0.")
    if row.error == 0:
        return f"{typed} is stored exactly."
    direction = "down" if row.error < 0 else "up"
    if abs(row.value) == c.max and abs(report.exact) > Fraction(c.max):  # beyond max, not yet past max + ulp/2
        m, u, t = show(c.max), show(_ulp_max(c)), c.overflow_threshold_text
        if negative:
            where = f"below the most negative {row.dtype}, -{m},"
            half, beyond, to = f"-{t} = -({m} + {u}/2)", f"below -{t}", f"-{m} ({hex_of(-c.max, row.dtype)})"
        else:
            where = f"above the largest {row.dtype}, {m},"
            half, beyond, to = f"{t} = {m} + {u}/2", f"above {t}", f"{m} ({hex_of(c.max, row.dtype)})"
        if row.tie:
            return (f"{typed} is {where} by exactly half an ulp ({half}): a tie, which goes to the even {to}; "
                    f"only numbers {beyond} overflow.")
        bound = f"-{t} = -({m} + ulp/2)" if negative else f"{t} = {m} + ulp/2"
        return (f"{typed} is {where} but {'above' if negative else 'below'} {bound}: it rounds {direction} to "
                f"{show(row.value)} (by {small(abs(row.error))} = {small(abs(row.error_ulps))} ulp).")
    lo, hi = (row.below, row.value) if row.error > 0 else (row.value, row.above)
    text = f"{typed} is not a {row.dtype} number: it lies between {show(lo)} and {show(hi)}"
    if row.tie:
        text += (f", exactly halfway; a tie goes to the neighbour whose last mantissa bit is 0, here "
                 f"{show(row.value)} (rounded {direction} by {small(abs(row.error))}).")
    else:
        text += (f", and rounds to the nearer, {show(row.value)}: {direction} by {small(abs(row.error))} = "
                 f"{small(abs(row.error_ulps))} ulp.")
    if row.kind == "subnormal":
        text += (f" A subnormal: below the smallest normal number, {show(c.smallest_normal)}, the spacing stays "
                 f"{with_pow2(c.smallest_subnormal)}, so fewer significant bits are left.")
    return text


def _overflow_note(typed: str, row, c, show, negative: bool) -> str:
    """Why a finite typed number overflows: past max + ulp(max)/2 (halfway from max to the next step up), and what
    it becomes. The next step is a power of two in every format with inf; float8_e4m3fn's next pattern, 0x7F, is
    its NaN, so halfway there is 448 + 32/2 = 464, halfway to 480, short of the next power of two (512)."""
    fmt = FORMATS[row.dtype]
    m, u = show(c.max), _ulp_max(c)
    step = c.max + u  # the value one ulp above max: 2^(emax + 1) where that is the next power of two
    if pow2(step):
        halfway = f"halfway from the largest value, {m} = {hex_of(c.max, row.dtype)}, to the next power of two, " \
                  f"{with_pow2(step)}"
    else:
        nan_pattern = f"0x{int(hex_of(c.max, row.dtype), 16) + 1:0{fmt.bits // 4}X}"
        halfway = (f"halfway from the largest value, {m} = {hex_of(c.max, row.dtype)}, to {show(step)}, a value "
                   f"{row.dtype} cannot hold: its next pattern, {nan_pattern}, is NaN")
    at = "above" if c.overflow_tie_to_max else "at or above"
    if fmt.has_inf:
        then = "-inf" if negative else "inf"
    else:
        then = f"NaN: {row.dtype} has no inf (ml_dtypes, the OCP non-saturating rule)"
    whose = "every number whose magnitude is" if negative else "every number"
    past = f"past ±{m}, here to" if negative else "past it, to"
    return (f"{typed} overflows {row.dtype}: {whose} {at} {c.overflow_threshold_text} = {m} + ulp/2 = {m} + "
            f"{show(u)}/2 ({halfway}) rounds {past} {then}.")


def _ulp_max(c) -> float:
    from stabcli.core.floats import ulp

    return ulp(c.max, FORMATS[c.dtype])


def extra_notes(report, row) -> list[str]:
    """Double rounding through float64, and torch's cast where it differs."""
    out = []
    if report.exact is not None and math.isfinite(row.exact_rounding) and row.exact_rounding != row.value:
        out.append(f"Read as the float64 {num(report.value)} first (as Python, numpy and every stabcli command "
                   f"read a number) and then rounded again, it becomes {num(row.value)}; the typed decimal "
                   f"rounded once would be {num(row.exact_rounding)} (double rounding).")
    if row.torch_value is not None:
        if row.torch_how == "saturates":
            out.append(f"torch's cast saturates instead: torch.tensor({report.text.strip()}).to(torch."
                       f"{row.dtype}) is {num(row.torch_value)} (torch 2.13; NaN stays NaN).")
        else:
            out.append(f"torch casts a float64 tensor to {row.dtype} through float32, rounding twice: it gives "
                       f"{num(row.torch_value)} here.")
    return out


def notes(report, row) -> list[str]:
    return [rounding_note(report, row)] + extra_notes(report, row)


def decoded(row) -> str:
    """The value read off its fields: ±1.m₂ × 2^e, ±0.m₂ × 2^(1-bias), or what the special pattern means."""
    sign = "-" if row.bits.sign == "1" else "+"
    fmt = FORMATS[row.dtype]
    if row.kind in ("normal", "subnormal"):
        field = int(row.bits.exponent, 2)
        how = (f"exponent field {field} - bias {fmt.bias}" if row.kind == "normal"
               else f"exponent field 0: subnormal, 2^(1 - bias {fmt.bias})")
        return f"{sign}{row.significand}₂ × 2^{row.exponent} = {num(row.value)}  ({how})"
    if row.kind == "zero":
        return f"{sign}0 (every bit but the sign is 0)"
    if row.kind == "inf":
        return f"{sign}inf (exponent all ones, mantissa 0)"
    if fmt.has_inf:
        return "NaN (exponent all ones, mantissa not 0)"
    return "NaN (exponent and mantissa all ones: e4m3fn's only NaN pattern; there is no inf)"


def kind_text(row) -> str:
    return {"normal": "normal", "subnormal": "subnormal (no implicit leading 1)", "zero": "zero", "inf": "inf",
            "nan": "NaN"}[row.kind]


def constants_lines(c) -> list[str]:
    fmt = FORMATS[c.dtype]
    exp_to = "inf" if c.has_inf else "NaN in ml_dtypes (no inf; torch saturates to 448)"
    return [
        f"largest {num(c.max)} ({hex_of(c.max, c.dtype)}), smallest normal {with_pow2(c.smallest_normal)}, "
        f"smallest subnormal {with_pow2(c.smallest_subnormal)}, eps {with_pow2(c.eps)}",
        (f"overflow above {c.overflow_threshold_text} = max + ulp(max)/2 (that tie itself rounds down, to the even "
         "max)" if c.overflow_tie_to_max else
         f"overflow from {c.overflow_threshold_text} = max + ulp(max)/2 on (that tie itself rounds up: max is odd)"),
        f"exp(x) overflows to {exp_to} from x = {num(c.exp_overflow)}",
        f"sigmoid(x) rounds to 1 from x = {num(c.sigmoid_one)} correctly rounded"
        + (" (torch's kernel)" if fmt.bits <= 16 else "")
        + f", from x = {num(c.sigmoid_one_op_by_op)} as 1/(1+exp(-x)) op by op"
        + (" (numpy, and torch in this dtype)" if fmt.bits > 16 else " (numpy)"),
    ]


# --- JSON and CSV --------------------------------------------------------------------------------------------

def _f(q):
    return None if q is None else float(q)


def row_dict(report, row) -> dict:
    return {
        "dtype": row.dtype, "stored": row.value, "kind": row.kind, "bits": row.bits.sign + row.bits.exponent
        + row.bits.mantissa, "hex": row.bits.hex, "sign": row.bits.sign, "exponent_field": row.bits.exponent,
        "mantissa_field": row.bits.mantissa, "exponent": row.exponent, "significand": row.significand,
        "exact_decimal": exact_decimal(row.value), "below": row.below, "above": row.above, "ulp": row.ulp,
        "error": _f(row.error), "error_ulps": _f(row.error_ulps), "tie": row.tie, "overflow": row.overflow,
        "underflow": row.underflow, "rounded_once": row.exact_rounding, "torch": row.torch_value,
        "notes": notes(report, row), "constants": report.constants[row.dtype].as_dict(),
    }


def float_json(report) -> str:
    return dumps({"command": "float", "input": report.text.strip(), "value": report.value,
                  "results": [row_dict(report, r) for r in report.rows]})


CSV_COLUMNS = ("dtype", "stored", "kind", "bits", "hex", "exponent", "significand", "below", "above", "ulp", "error",
               "error_ulps", "tie", "overflow", "underflow", "rounded_once", "torch", "max", "smallest_normal",
               "smallest_subnormal", "eps", "exp_overflow", "sigmoid_one", "sigmoid_one_op_by_op")


def float_csv(report) -> str:
    from stabcli.present.common import csv_cell

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in report.rows:
        d = row_dict(report, r)
        d.update({k: v for k, v in d["constants"].items() if k in CSV_COLUMNS and k not in d})
        writer.writerow(["" if d[k] is None else csv_cell(d[k]) for k in CSV_COLUMNS])
    return out.getvalue()


# --- tables --------------------------------------------------------------------------------------------------

def bits_text(row) -> Text:
    text = Text()
    text.append(row.bits.sign, style=SIGN_STYLE)
    text.append(" ")
    text.append(row.bits.exponent, style=EXPONENT_STYLE)
    text.append(" ")
    text.append(row.bits.mantissa, style=MANTISSA_STYLE)
    text.append(f"  {row.bits.hex}")
    return text


def legend(dtype: str) -> Text:
    fmt = FORMATS[dtype]
    text = Text("sign", style=SIGN_STYLE)
    text.append(", ")
    text.append(f"exponent ({fmt.exponent_bits} bits, bias {fmt.bias})", style=EXPONENT_STYLE)
    text.append(", ")
    text.append(f"mantissa ({fmt.mantissa_bits - 1} bits)", style=MANTISSA_STYLE)
    return text


def _neighbour(v, dtype: str, side: str) -> str:
    if v is None:
        fmt = FORMATS[dtype]
        return "none (NaN)" if not fmt.has_inf else "none"
    return f"{num(v)} ({hex_of(v, dtype)})" if math.isfinite(v) else num(v)


def dtype_table(report, row) -> Table:
    title = f"[bold]{row.dtype}[/]  {report.text.strip()} → {num(row.value)}"
    if row.overflow:
        title += "  [bold red](overflow)[/]"
    elif row.underflow:
        title += "  [bold yellow](underflow)[/]"
    table = Table(title=title, title_justify="left", show_header=False, box=box.SIMPLE, pad_edge=False)
    table.add_column("what", style="dim", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_row("bits", bits_text(row))
    table.add_row("", legend(row.dtype))
    table.add_row("decoded", decoded(row))
    table.add_row("kind", kind_text(row))
    if math.isfinite(row.value) and row.value != 0:
        exact = exact_decimal(row.value)
        shown = exact
        if _printed(row.value, row.dtype) != exact:
            shown += f"  (numpy prints {_printed(row.value, row.dtype)})"
        table.add_row("exactly", shown)
    table.add_row("below", _neighbour(row.below, row.dtype, "below"))
    table.add_row("above", _neighbour(row.above, row.dtype, "above"))
    if row.ulp is not None:
        table.add_row("ulp", with_pow2(row.ulp))
    if row.error is not None:
        table.add_row("error", f"{small(row.error)} (stored - typed) = {small(row.error_ulps)} ulp")
    for i, line in enumerate(notes(report, row)):
        table.add_row("why" if i == 0 else "", line)
    c = report.constants[row.dtype]
    for i, line in enumerate(constants_lines(c)):
        table.add_row("format" if i == 0 else "", line)
    return table


def float_renderable(report):
    parts = []
    for row in report.rows:
        parts.append(dtype_table(report, row))
    return Group(*parts)
