"""What every engine does with a family's evaluation (``LossFamily.evaluate``): which family, whether autocast
refuses a method, the format a result came back in, and where an exp overflowed. Never prints.

compare, sweep, check and the figures' curves share these; none of them imports another engine for them.
"""

from __future__ import annotations

import numpy as np

from stabcli.core.formats import FORMATS, Format


def as_family(loss):
    """A loss family from its name (None: the default) or the family object itself."""
    from stabcli.losses import get_family
    from stabcli.losses.base import LossFamily

    return loss if isinstance(loss, LossFamily) else get_family(loss)


def methods_to_run(family, backend: str, fmt: Format, methods, options: dict, notes: list[str]) -> list[str]:
    """The methods ``family`` runs in ``backend`` (``LossFamily.runnable``: the backend's, kept to ``methods``,
    less those the ``options`` leave out); the backend's note for ``fmt`` and the notes on the methods left out
    are added to ``notes``, each once."""
    from stabcli.core.backends import backend_note

    from stabcli.core import peers

    kept, left_out = family.runnable(backend, methods, options)
    libraries = [m.library for m in family.peer_methods.values()] if backend == "peers" else ()
    for note in (backend_note(backend, fmt, libraries), *left_out):
        if note is not None and note not in notes:
            notes.append(note)
    if backend == "peers" and not peers.runs_in(fmt):  # no peer rows in float8: backend_note said why
        return []
    return kept


def peers_note(family) -> str | None:
    """The note on the peer libraries ``family`` has methods for that are not installed, or None."""
    missing = family.missing_peers()
    if not missing:
        return None
    from stabcli.core.peers import INSTALL_HINT

    return f"{', '.join(missing)} not installed: their rows need the peers extra ({INSTALL_HINT})"


def refusal(backend: str, fmt: Format, method: str, arrays: dict, family) -> str | None:
    """torch's message if the active autocast refuses ``method`` (binary_cross_entropy on CUDA), else None: the
    method is run once on ``arrays`` (a single element)."""
    from stabcli.core import autocast as amp

    if backend != "torch" or amp.active() is None:
        return None
    try:
        family.evaluate(backend, fmt, method, arrays, broadcast=False)
    except amp.AutocastRefused as exc:
        return str(exc)
    return None


def format_of(values, fmt: Format) -> Format:
    """The format of ``values`` (an array): ``fmt`` itself unless autocast computed them in another (float32)."""
    name = str(np.asarray(values).dtype)
    return fmt if name == fmt.name or name not in FORMATS else FORMATS[name]


def exp_overflowed(ev, ops, shape, known=None) -> np.ndarray:
    """Where an exp step overflowed from a finite argument; in numpy, the op-by-op sigmoid's own exp(-x) too.

    torch.sigmoid is one kernel, so an exp inside it is not an intermediate anyone can see, and is not counted.
    ``known`` = (x, mask) lets a caller that already knows where exp(-x) overflows for that very array skip it.
    """
    hit = np.zeros(shape, dtype=bool)
    for step in ev.steps:
        if step.kind == "exp" and step.args:
            value, arg = ops.to_numpy(step.value), ops.to_numpy(step.args[0])
            # inf, or NaN in float8_e4m3fn (no inf): exp of a finite argument is never NaN otherwise
            hit |= per_element(~np.isfinite(value) & np.isfinite(arg), shape)
        elif step.kind == "sigmoid" and ops.name == "numpy" and step.args:
            x = ops.to_numpy(step.args[0])
            if known is not None and x is known[0]:
                hit |= known[1]
            else:
                with np.errstate(all="ignore"):
                    hit |= np.broadcast_to(~np.isfinite(np.exp(-x)) & np.isfinite(x), shape)
    return hit


def per_element(mask: np.ndarray, shape: tuple) -> np.ndarray:
    """A mask over a step's values as a mask over the loss elements: a step of a family with a class axis has one
    more axis than the loss (a row of logits per element), where any class counts for its element."""
    mask = np.asarray(mask)
    while mask.ndim > len(shape):  # class by class: faster than numpy's reduction over a short last axis
        row = mask[..., 0]
        for c in range(1, mask.shape[-1]):
            row = row | mask[..., c]
        mask = row
    return np.broadcast_to(mask, shape)
