"""Tensors from files for ``stabcli check``: .npy, .npz, .pt/.pth, .safetensors, .csv/.txt.

Each loader returns a :class:`TensorFile`: the array (a read-only memory map where the format allows it, so that a
file of millions of values is read chunk by chunk as it is evaluated), its shape, and the format name of its dtype
(float16, bfloat16, float32, float64, a float8, or None for integers and booleans). Nothing is converted here: the
check engine rounds each chunk to the dtype it evaluates in.

* .npy: ``np.load(mmap_mode="r", allow_pickle=False)``: memory-mapped; a truncated file is refused by numpy's own
  check of the header against the file size.
* .npz: ``np.load(allow_pickle=False)``; ``--key`` picks the array when it holds several (a member of a zip cannot
  be memory-mapped: it is read whole).
* .pt/.pth: ``torch.load(weights_only=True, mmap=True)``: a tensor, or a dict of them (``--key``; nested dicts as
  ``a.b``); no pickled code runs.
* .safetensors: the ``safetensors`` package (``safe_open``, framework pt, so bfloat16 keeps its name).
* .csv/.txt: numbers one a line, or comma- or space-separated (several lines of the same count make rows), read by
  the number rule of ``core/inputs.py``; text has no dtype of its own (``TensorFile.dtype`` None: float32 unless
  ``--dtype``).

Every problem is an ``InputError`` naming the file and what is allowed.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from stabcli.core.errors import InputError
from stabcli.core.inputs import shown

EXTENSIONS: tuple[str, ...] = (".npy", ".npz", ".pt", ".pth", ".safetensors", ".csv", ".txt")
ALLOWED = ".npy, .npz, .pt/.pth, .safetensors, .csv or .txt"


@dataclass
class TensorFile:
    """One tensor read from a file (see the module)."""

    path: str
    key: str | None
    array: np.ndarray  # numeric, any shape; a memory map for .npy (and .pt/.safetensors where torch maps it)
    dtype: str | None  # the format name of its floating dtype, or None (integers, booleans, text)
    stored: str  # the dtype as stored, in words (float16, int64, text)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def name(self) -> str:
        return os.path.basename(self.path) + (f"[{self.key}]" if self.key else "")

    def as_json(self) -> dict:
        return {"path": self.path, "key": self.key, "shape": list(self.shape), "dtype": self.stored}


def _format_name(dtype: np.dtype) -> str | None:
    """The stabcli format name of a floating numpy dtype (ml_dtypes' bfloat16 and float8 by name), or None."""
    name = dtype.name
    if name in ("float16", "float32", "float64", "bfloat16", "float8_e4m3fn", "float8_e5m2"):
        return name
    return None


def _is_number_text(text: str) -> bool:
    """Whether ``text`` is a number or a comma-separated list of numbers, as compare takes them."""
    from stabcli.core.inputs import parse_number

    try:
        for item in text.strip("[] ").split(","):
            parse_number(item.strip("[] "), "")
    except InputError:
        return False
    return True


def load(path: str, key: str | None = None, what: str = "LOGITS") -> TensorFile:
    """The tensor in ``path`` (``key`` for a file of several); see the module for the formats."""
    ext = os.path.splitext(path)[1].lower()
    try:
        if "\0" in path:
            raise ValueError("embedded null byte")
        os.fsencode(path)
    except (ValueError, UnicodeError):
        raise InputError(f"{what} {shown(path)} is not a name a file system can hold; give a file ({ALLOWED})") from None
    if os.path.isdir(path):
        raise InputError(f"{what} {shown(path)} is a folder; give a file ({ALLOWED})")
    if not os.path.exists(path) and _is_number_text(path):  # a number typed where a file goes: check 1e10 1
        raise InputError(f"{what} {shown(path)} is not a file; check reads its inputs from files ({ALLOWED}); for "
                         "numbers typed in, use stabcli compare")
    if ext not in EXTENSIONS:
        raise InputError(f"{what} {shown(path)} has the extension {ext or '(none)'!r}; allowed: {ALLOWED}")
    if not os.path.exists(path):
        raise InputError(f"{what} {shown(path)} does not exist; give a file ({ALLOWED})")
    if not os.access(path, os.R_OK):
        raise InputError(f"{what} {shown(path)} cannot be read (permission denied)")
    loader = {".npy": _npy, ".npz": _npz, ".pt": _torch, ".pth": _torch, ".safetensors": _safetensors,
              ".csv": _text, ".txt": _text}[ext]
    if key is not None and ext in (".npy", ".csv", ".txt"):
        raise InputError(f"--key {shown(key)} is for .npz, .pt/.pth and .safetensors files; {what} {shown(path)} holds one "
                         "array")
    try:
        tf = loader(path, key, what)
    except InputError:
        raise
    except MemoryError:
        raise InputError(f"{what} {shown(path)} does not fit in memory") from None
    except OSError as exc:
        raise InputError(f"{what} {shown(path)} cannot be read ({exc.strerror or exc})") from None
    if tf.array.dtype.kind not in "fiub" and _format_name(tf.array.dtype) is None:
        raise InputError(f"{what} {shown(tf.name)} holds {tf.stored} values; allowed: floating-point, integer or boolean "
                         "numbers")
    if tf.size == 0:
        raise InputError(f"{what} {shown(tf.name)} holds no elements (shape {tf.shape}); give at least one number")
    return tf


def _npy(path: str, key, what) -> TensorFile:
    with open(path, "rb") as f:  # np.load takes any file without the magic bytes for a pickle
        head = f.read(6)
    if head != b"\x93NUMPY":
        raise InputError(f"{what} {shown(path)} is not a .npy file (it does not start with numpy's magic bytes "
                         "\\x93NUMPY); save it with numpy.save, or give a text file a .txt or .csv name")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:  # a truncated file, a bad header, pickled objects
        text = str(exc)
        if "allow_pickle" in text or "Python objects" in text:
            why = "holds Python objects (pickled), which are not loaded"
        elif "mmap length" in text or "larger than" in text or "cannot reshape" in text:
            why = "is truncated: shorter than its header says"
        else:
            why = f"is not a readable .npy file ({text})"
        raise InputError(f"{what} {shown(path)} {why}; save it with numpy.save") from None
    if arr.dtype.kind == "V":
        raise InputError(f"{what} {shown(path)} holds {arr.dtype} values (a bfloat16 saved by numpy loses its name); save "
                         "it as float32, or with torch.save or safetensors")
    return TensorFile(path, None, arr, _format_name(arr.dtype), arr.dtype.name)


def _npz(path: str, key, what) -> TensorFile:
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as npz:
            names = list(npz.files)
            chosen = _choose(names, key, path, what)
            arr = npz[chosen]
    except InputError:
        raise
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:
        if "allow_pickle" in str(exc):
            raise InputError(f"{what} {shown(path)} holds Python objects (pickled), which are not loaded") from None
        raise InputError(f"{what} {shown(path)} is not a readable .npz file ({exc}); save it with numpy.savez") from None
    return TensorFile(path, chosen, arr, _format_name(arr.dtype), arr.dtype.name)


def _choose(names: list[str], key: str | None, path: str, what: str) -> str:
    if not names:
        raise InputError(f"{what} {shown(path)} holds no array")
    if key is None:
        if len(names) == 1:
            return names[0]
        raise InputError(f"{what} {shown(path)} holds {len(names)} arrays ({_listed(names)}); choose one with --key")
    if key not in names:
        raise InputError(f"--key {shown(key)} is not in {what} {shown(path)}; it holds {_listed(names)}")
    return key


def _listed(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _tensor_to_numpy(t) -> np.ndarray:
    """A CPU tensor's values as numpy without a copy where possible (bfloat16 through ml_dtypes)."""
    import torch

    t = t.detach()
    if t.dtype == torch.bfloat16:
        import ml_dtypes

        return t.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    if t.dtype in (torch.float8_e4m3fn, torch.float8_e5m2):
        import ml_dtypes

        return t.view(torch.uint8).numpy().view(getattr(ml_dtypes, str(t.dtype).removeprefix("torch.")))
    if t.is_complex():
        raise InputError("complex")
    return t.numpy()


def _tensors(obj, prefix: str = "") -> dict:
    """Every tensor in a loaded object: itself, or the values of (nested) dicts keyed 'a.b'."""
    import torch

    if isinstance(obj, torch.Tensor):
        return {prefix or "": obj}
    out = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(_tensors(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def _torch(path: str, key, what) -> TensorFile:
    import pickle
    import zipfile

    import torch

    try:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc):  # an old (non-zip) file cannot be mapped: read it whole
                raise
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unpickling failed"
        raise InputError(f"{what} {shown(path)} is not a tensor file torch.load can read safely (weights_only: "
                         f"{first[:120]})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0].split(". ")[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{what} {shown(path)} is not a readable torch file ({first[:120]}); save a tensor or a dict of "
                         "tensors with torch.save") from None
    found = _tensors(obj)
    if not found:
        raise InputError(f"{what} {shown(path)} holds no tensor ({type(obj).__name__}); save a tensor or a dict of tensors")
    if list(found) == [""]:
        if key is not None:
            raise InputError(f"--key {shown(key)} is not in {what} {shown(path)}; it holds one tensor, not a dict")
        chosen = None
    else:
        chosen = _choose(list(found), key, path, what)
    t = found[chosen or ""]
    if t.is_complex():
        raise InputError(f"{what} {shown(path)} holds complex values; allowed: real numbers")
    arr = _tensor_to_numpy(t)
    return TensorFile(path, chosen, arr, _format_name(arr.dtype), str(t.dtype).removeprefix("torch."))


def _safetensors(path: str, key, what) -> TensorFile:
    try:
        from safetensors import SafetensorError, safe_open
    except ImportError:  # pragma: no cover - a core dependency
        raise InputError("reading .safetensors needs the safetensors package (pip install safetensors)") from None
    try:
        with safe_open(path, framework="pt") as f:
            names = list(f.keys())
            chosen = _choose(names, key, path, what)
            t = f.get_tensor(chosen)
    except InputError:
        raise
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise InputError(f"{what} {shown(path)} is not a readable .safetensors file ({str(exc)[:120]})") from None
    arr = _tensor_to_numpy(t)
    return TensorFile(path, chosen, arr, _format_name(arr.dtype), str(t.dtype).removeprefix("torch."))


def _text(path: str, key, what) -> TensorFile:
    from stabcli.core.inputs import parse_number

    try:
        with open(path, encoding="utf-8-sig") as fh:  # -sig: a byte-order mark (Excel's CSV) is not a character
            lines = fh.read().splitlines()
    except UnicodeDecodeError:
        raise InputError(f"{what} {shown(path)} is not text (not UTF-8); give numbers one a line or comma- or "
                         "space-separated, or a .npy/.pt/.safetensors file") from None
    rows: list[list[float]] = []
    for n, line in enumerate(lines, 1):
        text = line.strip()
        if not text:
            continue
        # comma-separated, or else separated by spaces or tabs (np.savetxt's default for a 2-D array)
        items = [t.strip() for t in text.split(",")] if "," in text else text.split()
        if items and items[-1] == "":  # a trailing comma
            items = items[:-1]
        hint = "a number such as 0.5, -12 or 1e3" + (" (a header line is not read: remove it)" if n == 1 else "")
        try:
            rows.append([parse_number(t, f"{what} {shown(path)} line {n}:", hint) for t in items])
        except InputError as exc:
            raise InputError(str(exc)) from None
    if not rows:
        raise InputError(f"{what} {shown(path)} holds no numbers; give numbers one a line or comma- or "
                         "space-separated")
    widths = {len(r) for r in rows}
    if len(rows) == 1:
        arr = np.array(rows[0], dtype=np.float64)
    elif widths == {1}:
        arr = np.array([r[0] for r in rows], dtype=np.float64)
    elif len(widths) == 1:
        arr = np.array(rows, dtype=np.float64)
    else:
        raise InputError(f"{what} {shown(path)} has rows of {min(widths)} to {max(widths)} values; every line needs the "
                         "same number of values")
    return TensorFile(path, None, arr, None, "text")


def broadcast_shape(a: TensorFile, b: TensorFile) -> tuple[int, ...]:
    """The shape torch would broadcast the two to, or an error naming both files and shapes."""
    try:
        return tuple(np.broadcast_shapes(a.shape, b.shape))
    except ValueError:
        raise InputError(f"LOGITS {shown(a.name)} of shape {a.shape} and TARGETS {shown(b.name)} of shape {b.shape} do not "
                         "broadcast; give the same shape, or shapes that broadcast as in torch (a 1 or a missing "
                         "leading axis)") from None


class Gather:
    """Element [start, stop) of a tensor broadcast to ``shape``, in row-major order, as a float64-ready array.

    A tensor of the full shape (the usual case) is sliced from its flattened memory map; a scalar is repeated; any
    other shape is gathered through the broadcast's multi-index."""

    def __init__(self, tf: TensorFile, shape: tuple[int, ...]):
        self.tf, self.shape = tf, shape
        arr = tf.array
        self.full = tuple(arr.shape) == tuple(shape)
        if self.full:
            self.flat = arr.reshape(-1)
        elif arr.size == 1:
            self.scalar = arr.reshape(-1)[:1]
        else:
            pad = (1,) * (len(shape) - arr.ndim) + tuple(arr.shape)
            self.arr = arr.reshape(pad)
            self.one = [n == 1 for n in pad]

    def __call__(self, start: int, stop: int) -> np.ndarray:
        if self.full:
            return np.asarray(self.flat[start:stop])
        if self.tf.array.size == 1:
            return np.broadcast_to(self.scalar, (stop - start,))
        index = np.unravel_index(np.arange(start, stop, dtype=np.int64), self.shape)
        index = tuple(np.zeros_like(i) if one else i for i, one in zip(index, self.one))
        return np.asarray(self.arr[index])


def first_bad(values: np.ndarray, ok: np.ndarray) -> int | None:
    """The position of the first value that is not ``ok``, or None."""
    bad = np.flatnonzero(~ok)
    return int(bad[0]) if bad.size else None


def fmt_index(flat: int, shape: tuple[int, ...]) -> list[int]:
    """A flat index as the multi-dimensional index of ``shape``."""
    if not shape:
        return []
    return [int(i) for i in np.unravel_index(int(flat), shape)]


def fmt_value(v: float) -> str:
    return repr(float(v)) if math.isfinite(v) else str(float(v))
