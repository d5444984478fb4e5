"""`check`: every method on the user's own tensors, read from files, per backend and dtype; never prints.

:func:`run_check` streams the logits and targets (broadcast as torch broadcasts them) in chunks of CHUNK elements,
so memory stays flat in the file's size:

* In a 16-bit (or 8-bit) dtype there are at most 65,536 logits and as many targets, so the file is reduced to its
  distinct (logit, target) pairs as it streams (``np.unique`` with counts, merged chunk by chunk), and each method
  and its reference are evaluated once per pair; every count, mean and maximum is weighted by the pair's count.
* In float32 and float64 every chunk is evaluated and judged as a sweep judges its chunks (``analysis.judge``
  against one reference per chunk, only counts kept).

The reference is the family's fast file reference (``LossFamily.file_reference``: for BCE the softplus form in
float64, certified for rounding into the dtype, mpmath at the points it cannot certify; float64 uses it as it is,
within ~6 ulps). A family without one (softmax cross-entropy) is checked by the compare engine, each element
against mpmath, up to compare's 10,000 elements (:func:`run_small_check`).

Each row counts statuses as a sweep row does, adds the mean of the method's losses next to the exact mean (both
summed in float64 from the per-element values, so the reduction's own rounding is not part of it), the gradients'
counts, and the worst elements with their indices in the file's (broadcast) shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from stabcli.commands.evaluate import as_family, exp_overflowed, format_of, methods_to_run, refusal
from stabcli.commands.sweep import COUNT_KEYS, GRAD_COUNT_KINDS
from stabcli.core import tensorfile
from stabcli.core.analysis import INF, NAN, OK, STATUSES, Reference, Tolerance, judge, judge_grad
from stabcli.core.errors import InputError
from stabcli.core.formats import FORMATS, Format, to_float64
from stabcli.core.inputs import shown

CHUNK = 2**19  # elements per chunk: ~4 MB per float64 intermediate, flat whatever the file's size
WORST = 5  # worst elements kept per row
DEFAULT_TEXT_DTYPE = "float32"  # a text file has no dtype of its own: torch.tensor(list) gives float32
LOSS_KINDS = ("nonfinite", "inaccurate", "clamped")
GRAD_KINDS = ("nonfinite", "nan", "vanished", "inaccurate")
# how bad a status is, for the worst elements: NaN, inf, a clamp that changed the value, off tolerance, a clamp
# that happened to give the right value, fine
_RANK = {"nan": 5, "inf": 4, "clamped_wrong": 3, "inaccurate": 2, "clamped": 1, "ok": 0}


@dataclass
class WorstElement:
    """One of a row's worst elements: where it is in the (broadcast) file, its values, and how many share them."""

    index: list[int]
    logit: object  # the first input as rounded to the dtype (a probability with --probs; softmax: the row)
    target: object  # a number, or softmax's class index or probability row
    loss: float
    reference: float
    abs_error: float
    error_bits: float
    status: str
    count: int = 1  # elements with the same (logit, target) pair (16-bit dtypes: the pair is evaluated once)

    def as_json(self) -> dict:
        return {"index": self.index, "logit": self.logit, "target": self.target, "loss": self.loss,
                "reference": self.reference, "abs_error": self.abs_error, "error_bits": self.error_bits,
                "status": self.status, "count": self.count}


@dataclass
class CheckRow:
    """One (backend, dtype, method) over the whole file: a sweep row's counts, the means, and the worst elements."""

    backend: str
    dtype: str
    method: str
    points: int = 0
    counts: dict = field(default_factory=lambda: {k: 0 for k in COUNT_KEYS})
    count_overflow: int = 0
    max_abs_error: float = 0.0
    max_error_bits: float = 0.0
    breakdown: dict = field(default_factory=dict)  # "<kind>_<pos|neg>": the logit closest to 0 that fails
    grad_counts: dict | None = None  # GRAD_COUNT_KINDS, None without gradients
    grad_max_error_bits: float | None = None
    grad_breakdown: dict = field(default_factory=dict)
    training: object = None  # severity.TrainingBreaks (with gradients): ranked for training, as sweep's rows
    grad_wrt: str = "x"
    compute_dtype: str | None = None
    refused: str | None = None  # torch.autocast refused the method: torch's message
    mean_loss: float | None = None
    mean_reference: float | None = None
    worst: list = field(default_factory=list)
    _sum: float = 0.0
    _sum_ref: float = 0.0
    nan_inputs: int = 0  # elements whose input is NaN: left out of the means
    _candidates: list = field(default_factory=list, repr=False)

    @property
    def mean_rel_error(self) -> float | None:
        if self.mean_loss is None or self.mean_reference is None:
            return None
        with np.errstate(all="ignore"):
            if self.mean_loss == self.mean_reference:
                return 0.0
            return float(abs(self.mean_loss - self.mean_reference) / abs(self.mean_reference)) \
                if self.mean_reference != 0 else math.inf


