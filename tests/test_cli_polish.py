"""Small things a user meets at the command line: help that fits 80 columns, errors that name what was typed,
unknown options called unknown options, messages that stay true."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from stabcli.cli import cli

COMMANDS = ["compare", "sweep", "thresholds", "plot", "demo", "float", "check"]


def run(*args, **kw):
    return CliRunner().invoke(cli, [str(a) for a in args], **kw)


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_fits_80_columns(command):
    # sweep's Example had an 86-column line (--dtype float32 --min -200 --max 200 --points 1e6 --spacing linear)
    result = run(*([command] if command else []), "--help", env={"COLUMNS": "80"})
    assert result.exit_code == 0
    wide = [line for line in result.output.splitlines() if len(line) > 80]
    assert not wide, wide


@pytest.mark.parametrize("args, error", [
    (["compare", "1", "1", "--bogus"], "No such option '--bogus'"),  # was "Got unexpected extra argument"
    (["compare", "1", "1", "--dtyp", "float16"], "No such option '--dtyp'. Did you mean '--dtype'?"),
    (["compare", "--bogus", "1", "1"], "No such option '--bogus'"),
    (["float", "1", "--bogus"], "No such option '--bogus'"),
    # errors name what was typed, not its float64 reading ("target 2.0 (in '1,2,3')")
    (["compare", "1,2,3", "1,2,3"], "target '2' (in '1,2,3') is outside [0, 1]"),
    (["compare", "1", "0.5,1e0,1.50"], "target '1.50' (in '0.5,1e0,1.50') is outside [0, 1]"),
    (["compare", "1", "-0.5"], "target '-0.5' is outside [0, 1]"),
    (["compare", "[[1,2],[3,4]]", "[[0,1],[1,nan]]"], "target 'nan' (in '[[0,1],[1,nan]]')"),
    (["compare", "1", "0", "--weight", "1,-2"], "weight '-2' (in '1,-2') is not allowed"),
    (["compare", "0.5,1.5", "1", "--probs"], "probability '1.5' (in '0.5,1.5') is outside [0, 1]"),
    (["compare", "[[1,2]]", "1", "--loss", "softmax", "--weight", "1,-3"], "weight '-3' (in '1,-3')"),
    # the first problem in argument order is reported, and what it says is true: 2 is not a probability
    (["compare", "1,2", "1,2,3"], "target '2' (in '1,2,3') is outside [0, 1]"),
    (["compare", "1,2", "0,1,1"], "do not broadcast"),
    (["sweep", "--exhaustive", "--dtype", "float64"], "use it with float8_e4m3fn, float8_e5m2, float16, bfloat16 "
                                                      "or float32"),
])
def test_errors_say_what_was_typed(args, error):
    result = run(*args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and error in lines[0], result.output


@pytest.mark.parametrize("args", [["compare", "-100", "1"], ["compare", "-inf,1", "1"], ["compare", "-nan", "1"],
                                  ["compare", "-0x1p3", "1"], ["compare", "-1,-2", "0,1"], ["float", "-1"],
                                  ["compare", "1", "1", "--dtype=float32"]])
def test_negative_numbers_and_inf_are_still_arguments(args):
    result = run(*args, "--dtype", "float32", *(["--backend", "numpy"] if args[0] == "compare" else []), "--format",
                 "json")
    assert result.exit_code == 0, result.output
