"""The names the command line offers and the engines accept, each list written once.

The CLI builds its choices (``--dtype``, ``--backend``, ``--reduction``, ``--spacing``, ``--severity``, ``--slide``,
...) from these, and the core and engines check values against the same tuples, so a name cannot be a choice in
one place and refused in the other. Plain tuples, no imports: ``stabcli --help`` reads them before numpy is loaded.
"""

from __future__ import annotations

FLOAT8_NAMES: tuple[str, ...] = ("float8_e4m3fn", "float8_e5m2")
ALL_NAMES: tuple[str, ...] = ("float16", "bfloat16", "float32", "float64")  # what `all` means (float8 opt-in)
DTYPE_NAMES: tuple[str, ...] = FLOAT8_NAMES + ALL_NAMES  # narrowest first: the order outputs list dtypes in
BACKEND_NAMES: tuple[str, ...] = ("numpy", "torch")
OUTPUT_FORMATS: tuple[str, ...] = ("table", "json", "csv")  # --format of the commands that print results
REDUCTIONS: tuple[str, ...] = ("mean", "sum", "none")  # as torch's losses take them
SPACINGS: tuple[str, ...] = ("linear", "log")  # a sweep grid's
SEVERITIES: tuple[str, ...] = ("accuracy", "training")  # how sweep and check rank what they found
SLIDE_KINDS: tuple[str, ...] = ("loss", "error", "grad", "overview")  # stabcli plot --slide
FIGURE_FORMATS: tuple[str, ...] = ("png", "svg")  # stabcli plot --format
AUTOCAST_DTYPES: tuple[str, ...] = ("float16", "bfloat16")  # torch.autocast's low dtypes
AUTOCAST_DEVICES: tuple[str, ...] = ("cuda", "cpu")  # whose autocast lists apply