@dataclass
class InputNote:
    """What rounding the file's values into a dtype did, and how many distinct pairs were evaluated."""

    dtype: str
    logits_changed: int = 0
    logits_overflowed: int = 0
    targets_changed: int = 0
    distinct: int | None = None  # distinct (logit, target) pairs (16- and 8-bit dtypes), else None


@dataclass
class Check:
    logits: tensorfile.TensorFile
    targets: tensorfile.TensorFile
    shape: tuple
    elements: int
    rows: list[CheckRow]
    inputs: list[InputNote]
    notes: list[str] = field(default_factory=list)
    family: str = "bce"
    probs: bool = False
    autocast: object = None
    weight: float = 1.0
    pos_weight: float = 1.0
    grad: bool = True
    method: str = "stream"  # "stream" (the file engine) or "compare" (each element against mpmath)
    histogram: object = None  # (edges, counts, dtype) for --plot


def default_formats(logits: tensorfile.TensorFile, names=()) -> list[Format]:
    """The formats to check in: those named (--dtype), else the logits file's own (float32 for text and integers)."""
    from stabcli.core.formats import parse_dtypes

    if names:
        return parse_dtypes(names)
    return [FORMATS[logits.dtype or DEFAULT_TEXT_DTYPE]]


def run_check(logits: tensorfile.TensorFile, targets: tensorfile.TensorFile, formats: list[Format],
              backends=("numpy", "torch"), weight: float = 1.0, pos_weight: float = 1.0, rtol=None, atol=None,
              loss=None, grad: bool = True, autocast=None, worst: int = WORST,
              progress: Callable[[int], None] | None = None, chunk: int = CHUNK) -> Check:
    """Check every method of the family ``loss`` (a name or family object; ``--probs`` passes BCE's probability
    family) on the files' tensors in every backend and dtype (see the module)."""
    from stabcli.core import autocast as amp

    family = as_family(loss)
    shape = tensorfile.broadcast_shape(logits, targets)
    n = int(np.prod(shape, dtype=np.int64))
    for name, v in (("--weight", weight), ("--pos-weight", pos_weight)):
        if not (math.isfinite(v) and v >= 0):
            raise InputError(f"{name} {v!r} is not allowed; give one finite number >= 0")
    if autocast is not None:
        backends = tuple(b for b in backends if b == "torch")
    check = Check(logits, targets, shape, n, [], [], family=family.name, probs=family.probabilities,
                  autocast=autocast, weight=weight, pos_weight=pos_weight, grad=grad)
    if autocast is not None:
        check.notes.append(autocast.describe())
    with amp.use(autocast):
        for fmt in formats:
            _check_format(check, family, fmt, list(backends), rtol, atol, worst, progress, chunk)
    return check


def _probe_arrays(family, fmt: Format, weight: float, pos_weight: float) -> dict:
    keys = family.input_keys
    base = {keys[0]: np.array([0.5 if family.probabilities else 0.0]), "targets": np.array([0.0]),
            "weight": np.array(weight), "pos_weight": np.array(pos_weight)}
    return family.round_inputs(fmt, base)


def _rows_for(check: Check, family, fmt: Format, backends, weight, pos_weight) -> list[CheckRow]:
    rows = []
    options = {"weight": weight, "pos_weight": pos_weight}
    probe = None
    for backend in backends:
        for method in methods_to_run(family, backend, fmt, None, options, check.notes):
            probe = _probe_arrays(family, fmt, weight, pos_weight) if probe is None else probe
            row = CheckRow(backend, fmt.name, method, grad_wrt=family.grad_variable(method))
            row.refused = refusal(backend, fmt, method, probe, family)
            if row.refused is None and check.grad:
                from stabcli.commands.severity import TrainingBreaks

                row.grad_counts = {k: 0 for k in GRAD_COUNT_KINDS}
                row.grad_max_error_bits = 0.0
                row.training = TrainingBreaks(0, 0, False)
            rows.append(row)
    return rows


