"""Determinism and hygiene: the same command writes the same bytes, no warning reaches stderr, JSON is strict."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from stabcli.cli import cli

COMMANDS = [
    ["compare", "1e10", "1"],
    ["compare", "1e10,-3,0.5,nan", "0,1,0.25,1", "--format", "json", "--reduction", "none"],
    ["compare", "-100", "1", "--format", "csv"],
    ["sweep", "--dtype", "float16", "--exhaustive"],
    ["sweep", "--dtype", "all", "--backend", "all", "--points", "101", "--format", "json"],
    ["sweep", "--dtype", "bfloat16", "--points", "101", "--format", "csv", "--target", "0.3"],
    ["thresholds", "--dtype", "float16", "--format", "json"],
    ["demo", "--step", "2"],
    ["compare", "[[12,0,-12],[1,2,3]]", "1,0", "--loss", "softmax", "--format", "json"],
    ["sweep", "--loss", "softmax", "--dtype", "float16", "--exhaustive", "--target", "1,0,0"],
    ["float", "0.1"],
    ["float", "1e10", "--dtype", "float8_e4m3fn", "--dtype", "float8_e5m2", "--format", "json"],
    ["sweep", "--dtype", "float8_e4m3fn", "--exhaustive"],
]


def _strict(text: str):
    def refuse(token):
        raise ValueError(f"non-strict JSON token {token}")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("args", COMMANDS, ids=[" ".join(a) for a in COMMANDS])
def test_same_command_same_bytes(args):
    runner = CliRunner()
    first, second = runner.invoke(cli, args), runner.invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert first.output == second.output
    if "json" in args:
        _strict(first.output)


@pytest.mark.parametrize("args", [
    ["sweep", "--dtype", "all", "--backend", "all", "--points", "201", "--format", "json"],
    ["sweep", "--dtype", "float16", "--exhaustive", "--target", "0", "--target", "0.5", "--target", "1"],
    ["compare", "-1e4,-100,0,100,1e4,inf,-inf,nan", "0,1,0.5,1,0,1,0,1", "--reduction", "none"],
    ["thresholds", "--dtype", "bfloat16"],
    ["compare", "-448,-3,0,2,448,inf,nan", "0,1,0.5,1,0,1,1", "--dtype", "float8_e4m3fn", "--dtype", "float8_e5m2",
     "--reduction", "none"],
    ["float", "1e10", "--dtype", "all", "--dtype", "float8_e4m3fn"],
])
def test_no_warning_text_on_stderr(args):
    # -W always would print every RuntimeWarning numpy raises; stabcli must catch them all (np.errstate)
    done = subprocess.run([sys.executable, "-W", "always", "-m", "stabcli", *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    if "json" in args:
        _strict(done.stdout)


@pytest.mark.parametrize("args", [
    ["compare", "1e10,-3,0.5", "0,1,0.25", "--format", "json", "--reduction", "none"],
    ["sweep", "--dtype", "float16", "--exhaustive", "--format", "json"],
    ["compare", "1e10", "1"],
], ids=["compare-json", "sweep-exhaustive-json", "compare-table"])
def test_same_bytes_in_separate_processes(args):
    """Two fresh interpreters with different hash seeds (so set and dict orders of strings differ) print the same
    bytes: no cache shared within one process can make this pass."""
    runs = [subprocess.run([sys.executable, "-m", "stabcli", *args], capture_output=True, text=True, timeout=300,
                           env={**os.environ, "PYTHONHASHSEED": seed, "COLUMNS": "80"}) for seed in ("1", "2")]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr
    assert runs[0].stdout == runs[1].stdout


# Libraries stabcli only imports where they are used: none of them on --help, and no peer library (jax, Keras,
# optax, scikit-learn: seconds to import) on a default compare.
HEAVY = ("numpy", "torch", "matplotlib", "mpmath", "rich", "jax", "keras", "optax", "sklearn", "ml_dtypes")
PEERS = ("jax", "keras", "optax", "sklearn")
_PROBE = """
import sys
from stabcli.cli import main
sys.argv = ["stabcli", *{args!r}]
try:
    main()
except SystemExit:
    pass
print("\\nLOADED:" + ",".join(m for m in {names!r} if m in sys.modules))
"""


def _loaded(args, names) -> list[str]:
    done = subprocess.run([sys.executable, "-c", _PROBE.format(args=list(args), names=names)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip().splitlines()[-1]
    assert line.startswith("LOADED:"), done.stdout[-500:]
    return [m for m in line[len("LOADED:"):].split(",") if m]


@pytest.mark.parametrize("args", [["--help"], ["compare", "--help"], ["check", "--help"], ["--version"]])
def test_help_imports_nothing_heavy(args):
    assert _loaded(args, HEAVY) == []


def test_default_compare_imports_no_peer_library():
    assert _loaded(["compare", "1e10", "1"], PEERS) == []


def test_console_script_is_installed():
    """The README's commands install the package: the `stabcli` console script must run (not only the source tree,
    which `python -m pytest` puts first on sys.path)."""
    import shutil

    from stabcli import __version__

    exe = shutil.which("stabcli")
    assert exe is not None, "the stabcli console script is not on PATH: install the package (README)"
    done = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and __version__ in done.stdout
