"""Parsing and checking what a user typed: numbers, comma-separated lists and nested [[...], [...]] lists.

Every check raises :class:`InputError` with a one-line message that names the value and says what is allowed.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np

from stabcli.core.errors import InputError

_SPECIAL = {"inf": math.inf, "+inf": math.inf, "-inf": -math.inf, "infinity": math.inf, "+infinity": math.inf,
            "-infinity": -math.inf, "nan": math.nan, "+nan": math.nan, "-nan": math.nan}
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def parse_number(text: str, what: str, hint: str = "a decimal number such as 1e10 or -100, or inf, -inf, nan") -> float:
    """One float from text: a decimal number, inf, -inf or nan. A decimal beyond float64 is refused, not inf."""
    token = text.strip()
    low = token.lower()
    if low in _SPECIAL:
        return _SPECIAL[low]
    if not _NUMBER.match(token):
        raise InputError(f"{what} {text!r} is not a number; give {hint}")
    value = float(token)
    if math.isinf(value):
        raise InputError(f"{what} {text!r} is beyond float64 (largest 1.8e308); write inf for infinity")
    return value


def _nested(text: str, what: str):
    quoted = re.sub(r"(?i)([+-]?)\b(nan|inf|infinity)\b", lambda m: f'"{m.group(1)}{m.group(2)}"', text)
    try:
        data = json.loads(quoted)
    except json.JSONDecodeError:
        raise InputError(f"{what} {text!r} is not a list of numbers; write 1,2,3 or [[1,2],[3,4]]") from None

    def convert(item):
        if isinstance(item, list):
            return [convert(i) for i in item]
        if isinstance(item, bool) or not isinstance(item, (int, float, str)):
            raise InputError(f"{what} {text!r} holds {item!r}, which is not a number")
        if isinstance(item, str):
            if item.lower().lstrip("+-") not in ("inf", "infinity", "nan"):
                raise InputError(f"{what} {text!r} holds {item!r}, which is not a number")
            return _SPECIAL[item.lower()]
        return _checked(float(item), text, what)

    return convert(data)


def _checked(value: float, text: str, what: str) -> float:
    if math.isinf(value):
        raise InputError(f"{what} {text!r} is beyond float64 (largest 1.8e308); write inf for infinity")
    return value


def parse_array(text: str, what: str) -> np.ndarray:
    """A float64 array from '1e10', '1,-2,inf' or '[[0.1, 0.2], [0.3, 0.4]]'; empty lists are refused."""
    text = str(text).strip()
    if not text:
        raise InputError(f"{what} is empty; give a number or a comma-separated list such as 1,2,3")
    if text.startswith("["):
        data = _nested(text, what)
        try:
            arr = np.array(data, dtype=np.float64)
        except ValueError:
            raise InputError(f"{what} {text!r} is ragged; every row of a nested list needs the same length") from None
    else:
        parts = text.split(",")
        if any(not p.strip() for p in parts):
            raise InputError(f"{what} {text!r} has an empty item; write numbers separated by commas, such as 1,2,3")
        values = [parse_number(p, what) for p in parts]
        arr = np.array(values if len(values) > 1 else values[0], dtype=np.float64)
    if arr.size == 0:
        raise InputError(f"{what} {text!r} is empty; give at least one number")
    return arr


def check_targets(y: np.ndarray, text: str) -> None:
    bad = y[~((y >= 0) & (y <= 1))]
    if bad.size:
        raise InputError(f"target {_fmt(bad.flat[0])} (in {text!r}) is outside [0, 1]; targets are probabilities in [0, 1]")


def check_weights(w: np.ndarray, text: str, what: str) -> None:
    bad = w[~(np.isfinite(w) & (w >= 0))]
    if bad.size:
        raise InputError(f"{what} {_fmt(bad.flat[0])} (in {text!r}) is not allowed; {what}s are finite numbers >= 0")


def broadcast(named: dict[str, tuple[np.ndarray, str]]) -> tuple[int, ...]:
    """The common shape of the inputs (broadcast like torch), or an error naming the shapes."""
    try:
        return np.broadcast_shapes(*(a.shape for a, _ in named.values()))
    except ValueError:
        desc = ", ".join(f"{k} {text!r} of shape {tuple(a.shape)}" for k, (a, text) in named.items() if a.ndim)
        raise InputError(f"{desc} do not broadcast; give lists of the same length (or single numbers)") from None


def _fmt(v: float) -> str:
    return repr(float(v)) if math.isfinite(v) else str(float(v))
