"""Determinism and hygiene: the same command writes the same bytes, no warning reaches stderr, JSON is strict."""

from __future__ import annotations

import json
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