def _check_format(check: Check, family, fmt: Format, backends, rtol, atol, worst, progress, chunk) -> None:
    rows = _rows_for(check, family, fmt, backends, check.weight, check.pos_weight)
    if fmt.bits == 64:
        check.notes.append("float64: the reference is the float64 form itself (within ~6 ulps; no wider format can "
                           "certify it), and mpmath's where a loss lies near the tolerance's edge, so every status "
                           "is mpmath's; error bits and the gradient's reference are the float64 form's")
    note = InputNote(fmt.name)
    live = [r for r in rows if r.refused is None]
    ctx = _Context(check, family, fmt, live, rtol, atol, worst)
    if fmt.bits <= 16:
        pairs = _distinct_pairs(check, family, fmt, note, progress, chunk)
        xs, ys, counts, first = pairs
        note.distinct = int(xs.size)
        for start in range(0, xs.size, chunk):
            sl = slice(start, start + chunk)
            ctx.evaluate(xs[sl], ys[sl], counts[sl], first[sl])
    else:
        for start, xs, ys in _stream(check, family, fmt, note, chunk):
            ctx.evaluate(xs, ys, None, np.arange(start, start + xs.size, dtype=np.int64))
            if progress is not None:
                progress(int(xs.size))
    for row in live:
        _finish(row, check, fmt, family, worst)
        _finish_training(row.training)
    check.rows.extend(rows)
    check.inputs.append(note)


# --- reading the files in chunks -----------------------------------------------------------------------------

def _stream(check: Check, family, fmt: Format, note: InputNote, chunk: int):
    """(start, first input, targets) per chunk, each rounded to ``fmt`` (values of the dtype), targets checked."""
    gx = tensorfile.Gather(check.logits, check.shape)
    gy = tensorfile.Gather(check.targets, check.shape)
    for start in range(0, check.elements, chunk):
        stop = min(start + chunk, check.elements)
        x64 = to_float64(gx(start, stop))
        y64 = to_float64(gy(start, stop))
        _check_values(check, family, x64, y64, start)
        xs, ys = fmt.round(x64), fmt.round(y64)
        with np.errstate(all="ignore"):
            xr, yr = to_float64(xs), to_float64(ys)
            note.logits_changed += int(np.count_nonzero((xr != x64) & ~np.isnan(x64)))
            note.logits_overflowed += int(np.count_nonzero(np.isfinite(x64) & ~np.isfinite(xr)))
            note.targets_changed += int(np.count_nonzero(yr != y64))
        yield start, xs, ys


def _check_values(check: Check, family, x64: np.ndarray, y64: np.ndarray, start: int) -> None:
    """Targets in [0, 1] (no NaN); with --probs, probabilities in [0, 1]: else one line naming the file and index."""
    _in_unit_interval(y64, "TARGETS", check.targets.name, check, start, "targets are probabilities in [0, 1] (no NaN)")
    if family.probabilities:
        _in_unit_interval(x64, "LOGITS", check.logits.name, check, start,
                          "with --probs it holds probabilities p in [0, 1] (leave --probs out for logits)")


def _in_unit_interval(values: np.ndarray, argument: str, name: str, check: Check, start: int, allowed: str) -> None:
    """One line naming the file, the first value outside [0, 1] (NaN included) and its index, if there is one."""
    bad = np.flatnonzero(~((values >= 0) & (values <= 1)))
    if bad.size:
        i = int(bad[0])
        where = tensorfile.fmt_index(start + i, check.shape)
        value = tensorfile.fmt_value(values[i])
        raise InputError(f"{argument} {shown(name)} holds {value} at index {where}; {allowed}")


