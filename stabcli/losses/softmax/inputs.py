"""Reading softmax inputs: rows of logits, class-index or probability targets, per-class weights, label smoothing.

Every check raises ``InputError`` with one line that names the value and says what is allowed. The rules follow
torch's ``F.cross_entropy``: a target of the logits' shape holds probabilities, any other holds class indices.
"""

from __future__ import annotations

import math

import numpy as np

from stabcli.core.errors import InputError

PROBABILITY_SUM_TOLERANCE = 1e-6  # how far a probability row may sum from 1 (typed decimals: 0.1+0.2+0.7)


def _fmt(v: float) -> str:
    return repr(float(v)) if math.isfinite(v) else str(float(v))


SHOWN_ENTRIES = 8  # a probability row in an error line: its first entries, then how many there are


def _in(text: str, where: str | None) -> str:
    """Where a bad value sits, for an error line: in what was typed, or (``check``) in a file's row."""
    return where if where is not None else repr(text)


def logit_rows(x: np.ndarray, text: str, name: str | None = None) -> tuple[np.ndarray, bool]:
    """Logits as rows (N, C) and whether they were one vector (C,). ``name`` (check: "LOGITS 'x.npy'") stands for
    the text in messages."""
    what, are, have = (f"softmax logits {text!r}", "are", "have") if name is None else (name, "holds", "has")
    if x.ndim == 0:
        raise InputError(f"{what} {are} one number; give a vector of class logits such as 12,0,-12 "
                         "or rows such as [[12,0,-12],[1,2,3]]")
    if x.ndim > 2:
        raise InputError(f"{what} {have} {x.ndim} axes; give a vector or rows (2 axes)")
    rows = x.reshape(1, -1) if x.ndim == 1 else x
    if rows.shape[1] < 2:
        raise InputError(f"{what} {have} {rows.shape[1]} class; softmax needs at least 2 classes")
    return rows, x.ndim == 1


def check_probability_row(row: np.ndarray, text: str, where: str | None = None) -> None:
    bad = row[~((row >= 0) & (row <= 1))]
    if bad.size:
        raise InputError(f"probability {_fmt(bad.flat[0])} (in {_in(text, where)}) is outside [0, 1]; a probability "
                         "target holds numbers in [0, 1] that sum to 1")
    total = math.fsum(float(v) for v in row)
    if abs(total - 1) > PROBABILITY_SUM_TOLERANCE:
        shown = ", ".join(f"{v:g}" for v in row[:SHOWN_ENTRIES])
        if row.size > SHOWN_ENTRIES:
            shown += f", ... ({row.size:,} entries)"
        raise InputError(f"probability target [{shown}] (in {_in(text, where)}) sums to {total:.10g}, not 1; give "
                         "probabilities that sum to 1, or a class index")


def class_index(v: float, n_classes: int, text: str, where: str | None = None) -> int:
    if not (math.isfinite(v) and v == int(v)):
        raise InputError(f"target {_fmt(v)} (in {_in(text, where)}) is not a class index; give a whole number from 0 "
                         f"to {n_classes - 1}, or a probability vector with one entry per class")
    if not 0 <= v < n_classes:
        raise InputError(f"class index {int(v)} (in {_in(text, where)}) is out of range for {n_classes} classes; give "
                         f"0 to {n_classes - 1}")
    return int(v)


def targets_for(rows: np.ndarray, unbatched: bool, y: np.ndarray, text: str, name: str | None = None) -> np.ndarray:
    """Class indices (N,) int64 or probabilities (N, C) float64 for logit ``rows`` (N, C). ``name`` (check:
    "TARGETS 'y.npy'") stands for the text in messages, which then say the row: a file's text is its whole array."""
    n, c = rows.shape
    given = rows[0].shape if unbatched else rows.shape
    at = (lambda i: None) if name is None else (lambda i: f"{name}, row [{i}]")  # noqa: E731
    if y.shape == given:  # probabilities, one per class (torch's rule: the logits' shape)
        probs = y.reshape(n, c)
        for i, row in enumerate(probs):
            check_probability_row(row, text, at(i))
        return probs.astype(np.float64)
    if y.ndim == 2 or (y.ndim == 1 and y.size != n and not (unbatched and y.size == 1)):
        shape = "one vector" if unbatched else f"{n} rows"
        what = name if name is not None else f"targets {text!r}"
        raise InputError(f"{what} of shape {tuple(y.shape)} do not fit logits of {shape} of {c} classes; "
                         f"give a class index per row or a probability vector of {c} entries per row")
    flat = np.broadcast_to(y.reshape(-1), (n,)) if y.size == 1 else y.reshape(-1)
    return np.array([class_index(float(v), c, text, at(i)) for i, v in enumerate(flat)], dtype=np.int64)


