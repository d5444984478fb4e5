"""Parsing and checking what a user typed: numbers, comma-separated lists and nested [[...], [...]] lists.

Every check raises :class:`InputError` with a one-line message that names the value and says what is allowed.
"""

from __future__ import annotations

import math
import re

import numpy as np

from stabcli.core.errors import InputError

_SPECIAL = {"inf": math.inf, "+inf": math.inf, "-inf": -math.inf, "infinity": math.inf, "+infinity": math.inf,
            "-infinity": -math.inf, "nan": math.nan, "+nan": math.nan, "-nan": math.nan}
# The one rule for every number stabcli reads (arguments, list items and options alike): plain ASCII, no
# underscores, no other scripts' digits (Python's float() would take '1_000', '١٢' and full-width '１'):
_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", re.ASCII)
# C99 / float.hex() hexadecimal floats, which name a binary value exactly: 0x1.e8p+2 is 7.625.
_HEX = re.compile(r"[+-]?0[xX]([0-9a-fA-F]+(\.[0-9a-fA-F]*)?|\.[0-9a-fA-F]+)([pP][+-]?\d+)?", re.ASCII)
_BLANK = " \t"
# An exponent of at most 4 digits: 1e-400 still shows underflow, but 1e-99999 would make an exact reading of the
# typed decimal (stabcli float) build 10^99999, and 0e999999999 hang: every format rounds such numbers to 0 or inf.
MAX_EXPONENT_DIGITS = 4
MAX_DEPTH = 32  # nesting of [[...]] lists (torch tensors have at most 64 dimensions; 32 is plenty)
NUMBER_HINT = "a decimal number such as 1e10 or -100, a hex float such as 0x1.8p3, or inf, -inf, nan"


def shown(text: str, limit: int = 80) -> str:
    """``text`` quoted for an error line: repr (so a newline cannot break the line) and, beyond ``limit``
    characters, its two ends and its length, so that 5000 typed digits do not come back as 5000 digits while a
    long path keeps the part that names the file."""
    text = str(text)
    if len(text) <= limit:
        return repr(text)
    half = (limit - 20) // 2
    return f"{text[:half]!r}...{text[-half:]!r} ({len(text):,} characters)"


def parse_number(text: str, what: str, hint: str = NUMBER_HINT, finite: bool = False,
                 within: str | None = None) -> float:
    """One float from text: a plain ASCII decimal or hex float, or inf, -inf, nan (not with ``finite``).

    The rule every number stabcli reads follows. A value beyond float64 is refused, not taken as inf, and every
    message names the value as it was typed (``shown``; ``within``: the list it is an item of) and says what is
    allowed (``hint``).
    """
    token = str(text).strip(_BLANK)
    low = token.lower()
    label = f"{what} {shown(text)}" + (f" (in {shown(within)})" if within is not None else "")
    if low in _SPECIAL:
        if finite:
            raise InputError(f"{label} is not allowed; give {hint}")
        return _SPECIAL[low]
    decimal = _DECIMAL.fullmatch(token)
    if decimal:
        exponent = decimal.group(3)
        if exponent is not None and len(exponent.lstrip("eE+-").lstrip("0")) > MAX_EXPONENT_DIGITS:
            raise InputError(f"{label} has an exponent beyond ±{10 ** MAX_EXPONENT_DIGITS - 1} (every format "
                             f"rounds it to 0 or inf); write 0, inf or a number with a shorter exponent")
        value = float(token)
    elif _HEX.fullmatch(token):
        try:
            value = float.fromhex(token)
        except OverflowError:
            value = math.inf
    else:
        raise InputError(f"{label} is not a number; give {hint}")
    if math.isinf(value):
        fix = f"give {hint}" if finite else "write inf for infinity"
        raise InputError(f"{label} is beyond float64 (largest 1.8e308); {fix}")
    return value


def _nested(text: str, what: str) -> list:
    """A nested list '[[1, 2], [3, inf]]' into Python lists of floats; every item by :func:`parse_number`.

    Written out rather than handed to json, so that items follow the same rule as everywhere else (JSON would
    take 1E5 but not inf or a hex float, and turn 5000 digits into an int), and so that a message can say which
    bracket is wrong. Items may also be the strings "inf", "-inf", "nan" that stabcli's JSON writes.
    """
    def item(token: str) -> float:
        if len(token) >= 2 and token[0] == token[-1] == '"' and token[1:-1].lower() in _SPECIAL:
            token = token[1:-1]
        return parse_number(token, what, within=text)

    _check_brackets(text, what)
    stack: list[list] = []
    root: list | None = None
    pos, n = 0, len(text)
    expect_item = True  # after '[' or ',': an item or (after '[') ']'
    while pos < n:
        ch = text[pos]
        if ch in _BLANK:
            pos += 1
        elif ch == "[":
            if root is not None and not stack:
                raise InputError(f"{what} {shown(text)} has something after its closing ']'; give one list")
            if not expect_item:
                raise InputError(f"{what} {shown(text)} needs a comma before its '[' at position {pos + 1}")
            if len(stack) >= MAX_DEPTH:
                raise InputError(f"{what} {shown(text)} is nested deeper than {MAX_DEPTH} levels")
            new: list = []
            if stack:
                stack[-1].append(new)
            else:
                root = new
            stack.append(new)
            pos += 1
        elif ch == "]":
            if not stack:
                raise InputError(f"{what} {shown(text)} has a ']' at position {pos + 1} without a matching '['")
            if expect_item and stack[-1]:
                raise InputError(f"{what} {shown(text)} has an empty item before its ']' at position {pos + 1}")
            stack.pop()
            expect_item = False
            pos += 1
        elif ch == ",":
            if expect_item or not stack:
                raise InputError(f"{what} {shown(text)} has an empty item; write numbers separated by commas, "
                                 "such as [[1,2],[3,4]]")
            expect_item = True
            pos += 1
        else:
            end = pos
            while end < n and text[end] not in "[],":
                end += 1
            if root is None:
                raise InputError(f"{what} {shown(text)} has {shown(text[pos:end].strip())} before its first '['")
            if not stack:
                raise InputError(f"{what} {shown(text)} has something after its closing ']'; give one list")
            if not expect_item:
                raise InputError(f"{what} {shown(text)} needs a comma before {shown(text[pos:end].strip())}")
            stack[-1].append(item(text[pos:end].strip(_BLANK)))
            expect_item = False
            pos = end
    if stack:
        raise InputError(f"{what} {shown(text)} has {len(stack)} '[' never closed; close each with ']'")
    return root if root is not None else []