def _distinct_pairs(check: Check, family, fmt: Format, note: InputNote, progress, chunk: int):
    """The distinct (first input, target) pairs of the file in ``fmt`` (8 or 16 bits each): (xs, ys, counts,
    first flat index), merged chunk by chunk so that memory stays flat."""
    width = fmt.bits
    keys = counts = first = None
    for start, xs, ys in _stream(check, family, fmt, note, chunk):
        k = (xs.view(fmt.uint_dtype).astype(np.uint32) << np.uint32(width)) | ys.view(fmt.uint_dtype).astype(np.uint32)
        u, idx, cnt = np.unique(k, return_index=True, return_counts=True)
        idx = idx.astype(np.int64) + start
        if keys is None:
            keys, counts, first = u, cnt.astype(np.int64), idx
        else:
            allk = np.concatenate([keys, u])
            merged, inv = np.unique(allk, return_inverse=True)
            c = np.zeros(merged.size, dtype=np.int64)
            np.add.at(c, inv, np.concatenate([counts, cnt.astype(np.int64)]))
            f = np.full(merged.size, np.iinfo(np.int64).max, dtype=np.int64)
            np.minimum.at(f, inv, np.concatenate([first, idx]))
            keys, counts, first = merged, c, f
        if progress is not None:
            progress(int(xs.size))
    mask = np.uint32(2**width - 1)
    xs = (keys >> np.uint32(width)).astype(fmt.uint_dtype).view(fmt.np_dtype)
    ys = (keys & mask).astype(fmt.uint_dtype).view(fmt.np_dtype)
    return xs, ys, counts, first


# --- evaluating and judging ----------------------------------------------------------------------------------

PROBABILITY_CENTER = 0.5  # --probs: p = sigmoid(0); breakdowns are found on each side of it, as of x = 0 for logits


class _Context:
    """What every chunk of one dtype shares: the family, the rows, the tolerance."""

    def __init__(self, check: Check, family, fmt: Format, rows: list[CheckRow], rtol, atol, worst: int):
        self.check, self.family, self.fmt, self.rows = check, family, fmt, rows
        self.given = (rtol, atol)
        self.worst = worst
        # an ordinary gradient is w·max(1, pw) (BCE's largest |d loss/d x|); a lost one below eps times that is no
        # news for training (commands/severity.py)
        self.floor = fmt.eps * check.weight * max(1.0, check.pos_weight)
        # the two sides a breakdown is found on: of x = 0 for logits, of p = 1/2 (logit 0) for probabilities, where
        # p ≥ 0.0017 would hold every p of the file but 0
        self.center = PROBABILITY_CENTER if family.probabilities else 0.0

    def arrays(self, xs, ys) -> dict:
        keys = self.family.input_keys
        base = {keys[0]: to_float64(xs), "targets": to_float64(ys), "weight": np.array(self.check.weight),
                "pos_weight": np.array(self.check.pos_weight)}
        return self.family.round_inputs(self.fmt, base)

    def evaluate(self, xs, ys, counts, index) -> None:
        """Every row's method on the elements (or distinct pairs, weighted by ``counts``) ``xs``, ``ys``."""
        family, fmt = self.family, self.fmt
        arrays = self.arrays(xs, ys)
        wide = {k: to_float64(v) for k, v in arrays.items()}
        ref_pair = family.file_reference(wide, fmt)
        refs: dict[str, Reference] = {}
        x64 = wide[family.input_keys[0]]

        def ref_in(cfmt: Format) -> Reference:
            if cfmt.name not in refs:
                nearest, for_rounding = ref_pair if cfmt.name == fmt.name else family.file_reference(wide, cfmt)
                # where the float64 reference is finite, so is the exact value (an infinite one is an exact limit:
                # a logit of ±inf, or with --probs a log of p = 0 or 1 that has a coefficient)
                refs[cfmt.name] = Reference.prepare(nearest, cfmt, Tolerance.for_format(cfmt, *self.given),
                                                    for_rounding)
            return refs[cfmt.name]

        grad_refs: dict = {}
        weights = None if counts is None else counts.astype(np.float64)
        evaluated = []
        for row in self.rows:
            ev, ops = family.evaluate(row.backend, fmt, row.method, arrays, broadcast=False)
            loss = np.asarray(ops.to_numpy(ev.loss)).reshape(-1)
            loss = np.broadcast_to(loss, x64.shape) if loss.size != x64.size else loss
            evaluated.append((row, ev, ops, loss))
        if fmt.bits == 64:
            ref_pair = self._certified64(ref_pair, [e[3] for e in evaluated], wide, x64.shape)
        for row, ev, ops, loss in evaluated:
            cfmt = format_of(loss, fmt)
            row.compute_dtype = cfmt.name
            changed = None if ev.clamp_changed is None else \
                np.broadcast_to(np.asarray(ev.clamp_changed, dtype=bool).reshape(-1), x64.shape)
            j = judge(loss, ref_in(cfmt), changed)
            _tally(row, j, changed, x64, wide["targets"], counts, weights, index, self)
            overflow = exp_overflowed(ev, ops, x64.shape)
            row.count_overflow += int(overflow.sum() if counts is None else counts[overflow].sum())
            if row.grad_counts is not None:
                wrt = family.grad_variable(row.method)
                if wrt not in grad_refs:
                    nearest, for_rounding = family.file_grad_reference(row.method, wide, fmt)
                    grad_refs[wrt] = Reference.prepare(nearest, fmt, Tolerance.for_format(fmt, *self.given),
                                                       for_rounding)
                g = family.grad_of(row.backend, fmt, row.method, arrays, "none", broadcast=False)
                g = np.broadcast_to(np.asarray(g).reshape(-1), x64.shape)
                gj, gone = _tally_grad(row, g, grad_refs[wrt], x64, counts, self.center)
                _tally_training(row, j, gj, gone, x64, counts, fmt, self.floor, self.center)


    def _certified64(self, ref_pair, losses, wide: dict, shape):
        """float64 has no wider format to certify its reference: where a loss lies so near the tolerance's edge
        that the float64 form's error (``LossFamily.file_reference_error``; BCE: 2^-49 relative) could move it
        across, the reference is mpmath's, so that every status is the one mpmath gives."""
        from stabcli.core.exact import to_float64_nearest

        rel, abs_ = self.family.file_reference_error
        fast = ref_pair[0]
        tol = Tolerance.for_format(self.fmt, *self.given)
        with np.errstate(all="ignore"):
            e = 2 * (rel * np.abs(fast) + abs_) * (1 + tol.rtol)
            bound = tol.atol + tol.rtol * np.abs(fast)
            unsure = np.zeros(fast.shape, dtype=bool)
            for loss in losses:
                d = np.abs(np.asarray(loss, dtype=np.float64) - fast)
                unsure |= np.isfinite(d) & np.isfinite(fast) & (np.abs(d - bound) <= e)
        at = np.flatnonzero(unsure)
        if not at.size:
            return ref_pair
        nearest = fast.copy()
        columns = [np.broadcast_to(wide[k], shape) for k in self.family.input_keys]
        for i in at:
            nearest[i] = to_float64_nearest(self.family.exact_loss(*(float(c[i]) for c in columns)))
        return nearest, nearest


