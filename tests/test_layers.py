"""The layers point one way: core <- losses <- commands <- present <- cli (README, "Layout").

Read from the source (every import statement, also those inside functions), so that a lazy import that crosses a
layer the wrong way is caught too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "stabcli"

# layer -> the stabcli layers it must not import
FORBIDDEN = {
    "core": ("stabcli.losses", "stabcli.commands", "stabcli.present", "stabcli.cli"),
    "losses": ("stabcli.commands", "stabcli.present", "stabcli.cli"),
    "commands": ("stabcli.present", "stabcli.cli"),
    "present": ("stabcli.cli",),
}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_layer_imports_one_above_it(layer):
    bad = [f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}"
           for path in sorted((PACKAGE / layer).rglob("*.py"))
           for line, name in imported_modules(path)
           if any(name == f or name.startswith(f + ".") for f in FORBIDDEN[layer])]
    assert bad == []


def test_the_check_sees_a_lazy_import(tmp_path):
    """The reader finds an import inside a function (what the family once did with commands.compare)."""
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from stabcli.commands.compare import run_compare\n")
    assert imported_modules(module) == [(2, "stabcli.commands.compare")]