def _check_brackets(text: str, what: str) -> None:
    """Unbalanced brackets, said as such before anything else ('1,2]', '[[1,2]')."""
    depth = 0
    for pos, ch in enumerate(text):
        depth += (ch == "[") - (ch == "]")
        if depth < 0:
            raise InputError(f"{what} {shown(text)} has a ']' at position {pos + 1} without a matching '['; write "
                             "lists as 1,2 or [1,2] or [[1,2],[3,4]]")
    if depth:
        raise InputError(f"{what} {shown(text)} has {depth} '[' never closed; close each with ']'")


def parse_array(text: str, what: str) -> np.ndarray:
    """A float64 array from '1e10', '1,-2,inf' or '[[0.1, 0.2], [0.3, 0.4]]'; empty lists are refused."""
    text = str(text).strip(_BLANK)
    if not text:
        raise InputError(f"{what} is empty; give a number or a comma-separated list such as 1,2,3")
    if "[" in text or "]" in text:
        data = _nested(text, what)
        try:
            arr = np.array(data, dtype=np.float64)
        except ValueError:
            raise InputError(f"{what} {shown(text)} is ragged; every row of a nested list needs the same "
                             "length") from None
    else:
        parts = text.split(",")
        if any(not p.strip(_BLANK) for p in parts):
            raise InputError(f"{what} {shown(text)} has an empty item; write numbers separated by commas, such as "
                             "1,2,3")
        values = [parse_number(p, what, within=text if len(parts) > 1 else None) for p in parts]
        arr = np.array(values if len(values) > 1 else values[0], dtype=np.float64)
    if arr.size == 0:
        raise InputError(f"{what} {shown(text)} is empty; give at least one number")
    return arr


def typed_item(text: str, values: np.ndarray, bad: np.ndarray) -> str:
    """The first element where ``bad`` holds, as it was typed, for an error line: "'2' (in '1,2,3')" rather than
    the parsed 2.0, or "'1.5'" when ``text`` is that one number. Items are read off the text in order (a nested
    list's items are in row-major order, as the array's); the parsed value stands in if they cannot be matched."""
    index = int(np.flatnonzero(np.asarray(bad).reshape(-1))[0])
    tokens = [t.strip(_BLANK).strip('"') for t in re.split(r"[\[\],]", str(text)) if t.strip(_BLANK)]
    typed = tokens[index] if len(tokens) == np.size(values) else _fmt(np.asarray(values).reshape(-1)[index])
    return shown(typed) + (f" (in {shown(text)})" if len(tokens) > 1 else "")


def check_targets(y: np.ndarray, text: str) -> None:
    bad = ~((y >= 0) & (y <= 1))
    if bad.any():
        raise InputError(f"target {typed_item(text, y, bad)} is outside [0, 1]; targets are probabilities in [0, 1]")


def check_weights(w: np.ndarray, text: str, what: str) -> None:
    bad = ~(np.isfinite(w) & (w >= 0))
    if bad.any():
        raise InputError(f"{what} {typed_item(text, w, bad)} is not allowed; {what}s are finite numbers >= 0")


def broadcast(named: dict[str, tuple[np.ndarray, str]]) -> tuple[int, ...]:
    """The common shape of the inputs (broadcast like torch), or an error naming the shapes."""
    try:
        return np.broadcast_shapes(*(a.shape for a, _ in named.values()))
    except ValueError:
        desc = ", ".join(f"{k} {shown(text)} of shape {tuple(a.shape)}" for k, (a, text) in named.items() if a.ndim)
        raise InputError(f"{desc} do not broadcast; give lists of the same length (or single numbers)") from None


def parse_elementwise(first: str, targets: str, weight: str = "1", pos_weight: str = "1", label: str = "logit",
                      name: str = "logits", check_first=None) -> tuple[np.ndarray, ...]:
    """An elementwise loss's inputs from the command line's text: the first input (logits; ``label`` names one of
    its values in a message, ``name`` all of them), targets in [0, 1], weight and pos_weight >= 0, each a number or
    a list, broadcast like torch. ``check_first(array, text)`` refuses first inputs the loss cannot take. Returns
    float64 arrays of one shape (read-only views); bad input raises InputError (one line naming the value)."""
    x = parse_array(first, label)
    if check_first is not None:
        check_first(x, first)
    y = parse_array(targets, "target")
    check_targets(y, targets)
    w = parse_array(weight, "weight")
    check_weights(w, weight, "weight")
    pw = parse_array(pos_weight, "pos_weight")
    check_weights(pw, pos_weight, "pos_weight")
    shape = broadcast({name: (x, first), "targets": (y, targets), "weight": (w, weight),
                       "pos_weight": (pw, pos_weight)})
    return tuple(np.broadcast_to(a, shape) for a in (x, y, w, pw))


def _fmt(v: float) -> str:
    return repr(float(v)) if math.isfinite(v) else str(float(v))