def _weighted(mask: np.ndarray, counts) -> int:
    return int(np.count_nonzero(mask)) if counts is None else int(counts[mask].sum())


def _closest(breakdown: dict, kind: str, mask: np.ndarray, x64: np.ndarray, center: float = 0.0) -> None:
    """Remember, per side of ``center`` (0; p = 1/2 for probabilities), the failing input closest to it (the file's
    values need not be sorted)."""
    if not mask.any():
        return
    with np.errstate(all="ignore"):
        pos = x64[mask & (x64 >= center)]
        neg = x64[mask & (x64 < center)]
    if pos.size:
        v = float(pos.min())
        breakdown[f"{kind}_pos"] = min(v, breakdown.get(f"{kind}_pos", v))
    if neg.size:
        v = float(neg.max())
        breakdown[f"{kind}_neg"] = max(v, breakdown.get(f"{kind}_neg", v))


def _tally(row: CheckRow, j, changed, x64, y64, counts, weights, index, ctx: _Context) -> None:
    n = x64.size if counts is None else int(counts.sum())
    row.points += n
    by_code = np.bincount(j.code.reshape(-1), weights=weights, minlength=len(STATUSES))
    for key, c in zip(COUNT_KEYS, by_code):
        row.counts[key] += int(round(float(c)))
    bits = j.error_bits()  # per element: the worst elements' score, and the largest
    if x64.size:
        row.max_abs_error = max(row.max_abs_error, float(np.max(j.abs_error)))
        row.max_error_bits = max(row.max_error_bits, float(np.max(bits)))
    with np.errstate(all="ignore"):  # means over the elements whose input is not NaN (NaN in is NaN out)
        keep = ~np.isnan(x64)
        loss64, ref64 = j.loss64[keep], j.ref.nearest[keep]
        row._sum += float(np.sum(loss64) if counts is None else np.dot(weights[keep], loss64))
        row._sum_ref += float(np.sum(ref64) if counts is None else np.dot(weights[keep], ref64))
        row.nan_inputs += int(np.count_nonzero(~keep)) if counts is None else int(counts[~keep].sum())
    outside = j.outside
    masks = {"nonfinite": ~np.isfinite(j.loss64) & outside, "inaccurate": outside,
             "clamped": changed if changed is not None else None}
    for kind, mask in masks.items():
        if mask is not None:
            _closest(row.breakdown, kind, np.asarray(mask), x64, ctx.center)
    # the worst elements of this chunk, merged into the row's candidates
    code = j.code.reshape(-1)
    rank = np.array([_RANK["ok"], _RANK["inaccurate"], _RANK["clamped"], _RANK["inf"], _RANK["nan"]])[code]
    rank = np.where((code == 2) & (bits > 0), _RANK["clamped_wrong"], rank)
    score = rank * 1000.0 + bits
    k = min(ctx.worst, score.size)
    if k:
        # the k highest scores, ties to the smallest index: the same elements whatever the chunking
        kth = np.partition(score, score.size - k)[score.size - k]
        cand = np.flatnonzero(score >= kth)
        top = cand[np.lexsort((index[cand], -score[cand]))[:k]]
        status = np.asarray(STATUSES)[code[top]]
        for n, i in enumerate(top):
            row._candidates.append((float(score[i]), int(index[i]), float(x64[i]), float(y64[i]),
                                    float(j.loss64[i]), float(j.ref.nearest[i]), float(j.abs_error[i]),
                                    float(bits[i]), str(status[n]), 1 if counts is None else int(counts[i])))
        row._candidates.sort(key=lambda c: (-c[0], c[1]))
        del row._candidates[ctx.worst:]


