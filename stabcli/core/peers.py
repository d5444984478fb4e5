"""Peer libraries (Keras, optax, scikit-learn): whether they are installed, their versions, and importing them.

They are optional (``pip install 'stabcli[peers]'``) and slow to import (Keras on torch about 4 s), so nothing here
imports them until a peer row is asked for (``--peers``): :func:`installed` and :func:`version` read the package
metadata only. A family lists its peer methods as :class:`PeerMethod` (``losses/<family>/peers.py``); the engines
run them under the pseudo-backend ``peers``, whose formulas take the inputs as numpy arrays of the dtype and hand
them to the library, and whose rows name the library, its version and what it computed in.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass

INSTALL_HINT = "pip install 'stabcli[peers]'"
PEERS_BACKEND = "peers"

# distribution name -> the module to import
MODULES = {"keras": "keras", "optax": "optax", "jax": "jax", "scikit-learn": "sklearn"}


def installed(library: str) -> bool:
    """Whether ``library`` (a distribution name) can be imported, without importing it."""
    return importlib.util.find_spec(MODULES.get(library, library)) is not None


def version(library: str) -> str:
    import importlib.metadata  # only for a peer row's name (it costs an import)

    try:
        return importlib.metadata.version(library)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def keras():
    """Keras 3 on the torch backend: KERAS_BACKEND is set to torch before the first import (a Keras imported
    earlier keeps its backend; :func:`keras_backend` says which)."""
    import sys

    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = "torch"
    return importlib.import_module("keras")


def keras_backend() -> str:
    return keras().backend.backend()


def jax():
    """jax on the CPU with 64-bit floats enabled (float64 rows need them; float16/bfloat16/float32 are unchanged)."""
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    module = importlib.import_module("jax")
    module.config.update("jax_enable_x64", True)
    return module



def runs_in(fmt) -> bool:
    """Whether the peer rows run in ``fmt``: not in float8, which Keras's torch backend cannot compute in (torch has
    no float8 kernels) and scikit-learn's numpy cannot hold (ml_dtypes' float8 is not a dtype it knows)."""
    return fmt.bits != 8


def skipped_note(fmt, libraries=("keras", "scikit-learn")) -> str:
    """Why ``libraries`` (the peers of the family at hand) give no rows in ``fmt``: only those, each its reason."""
    reasons = {"keras": f"Keras's torch backend has no {fmt.name} kernels",
               "scikit-learn": "scikit-learn has no float8 dtype",
               "optax": "optax (jax) could compute in float8, but stabcli keeps every peer to the same formats"}
    why = "; ".join(reasons.get(lib, f"{lib} is not run in float8") for lib in dict.fromkeys(libraries))
    return f"no peer rows in {fmt.name}: {why} (the peers run in float16, bfloat16, float32 and float64)"

@dataclass(frozen=True)
class PeerMethod:
    """A method that is a peer library's real loss: which library, and the names of its formula and gradient
    functions in ``module`` (gradient None: the library cannot differentiate it)."""

    library: str
    module: str
    formula: str
    grad: str | None = None
    needs: tuple[str, ...] = ()  # further libraries it needs (optax: jax)

    def available(self) -> bool:
        return installed(self.library) and all(installed(n) for n in self.needs)

    def load(self, name: str):
        return getattr(importlib.import_module(self.module), name)

    def describe(self, fmt) -> str:
        """What the row computed with: the library, its version, and in which dtype."""
        return self.load("describe")(self, fmt)
