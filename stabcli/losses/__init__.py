"""The loss families stabcli explores, one package each; this registry is the only place that lists them.

Adding a family: write ``stabcli/losses/<name>/`` whose ``__init__.py`` defines ``FAMILY``, an instance of
:class:`stabcli.losses.base.LossFamily`, and add one line to ``REGISTRY`` below. Nothing else changes: the
commands' ``--loss`` choices, the engines and the renderers all go through the registry.

Importing this module is cheap (no numpy): the CLI reads the names for ``--help`` before anything is loaded.
"""

from __future__ import annotations

import importlib

REGISTRY: dict[str, str] = {
    "bce": "stabcli.losses.bce",
    "softmax": "stabcli.losses.softmax",
}
DEFAULT = "bce"


def family_names() -> tuple[str, ...]:
    return tuple(REGISTRY)


def get_family(name: str | None = None):
    """The registered family called ``name`` (default: bce)."""
    name = DEFAULT if name is None else name
    if name not in REGISTRY:
        from stabcli.core.errors import InputError

        raise InputError(f"unknown loss {name!r}; allowed: {', '.join(REGISTRY)}")
    return importlib.import_module(REGISTRY[name]).FAMILY