def _tally_grad(row: CheckRow, g, ref: Reference, x64, counts, center: float = 0.0) -> None:
    j, gone = judge_grad(g, ref)
    code = j.code.reshape(-1)
    nonfinite = code >= INF
    gone = gone.reshape(-1) & ~nonfinite
    row.grad_counts["nonfinite"] += _weighted(nonfinite, counts)
    row.grad_counts["vanished"] += _weighted(gone, counts)
    row.grad_counts["inaccurate"] += _weighted((code != OK) & ~nonfinite & ~gone, counts)
    if x64.size:
        row.grad_max_error_bits = max(row.grad_max_error_bits, j.max_error_bits())
    for kind, mask in (("nonfinite", nonfinite), ("nan", code == NAN), ("vanished", gone), ("inaccurate", code != OK)):
        _closest(row.grad_breakdown, kind, mask, x64, center)
    return j, gone


def _tally_training(row: CheckRow, j, gj, gone, x64, counts, fmt: Format, floor: float, center: float = 0.0) -> None:
    """What the elements mean for training, as ``sweep --severity training`` ranks a sweep (``commands/severity.py``):
    where the loss or the gradient is inf/NaN and the truth is not (diverges), where the gradient vanished although
    the true one is at least ``floor`` (eps times an ordinary gradient: stalls), and per side of 0 the input closest
    to 0 where either happens, with how (``severity.kind_at``); for probabilities, sides of and closest to p = 1/2."""
    from stabcli.commands.severity import kind_at

    t = row.training
    with np.errstate(all="ignore"):
        diverge = (~np.isfinite(j.loss64) & j.outside) | (gj.code.reshape(-1) >= INF)
        stall = ~diverge & gone & (np.abs(gj.ref.nearest) >= floor)
    t.count_nonfinite += _weighted(diverge, counts)
    t.count_stalled += _weighted(stall, counts)
    t.inaccurate = t.inaccurate or bool((j.code != OK).any() or (gj.code != OK).any())
    with np.errstate(all="ignore"):
        picks = (("pos", x64 >= center), ("neg", x64 < center))
    for side, pick in picks:
        for mask, which in ((diverge | stall, "break"), (diverge, "diverge")):
            at = np.flatnonzero(mask & pick)
            if not at.size:
                continue
            i = int(at[np.argmin(np.abs(x64[at] - center))])
            if which == "break":
                old = getattr(t, f"break_{side}")
                if old is None or abs(x64[i] - center) < abs(old - center):
                    setattr(t, f"break_{side}", float(x64[i]))
                    setattr(t, f"break_{side}_kind", kind_at(float(j.loss64[i]), float(gj.loss64[i])))
                    setattr(t, f"truth_{side}", float(gj.ref.nearest[i]) if stall[i] else None)
            else:
                old = getattr(t, f"diverge_{side}")
                if old is None or abs(x64[i] - center) < abs(old - center):
                    setattr(t, f"diverge_{side}", float(x64[i]))