def class_weights(w: np.ndarray, n_classes: int, text: str) -> np.ndarray:
    from stabcli.core.inputs import typed_item

    bad = ~(np.isfinite(w) & (w >= 0))
    if bad.any():
        raise InputError(f"weight {typed_item(text, w, bad)} is not allowed; weights are finite numbers >= 0")
    if w.size == 1:
        return np.full(n_classes, float(w.reshape(-1)[0]))
    if w.ndim != 1 or w.size != n_classes:
        raise InputError(f"weight {text!r} has {w.size} values for {n_classes} classes; give one weight per class "
                         "(or one number for all)")
    return w.astype(np.float64)


def check_label_smoothing(eps: float) -> float:
    if not (math.isfinite(eps) and 0 <= eps <= 1):
        raise InputError(f"--label-smoothing {eps!r} is not allowed; give a number in [0, 1]")
    return float(eps)


def parse(logits: str, targets: str, weight: str = "1", label_smoothing: float = 0.0, reduction: str = "mean",
          names: tuple[str, str] | None = None):
    """The compare inputs of softmax cross-entropy from what the user typed; ``names`` (check: "LOGITS 'x.npy'",
    "TARGETS 'y.npy'") name the two in messages in place of their text."""
    from stabcli.core import inputs as parse_text
    from stabcli.losses.softmax import Inputs

    name_x, name_y = names if names is not None else (None, None)
    rows, unbatched = logit_rows(parse_text.parse_array(logits, "logit"), logits, name_x)
    y = targets_for(rows, unbatched, parse_text.parse_array(targets, "target"), targets, name_y)
    w = class_weights(parse_text.parse_array(weight, "weight"), rows.shape[1], weight)
    return Inputs(rows, y, w, check_label_smoothing(label_smoothing), reduction, unbatched)


def sweep_target(text: str, n_classes: int):
    """A sweep --target: a class index ("1") or a probability vector ("1,0,0", one entry per class)."""
    from stabcli.core import inputs as parse_text

    y = parse_text.parse_array(text, "--target")
    if y.ndim == 0:
        return class_index(float(y), n_classes, text)
    if y.ndim != 1 or y.size != n_classes:
        raise InputError(f"--target {text!r} has {y.size} entries for {n_classes} classes; give a class index or a "
                         f"probability vector of {n_classes} entries")
    check_probability_row(y, text)
    return tuple(float(v) for v in y)


def check_sweep(targets, weight, pos_weight, options: dict) -> None:
    """The checks of a softmax sweep (the engine's; the CLI parses into these already)."""
    n = options.get("classes", 3)
    if not (isinstance(n, (int, np.integer)) and 2 <= n <= 1000):
        raise InputError(f"--classes {n!r} is not allowed; give a whole number of classes from 2 to 1000")
    shift = options.get("shift", 0.0)
    if not math.isfinite(shift):
        raise InputError(f"--shift {shift!r} is not allowed; give a finite number")
    check_label_smoothing(options.get("label_smoothing", 0.0))
    if pos_weight != 1:
        raise InputError("--pos-weight is for --loss bce; softmax cross-entropy takes --weight per class")
    class_weights(np.asarray(weight, dtype=np.float64), n, str(weight))
    for t in targets:
        if np.ndim(t) == 0:
            class_index(float(t), n, str(t))
        else:
            row = np.asarray(t, dtype=np.float64)
            if row.size != n:
                raise InputError(f"target {list(t)} has {row.size} entries for {n} classes")
            check_probability_row(row, str(list(t)))


def no_pos_weight(pos_weight) -> None:
    if str(pos_weight).strip() not in ("1", "1.0"):
        raise InputError(f"--pos-weight {pos_weight!r} is for --loss bce; softmax cross-entropy takes --weight, one "
                         "per class")


def parse_sweep(targets, weight: str, pos_weight: str, classes=None, shift=None, label_smoothing=None):
    """(targets, per-class weight, pos_weight, options) of a softmax sweep from the command line's text."""
    from stabcli.core import inputs as parse_text
    from stabcli.losses.softmax import DEFAULT_CLASSES

    no_pos_weight(pos_weight)
    n = DEFAULT_CLASSES if classes is None else classes
    if not 2 <= n <= 1000:
        raise InputError(f"--classes {n} is not allowed; give a whole number of classes from 2 to 1000")
    if shift is not None and not math.isfinite(shift):
        raise InputError(f"--shift {shift!r} is not allowed; give a finite number")
    eps = check_label_smoothing(0.0 if label_smoothing is None else label_smoothing)
    ys: list = []
    for text in targets or ("0", "1"):
        y = sweep_target(str(text), n)
        if y not in ys:
            ys.append(y)
    w = class_weights(parse_text.parse_array(weight, "weight"), n, weight)
    options = {"classes": int(n), "shift": 0.0 if shift is None else float(shift), "label_smoothing": eps}
    return ys, tuple(float(v) for v in w), 1.0, options
