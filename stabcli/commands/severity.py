"""Severity: what a breakdown means for training, ranked. Used by ``stabcli sweep --severity training``.

A near-zero loss with a large relative error is not the same news as a NaN. For training, what matters is, in
this order:

1. ``diverges``: the loss or the gradient is inf or NaN (where the truth is finite). One such example turns the
   weights into NaN at the next step.
2. ``stalls``: the gradient is 0, or below eps·|truth|, where the true gradient matters: at least eps times the
   size of an ordinary gradient (``stall_floor``). Such an example stops teaching the model, however wrong it is
   (BCELoss's clamped backward gives 0 where the truth is 1). A lost gradient smaller than that is no news for
   training: added to an ordinary gradient it would be rounded away anyway (BCEWithLogitsLoss's sigmoid(x) - 1 = 0
   for target 1 at x >= 16.64 in float32, where the truth is -6e-8).
3. ``inaccurate``: finite, not stalled, but the loss or gradient is outside the tolerance or changed by a clamp.
4. ``ok``: nothing of the above over the swept range.

The sweep engine counts, per row, the points that diverge and that stall, and pins, per side of 0, the logit
closest to 0 where training first breaks (diverges or stalls) and how (``loss NaN``, ``loss inf``, ``grad NaN``,
``grad inf``, ``grad 0``, ``grad ≈0``). This module holds those results and their ranking; nothing here
evaluates or prints, so any command that has sweep rows (``sweep`` today, a ``check`` later) can rank them.
"""

from __future__ import annotations

from dataclasses import dataclass

from stabcli.names import SEVERITIES  # noqa: F401  (how sweep ranks what it found; accuracy: as before)

CLASSES: tuple[str, ...] = ("diverges", "stalls", "inaccurate", "ok")  # worst first
KINDS: tuple[str, ...] = ("loss NaN", "loss inf", "grad NaN", "grad inf", "grad 0", "grad ≈0")


def stall_floor(case) -> float:
    """The smallest true gradient whose loss stalls training: eps of the dtype times the size of an ordinary
    gradient, ``case.grad_scale`` (a family's sweep case may say; 1 otherwise, BCE's largest |sigmoid(x) - y|)."""
    return case.fmt.eps * float(getattr(case, "grad_scale", 1.0))


@dataclass
class TrainingBreaks:
    """One sweep row ranked for training (see the module's classes)."""

    count_nonfinite: int  # points where the loss or the gradient is inf/NaN and the truth is not
    count_stalled: int  # points where loss and gradient are finite but the gradient stalls (see stall_floor)
    inaccurate: bool  # anything else off: a loss or gradient outside the tolerance, or changed by a clamp
    break_pos: float | None = None  # the logit closest to 0 (x >= 0) where training breaks: diverges or stalls
    break_pos_kind: str | None = None  # one of KINDS
    break_neg: float | None = None
    break_neg_kind: str | None = None
    truth_pos: float | None = None  # the true gradient at a stalled break (what training should have seen)
    truth_neg: float | None = None
    diverge_pos: float | None = None  # where loss or gradient first turn inf/NaN, when a stall comes before it
    diverge_neg: float | None = None

    @property
    def cls(self) -> str:
        if self.count_nonfinite:
            return "diverges"
        if self.count_stalled:
            return "stalls"
        return "inaccurate" if self.inaccurate else "ok"

    @property
    def rank(self) -> tuple[int, float]:
        """Sort key, worst first: the class, then how close to 0 training breaks (None: nowhere)."""
        near = min((abs(x) for x in (self.break_pos, self.break_neg) if x is not None), default=float("inf"))
        return CLASSES.index(self.cls), near

    def as_dict(self) -> dict:
        return {"class": self.cls, "count_nonfinite": self.count_nonfinite, "count_stalled": self.count_stalled,
                "break_pos": self.break_pos, "break_pos_kind": self.break_pos_kind,
                "break_neg": self.break_neg, "break_neg_kind": self.break_neg_kind}


def kind_at(loss: float, grad: float) -> str:
    """How training breaks at one logit, the worst first: the loss's inf/NaN, else the gradient's, else a stalled
    gradient (0, or merely negligible)."""
    import math

    if math.isnan(loss):
        return "loss NaN"
    if math.isinf(loss):
        return "loss inf"
    if math.isnan(grad):
        return "grad NaN"
    if math.isinf(grad):
        return "grad inf"
    return "grad 0" if grad == 0 else "grad ≈0"


def ranked(rows: list) -> list:
    """Sweep rows (with ``training``) worst first; rows without it keep their place at the end."""
    have = [r for r in rows if getattr(r, "training", None) is not None]
    return sorted(have, key=lambda r: r.training.rank) + [r for r in rows if r not in have]


__all__ = ["CLASSES", "KINDS", "SEVERITIES", "TrainingBreaks", "kind_at", "ranked", "stall_floor"]