def _finish_training(t) -> None:
    """Keep where loss or gradient first turn inf/NaN only when a stall breaks training closer to 0 (as sweep)."""
    if t is None:
        return
    for side in ("pos", "neg"):
        if getattr(t, f"diverge_{side}") == getattr(t, f"break_{side}"):
            setattr(t, f"diverge_{side}", None)


def _finish(row: CheckRow, check: Check, fmt: Format, family, worst: int) -> None:
    """The means, and the worst elements with their indices (float64: their reference again from mpmath)."""
    n = row.points - row.nan_inputs
    row.mean_loss = row._sum / n if n else math.nan
    row.mean_reference = row._sum_ref / n if n else math.nan
    for c in row._candidates[:worst]:
        _, flat, x, y, loss, ref, err, bits, status, count = c
        if fmt.bits == 64 and math.isfinite(x) and hasattr(family, "exact_loss"):
            try:
                ref = _exact_at(family, x, y, check)
                err = abs(loss - ref) if loss != ref else 0.0
            except (NotImplementedError, TypeError):
                pass
        row.worst.append(WorstElement(tensorfile.fmt_index(flat, check.shape), x, y, loss, ref, err, bits, status,
                                      count))
    row._candidates = []


def _exact_at(family, x: float, y: float, check: Check) -> float:
    from stabcli.core.exact import to_float64_nearest

    return to_float64_nearest(family.exact_loss(x, y, check.weight, check.pos_weight))


# --- a family without a fast file reference: compare's engine, element by element ----------------------------

def run_small_check(logits, targets, formats, backends, rtol, atol, family, autocast, label_smoothing=None):
    """For a family with no fast reference (softmax cross-entropy): the files' values as compare's inputs
    (reduction none, each element against mpmath), at most compare's 10,000 elements."""
    from stabcli.commands.compare import MAX_ELEMENTS, run_compare

    rows = logits.size if logits.array.ndim < 2 else int(np.prod(logits.shape[:-1]))
    if rows > MAX_ELEMENTS:
        raise InputError(f"LOGITS {shown(logits.name)} holds {rows:,} rows; --loss {family.name} is checked row by row "
                         f"against mpmath, at most {MAX_ELEMENTS:,} rows (--loss bce streams any size)")
    x = to_float64(np.asarray(logits.array))
    y = to_float64(np.asarray(targets.array))
    text_x, text_y = _as_text(x), _as_text(y)
    names = (f"LOGITS {shown(logits.name)}", f"TARGETS {shown(targets.name)}")  # not the files' whole text
    inputs = family.parse_inputs(text_x, text_y, "none", label_smoothing=label_smoothing, names=names)
    return run_compare(inputs, formats, tuple(backends), rtol=rtol, atol=atol, loss=family, autocast=autocast)


def from_comparison(comparison, logits, targets, worst: int = WORST, grad: bool = True) -> Check:
    """A small check's rows (compare's per-element results) as check rows: counts, means and worst elements, and
    the gradients' counts unless ``grad`` is False (``--no-grad``)."""
    n = comparison.inputs.size
    shape = tuple(logits.shape[:-1]) if logits.array.ndim >= 2 else (n,)
    check = Check(logits, targets, shape, n, [], [], notes=list(comparison.notes), family=comparison.family,
                  autocast=comparison.autocast, method="compare", grad=grad)
    for dn in comparison.dtype_notes:
        check.inputs.append(InputNote(dn.dtype, logits_changed=len(dn.changes)))
    rank = {"nan": 5, "inf": 4, "inaccurate": 2, "clamped": 1, "ok": 0, "refused": 0}
    for r in comparison.rows:
        row = CheckRow(r.backend, r.dtype, r.method, grad_wrt=r.grad_wrt, compute_dtype=r.compute_dtype,
                       refused=r.message)
        if r.message is None:
            statuses = list(r.status)
            row.points = len(statuses)
            for key in COUNT_KEYS:
                row.counts[key] = statuses.count(key)
            row.count_overflow = int(r.events.get("overflow", 0))  # compare's count: elements where an exp overflowed
            xs = comparison.dtype_notes[[d.dtype for d in comparison.dtype_notes].index(r.dtype)].logits
            per_row = len(xs) // max(row.points, 1)
            # the means leave out the elements whose input is NaN (NaN in is NaN out), as the file engine's do
            keep = ~np.isnan(np.asarray(xs, dtype=np.float64).reshape(row.points, -1)).any(axis=1)
            row.nan_inputs = int(np.count_nonzero(~keep))
            losses = np.array(r.loss, dtype=np.float64)[keep]
            refs = np.array(r.reference, dtype=np.float64)[keep]
            with np.errstate(all="ignore"):
                row.mean_loss = float(np.mean(losses)) if losses.size else math.nan
                row.mean_reference = float(np.mean(refs)) if refs.size else math.nan
            row.max_abs_error = float(np.max(r.abs_error))
            row.max_error_bits = float(np.max(r.error_bits))
            if grad and isinstance(r.grad_status, list):
                per = len(r.grad_status) // max(row.points, 1)
                gs = [max(r.grad_status[i * per:(i + 1) * per], key=lambda s: rank.get(s, 0))
                      for i in range(row.points)]
                row.grad_counts = {"nonfinite": sum(s in ("inf", "nan") for s in gs), "vanished": 0,
                                   "inaccurate": sum(s in ("inaccurate", "clamped") for s in gs)}
                row.grad_max_error_bits = float(np.max(r.grad_error_bits))
            order = sorted(range(row.points), key=lambda i: (-rank[statuses[i]], -r.error_bits[i], i))[:worst]
            for i in order:
                ys = np.asarray(comparison.inputs.targets).reshape(row.points, -1)[i]
                x = xs[i * per_row] if per_row == 1 else xs[i * per_row:(i + 1) * per_row]  # a row of class logits
                y = float(ys[0]) if ys.size == 1 else [float(v) for v in ys]
                row.worst.append(WorstElement(tensorfile.fmt_index(i, shape), x, y, r.loss[i], r.reference[i],
                                              r.abs_error[i], r.error_bits[i], statuses[i]))
        check.rows.append(row)
    return check


def _as_text(a: np.ndarray) -> str:
    """An array as compare's nested-list text (exact: repr of each float64)."""
    import json

    def conv(v):
        if isinstance(v, list):
            return [conv(e) for e in v]
        return v if math.isfinite(v) else ("inf" if v > 0 else "-inf" if v < 0 else "nan")

    data = conv(a.tolist())
    text = json.dumps(data).replace('"', "")
    return text if a.ndim else text


def logit_histogram(tf: tensorfile.TensorFile, fmt: Format, bins: int = 120, chunk: int = CHUNK):
    """A histogram of the logits file's finite values rounded to ``fmt``, on bins even in asinh(x) (linear near 0,
    logarithmic beyond ±1), read in two streaming passes; and how many are +inf, -inf and NaN."""
    flat = tf.array.reshape(-1)
    lo, hi = math.inf, -math.inf
    specials = {"inf": 0, "-inf": 0, "nan": 0}
    for start in range(0, flat.size, chunk):
        v = to_float64(fmt.round(to_float64(np.asarray(flat[start:start + chunk]))))
        fin = v[np.isfinite(v)]
        if fin.size:
            lo, hi = min(lo, float(fin.min())), max(hi, float(fin.max()))
        specials["inf"] += int(np.count_nonzero(v == np.inf))
        specials["-inf"] += int(np.count_nonzero(v == -np.inf))
        specials["nan"] += int(np.count_nonzero(np.isnan(v)))
    if lo > hi:
        return np.array([-1.0, 1.0]), np.zeros(1, dtype=np.int64), specials
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    edges = np.sinh(np.linspace(np.arcsinh(lo), np.arcsinh(hi), bins + 1))
    edges[0], edges[-1] = lo, hi
    counts = np.zeros(bins, dtype=np.int64)
    for start in range(0, flat.size, chunk):
        v = to_float64(fmt.round(to_float64(np.asarray(flat[start:start + chunk]))))
        counts += np.histogram(v[np.isfinite(v)], bins=edges)[0]
    return edges, counts, specials
